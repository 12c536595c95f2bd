"""Waiting room: the per-minute arithmetic, on both kernel paths.

* ``worker_budgets`` splits a minute's slots over 300 locations by last minute's traffic and
  then over each location's 16 workers (two levels of largest remainder: 301 + 300 x 16
  parts; 20 locations x 4 workers in a smoke run). The per-key column is the cost per part.
* ``plan_minute`` reserves the slots for 600 queued buckets (10 hours of arrivals; 30 in a
  smoke run), oldest first, after summing each bucket's unexpired places.

The pure path is each group's baseline, so the ratio column is how many times faster the
compiled kernels make the whole call (input checks included). Both paths are checked against
the same exact sums. Nothing here asserts a time: these run once a minute per room, so the
numbers say how little they cost, not a bar.
"""

from __future__ import annotations

import random

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.conftest import timing
from benchmarks.report import Flavour, describe
from lbkit.waitingroom import WaitingRoomConfig
from lbkit.waitingroom.allocator import BucketCounts, MinutePlan, MinuteState, plan_minute
from lbkit.waitingroom.distribution import WorkerBudgets, worker_budgets

SPLIT = pytest.mark.benchmark(group="waitingroom split: parts (locations + workers)")
PLAN = pytest.mark.benchmark(group="waitingroom plan: queued buckets")


@pytest.fixture(scope="module")
def fleet(pytestconfig: pytest.Config) -> tuple[dict[str, float], dict[str, int]]:
    """Seeded traffic for 300 locations with 16 workers each (20 x 4 in a smoke run)."""
    locations, workers = (300, 16) if timing(pytestconfig) else (20, 4)
    rng = random.Random(11)
    traffic = {f"dc-{i:03d}": float(rng.randint(0, 5000)) for i in range(locations)}
    return traffic, dict.fromkeys(traffic, workers)


@SPLIT
def test_worker_budgets(
    benchmark: BenchmarkFixture, impl: Flavour, fleet: tuple[dict[str, float], dict[str, int]]
) -> None:
    """worker_budgets(total, traffic, workers, anywhere=0.05)."""
    traffic, workers = fleet
    parts = len(traffic) + 1 + sum(workers.values())
    describe(benchmark, f"lbkit {impl.name}: worker_budgets", parts, baseline=impl.name == "pure")

    def run() -> WorkerBudgets:
        return worker_budgets(12_345, traffic, workers, anywhere=0.05)

    budgets = benchmark(run)
    assert sum(budgets.locations.values()) + budgets.anywhere == 12_345
    for name, split in budgets.workers.items():
        assert sum(split) == budgets.locations[name]


@pytest.fixture(scope="module")
def queue(pytestconfig: pytest.Config) -> MinuteState:
    """600 buckets (30 in a smoke run), each with places lapsing over the next five minutes."""
    count = 600 if timing(pytestconfig) else 30
    rng = random.Random(13)
    minute = 1000
    buckets = [
        BucketCounts(
            minute - age,
            expiring={minute * 60 + rng.randint(1, 300): rng.randint(1, 50) for _ in range(8)},
        )
        for age in range(count)
    ]
    return MinuteState(minute, active_users=9_000, admitted_new=0, buckets=buckets)


@PLAN
def test_plan_minute(benchmark: BenchmarkFixture, impl: Flavour, queue: MinuteState) -> None:
    """plan_minute(config, state, now): FIFO reservations over every queued bucket."""
    config = WaitingRoomConfig(total_active_users=10_000, new_users_per_minute=2_000)
    describe(
        benchmark,
        f"lbkit {impl.name}: plan_minute",
        len(queue.buckets),
        baseline=impl.name == "pure",
    )
    now = queue.minute * 60.0 + 5.0

    def run() -> MinutePlan:
        return plan_minute(config, queue, now=now)

    plan = benchmark(run)
    assert plan.available == 1_000
    assert plan.reserved == min(1_000, sum(queue.queued(now).values()))
