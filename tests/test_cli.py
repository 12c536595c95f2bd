"""The lbkit command line: info, hash, demo, --version, and one-line errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lbkit
from lbkit.cli import main
from lbkit.hashing import flow_key, hash_key


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    status = main(argv, out=out)
    return status, out.getvalue()


def test_info_reports_version_and_implementation(impl: Any) -> None:
    """info names the version, the implementation in use and each kernel's compiled state."""
    status, output = run(["info"])
    assert status == 0
    assert f"lbkit {lbkit.__version__}" in output
    assert f"implementation: {lbkit.IMPLEMENTATION}" in output
    running = "compiled" if lbkit.IMPLEMENTATION == "cython" else "pure Python"
    assert f"  hashing: running {running}; " in output


def test_info_under_no_extensions_says_what_runs(run_python: Any) -> None:
    """With LBKIT_NO_EXTENSIONS=1, info says the pure kernels run even if compiled ones exist."""
    result = run_python("from lbkit.cli import main; main(['info'])", LBKIT_NO_EXTENSIONS="1")
    assert result.returncode == 0, result.stderr
    assert "implementation: python" in result.stdout
    assert "pure Python because: LBKIT_NO_EXTENSIONS is set" in result.stdout
    assert "  hashing: running pure Python; " in result.stdout


def test_hash_a_flow(impl: Any) -> None:
    """hash SRC DST SPORT DPORT prints the canonical key, its hash and its bucket."""
    status, output = run(["hash", "192.0.2.1", "198.51.100.7", "40000", "443", "--buckets", "256"])
    key = flow_key("192.0.2.1", "198.51.100.7", 40000, 443)
    value = hash_key(key)
    assert status == 0
    assert output.splitlines() == [
        f"key     {key.hex()} (12 bytes)",
        f"hash    {value} (0x{value:08x}, seed 0)",
        f"bucket  {value & 255} of 256",
    ]


def test_hash_a_text_or_hex_key(impl: Any) -> None:
    """--key hashes UTF-8 text, --hex hashes raw bytes, and --seed is honoured."""
    _, text = run(["hash", "--key", "client-42", "--seed", "7"])
    _, raw = run(["hash", "--hex", b"client-42".hex(), "--seed", "7"])
    assert text == raw
    assert f"hash    {hash_key(b'client-42', seed=7)} " in text


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (
            ["hash", "192.0.2.1", "2001:db8::1", "1", "2"],
            1,
            "lbkit: error: src is IPv4 and dst is IPv6",
        ),
        (
            ["hash", "192.0.2.1", "192.0.2.2", "1", "70000"],
            1,
            "lbkit: error: dport is 70000; ports must be integers in 0..65535",
        ),
        (
            ["hash", "--key", "k", "--buckets", "100"],
            1,
            "lbkit: error: bucket_count is 100; it must be a power of two",
        ),
        (
            ["hash", "--key", "k", "--seed", "-1"],
            1,
            "lbkit: error: seed is -1; seeds must be integers",
        ),
        (
            ["hash", "192.0.2.1", "192.0.2.2", "1"],
            2,
            "lbkit hash: error: a flow is SRC DST SPORT DPORT (4 values), got 3",
        ),
        (
            ["hash", "192.0.2.1", "192.0.2.2", "http", "80"],
            2,
            "lbkit hash: error: SPORT 'http' is not an integer",
        ),
        (["hash", "--hex", "zz"], 2, "lbkit hash: error: --hex 'zz' is not hexadecimal"),
        (
            ["hash", "--key", "k", "1.2.3.4", "1.2.3.5", "1", "2"],
            2,
            "lbkit hash: error: give either a flow",
        ),
        (["frobnicate"], 2, "lbkit: error: argument COMMAND: invalid choice: 'frobnicate'"),
        ([], 2, "lbkit: error: the following arguments are required: COMMAND"),
    ],
)
def test_errors_are_one_line_and_nonzero(
    argv: list[str], status: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rejected value exits 1 and a usage mistake exits 2, each with one line on stderr."""
    try:
        code = main(argv, out=io.StringIO())
    except SystemExit as exit_:
        code = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == status
    assert err.startswith(message), err
    assert "Traceback" not in err
    if status == 1:
        assert err.count("\n") == 1


def test_demo_tours_hashing(impl: Any) -> None:
    """demo runs end to end and shows that every check it makes holds."""
    status, output = run(["demo"])
    assert status == 0
    assert f"{lbkit.IMPLEMENTATION} kernels" in output.splitlines()[0]
    for section in ("1. Flow keys", "2. Spread", "3. Batch hashing"):
        assert section in output
    assert "False" not in output
    assert output.count(": True") == 2


def test_demo_is_deterministic(impl: Any) -> None:
    """The same seed prints the same tour."""
    assert run(["demo", "--seed", "5"]) == run(["demo", "--seed", "5"])


def test_python_dash_m_and_the_console_script() -> None:
    """`python -m lbkit` and the installed `lbkit` script both answer --version."""
    expected = f"lbkit {lbkit.__version__}\n"
    module = subprocess.run(
        [sys.executable, "-m", "lbkit", "--version"], capture_output=True, text=True, check=True
    )
    assert module.stdout == expected
    script = Path(sys.executable).with_name("lbkit")
    assert script.exists(), f"the console script is not installed beside {sys.executable}"
    console = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert console.stdout == expected


def test_a_closed_pipe_is_not_a_traceback() -> None:
    """`lbkit demo | true` ends quietly, with status 1, when nobody reads the output."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lbkit", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # long before the demo writes its first line
    stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    process.stderr.close()
    assert "Traceback" not in stderr
    assert process.returncode == 1
