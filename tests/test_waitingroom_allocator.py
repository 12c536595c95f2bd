"""lbkit.waitingroom.allocator: the minute accounting of issue 7 (available slots, FIFO
reservations, random queueing that keeps them, abandoned places) on both kernel paths, the
``reserve_fifo`` kernel against a naive model and across paths, and every rejected input."""

from __future__ import annotations

import random
from array import array
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, InvalidArgument
from lbkit.waitingroom import WaitingRoomConfig
from lbkit.waitingroom.allocator import (
    MINUTE,
    BucketCounts,
    MinutePlan,
    MinuteState,
    available_slots,
    expiry_second,
    may_admit,
    minute_of,
    plan_minute,
    release_abandoned,
)

FAR = 10**9  # an expiry second no test reaches


def room(total: int = 1000, per_minute: int = 200, **options: Any) -> WaitingRoomConfig:
    return WaitingRoomConfig(total_active_users=total, new_users_per_minute=per_minute, **options)


def buckets(queued: dict[int, int]) -> list[BucketCounts]:
    """``buckets({10: 30, 11: 40})``: buckets 10 and 11 with places that never lapse in a test."""
    return [BucketCounts(bucket, expiring={FAR: count}) for bucket, count in queued.items()]


# --- the worked example --------------------------------------------------------------------------

WORKED_STATE = MinuteState(
    12, active_users=900, admitted_new=150, buckets=buckets({10: 30, 11: 40, 12: 25})
)


def test_worked_example_fifo(impl: Any) -> None:
    """The docs' example: 50 slots go to minute 10's 30 users and 20 of minute 11's 40."""
    plan = plan_minute(room(), WORKED_STATE, now=725.0)
    assert plan.available == 50
    assert dict(plan.reservations) == {10: 30, 11: 20, 12: 0}
    assert plan.new_user_slots == 0
    assert [plan.cap(bucket) for bucket in (10, 11, 12, None)] == [30, 20, 0, 150]
    assert may_admit(plan, 11, admitted=19)
    assert not may_admit(plan, 11, admitted=20)
    assert not may_admit(plan, 12, admitted=0)
    assert not may_admit(plan, None, admitted=150)


def test_worked_example_random_keeps_the_reservations(impl: Any) -> None:
    """Under random queueing the FIFO reservations are the same, but all 50 slots are open to
    anyone, counted in one group."""
    fifo = plan_minute(room(), WORKED_STATE, now=725.0)
    plan = plan_minute(room(queueing_method="random"), WORKED_STATE, now=725.0)
    assert plan.reservations == fifo.reservations
    assert plan.new_user_slots == 50
    assert {plan.group(bucket) for bucket in (10, 11, 12, None)} == {None}
    assert {plan.cap(bucket) for bucket in (10, 11, 12, None)} == {200}
    assert may_admit(plan, 12, admitted=199)
    assert not may_admit(plan, 10, admitted=200)


# --- available slots ------------------------------------------------------------------------------


def test_available_slots_is_the_tighter_limit() -> None:
    """min(total_active_users - active, new_users_per_minute - admitted), never negative."""
    config = room(total=100, per_minute=30)
    assert available_slots(config, active_users=90, admitted=5) == 10
    assert available_slots(config, active_users=10, admitted=5) == 25
    assert available_slots(config, active_users=100, admitted=0) == 0
    assert available_slots(config, active_users=150, admitted=0) == 0
    assert available_slots(config, active_users=0, admitted=45) == 0


# --- FIFO -----------------------------------------------------------------------------------------


def test_a_bucket_that_does_not_fit_gets_a_partial_reservation(impl: Any) -> None:
    """The oldest buckets are served in full, the next one in part, younger ones not at all."""
    state = MinuteState(5, buckets=buckets({2: 3, 3: 4, 4: 5, 5: 6}))
    plan = plan_minute(room(per_minute=10), state, now=5 * MINUTE)
    assert list(plan.reservations.items()) == [(2, 3), (3, 4), (4, 3), (5, 0)]
    assert plan.new_user_slots == 0
    assert plan.reserved == 10


def test_queued_and_new_users_together_never_exceed_the_slots(impl: Any) -> None:
    """Ten slots, ten queued users and ten new users all checking in: ten get in, all queued."""
    state = MinuteState(0, buckets=buckets({-1: 10}))
    plan = plan_minute(room(per_minute=10), state, now=0.0)
    entered = []
    for bucket in [None, -1] * 10:
        state, admitted = attempt(room(per_minute=10), state, plan, bucket)
        if admitted:
            entered.append(bucket)
    assert entered == [-1] * 10
    assert state.admitted == 10


def test_new_users_get_only_what_every_queued_user_leaves(impl: Any) -> None:
    """New users (no cookie) are admitted only once every queued user has a reservation."""
    state = MinuteState(5, buckets=buckets({3: 4, 4: 5}))
    plan = plan_minute(room(per_minute=12), state, now=300.0)
    assert dict(plan.reservations) == {3: 4, 4: 5}
    assert plan.new_user_slots == 3
    assert plan.cap(None) == 3


def test_buckets_are_ordered_by_id_not_by_listing(impl: Any) -> None:
    """The state may list buckets in any order; the oldest (smallest id) is served first."""
    state = MinuteState(9, buckets=[*buckets({8: 5}), *buckets({6: 5})])
    plan = plan_minute(room(per_minute=6), state, now=540.0)
    assert list(plan.reservations.items()) == [(6, 5), (8, 1)]


def test_caps_include_admissions_before_the_plan(impl: Any) -> None:
    """A plan made in mid-minute caps each group's minute total: what was admitted before plus
    what it reserves now."""
    state = MinuteState(
        1,
        active_users=10,
        admitted_new=2,
        admitted_by_bucket={0: 3},
        buckets=buckets({0: 4, 1: 10}),
    )
    plan = plan_minute(room(per_minute=10), state, now=70.0)
    assert plan.available == 5
    assert dict(plan.reservations) == {0: 4, 1: 1}
    assert plan.cap(0) == 7
    assert plan.cap(1) == 1
    assert plan.cap(None) == 2
    assert may_admit(plan, 0, admitted=6)
    assert not may_admit(plan, 0, admitted=7)


def test_a_cookie_from_an_unknown_bucket_competes_with_new_users(impl: Any) -> None:
    """A bucket with no queued places (lapsed, or lost by the store) counts with new users,
    who only get slots once every known bucket is served in full."""
    state = MinuteState(3, buckets=buckets({2: 2}))
    plan = plan_minute(room(per_minute=5), state, now=200.0)
    assert plan.group(1) is None
    assert plan.cap(1) == plan.cap(None) == 3
    full = plan_minute(room(per_minute=2), state, now=200.0)
    assert full.cap(1) == 0


def test_passthrough_admits_everyone(impl: Any) -> None:
    """Passthrough has no cap, even with no slots left; the reservations are still computed."""
    state = MinuteState(0, active_users=5000, buckets=buckets({0: 3}))
    plan = plan_minute(room(queueing_method="passthrough"), state, now=0.0)
    assert plan.available == 0
    assert plan.cap(0) is None
    assert may_admit(plan, 0, admitted=10**6)
    assert may_admit(plan, None, admitted=10**6)


@pytest.mark.parametrize(
    "options", [{"queueing_method": "reject"}, {"queue_all": True}], ids=["reject", "queue_all"]
)
def test_reject_and_queue_all_admit_nobody_more(impl: Any, options: dict[str, Any]) -> None:
    """Reject and queue_all cap every group at what it already admitted; queue_all keeps the
    FIFO reservations, so the queue is in arrival order when it opens."""
    state = MinuteState(0, admitted_new=4, buckets=buckets({-1: 3, 0: 2}))
    plan = plan_minute(room(**options), state, now=1.0)
    assert not plan.admitting
    assert plan.new_user_slots == 0
    assert dict(plan.reservations) == {-1: 3, 0: 2}
    assert plan.cap(None) == 4
    assert not may_admit(plan, None, admitted=4)
    assert not may_admit(plan, -1, admitted=4 if plan.group(-1) is None else 0)


def test_queue_all_with_random_also_admits_nobody(impl: Any) -> None:
    """queue_all wins over any queueing method."""
    state = MinuteState(0, buckets=buckets({0: 3}))
    plan = plan_minute(room(queueing_method="random", queue_all=True), state, now=1.0)
    assert plan.cap(0) == 0
    assert plan.cap(None) == 0


# --- places and abandonment -------------------------------------------------------------------


def test_minute_of_and_expiry_second() -> None:
    """Minute ids floor now / 60; expiry seconds round the lapse time up."""
    assert [minute_of(t) for t in (0.0, 59.999, 60.0, 125, -0.001)] == [0, 0, 1, 2, -1]
    assert expiry_second(600.0, 300.0) == 900
    assert expiry_second(600.001, 300.0) == 901
    assert expiry_second(599, 300) == 899


def test_bucket_places_move_with_check_ins() -> None:
    """Joining adds a place, a check-in moves it, leaving removes it; zero counts vanish."""
    bucket = BucketCounts(4).joined(500).joined(500).joined(510)
    assert dict(bucket.expiring) == {500: 2, 510: 1}
    bucket = bucket.checked_in(500, 530)
    assert dict(bucket.expiring) == {500: 1, 510: 1, 530: 1}
    bucket = bucket.left(510)
    assert dict(bucket.expiring) == {500: 1, 530: 1}
    assert bucket.queued(499.0) == 2
    assert bucket.queued(500.0) == 1
    assert BucketCounts(4).joined(500, count=0) == BucketCounts(4)


def test_a_lost_place_is_never_counted_below_zero() -> None:
    """Leaving from a second with no place changes nothing; checking in from one counts the
    user again at the new second."""
    bucket = BucketCounts(4, expiring={500: 1})
    assert bucket.left(400) == bucket
    assert dict(bucket.checked_in(400, 520).expiring) == {500: 1, 520: 1}


def test_abandoned_places_lapse_one_by_one() -> None:
    """Users who stop checking in lose their place on their own, not when the whole bucket
    goes quiet."""
    config = room()
    lifetime = config.queued_cookie_lifetime
    bucket = BucketCounts(1)
    for last_check_in in (100.0, 110.0, 120.0):
        bucket = bucket.joined(expiry_second(last_check_in, lifetime))
    assert [bucket.queued(t) for t in (399.0, 400.0, 410.0, 419.0, 420.0)] == [3, 2, 1, 1, 0]
    release = release_abandoned([bucket], now=410.0)
    assert release.released_users == 2
    assert release.released_buckets == ()
    assert dict(release.buckets[0].expiring) == {420: 1}


def test_release_drops_empty_buckets_oldest_first() -> None:
    """release_abandoned returns the surviving buckets oldest first and names the emptied ones."""
    release = release_abandoned(
        [
            BucketCounts(3, expiring={700: 1}),
            BucketCounts(1, expiring={600: 2}),
            BucketCounts(2, expiring={600: 1, 650: 1}),
        ],
        now=600.0,
    )
    assert [bucket.bucket for bucket in release.buckets] == [2, 3]
    assert release.released_buckets == (1,)
    assert release.released_users == 3


def test_lapsed_places_get_no_reservation(impl: Any) -> None:
    """plan_minute counts only places that have not lapsed at now."""
    state = MinuteState(
        10,
        buckets=[BucketCounts(5, expiring={600: 7}), BucketCounts(6, expiring={900: 2})],
    )
    plan = plan_minute(room(per_minute=4), state, now=600.0)
    assert dict(plan.reservations) == {6: 2}
    assert plan.new_user_slots == 2


# --- properties ---------------------------------------------------------------------------------

METHODS = ("fifo", "fifo", "random", "random", "reject")


@st.composite
def minute_states(draw: st.DrawFn, minute: int = 50) -> tuple[WaitingRoomConfig, MinuteState]:
    total = draw(st.integers(1, 60))
    per_minute = draw(st.integers(1, 40))
    config = room(
        total=total,
        per_minute=per_minute,
        queueing_method=draw(st.sampled_from(METHODS)),
        queue_all=draw(st.sampled_from([False, False, False, True])),
    )
    queued = draw(st.dictionaries(st.integers(minute - 8, minute), st.integers(0, 15), max_size=6))
    by_bucket = draw(
        st.dictionaries(st.sampled_from(sorted(queued) or [minute]), st.integers(0, 5))
    )
    state = MinuteState(
        minute,
        # Mostly below the limits, sometimes at or past them.
        active_users=draw(st.integers(0, total + 3)),
        admitted_new=draw(st.integers(0, per_minute + 1)),
        admitted_by_bucket=by_bucket,
        buckets=[BucketCounts(bucket, expiring={FAR: count}) for bucket, count in queued.items()],
    )
    return config, state


def attempt(
    config: WaitingRoomConfig, state: MinuteState, plan: MinutePlan, bucket: int | None
) -> tuple[MinuteState, bool]:
    """One user from ``bucket`` checks in: admit them if the plan allows, as a proxy would."""
    group = plan.group(bucket)
    count = state.admitted_new if group is None else state.admitted_by_bucket.get(group, 0)
    if not may_admit(plan, bucket, admitted=count):
        return state, False
    by_bucket = dict(state.admitted_by_bucket)
    admitted_new = state.admitted_new
    if group is None:
        admitted_new += 1
    else:
        by_bucket[group] = by_bucket.get(group, 0) + 1
    left = [item.left(FAR) if item.bucket == bucket else item for item in state.buckets]
    kept = [item for item in left if item.expiring]
    return (
        attrs.evolve(
            state,
            active_users=state.active_users + 1,
            admitted_new=admitted_new,
            admitted_by_bucket=by_bucket,
            buckets=kept,
        ),
        True,
    )


@given(setup=minute_states(), data=st.data())
def test_admissions_never_exceed_either_limit(impl: Any, setup: Any, data: st.DataObject) -> None:
    """However users check in, and however often the plan is remade as sessions lapse, the
    minute never admits past new_users_per_minute nor the active users past
    total_active_users (counting from where the minute stood)."""
    config, state = setup
    now = state.minute * MINUTE
    plan = plan_minute(config, state, now=now)
    for _ in range(data.draw(st.integers(0, 80), label="steps")):
        step = data.draw(st.sampled_from(["attempt"] * 8 + ["replan", "lapse"]))
        if step == "replan":
            plan = plan_minute(config, state, now=now)
        elif step == "lapse":
            gone = data.draw(st.integers(0, state.active_users))
            state = attrs.evolve(state, active_users=state.active_users - gone)
        else:
            bucket = data.draw(st.sampled_from([None, *[b.bucket for b in state.buckets]]))
            before = state
            state, admitted = attempt(config, state, plan, bucket)
            if admitted:
                assert before.admitted < config.new_users_per_minute
                assert before.active_users < config.total_active_users
                assert state.admitted <= config.new_users_per_minute
                assert state.active_users <= config.total_active_users


@given(setup=minute_states())
def test_fifo_reservations_go_oldest_first(impl: Any, setup: Any) -> None:
    """A bucket has a reservation only if every older bucket has one for all its users, and new
    users get slots only if every bucket does; nothing reserved is more than was available."""
    config, state = setup
    now = state.minute * MINUTE
    plan = plan_minute(attrs.evolve(config, queueing_method="fifo"), state, now=now)
    queued = state.queued(now)
    assert list(plan.reservations) == sorted(queued)
    assert plan.reserved == min(plan.available, sum(queued.values()))
    full = True
    for bucket, reserved in plan.reservations.items():
        assert 0 <= reserved <= queued[bucket]
        if reserved:
            assert full, f"bucket {bucket} is served before an older one is in full"
        full = full and reserved == queued[bucket]
    if plan.admitting and plan.new_user_slots:
        assert full
        assert plan.new_user_slots == plan.available - plan.reserved


@given(setup=minute_states(), data=st.data())
def test_fifo_never_lets_a_younger_bucket_take_an_older_ones_slots(
    impl: Any, setup: Any, data: st.DataObject
) -> None:
    """In any order of check-ins, a user from a bucket is admitted exactly while that bucket's
    own reservation lasts: younger buckets and new users cannot use it up."""
    config, state = setup
    config = attrs.evolve(config, queueing_method="fifo", queue_all=False)
    now = state.minute * MINUTE
    plan = plan_minute(config, state, now=now)
    admitted: dict[int | None, int] = {}
    groups = [None, *plan.reservations]
    for bucket in data.draw(st.lists(st.sampled_from(groups), max_size=60), label="check-ins"):
        before = admitted.get(bucket, 0)
        room_left = (plan.new_user_slots if bucket is None else plan.reservations[bucket]) - before
        state, entered = attempt(config, state, plan, bucket)
        assert entered == (room_left > 0)
        admitted[bucket] = before + entered


@given(setup=minute_states())
def test_reservations_do_not_depend_on_the_method(impl: Any, setup: Any) -> None:
    """FIFO, random, passthrough, reject and queue_all all compute the same reservations."""
    config, state = setup
    now = state.minute * MINUTE
    plans = [
        plan_minute(
            attrs.evolve(config, queueing_method=method, queue_all=queue_all), state, now=now
        )
        for method in ("fifo", "random", "passthrough", "reject")
        for queue_all in (False, True)
    ]
    assert all(plan.reservations == plans[0].reservations for plan in plans)


@given(
    seed=st.integers(0, 2**32 - 1),
    methods=st.lists(st.sampled_from(["fifo", "random"]), min_size=1, max_size=6),
)
def test_switching_methods_keeps_arrival_order(impl: Any, seed: int, methods: list[str]) -> None:
    """Run minutes under FIFO and random in any sequence, users arriving and checking in in a
    random order; whenever the room is (back) in FIFO, it serves the oldest buckets first, and
    each user is still in the bucket they arrived in."""
    rng = random.Random(seed)
    config = room(total=10**6, per_minute=rng.randint(1, 12))
    # The model: every queued user by bucket, in arrival order.
    queue: dict[int, int] = {}
    for minute, method in enumerate([*methods, "fifo"], start=100):
        queue[minute] = queue.get(minute, 0) + rng.randint(0, 10)
        config = attrs.evolve(config, queueing_method=method)
        state = MinuteState(
            minute,
            buckets=[BucketCounts(b, expiring={FAR: n}) for b, n in queue.items() if n],
        )
        plan = plan_minute(config, state, now=minute * MINUTE + 1.0)
        if method == "fifo":
            waiting = sorted(b for b, n in queue.items() if n)
            slots = min(plan.available, sum(queue.values()))
            expected: dict[int, int] = {}
            for bucket in waiting:
                expected[bucket] = min(queue[bucket], slots)
                slots -= expected[bucket]
            assert dict(plan.reservations) == expected
        check_ins = [b for b, n in queue.items() for _ in range(n)]
        rng.shuffle(check_ins)
        for bucket in check_ins:
            state, entered = attempt(config, state, plan, bucket)
            if entered:
                queue[bucket] -= 1
        assert state.queued(0.0) == {b: n for b, n in queue.items() if n}
        if method == "fifo":
            # Everyone checked in, so each bucket took exactly its reservation.
            assert state.admitted_by_bucket == {b: n for b, n in expected.items() if n}


@given(
    last_check_in=st.integers(-(10**6), 10**6),
    lifetime=st.integers(61, 3600),
    users=st.integers(1, 50),
)
def test_an_abandoned_bucket_is_released_at_exactly_the_lifetime(
    impl: Any, last_check_in: int, lifetime: int, users: int
) -> None:
    """A bucket whose users last checked in at second t keeps its places until t + lifetime and
    loses them at t + lifetime: no reservation, released by release_abandoned."""
    config = room(queued_cookie_lifetime=float(lifetime))
    expires = expiry_second(float(last_check_in), config.queued_cookie_lifetime)
    assert expires == last_check_in + lifetime
    bucket = BucketCounts(minute_of(last_check_in), expiring={expires: users})
    just_before = expires - 0.001
    assert bucket.queued(just_before) == users
    assert bucket.queued(float(expires)) == 0
    kept = release_abandoned([bucket], now=just_before)
    assert kept.buckets == (bucket,)
    assert kept.released_users == 0
    released = release_abandoned([bucket], now=float(expires))
    assert released.buckets == ()
    assert released.released_buckets == (bucket.bucket,)
    assert released.released_users == users
    plan = plan_minute(
        config, MinuteState(minute_of(just_before), buckets=[bucket]), now=just_before
    )
    assert plan.reservations[bucket.bucket] == min(users, plan.available)
    plan = plan_minute(config, MinuteState(minute_of(expires), buckets=[bucket]), now=expires)
    assert bucket.bucket not in plan.reservations


@given(
    last_check_in=st.floats(-1e6, 1e6, allow_nan=False),
    lifetime=st.floats(1.0, 3600.0),
)
def test_a_place_never_lapses_early_nor_more_than_a_second_late(
    last_check_in: float, lifetime: float
) -> None:
    """With check-ins off whole seconds, the place lapses within one second after the exact
    lifetime, never before it."""
    expires = expiry_second(last_check_in, lifetime)
    assert last_check_in + lifetime <= expires < last_check_in + lifetime + 1.0


# --- the reserve_fifo kernel -----------------------------------------------------------------


def naive_reserve(slots: int, counts: Sequence[int]) -> tuple[list[int], int]:
    reservations = []
    for count in counts:
        take = min(count, slots)
        reservations.append(take)
        slots -= take
    return reservations, slots


def test_reserve_fifo_example(impl: Any) -> None:
    """Full, full, partial, nothing; the rest is returned."""
    reservations, left = impl.waitingroom.reserve_fifo(10, array("q", [3, 4, 5, 6]))
    assert reservations == array("q", [3, 4, 3, 0])
    assert left == 0
    reservations, left = impl.waitingroom.reserve_fifo(10, array("q", []))
    assert (list(reservations), left) == ([], 10)


@given(
    slots=st.integers(0, 2**62),
    counts=st.lists(st.integers(0, 2**62), max_size=40),
)
def test_reserve_fifo_matches_the_model_on_both_paths(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    slots: int,
    counts: list[int],
) -> None:
    """Both paths give the naive model's reservations and leftover, as int64 arrays."""
    expected = naive_reserve(slots, counts)
    for kernels in (fast_kernels, pure_kernels):
        reservations, left = kernels["waitingroom"].reserve_fifo(slots, array("q", counts))
        assert reservations.typecode == "q"
        assert (list(reservations), left) == expected


# --- bad input ------------------------------------------------------------------------------------


def message(error: pytest.ExceptionInfo[BaseException]) -> str:
    return str(error.value)


@pytest.mark.parametrize(
    ("make", "kind", "text"),
    [
        (lambda: BucketCounts("7"), ArgumentTypeError, "bucket is str; it must be an int"),  # type: ignore[arg-type]
        (lambda: BucketCounts(True), ArgumentTypeError, "bucket is bool; it must be an int"),
        (
            lambda: BucketCounts(1, expiring={60: -1}),
            InvalidArgument,
            "expiring[60] is -1; it must be an int >= 0",
        ),
        (
            lambda: BucketCounts(1, expiring={60.5: 1}),
            ArgumentTypeError,
            "a key of expiring is float; it must be an int",
        ),
        (
            lambda: BucketCounts(1, expiring=[(60, 1)]),
            ArgumentTypeError,
            "expiring is list; it must be a mapping",
        ),
        (
            lambda: MinuteState(1, active_users=-1),
            InvalidArgument,
            "active_users is -1; it must be an int >= 0",
        ),
        (
            lambda: MinuteState(1, admitted_new=1.0),  # type: ignore[arg-type]
            ArgumentTypeError,
            "admitted_new is float; it must be an int",
        ),
        (
            lambda: MinuteState(1, admitted_by_bucket={3: -2}),
            InvalidArgument,
            "admitted_by_bucket[3] is -2; it must be an int >= 0",
        ),
        (
            lambda: MinuteState(1, buckets=[BucketCounts(2), BucketCounts(2)]),
            InvalidArgument,
            "buckets holds bucket 2 twice; each bucket must appear once",
        ),
        (
            lambda: MinuteState(1, buckets=[{2: 1}]),
            ArgumentTypeError,
            "buckets holds a dict; it must hold BucketCounts",
        ),
        (
            lambda: MinuteState(1, buckets={2: 1}),
            ArgumentTypeError,
            "buckets is dict; it must be an iterable of BucketCounts",
        ),
        (
            lambda: available_slots(room(), active_users=-3, admitted=0),
            InvalidArgument,
            "active_users is -3; it must be an int >= 0",
        ),
        (
            lambda: available_slots({"total_active_users": 3}, active_users=0, admitted=0),  # type: ignore[arg-type]
            ArgumentTypeError,
            "config is dict; it must be a WaitingRoomConfig",
        ),
        (
            lambda: plan_minute(room(), MinuteState(1), now=200.0),
            InvalidArgument,
            "state is for minute 1 but now (200.0) is in minute 3; plan with the counters of "
            "the current minute",
        ),
        (
            lambda: plan_minute(room(), MinuteState(1), now=float("nan")),
            InvalidArgument,
            "now is nan; it must be a finite number of seconds",
        ),
        (
            lambda: plan_minute(room(), "state", now=0.0),  # type: ignore[arg-type]
            ArgumentTypeError,
            "state is str; it must be a MinuteState",
        ),
        (
            lambda: may_admit(plan_minute(room(), MinuteState(0), now=0.0), None, admitted=-1),
            InvalidArgument,
            "admitted is -1; it must be an int >= 0",
        ),
        (
            lambda: may_admit(plan_minute(room(), MinuteState(0), now=0.0), "10", admitted=0),  # type: ignore[arg-type]
            ArgumentTypeError,
            "bucket is str; it must be an int",
        ),
        (
            lambda: may_admit("plan", None, admitted=0),  # type: ignore[arg-type]
            ArgumentTypeError,
            "plan is str; it must be a MinutePlan",
        ),
        (
            lambda: expiry_second(0.0, 0.0),
            InvalidArgument,
            "lifetime is 0.0; it must be > 0 seconds",
        ),
        (
            lambda: expiry_second(float("inf"), 10.0),
            InvalidArgument,
            "last_check_in is inf; it must be a finite number of seconds",
        ),
        (lambda: minute_of("now"), ArgumentTypeError, "now is str; it must be a number"),  # type: ignore[arg-type]
        (
            lambda: release_abandoned([BucketCounts(1)], now=float("-inf")),
            InvalidArgument,
            "now is -inf; it must be a finite number of seconds",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(
    impl: Any, make: Any, kind: type[Exception], text: str
) -> None:
    """Every rejected input raises the documented type with a message naming value and rule."""
    with pytest.raises(kind) as error:
        make()
    assert message(error) == text
