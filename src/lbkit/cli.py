"""The ``lbkit`` command line: ``--version``, ``info``, ``hash``, ``table``, ``subset``,
``health``, ``steer``, ``waitingroom``, ``cookie`` and ``demo``.

Errors print one line (``lbkit: error: ...``) to stderr and exit with status 2 for a usage
mistake or 1 for a rejected value or a file that cannot be read or written; no traceback.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import math
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import attrs

import lbkit
from lbkit import _kernels
from lbkit._json import check_object, json_kind
from lbkit.errors import ConfigError, CorruptBlob, InvalidCookie, LbkitError
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
from lbkit.health import (
    UNKNOWN_VOTES,
    EndpointHealth,
    Hysteresis,
    Member,
    MonitorGroup,
    MonitorResult,
    Verdict,
)
from lbkit.steering import Endpoint, LoadBalancer, Pool, Request
from lbkit.steering.simulate import FORMAT as STEERING_FORMAT
from lbkit.steering.simulate import Scenario, SimulationReport, scenario_from_json, simulate
from lbkit.subsetting import (
    ALGORITHMS,
    Churn,
    ClassicSubsetting,
    Comparison,
    EventLoopPlan,
    EventLoopSubsets,
    RendezvousSubsetting,
    Ringsteady,
    Subsetter,
    balance,
    churn,
    compare,
    diversity,
    plan_event_loops,
)
from lbkit.waitingroom.config import CookieSettings, WaitingRoomConfig
from lbkit.waitingroom.cookies import (
    HOST_PREFIX,
    KEY_SIZES,
    MAX_KEY_ID,
    CookieSealer,
    Keyring,
    decode_key,
    encode_key,
    new_key,
)
from lbkit.waitingroom.estimate import fifo_wait, random_wait, whole_minutes
from lbkit.waitingroom.room import WaitingRoom
from lbkit.waitingroom.simulation import (
    MAX_USERS,
    SimulationResult,
    plot_heatmap,
    uniform_arrivals,
)
from lbkit.waitingroom.simulation import simulate as simulate_room


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
    _add_subset_parser(commands)
    _add_health_parser(commands)
    _add_steer_parser(commands)
    _add_waitingroom_parser(commands)
    _add_cookie_parser(commands)

    demo_parser = commands.add_parser("demo", help="a short tour of every primitive")
    demo_parser.add_argument("--seed", type=int, default=2026, help="seed of the demo's data")
    demo_parser.add_argument(
        "--plot",
        metavar="DIR",
        help="also write the tour's pictures (PNG heatmaps of the waiting room) to DIR; "
        "needs matplotlib (pip install 'lbkit[plot]')",
    )
    demo_parser.set_defaults(subparser=demo_parser)
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
        elif args.command == "subset":
            _subset(args, args.subparser, out)
        elif args.command == "health":
            _health_eval(args, out)
        elif args.command == "steer":
            _steer_simulate(args, args.subparser, out)
        elif args.command == "waitingroom":
            if args.action == "simulate":
                _waitingroom_simulate(args, args.subparser, out)
            else:
                _waitingroom_estimate(args, args.subparser, out)
        elif args.command == "cookie":
            _cookie(args, args.subparser, out)
        else:
            if args.plot is not None:
                _require_matplotlib(args.subparser)
            _demo(args.seed, out, None if args.plot is None else Path(args.plot))
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


#: ``lbkit subset`` caps its counts well below what the library accepts: it lists subsets and
#: measures churn by materialising every frontend's subset, several times over.
_SUBSET_MAX_COUNT = 2**20
#: The most connections (frontends times subset size) it materialises.
_SUBSET_MAX_CONNECTIONS = 2**24
#: Subsets ``lbkit subset`` lists unless ``--show`` says otherwise.
_SUBSET_DEFAULT_SHOW = 8
#: ``--show all``.
_SHOW_ALL = -1


def _add_subset_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    algorithms = ", ".join(ALGORITHMS)
    subset = commands.add_parser(
        "subset",
        help="deterministic subsetting: subsets and their metrics, comparisons, event loops",
        description="Give each of F frontends a subset of K of N backends (ids 0..N-1) with "
        "lbkit.subsetting, list the first subsets and measure them: connection balance, the "
        "churn of one backend or frontend more or fewer, and diversity. `lbkit subset "
        "compare` puts the algorithms side by side; `lbkit subset loops` plans subsets for "
        "the event loops of one proxy.",
    )
    # Dests of their own, so that these options given before an action can be refused.
    subset.add_argument(
        "--backends", type=int, metavar="N", dest="subset_backends", help="backend count"
    )
    subset.add_argument(
        "--frontends", type=int, metavar="F", dest="subset_frontends", help="frontend count"
    )
    subset.add_argument(
        "--size", type=int, metavar="K", dest="subset_size", help="backends per frontend"
    )
    subset.add_argument(
        "--algorithm",
        choices=tuple(ALGORITHMS),
        dest="subset_algorithm",
        help="default ringsteady",
    )
    subset.add_argument(
        "--seed",
        type=int,
        dest="subset_seed",
        metavar="S",
        help="shuffles Ringsteady's initial backend order (default: no shuffle); seeds the "
        "baselines (default 0)",
    )
    subset.add_argument(
        "--show",
        type=_show_count,
        dest="subset_show",
        metavar="N|all",
        help=f"how many subsets to list (default {_SUBSET_DEFAULT_SHOW})",
    )
    # subparser is the action's parser when there is one; subset_parser is this one.
    subset.set_defaults(subparser=subset, subset_parser=subset)
    actions = subset.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)

    report = actions.add_parser(
        "compare",
        help="every algorithm side by side (lbkit.subsetting.compare)",
        description="Measure each algorithm on N backends and F frontends for each subset "
        "size: balance, diversity, and the churn of one backend or frontend more or fewer. "
        "Rendezvous subsetting hashes every backend for every frontend, several times: it "
        "takes seconds beyond a thousand of each.",
    )
    report.add_argument("--backends", type=int, default=100, metavar="N", help="default 100")
    report.add_argument("--frontends", type=int, default=300, metavar="F", help="default 300")
    report.add_argument(
        "--sizes", default="3,10,20", metavar="K,K,...", help="subset sizes (default 3,10,20)"
    )
    report.add_argument(
        "--algorithms",
        default=",".join(ALGORITHMS),
        metavar="A,A,...",
        help=f"comma-separated, from {algorithms} (default all)",
    )
    report.add_argument("--seed", type=int, default=0, help="seed of every algorithm (default 0)")
    report.set_defaults(subparser=report)

    loops = actions.add_parser(
        "loops",
        help="subsets for the event loops of one proxy (Netflix Zuul's per-loop mode)",
        description="Split N origins into disjoint subsets, each used by a group of the L "
        "event loops (lbkit.subsetting.plan_event_loops), and show which loops use which.",
    )
    loops.add_argument("--origins", type=int, required=True, metavar="N", help="origin count")
    loops.add_argument("--loops", type=int, required=True, metavar="L", help="event loop count")
    loops.add_argument(
        "--min-size", type=int, default=25, metavar="K", help="smallest ideal subset (default 25)"
    )
    loops.add_argument(
        "--max-size", type=int, default=50, metavar="K", help="largest ideal subset (default 50)"
    )
    loops.set_defaults(subparser=loops)


def _show_count(text: str) -> int:
    """``--show``: a count >= 0, or ``_SHOW_ALL``."""
    if text == "all":
        return _SHOW_ALL
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'all' nor an integer >= 0")
    return count


def _subset(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    if args.action is None:
        _subset_show(args, parser, out)
        return
    options = {
        "--backends": args.subset_backends,
        "--frontends": args.subset_frontends,
        "--size": args.subset_size,
        "--algorithm": args.subset_algorithm,
        "--seed": args.subset_seed,
        "--show": args.subset_show,
    }
    given = [option for option, value in options.items() if value is not None]
    if given:
        args.subset_parser.error(
            f"{given[0]} before the action {args.action!r} is an option of `lbkit subset` "
            "alone; give the action's options after it"
        )
    if args.action == "compare":
        _subset_compare(args, parser, out)
    else:
        _subset_loops(args, out)


def _check_subset_count(value: int, option: str) -> int:
    """A count ``lbkit subset`` accepts, or the one-line error (status 1)."""
    if not 1 <= value <= _SUBSET_MAX_COUNT:
        raise ConfigError(f"{option} is {value}; it must be in 1..{_SUBSET_MAX_COUNT}")
    return value


def _subsetter(name: str, backends: int, frontends: int, size: int, seed: int | None) -> Subsetter:
    """The algorithm ``name`` over backends ``0 .. backends - 1``."""
    ids = range(backends)
    if name == "ringsteady":
        return Ringsteady(ids, subset_size=size, frontends=frontends, seed=seed)
    if name == "ringsteady-rank":
        return Ringsteady(ids, subset_size=size, frontends=frontends, seed=seed, scaling="rank")
    baseline = ClassicSubsetting if name == "classic" else RendezvousSubsetting
    return baseline(ids, subset_size=size, frontends=frontends, seed=0 if seed is None else seed)


def _subset_show(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    required = {
        "--backends": args.subset_backends,
        "--frontends": args.subset_frontends,
        "--size": args.subset_size,
    }
    missing = [option for option, value in required.items() if value is None]
    if missing:
        parser.error(
            f"the following arguments are required: {', '.join(missing)} "
            "(or an action: compare, loops)"
        )
    count = _check_subset_count(args.subset_backends, "--backends")
    frontends = _check_subset_count(args.subset_frontends, "--frontends")
    size: int = args.subset_size
    if frontends * size > _SUBSET_MAX_CONNECTIONS:
        raise ConfigError(
            f"--frontends * --size is {frontends * size:,}; at most "
            f"{_SUBSET_MAX_CONNECTIONS:,} connections can be listed and measured"
        )
    name: str = args.subset_algorithm or "ringsteady"
    seed: int | None = args.subset_seed
    show: int = _SUBSET_DEFAULT_SHOW if args.subset_show is None else args.subset_show

    def build() -> Subsetter:
        return _subsetter(name, count, frontends, size, seed)

    algorithm = build()
    before = algorithm.subsets()
    shuffled = "" if seed is None else f", seed {seed}"
    say = _printer(out)
    say(
        f"{name}: {_plural(count, 'backend')} (ids 0..{count - 1}), "
        f"{_plural(frontends, 'frontend')}, subset size {size}{shuffled}"
    )
    listed = frontends if show == _SHOW_ALL else min(show, frontends)
    if listed:
        say()
        rows: list[tuple[str, ...]] = [("frontend", "subset")]
        rows += [(str(f), " ".join(map(str, before[f]))) for f in range(listed)]
        for line in _columns(rows, right=(0,)):
            say(line)
        if listed < frontends:
            say(f"... {frontends - listed} more (--show all lists every subset)")
    say()
    shares = balance(algorithm)
    say(f"balance: connections per backend, mean F*k/B = {shares.mean:.2f}")
    say(f"  max/mean     {shares.max_over_mean:.3f}  (busiest backend: {shares.maximum})")
    say(f"  min/mean     {shares.min_over_mean:.3f}  (idlest backend: {shares.minimum})")
    say(f"  max-min      {shares.spread}")
    say(f"  utilisation  {shares.utilisation:.3f}  (mean/max)")
    say()
    say("churn: what one change does to the subsets of the frontends present before and after")
    rows = [
        (
            "change",
            "subsets changed",
            "most members changed",
            "connections created",
            "ideal",
            "relative",
        )
    ]
    grown = build()
    grown.add_backend(count)
    added = churn(before, grown.subsets(), ideal=frontends * size / (count + 1))
    rows.append(_churn_row(f"+1 backend ({count})", added))
    if size < count:
        removed_id = algorithm.backends[count // 2]
        shrunk = build()
        shrunk.remove_backend(removed_id)
        removed = churn(before, shrunk.subsets(), ideal=frontends * size / count)
        rows.append(_churn_row(f"-1 backend ({removed_id})", removed))
    else:
        rows.append(("-1 backend", "-", "-", "-", "-", "-"))
    more = build()
    more.set_frontends(frontends + 1)
    rows.append(_churn_row("+1 frontend", churn(before, more.subsets())))
    if frontends > 1:
        fewer = build()
        fewer.set_frontends(frontends - 1)
        rows.append(_churn_row("-1 frontend", churn(before, fewer.subsets())))
    for line in _columns(rows):
        say(f"  {line}")
    say("  ideal: the fair share of the backend added or removed, F*k/B; relative: created/ideal")
    if size >= count:
        say("  (no backend can be removed: every backend is in every subset)")
    say()
    variety = diversity(before)
    sharing = "frontend uses" if variety.max_sharing == 1 else "frontends share"
    say(
        f"diversity: {_plural(variety.distinct, 'distinct subset')}; at most "
        f"{variety.max_sharing} {sharing} one"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _churn_row(label: str, change: Churn) -> tuple[str, ...]:
    return (
        label,
        str(change.frontends_changed),
        str(change.max_members_changed),
        str(change.connections_created),
        f"{change.ideal:.1f}" if change.ideal else "0",
        f"{change.relative:.2f}" if change.ideal else "-",
    )


def _subset_compare(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    sizes = [_parse_int(text, "--sizes", parser) for text in args.sizes.split(",")]
    names = [name.strip() for name in args.algorithms.split(",")]
    for name in names:
        if name not in ALGORITHMS:
            parser.error(f"--algorithms value {name!r} is not one of {', '.join(ALGORITHMS)}")
    report: Comparison = compare(
        args.backends,
        frontends=args.frontends,
        subset_sizes=sizes,
        algorithms=names,
        seed=args.seed,
    )
    print(report.render(), file=out)


def _parse_int(text: str, option: str, parser: argparse.ArgumentParser) -> int:
    try:
        return int(text)
    except ValueError:
        parser.error(f"{option} value {text.strip()!r} is not an integer")


def _subset_loops(args: argparse.Namespace, out: TextIO) -> None:
    plan = plan_event_loops(
        args.origins, loops=args.loops, min_size=args.min_size, max_size=args.max_size
    )
    for line in _plan_lines(plan, min_size=args.min_size, max_size=args.max_size):
        print(line, file=out)


def _plan_lines(plan: EventLoopPlan, *, min_size: int, max_size: int) -> list[str]:
    count = plan.subset_count
    sizes = sorted(set(plan.subset_sizes), reverse=True)
    size_text = " or ".join(map(str, sizes)) if sizes else "0"
    all_to_all = plan.origins * plan.loops
    saved = f"{all_to_all / plan.connections:.1f}x fewer" if plan.connections else "none"
    loops = "loop" if plan.replication == 1 else "loops"
    replication = f"{plan.replication} {loops} per subset"
    if len(set(plan.loops_per_subset)) > 1:
        extra = plan.loops % count
        replication += f" ({extra} of the subsets serve one loop more)"
    lines = [
        f"{plan.origins} origins, {plan.loops} event loops, ideal subset size "
        f"{min_size}..{max_size}",
        f"  subsets      {count} of {size_text} origins",
        f"  replication  {replication}",
        f"  connections  {plan.connections:,} (all-to-all: {all_to_all:,}; {saved})",
        "",
        "subset r holds the origins whose stable index i has i mod "
        f"{count} == r; loop j uses subset j mod {count}",
    ]
    rows: list[tuple[str, ...]] = [("subset", "origins", "loops")]
    for subset in range(count):
        used = list(range(subset, plan.loops, count))
        shown = " ".join(map(str, used[:8]))
        if len(used) > 8:
            shown += f" ... {used[-1]} ({len(used)} loops)"
        rows.append((str(subset), str(plan.subset_sizes[subset]), shown))
    lines += _columns(rows, right=(0, 1))
    return lines


def _printer(out: TextIO) -> Callable[..., None]:
    def say(line: str = "") -> None:
        print(line, file=out)

    return say


def _demo(seed: int, out: TextIO, plot: Path | None = None) -> None:
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
    _demo_forwarding(rng, say, plot)


def _demo_forwarding(rng: random.Random, say: Callable[..., None], plot: Path | None) -> None:
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
    say()
    _demo_subsetting(say)
    say()
    _demo_health(say)
    say()
    _demo_steering(say)
    say()
    _demo_waitingroom(say, plot)


def _demo_subsetting(say: Callable[..., None]) -> None:
    origins, loops = 400, 32
    plan = plan_event_loops(origins, loops=loops)
    all_to_all = origins * loops
    say(
        f"9. Subsets per event loop (Netflix Zuul): {origins} origins, a proxy with {loops} "
        "event loops"
    )
    say(
        f"   {plan.subset_count} subsets of {plan.subset_sizes[0]} origins, each used by "
        f"{plan.replication} loops: {plan.connections:,} connections instead of "
        f"{all_to_all:,} ({all_to_all // plan.connections}x fewer)"
    )
    subsets = EventLoopSubsets(range(origins), loops=loops)
    change = subsets.replace_origin(3, origins)
    say(
        f"   one origin replaced: {len(change.loops)} loops (one subset) open a connection, "
        f"not all {loops} ({loops // len(change.loops)}x less churn)"
    )
    say()

    backends, frontends, size = 100, 300, 10
    report = compare(backends, frontends=frontends, subset_sizes=[size])
    ideal = frontends * size / (backends + 1)
    say(
        f"10. Subsets across frontends: {backends} backends, {frontends} frontends, "
        f"{size} backends each"
    )
    say(
        "   one backend added: the least churn possible is its fair share of the "
        f"connections, F*k/B = {ideal:.1f}"
    )
    rows: list[tuple[str, ...]] = [
        ("algorithm", "subsets changed", "most members changed", "created", "vs ideal")
    ]
    for row in report.rows:
        rows.append(
            (
                row.algorithm,
                str(row.added.frontends_changed),
                str(row.added.max_members_changed),
                str(row.added.connections_created),
                f"{row.added.relative:.2f}x",
            )
        )
    for line in _columns(rows):
        say(f"   {line}")
    mean = frontends * size / backends
    say(f"   connections per backend (mean {mean:g}): the busiest and idlest against the mean")
    rows = [("algorithm", "max/mean", "min/mean", "max-min", "utilisation")]
    for row in report.rows:
        shares = row.balance
        rows.append(
            (
                row.algorithm,
                f"{shares.max_over_mean:.3f}",
                f"{shares.min_over_mean:.3f}",
                str(shares.spread),
                f"{shares.utilisation:.3f}",
            )
        )
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


# -- lbkit health ----------------------------------------------------------------------------

_HEALTH_FORMAT = """\
FILE is a JSON object with two keys, "group" and "results", and optionally "now":

  {
    "group": {
      "members": [
        {"monitor": "http", "must_be_healthy": true},
        {"monitor": "tcp"},
        {"monitor": "db"},
        {"monitor": "trace", "monitoring_only": true},
        {"monitor": "legacy", "enabled": false}
      ],
      "max_age": 60,
      "threshold": 0.5,
      "unknown_votes": "abstain",
      "critical_votes_in_majority": false,
      "regions": {"ams": "eu", "fra": "eu", "iad": "us"}
    },
    "now": 1000,
    "results": [
      {"monitor": "http", "endpoint": "web-1", "location": "ams",
       "up": true, "rtt": 0.012, "observed_at": 995}
    ]
  }

A member needs "monitor"; its flags default to false (enabled to true). The other group keys
are optional and are MonitorGroup's options with its defaults: max_members (5), max_age (180
s), future_tolerance (5 s), unknown_votes ("abstain", "up" or "down"),
critical_votes_in_majority (false), threshold (0.5) and regions (location -> region, for
region-first folding). A result needs monitor, endpoint, location, up and observed_at
(seconds); rtt (seconds) is optional. The time of the evaluation is --now, else "now", else
the latest observed_at in the file."""


class _SchemaError(_FileError):
    """A JSON document that does not have the shape ``lbkit health eval`` reads."""


def _add_health_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    health = commands.add_parser(
        "health",
        help="quorum health: fold monitor results into verdicts",
        description="Quorum health aggregation with lbkit.health.",
    )
    actions = health.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    evaluate = actions.add_parser(
        "eval",
        help="evaluate a monitor group's results from a JSON file",
        description="Read a monitor group and monitor results from FILE (JSON), fold them with\n"
        "lbkit.health.MonitorGroup.evaluate and print every endpoint's verdict and each\n"
        "location's, with their reasons and latencies.",
        epilog=_HEALTH_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("file", metavar="FILE", help="the JSON document (see below)")
    evaluate.add_argument(
        "--now", type=float, metavar="T", help="the time of the evaluation, in seconds"
    )
    evaluate.set_defaults(subparser=evaluate)


_GROUP_KEYS = {
    "members": "a list",
    "max_members": "an integer",
    "max_age": "a number",
    "future_tolerance": "a number",
    "unknown_votes": "a string",
    "critical_votes_in_majority": "a boolean",
    "threshold": "a number",
    "regions": "an object",
}
_MEMBER_KEYS = {
    "monitor": "a string",
    "must_be_healthy": "a boolean",
    "monitoring_only": "a boolean",
    "enabled": "a boolean",
}
_RESULT_KEYS = {
    "monitor": "a string",
    "endpoint": "a string",
    "location": "a string",
    "up": "a boolean",
    "rtt": "a number",
    "observed_at": "a number",
}
_TOP_KEYS = {"group": "an object", "results": "a list", "now": "a number"}


def _object(
    value: object,
    path: str,
    keys: dict[str, str],
    required: Sequence[str],
    *,
    nullable: Sequence[str] = (),
) -> dict[str, Any]:
    """Check one JSON object against its keys and their kinds; ``path`` names it in errors."""
    return check_object(value, path, keys, required, nullable=nullable, error=_SchemaError)


def _read_json(path: str) -> object:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise _FileError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise _FileError(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise _FileError(f"{path}: not valid JSON: {error}") from None


def _read_health(path: str) -> tuple[MonitorGroup, list[MonitorResult], float | None]:
    """The group, the results and the file's ``now`` from a JSON document."""
    document = _read_json(path)
    try:
        return _health_document(document)
    except _SchemaError as error:
        raise _SchemaError(f"{path}: {error}") from None
    except LbkitError as error:
        raise type(error)(f"{path}: {error}") from None


def _at(path: str, error: LbkitError, keys: Sequence[str]) -> LbkitError:
    """``error`` with its message placed at ``path``: lbkit names arguments the way the JSON
    names keys, so ``threshold is 1.0`` at ``$.group`` becomes ``$.group.threshold is 1.0``."""
    message = str(error)
    name = re.split(r"[ \[.]", message, maxsplit=1)[0]
    joined = f"{path}.{message}" if name in keys else f"{path}: {message}"
    return type(error)(joined)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _health_document(document: object) -> tuple[MonitorGroup, list[MonitorResult], float | None]:
    top = _object(document, "$", _TOP_KEYS, ("group", "results"))
    spec = _object(top["group"], "$.group", _GROUP_KEYS, ("members",), nullable=("regions",))
    members = []
    for index, item in enumerate(spec["members"]):
        where = f"$.group.members[{index}]"
        fields = _object(item, where, _MEMBER_KEYS, ("monitor",))
        try:
            members.append(Member(**fields))
        except LbkitError as error:
            raise _at(where, error, tuple(_MEMBER_KEYS)) from None
    options = {key: value for key, value in spec.items() if key != "members"}
    if "unknown_votes" in options and options["unknown_votes"] not in UNKNOWN_VOTES:
        ways = ", ".join(repr(way) for way in UNKNOWN_VOTES)
        raise _SchemaError(
            f"$.group.unknown_votes is {options['unknown_votes']!r}; it must be one of {ways}"
        )
    for location, region in (options.get("regions") or {}).items():
        if not isinstance(region, str):
            raise _SchemaError(
                f"$.group.regions[{location!r}] is {json_kind(region)}; it must be a string"
            )
    try:
        group = MonitorGroup(members, **options)
    except LbkitError as error:
        raise _at("$.group", error, tuple(_GROUP_KEYS)) from None
    results = []
    for index, item in enumerate(top["results"]):
        where = f"$.results[{index}]"
        fields = _object(
            item,
            where,
            _RESULT_KEYS,
            ("monitor", "endpoint", "location", "up", "observed_at"),
            nullable=("rtt",),
        )
        try:
            results.append(MonitorResult(**fields))
        except LbkitError as error:
            raise _at(where, error, tuple(_RESULT_KEYS)) from None
    now = top.get("now")
    return group, results, None if now is None else float(now)


def _health_eval(args: argparse.Namespace, out: TextIO) -> None:
    group, results, file_now = _read_health(args.file)
    if args.now is not None:
        now = args.now
    elif file_now is not None:
        now = file_now
    elif results:
        now = max(result.observed_at for result in results)
    else:
        now = 0.0
    try:
        report = group.evaluate(results, now=now)
    except LbkitError as error:
        # The library names results by their index, as $.results[i] does in the file.
        message = str(error)
        where = "$." if message.startswith("results[") else ""
        raise type(error)(f"{args.file}: {where}{message}") from None
    for line in _health_lines(group, report, now, len(results)):
        print(line, file=out)


def _member_label(member: Member) -> str:
    if not member.enabled:
        return f"{member.monitor} (disabled)"
    if member.must_be_healthy:
        return f"{member.monitor} (critical)"
    if member.monitoring_only:
        return f"{member.monitor} (monitoring only)"
    return member.monitor


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _health_lines(
    group: MonitorGroup, report: dict[str, EndpointHealth], now: float, results: int
) -> list[str]:
    critical = " (critical members vote too)" if group.critical_votes_in_majority else ""
    scope = "locations" if group.regions is None else "regions (regions first)"
    lines = _columns(
        [
            ("members", ", ".join(_member_label(member) for member in group.members)),
            (
                "location",
                "DOWN if a critical member is down, else if more than half of the votes are down"
                + critical,
            ),
            ("endpoint", f"UP if more than {group.threshold:g} of the {scope} are UP"),
            (
                "results",
                f"{results} at now={now:g}; unknown after {group.max_age:g} s, then they "
                + (
                    "abstain"
                    if group.unknown_votes == "abstain"
                    else f"count as {group.unknown_votes}"
                ),
            ),
        ],
        right=(),
    )
    for endpoint, health in report.items():
        lines.append("")
        lines.append(
            f"{endpoint}: {str(health.verdict).upper()}, latency {_ms(health.latency)}, "
            f"{health.reason}"
        )
        if group.regions is not None:
            lines.append(f"  regions: {_region_summary(group.regions, health)}")
        header: tuple[str, ...] = ("location", "verdict", "latency", "reason")
        if group.regions is not None:
            header = ("location", "region", "verdict", "latency", "reason")
        rows: list[tuple[str, ...]] = [header]
        for location in health.locations:
            cells = [location.location]
            if group.regions is not None:
                cells.append(group.regions[location.location])
            cells += [str(location.verdict), _ms(location.latency), str(location.reason)]
            rows.append(tuple(cells))
        lines += ["  " + line for line in _columns(rows, right=(len(header) - 2,))]
    return lines


def _region_summary(regions: dict[str, str], health: EndpointHealth) -> str:
    """Each region's verdict as the region-first fold decides it: UP when more than half of
    its locations with a verdict are UP."""
    counts: dict[str, list[int]] = {name: [0, 0] for name in sorted(set(regions.values()))}
    for location in health.locations:
        if location.verdict is not Verdict.UNKNOWN:
            tally = counts[regions[location.location]]
            tally[0] += location.verdict is Verdict.UP
            tally[1] += 1
    parts = []
    for name, (up, total) in counts.items():
        if total == 0:
            parts.append(f"{name} unknown (no location has a verdict)")
        else:
            verdict = "up" if 2 * up > total else "down"
            parts.append(f"{name} {verdict} ({up} of {total} locations up)")
    return ", ".join(parts)


def _demo_health(say: Callable[..., None]) -> None:
    regions = {"ams": "eu", "fra": "eu", "lhr": "eu", "iad": "us", "ord": "us", "sjc": "us"}
    group = MonitorGroup(
        [Member("http", must_be_healthy=True), Member("tcp"), Member("db")],
        max_age=60.0,
        regions=regions,
    )
    say(
        "11. Quorum health: HTTP (critical), TCP and database checks, three data centres in "
        "each of two regions"
    )
    rtts = {"ams": 0.011, "fra": 0.014, "lhr": 0.012, "iad": 0.081, "ord": 0.095, "sjc": 0.142}
    results = []
    for site, rtt in rtts.items():
        for monitor, extra in (("http", 0.004), ("tcp", 0.0), ("db", 0.002)):
            up = not (site == "lhr" and monitor == "http")
            results.append(
                MonitorResult(
                    monitor,
                    "web-1",
                    site,
                    up,
                    rtt + extra if up else None,
                    observed_at=95.0,
                )
            )
    health = group.evaluate(results, now=100.0)["web-1"]
    say("   lhr's HTTP check fails; the other checks pass everywhere")
    rows: list[tuple[str, ...]] = [("location", "region", "verdict", "latency", "reason")]
    for location in health.locations:
        rows.append(
            (
                location.location,
                regions[location.location],
                str(location.verdict),
                _ms(location.latency),
                str(location.reason),
            )
        )
    for line in _columns(rows, right=(3,)):
        say(f"   {line}")
    say(f"   regions: {_region_summary(regions, health)}")
    say(f"   web-1: {str(health.verdict).upper()}, latency {_ms(health.latency)}, {health.reason}")

    # A flapping critical HTTP check, seen from every data centre: without hysteresis each
    # probe flips the endpoint; with 2 consecutive results needed, nothing flips.
    hysteresis = Hysteresis(consecutive_up=2, consecutive_down=2)
    raw_flips = filtered_flips = 0
    raw_before = filtered_before = True
    probes = 6
    for probe in range(probes):
        now = 100.0 + 10.0 * probe
        up = probe % 2 == 1
        raw = []
        filtered = []
        for site in regions:
            for monitor in ("http", "tcp", "db"):
                state = up if monitor == "http" else True
                kept = hysteresis.observe(monitor, "web-2", site, state, now=now)
                raw.append(MonitorResult(monitor, "web-2", site, state, observed_at=now))
                filtered.append(MonitorResult(monitor, "web-2", site, kept, observed_at=now))
        raw_up = group.evaluate(raw, now=now)["web-2"].healthy
        filtered_up = group.evaluate(filtered, now=now)["web-2"].healthy
        raw_flips += raw_up != raw_before
        filtered_flips += filtered_up != filtered_before
        raw_before, filtered_before = raw_up, filtered_up
    say(
        f"   web-2's HTTP check flaps (down, up, down, ...) at every data centre for {probes} "
        "probes:"
    )
    say(
        f"   the raw verdict flips {raw_flips} times; through Hysteresis(consecutive_up=2, "
        f"consecutive_down=2) {filtered_flips} times (web-2 stays "
        f"{'UP' if filtered_before else 'DOWN'})"
    )


# --- lbkit steer ------------------------------------------------------------------------------


def _add_steer_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    steer = commands.add_parser(
        "steer",
        help="steering: simulate pool and endpoint choices",
        description="Pool and endpoint steering with lbkit.steering.",
    )
    actions = steer.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    run = actions.add_parser(
        "simulate",
        help="send seeded requests through a steering configuration",
        description="Build a LoadBalancer from CONFIG (JSON), send N seeded requests through\n"
        "it and print where they went, per pool and per endpoint, beside the share each is\n"
        "configured for.",
        epilog=STEERING_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", metavar="CONFIG", help="the JSON configuration (see below)")
    run.add_argument(
        "--requests", type=int, default=10_000, metavar="N", help="requests (default 10000)"
    )
    run.add_argument(
        "--concurrency",
        type=int,
        default=0,
        metavar="C",
        help="requests kept outstanding, for the least-outstanding pickers (default 0)",
    )
    run.add_argument("--seed", type=int, metavar="S", help="override the configuration's seed")
    run.set_defaults(subparser=run)


def _steer_simulate(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    if args.requests < 1:
        parser.error(f"--requests is {args.requests}; it must be >= 1")
    if args.concurrency < 0:
        parser.error(f"--concurrency is {args.concurrency}; it must be >= 0")
    document = _read_json(args.config)
    if args.seed is not None:
        if not 0 <= args.seed < 2**64:
            parser.error(f"--seed is {args.seed}; it must be in 0..{2**64 - 1}")
        if isinstance(document, dict):
            document = {**document, "seed": args.seed}
    try:
        scenario = scenario_from_json(document)
    except LbkitError as error:
        raise type(error)(f"{args.config}: {error}") from None
    report = simulate(scenario, requests=args.requests, concurrency=args.concurrency)
    for line in _steering_lines(scenario, report):
        print(line, file=out)


def _percent(part: float, whole: float) -> str:
    return "-" if whole == 0 else f"{100.0 * part / whole:.1f} %"


def _steering_lines(scenario: Scenario, report: SimulationReport) -> list[str]:
    balancer = scenario.balancer
    fallback = balancer.fallback_pool
    kinds = sorted({balancer.picker_kind(pool.id) for pool in balancer.pools})
    lines = _columns(
        [
            (
                "policy",
                f"{balancer.policy.name} over {_plural(len(balancer.pools), 'pool')}"
                + (f", fallback {fallback.id}" if fallback is not None else "")
                + f"; endpoints by {', '.join(kinds)}",
            ),
            (
                "requests",
                f"{report.requests:,} from up to {scenario.clients:,} clients, "
                f"seed {scenario.seed}",
            ),
        ],
        right=(),
    )
    lines.append("")
    rows: list[tuple[str, ...]] = [("pool / endpoint", "health", "requests", "share", "expected")]
    served = sum(report.pools.values())
    for pool in balancer.pools:
        health = balancer.pool_report(pool.id)
        state = f"{health.healthy_count}/{health.total} up" + (" PANIC" if health.panic else "")
        count = report.pools.get(pool.id, 0)
        expected = report.expected_pool_share.get(pool.id)
        rows.append(
            (
                str(pool.id),
                state,
                f"{count:,}",
                _percent(count, served),
                "-" if expected is None else _percent(expected, 1.0),
            )
        )
        for endpoint in pool.endpoints:
            hits = report.endpoints.get((pool.id, endpoint.id), 0)
            share = report.expected_endpoint_share.get((pool.id, endpoint.id))
            rows.append(
                (
                    f"  {endpoint.id}",
                    "up" if endpoint.id in health.eligible else "down",
                    f"{hits:,}",
                    _percent(hits, count),
                    "-" if share is None else _percent(share, 1.0),
                )
            )
    lines.extend(_columns(rows, right=(2, 3, 4)))
    lines.append("")
    fixed = ", ".join(
        f"{status} x{count:,}" for status, count in sorted(report.fixed_responses.items())
    )
    lines.append(
        f"served {served:,}; fixed responses: {fixed or 'none'}; unserved (no healthy "
        f"endpoint): {report.unserved:,}"
    )
    lines.append(
        "expected: pools by weight among the pools that may serve (the weighted policies); "
        "endpoints by weight within their pool"
    )
    return lines


def _demo_steering(say: Callable[..., None]) -> None:
    say("12. Steering: rules, a weighted pool policy, endpoint picks, the panic guard, fallback")
    pools = [
        Pool("eu", [Endpoint("eu-1"), Endpoint("eu-2"), Endpoint("eu-3", weight=2)], weight=3),
        Pool("us", [Endpoint("us-1"), Endpoint("us-2")], weight=1),
    ]
    rules = [
        {
            "name": "maintenance",
            "condition": {"field": "path", "op": "prefix", "value": "/legacy"},
            "fixed_response": {"status": 503, "body": "moved"},
        }
    ]
    lb = LoadBalancer(pools, policy="random", fallback_pool="us", rules=rules, seed=7)
    requests = 20_000
    counts: dict[str, int] = {}
    for index in range(requests):
        decision = lb.decide(Request(client_ip=f"10.0.{index // 256 % 256}.{index % 256}"), now=1.0)
        assert decision.endpoint is not None
        counts[str(decision.endpoint.id)] = counts.get(str(decision.endpoint.id), 0) + 1
    say(f"   random over eu (weight 3) and us (weight 1), {requests:,} requests:")
    say(
        "   "
        + ", ".join(
            f"{name} {100 * count / requests:.1f} %" for name, count in sorted(counts.items())
        )
    )
    say("   (expected: eu-1 18.8 %, eu-2 18.8 %, eu-3 37.5 %, us-1 12.5 %, us-2 12.5 %)")
    decision = lb.decide(Request(path="/legacy/cart"), now=1.0)
    say(f"   GET /legacy/cart: {decision}")
    lb.update_health("eu", {"eu-1": False, "eu-2": False}, now=2.0)
    decision = lb.decide(Request(client_ip="10.9.9.9"), now=3.0)
    say("   eu-1 and eu-2 fail their health checks:")
    say(f"   {decision}")
    lb.update_health("eu", {"eu-3": False}, now=4.0)
    lb.update_health("us", {"us-1": False, "us-2": False}, now=4.0)
    decision = lb.decide(Request(client_ip="10.9.9.9"), now=5.0)
    say("   then every endpoint fails:")
    say(f"   {decision}")


def _demo_waitingroom(say: Callable[..., None], plot: Path | None) -> None:
    users, minutes, per_minute, active = 2_000, 10, 100, 400
    say(
        f"13. Waiting room: {users:,} users arrive over {minutes} minutes; {per_minute} may "
        f"enter a minute, {active} at once"
    )
    say(
        "   simulated (lbkit.waitingroom.simulate): real room decisions and sealed cookies, "
        "each user"
    )
    say("   browsing for a minute once let in; FIFO beside random")
    config = WaitingRoomConfig(
        total_active_users=active,
        new_users_per_minute=per_minute,
        session_duration=60.0,
        room_id="tickets",
    )
    arrivals = uniform_arrivals(users, float(minutes), start=1_700_049_600.0, seed=13)
    results = {
        method: simulate_room(config, arrivals, browse_time=60.0, method=method, seed=13)
        for method in ("fifo", "random")
    }
    fifo, raffle = results["fifo"], results["random"]
    rows = [["minute", "arrived", "let in", "queued", "median wait: FIFO", "random"]]
    by_arrival = {
        method: {row.minute: row.median for row in result.wait_by_arrival_minute}
        for method, result in results.items()
    }
    arriving = [row for row in fifo.minutes if row.arrived > 0]
    for row in arriving:
        waits = [by_arrival[method].get(row.minute) for method in ("fifo", "random")]
        rows.append(
            [
                time.strftime("%H:%M", time.gmtime(row.minute * 60)),
                str(row.arrived),
                str(row.admitted),
                str(row.queued),
                *("-" if wait is None else f"{wait / 60.0:.1f} min" for wait in waits),
            ]
        )
    for line in _columns(rows):
        say(f"   {line}")
    draining = [row for row in fifo.minutes if row.minute > arriving[-1].minute]
    empty = next((row for row in draining if row.queued == 0), None)
    if draining and empty is not None:
        say(
            f"   then no arrivals: {draining[0].admitted} let in a minute, and nobody queued "
            f"by {time.strftime('%H:%M', time.gmtime(empty.minute * 60 + 60))}"
        )
    say(
        f"   at most {fifo.max_admitted_per_minute} let in a minute and {fifo.peak_active_users} "
        f"active at once (FIFO; random: {raffle.max_admitted_per_minute} and "
        f"{raffle.peak_active_users})"
    )
    say(
        "   rank correlation of arrival and wait: "
        f"FIFO {_rho(fifo.rank_correlation)}, random {_rho(raffle.rank_correlation)}"
    )
    for label, result in (("FIFO", fifo), ("random", raffle)):
        error = result.estimate_error(0.5)
        if error is not None and error.relative_error is not None:
            say(
                f"   the median wait shown vs. the one lived, {label}: "
                f"{error.relative_error:+.0%} over {error.samples:,} check-ins"
            )
    if plot is not None:
        for method, result in results.items():
            path = _write_heatmap(result, plot / f"waitingroom-{method}.png")
            say(f"   wrote {path}")
    room = WaitingRoom(config, keys={1: bytes(32)}, primary=1, rng=random.Random(13))
    # A fixed key keeps the output the same on every run; a real room uses new_key().
    token = room.handle(None, now=1_700_049_600.0).cookie
    assert token is not None
    changed = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    refused = room.handle(changed, now=1_700_049_601.0).cookie_error
    say(f"   a cookie is {len(token)} characters of AES-GCM-SIV; one character changed: {refused}")


def _rho(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# --- lbkit waitingroom ------------------------------------------------------------------------


def _add_waitingroom_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    room = commands.add_parser(
        "waitingroom",
        help="waiting rooms: estimated waits",
        description="Waiting rooms with lbkit.waitingroom.",
    )
    actions = room.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    estimate = actions.add_parser(
        "estimate",
        help="the wait a queued user is shown",
        description="The estimated wait of lbkit.waitingroom.estimate. FIFO: a user with N users\n"
        "ahead waits N / R minutes. Random: each minute a waiting user gets in with chance\n"
        "P = R / N, so the minutes for a chance p are log(1 - p) / log(1 - P); the 25th, 50th\n"
        "and 75th percentiles are shown.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    estimate.add_argument(
        "--waiting",
        type=int,
        required=True,
        metavar="N",
        help="users waiting (FIFO: the users ahead of the one asking)",
    )
    estimate.add_argument(
        "--let-in", type=float, required=True, metavar="R", help="users let in per minute"
    )
    estimate.add_argument(
        "--method", choices=("fifo", "random"), default="fifo", help="queueing method"
    )
    estimate.add_argument(
        "--growth",
        type=float,
        default=0.0,
        metavar="G",
        help="random: users a minute the queue grows by (negative: drains); default 0",
    )
    estimate.add_argument("--json", action="store_true", help="print the numbers as JSON")
    estimate.set_defaults(subparser=estimate)
    _add_waitingroom_simulate_parser(actions)


def _waitingroom_estimate(
    args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO
) -> None:
    if args.waiting < 0:
        parser.error(f"--waiting is {args.waiting}; it must be >= 0")
    if not math.isfinite(args.let_in) or args.let_in < 0:
        parser.error(f"--let-in is {args.let_in:g}; it must be finite and >= 0")
    if not math.isfinite(args.growth):
        parser.error(f"--growth is {args.growth:g}; it must be finite")
    if args.growth != 0.0 and args.method == "fifo":
        parser.error("--growth applies to --method random (a FIFO wait depends on who is ahead)")
    if args.method == "fifo":
        fifo = fifo_wait(args.waiting, args.let_in)
        minutes = None if fifo.minutes is None else whole_minutes(fifo.minutes)
        if args.json:
            document: dict[str, Any] = {
                "queueing_method": "fifo",
                "queue_position": fifo.position,
                "wait_time_known": fifo.wait_time_known,
                "estimated_wait_minutes": minutes,
            }
            print(json.dumps(document, sort_keys=True), file=out)
            return
        say = _printer(out)
        say(
            f"position  {fifo.position:,} ({args.waiting:,} ahead, "
            f"{args.let_in:g} let in per minute)"
        )
        say(f"wait      {_minutes_text(minutes)}")
        return
    chance = random_wait(args.waiting, args.let_in, growth_per_minute=args.growth)
    shown = None if chance.minutes is None else [whole_minutes(m) for m in chance.minutes]
    if args.json:
        document = {
            "queueing_method": "random",
            "wait_time_known": chance.wait_time_known,
            "chance_per_minute": chance.chance_per_minute,
            "wait_time_percentiles": None
            if shown is None
            else {f"p{round(100 * p)}": m for p, m in zip(chance.percentiles, shown, strict=True)},
        }
        print(json.dumps(document, sort_keys=True), file=out)
        return
    say = _printer(out)
    per_minute = (
        "-" if chance.chance_per_minute is None else f"{100 * chance.chance_per_minute:.3g} %"
    )
    growing = "" if args.growth == 0.0 else f", the queue growing by {args.growth:g} a minute"
    say(f"waiting   {args.waiting:,} users, {args.let_in:g} let in per minute{growing}")
    say(f"chance    {per_minute} per minute for each waiting user")
    if shown is None:
        say("wait      unknown (nobody is being let in)")
    else:
        parts = (
            f"{round(100 * p)} %: {_minutes_text(m)}"
            for p, m in zip(chance.percentiles, shown, strict=True)
        )
        say("wait      " + ", ".join(parts))


def _add_waitingroom_simulate_parser(actions: argparse._SubParsersAction[_Parser]) -> None:
    run = actions.add_parser(
        "simulate",
        help="a crowd through a real waiting room: waits, limits, estimate errors",
        description="Simulate USERS users arriving at a constant rate (seeded uniform draws)\n"
        "over MINUTES minutes at a WaitingRoom on a MemoryStore (lbkit.waitingroom.simulation):\n"
        "queued users refresh on their jittered interval, admitted ones browse and leave. Prints\n"
        "admissions per minute, waits by arrival minute, the rank correlation of arrival and\n"
        "wait, and the errors of the waits the page showed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--users", type=int, default=10_000, metavar="N", help="default 10000")
    run.add_argument(
        "--over", type=float, default=30.0, metavar="MINUTES", help="arrival span (default 30)"
    )
    run.add_argument(
        "--per-minute", type=int, default=200, metavar="N", help="new_users_per_minute (200)"
    )
    run.add_argument(
        "--active", type=int, default=2000, metavar="N", help="total_active_users (2000)"
    )
    run.add_argument(
        "--browse", type=float, default=60.0, metavar="SECONDS", help="browse time (60)"
    )
    run.add_argument(
        "--session", type=float, default=300.0, metavar="SECONDS", help="session_duration (300)"
    )
    run.add_argument(
        "--refresh", type=float, default=20.0, metavar="SECONDS", help="refresh_interval (20)"
    )
    run.add_argument(
        "--method", choices=("fifo", "random", "both"), default="both", help="default both"
    )
    run.add_argument("--seed", type=int, default=0, metavar="S", help="default 0")
    run.add_argument(
        "--json", metavar="PATH", help="write the results as JSON to PATH ('-': stdout only)"
    )
    run.add_argument(
        "--plot", metavar="DIR", help="write PNG heatmaps to DIR (needs the plot extra)"
    )
    run.add_argument(
        "--progress",
        action="store_true",
        help="draw a progress bar on stderr (the default when stderr is a terminal)",
    )
    run.set_defaults(subparser=run)


def _waitingroom_simulate(
    args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO
) -> None:
    if not 1 <= args.users <= MAX_USERS:
        parser.error(f"--users is {args.users}; it must be in 1..{MAX_USERS}")
    if not 0 <= args.seed < 2**64:
        parser.error(f"--seed is {args.seed}; it must be in 0..{2**64 - 1}")
    if args.plot is not None:
        _require_matplotlib(parser)
    config = WaitingRoomConfig(
        total_active_users=args.active,
        new_users_per_minute=args.per_minute,
        session_duration=args.session,
        refresh_interval=args.refresh,
        queued_cookie_lifetime=max(300.0, 2.0 * args.refresh),
    )
    arrivals = uniform_arrivals(args.users, args.over, seed=args.seed)
    methods = ("fifo", "random") if args.method == "both" else (args.method,)
    show_progress = args.progress or sys.stderr.isatty()
    results: dict[str, SimulationResult] = {}
    for method in methods:
        bar = _progress_bar(method) if show_progress else None
        results[method] = simulate_room(
            config, arrivals, browse_time=args.browse, method=method, seed=args.seed, progress=bar
        )
        if bar is not None:
            print(file=sys.stderr)
    document = {method: result.as_dict() for method, result in results.items()}
    text = json.dumps(document, sort_keys=True, indent=1, allow_nan=False) + "\n"
    if args.json == "-":
        out.write(text)
    elif args.json is not None:
        try:
            Path(args.json).write_text(text, encoding="utf-8")
        except OSError as error:
            raise _FileError(f"cannot write {args.json}: {error.strerror or error}") from None
    if args.json != "-":
        for line in _simulation_lines(args, results):
            print(line, file=out)
    if args.plot is not None:
        for method, result in results.items():
            path = _write_heatmap(result, Path(args.plot) / f"waitingroom-{method}.png")
            if args.json != "-":
                print(f"wrote {path}", file=out)


def _require_matplotlib(parser: argparse.ArgumentParser) -> None:
    """Exit with a usage error naming the extra when ``--plot`` cannot draw."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        parser.error("--plot needs matplotlib, which is not installed: pip install 'lbkit[plot]'")


def _write_heatmap(result: SimulationResult, path: Path) -> Path:
    """``result``'s heatmap as a PNG at ``path``, its directory made if need be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_heatmap(result, path)
    except OSError as error:
        raise _FileError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def _progress_bar(label: str) -> Callable[[int, int], None]:
    """A progress callback that redraws one line on stderr."""

    def draw(done: int, total: int) -> None:
        filled = 30 * done // total
        sys.stderr.write(
            f"\r{label:<7}[{'#' * filled}{'.' * (30 - filled)}] {100 * done // total:3d} % "
            f"{done:,}/{total:,} users admitted"
        )
        sys.stderr.flush()

    return draw


def _simulation_lines(args: argparse.Namespace, results: dict[str, SimulationResult]) -> list[str]:
    first = next(iter(results.values()))
    config = first.config
    lines = [
        f"{first.users:,} users over {args.over:g} minutes; {config.new_users_per_minute:,} let "
        f"in a minute, {config.total_active_users:,} at once; browsing {first.browse_time:g} s",
        "",
    ]

    def minutes(seconds: float) -> str:
        return f"{seconds / 60.0:.1f} min"

    def error(result: SimulationResult, percentile: float) -> str:
        found = result.estimate_error(percentile)
        if found is None or found.relative_error is None:
            return "-"
        return f"{100.0 * found.relative_error:+.1f} %"

    rows = [["", *results]]
    rows.append(["decisions", *(f"{result.requests:,}" for result in results.values())])
    rows.append(
        ["admitted a minute, most", *(str(r.max_admitted_per_minute) for r in results.values())]
    )
    rows.append(["active users, most", *(str(r.peak_active_users) for r in results.values())])
    for label, chance in (("wait, median", 0.5), ("wait, 90th percentile", 0.9)):
        rows.append([label, *(minutes(_wait_quantile(r, chance)) for r in results.values())])
    rows.append(["wait, longest", *(minutes(max(r.waits)) for r in results.values())])
    rows.append(
        [
            "rank correlation arrival/wait",
            *(
                "-" if r.rank_correlation is None else f"{r.rank_correlation:.3f}"
                for r in results.values()
            ),
        ]
    )
    for chance in (0.25, 0.5, 0.75):
        rows.append(
            [
                f"estimate error, p{round(100 * chance)}",
                *(error(r, chance) for r in results.values()),
            ]
        )
    lines.extend(_columns(rows))
    lines.append("")
    table = [["arrival minute", "arrived"]]
    for method in results:
        table[0].extend([f"{method} median", f"{method} p90"])
    summaries = [r.wait_by_arrival_minute for r in results.values()]
    for index, row in enumerate(summaries[0]):
        cells = [str(row.minute), f"{row.users:,}"]
        for summary in summaries:
            cells.extend([minutes(summary[index].median), minutes(summary[index].p90)])
        table.append(cells)
    lines.extend(_columns(table))
    lines.append("")
    lines.append(
        "estimate error: the median estimate shown, against the realised remaining waits of the "
        "check-ins that showed it,"
    )
    lines.append(
        "while users arrived (+: the page promised longer than it took); see "
        "lbkit.waitingroom.simulation"
    )
    return lines


def _wait_quantile(result: SimulationResult, chance: float) -> float:
    ordered = sorted(result.waits)
    position = chance * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _minutes_text(minutes: int | None) -> str:
    if minutes is None:
        return "unknown (nobody is being let in)"
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


# --- lbkit cookie -----------------------------------------------------------------------------

#: ``lbkit cookie inspect`` opens cookies for the room and cookie name a room has unless it is
#: configured otherwise: the defaults of WaitingRoomConfig and CookieSettings.
_DEFAULT_ROOM = WaitingRoomConfig(total_active_users=1, new_users_per_minute=1).room_id
_DEFAULT_COOKIE_NAME = CookieSettings().name
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
#: The end of the year 9999, the last time a datetime holds, in seconds since the epoch.
_LAST_SECOND = 253_402_300_800.0


def _add_cookie_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    cookie = commands.add_parser(
        "cookie",
        help="waiting-room cookies: new keys, and what a cookie holds",
        description="The waiting room's queue cookie (lbkit.waitingroom.cookies).",
    )
    actions = cookie.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    new = actions.add_parser(
        "new-key",
        help="a fresh random key for sealing cookies",
        description="Print a fresh random AES-GCM-SIV key (lbkit.waitingroom.cookies.new_key)\n"
        "with its key id, as 'key_id:base64url' (encode_key): the form a configuration file\n"
        "or environment variable holds, Keyring.from_strings reads and --key takes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    new.add_argument(
        "--id",
        type=int,
        default=1,
        metavar="N",
        dest="key_id",
        help=f"the key id, 0..{MAX_KEY_ID} (default 1)",
    )
    new.add_argument(
        "--size",
        type=int,
        choices=KEY_SIZES,
        default=32,
        help="key bytes: 16 (AES-128) or 32 (AES-256, the default)",
    )
    new.add_argument("--json", action="store_true", help="print the key as JSON")
    new.set_defaults(subparser=new)

    inspect = actions.add_parser(
        "inspect",
        help="what a cookie holds, for debugging",
        description="Authenticate a cookie TOKEN with the room's keys and print what it holds\n"
        "(CookieSealer.inspect), whatever its expiry, and whether it has expired at --now\n"
        "(default: the clock of this machine). A cookie the room would refuse for another\n"
        "reason prints the reason (malformed, too_large, wrong_room, unknown_key, tampered)\n"
        "and exits with status 1. For debugging only: a waiting room opens cookies with\n"
        "CookieSealer.open.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument("token", metavar="TOKEN", help="the cookie's value")
    inspect.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="KEY",
        dest="keys",
        help="a key as 'key_id:base64url' (lbkit cookie new-key); repeat it for every key of "
        "the room's keyring",
    )
    inspect.add_argument(
        "--room",
        default=_DEFAULT_ROOM,
        metavar="ROOM",
        help=f"the room id (WaitingRoomConfig.room_id, default {_DEFAULT_ROOM!r})",
    )
    inspect.add_argument(
        "--cookie-name",
        default=_DEFAULT_COOKIE_NAME,
        metavar="NAME",
        help="the cookie's name (CookieSettings.name; a __Host- prefix is dropped, default "
        f"{_DEFAULT_COOKIE_NAME!r})",
    )
    inspect.add_argument(
        "--now",
        type=float,
        metavar="T",
        help="when to check the expiry, seconds since the epoch (default: the clock)",
    )
    inspect.add_argument("--json", action="store_true", help="print the fields as JSON")
    inspect.set_defaults(subparser=inspect)


def _cookie(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    if args.action == "new-key":
        _cookie_new_key(args, parser, out)
    else:
        _cookie_inspect(args, parser, out)


def _cookie_new_key(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    if not 0 <= args.key_id <= MAX_KEY_ID:
        parser.error(f"--id is {args.key_id}; key ids are ints in 0..{MAX_KEY_ID}")
    encoded = encode_key(args.key_id, new_key(args.size))
    if args.json:
        document = {"key_id": args.key_id, "size": args.size, "key": encoded}
        print(json.dumps(document, sort_keys=True), file=out)
    else:
        print(encoded, file=out)


def _cookie_inspect(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> None:
    keyring = _cookie_keyring(args.keys, parser)
    if args.now is None:
        # A debugging command may read the clock; lbkit's logic takes `now` from its caller.
        now = time.time()
    elif 0.0 <= args.now < _LAST_SECOND:
        now = args.now
    else:
        parser.error(
            f"--now is {args.now:g}; it must be seconds since the epoch, 0 to {_LAST_SECOND:.0f} "
            "(the year 9999)"
        )
    cookie_name = args.cookie_name
    if cookie_name.startswith(HOST_PREFIX):
        cookie_name = cookie_name[len(HOST_PREFIX) :]
    try:
        sealer = CookieSealer(keyring, room_id=args.room, cookie_name=cookie_name)
    except ConfigError as error:
        # The keys are checked already: the room or the cookie name is refused.
        message = str(error)
        for name, option in (("room_id", "--room"), ("cookie_name", "--cookie-name")):
            if message.startswith(f"{name} "):
                parser.error(option + message[len(name) :])
        raise
    try:
        cookie = sealer.inspect(args.token)
    except InvalidCookie as error:
        raise InvalidCookie(
            f"the cookie is refused ({error.reason}): {error}", error.reason
        ) from None
    # The header (format version, key id, room tag) is in clear; inspect() has authenticated it.
    key_id = base64.urlsafe_b64decode(args.token + "=")[1]
    expired = now >= cookie.expires_at
    if args.json:
        document: dict[str, Any] = {
            "room_id": sealer.room_id,
            "cookie_name": sealer.cookie_name,
            "key_id": key_id,
            "state": cookie.state,
            **attrs.asdict(cookie),
            "bucket_start": cookie.bucket_start,
            "now": now,
            "expired": expired,
        }
        print(json.dumps(document, sort_keys=True), file=out)
        return
    left = round(cookie.expires_at - now, 3)
    if expired:
        validity = f"expired {_seconds_text(-left)} s ago"
    else:
        validity = f"valid for {_seconds_text(left)} s more"
    rows = [
        ("room", f"{sealer.room_id!r}, cookie {sealer.cookie_name!r}"),
        ("key id", str(key_id)),
        ("state", cookie.state),
        ("bucket", f"{cookie.bucket_id}: the minute from {_time_text(cookie.bucket_start)}"),
        ("last check-in", _time_text(cookie.last_check_in)),
        (
            "accepted at",
            "- (queued)" if cookie.accepted_at is None else _time_text(cookie.accepted_at),
        ),
        ("refresh interval", f"{_seconds_text(cookie.refresh_interval)} s"),
        ("expires at", _time_text(cookie.expires_at)),
        ("now", f"{_time_text(now)}: {validity}"),
    ]
    for line in _columns(rows, right=()):
        print(line, file=out)


def _cookie_keyring(encoded: Sequence[str], parser: argparse.ArgumentParser) -> Keyring:
    """The keyring of the --key options; a bad one is a usage error that names which --key."""
    keys: dict[int, bytes] = {}
    for position, text in enumerate(encoded, 1):
        option = "--key" if len(encoded) == 1 else f"--key #{position}"
        try:
            key_id, key = decode_key(text)
        except ConfigError as error:
            # decode_key's messages never echo the text: it may hold a real key.
            parser.error(f"{option}: {error}")
        if key_id in keys:
            parser.error(f"{option}: key id {key_id} is given twice")
        keys[key_id] = key
    # Which key is the primary does not matter for opening a cookie.
    return Keyring(keys, primary=next(iter(keys)))


def _seconds_text(seconds: float) -> str:
    """Seconds held to the millisecond, without trailing zeros: ``12.5``, ``1680000000``."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _time_text(seconds: float) -> str:
    """A time as ISO 8601 UTC to the millisecond, beside its seconds since the epoch."""
    milliseconds = round(seconds * 1000)
    try:
        moment = _EPOCH + datetime.timedelta(milliseconds=milliseconds)
    except OverflowError:
        iso = "before 0001-01-01" if milliseconds < 0 else "after 9999-12-31"
    else:
        iso = f"{moment:%Y-%m-%dT%H:%M:%S}.{milliseconds % 1000:03d}Z"
    return f"{iso} ({_seconds_text(seconds)})"
