"""The ``lbkit`` command line: ``--version``, ``info``, ``hash`` and ``demo``.

Errors print one line (``lbkit: error: ...``) to stderr and exit with status 2 for a usage
mistake or 1 for a rejected value; no traceback.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

import lbkit
from lbkit import _kernels
from lbkit.errors import LbkitError
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


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lbkit",
        description="Load-balancing primitives: inspect, hash and tour what lbkit provides.",
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
        else:
            _demo(args.seed, out)
        out.flush()  # inside the try, so a reader that went away is handled below
    except LbkitError as error:
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
