"""lbkit._kernels: the switch, its environment variables, and a truthful IMPLEMENTATION.

Import-time behaviour is tested in fresh interpreters, so each setting starts from scratch.
"""

from __future__ import annotations

import importlib.machinery
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

import lbkit
from lbkit import _kernels
from lbkit.errors import ConfigError

RunPython = Callable[..., subprocess.CompletedProcess[str]]

REPORT = (
    "import lbkit, lbkit._kernels as k; "
    "print(lbkit.IMPLEMENTATION); print(lbkit.FALLBACK_REASON); print(k.hashing.__name__)"
)

# A meta-path finder that makes the compiled hashing kernel unimportable, as on a machine
# where the extension was never built.
BLOCK_FAST = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "lbkit._fast._hashing":
            raise ImportError("No module named 'lbkit._fast._hashing' (blocked by the test)")
        return None
sys.meta_path.insert(0, Block())
"""


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_compiled_kernels_load_when_required(run_python: RunPython, requires_fast: None) -> None:
    """With LBKIT_REQUIRE_EXTENSIONS=1 the compiled modules really load, from extension files."""
    code = REPORT + "; import lbkit._fast._hashing as f; print(f.__file__)"
    implementation, reason, kernel, path = lines(run_python(code, LBKIT_REQUIRE_EXTENSIONS="1"))
    assert (implementation, reason, kernel) == ("cython", "None", "lbkit._fast._hashing")
    assert path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), path


def test_default_prefers_compiled(run_python: RunPython, requires_fast: None) -> None:
    """With no variable set, an installed build uses its compiled kernels."""
    assert lines(run_python(REPORT)) == ["cython", "None", "lbkit._fast._hashing"]


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_no_extensions_forces_pure(run_python: RunPython, value: str) -> None:
    """LBKIT_NO_EXTENSIONS set to anything but empty or 0 selects the pure kernels, and says so."""
    assert lines(run_python(REPORT, LBKIT_NO_EXTENSIONS=value)) == [
        "python",
        "LBKIT_NO_EXTENSIONS is set",
        "lbkit._pure._hashing",
    ]


@pytest.mark.parametrize("value", ["", "0"])
def test_empty_or_zero_means_unset(run_python: RunPython, requires_fast: None, value: str) -> None:
    """LBKIT_NO_EXTENSIONS=0 or empty leaves the compiled kernels in place."""
    result = run_python(REPORT, LBKIT_NO_EXTENSIONS=value, LBKIT_REQUIRE_EXTENSIONS=value)
    assert lines(result)[0] == "cython"


def test_both_variables_is_a_config_error(run_python: RunPython) -> None:
    """Forcing pure and requiring compiled at once is refused at import."""
    result = run_python("import lbkit", LBKIT_NO_EXTENSIONS="1", LBKIT_REQUIRE_EXTENSIONS="1")
    assert result.returncode != 0
    assert (
        "lbkit.errors.ConfigError: LBKIT_NO_EXTENSIONS and LBKIT_REQUIRE_EXTENSIONS are both set; "
        "set at most one of them" in result.stderr
    )


def test_fallback_is_reported_truthfully(run_python: RunPython) -> None:
    """When a compiled kernel cannot be imported, everything runs pure and the reason is kept."""
    implementation, reason, kernel = lines(run_python(BLOCK_FAST + REPORT))
    assert (implementation, kernel) == ("python", "lbkit._pure._hashing")
    assert reason.startswith("compiled kernels unavailable (No module named 'lbkit._fast._hashing'")


def test_fallback_shows_in_info(run_python: RunPython) -> None:
    """`lbkit info` says that it fell back and why."""
    code = BLOCK_FAST + "from lbkit.cli import main; main(['info'])"
    output = "\n".join(lines(run_python(code)))
    assert "implementation: python" in output
    assert "pure Python because: compiled kernels unavailable" in output
    assert "hashing: running pure Python; no compiled module" in output


def test_required_but_missing_is_an_import_error(run_python: RunPython) -> None:
    """LBKIT_REQUIRE_EXTENSIONS=1 turns the fallback into ExtensionUnavailable (an ImportError)."""
    code = BLOCK_FAST + (
        "try:\n    import lbkit\n"
        "except ImportError as error:\n    print(type(error).__name__); print(error)\n"
    )
    name, message = lines(run_python(code, LBKIT_REQUIRE_EXTENSIONS="1"))
    assert name == "ExtensionUnavailable"
    assert message.startswith(
        "LBKIT_REQUIRE_EXTENSIONS is set but the compiled kernels cannot be imported: "
        "No module named 'lbkit._fast._hashing'"
    )


def test_implementation_matches_the_kernels_in_use() -> None:
    """In this process, IMPLEMENTATION names the flavour of the kernel modules in use."""
    expected = "lbkit._fast." if lbkit.IMPLEMENTATION == "cython" else "lbkit._pure."
    assert _kernels.hashing.__name__.startswith(expected)
    assert (lbkit.FALLBACK_REASON is None) == (lbkit.IMPLEMENTATION == "cython")


def test_load_rejects_unknown_flavours() -> None:
    """Only 'fast' and 'pure' exist."""
    with pytest.raises(ConfigError, match=r"^flavour is 'c'; it must be 'fast' or 'pure'$"):
        _kernels.load("c")  # type: ignore[arg-type]


def test_impl_fixture_switches_the_public_path(impl: Any) -> None:
    """While a test holds `impl`, the public API calls that flavour's kernels."""
    assert _kernels.hashing is impl.hashing
    assert impl.hashing.__name__ == f"lbkit._{impl.name}._hashing"


def test_compiled_status_lists_every_kernel(requires_fast: None) -> None:
    """compiled_status names a compiled file for each kernel of an installed build."""
    status = _kernels.compiled_status()
    assert set(status) == set(_kernels.KERNELS)
    assert all(
        path and path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
        for path in status.values()
    )
