"""Server ids and weights: validation and the canonical bytes of an id.

A server id is a ``str`` (1 to 255 bytes of UTF-8) or an ``int`` in the signed 64-bit range;
``bool`` is refused. Its canonical bytes, used wherever an id is hashed (Maglev) or written
(table blobs), are a tag byte and a payload: ``b"s" + utf8`` for a string, ``b"i" + 8-byte
big-endian two's complement`` for an integer, so ``"1"`` and ``1`` are different servers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from lbkit.errors import ArgumentTypeError, ConfigError

ServerId = str | int
#: What a ``weights`` argument may be. Mappings are listed per key type because ``Mapping`` is
#: invariant in its keys: a ``dict[str, float]`` is not a ``Mapping[str | int, float]``.
WeightsInput = (
    Mapping[str, float]
    | Mapping[int, float]
    | Mapping[ServerId, float]
    | Iterable[tuple[str, float]]
    | Iterable[tuple[int, float]]
    | Iterable[tuple[ServerId, float]]
)

MAX_ID_BYTES = 255
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def check_server(server: object, name: str = "server") -> ServerId:
    """Return ``server`` if it is a valid id; raise naming ``name`` otherwise."""
    if isinstance(server, bool) or not isinstance(server, (str, int)):
        raise ArgumentTypeError(f"{name} is {type(server).__name__}; server ids must be str or int")
    if isinstance(server, str):
        try:
            size = len(server.encode("utf-8"))
        except UnicodeEncodeError:
            raise ConfigError(f"{name} is {server!r}; server ids must be valid UTF-8") from None
        if not 1 <= size <= MAX_ID_BYTES:
            raise ConfigError(
                f"{name} is {size} bytes of UTF-8; str server ids must be 1..{MAX_ID_BYTES} bytes"
            )
    elif not _INT_MIN <= server <= _INT_MAX:
        raise ConfigError(f"{name} is {server}; int server ids must fit in a signed 64-bit integer")
    return server


def server_key(server: ServerId) -> bytes:
    """The canonical bytes of a valid server id (see the module docs)."""
    if isinstance(server, str):
        return b"s" + server.encode("utf-8")
    return b"i" + server.to_bytes(8, "big", signed=True)


def server_from_key(key: bytes) -> ServerId:
    """The id whose canonical bytes are ``key``; raises ``ValueError`` on anything else."""
    if key[:1] == b"s" and 2 <= len(key) <= MAX_ID_BYTES + 1:
        return key[1:].decode("utf-8")
    if key[:1] == b"i" and len(key) == 9:
        return int.from_bytes(key[1:], "big", signed=True)
    raise ValueError("not the canonical bytes of a server id")


def check_weight(weight: object, name: str) -> float:
    """A weight as a float: finite and >= 0 (ints and floats accepted, bool refused)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(weight).__name__}; weights must be numbers")
    value = float(weight)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} is {weight!r}; weights must be finite and >= 0")
    return value


def check_weights(
    weights: WeightsInput,
    name: str = "weights",
    *,
    allow_empty: bool = False,
) -> dict[ServerId, float]:
    """Validate a mapping (or pairs) of server id to weight, keeping the given order.

    Refuses duplicate ids, invalid ids, weights that are not finite and >= 0, and (unless
    ``allow_empty``) an empty or all-zero set.
    """
    if isinstance(weights, (str, bytes)):
        raise ArgumentTypeError(
            f"{name} is {type(weights).__name__}; pass a mapping of server id to weight"
        )
    pairs: Iterable[object] = weights.items() if isinstance(weights, Mapping) else weights
    checked: dict[ServerId, float] = {}
    try:
        iterator = iter(pairs)
    except TypeError:
        raise ArgumentTypeError(
            f"{name} is {type(weights).__name__}; pass a mapping of server id to weight"
        ) from None
    for position, pair in enumerate(iterator):
        # The common case, checked inline: a short ASCII name and a plain non-negative float
        # or int (NaN fails the comparison). Anything else takes the full checks below.
        if type(pair) is tuple and len(pair) == 2:
            server, weight = pair
            if (
                type(server) is str
                and server.isascii()
                and 0 < len(server) <= MAX_ID_BYTES
                and type(weight) in (float, int)
                and 0 <= weight < math.inf
                and server not in checked
            ):
                checked[server] = float(weight)
                continue
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ArgumentTypeError(
                f"{name}[{position}] is {pair!r}; pass (server, weight) pairs or a mapping"
            )
        server = check_server(pair[0], f"{name} key {pair[0]!r}")
        if server in checked:
            raise ConfigError(f"{name} names server {server!r} twice; server ids must be unique")
        checked[server] = check_weight(pair[1], f"{name}[{server!r}]")
    if not allow_empty:
        if not checked:
            raise ConfigError(f"{name} is empty; at least one server is needed")
        if not any(checked.values()):
            raise ConfigError(f"{name} are all zero; at least one weight must be > 0")
    return checked
