"""The lbkit command line: info, hash, table, subset, health, demo, --version, and one-line errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lbkit
from lbkit.cli import main
from lbkit.forwarding import ForwardingTable, TableBuilder, diff
from lbkit.hashing import flow_key, hash_key
from lbkit.subsetting import (
    ClassicSubsetting,
    RendezvousSubsetting,
    Ringsteady,
    balance,
    compare,
    plan_event_loops,
)


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    status = main(argv, out=out)
    return status, out.getvalue()


_demo_runs: dict[str, tuple[int, str]] = {}


def demo(impl: Any) -> tuple[int, str]:
    """``lbkit demo`` on ``impl``'s kernels, run once per flavour: the tour is deterministic
    (a test below checks that), and the tests of its parts read the same output."""
    if impl.name not in _demo_runs:
        _demo_runs[impl.name] = run(["demo"])
    return _demo_runs[impl.name]


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
    status, output = demo(impl)
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
        "9. Subsets per event loop",
        "10. Subsets across frontends",
        "11. ",
        "12. Steering",
        "13. Waiting room",
    )
    positions = [output.index(section) for section in sections]
    assert positions == sorted(positions)
    assert "False" not in output
    assert output.count(": True") == 3


def test_demo_forwarding_breaks_no_connection(impl: Any) -> None:
    """The forwarding part of the demo reports no broken connection for any change it makes,
    and Maglev breaking what it moves."""
    _, output = demo(impl)
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


def test_demo_subsetting(impl: Any) -> None:
    """The subsetting part of the demo shows Zuul's plan for 400 origins on 32 loops, and
    Ringsteady adding a backend with the least churn where classic subsetting reshuffles."""
    _, output = demo(impl)
    subsetting = output[output.index("9. Subsets per event loop") :]
    assert (
        "8 subsets of 50 origins, each used by 4 loops: 1,600 connections instead of 12,800 "
        "(8x fewer)" in subsetting
    )
    assert "one origin replaced: 4 loops (one subset) open a connection, not all 32" in subsetting
    assert "F*k/B = 29.7" in subsetting
    report = compare(100, frontends=300, subset_sizes=[10])
    rows = [line.split() for line in subsetting.splitlines()]
    for row in report.rows:
        added = [
            row.algorithm,
            str(row.added.frontends_changed),
            str(row.added.max_members_changed),
            str(row.added.connections_created),
            f"{row.added.relative:.2f}x",
        ]
        shares = [
            row.algorithm,
            f"{row.balance.max_over_mean:.3f}",
            f"{row.balance.min_over_mean:.3f}",
            str(row.balance.spread),
            f"{row.balance.utilisation:.3f}",
        ]
        assert added in rows
        assert shares in rows
    ringsteady = report.row("ringsteady", 10)
    assert ringsteady.added.max_members_changed == 1
    assert report.row("classic", 10).added.relative > 10 * ringsteady.added.relative


def test_demo_is_deterministic(impl: Any) -> None:
    """The same seed prints the same tour."""
    assert run(["demo", "--seed", "2026"]) == demo(impl)


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


def subset_lines(output: str) -> list[str]:
    """The listed subsets of `lbkit subset`, as "FRONTEND  IDS" lines without padding."""
    lines = output.splitlines()
    start = lines.index("frontend  subset") + 1
    listed = []
    for line in lines[start:]:
        if not line or line.startswith("..."):
            break
        listed.append(" ".join(line.split()))
    return listed


def test_subset_lists_subsets_and_metrics(impl: Any) -> None:
    """`lbkit subset` lists the first subsets of a Ringsteady ring and its balance, churn and
    diversity."""
    status, output = run(["subset", "--backends", "12", "--frontends", "10", "--size", "3"])
    ring = Ringsteady(range(12), subset_size=3, frontends=10)
    assert status == 0
    assert output.splitlines()[0] == (
        "ringsteady: 12 backends (ids 0..11), 10 frontends, subset size 3"
    )
    expected = [f"{f} {' '.join(map(str, ring.subset_for(f)))}" for f in range(8)]
    assert subset_lines(output) == expected
    assert "... 2 more (--show all lists every subset)" in output
    shares = balance(ring)
    rows = [line.split() for line in output.splitlines()]
    assert ["max/mean", f"{shares.max_over_mean:.3f}", "(busiest", "backend:", "3)"] in rows
    assert ["min/mean", f"{shares.min_over_mean:.3f}", "(idlest", "backend:", "2)"] in rows
    assert ["max-min", "1"] in rows
    assert ["utilisation", f"{shares.utilisation:.3f}", "(mean/max)"] in rows
    assert "balance: connections per backend, mean F*k/B = 2.50" in output
    # One backend more or fewer changes each affected subset by one member; frontends none.
    assert ["+1", "backend", "(12)", "2", "1", "2", "2.3", "0.87"] in rows
    assert ["-1", "backend", "(6)", "2", "1", "2", "2.5", "0.80"] in rows
    assert ["+1", "frontend", "0", "0", "0", "0", "-"] in rows
    assert ["-1", "frontend", "0", "0", "0", "0", "-"] in rows
    assert output.endswith("diversity: 10 distinct subsets; at most 1 frontend uses one\n")


@pytest.mark.parametrize("show", ["all", "0", "3", "50"])
def test_subset_show(impl: Any, show: str) -> None:
    """--show lists that many subsets (all of them for 'all', or when there are fewer)."""
    _, output = run(
        ["subset", "--backends", "20", "--frontends", "12", "--size", "4", "--show", show]
    )
    count = {"all": 12, "0": 0, "3": 3, "50": 12}[show]
    if count:
        assert len(subset_lines(output)) == count
    else:
        assert "frontend  subset" not in output
    assert ("more (--show all lists every subset)" in output) == (0 < count < 12)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("ringsteady", Ringsteady(range(30), subset_size=5, frontends=40)),
        ("ringsteady-rank", Ringsteady(range(30), subset_size=5, frontends=40, scaling="rank")),
        ("classic", ClassicSubsetting(range(30), subset_size=5, frontends=40)),
        ("rendezvous", RendezvousSubsetting(range(30), subset_size=5, frontends=40)),
    ],
)
def test_subset_algorithms(impl: Any, algorithm: str, expected: Any) -> None:
    """--algorithm picks the algorithm whose subsets are listed and measured."""
    argv = ["subset", "--backends", "30", "--frontends", "40", "--size", "5"]
    status, output = run([*argv, "--algorithm", algorithm, "--show", "all"])
    assert status == 0
    assert output.startswith(f"{algorithm}: 30 backends")
    assert subset_lines(output) == [
        f"{f} {' '.join(map(str, subset))}" for f, subset in enumerate(expected.subsets())
    ]
    shares = balance(expected)
    assert f"  max-min      {shares.spread}\n" in output


def test_subset_seed(impl: Any) -> None:
    """--seed shuffles Ringsteady's initial order, and seeds the baselines."""
    argv = ["subset", "--backends", "16", "--frontends", "16", "--size", "4", "--show", "all"]
    _, shuffled = run([*argv, "--seed", "7"])
    ring = Ringsteady(range(16), subset_size=4, frontends=16, seed=7)
    assert shuffled.splitlines()[0].endswith("subset size 4, seed 7")
    assert subset_lines(shuffled) == [
        f"{f} {' '.join(map(str, subset))}" for f, subset in enumerate(ring.subsets())
    ]
    _, classic = run([*argv, "--algorithm", "classic", "--seed", "3"])
    expected = ClassicSubsetting(range(16), subset_size=4, frontends=16, seed=3)
    assert subset_lines(classic)[0] == f"0 {' '.join(map(str, expected.subset_for(0)))}"


def test_subset_where_no_backend_can_go(impl: Any) -> None:
    """With every backend in every subset, the -1 backend row says it is impossible, and one
    frontend has no -1 frontend row."""
    status, output = run(["subset", "--backends", "3", "--frontends", "1", "--size", "3"])
    assert status == 0
    assert output.startswith("ringsteady: 3 backends (ids 0..2), 1 frontend, subset size 3")
    assert ["-1", "backend", "-", "-", "-", "-", "-"] in [
        line.split() for line in output.splitlines()
    ]
    assert "(no backend can be removed: every backend is in every subset)" in output
    assert "-1 frontend" not in output


def test_subset_compare_prints_the_report(impl: Any) -> None:
    """`lbkit subset compare` prints lbkit.subsetting.compare's rendering."""
    argv = ["subset", "compare", "--backends", "40", "--frontends", "120", "--sizes", "3,10"]
    status, output = run([*argv, "--seed", "2"])
    assert status == 0
    assert output == compare(40, frontends=120, subset_sizes=[3, 10], seed=2).render() + "\n"
    _, some = run([*argv, "--algorithms", "classic, ringsteady"])
    expected = compare(
        40, frontends=120, subset_sizes=[3, 10], algorithms=["classic", "ringsteady"]
    )
    assert some == expected.render() + "\n"


def test_subset_compare_defaults(impl: Any) -> None:
    """Without options, compare measures 100 backends and 300 frontends at sizes 3, 10, 20."""
    _, output = run(["subset", "compare"])
    assert output == compare(100, frontends=300, subset_sizes=[3, 10, 20]).render() + "\n"


def test_subset_loops_zuul(impl: Any) -> None:
    """`lbkit subset loops` prints Zuul's example: 400 origins on 32 loops make 8 subsets of 50,
    each used by 4 loops."""
    status, output = run(["subset", "loops", "--origins", "400", "--loops", "32"])
    assert status == 0
    assert output.splitlines() == [
        "400 origins, 32 event loops, ideal subset size 25..50",
        "  subsets      8 of 50 origins",
        "  replication  4 loops per subset",
        "  connections  1,600 (all-to-all: 12,800; 8.0x fewer)",
        "",
        "subset r holds the origins whose stable index i has i mod 8 == r; "
        "loop j uses subset j mod 8",
        "subset  origins  loops",
        *[f"     {r}       50  {r} {r + 8} {r + 16} {r + 24}" for r in range(8)],
    ]


def test_subset_loops_uneven(impl: Any) -> None:
    """Uneven plans say which subsets serve a loop more, and long loop lists are cut short."""
    _, output = run(["subset", "loops", "--origins", "300", "--loops", "6"])
    assert "  subsets      4 of 75 origins\n" in output
    assert "  replication  1 loop per subset (2 of the subsets serve one loop more)\n" in output
    assert output.endswith("     2       75  2\n     3       75  3\n")
    _, output = run(
        [
            "subset",
            "loops",
            "--origins",
            "101",
            "--loops",
            "64",
            "--min-size",
            "10",
            "--max-size",
            "20",
        ]
    )
    plan = plan_event_loops(101, loops=64, min_size=10, max_size=20)
    assert f"  subsets      {plan.subset_count} of 13 or 12 origins\n" in output
    assert "     0       13  0 8 16 24 32 40 48 56\n" in output
    _, output = run(["subset", "loops", "--origins", "3000", "--loops", "1024"])
    assert "     0       47  0 64 128 192 256 320 384 448 ... 960 (16 loops)\n" in output
    _, output = run(["subset", "loops", "--origins", "0", "--loops", "4"])
    assert "  subsets      1 of 0 origins\n" in output
    assert "  connections  0 (all-to-all: 0; none)\n" in output


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (
            ["--backends", "10", "--frontends", "5", "--size", "20"],
            1,
            "lbkit: error: subset_size is 20 but there are 10 backends; a subset cannot be "
            "larger than the set of backends",
        ),
        (
            ["--backends", "10", "--frontends", "5", "--size", "0"],
            1,
            "lbkit: error: subset_size is 0; it must be at least 1",
        ),
        (
            ["--backends", "0", "--frontends", "5", "--size", "1"],
            1,
            "lbkit: error: --backends is 0; it must be in 1..1048576",
        ),
        (
            ["--backends", "10", "--frontends", "-3", "--size", "1"],
            1,
            "lbkit: error: --frontends is -3; it must be in 1..1048576",
        ),
        (
            ["--backends", "100000", "--frontends", "1000000", "--size", "100"],
            1,
            "lbkit: error: --frontends * --size is 100,000,000; at most 16,777,216 connections "
            "can be listed and measured",
        ),
        (
            ["--backends", "ten", "--frontends", "5", "--size", "2"],
            2,
            "lbkit subset: error: argument --backends: invalid int value: 'ten'",
        ),
        (
            ["--backends", "10", "--frontends", "5", "--size", "2.5"],
            2,
            "lbkit subset: error: argument --size: invalid int value: '2.5'",
        ),
        (
            ["--backends", "10", "--frontends", "5", "--size", "2", "--algorithm", "maglev"],
            2,
            "lbkit subset: error: argument --algorithm: invalid choice: 'maglev'",
        ),
        (
            ["--backends", "10", "--frontends", "5", "--size", "2", "--show", "some"],
            2,
            "lbkit subset: error: argument --show: 'some' is neither 'all' nor an integer >= 0",
        ),
        (
            ["--backends", "10", "--size", "2"],
            2,
            "lbkit subset: error: the following arguments are required: --frontends "
            "(or an action: compare, loops)",
        ),
        (
            [],
            2,
            "lbkit subset: error: the following arguments are required: --backends, "
            "--frontends, --size",
        ),
        (
            ["--seed", "3", "compare"],
            2,
            "lbkit subset: error: --seed before the action 'compare' is an option of "
            "`lbkit subset` alone; give the action's options after it",
        ),
        (
            ["compare", "--sizes", "3,x"],
            2,
            "lbkit subset compare: error: --sizes value 'x' is not an integer",
        ),
        (
            ["compare", "--algorithms", "ringsteady,maglev"],
            2,
            "lbkit subset compare: error: --algorithms value 'maglev' is not one of ringsteady, "
            "ringsteady-rank, classic, rendezvous",
        ),
        (
            ["compare", "--backends", "10", "--sizes", "10"],
            1,
            "lbkit: error: subset_sizes item is 10; it must be in 1..9",
        ),
        (
            ["compare", "--backends", "1"],
            1,
            "lbkit: error: backends is 1; it must be in 2..1048576",
        ),
        (
            ["loops", "--origins", "400"],
            2,
            "lbkit subset loops: error: the following arguments are required: --loops",
        ),
        (
            ["loops", "--origins", "x", "--loops", "4"],
            2,
            "lbkit subset loops: error: argument --origins: invalid int value: 'x'",
        ),
        (
            ["loops", "--origins", "400", "--loops", "0"],
            1,
            "lbkit: error: loops is 0; it must be in 1..65536",
        ),
        (
            ["loops", "--origins", "400", "--loops", "8", "--min-size", "30"],
            1,
            "lbkit: error: max_size is 50 and min_size is 30; max_size must be >= 2 * min_size",
        ),
    ],
)
def test_subset_errors(
    argv: list[str], status: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """lbkit subset refuses bad counts, sizes and names with one line: 2 for usage, 1 for
    values lbkit rejects."""
    code, err = fail(["subset", *argv], capsys)
    assert code == status
    assert err.startswith(message), err


def health_document() -> dict[str, Any]:
    """A group with a critical, a monitoring-only and a disabled member, regions, and results
    of which one is stale."""

    def result(
        monitor: str, endpoint: str, location: str, up: bool, rtt: float | None, at: float
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "monitor": monitor,
            "endpoint": endpoint,
            "location": location,
            "up": up,
            "observed_at": at,
        }
        if rtt is not None:
            entry["rtt"] = rtt
        return entry

    return {
        "group": {
            "members": [
                {"monitor": "http", "must_be_healthy": True},
                {"monitor": "tcp"},
                {"monitor": "db"},
                {"monitor": "trace", "monitoring_only": True},
                {"monitor": "legacy", "enabled": False},
            ],
            "max_age": 60,
            "threshold": 0.5,
            "unknown_votes": "abstain",
            "critical_votes_in_majority": False,
            "regions": {"ams": "eu", "fra": "eu", "iad": "us"},
        },
        "now": 1000,
        "results": [
            result("http", "web-1", "ams", True, 0.012, 990),
            result("tcp", "web-1", "ams", True, 0.010, 990),
            result("db", "web-1", "ams", False, None, 990),
            result("trace", "web-1", "ams", False, 0.5, 990),
            result("legacy", "web-1", "ams", False, None, 990),
            result("http", "web-1", "fra", False, None, 995),
            result("tcp", "web-1", "fra", True, 0.016, 995),
            result("http", "web-1", "iad", True, 0.085, 930),
            result("tcp", "web-1", "iad", True, 0.081, 992),
            result("db", "web-1", "iad", True, 0.090, 992),
            result("tcp", "web-2", "iad", False, None, 998),
        ],
    }


HEALTH_OUTPUT = [
    "members   http (critical), tcp, db, trace (monitoring only), legacy (disabled)",
    "location  DOWN if a critical member is down, else if more than half of the votes are down",
    "endpoint  UP if more than 0.5 of the regions (regions first) are UP",
    "results   11 at now=1000; unknown after 60 s, then they abstain",
    "",
    "web-1: DOWN, latency 37.5 ms, quorum-down: 1 of 2 regions are up (not more than 0.5)",
    "  regions: eu down (1 of 2 locations up), us up (1 of 1 locations up)",
    "  location  region  verdict  latency  reason",
    "  ams       eu      up       11.0 ms  majority-up: 1 of 2 voting results are down "
    "(not more than half)",
    "  fra       eu      down     16.0 ms  critical-down: critical member 'http' reports down",
    "  iad       us      up       85.5 ms  majority-up: 0 of 2 voting results are down "
    "(not more than half)",
    "",
    "web-2: DOWN, latency -, quorum-down: 0 of 1 regions are up (not more than 0.5)",
    "  regions: eu unknown (no location has a verdict), us down (0 of 1 locations up)",
    "  location  region  verdict  latency  reason",
    "  ams       eu      unknown        -  no-votes: no voting member has a current result",
    "  fra       eu      unknown        -  no-votes: no voting member has a current result",
    "  iad       us      down           -  majority-down: 1 of 1 voting results are down "
    "(more than half)",
]


def write_json(path: Path, document: object) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_health_eval_prints_verdicts_reasons_and_latencies(impl: Any, tmp_path: Path) -> None:
    """health eval prints the rules, then each endpoint's verdict, latency and reason, its
    regions and one aligned row per location; the stale HTTP result at iad does not count,
    monitoring-only and disabled members never vote nor count in the latency."""
    path = write_json(tmp_path / "health.json", health_document())
    status, output = run(["health", "eval", path])
    assert status == 0
    assert output.splitlines() == HEALTH_OUTPUT


def test_health_eval_now(impl: Any, tmp_path: Path) -> None:
    """--now overrides the file's now; without either, the latest observed_at is now."""
    document = health_document()
    path = write_json(tmp_path / "health.json", document)
    _, later = run(["health", "eval", path, "--now", "1100"])
    assert "results   11 at now=1100; unknown after 60 s, then they abstain" in later
    assert "web-1: UNKNOWN, latency -, no-verdicts: none of the regions has a verdict" in later
    del document["now"]
    path = write_json(tmp_path / "latest.json", document)
    _, latest = run(["health", "eval", path])
    assert "results   11 at now=998; " in latest


def test_health_eval_without_regions_or_results(impl: Any, tmp_path: Path) -> None:
    """Without regions the quorum is over locations and there is no region column; a file
    without results prints the rules and no endpoint."""
    document = health_document()
    del document["group"]["regions"]
    document["group"]["critical_votes_in_majority"] = True
    document["group"]["unknown_votes"] = "down"
    path = write_json(tmp_path / "health.json", document)
    _, output = run(["health", "eval", path])
    lines = output.splitlines()
    assert lines[1].endswith("more than half of the votes are down (critical members vote too)")
    assert lines[2] == "endpoint  UP if more than 0.5 of the locations are UP"
    assert lines[3].endswith("then they count as down")
    assert "  location  verdict  latency  reason" in lines
    assert "regions" not in output
    document["results"] = []
    path = write_json(tmp_path / "empty.json", document)
    status, output = run(["health", "eval", path])
    assert status == 0
    assert (
        output.splitlines()[-1]
        == "results   0 at now=1000; unknown after 60 s, then they count as down"
    )


def _change(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the value at a dotted ``path`` (list indices as numbers)
    replaced, or deleted when ``value`` is ``_DELETE``."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    *parents, last = path.split(".")
    node: Any = copy
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key_: Any = int(last) if isinstance(node, list) else last
    if value is _DELETE:
        del node[key_]
    else:
        node[key_] = value
    return copy


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("group", _DELETE, "$ lacks the key 'group'"),
        ("results", {}, "$.results is an object; it must be a list"),
        ("extra", 1, "$ has the unknown key 'extra'; the keys are group, results, now"),
        ("now", "soon", "$.now is a string; it must be a number"),
        ("group.members", [], "$.group.members is empty; a group needs at least one member"),
        (
            "group.members.1.monitor",
            5,
            "$.group.members[1].monitor is a number; it must be a string",
        ),
        ("group.members.1.critical", True, "$.group.members[1] has the unknown key 'critical'"),
        ("group.members.1", "tcp", "$.group.members[1] is a string; it must be an object"),
        ("group.members.1.monitor", _DELETE, "$.group.members[1] lacks the key 'monitor'"),
        (
            "group.members.3.must_be_healthy",
            True,
            "$.group.members[3]: member 'trace' has must_be_healthy=True and monitoring_only=True",
        ),
        (
            "group.members.1.monitor",
            "http",
            "$.group.members[1] repeats monitor 'http'; each monitor may be a member once",
        ),
        ("group.max_members", 4, "$.group.members has 5 members; at most max_members=4"),
        ("group.max_members", 2.5, "$.group.max_members is a number; it must be an integer"),
        ("group.max_age", 0, "$.group.max_age is 0.0; it must be finite and > 0"),
        ("group.threshold", 1, "$.group.threshold is 1.0; it must be in [0, 1)"),
        ("group.unknown_votes", "maybe", "$.group.unknown_votes is 'maybe'; it must be one of"),
        (
            "group.critical_votes_in_majority",
            "yes",
            "$.group.critical_votes_in_majority is a string; it must be a boolean",
        ),
        ("group.regions", ["eu"], "$.group.regions is a list; it must be an object"),
        ("group.regions.ams", 1, "$.group.regions['ams'] is a number; it must be a string"),
        ("group.regions.ams", _DELETE, "$.results[0].location is 'ams'; regions does not map it"),
        ("results.0", [], "$.results[0] is a list; it must be an object"),
        ("results.0.up", "yes", "$.results[0].up is a string; it must be a boolean"),
        ("results.0.up", None, "$.results[0].up is null; it must be a boolean"),
        ("results.0.observed_at", _DELETE, "$.results[0] lacks the key 'observed_at'"),
        ("results.0.observed_at", 1e400, "$.results[0].observed_at is inf; it must be a finite"),
        ("results.0.rtt", -0.5, "$.results[0].rtt is -0.5; it must be None or finite and >= 0"),
        ("results.0.monitor", "dns", "$.results[0].monitor is 'dns'; it is not a member"),
        ("results.0.observed_at", 1010, "$.results[0].observed_at is 1010, 10 s after now"),
    ],
)
def test_health_eval_schema_and_value_errors(
    impl: Any,
    path: str,
    value: Any,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A document of the wrong shape, or with values lbkit rejects, is one line naming the file
    and the JSON path, with status 1."""
    file = tmp_path / "bad.json"
    # json.dumps writes inf as Infinity, which is not JSON; 1e400 is, and reads as inf.
    text = json.dumps(_change(health_document(), path, value)).replace("Infinity", "1e400")
    file.write_text(text, encoding="utf-8")
    code, err = fail(["health", "eval", str(file)], capsys)
    assert code == 1
    assert err.startswith(f"lbkit: error: {file}: {message}"), err


def test_health_eval_file_errors(
    impl: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing files, directories, bytes that are not UTF-8, text that is not JSON and JSON's
    non-standard NaN are one-line errors with status 1; so is a non-finite --now."""
    missing = tmp_path / "missing.json"
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe")
    broken = tmp_path / "broken.json"
    broken.write_text('{"group": ', encoding="utf-8")
    nan = tmp_path / "nan.json"
    nan.write_text("NaN", encoding="utf-8")
    good = write_json(tmp_path / "good.json", health_document())
    cases = [
        ([str(missing)], f"cannot read {missing}: No such file or directory"),
        ([str(tmp_path)], f"cannot read {tmp_path}: Is a directory"),
        ([str(binary)], f"{binary}: not UTF-8 text"),
        ([str(broken)], f"{broken}: not valid JSON: Expecting value: line 1 column 11"),
        ([str(nan)], f"{nan}: not valid JSON: NaN is not a JSON number"),
        ([good, "--now", "nan"], f"{good}: now is nan; it must be finite"),
    ]
    for argv, message in cases:
        code, err = fail(["health", "eval", *argv], capsys)
        assert code == 1
        assert err.startswith(f"lbkit: error: {message}"), err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["health"], "lbkit health: error: the following arguments are required: ACTION"),
        (
            ["health", "eval"],
            "lbkit health eval: error: the following arguments are required: FILE",
        ),
        (
            ["health", "eval", "x.json", "--now", "later"],
            "lbkit health eval: error: argument --now: invalid float value: 'later'",
        ),
        (["health", "check", "x.json"], "lbkit health: error: argument ACTION: invalid choice"),
    ],
)
def test_health_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage mistakes exit 2 with one line naming the subcommand."""
    code, err = fail(argv, capsys)
    assert code == 2
    assert err.startswith(message), err


def test_health_eval_help_documents_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    """health eval --help shows the JSON format with every key."""
    with pytest.raises(SystemExit) as exit_:
        main(["health", "eval", "--help"], out=io.StringIO())
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for key in (
        *health_document()["group"],
        "must_be_healthy",
        "monitoring_only",
        "enabled",
        "max_members",
        "future_tolerance",
        "observed_at",
        "rtt",
        "--now",
    ):
        assert key in text, key


def test_demo_health(impl: Any) -> None:
    """The health part of the demo: lhr's failing critical HTTP check takes lhr DOWN with its
    reason, web-1 stays UP by quorum of regions, and the flapping check never flips web-2
    through Hysteresis."""
    _, output = demo(impl)
    health = output[output.index("11. Quorum health") : output.index("12. Steering")]
    lines = [line.strip() for line in health.strip().splitlines()]
    assert (
        "lhr       eu      down      13.0 ms  critical-down: critical member 'http' reports down"
        in lines
    )
    ups = [line for line in lines if line.split()[2:3] == ["up"] and "regions" not in line]
    assert len(ups) == 5
    assert all("majority-up: 0 of 2 voting results are down" in line for line in ups)
    assert "regions: eu up (2 of 3 locations up), us up (3 of 3 locations up)" in lines
    assert "web-1: UP, latency 61.0 ms, quorum-up: 2 of 2 regions are up (more than 0.5)" in lines
    assert lines[-1] == (
        "the raw verdict flips 6 times; through Hysteresis(consecutive_up=2, "
        "consecutive_down=2) 0 times (web-2 stays UP)"
    )


def test_demo_steering(impl: Any) -> None:
    """The steering part of the demo: weighted shares near their expectation, a rule's fixed
    response, the panic guard failing open, then the fallback pool with its health ignored."""
    _, output = demo(impl)
    steering = output[output.index("12. Steering") : output.index("13. Waiting room")]
    lines = [line.strip() for line in steering.strip().splitlines()]
    shares = dict(part.rsplit(" ", 2)[:2] for part in lines[2].split(", "))
    expected = {"eu-1": 18.75, "eu-2": 18.75, "eu-3": 37.5, "us-1": 12.5, "us-2": 12.5}
    assert set(shares) == set(expected)
    for name, share in shares.items():
        assert abs(float(share) - expected[name]) < 1.5, name
    assert lines[4] == (
        "GET /legacy/cart: rules: 'maintenance' matched; fixed response 503 from rule 'maintenance'"
    )
    assert "panic: healthy fraction 0.333 < panic_threshold 0.5, failing open" in lines[6]
    assert lines[-1].startswith("us/us-")
    assert "fallback: no pool qualifies; 'us' serves, its health ignored" in lines[-1]


def test_demo_waitingroom(impl: Any) -> None:
    """The waiting-room part of the demo: a simulated spike of 2,000 users never lets in more
    than 100 a minute or 400 at once, FIFO serves arrivals in order where random does not,
    the estimate errors are reported, and an altered cookie is refused."""
    _, output = demo(impl)
    lines = [line.strip() for line in output[output.index("13. Waiting room") :].splitlines()]
    table = [line.split() for line in lines if line[:3] == "12:" and line[3:5].isdigit()]
    assert [row[0] for row in table] == [f"12:{minute:02d}" for minute in range(10)]
    assert sum(int(row[1]) for row in table) == 2000
    assert all(int(row[2]) == 100 for row in table)
    queued = [int(row[3]) for row in table]
    assert queued == sorted(queued)  # arrivals above the admission rate: the queue grows
    fifo_waits = [float(row[4]) for row in table]
    assert fifo_waits == sorted(fifo_waits)
    assert "then no arrivals: 100 let in a minute, and nobody queued by 12:20" in lines
    (limits,) = [line for line in lines if line.startswith("at most ")]
    numbers = [int(word) for word in limits.replace(")", " ").split() if word.isdigit()]
    assert numbers[0] == numbers[2] == 100
    assert max(numbers[1], numbers[3]) <= 400
    (correlation,) = [line for line in lines if line.startswith("rank correlation")]
    fifo_rho, random_rho = (float(word.rstrip(",")) for word in correlation.split()[-3::2])
    assert fifo_rho > 0.9
    assert random_rho < fifo_rho / 2
    errors = [line for line in lines if line.startswith("the median wait shown vs. the one lived")]
    assert [line.split(",")[1].split()[0] for line in errors] == ["FIFO:", "random:"]
    for line in errors:
        error = int(line.split(": ")[1].split("%")[0])
        assert -25 <= error <= 25, line
    assert lines[-1] == "a cookie is 71 characters of AES-GCM-SIV; one character changed: tampered"


def test_demo_plot_writes_the_heatmaps(tmp_path: Path) -> None:
    """demo --plot DIR writes the waiting room's two heatmaps as PNGs (and makes DIR)."""
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")
    directory = tmp_path / "pictures"
    status, output = run(["demo", "--plot", str(directory)])
    assert status == 0
    for method in ("fifo", "random"):
        path = directory / f"waitingroom-{method}.png"
        assert f"wrote {path}" in output
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5_000
