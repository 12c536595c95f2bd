"""Steering kernels: one pick from Python beside ``random.random()``, and rendezvous hashing.

Groups:

* **picks** (16 entries, integer weights 1..7): the baseline is a bare ``random.random()`` call,
  the cheapest random draw Python has; beside it the stdlib's weighted pick a user would write,
  ``random.choices(population, weights)[0]`` (and with precomputed ``cum_weights``), and the
  kernels' picks on both paths: ``AliasTable.pick()``, ``P2C.pick()`` (with requests
  outstanding), ``EdfScheduler.next()`` and ``weighted_choice(rng, weights)``. The bars of
  issue 6: a fast ``AliasTable.pick`` or ``P2C.pick`` costs at most 3 times the baseline and
  is at least 3 times cheaper than the pure one; the pair table printed after a timed run gives
  both ratios.
* **rendezvous** over 16 and over 256 entries of unequal weights (the logarithmic scoring
  path): the pure kernel is the baseline, so the ratio column is how many times faster the
  compiled scan is.

Each pick is one call inside a list comprehension of ``PICK_CALLS`` calls, as in the hashing
benchmarks: timing a single call through pytest-benchmark's runner would cost more than the
call. Every variant binds what it calls to a local name first. Seeded picks are checked against
the reference kernel (the generator is reset at the start of each timed call, a single call
for 1,000 picks); the EDF schedule is checked by its period property, the stdlib peers by their
range. Nothing here asserts a time.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.conftest import timing
from benchmarks.report import Flavour, describe
from lbkit._pure import _steering as reference

PICK = pytest.mark.benchmark(group="steering pick: one pick from Python, 16 entries")
RENDEZVOUS_16 = pytest.mark.benchmark(group="rendezvous_pick: one key over 16 weighted entries")
RENDEZVOUS_256 = pytest.mark.benchmark(group="rendezvous_pick: one key over 256 weighted entries")

#: Picks per timed call, each one Python-level call in a list comprehension.
PICK_CALLS = 1_000
ENTRIES = 16
#: Integer weights 1..7: the EDF check needs integers; the others do not mind.
WEIGHTS = [float(1 + i % 7) for i in range(ENTRIES)]
#: Requests outstanding per entry in the P2C benchmark, so costs differ and ties are rare.
OUTSTANDING = [i * 5 % 7 for i in range(ENTRIES)]
SEED = 2024


def reference_picks(build: Any) -> list[int]:
    """The first PICK_CALLS picks of a reference kernel object built by ``build(rng)``."""
    pick = build(reference.Rng(SEED)).pick
    return [pick() for _ in range(PICK_CALLS)]


def p2c_with_load(steering: Any, rng: Any) -> Any:
    p2c = steering.P2C(WEIGHTS, rng, False)
    for index, count in enumerate(OUTSTANDING):
        for _ in range(count):
            p2c.begin(index)
    return p2c


@PICK
def test_random_baseline(benchmark: BenchmarkFixture) -> None:
    """random.random(): one draw of the stdlib's Mersenne Twister, the baseline."""
    describe(benchmark, "random.random()", PICK_CALLS, baseline=True)
    draw = random.random
    calls = range(PICK_CALLS)

    def run() -> list[float]:
        return [draw() for _ in calls]

    values = benchmark(run)
    assert len(values) == PICK_CALLS
    assert all(0.0 <= value < 1.0 for value in values)


@PICK
@pytest.mark.parametrize("cumulative", [False, True], ids=["weights", "cum_weights"])
def test_random_choices(benchmark: BenchmarkFixture, cumulative: bool) -> None:
    """random.choices(population, weights)[0]: the stdlib's weighted pick, per call."""
    population = list(range(ENTRIES))
    choose = random.Random(SEED).choices
    calls = range(PICK_CALLS)
    if cumulative:
        cum_weights = [sum(WEIGHTS[: i + 1]) for i in range(ENTRIES)]
        describe(benchmark, "random.choices(population, cum_weights=...)[0]", PICK_CALLS)

        def run() -> list[int]:
            return [choose(population, cum_weights=cum_weights)[0] for _ in calls]

    else:
        weights = WEIGHTS
        describe(benchmark, "random.choices(population, weights)[0]", PICK_CALLS)

        def run() -> list[int]:
            return [choose(population, weights)[0] for _ in calls]

    picks = benchmark(run)
    assert len(picks) == PICK_CALLS
    assert set(picks) <= set(population)


@PICK
def test_alias_pick(benchmark: BenchmarkFixture, impl: Flavour) -> None:
    """AliasTable.pick(): Walker/Vose alias sampling, two generator draws per pick."""
    steering = impl.kernels["steering"]
    rng = steering.Rng(SEED)
    describe(
        benchmark,
        f"lbkit {impl.name}: AliasTable.pick()",
        PICK_CALLS,
        operation="AliasTable.pick()",
        flavour=impl.name,
    )
    pick = steering.AliasTable(WEIGHTS, rng).pick
    restart = rng.setstate
    calls = range(PICK_CALLS)

    def run() -> list[int]:
        restart(SEED)
        return [pick() for _ in calls]

    assert benchmark(run) == reference_picks(lambda r: reference.AliasTable(WEIGHTS, r))


@PICK
def test_p2c_pick(benchmark: BenchmarkFixture, impl: Flavour) -> None:
    """P2C.pick(): two distinct draws, the lower outstanding / weight, requests outstanding."""
    steering = impl.kernels["steering"]
    rng = steering.Rng(SEED)
    describe(
        benchmark,
        f"lbkit {impl.name}: P2C.pick()",
        PICK_CALLS,
        operation="P2C.pick()",
        flavour=impl.name,
    )
    pick = p2c_with_load(steering, rng).pick
    restart = rng.setstate
    calls = range(PICK_CALLS)

    def run() -> list[int]:
        restart(SEED)
        return [pick() for _ in calls]

    assert benchmark(run) == reference_picks(lambda r: p2c_with_load(reference, r))


@PICK
def test_edf_next(benchmark: BenchmarkFixture, impl: Flavour) -> None:
    """EdfScheduler.next(): the earliest deadline, off a binary heap."""
    steering = impl.kernels["steering"]
    describe(
        benchmark,
        f"lbkit {impl.name}: EdfScheduler.next()",
        PICK_CALLS,
        operation="EdfScheduler.next()",
        flavour=impl.name,
    )
    pick = steering.EdfScheduler(WEIGHTS).next
    calls = range(PICK_CALLS)

    def run() -> list[int]:
        return [pick() for _ in calls]

    picks = benchmark(run)
    # Wherever the timed rounds left the schedule, every sum(weights) consecutive picks serve
    # each entry exactly its weight.
    period = int(sum(WEIGHTS))
    expected = {index: int(weight) for index, weight in enumerate(WEIGHTS)}
    for start in range(0, PICK_CALLS - period + 1, 7):
        assert Counter(picks[start : start + period]) == expected


@PICK
def test_weighted_choice(benchmark: BenchmarkFixture, impl: Flavour) -> None:
    """weighted_choice(rng, weights): one draw and a linear scan, for weights that change."""
    steering = impl.kernels["steering"]
    rng = steering.Rng(SEED)
    describe(
        benchmark,
        f"lbkit {impl.name}: weighted_choice(rng, weights)",
        PICK_CALLS,
        operation="weighted_choice(rng, weights)",
        flavour=impl.name,
    )
    choose = steering.weighted_choice
    weights = WEIGHTS
    restart = rng.setstate
    calls = range(PICK_CALLS)

    def run() -> list[int]:
        restart(SEED)
        return [choose(rng, weights) for _ in calls]

    expected_rng = reference.Rng(SEED)
    expected = [reference.weighted_choice(expected_rng, WEIGHTS) for _ in range(PICK_CALLS)]
    assert benchmark(run) == expected


def rendezvous_case(entries: int, keys: int) -> tuple[list[int], list[int], list[float]]:
    """Seeded key hashes, entry id hashes and unequal weights."""
    key_hashes = [reference.splitmix64(10_000 + k) for k in range(keys)]
    id_hashes = [reference.splitmix64(i) for i in range(entries)]
    weights = [float(1 + i % 7) for i in range(entries)]
    return key_hashes, id_hashes, weights


def run_rendezvous(benchmark: BenchmarkFixture, impl: Flavour, entries: int, keys: int) -> None:
    steering = impl.kernels["steering"]
    describe(
        benchmark,
        f"lbkit {impl.name}: rendezvous_pick(key, ids, weights)",
        keys,
        baseline=impl.name == "pure",
    )
    key_hashes, id_hashes, weights = rendezvous_case(entries, keys)
    pick = steering.rendezvous_pick

    def run() -> list[int]:
        return [pick(key, id_hashes, weights) for key in key_hashes]

    expected = [reference.rendezvous_pick(key, id_hashes, weights) for key in key_hashes]
    assert benchmark(run) == expected


@RENDEZVOUS_16
def test_rendezvous_16(
    benchmark: BenchmarkFixture, impl: Flavour, pytestconfig: pytest.Config
) -> None:
    """rendezvous_pick over 16 entries, one call per key (1,000 keys when timing)."""
    run_rendezvous(benchmark, impl, 16, 1_000 if timing(pytestconfig) else 50)


@RENDEZVOUS_256
def test_rendezvous_256(
    benchmark: BenchmarkFixture, impl: Flavour, pytestconfig: pytest.Config
) -> None:
    """rendezvous_pick over 256 entries, one call per key (200 keys when timing)."""
    run_rendezvous(benchmark, impl, 256, 200 if timing(pytestconfig) else 20)
