"""The ``lbkit`` command line: ``--version``, ``info``, ``hash``, ``table`` and ``demo``.

Errors print one line (``lbkit: error: ...``) to stderr and exit with status 2 for a usage
mistake or 1 for a rejected value or a file that cannot be read or written; no traceback.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import lbkit
from lbkit import _kernels
from lbkit.errors import CorruptBlob, LbkitError
from lbkit.forwarding import (
    NO_SERVER,
    PROTOCOLS,
    ForwardingTable,
    TableBuilder,
    TableDiff,
    diff,
    redirect,
)
from lbkit.forwarding.maglev import MaglevTable
from lbkit.hashing import (
    IPV4_FLOW_KEY_SIZE,
    bucket_index,
    flow_key,
    hash_key,
    hash_many,
    hash_packed,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class _FileError(Exception):
    """A file the command line was asked to read or write cannot be (exit status 1)."""


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lbkit",
        description="Load-balancing primitives: inspect, hash, build forwarding tables and "
        "tour what lbkit provides.",
    )
    parser.add_argument("--version", action="version", version=f"lbkit {lbkit.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    commands.add_parser("info", help="version, implementation and which kernels are compiled")

    hash_parser = commands.add_parser(
        "hash",
        help="hash a flow or a key and show its bucket",
        description="Hash a flow (SRC DST SPORT DPORT) or a key (--key / --hex) the way lbkit "
        "tables do, and show the bucket it falls in.",
    )
    hash_parser.add_argument("flow", nargs="*", metavar="SRC DST SPORT DPORT")
    source = hash_parser.add_mutually_exclusive_group()
    source.add_argument("--key", help="a text key, hashed as UTF-8")
    source.add_argument("--hex", help="a binary key written in hexadecimal")
    hash_parser.add_argument("--seed", type=int, default=0, help="murmur3 seed (default 0)")
    hash_parser.add_argument(
        "--buckets", type=int, default=4096, help="power-of-two table size (default 4096)"
    )
    # So that usage mistakes found after parsing are reported by this subcommand's parser.
    hash_parser.set_defaults(subparser=hash_parser)

    _add_table_parser(commands)

    demo_parser = commands.add_parser("demo", help="a short tour of every primitive")
    demo_parser.add_argument("--seed", type=int, default=2026, help="seed of the demo's data")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = sys.stdout if out is None else out
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            _info(out)
        elif args.command == "hash":
            _hash(args, args.subparser, out)
        elif args.command == "table":
            _table(args, args.subparser, out)
        else:
            _demo(args.seed, out)
        out.flush()  # inside the try, so a reader that went away is handled below
    except (LbkitError, _FileError) as error:
        print(f"lbkit: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`lbkit demo | head`): not an error worth a traceback. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return 0


def _info(out: TextIO) -> None:
    print(f"lbkit {lbkit.__version__}", file=out)
    print(f"implementation: {lbkit.IMPLEMENTATION}", file=out)
    if lbkit.FALLBACK_REASON:
        print(f"pure Python because: {lbkit.FALLBACK_REASON}", file=out)
    # What runs and what is installed differ under LBKIT_NO_EXTENSIONS=1; say both.
    running = "compiled" if lbkit.IMPLEMENTATION == "cython" else "pure Python"
    print("kernels:", file=out)
    for name, path in _kernels.compiled_status().items():
        built = f"compiled module {path}" if path else "no compiled module"
        print(f"  {name}: running {running}; {built}", file=out)


def _hash(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    if args.key is not None or args.hex is not None:
        if args.flow:
            parser.error("give either a flow (SRC DST SPORT DPORT) or --key/--hex, not both")
        if args.hex is not None:
            try:
                key = bytes.fromhex(args.hex)
            except ValueError:
                parser.error(f"--hex {args.hex!r} is not hexadecimal")
        else:
            key = args.key.encode("utf-8", "surrogateescape")
    else:
        if len(args.flow) != 4:
            parser.error(f"a flow is SRC DST SPORT DPORT (4 values), got {len(args.flow)}")
        src, dst, sport, dport = args.flow
        key = flow_key(
            src, dst, _parse_port(sport, "SPORT", parser), _parse_port(dport, "DPORT", parser)
        )
    value = hash_key(key, seed=args.seed)
    bucket = bucket_index(value, bucket_count=args.buckets)
    print(f"key     {key.hex()} ({len(key)} bytes)", file=out)
    print(f"hash    {value} (0x{value:08x}, seed {args.seed})", file=out)
    print(f"bucket  {bucket} of {args.buckets}", file=out)


def _parse_port(text: str, name: str, parser: argparse.ArgumentParser) -> int:
    try:
        return int(text)
    except ValueError:
        parser.error(f"{name} {text!r} is not an integer")


def _add_table_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    table_parser = commands.add_parser(
        "table",
        help="build, show and compare forwarding tables",
        description="Build a forwarding table into a blob file, show one, or compare two.",
    )
    actions = table_parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True

    build = actions.add_parser(
        "build",
        help="build a table and write its blob to a file",
        description="Build a forwarding table with lbkit.forwarding.TableBuilder and write it "
        "as a blob (ForwardingTable.to_bytes) to FILE.",
    )
    build.add_argument(
        "--servers", required=True, metavar="ID,ID,...", help="server ids, comma-separated"
    )
    build.add_argument(
        "--weights", metavar="W,W,...", help="one weight per server (default 1 each)"
    )
    build.add_argument(
        "--buckets",
        type=int,
        help="power-of-two bucket count (default: at least --min-buckets-per-server each)",
    )
    build.add_argument("--protocol", choices=PROTOCOLS, default="tcp", help="default tcp")
    build.add_argument("--seed", type=int, default=0, help="layout seed (default 0)")
    build.add_argument(
        "--hash-seed", type=int, default=0, help="murmur3 seed of the lookups (default 0)"
    )
    build.add_argument(
        "--min-buckets-per-server",
        type=int,
        default=100,
        metavar="M",
        help="buckets per server the automatic size guarantees (default 100)",
    )
    build.add_argument("-o", "--output", required=True, metavar="FILE", help="the blob to write")
    build.set_defaults(subparser=build)

    show = actions.add_parser(
        "show",
        help="describe a table blob",
        description="Read a table blob and show its header and each server's share.",
    )
    show.add_argument("file", metavar="FILE")
    show.set_defaults(subparser=show)

    compare = actions.add_parser(
        "diff",
        help="what replacing one table with another does to traffic",
        description="Compare two table blobs flow for flow (lbkit.forwarding.diff).",
    )
    compare.add_argument("old", metavar="OLD")
    compare.add_argument("new", metavar="NEW")
    compare.set_defaults(subparser=compare)


def _table(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    if args.action == "build":
        _table_build(args, parser, out)
    elif args.action == "show":
        _table_show(args.file, out)
    else:
        _table_diff(args.old, args.new, out)


def _table_build(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    servers = [server.strip() for server in args.servers.split(",")]
    if "" in servers:
        parser.error(f"--servers {args.servers!r} has an empty server id")
    if args.weights is None:
        weights = [1.0] * len(servers)
    else:
        weights = [_parse_weight(text, parser) for text in args.weights.split(",")]
        if len(weights) != len(servers):
            values = "value" if len(weights) == 1 else "values"
            parser.error(
                f"--weights has {len(weights)} {values} for {len(servers)} servers; "
                "give one weight per server"
            )
    # Pairs rather than a dict, so lbkit itself reports a server named twice.
    builder = TableBuilder(
        list(zip(servers, weights, strict=True)),
        buckets=args.buckets,
        protocol=args.protocol,
        min_buckets_per_server=args.min_buckets_per_server,
        seed=args.seed,
        hash_seed=args.hash_seed,
    )
    table = builder.table
    blob = table.to_bytes()
    try:
        Path(args.output).write_bytes(blob)
    except OSError as error:
        raise _FileError(f"cannot write {args.output}: {error.strerror or error}") from None
    print(
        f"wrote {args.output}: {table.protocol} table, {table.bucket_count} buckets, "
        f"{len(table.servers)} servers, generation {table.generation} ({len(blob):,} bytes)",
        file=out,
    )


def _parse_weight(text: str, parser: argparse.ArgumentParser) -> float:
    try:
        return float(text)
    except ValueError:
        parser.error(f"--weights value {text.strip()!r} is not a number")


def _read_table(path: str) -> ForwardingTable:
    try:
        blob = Path(path).read_bytes()
    except OSError as error:
        raise _FileError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return ForwardingTable.from_bytes(blob)
    except CorruptBlob as error:
        raise CorruptBlob(f"{path}: {error}") from None


def _table_show(path: str, out: TextIO) -> None:
    table = _read_table(path)

    def say(line: str = "") -> None:
        print(line, file=out)

    say(f"protocol    {table.protocol}")
    say(f"buckets     {table.bucket_count}")
    say(f"generation  {table.generation}")
    say(f"hash seed   {table.hash_seed}")
    say()
    counts = table.bucket_counts()
    total = sum(table.weights.values())  # > 0: tables refuse all-zero weights
    errors = table.share_errors()
    rows: list[tuple[str, ...]] = [
        ("server", "weight", "buckets", "share", "exact share", "share error")
    ]
    for server in table.servers:
        weight = table.weights[server]
        rows.append(
            (
                str(server),
                f"{weight:g}",
                str(counts[server]),
                f"{counts[server] / table.bucket_count:.2%}",
                f"{weight / total:.2%}",
                # `or 0.0` turns a rounded -0.0 into +0.00.
                f"{round(errors[server], 2) or 0.0:+.2f}",
            )
        )
    for line in _columns(rows):
        say(line)
    say()
    occupied = table.bucket_count - table.second_hops.tolist().count(NO_SERVER)
    say(
        f"second hops {occupied} of {table.bucket_count} buckets "
        f"({table.second_hop_occupancy():.2%})"
    )


def _table_diff(old_path: str, new_path: str, out: TextIO) -> None:
    old, new = _read_table(old_path), _read_table(new_path)
    for label, path, table in (("old", old_path, old), ("new", new_path, new)):
        print(
            f"{label}  {path}: {table.protocol}, {table.bucket_count} buckets, "
            f"{len(table.servers)} servers, generation {table.generation}",
            file=out,
        )
    print(file=out)
    for line in _diff_lines(diff(old, new)):
        print(line, file=out)


def _diff_lines(change: TableDiff) -> list[str]:
    def fraction(count: int) -> str:
        return f"{count / change.slots:.2%}"

    rows = [
        ("slots", str(change.slots), "", "buckets compared"),
        ("moved", str(change.moved), fraction(change.moved), "new flows go to another server"),
        (
            "first hop changed",
            str(change.first_hop_changed),
            fraction(change.first_hop_changed),
            "",
        ),
        (
            "second hop changed",
            str(change.second_hop_changed),
            fraction(change.second_hop_changed),
            "",
        ),
        (
            "broken",
            str(change.broken),
            fraction(change.broken),
            "established connections lose their server",
        ),
        (
            "previous hop dropped",
            str(change.previous_hop_dropped),
            fraction(change.previous_hop_dropped),
            "connections older than the last change lose theirs",
        ),
    ]
    return _columns(rows, right=(1, 2))


def _columns(rows: Sequence[Sequence[str]], *, right: Sequence[int] | None = None) -> list[str]:
    """Rows as aligned text: the first column left-aligned, the others right-aligned (or only
    those in ``right``, the rest left-aligned), two spaces apart, no trailing spaces."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for column, cell in enumerate(row):
            aligned_right = column > 0 if right is None else column in right
            cells.append(
                cell.rjust(widths[column]) if aligned_right else cell.ljust(widths[column])
            )
        lines.append("  ".join(cells).rstrip())
    return lines


def _demo(seed: int, out: TextIO) -> None:
    rng = random.Random(seed)

    def say(line: str = "") -> None:
        print(line, file=out)

    say(f"lbkit {lbkit.__version__}: {lbkit.IMPLEMENTATION} kernels")
    say()
    say("1. Flow keys: one connection, one key, whichever way the addresses arrive")
    examples = [
        ("192.0.2.10:51234 -> 198.51.100.7:443", ("192.0.2.10", "198.51.100.7")),
        ("the same, IPv4-mapped IPv6", ("::ffff:192.0.2.10", "::ffff:198.51.100.7")),
        ("[2001:db8::10]:51234 -> [2001:db8:1::7]:443", ("2001:db8::10", "2001:db8:1::7")),
    ]
    for label, (src, dst) in examples:
        key = flow_key(src, dst, 51234, 443)
        shown = key.hex() if len(key) <= 12 else key.hex()[:21] + "..."
        say(f"   {label:<44} {len(key)}-byte key {shown:<24}  hash {hash_key(key):>10}")
    say()

    flows, buckets = 200_000, 4096
    say(f"2. Spread: {flows:,} random IPv4 flows over {buckets} buckets (low bits of the hash)")
    # Random clients of one service: the shape of the traffic an L4 balancer spreads.
    service = bytes([198, 51, 100, 7])
    packed = b"".join(
        flow_key(rng.getrandbits(32).to_bytes(4, "big"), service, rng.randrange(1024, 65536), 443)
        for _ in range(flows)
    )
    hashes = hash_packed(packed, record_size=IPV4_FLOW_KEY_SIZE)
    counts = [0] * buckets
    for value in hashes:
        counts[value & (buckets - 1)] += 1
    mean = flows / buckets
    ideal = (mean * (1 - 1 / buckets)) ** 0.5  # the binomial spread of a perfect hash
    say(
        f"   flows per bucket: mean {mean:.1f}, min {min(counts)}, max {max(counts)}, "
        f"stdev {statistics.pstdev(counts):.1f} (a perfect hash: {ideal:.1f})"
    )
    say()

    sample = 10_000
    say(f"3. Batch hashing agrees with one-at-a-time hashing ({sample:,} flows)")
    size = IPV4_FLOW_KEY_SIZE
    keys = [packed[i * size : (i + 1) * size] for i in range(sample)]
    one_by_one = [hash_key(key) for key in keys]
    same = one_by_one == hash_many(keys).tolist() == hashes[:sample].tolist()
    reference = _kernels.load("pure")["hashing"].hash_packed(memoryview(packed), size, 0)
    say(f"   hash_key per flow == hash_many == hash_packed: {same}")
    say(f"   the pure-Python reference kernels give the same hashes: {reference == hashes}")
    say()
    _demo_forwarding(rng, say)


def _demo_forwarding(rng: random.Random, say: Callable[..., None]) -> None:
    weights: dict[str | int, float] = {"small": 1.0, "medium": 2.0, "large": 3.0, "xl": 4.0}
    builder = TableBuilder(weights)
    table = builder.table
    total = sum(weights.values())
    say(
        f"4. A forwarding table: four servers of capacity 1, 2, 3 and 4, {table.bucket_count} "
        "buckets (>100 per server)"
    )
    rows: list[tuple[str, ...]] = [("server", "weight", "buckets", "share", "exact share")]
    counts = table.bucket_counts()
    for server, weight in weights.items():
        rows.append(
            (
                str(server),
                f"{weight:g}",
                str(counts[server]),
                f"{counts[server] / table.bucket_count:.2%}",
                f"{weight / total:.2%}",
            )
        )
    for line in _columns(rows):
        say(f"   {line}")
    say()

    say('5. Drain "large": its buckets move, and it stays their second hop')
    change = builder.drain("large")
    drained = builder.table
    say(
        f"   moved {change.moved} of {change.slots} buckets ({change.moved_fraction:.2%}), "
        f"broken connections: {change.broken}"
    )
    # A few clients of one service, the first two of them in buckets that moved.
    service = "198.51.100.7"
    moved_flows: list[tuple[str, str, int, int]] = []
    kept_flows: list[tuple[str, str, int, int]] = []
    while len(moved_flows) < 2 or len(kept_flows) < 2:
        flow = (f"203.0.113.{rng.randrange(1, 255)}", service, rng.randrange(1024, 65536), 443)
        hops = drained.lookup(flow)
        chosen = moved_flows if table.lookup(flow) != hops else kept_flows
        if len(chosen) < 2:
            chosen.append(flow)
    rows = [("flow", "before", "after: first hop", "second hop")]
    for flow in moved_flows + kept_flows:
        owner, _ = table.lookup(flow)
        first, second = drained.lookup(flow)
        label = f"{flow[0]}:{flow[2]} -> {flow[1]}:{flow[3]}"
        rows.append((label, str(owner), str(first), "-" if second is None else str(second)))
    for line in _columns(rows, right=()):
        say(f"   {line}")
    first, second = drained.lookup(moved_flows[0])
    syn = redirect("tcp", is_syn=True, first_has_flow=False)
    established = redirect("tcp", is_syn=False, first_has_flow=False)
    say(f"   new connections in a moved bucket go to {first} (a SYN: redirect says {syn!r});")
    say(
        f"   packets of {second}'s established connections reach {first}, which passes them on "
        f"({established!r})"
    )
    say()

    say('6. Load feedback: "large" is back, but runs hotter than its weight says')
    change = builder.set_weight("large", 3.0)
    swapped = _swaps(drained, builder.table)
    say(
        f"   undrain: {change.moved} buckets move back, {swapped} of them by swapping first "
        f"and second hop; broken: {change.broken}"
    )
    # Simulated utilisation: traffic in proportion to each server's share, over a capacity
    # that for "large" is below its configured weight.
    capacity: dict[str | int, float] = {"small": 1.0, "medium": 2.0, "large": 2.4, "xl": 4.0}
    demand = 6.0
    for round_number in range(1, 4):
        previous = builder.table
        shares = previous.shares()
        loads = {server: demand * shares[server] / capacity[server] for server in capacity}
        report = builder.balance(loads)
        shown = " ".join(f"{server} {load:.2f}" for server, load in loads.items())
        if report.held:
            say(f"   round {round_number}: loads {shown}: {report.reason}")
            break
        say(
            f"   round {round_number}: loads {shown}: moved {report.diff.moved} "
            f"({_swaps(previous, builder.table)} by swap), broken {report.diff.broken}"
        )
    surge = dict.fromkeys(capacity, 0.95)
    report = builder.balance(surge)
    say(f"   a surge puts every server at 0.95: {report.reason}")
    say()

    table = builder.table
    change = builder.resize(2 * table.bucket_count)
    same = builder.table.shares() == table.shares()
    say(f"7. Doubling the table: {table.bucket_count} -> {builder.bucket_count} buckets")
    say(
        f"   moved {change.moved}, broken {change.broken}; every server keeps exactly its "
        f"share: {same}"
    )
    say()

    removed = "medium"
    say(f'8. Removing "{removed}" (20% of the traffic): forwarding table vs Maglev')
    forwarding = TableBuilder(weights)
    own = forwarding.table.bucket_counts()[removed]
    change = forwarding.remove(removed)
    rows = [("", "slots", "moved", "moved from servers that stay", "broken")]
    rows.append(_disruption_row("forwarding table", change, own))
    maglev = MaglevTable(weights)
    rest = {server: weight for server, weight in weights.items() if server != removed}
    change = maglev.diff(MaglevTable(rest))
    rows.append(_disruption_row("Maglev", change, maglev.counts()[removed]))
    for line in _columns(rows):
        say(f"   {line}")


def _disruption_row(label: str, change: TableDiff, own: int) -> tuple[str, ...]:
    """A row of the demo's comparison: the removed server's own slots move by necessity; the
    rest of ``moved`` belonged to servers that stay."""
    return (
        label,
        f"{change.slots:,}",
        f"{change.moved_fraction:.2%}",
        f"{(change.moved - own) / change.slots:.2%}",
        f"{change.broken_fraction:.2%}",
    )


def _swaps(before: ForwardingTable, after: ForwardingTable) -> int:
    """How many buckets exchanged their first and second hop between two tables of one size."""
    old, new = before.servers, after.servers
    count = 0
    for old_first, old_second, new_first, new_second in zip(
        before.first_hops, before.second_hops, after.first_hops, after.second_hops, strict=True
    ):
        if (
            old_second != NO_SERVER
            and new_second != NO_SERVER
            and new[new_first] == old[old_second]
            and new[new_second] == old[old_first]
        ):
            count += 1
    return count
