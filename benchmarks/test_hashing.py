"""Hashing: lbkit's kernels, through the public API, beside the loop a user would otherwise write.

The baseline of every group is ``mmh3.hash(key, 0, signed=False)`` called once per key in a list
comprehension, the cheapest Python loop there is, over the same keys. lbkit variants take the
``impl`` fixture, so each runs once with the compiled kernels (``fast``) and once with the
pure-Python ones (``pure``). Every benchmark asserts that its output equals the baseline's
hashes: the pure path must give identical output, and a fast result that is wrong is no result.
Nothing here asserts a time; the ratios are printed at the end of a timed run.
"""

from __future__ import annotations

import socket
import struct
from array import array

import mmh3
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.data import FlowSet, KeySet
from benchmarks.report import Flavour, describe
from lbkit.hashing import (
    IPV4_FLOW_KEY_SIZE,
    flow_key,
    hash_flow,
    hash_key,
    hash_many,
    hash_packed,
)

PACKED = pytest.mark.benchmark(group="hash_packed: one buffer of 12-byte IPv4 flow keys")
MANY = pytest.mark.benchmark(group="hash_many: a list of 12-byte bytes keys")
SINGLE = pytest.mark.benchmark(group="hash_key: one call per 12-byte key")
FLOW = pytest.mark.benchmark(group="hash_flow: IPv4 4-tuples, encoding included")

#: Single-key calls per round. A call costs about 100 ns, so each is timed inside a list
#: comprehension (about 10 ns a step, the same for every variant) rather than alone through
#: pytest-benchmark's runner, whose per-call overhead would hide most of the difference.
SINGLE_KEY_CALLS = 1_000


# The loops bind the function they call to a local name, as the cheapest Python loop does, so
# no variant pays a global or attribute lookup per key that another does not.


def mmh3_loop(keys: list[bytes]) -> list[int]:
    """The baseline: one ``mmh3.hash`` call per key, in a list comprehension."""
    murmur = mmh3.hash
    return [murmur(key, 0, signed=False) for key in keys]


def hash_key_loop(keys: list[bytes]) -> list[int]:
    """One ``hash_key`` call per key, in the same loop as the baseline's."""
    hash_one = hash_key
    return [hash_one(key) for key in keys]


def flow_key_loop(flows: list[tuple[str, str, int, int]]) -> list[bytes]:
    """The canonical key of each flow, one ``flow_key`` call per flow."""
    encode = flow_key
    return [encode(src, dst, sport, dport) for src, dst, sport, dport in flows]


def hash_flow_loop(
    flows: list[tuple[str, str, int, int]] | list[tuple[bytes, bytes, int, int]],
) -> list[int]:
    """The hash of each flow, one ``hash_flow`` call per flow."""
    hash_one = hash_flow
    return [hash_one(src, dst, sport, dport) for src, dst, sport, dport in flows]


def hand_rolled_loop(flows: list[tuple[str, str, int, int]]) -> list[int]:
    """What a user might write without lbkit: IPv4 only, no validation, no IPv4-mapped rule."""
    murmur, aton, ports = mmh3.hash, socket.inet_aton, struct.Struct("!HH").pack
    return [
        murmur(aton(src) + aton(dst) + ports(sport, dport), 0, signed=False)
        for src, dst, sport, dport in flows
    ]


@PACKED
def test_hash_packed_baseline(benchmark: BenchmarkFixture, key_set: KeySet) -> None:
    """The mmh3 loop over the keys as a list of 12-byte bytes objects."""
    describe(benchmark, "mmh3.hash loop over list[bytes]", key_set.count, baseline=True)
    assert benchmark(mmh3_loop, key_set.keys) == key_set.hashes


@PACKED
def test_hash_packed(benchmark: BenchmarkFixture, impl: Flavour, key_set: KeySet) -> None:
    """hash_packed over one buffer holding every key back to back."""
    describe(benchmark, f"lbkit {impl.name}: hash_packed(buffer, record_size=12)", key_set.count)
    hashes = benchmark(hash_packed, key_set.packed, record_size=IPV4_FLOW_KEY_SIZE)
    assert hashes == array("I", key_set.hashes)


@MANY
def test_hash_many_baseline(benchmark: BenchmarkFixture, key_set: KeySet) -> None:
    """The mmh3 loop over a list of 12-byte bytes keys."""
    describe(benchmark, "mmh3.hash loop over list[bytes]", key_set.count, baseline=True)
    assert benchmark(mmh3_loop, key_set.keys) == key_set.hashes


@MANY
def test_hash_many(benchmark: BenchmarkFixture, impl: Flavour, key_set: KeySet) -> None:
    """hash_many over the same list of 12-byte bytes keys."""
    describe(benchmark, f"lbkit {impl.name}: hash_many(keys)", key_set.count)
    assert benchmark(hash_many, key_set.keys) == array("I", key_set.hashes)


@SINGLE
def test_hash_key_baseline(benchmark: BenchmarkFixture, key_set: KeySet) -> None:
    """One mmh3.hash call per key, 1,000 keys in a list comprehension."""
    keys = key_set.keys[:SINGLE_KEY_CALLS]
    describe(benchmark, "mmh3.hash(key, 0, signed=False) per key", len(keys), baseline=True)
    assert benchmark(mmh3_loop, keys) == key_set.hashes[:SINGLE_KEY_CALLS]


@SINGLE
def test_hash_key(benchmark: BenchmarkFixture, impl: Flavour, key_set: KeySet) -> None:
    """One hash_key call per key (validation plus the kernel call), in the same loop."""
    keys = key_set.keys[:SINGLE_KEY_CALLS]
    describe(benchmark, f"lbkit {impl.name}: hash_key(key) per key", len(keys))
    assert benchmark(hash_key_loop, keys) == key_set.hashes[:SINGLE_KEY_CALLS]


@FLOW
def test_hash_flow_baseline(benchmark: BenchmarkFixture, flow_set: FlowSet) -> None:
    """The mmh3 loop over the flows' keys, already encoded: hashing alone."""
    describe(benchmark, "mmh3.hash loop over the encoded keys", flow_set.count, baseline=True)
    assert benchmark(mmh3_loop, flow_set.keys) == flow_set.hashes


@FLOW
def test_flow_key(benchmark: BenchmarkFixture, flow_set: FlowSet) -> None:
    """flow_key per flow from address strings: the encoding alone (no kernel involved)."""
    describe(benchmark, "flow_key loop, address strings", flow_set.count)
    assert benchmark(flow_key_loop, flow_set.tuples) == flow_set.keys


@FLOW
def test_hash_flow(benchmark: BenchmarkFixture, impl: Flavour, flow_set: FlowSet) -> None:
    """hash_flow per flow from address strings: encoding plus hashing."""
    describe(benchmark, f"lbkit {impl.name}: hash_flow loop, address strings", flow_set.count)
    assert benchmark(hash_flow_loop, flow_set.tuples) == flow_set.hashes


@FLOW
def test_hash_flow_packed_addresses(
    benchmark: BenchmarkFixture, impl: Flavour, flow_set: FlowSet
) -> None:
    """hash_flow per flow from 4-byte packed addresses, the cheapest input form."""
    describe(benchmark, f"lbkit {impl.name}: hash_flow loop, packed addresses", flow_set.count)
    assert benchmark(hash_flow_loop, flow_set.packed_tuples) == flow_set.hashes


@FLOW
def test_hash_flow_hand_rolled(benchmark: BenchmarkFixture, flow_set: FlowSet) -> None:
    """inet_aton + struct + mmh3.hash per flow: a hand-rolled IPv4-only encoding, for scale."""
    describe(benchmark, "inet_aton + struct + mmh3.hash loop (IPv4 only)", flow_set.count)
    assert benchmark(hand_rolled_loop, flow_set.tuples) == flow_set.hashes
