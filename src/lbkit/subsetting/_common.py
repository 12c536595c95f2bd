"""What the subsetting algorithms share: argument checks and the interface they all offer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.forwarding._servers import ServerId, check_server

#: The most backends one algorithm holds (stable indices and ring ranks are 32-bit, and the
#: rank-scaled walk multiplies a 32-bit position by the count).
MAX_BACKENDS = 2**28
#: The most frontends: frontend ``f`` sits at ``bit_reverse(f, 32)``.
MAX_FRONTENDS = 2**32


class Subsetter(Protocol):
    """The interface every subsetting algorithm here offers (Ringsteady and the baselines)."""

    @property
    def backends(self) -> tuple[ServerId, ...]: ...

    @property
    def frontends(self) -> int: ...

    @property
    def subset_size(self) -> int: ...

    def subset_for(self, frontend: int) -> tuple[ServerId, ...]: ...

    def subsets(self) -> list[tuple[ServerId, ...]]: ...

    def connection_counts(self) -> dict[ServerId, int]: ...

    def add_backend(self, backend: ServerId) -> None: ...

    def remove_backend(self, backend: ServerId) -> None: ...

    def set_frontends(self, frontends: int) -> None: ...


def check_count(value: object, name: str, minimum: int, maximum: int) -> int:
    """An ``int`` in ``minimum..maximum``, or the error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} is {value}; it must be in {minimum}..{maximum}")
    return value


def check_backends(backends: object, name: str = "backends") -> list[ServerId]:
    """Distinct, valid backend ids, in the order given."""
    if isinstance(backends, (str, bytes)) or not isinstance(backends, Iterable):
        raise ArgumentTypeError(
            f"{name} is {type(backends).__name__}; pass an iterable of backend ids"
        )
    checked: list[ServerId] = []
    seen: set[ServerId] = set()
    for position, backend in enumerate(backends):
        server = check_server(backend, f"{name}[{position}]")
        if server in seen:
            raise ConfigError(f"{name} names backend {server!r} twice; backend ids must be unique")
        seen.add(server)
        checked.append(server)
    if len(checked) > MAX_BACKENDS:
        raise ConfigError(f"{name} has {len(checked)} ids; at most {MAX_BACKENDS} are allowed")
    return checked


def check_subset_size(subset_size: object, backends: int) -> int:
    """A subset size in ``1..backends``."""
    if isinstance(subset_size, bool) or not isinstance(subset_size, int):
        raise ArgumentTypeError(f"subset_size is {type(subset_size).__name__}; it must be an int")
    if subset_size < 1:
        raise ConfigError(f"subset_size is {subset_size}; it must be at least 1")
    if subset_size > backends:
        raise ConfigError(
            f"subset_size is {subset_size} but there are {backends} backends; "
            "a subset cannot be larger than the set of backends"
        )
    return subset_size


def check_frontends(frontends: object) -> int:
    """A frontend count in ``1..MAX_FRONTENDS``."""
    return check_count(frontends, "frontends", 1, MAX_FRONTENDS)


def frontend_error(frontend: object, frontends: int) -> Exception:
    """The error for a frontend that is not an ``int`` in ``0..frontends - 1``."""
    if isinstance(frontend, bool) or not isinstance(frontend, int):
        return ArgumentTypeError(f"frontend is {type(frontend).__name__}; it must be an int")
    return InvalidArgument(
        f"frontend is {frontend}; frontends are numbered 0..{frontends - 1} "
        f"(there are {frontends}; call set_frontends to change that)"
    )


def removal_error(backend: ServerId, backends: int, subset_size: int) -> ConfigError:
    """The error for a removal that would leave fewer backends than a subset holds."""
    return ConfigError(
        f"removing backend {backend!r} would leave {backends - 1} backends, fewer than "
        f"subset_size {subset_size}; add a backend first or use a smaller subset size"
    )
