"""lbkit.waitingroom.distribution: slots split across locations and workers by the largest
remainder (exact sums, deterministic ties, the anywhere pool, per-location versus per-worker
budgets) on both kernel paths, the ``largest_remainder`` kernel across paths, and every
rejected input."""

from __future__ import annotations

import math
import random
from array import array
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, InvalidArgument
from lbkit.waitingroom.distribution import (
    LocationBudgets,
    WorkerBudgets,
    apportion,
    location_budgets,
    worker_budgets,
)

MAX_TOTAL = 2**32 - 1

weights_lists = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(0.0, 1e6, allow_nan=False),
        st.floats(0.0, 1e300, allow_nan=False),
        st.floats(0.0, 1e-300, allow_nan=False, allow_subnormal=True),
        st.integers(0, 10).map(float),
    ),
    min_size=1,
    max_size=40,
)
totals = st.one_of(st.integers(0, 1000), st.integers(0, MAX_TOTAL))


def exact_quotas(total: int, weights: list[float]) -> list[Fraction]:
    exact = [Fraction(weight) for weight in weights]
    weight_sum = sum(exact)
    if weight_sum == 0:
        return [Fraction(total, len(weights))] * len(weights)
    return [total * weight / weight_sum for weight in exact]


# --- examples ---------------------------------------------------------------------------------


def test_apportion_examples(impl: Any) -> None:
    """Floors first, then the largest remainders, ties to the lower index."""
    assert apportion(10, [1.0, 1.0, 1.0]) == (4, 3, 3)
    assert apportion(10, [3.0, 5.0, 2.0]) == (3, 5, 2)
    assert apportion(5, [3.0, 0.0, 1.0]) == (4, 0, 1)
    assert apportion(2, [1.0, 1.0, 1.0, 1.0]) == (1, 1, 0, 0)
    assert apportion(0, [1.0, 2.0]) == (0, 0)
    assert apportion(1, [5]) == (1,)


def test_all_zero_weights_split_evenly(impl: Any) -> None:
    """With no weight at all, every part counts as weight 1: the lower indices get the extras."""
    assert apportion(7, [0.0, 0.0]) == (4, 3)
    assert apportion(5, [0.0, 0.0, 0.0]) == (2, 2, 1)


def test_location_budgets_follow_last_minutes_traffic(impl: Any) -> None:
    """Each location gets its traffic share of the slots, whole numbers adding up to the total."""
    budgets = location_budgets(10, {"lhr": 20.0, "ams": 30.0, "fra": 50.0})
    assert budgets == LocationBudgets(
        total=10, locations={"ams": 3, "fra": 5, "lhr": 2}, anywhere=0
    )
    assert list(budgets.locations) == ["ams", "fra", "lhr"]
    assert budgets.budget("fra") == 5
    assert budgets.budget("sin") == 0


def test_ties_go_to_the_location_that_sorts_first(impl: Any) -> None:
    """Equal remainders are broken by location name, whatever order the mapping has."""
    forward = location_budgets(5, {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0})
    backward = location_budgets(5, {"d": 1.0, "c": 1.0, "b": 1.0, "a": 1.0})
    assert dict(forward.locations) == dict(backward.locations) == {"a": 2, "b": 1, "c": 1, "d": 1}


def test_a_location_without_history_gets_nothing_but_can_use_the_pool(impl: Any) -> None:
    """With anywhere=0.25, a quarter of the slots (by largest remainder) form a shared pool."""
    budgets = location_budgets(10, {"ams": 1.0, "fra": 1.0, "new": 0.0}, anywhere=0.25)
    assert dict(budgets.locations) == {"ams": 4, "fra": 4, "new": 0}
    assert budgets.anywhere == 2
    assert location_budgets(10, {"ams": 1.0, "new": 0.0}).budget("new") == 0


def test_no_history_anywhere(impl: Any) -> None:
    """With no traffic anywhere, the slots split evenly, or all go to the pool if there is one."""
    assert dict(location_budgets(5, {"a": 0.0, "b": 0.0}).locations) == {"a": 3, "b": 2}
    pooled = location_budgets(5, {"a": 0.0, "b": 0.0}, anywhere=0.1)
    assert dict(pooled.locations) == {"a": 0, "b": 0}
    assert pooled.anywhere == 5
    everything = location_budgets(5, {"a": 3.0}, anywhere=1.0)
    assert (everything.budget("a"), everything.anywhere) == (0, 5)


def test_worker_budgets_split_each_location_again(impl: Any) -> None:
    """Per-worker mode: a worker count splits evenly, weights split by the workers' traffic."""
    budgets = worker_budgets(10, {"ams": 30.0, "fra": 70.0}, {"ams": 2, "fra": [3.0, 1.0]})
    assert budgets == WorkerBudgets(
        total=10,
        locations={"ams": 3, "fra": 7},
        workers={"ams": (2, 1), "fra": (5, 2)},
        anywhere=0,
    )
    assert budgets.budget("fra", 1) == 2
    assert budgets.budget("fra", 2) == 0
    assert budgets.budget("sin", 0) == 0
    assert worker_budgets(3, {"a": 1.0}, {"a": [0.0, 0.0, 0.0, 0.0]}).workers["a"] == (1, 1, 1, 0)


def test_per_location_counter_avoids_the_early_queueing_of_per_worker_budgets(impl: Any) -> None:
    """The case for the exact mode: 10 slots at a location with 4 workers, and a burst of 10
    users that all land on worker 0. Per-worker budgets admit 3 and queue 7 while 7 slots lie
    unused on the other workers; one counter for the location admits all 10."""
    traffic = {"ams": 1.0}
    per_worker = worker_budgets(10, traffic, {"ams": 4})
    assert per_worker.workers["ams"] == (3, 3, 2, 2)
    burst = [0] * 10
    taken = [0, 0, 0, 0]
    for worker in burst:
        if taken[worker] < per_worker.budget("ams", worker):
            taken[worker] += 1
    assert sum(taken) == 3
    counter = 0
    budget = location_budgets(10, traffic).budget("ams")
    for _ in burst:
        if counter < budget:
            counter += 1
    assert counter == 10


# --- properties ---------------------------------------------------------------------------------


@given(total=totals, weights=weights_lists)
def test_apportion_is_exact_and_within_one_of_each_quota(
    impl: Any, total: int, weights: list[float]
) -> None:
    """The parts add up to the total, none is negative, each is the floor or the ceiling of its
    exact quota, and a zero weight gets nothing while another weight is positive."""
    parts = apportion(total, weights)
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)
    quotas = exact_quotas(total, weights)
    positive = any(weight > 0 for weight in weights)
    for part, quota, weight in zip(parts, quotas, weights, strict=True):
        assert abs(part - quota) < 1 + Fraction(1, 2**20) * (1 + quota)
        if positive and weight == 0:
            assert part == 0


@given(total=st.integers(0, 10_000), weights=st.lists(st.integers(0, 50), min_size=1, max_size=20))
def test_apportion_matches_hamiltons_method_on_exact_inputs(
    impl: Any, total: int, weights: list[int]
) -> None:
    """On small integer weights (exact quotas in floating point up to rounding of ties), the
    result is Hamilton's method computed with fractions, ties to the lower index, whenever no
    two remainders are within float rounding of each other."""
    parts = apportion(total, [float(weight) for weight in weights])
    quotas = exact_quotas(total, [float(weight) for weight in weights])
    floors = [math.floor(quota) for quota in quotas]
    remainders = [quota - floor for quota, floor in zip(quotas, floors, strict=True)]
    order = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    expected = list(floors)
    for index in order[: total - sum(floors)]:
        expected[index] += 1
    close = any(a != b and abs(a - b) < Fraction(1, 2**30) for a in remainders for b in remainders)
    if not close:
        assert list(parts) == expected


@given(
    total=totals,
    traffic=st.dictionaries(
        st.text(min_size=1, max_size=4), st.floats(0, 1e9), min_size=1, max_size=12
    ),
    anywhere=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_location_budgets_sum_exactly_and_do_not_depend_on_mapping_order(
    impl: Any, total: int, traffic: dict[str, float], anywhere: float, seed: int
) -> None:
    """Budgets and pool add up to the total, none is negative, and every worker that computes
    the split from the same numbers in a different order gets the same one."""
    budgets = location_budgets(total, traffic, anywhere=anywhere)
    assert sum(budgets.locations.values()) + budgets.anywhere == total
    assert all(budget >= 0 for budget in budgets.locations.values())
    assert budgets.anywhere >= 0
    assert list(budgets.locations) == sorted(traffic)
    if anywhere == 0.0:
        assert budgets.anywhere == 0
    items = list(traffic.items())
    random.Random(seed).shuffle(items)
    assert location_budgets(total, dict(items), anywhere=anywhere) == budgets


@given(
    total=totals,
    layout=st.lists(
        st.tuples(
            st.floats(0, 1e6),
            st.one_of(st.integers(1, 64), st.lists(st.floats(0, 1e3), min_size=1, max_size=8)),
        ),
        min_size=1,
        max_size=8,
    ),
    anywhere=st.sampled_from([0.0, 0.1]),
)
def test_worker_budgets_sum_exactly(
    impl: Any, total: int, layout: list[tuple[float, Any]], anywhere: float
) -> None:
    """Each location's workers share exactly its budget, and everything adds up to the total."""
    traffic = {f"loc{index}": seen for index, (seen, _) in enumerate(layout)}
    workers = {f"loc{index}": spec for index, (_, spec) in enumerate(layout)}
    budgets = worker_budgets(total, traffic, workers, anywhere=anywhere)
    assert budgets.locations == location_budgets(total, traffic, anywhere=anywhere).locations
    for name, spec in workers.items():
        split = budgets.workers[name]
        assert len(split) == (spec if isinstance(spec, int) else len(spec))
        assert sum(split) == budgets.locations[name]
        assert all(budget >= 0 for budget in split)
    assert sum(budgets.locations.values()) + budgets.anywhere == total


# --- the largest_remainder kernel ---------------------------------------------------------------


@given(total=totals, weights=weights_lists)
def test_largest_remainder_is_bit_identical_on_both_paths(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    total: int,
    weights: list[float],
) -> None:
    """Random totals and weights (zeros, huge, subnormal) give the same int64 array on both
    paths."""
    fast = fast_kernels["waitingroom"].largest_remainder(total, array("d", weights))
    pure = pure_kernels["waitingroom"].largest_remainder(total, array("d", weights))
    assert fast.typecode == pure.typecode == "q"
    assert fast == pure


def test_largest_remainder_refuses_to_overshoot_beyond_its_bounds(impl: Any) -> None:
    """Past MAX_TOTAL float quotas can round up so far that their floors exceed the total;
    both paths raise instead of over-allocating."""
    assert impl.waitingroom.MAX_TOTAL == MAX_TOTAL
    assert impl.waitingroom.MAX_PARTS == 65536
    with pytest.raises(InvalidArgument) as error:
        impl.waitingroom.largest_remainder(2**62, array("d", [1.0, 9.0]))
    assert str(error.value) == (
        "total is 4611686018427387904; it is too large to split exactly over 2 weights"
    )


def test_largest_remainder_at_its_bounds(impl: Any) -> None:
    """The largest total over the most parts still adds up exactly."""
    rng = random.Random(7)
    weights = array("d", [rng.random() for _ in range(65536)])
    parts = impl.waitingroom.largest_remainder(MAX_TOTAL, weights)
    assert sum(parts) == MAX_TOTAL
    assert min(parts) >= 0


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "kind", "text"),
    [
        (
            lambda: apportion(-1, [1.0]),
            InvalidArgument,
            "total is -1; it must be an int in 0..4294967295",
        ),
        (
            lambda: apportion(2**32, [1.0]),
            InvalidArgument,
            "total is 4294967296; it must be an int in 0..4294967295",
        ),
        (lambda: apportion(3.0, [1.0]), ArgumentTypeError, "total is float; it must be an int"),  # type: ignore[arg-type]
        (lambda: apportion(True, [1.0]), ArgumentTypeError, "total is bool; it must be an int"),
        (lambda: apportion(3, []), InvalidArgument, "weights has 0 entries; it must have 1..65536"),
        (
            lambda: apportion(3, [0.0] * 65537),
            InvalidArgument,
            "weights has 65537 entries; it must have 1..65536",
        ),
        (
            lambda: apportion(3, [1.0, -1.0]),
            InvalidArgument,
            "weights[1] is -1.0; it must be finite and >= 0",
        ),
        (
            lambda: apportion(3, [float("nan")]),
            InvalidArgument,
            "weights[0] is nan; it must be finite and >= 0",
        ),
        (
            lambda: apportion(3, [float("inf")]),
            InvalidArgument,
            "weights[0] is inf; it must be finite and >= 0",
        ),
        (
            lambda: apportion(3, [1e308, 1e308]),
            InvalidArgument,
            "weights add up to more than a float can hold; scale them down",
        ),
        (lambda: apportion(3, ["1"]), ArgumentTypeError, "weights[0] is str; it must be a number"),  # type: ignore[list-item]
        (lambda: apportion(3, "12"), ArgumentTypeError, "weights is str; it must be a sequence"),  # type: ignore[arg-type]
        (lambda: apportion(3, {1.0}), ArgumentTypeError, "weights is set; it must be a sequence"),  # type: ignore[arg-type]
        (
            lambda: location_budgets(3, [("a", 1.0)]),  # type: ignore[arg-type]
            ArgumentTypeError,
            "traffic is list; it must be a mapping",
        ),
        (
            lambda: location_budgets(3, {}),
            InvalidArgument,
            "traffic has 0 locations; it must have 1..65535",
        ),
        (
            lambda: location_budgets(3, {1: 1.0}),  # type: ignore[dict-item]
            ArgumentTypeError,
            "traffic has a int key; location names must be str",
        ),
        (
            lambda: location_budgets(3, {"": 1.0}),
            InvalidArgument,
            "traffic has an empty location name; names must be non-empty",
        ),
        (
            lambda: location_budgets(3, {"ams": -2}),
            InvalidArgument,
            "traffic['ams'] is -2; it must be finite and >= 0",
        ),
        (
            lambda: location_budgets(3, {"a": 1e308, "b": 1e308}),
            InvalidArgument,
            "traffic adds up to more than a float can hold; scale it down",
        ),
        (
            lambda: location_budgets(3, {"a": 1.0}, anywhere=1.5),
            InvalidArgument,
            "anywhere is 1.5; it must be a fraction in [0, 1]",
        ),
        (
            lambda: location_budgets(3, {"a": 1.0}, anywhere=float("nan")),
            InvalidArgument,
            "anywhere is nan; it must be a fraction in [0, 1]",
        ),
        (
            lambda: location_budgets(3, {"a": 1.0}, anywhere=True),
            ArgumentTypeError,
            "anywhere is bool; it must be a number",
        ),
        (
            lambda: worker_budgets(3, {"a": 1.0}, [2]),  # type: ignore[arg-type]
            ArgumentTypeError,
            "workers is list; it must be a mapping",
        ),
        (
            lambda: worker_budgets(3, {"a": 1.0, "b": 1.0}, {"a": 2}),
            InvalidArgument,
            "workers has no entry for location 'b'; give its worker count or weights",
        ),
        (
            lambda: worker_budgets(3, {"a": 1.0}, {"a": 2, "z": 1}),
            InvalidArgument,
            "workers names location 'z', which traffic does not list; list every location in both",
        ),
        (
            lambda: worker_budgets(3, {"a": 1.0}, {"a": 0}),
            InvalidArgument,
            "workers['a'] is 0; a worker count must be in 1..65536",
        ),
        (
            lambda: worker_budgets(3, {"a": 1.0}, {"a": "2"}),  # type: ignore[dict-item]
            ArgumentTypeError,
            "workers['a'] is str; it must be an int or a sequence of weights",
        ),
        (
            lambda: worker_budgets(3, {"a": 1.0}, {"a": []}),
            InvalidArgument,
            "workers['a'] has 0 entries; it must have 1..65536",
        ),
        (
            lambda: worker_budgets(3, {"a": 1.0}, {"a": [1.0, -0.5]}),
            InvalidArgument,
            "workers['a'][1] is -0.5; it must be finite and >= 0",
        ),
        (
            lambda: worker_budgets(3, {"a": 1.0}, {"a": 2}).budget("a", "0"),  # type: ignore[arg-type]
            ArgumentTypeError,
            "worker is str; it must be an int",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(
    impl: Any, make: Any, kind: type[Exception], text: str
) -> None:
    """Every rejected input raises the documented type with a message naming value and rule."""
    with pytest.raises(kind) as error:
        make()
    assert str(error.value) == text
