"""Health: folding a batch of monitor results into per-location and per-endpoint verdicts.

``MonitorGroup.evaluate_many`` over 300 locations x 5 members x 1,000 endpoints (1,500,000
result codes; 20 x 5 x 50 in a smoke run), on both kernel paths. The pure path is the group's
baseline, so the ratio column is how many times faster the compiled fold is (the bar: at least
10), and the per-key column is the cost per result. The timed call includes the API's input
checks (one copy and one ``bytes.translate`` over the codes).

Both paths are checked against the reference kernel's verdicts. Nothing here asserts a time.
"""

from __future__ import annotations

import random
from array import array

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.conftest import timing
from benchmarks.report import Flavour, describe
from lbkit._pure import _health as reference
from lbkit.health import BatchVerdicts, Member, MonitorGroup

FOLD = pytest.mark.benchmark(group="health fold: result codes per (endpoint, location, member)")

#: An HTTP check (critical), a TCP check, a database check, and two observers.
MEMBERS = [
    Member("http", must_be_healthy=True),
    Member("tcp"),
    Member("db"),
    Member("dns", monitoring_only=True),
    Member("legacy", enabled=False),
]


@pytest.fixture(scope="module")
def batch_shape(pytestconfig: pytest.Config) -> tuple[int, list[str]]:
    """1,000 endpoints from 300 locations when timing (50 from 20 in a smoke run)."""
    endpoints, locations = (1_000, 300) if timing(pytestconfig) else (50, 20)
    return endpoints, [f"dc-{i:03d}" for i in range(locations)]


@pytest.fixture(scope="module")
def codes(batch_shape: tuple[int, list[str]]) -> bytes:
    """Seeded result codes: mostly up, some down, a few unknown (stale or missing)."""
    endpoints, locations = batch_shape
    rng = random.Random(5)
    size = endpoints * len(locations) * len(MEMBERS)
    return bytes(rng.choices((0, 1, 2), weights=(5, 85, 10), k=size))


@FOLD
def test_fold(
    benchmark: BenchmarkFixture,
    impl: Flavour,
    batch_shape: tuple[int, list[str]],
    codes: bytes,
) -> None:
    """group.evaluate_many(codes): per-location and per-endpoint verdicts with their reasons."""
    endpoints, locations = batch_shape
    group = MonitorGroup(MEMBERS)
    describe(
        benchmark,
        f"lbkit {impl.name}: MonitorGroup.evaluate_many",
        len(codes),
        baseline=impl.name == "pure",
    )

    def run() -> BatchVerdicts:
        return group.evaluate_many(codes, endpoints=endpoints, locations=locations)

    batch = benchmark(run)
    expected = reference.fold(
        codes,
        b"\x01\x00\x00\x00\x00",
        b"\x00\x01\x01\x00\x00",
        0,
        endpoints,
        len(locations),
        array("I"),
        0,
        0.5,
    )
    assert batch.endpoint_verdicts == expected[5]
    assert batch.location_verdicts == expected[0]
