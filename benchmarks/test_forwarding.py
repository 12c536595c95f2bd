"""Forwarding tables: lookups beside the plain-Python loop a user would write, and the build
beside Maglev's population.

Baselines:

* one ``lookup`` against one ``mmh3.hash`` call on the same bytes (the bar: at most 1.5 times
  its cost, both hops returned);
* ``lookup_many`` over packed IPv4 flows against a Python loop of ``mmh3.hash`` plus a list
  index (the bar: at least 8 times cheaper per flow);
* building a 1,000-server table from weights against populating a Maglev table of 65,537
  entries for the same servers, with the default kernels (the bar: at most twice the Maglev
  time).

Each benchmark checks its answers against the baseline's. Nothing here asserts a time.
"""

from __future__ import annotations

import mmh3
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import lbkit
from benchmarks.conftest import timing
from benchmarks.data import KeySet
from benchmarks.report import Flavour, describe
from lbkit.forwarding import ForwardingTable, TableBuilder
from lbkit.forwarding.maglev import MaglevTable

LOOKUP = pytest.mark.benchmark(group="lookup: one key from Python, both hops")
LOOKUP_MANY = pytest.mark.benchmark(group="lookup_many: packed 12-byte IPv4 flows")
BUILD = pytest.mark.benchmark(group="build: 1,000 servers from weights")

#: Single lookups per timed round, made in a list comprehension like the baseline's calls.
SINGLE_CALLS = 1_000


@pytest.fixture(scope="module")
def fleet(pytestconfig: pytest.Config) -> dict[str, float]:
    """1,000 servers of seven capacity classes when timing (50 in a smoke run)."""
    servers = 1_000 if timing(pytestconfig) else 50
    return {f"server-{i:04d}": float(1 + i % 7) for i in range(servers)}


@pytest.fixture(scope="module")
def maglev_size(pytestconfig: pytest.Config) -> int:
    """Maglev's recommended prime size when timing (a small prime in a smoke run)."""
    return 65_537 if timing(pytestconfig) else 5_003


@pytest.fixture(scope="module")
def reference_hops(fleet: dict[str, float]) -> tuple[list[int], int]:
    """The first hops of the benchmark table as a plain list, and the index mask: what the
    plain-Python baselines index."""
    table = TableBuilder(fleet).table
    return table.first_hops.tolist(), table.bucket_count - 1


@LOOKUP
def test_lookup_baseline(benchmark: BenchmarkFixture, key_set: KeySet) -> None:
    """mmh3.hash alone, once per key, in a list comprehension."""
    keys = key_set.keys[:SINGLE_CALLS]
    describe(benchmark, "mmh3.hash(key) per key", len(keys), baseline=True)
    murmur = mmh3.hash

    def run() -> list[int]:
        return [murmur(key) for key in keys]

    assert benchmark(run) == [mmh3.hash(key) for key in keys]


@LOOKUP
def test_lookup(
    benchmark: BenchmarkFixture,
    impl: Flavour,
    key_set: KeySet,
    fleet: dict[str, float],
    reference_hops: tuple[list[int], int],
) -> None:
    """table.lookup(key) per key: hash, bucket, and the (first, second) server ids."""
    table = TableBuilder(fleet).table  # built under this flavour's kernels
    keys = key_set.keys[:SINGLE_CALLS]
    describe(benchmark, f"lbkit {impl.name}: table.lookup(key) per key", len(keys))
    lookup = table.lookup

    def run() -> list[tuple[object, object]]:
        return [lookup(key) for key in keys]

    hops, mask = reference_hops
    expected = [(table.servers[hops[h & mask]], None) for h in key_set.hashes[:SINGLE_CALLS]]
    assert benchmark(run) == expected


@LOOKUP_MANY
def test_lookup_many_baseline(
    benchmark: BenchmarkFixture, key_set: KeySet, reference_hops: tuple[list[int], int]
) -> None:
    """A Python loop: mmh3.hash of each key, then a list index by its low bits."""
    hops, mask = reference_hops
    describe(benchmark, "mmh3.hash + list index per key", key_set.count, baseline=True)
    murmur = mmh3.hash

    def run() -> list[int]:
        return [hops[murmur(key, 0, False) & mask] for key in key_set.keys]

    assert benchmark(run) == [hops[h & mask] for h in key_set.hashes]


@LOOKUP_MANY
def test_lookup_many(
    benchmark: BenchmarkFixture,
    impl: Flavour,
    key_set: KeySet,
    fleet: dict[str, float],
    reference_hops: tuple[list[int], int],
) -> None:
    """lookup_many over one buffer of packed keys: both hops' indices as two arrays."""
    table = TableBuilder(fleet).table
    describe(benchmark, f"lbkit {impl.name}: lookup_many(buffer, record_size=12)", key_set.count)
    first, second = benchmark(table.lookup_many, key_set.packed, record_size=12)
    hops, mask = reference_hops
    assert first.tolist() == [hops[h & mask] for h in key_set.hashes]
    assert len(second) == key_set.count


@BUILD
def test_build_baseline(
    benchmark: BenchmarkFixture, fleet: dict[str, float], maglev_size: int
) -> None:
    """Maglev: populating its entries (65,537 when timing) for the same weighted servers."""
    describe(
        benchmark,
        f"lbkit {lbkit.IMPLEMENTATION}: MaglevTable(weights, size={maglev_size})",
        1,
        baseline=True,
    )
    table = benchmark(MaglevTable, fleet, size=maglev_size)
    assert len(table.servers) == len(fleet)


@BUILD
def test_build(benchmark: BenchmarkFixture, impl: Flavour, fleet: dict[str, float]) -> None:
    """TableBuilder(weights).table: apportion, lay out and snapshot the buckets (131,072 for
    1,000 servers)."""
    describe(benchmark, f"lbkit {impl.name}: TableBuilder(weights).table", 1)

    def build() -> ForwardingTable:
        return TableBuilder(fleet).table

    table = benchmark(build)
    assert table.bucket_count >= 100 * len(fleet)
