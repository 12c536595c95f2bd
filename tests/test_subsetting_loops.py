"""lbkit.subsetting.loops: per-event-loop subsets (the plan, hysteresis, churn, balance, errors)."""

from __future__ import annotations

import math
import pickle
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, UnknownServer
from lbkit.subsetting import Ringsteady, bit_reverse, van_der_corput
from lbkit.subsetting.loops import (
    MAX_LOOPS,
    EventLoopChange,
    EventLoopPlan,
    EventLoopSubsets,
    plan_event_loops,
)

Subsets = tuple[tuple[Any, ...], ...]


# --- a naive model of the documented rules ----------------------------------------------------


def loop_cap(loops: int) -> int:
    """The largest power of two <= loops, by counting up."""
    cap = 1
    while cap * 2 <= loops:
        cap *= 2
    return cap


def ideal_count(origins: int, loops: int, max_size: int) -> int:
    """The module docs' rule, by trying powers of two in turn."""
    count = 1
    while count < loop_cap(loops) and math.ceil(origins / count) > max_size:
        count *= 2
    return count


def keeps(count: int, origins: int, loops: int, min_size: int, max_size: int, h: float) -> bool:
    """The documented hysteresis band for ``count`` subsets."""
    if origins == 0:
        return count == 1
    if origins < count:
        return False
    mean = origins / count
    if count > 1 and mean < min_size * (1 - h):
        return False
    return count == loop_cap(loops) or mean <= max_size * (1 + h)


def next_count(count: int, origins: int, loops: int, min_size: int, max_size: int, h: float) -> int:
    """The subset count after a change: kept inside the band, chosen afresh outside it."""
    if keeps(count, origins, loops, min_size, max_size, h):
        return count
    return ideal_count(origins, loops, max_size)


def member_sets(subsets: Subsets) -> list[set[Any]]:
    return [set(subset) for subset in subsets]


def assert_partition(loops: EventLoopSubsets, origins: set[Any]) -> None:
    """Subsets are disjoint, cover every origin, and differ in size by at most one."""
    subsets = loops.subsets()
    assert len(subsets) == loops.subset_count
    seen: set[Any] = set()
    for subset in subsets:
        assert not seen & set(subset)
        seen |= set(subset)
    assert seen == origins
    sizes = [len(subset) for subset in subsets]
    assert max(sizes) - min(sizes) <= 1
    n, count = len(origins), loops.subset_count
    assert all(n // count <= size <= -(-n // count) for size in sizes)


def changed_subsets(before: Subsets, after: Subsets) -> list[int]:
    return [
        r for r, (old, new) in enumerate(zip(before, after, strict=True)) if set(old) != set(new)
    ]


# --- the plan ---------------------------------------------------------------------------------


def test_netflix_example_400_origins_32_loops(impl: Any) -> None:
    """400 origins on 32 loops give 8 subsets of 50, replication 4, and 1,600 connections."""
    plan = plan_event_loops(400, loops=32)
    assert plan == EventLoopPlan(400, 32, 8, (50,) * 8, (4,) * 8)
    assert plan.replication == 4
    assert plan.connections == 1600
    subsets = EventLoopSubsets(range(400), loops=32)
    assert subsets.plan == plan
    for loop in range(32):
        assert subsets.subset_for_loop(loop) == tuple(range(loop % 8, 400, 8))
    assert_partition(subsets, set(range(400)))
    subsets._check()


@pytest.mark.parametrize(
    ("origins", "count"),
    [
        (0, 1),
        (1, 1),
        (24, 1),
        (25, 1),
        (50, 1),
        (51, 2),
        (100, 2),
        (101, 4),
        (200, 4),
        (201, 8),
        (300, 8),
        (400, 8),
        (401, 16),
        (800, 16),
        (801, 32),
        (1600, 32),
        (5000, 32),
    ],
)
def test_subset_count_rule(origins: int, count: int) -> None:
    """The count is the smallest power of two with subsets of at most 50, capped by 32 loops."""
    assert plan_event_loops(origins, loops=32).subset_count == count


def test_origins_201_to_400_plan_eight_subsets() -> None:
    """Every origin count from 201 to 400 plans 8 subsets (of 26 to 50 origins)."""
    for origins in range(201, 401):
        plan = plan_event_loops(origins, loops=32)
        assert plan.subset_count == 8
        assert 25 <= min(plan.subset_sizes) <= max(plan.subset_sizes) <= 50


def test_running_instance_keeps_eight_subsets_from_200_to_400(impl: Any) -> None:
    """A running instance keeps 8 subsets as its origins shrink from 400 to 200 and grow back."""
    subsets = EventLoopSubsets(range(400), loops=32)
    for origin in range(399, 199, -1):
        assert not subsets.remove_origin(origin).repartitioned
        assert subsets.subset_count == 8
    assert len(subsets) == 200
    for origin in range(200, 400):
        assert not subsets.add_origin(origin).repartitioned
    assert subsets.subset_count == 8
    subsets._check()


@given(
    origins=st.integers(0, 100_000),
    loops=st.integers(1, 200),
    min_size=st.integers(1, 60),
    spread=st.integers(0, 100),
)
def test_plan_properties(origins: int, loops: int, min_size: int, spread: int) -> None:
    """Plans: a power of two subsets, no more than loops, sizes and loops within one, sizes in
    range unless the loops cap the count, and the count is the smallest that fits."""
    max_size = 2 * min_size + spread
    plan = plan_event_loops(origins, loops=loops, min_size=min_size, max_size=max_size)
    count = plan.subset_count
    assert count & (count - 1) == 0
    assert count <= loops
    assert count == ideal_count(origins, loops, max_size)
    assert sum(plan.subset_sizes) == origins
    assert sum(plan.loops_per_subset) == loops
    assert max(plan.subset_sizes) - min(plan.subset_sizes) <= 1
    assert max(plan.loops_per_subset) - min(plan.loops_per_subset) <= 1
    assert list(plan.subset_sizes) == sorted(plan.subset_sizes, reverse=True)
    assert plan.replication == min(plan.loops_per_subset)
    if origins < min_size:
        assert count == 1
    if origins >= min_size and count < loop_cap(loops):
        assert min_size <= min(plan.subset_sizes) <= max(plan.subset_sizes) <= max_size
    if count > 1:
        assert math.ceil(origins / (count // 2)) > max_size


@given(origins=st.integers(0, 24), loops=st.integers(1, 64))
def test_fewer_origins_than_min_size_make_one_subset(impl: Any, origins: int, loops: int) -> None:
    """Fewer origins than the ideal minimum: every loop connects to every origin."""
    subsets = EventLoopSubsets(range(origins), loops=loops)
    assert subsets.subset_count == 1
    assert all(subsets.subset_for_loop(loop) == tuple(range(origins)) for loop in range(loops))


def test_loops_not_a_multiple_of_subsets(impl: Any) -> None:
    """With 12 loops and 8 subsets, subsets 0-3 serve two loops and 4-7 one (loop i -> i mod 8)."""
    plan = plan_event_loops(400, loops=12)
    assert plan.subset_count == 8
    assert plan.loops_per_subset == (2, 2, 2, 2, 1, 1, 1, 1)
    assert plan.replication == 1
    subsets = EventLoopSubsets(range(400), loops=12)
    assert subsets.loops_for_origin(0) == (0, 8)
    assert subsets.loops_for_origin(5) == (5,)
    assert subsets.subset_for_loop(9) == subsets.subset_for_loop(1)


def test_origins_not_a_multiple_of_subsets(impl: Any) -> None:
    """403 origins in 16 subsets: the first three hold 26, the rest 25."""
    subsets = EventLoopSubsets(range(403), loops=32)
    assert subsets.plan.subset_sizes == (26,) * 3 + (25,) * 13
    assert_partition(subsets, set(range(403)))


def test_loops_cap_the_subset_count(impl: Any) -> None:
    """Six loops allow at most 4 subsets, so 1,000 origins make subsets of 250 (over max_size)."""
    subsets = EventLoopSubsets(range(1000), loops=6)
    assert subsets.plan.subset_count == 4
    assert subsets.plan.subset_sizes == (250,) * 4
    subsets.add_origin(1000)
    assert subsets.subset_count == 4  # no upper limit at the cap
    one_loop = EventLoopSubsets(range(1000), loops=1)
    assert one_loop.subset_for_loop(0) == tuple(range(1000))


def test_empty_origins(impl: Any) -> None:
    """No origins: one empty subset; origins can then arrive, and all can leave again."""
    subsets = EventLoopSubsets([], loops=4)
    assert subsets.plan == EventLoopPlan(0, 4, 1, (0,), (4,))
    assert subsets.subset_for_loop(3) == ()
    subsets._check()
    subsets.update(range(120))
    assert subsets.subset_count == 4
    subsets._check()
    change = subsets.update([])
    assert change.repartitioned
    assert subsets.plan == EventLoopPlan(0, 4, 1, (0,), (4,))
    subsets._check()


# --- the ring ---------------------------------------------------------------------------------


@given(origins=st.integers(1, 600), loops=st.integers(1, 64))
def test_subsets_are_arcs_of_the_van_der_corput_ring(impl: Any, origins: int, loops: int) -> None:
    """Subset r holds exactly the indices whose Van der Corput position lies in arc bitrev(r)."""
    subsets = EventLoopSubsets(range(origins), loops=loops)
    count = subsets.subset_count
    bits = count.bit_length() - 1
    for r, subset in enumerate(subsets.subsets()):
        arc = bit_reverse(r, bits) if bits else 0
        expected = {i for i in range(origins) if math.floor(van_der_corput(i) * count) == arc}
        assert set(subset) == expected


@given(origins=st.integers(1, 600), loops=st.integers(1, 64))
def test_subsets_are_ringsteady_subsets(impl: Any, origins: int, loops: int) -> None:
    """With dense indices, subset r is Ringsteady's subset of frontend r, for S frontends."""
    subsets = EventLoopSubsets(range(origins), loops=loops)
    count = subsets.subset_count
    for r, subset in enumerate(subsets.subsets()):
        if not subset:
            continue
        ring = Ringsteady(range(origins), subset_size=len(subset), frontends=count)
        assert set(ring.subset_for(r)) == set(subset)


def test_doubling_the_subset_count_only_splits_subsets(impl: Any) -> None:
    """8 -> 16 subsets: every loop keeps half its subset and opens no connection but the new one."""
    subsets = EventLoopSubsets(range(400), loops=32)
    resize(subsets, 440, [399])
    assert subsets.subset_count == 8
    before = [set(subsets.subset_for_loop(loop)) for loop in range(32)]
    change = subsets.add_origin(440)
    assert change.repartitioned
    assert (change.previous_subset_count, change.subset_count) == (8, 16)
    assert change.loops == tuple(range(32))
    for loop in range(32):
        assert set(subsets.subset_for_loop(loop)) - {440} <= before[loop]
    subsets._check()


def test_halving_the_subset_count_only_merges_subsets(impl: Any) -> None:
    """16 -> 8 subsets: every loop keeps its subset (less the removed origin) and gains another."""
    subsets = EventLoopSubsets(range(401), loops=32)
    resize(subsets, 360, [0])
    assert subsets.subset_count == 16
    before = [set(subsets.subset_for_loop(loop)) for loop in range(32)]
    change = subsets.remove_origin(359)
    assert (change.previous_subset_count, change.subset_count) == (16, 8)
    for loop in range(32):
        assert before[loop] - {359} <= set(subsets.subset_for_loop(loop))
    subsets._check()


# --- hysteresis -------------------------------------------------------------------------------


def resize(subsets: EventLoopSubsets, target: int, fresh: list[int]) -> list[EventLoopChange]:
    """Add new origins or remove the most recent ones until there are ``target``."""
    changes = []
    while len(subsets) < target:
        fresh[0] += 1
        changes.append(subsets.add_origin(fresh[0]))
    while len(subsets) > target:
        changes.append(subsets.remove_origin(subsets.origins[-1]))
    return changes


@pytest.mark.parametrize("start", [400, 401])
def test_oscillating_around_a_boundary_never_flips(impl: Any, start: int) -> None:
    """N swinging between 400 and 401 (the 8/16 boundary) keeps whichever count it started with."""
    subsets = EventLoopSubsets(range(start), loops=32)
    first = subsets.subset_count
    fresh = [10_000]
    for _ in range(50):
        for target in (401, 400):
            assert not any(change.repartitioned for change in resize(subsets, target, fresh))
    assert subsets.subset_count == first == (8 if start == 400 else 16)
    subsets._check()


def test_band_edges_with_the_default_hysteresis(impl: Any) -> None:
    """8 subsets hold for 180..440 origins; 441 makes 16 and 179 makes 4."""
    fresh = [10_000]
    subsets = EventLoopSubsets(range(400), loops=32)
    resize(subsets, 440, fresh)
    assert subsets.subset_count == 8
    resize(subsets, 441, fresh)
    assert subsets.subset_count == 16
    subsets = EventLoopSubsets(range(400), loops=32)
    resize(subsets, 180, fresh)
    assert subsets.subset_count == 8
    resize(subsets, 179, fresh)
    assert subsets.subset_count == 4
    subsets._check()


def test_without_hysteresis_the_boundary_flips(impl: Any) -> None:
    """hysteresis=0 keeps only the ideal range: 399 <-> 401 flips 8 <-> 16 every time."""
    fresh = [10_000]
    subsets = EventLoopSubsets(range(399), loops=32, hysteresis=0)
    for _ in range(3):
        assert resize(subsets, 401, fresh)[-1].subset_count == 16
        assert resize(subsets, 399, fresh)[-1].subset_count == 8
    steady = EventLoopSubsets(range(399), loops=32)
    for _ in range(3):
        resize(steady, 401, fresh)
        resize(steady, 399, fresh)
        assert steady.subset_count == 8


@given(
    exponent=st.integers(0, 6),
    data=st.data(),
)
def test_small_oscillations_never_flip(impl: Any, exponent: int, data: st.DataObject) -> None:
    """Starting anywhere within h * min_size of a boundary, moves that stay there never flip."""
    boundary = 50 * 2**exponent
    reach = 2  # h * min_size is 2.5 with the defaults
    start = data.draw(st.integers(boundary - reach, boundary + reach))
    subsets = EventLoopSubsets(range(start), loops=1024)
    first = subsets.subset_count
    fresh = [10**9]
    for target in data.draw(st.lists(st.integers(boundary - reach, boundary + reach), max_size=12)):
        resize(subsets, target, fresh)
        assert subsets.subset_count == first
    subsets._check()


@given(
    loops=st.integers(1, 64),
    hysteresis=st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.5]),
    data=st.data(),
)
def test_subset_count_follows_the_documented_band(
    impl: Any, loops: int, hysteresis: float, data: st.DataObject
) -> None:
    """After every resize the count is the naive model's: kept inside the band, fresh outside."""
    start = data.draw(st.integers(0, 900))
    subsets = EventLoopSubsets(range(start), loops=loops, hysteresis=hysteresis)
    model = ideal_count(start, loops, 50)
    assert subsets.subset_count == model
    fresh = [10**9]
    for target in data.draw(st.lists(st.integers(0, 900), max_size=6)):
        while len(subsets) != target:
            resize(subsets, len(subsets) + (1 if len(subsets) < target else -1), fresh)
            model = next_count(model, len(subsets), loops, 25, 50, hysteresis)
            assert subsets.subset_count == model
        subsets._check()


# --- churn and balance ------------------------------------------------------------------------


def test_the_bar_10n_random_replacements_keep_sizes_within_one(impl: Any) -> None:
    """After 10*N random replacements (remove one, add a new one), sizes stay within one of N/S."""
    rng = random.Random(4)
    for origins, loops in [(400, 32), (403, 32), (37, 8), (1000, 48)]:
        subsets = EventLoopSubsets(range(origins), loops=loops, seed=origins)
        plan = subsets.plan
        low, high = origins // plan.subset_count, -(-origins // plan.subset_count)
        present = list(range(origins))
        for step in range(10 * origins):
            position = rng.randrange(len(present))
            present[position], present[-1] = present[-1], present[position]
            subsets.remove_origin(present.pop())
            present.append(origins + step)
            subsets.add_origin(origins + step)
            assert subsets.subset_count == plan.subset_count
            assert low <= min(subsets.plan.subset_sizes) <= max(subsets.plan.subset_sizes) <= high
            if step % 97 == 0:
                for loop in range(loops):
                    assert low <= len(subsets.subset_for_loop(loop)) <= high
        for loop in range(loops):
            assert low <= len(subsets.subset_for_loop(loop)) <= high
        subsets._check()


@settings(max_examples=30)
@given(origins=st.integers(1, 120), loops=st.integers(1, 16), seed=st.integers(0, 2**32 - 1))
def test_random_replacements_keep_the_plan(impl: Any, origins: int, loops: int, seed: int) -> None:
    """10*N random replacements never change the count, and sizes stay within one of N/S."""
    rng = random.Random(seed)
    subsets = EventLoopSubsets(range(origins), loops=loops, min_size=4, max_size=8, seed=seed)
    count = subsets.subset_count
    for fresh in range(origins, 11 * origins):
        subsets.remove_origin(rng.choice(subsets.origins))
        subsets.add_origin(fresh)
        assert subsets.subset_count == count
        sizes = subsets.plan.subset_sizes
        assert origins // count <= min(sizes) <= max(sizes) <= -(-origins // count)
    subsets._check()


@given(origins=st.integers(2, 300), loops=st.integers(1, 40), data=st.data())
def test_one_origin_changes_at_most_one_member_of_each_subset(
    impl: Any, origins: int, loops: int, data: st.DataObject
) -> None:
    """Add: one subset gains one. Remove: at most two subsets change, by one member each. Replace:
    one subset swaps one member. The change names exactly the loops that changed."""
    subsets = EventLoopSubsets(range(origins), loops=loops, min_size=3, max_size=6, hysteresis=0.5)
    for fresh in range(origins, origins + 8):
        before = subsets.subsets()
        action = data.draw(st.sampled_from(["add", "remove", "replace"])) if len(subsets) else "add"
        victim = data.draw(st.sampled_from(subsets.origins)) if len(subsets) else -1
        if action == "add":
            change = subsets.add_origin(fresh)
        elif action == "remove":
            change = subsets.remove_origin(victim)
        else:
            change = subsets.replace_origin(victim, fresh)
        after = subsets.subsets()
        if change.repartitioned:
            assert change.loops == tuple(range(loops))
            continue
        changed = changed_subsets(before, after)
        for r in changed:
            assert len(set(before[r]) - set(after[r])) <= 1
            assert len(set(after[r]) - set(before[r])) <= 1
        assert len(changed) <= {"add": 1, "remove": 2, "replace": 1}[action]
        assert len(change.moved) <= (action == "remove")
        assert change.loops == tuple(i for i in range(loops) if i % subsets.subset_count in changed)
        subsets._check()


def test_replace_and_update_touch_one_subset_per_replacement(impl: Any) -> None:
    """update() pairs each leaving origin with an arriving one, which takes its place."""
    subsets = EventLoopSubsets(range(400), loops=32)
    before = subsets.subsets()
    origins = [o for o in range(400) if o not in (3, 17)] + ["a", "b"]
    change = subsets.update(origins)
    assert change.removed == (3, 17)
    assert change.added == ("a", "b")
    assert change.moved == ()
    assert changed_subsets(before, subsets.subsets()) == [1, 3]
    assert change.loops == tuple(loop for loop in range(32) if loop % 8 in (1, 3))
    assert subsets.subset_of("a") == 3
    assert subsets.subset_of("b") == 1
    assert subsets.update(origins) == EventLoopChange((), (), (), (), 8, 8)


def test_removal_moves_one_origin_only_when_sizes_would_differ_by_two(impl: Any) -> None:
    """Removing from a subset of 25 while others hold 26 moves the highest-index origin over."""
    subsets = EventLoopSubsets(range(403), loops=32)  # 16 subsets: 26, 26, 26, then 25s
    change = subsets.remove_origin(10)  # subset 10 drops to 24
    assert change.moved == (402,)  # index 402 is in subset 2, one of the largest
    assert subsets.subset_of(402) == 10
    assert subsets.plan.subset_sizes == (26, 26) + (25,) * 14
    change = subsets.remove_origin(0)  # subset 0 drops from 26 to 25: no move
    assert change.moved == ()
    subsets._check()


def test_added_origin_fills_the_lowest_free_index_of_a_smallest_subset(impl: Any) -> None:
    """A newcomer takes the index a departed origin freed, when its subset is among the smallest."""
    subsets = EventLoopSubsets(range(400), loops=32)
    subsets.remove_origin(21)  # subset 5
    subsets.remove_origin(14)  # subset 6
    subsets.add_origin("x")
    assert subsets.subset_of("x") == 6
    assert subsets.subset_for_loop(6)[:3] == (6, "x", 22)
    subsets._check()


# --- the stateful test ------------------------------------------------------------------------


class EventLoopMachine(RuleBasedStateMachine):
    """Random add / remove / replace / update rounds against a naive model of the rules."""

    def __init__(self) -> None:
        super().__init__()
        self.model: set[Any] = set()
        self.count = 1
        self.fresh = 0
        self.loops = 1
        self.hysteresis = 0.0
        self.subsets: EventLoopSubsets

    def new_id(self) -> str:
        self.fresh += 1
        return f"origin-{self.fresh}"

    @initialize(
        origins=st.integers(0, 60),
        loops=st.integers(1, 20),
        hysteresis=st.sampled_from([0.0, 0.1, 0.3]),
        seed=st.none() | st.integers(0, 2**32 - 1),
    )
    def start(self, origins: int, loops: int, hysteresis: float, seed: int | None) -> None:
        ids = [self.new_id() for _ in range(origins)]
        self.loops, self.hysteresis = loops, hysteresis
        self.subsets = EventLoopSubsets(
            ids, loops=loops, min_size=2, max_size=5, hysteresis=hysteresis, seed=seed
        )
        self.model = set(ids)
        self.count = ideal_count(origins, loops, 5)

    def after(self, change: EventLoopChange, before: Subsets) -> None:
        self.count = next_count(self.count, len(self.model), self.loops, 2, 5, self.hysteresis)
        assert change.subset_count == self.count
        if not change.repartitioned:
            changed = changed_subsets(before, self.subsets.subsets())
            assert change.loops == tuple(
                loop for loop in range(self.loops) if loop % self.count in changed
            )

    @rule(extra=st.integers(1, 3))
    def add(self, extra: int) -> None:
        for _ in range(extra):
            before = self.subsets.subsets()
            origin = self.new_id()
            self.model.add(origin)
            self.after(self.subsets.add_origin(origin), before)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        before = self.subsets.subsets()
        origin = data.draw(st.sampled_from(sorted(self.model)))
        self.model.discard(origin)
        self.after(self.subsets.remove_origin(origin), before)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def replace(self, data: st.DataObject) -> None:
        before = self.subsets.subsets()
        old = data.draw(st.sampled_from(sorted(self.model)))
        new = self.new_id()
        self.model.discard(old)
        self.model.add(new)
        change = self.subsets.replace_origin(old, new)
        assert change.moved == ()
        self.after(change, before)

    @rule(data=st.data(), arrivals=st.integers(0, 12))
    def update(self, data: st.DataObject, arrivals: int) -> None:
        before = self.subsets.subsets()
        staying = data.draw(st.sets(st.sampled_from(sorted(self.model)))) if self.model else set()
        arriving = [self.new_id() for _ in range(arrivals)]
        wanted = [*sorted(staying), *arriving]
        change = self.subsets.update(wanted)
        assert set(change.removed) == self.model - staying
        assert change.added == tuple(arriving)
        self.model = set(wanted)
        self.after(change, before)

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "subsets"):
            return
        self.subsets._check()
        assert set(self.subsets.origins) == self.model
        assert len(self.subsets) == len(self.model)
        assert self.subsets.subset_count == self.count
        assert_partition(self.subsets, self.model)
        for loop in range(self.loops):
            assert self.subsets.subset_for_loop(loop) == self.subsets.subsets()[loop % self.count]


def test_random_rounds_against_the_model(impl: Any) -> None:
    """The state machine above, on each kernel path: every step keeps every invariant."""
    run_state_machine_as_test(
        EventLoopMachine, settings=settings(settings.default, stateful_step_count=25)
    )


# --- determinism, seeds, values ---------------------------------------------------------------


def test_seed_shuffles_the_initial_order_deterministically(impl: Any) -> None:
    """The same seed gives the same subsets; another seed gives others; None keeps the order."""
    ids = [f"node-{i}" for i in range(200)]
    one = EventLoopSubsets(ids, loops=16, seed=7)
    assert one.subsets() == EventLoopSubsets(ids, loops=16, seed=7).subsets()
    assert one.subsets() != EventLoopSubsets(ids, loops=16, seed=8).subsets()
    assert sorted(one.origins) == sorted(ids)
    assert EventLoopSubsets(ids, loops=16).origins == tuple(ids)


def test_accessors_and_repr(impl: Any) -> None:
    """Accessors report the configuration; repr, len and `in` describe the state."""
    subsets = EventLoopSubsets(["a", 1, "c"], loops=3, min_size=1, max_size=2, hysteresis=0.25)
    assert (subsets.loops, subsets.min_size, subsets.max_size) == (3, 1, 2)
    assert subsets.hysteresis == 0.25
    assert repr(subsets) == "EventLoopSubsets(origins=3, loops=3, subset_count=2)"
    assert len(subsets) == 3
    assert "a" in subsets
    assert "b" not in subsets
    assert [] not in subsets
    assert subsets.origins == ("a", 1, "c")
    assert subsets.loops_for_origin(1) == (1,)


def test_pickle_round_trip(impl: Any) -> None:
    """A pickled instance resumes with the same subsets and keeps working."""
    subsets = EventLoopSubsets(range(300), loops=32, seed=3)
    subsets.remove_origin(5)
    copy = pickle.loads(pickle.dumps(subsets))
    assert copy.subsets() == subsets.subsets()
    copy.add_origin("x")
    copy._check()


def test_values_are_frozen() -> None:
    """Plans and changes are immutable values."""
    plan = plan_event_loops(400, loops=32)
    with pytest.raises(AttributeError):
        plan.subset_count = 4  # type: ignore[misc]
    change = EventLoopSubsets(range(4), loops=2).add_origin(9)
    with pytest.raises(AttributeError):
        change.loops = ()  # type: ignore[misc]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"loops": 0}, ConfigError, f"loops is 0; it must be in 1..{MAX_LOOPS}"),
        ({"loops": -3}, ConfigError, f"loops is -3; it must be in 1..{MAX_LOOPS}"),
        (
            {"loops": MAX_LOOPS + 1},
            ConfigError,
            f"loops is {MAX_LOOPS + 1}; it must be in 1..{MAX_LOOPS}",
        ),
        ({"loops": True}, ArgumentTypeError, "loops is bool; it must be an int"),
        ({"loops": 4.0}, ArgumentTypeError, "loops is float; it must be an int"),
        ({"loops": 4, "min_size": 0}, ConfigError, "min_size is 0; it must be in 1..1073741823"),
        ({"loops": 4, "max_size": 0}, ConfigError, "max_size is 0; it must be in 1..2147483647"),
        ({"loops": 4, "min_size": "25"}, ArgumentTypeError, "min_size is str; it must be an int"),
        (
            {"loops": 4, "min_size": 25, "max_size": 49},
            ConfigError,
            "max_size is 49 and min_size is 25; max_size must be >= 2 * min_size, since subset counts are powers of two and sizes move by factors of two",
        ),
        (
            {"loops": 4, "hysteresis": -0.1},
            ConfigError,
            "hysteresis is -0.1; it must be a fraction in 0..0.5",
        ),
        (
            {"loops": 4, "hysteresis": 0.6},
            ConfigError,
            "hysteresis is 0.6; it must be a fraction in 0..0.5",
        ),
        (
            {"loops": 4, "hysteresis": math.nan},
            ConfigError,
            "hysteresis is nan; it must be a fraction in 0..0.5",
        ),
        (
            {"loops": 4, "hysteresis": math.inf},
            ConfigError,
            "hysteresis is inf; it must be a fraction in 0..0.5",
        ),
        (
            {"loops": 4, "hysteresis": "0.1"},
            ArgumentTypeError,
            "hysteresis is str; it must be a number",
        ),
        (
            {"loops": 4, "hysteresis": False},
            ArgumentTypeError,
            "hysteresis is bool; it must be a number",
        ),
        ({"loops": 4, "seed": -1}, ConfigError, "seed is -1; it must be in 0..4294967295"),
        (
            {"loops": 4, "seed": 2**32},
            ConfigError,
            "seed is 4294967296; it must be in 0..4294967295",
        ),
        ({"loops": 4, "seed": 1.0}, ArgumentTypeError, "seed is float; it must be an int"),
    ],
)
def test_bad_configuration_is_refused(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Each configuration mistake raises the lbkit error whose message names it and the rule."""
    with pytest.raises(error) as raised:
        EventLoopSubsets(["a", "b"], **kwargs)
    assert str(raised.value) == message
    if "hysteresis" not in kwargs and "seed" not in kwargs:
        with pytest.raises(error) as raised:
            plan_event_loops(2, **kwargs)
        assert str(raised.value) == message


@pytest.mark.parametrize(
    ("origins", "error", "message"),
    [
        (["a", "b", "a"], ConfigError, "origins names 'a' twice; origin ids must be unique"),
        ([1, 2, 1], ConfigError, "origins names 1 twice; origin ids must be unique"),
        ("abc", ArgumentTypeError, "origins is str; pass an iterable of origin ids"),
        (b"abc", ArgumentTypeError, "origins is bytes; pass an iterable of origin ids"),
        (5, ArgumentTypeError, "origins is int; pass an iterable of origin ids"),
        (None, ArgumentTypeError, "origins is NoneType; pass an iterable of origin ids"),
        (["a", True], ArgumentTypeError, "origins[1] is bool; server ids must be str or int"),
        (["a", 1.5], ArgumentTypeError, "origins[1] is float; server ids must be str or int"),
        (
            ["a", ""],
            ConfigError,
            "origins[1] is 0 bytes of UTF-8; str server ids must be 1..255 bytes",
        ),
        (
            [2**63],
            ConfigError,
            f"origins[0] is {2**63}; int server ids must fit in a signed 64-bit integer",
        ),
    ],
)
def test_bad_origins_are_refused(origins: Any, error: type[Exception], message: str) -> None:
    """Duplicate, malformed and non-iterable origins are refused, naming the position."""
    with pytest.raises(error) as raised:
        EventLoopSubsets(origins, loops=4)
    assert str(raised.value) == message


def test_bad_origin_count_for_a_plan() -> None:
    """plan_event_loops refuses negative and non-int origin counts."""
    with pytest.raises(ConfigError, match=r"^origins is -1; it must be in 0\.\.268435456$"):
        plan_event_loops(-1, loops=4)
    with pytest.raises(ArgumentTypeError, match=r"^origins is float; it must be an int$"):
        plan_event_loops(4.0, loops=4)  # type: ignore[arg-type]


def test_bad_changes_are_refused_and_change_nothing(impl: Any) -> None:
    """Unknown, duplicate and malformed origins in changes raise and leave the subsets as they were."""
    subsets: Any = EventLoopSubsets(range(100), loops=8)  # Any: the calls break the types
    before = subsets.subsets()
    cases: list[tuple[Any, type[Exception], str]] = [
        (
            lambda: subsets.add_origin(5),
            ConfigError,
            "origin 5 is already present; origin ids must be unique",
        ),
        (
            lambda: subsets.add_origin(True),
            ArgumentTypeError,
            "origin is bool; server ids must be str or int",
        ),
        (
            lambda: subsets.remove_origin(500),
            UnknownServer,
            "origin is 500, which is not one of the origins",
        ),
        (
            lambda: subsets.remove_origin([1]),
            UnknownServer,
            "origin is [1], which is not one of the origins",
        ),
        (
            lambda: subsets.replace_origin(500, "x"),
            UnknownServer,
            "old is 500, which is not one of the origins",
        ),
        (
            lambda: subsets.replace_origin(1, 2),
            ConfigError,
            "new is 2, which is already present; origin ids must be unique",
        ),
        (
            lambda: subsets.replace_origin(1, None),
            ArgumentTypeError,
            "new is NoneType; server ids must be str or int",
        ),
        (
            lambda: subsets.update([1, 2, 1]),
            ConfigError,
            "origins names 1 twice; origin ids must be unique",
        ),
        (
            lambda: subsets.update([*range(50), 2.5]),
            ArgumentTypeError,
            "origins[50] is float; server ids must be str or int",
        ),
        (
            lambda: subsets.subset_of("zz"),
            UnknownServer,
            "origin is 'zz', which is not one of the origins",
        ),
        (
            lambda: subsets.loops_for_origin("zz"),
            UnknownServer,
            "origin is 'zz', which is not one of the origins",
        ),
        (lambda: subsets.subset_for_loop(8), InvalidArgument, "loop is 8; loops are numbered 0..7"),
        (
            lambda: subsets.subset_for_loop(-1),
            InvalidArgument,
            "loop is -1; loops are numbered 0..7",
        ),
        (
            lambda: subsets.subset_for_loop(True),
            ArgumentTypeError,
            "loop is bool; it must be an int",
        ),
        (lambda: subsets.subset_for_loop("0"), ArgumentTypeError, "loop is str; it must be an int"),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as raised:
            call()
        assert str(raised.value) == message
    assert subsets.subsets() == before
    subsets._check()
