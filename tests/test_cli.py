"""The lbkit command line: info, hash, table, demo, --version, and one-line errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lbkit
from lbkit.cli import main
from lbkit.forwarding import ForwardingTable, TableBuilder, diff
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


def test_demo_tours_hashing_and_forwarding(impl: Any) -> None:
    """demo runs end to end and shows that every check it makes holds."""
    status, output = run(["demo"])
    assert status == 0
    assert f"{lbkit.IMPLEMENTATION} kernels" in output.splitlines()[0]
    sections = (
        "1. Flow keys",
        "2. Spread",
        "3. Batch hashing",
        "4. A forwarding table",
        '5. Drain "large"',
        "6. Load feedback",
        "7. Doubling the table",
        '8. Removing "medium"',
    )
    positions = [output.index(section) for section in sections]
    assert positions == sorted(positions)
    assert "False" not in output
    assert output.count(": True") == 3


def test_demo_forwarding_breaks_no_connection(impl: Any) -> None:
    """The forwarding part of the demo reports no broken connection for any change it makes,
    and Maglev breaking what it moves."""
    _, output = run(["demo"])
    forwarding = output[output.index("4. A forwarding table") :]
    lines = forwarding.splitlines()
    assert "broken connections: 0" in forwarding
    assert "undrain: 153 buckets move back, 153 of them by swapping" in forwarding
    rounds = [line for line in lines if line.lstrip().startswith("round ")]
    assert len(rounds) >= 2
    assert all(line.endswith("broken 0") or "held" in line for line in rounds)
    assert any("by swap), broken 0" in line and "(0 by swap)" not in line for line in rounds)
    assert "held: 4 of 4 servers are at or above the overload level 0.9" in forwarding
    assert "moved 0, broken 0; every server keeps exactly its share: True" in forwarding
    (table_row,) = [line for line in lines if line.lstrip().startswith("forwarding table ")]
    (maglev_row,) = [line for line in lines if line.lstrip().startswith("Maglev ")]
    assert table_row.split()[-3:] == ["19.92%", "0.00%", "0.00%"]
    _, moved, beyond, broken = maglev_row.split()[-4:]
    assert moved == broken != "0.00%"
    assert beyond != "0.00%"


def test_demo_is_deterministic(impl: Any) -> None:
    """The same seed prints the same tour."""
    assert run(["demo", "--seed", "5"]) == run(["demo", "--seed", "5"])


def fail(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run a command expected to fail; its exit status and stderr."""
    try:
        code = main(argv, out=io.StringIO())
    except SystemExit as exit_:
        code = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return code, err


def test_table_build_writes_the_builders_blob(impl: Any, tmp_path: Path) -> None:
    """table build writes exactly the blob TableBuilder makes from the same options."""
    path = tmp_path / "t.lbft"
    status, output = run(
        ["table", "build", "--servers", "a,b,c", "--weights", "1,2,3", "-o", str(path)]
    )
    expected = TableBuilder([("a", 1), ("b", 2), ("c", 3)]).table
    assert status == 0
    assert path.read_bytes() == expected.to_bytes()
    assert output == (
        f"wrote {path}: tcp table, 512 buckets, 3 servers, generation 0 "
        f"({len(expected.to_bytes()):,} bytes)\n"
    )


def test_table_build_options(impl: Any, tmp_path: Path) -> None:
    """Every option of table build reaches the builder; weights default to 1 each and server
    ids are strings, even when they look like numbers."""
    path = tmp_path / "t.lbft"
    argv = ["table", "build", "--servers", "1, 2,x", "--buckets", "64", "--protocol", "udp"]
    argv += ["--seed", "3", "--hash-seed", "9", "-o", str(path)]
    assert run(argv)[0] == 0
    expected = TableBuilder(
        [("1", 1), ("2", 1), ("x", 1)], buckets=64, protocol="udp", seed=3, hash_seed=9
    ).table
    assert ForwardingTable.from_bytes(path.read_bytes()) == expected
    assert expected.servers == ("1", "2", "x")

    argv = ["table", "build", "--servers", "a,b", "--min-buckets-per-server", "300"]
    assert run([*argv, "--protocol", "udp-rr", "-o", str(path)])[0] == 0
    table = ForwardingTable.from_bytes(path.read_bytes())
    assert (table.bucket_count, table.protocol) == (1024, "udp-rr")


def test_table_show(impl: Any, tmp_path: Path) -> None:
    """table show prints the header fields, each server's share beside its exact share, and the
    second-hop occupancy, in aligned columns."""
    path = tmp_path / "t.lbft"
    argv = ["table", "build", "--servers", "a,b,c", "--weights", "1,1,1", "--buckets", "16"]
    run([*argv, "--hash-seed", "9", "-o", str(path)])
    status, output = run(["table", "show", str(path)])
    assert status == 0
    assert output.splitlines() == [
        "protocol    tcp",
        "buckets     16",
        "generation  0",
        "hash seed   9",
        "",
        "server  weight  buckets   share  exact share  share error",
        "a            1        6  37.50%       33.33%        +0.67",
        "b            1        5  31.25%       33.33%        -0.33",
        "c            1        5  31.25%       33.33%        -0.33",
        "",
        "second hops 0 of 16 buckets (0.00%)",
    ]


def test_table_show_a_changed_table(impl: Any, tmp_path: Path) -> None:
    """A table a control plane changed shows its generation, the weights it was made with and
    its second hops."""
    builder = TableBuilder([("a", 1), ("b", 1)], buckets=16)
    builder.drain("b")
    path = tmp_path / "t.lbft"
    path.write_bytes(builder.table.to_bytes())
    _, output = run(["table", "show", str(path)])
    assert "generation  1" in output
    rows = [line.split() for line in output.splitlines()]
    assert ["a", "1", "16", "100.00%", "100.00%", "+0.00"] in rows
    assert ["b", "0", "0", "0.00%", "0.00%", "+0.00"] in rows
    assert output.endswith("second hops 8 of 16 buckets (50.00%)\n")


def test_table_diff(impl: Any, tmp_path: Path) -> None:
    """table diff prints every TableDiff field with its fraction of the buckets."""
    builder = TableBuilder([("a", 1), ("b", 1), ("c", 2)], buckets=16)
    old, new = tmp_path / "old.lbft", tmp_path / "new.lbft"
    old.write_bytes(builder.table.to_bytes())
    builder.drain("c")
    new.write_bytes(builder.table.to_bytes())
    status, output = run(["table", "diff", str(old), str(new)])
    assert status == 0
    assert output.splitlines() == [
        f"old  {old}: tcp, 16 buckets, 3 servers, generation 0",
        f"new  {new}: tcp, 16 buckets, 3 servers, generation 1",
        "",
        "slots                 16          buckets compared",
        "moved                  8  50.00%  new flows go to another server",
        "first hop changed      8  50.00%",
        "second hop changed     8  50.00%",
        "broken                 0   0.00%  established connections lose their server",
        "previous hop dropped   0   0.00%  connections older than the last change lose theirs",
    ]


def test_table_build_show_diff_round_trip(impl: Any, tmp_path: Path) -> None:
    """Tables built by the command line read back through show and diff, and diff reports what
    lbkit.forwarding.diff says about the same two tables."""
    first, second = tmp_path / "1.lbft", tmp_path / "2.lbft"
    run(["table", "build", "--servers", "a,b,c", "--weights", "1,2,3", "-o", str(first)])
    run(["table", "build", "--servers", "a,b,c,d", "--weights", "1,2,3,4", "-o", str(second)])
    for path in (first, second):
        assert run(["table", "show", str(path)])[0] == 0
    status, output = run(["table", "diff", str(first), str(second)])
    change = diff(
        ForwardingTable.from_bytes(first.read_bytes()),
        ForwardingTable.from_bytes(second.read_bytes()),
    )
    assert status == 0
    for label, count in [
        ("moved", change.moved),
        ("first hop changed", change.first_hop_changed),
        ("second hop changed", change.second_hop_changed),
        ("broken", change.broken),
        ("previous hop dropped", change.previous_hop_dropped),
    ]:
        (line,) = [line for line in output.splitlines() if line.startswith(f"{label}  ")]
        assert line.split()[len(label.split()) : len(label.split()) + 2] == [
            str(count),
            f"{count / change.slots:.2%}",
        ]
    _, same = run(["table", "diff", str(first), str(first)])
    assert ["moved", "0", "0.00%", "new", "flows", "go", "to", "another", "server"] in [
        line.split() for line in same.splitlines()
    ]


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (
            ["--servers", "a,b", "--weights", "1,x"],
            2,
            "lbkit table build: error: --weights value 'x' is not a number",
        ),
        (
            ["--servers", "a,b,c", "--weights", "1,2"],
            2,
            "lbkit table build: error: --weights has 2 values for 3 servers; give one weight per server",
        ),
        (
            ["--servers", "a,b", "--weights", "1"],
            2,
            "lbkit table build: error: --weights has 1 value for 2 servers",
        ),
        (
            ["--servers", "a,,b"],
            2,
            "lbkit table build: error: --servers 'a,,b' has an empty server id",
        ),
        (
            ["--servers", "a", "--protocol", "sctp"],
            2,
            "lbkit table build: error: argument --protocol: invalid choice: 'sctp'",
        ),
        (
            ["--servers", "a", "--buckets", "many"],
            2,
            "lbkit table build: error: argument --buckets: invalid int value: 'many'",
        ),
        (
            ["--servers", "a,b", "--weights", "1,-1"],
            1,
            "lbkit: error: weights['b'] is -1.0; weights must be finite and >= 0",
        ),
        (
            ["--servers", "a,b", "--weights", "nan,1"],
            1,
            "lbkit: error: weights['a'] is nan; weights must be finite and >= 0",
        ),
        (
            ["--servers", "a,b", "--weights", "0,0"],
            1,
            "lbkit: error: weights are all zero; at least one weight must be > 0",
        ),
        (
            ["--servers", "a,a"],
            1,
            "lbkit: error: weights names server 'a' twice; server ids must be unique",
        ),
        (
            ["--servers", "a", "--buckets", "100"],
            1,
            "lbkit: error: buckets is 100; bucket counts must be powers of two from 2**4 to 2**24",
        ),
        (
            ["--servers", "a,b,c", "--buckets", "16", "--protocol", "udp", "--seed", "-1"],
            1,
            "lbkit: error: seed is -1; it must be in 0..4294967295",
        ),
    ],
)
def test_table_build_errors(
    argv: list[str], status: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """table build refuses bad servers and weights with one line: 2 for usage, 1 for values."""
    output = tmp_path / "t.lbft"
    code, err = fail(["table", "build", *argv, "-o", str(output)], capsys)
    assert code == status
    assert err.startswith(message), err
    assert not output.exists()


def test_table_file_errors(impl: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing, unreadable, unwritable, truncated, altered and foreign files are one-line errors
    with status 1 that name the file."""
    good = tmp_path / "good.lbft"
    run(["table", "build", "--servers", "a,b", "--buckets", "16", "-o", str(good)])
    blob = good.read_bytes()
    missing = tmp_path / "missing.lbft"
    truncated = tmp_path / "truncated.lbft"
    truncated.write_bytes(blob[:-1])
    altered = tmp_path / "altered.lbft"
    altered.write_bytes(blob[:50] + bytes([blob[50] ^ 1]) + blob[51:])
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("not a table, but long enough to look like a header at first sight\n")
    cases = [
        (["table", "show", str(missing)], f"cannot read {missing}: No such file or directory"),
        (["table", "show", str(tmp_path)], f"cannot read {tmp_path}: Is a directory"),
        (["table", "diff", str(good), str(missing)], f"cannot read {missing}: "),
        (["table", "show", str(truncated)], f"{truncated}: table blob is {len(blob) - 1} bytes"),
        (["table", "diff", str(altered), str(good)], f"{altered}: table blob fails its checksum"),
        (["table", "show", str(foreign)], f"{foreign}: table blob starts with b'not '"),
        (
            ["table", "build", "--servers", "a", "-o", str(missing / "t.lbft")],
            f"cannot write {missing / 't.lbft'}: No such file or directory",
        ),
    ]
    for argv, message in cases:
        code, err = fail(argv, capsys)
        assert code == 1
        assert err.startswith(f"lbkit: error: {message}"), err


def test_table_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    """`lbkit table` alone is a usage error."""
    code, err = fail(["table"], capsys)
    assert code == 2
    assert err.startswith("lbkit table: error: the following arguments are required: ACTION")


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
