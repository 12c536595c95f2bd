"""Subsetting: the Van der Corput order beside a Python sort, and ``subset_for`` beside slicing a
list.

Baselines:

* ``sorted(range(n), key=van_der_corput)``, the order a user would get with a Python key
  function, against ``vdc_order(n)`` (the bar: the compiled path at least 20 times cheaper
  for n = 1,000,000);
* slicing a precomputed Python list of the ring, ``ring[start:start + 50]`` with the starts
  worked out beforehand, against ``Ringsteady.subset_for(frontend)`` with 50 of 10,000
  backends (the bar: at most 3 times the slicing cost).

Each benchmark checks its answers against the baseline's. Nothing here asserts a time.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.conftest import timing
from benchmarks.report import Flavour, describe
from lbkit.subsetting import Ringsteady, van_der_corput, vdc_order

ORDER = pytest.mark.benchmark(group="vdc_order: indices sorted by Van der Corput position")
SUBSET = pytest.mark.benchmark(group="subset_for: 50 of 10,000 backends, one frontend per call")

#: Subset lookups per timed round, made in a list comprehension like the baseline's slices.
LOOKUPS = 1_000
SUBSET_SIZE = 50


@pytest.fixture(scope="module")
def order_size(pytestconfig: pytest.Config) -> int:
    """1,000,000 indices when timing (10,000 in a smoke run)."""
    return 1_000_000 if timing(pytestconfig) else 10_000


@pytest.fixture(scope="module")
def backend_count(pytestconfig: pytest.Config) -> int:
    """10,000 backends when timing (500 in a smoke run)."""
    return 10_000 if timing(pytestconfig) else 500


@pytest.fixture(scope="module")
def sliced_ring(backend_count: int) -> tuple[list[str], list[int]]:
    """The ring as a Python list extended by one subset (so no slice wraps), and each
    frontend's start in it: what the slicing baseline indexes."""
    ring = Ringsteady(
        [f"backend-{i}" for i in range(backend_count)],
        subset_size=SUBSET_SIZE,
        frontends=LOOKUPS,
    )
    members = [str(backend) for backend in ring.ring]
    starts = [members.index(str(ring.subset_for(frontend)[0])) for frontend in range(LOOKUPS)]
    return members + members[:SUBSET_SIZE], starts


@ORDER
def test_vdc_order_baseline(benchmark: BenchmarkFixture, order_size: int) -> None:
    """sorted(range(n), key=van_der_corput): a comparison sort with a Python key function."""
    describe(benchmark, "sorted(range(n), key=van_der_corput)", order_size, baseline=True)

    def run() -> list[int]:
        return sorted(range(order_size), key=van_der_corput)

    # A second per round would make the default calibration slow: three rounds are enough.
    result: list[int] = benchmark.pedantic(run, rounds=3)  # type: ignore[no-untyped-call]
    half = 1 << ((order_size - 1).bit_length() - 1)
    assert len(result) == order_size
    assert result[:3] == [0, half, half // 2]


@ORDER
def test_vdc_order(benchmark: BenchmarkFixture, impl: Flavour, order_size: int) -> None:
    """vdc_order(n): a bit-reversed counter, linear, no sort."""
    describe(benchmark, f"lbkit {impl.name}: vdc_order(n)", order_size)
    order = benchmark(vdc_order, order_size)
    assert order.tolist() == sorted(range(order_size), key=van_der_corput)


@SUBSET
def test_subset_for_baseline(
    benchmark: BenchmarkFixture, sliced_ring: tuple[list[str], list[int]]
) -> None:
    """ring[start:start + 50] per frontend, starts precomputed, in a list comprehension."""
    members, starts = sliced_ring
    describe(benchmark, "list slice of the precomputed ring", LOOKUPS, baseline=True)

    def run() -> list[list[str]]:
        return [members[start : start + SUBSET_SIZE] for start in starts]

    assert len(benchmark(run)) == LOOKUPS


@SUBSET
def test_subset_for(
    benchmark: BenchmarkFixture,
    impl: Flavour,
    backend_count: int,
    sliced_ring: tuple[list[str], list[int]],
) -> None:
    """ring.subset_for(frontend) per frontend: bounds check, binary search, one tuple slice."""
    ring = Ringsteady(
        [f"backend-{i}" for i in range(backend_count)],
        subset_size=SUBSET_SIZE,
        frontends=LOOKUPS,
    )
    describe(benchmark, f"lbkit {impl.name}: ring.subset_for(frontend)", LOOKUPS)
    subset_for = ring.subset_for
    frontends = range(LOOKUPS)

    def run() -> list[tuple[object, ...]]:
        return [subset_for(frontend) for frontend in frontends]

    members, starts = sliced_ring
    expected = [members[start : start + SUBSET_SIZE] for start in starts]
    assert [list(subset) for subset in benchmark(run)] == expected
