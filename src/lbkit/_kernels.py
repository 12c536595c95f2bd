"""THE switch between the compiled kernels (``lbkit._fast``) and the pure ones (``lbkit._pure``).

Public modules never import a kernel module directly; they call ``_kernels.<name>.<function>``,
so there is exactly one place that decides which implementation runs.

Environment (read once, at import):

* ``LBKIT_NO_EXTENSIONS=1`` forces the pure-Python kernels.
* ``LBKIT_REQUIRE_EXTENSIONS=1`` turns a compiled kernel that cannot be imported into an
  :class:`~lbkit.errors.ExtensionUnavailable` (an ``ImportError``) instead of a fallback.
* Both at once is a contradiction and raises :class:`~lbkit.errors.ConfigError`.

Any other value than empty or ``0`` counts as set. The choice is all or nothing: if one compiled
kernel is missing, every kernel runs pure, so :data:`IMPLEMENTATION` is one true word, and
:data:`FALLBACK_REASON` says why.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from lbkit.errors import ConfigError, ExtensionUnavailable

__all__ = [
    "FALLBACK_REASON",
    "IMPLEMENTATION",
    "KERNELS",
    "compiled_status",
    "cookiecodec",
    "forwarding",
    "hashing",
    "health",
    "load",
    "maglev",
    "resp",
    "slotcounts",
    "steering",
    "subsetting",
    "waitingroom",
]

#: The kernel modules, by the attribute name they get here; ``_pure/_<name>.py`` and
#: ``_fast/_<name>.pyx`` implement each one.
KERNELS: tuple[str, ...] = (
    "hashing",
    "forwarding",
    "maglev",
    "subsetting",
    "health",
    "steering",
    "waitingroom",
    "cookiecodec",
    "slotcounts",
    "resp",
)

_NO_EXTENSIONS = "LBKIT_NO_EXTENSIONS"
_REQUIRE_EXTENSIONS = "LBKIT_REQUIRE_EXTENSIONS"

Flavour = Literal["fast", "pure"]


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def load(flavour: Flavour) -> dict[str, ModuleType]:
    """Import every kernel of one flavour (``"fast"`` or ``"pure"``), by kernel name.

    Raises ``ImportError`` when a compiled kernel is missing. Tests use this to run a behaviour on
    both paths in one process.
    """
    if flavour not in ("fast", "pure"):
        raise ConfigError(f"flavour is {flavour!r}; it must be 'fast' or 'pure'")
    return {name: importlib.import_module(f"lbkit._{flavour}._{name}") for name in KERNELS}


def _choose() -> tuple[Literal["cython", "python"], str | None, dict[str, ModuleType]]:
    no_extensions, require_extensions = _flag(_NO_EXTENSIONS), _flag(_REQUIRE_EXTENSIONS)
    if no_extensions and require_extensions:
        raise ConfigError(
            f"{_NO_EXTENSIONS} and {_REQUIRE_EXTENSIONS} are both set; "
            "set at most one of them (force pure Python, or require the compiled kernels)"
        )
    if no_extensions:
        return "python", f"{_NO_EXTENSIONS} is set", load("pure")
    try:
        return "cython", None, load("fast")
    except ImportError as error:
        if require_extensions:
            raise ExtensionUnavailable(
                f"{_REQUIRE_EXTENSIONS} is set but the compiled kernels cannot be imported: "
                f"{error}; reinstall lbkit with a C compiler available, "
                f"or unset {_REQUIRE_EXTENSIONS}"
            ) from error
        return "python", f"compiled kernels unavailable ({error})", load("pure")


IMPLEMENTATION: Literal["cython", "python"]
"""``"cython"`` when the compiled kernels are in use, ``"python"`` otherwise."""
FALLBACK_REASON: str | None
"""Why the pure kernels are in use (``None`` when the compiled ones are)."""

IMPLEMENTATION, FALLBACK_REASON, _chosen = _choose()

if TYPE_CHECKING:
    # The pure module is the specification, so type checkers see its signatures; a test checks
    # that the compiled module mirrors them.
    from lbkit._pure import _cookiecodec as cookiecodec
    from lbkit._pure import _forwarding as forwarding
    from lbkit._pure import _hashing as hashing
    from lbkit._pure import _health as health
    from lbkit._pure import _maglev as maglev
    from lbkit._pure import _resp as resp
    from lbkit._pure import _slotcounts as slotcounts
    from lbkit._pure import _steering as steering
    from lbkit._pure import _subsetting as subsetting
    from lbkit._pure import _waitingroom as waitingroom
else:
    cookiecodec = _chosen["cookiecodec"]
    forwarding = _chosen["forwarding"]
    hashing = _chosen["hashing"]
    health = _chosen["health"]
    maglev = _chosen["maglev"]
    resp = _chosen["resp"]
    slotcounts = _chosen["slotcounts"]
    steering = _chosen["steering"]
    subsetting = _chosen["subsetting"]
    waitingroom = _chosen["waitingroom"]


def compiled_status() -> dict[str, str | None]:
    """For each kernel, the file of its compiled module, or ``None`` if it cannot be imported."""
    status: dict[str, str | None] = {}
    for name in KERNELS:
        try:
            module = importlib.import_module(f"lbkit._fast._{name}")
        except ImportError:
            status[name] = None
        else:
            status[name] = module.__file__
    return status
