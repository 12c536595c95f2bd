"""lbkit.waitingroom.store: the SlotStore protocol's in-memory store. Every limit of an
admission ticket, the session and place counts and their lapsing, the snapshot, a random-step
model check with the invariants between steps, threads that never over-admit, and every
rejected ticket."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, InvalidArgument
from lbkit.waitingroom.allocator import BucketCounts
from lbkit.waitingroom.store import (
    ANYWHERE,
    HISTORY_MINUTES,
    Admission,
    MemoryStore,
    SlotStore,
    check_admission,
)


@pytest.fixture(autouse=True)
def _both_paths(impl: Any) -> Any:
    """Every test of this module once per kernel flavour: a MemoryStore keeps its counts in the
    ``slotcounts`` kernel it finds in ``lbkit._kernels`` when it is made."""
    return impl


def counters(store: MemoryStore) -> dict[str, dict[Any, Any]]:
    """Copies of the store's counters, from its kernel."""
    return store._counts.counters()


def ticket(now: float = 600.0, **fields: Any) -> Admission:
    """An admission at ``now`` with no limits, a session lapsing 300 s later, no place."""
    values: dict[str, Any] = {
        "minute": int(now // 60),
        "group": None,
        "cap": None,
        "minute_limit": None,
        "active_limit": None,
        "session_expires": int(now) + 300,
        "now": now,
    }
    values.update(fields)
    return Admission(**values)


# --- limits ---------------------------------------------------------------------------------


def test_memory_store_is_a_slot_store() -> None:
    """MemoryStore implements the protocol (runtime check)."""
    assert isinstance(MemoryStore(), SlotStore)
    assert not isinstance(object(), SlotStore)


def test_group_cap_counts_per_group_and_minute() -> None:
    """A group's cap bounds that group's counter for the minute only; other groups and the next
    minute have their own counters."""
    store = MemoryStore()
    assert store.try_admit(ticket(group=5, cap=1))
    assert not store.try_admit(ticket(group=5, cap=1))
    assert store.try_admit(ticket(group=6, cap=1))
    assert store.try_admit(ticket(group=None, cap=1))
    assert store.try_admit(ticket(660.0, group=5, cap=1))
    state = store.snapshot(now=601.0).state
    assert state.admitted_by_bucket == {5: 1, 6: 1}
    assert state.admitted_new == 1
    assert store.snapshot(now=661.0).state.admitted_by_bucket == {5: 1}


def test_minute_limit_holds_across_groups() -> None:
    """minute_limit bounds the minute's total whatever the groups' caps say (a stale plan)."""
    store = MemoryStore()
    results = [store.try_admit(ticket(group=group, cap=10, minute_limit=3)) for group in range(5)]
    assert results == [True, True, True, False, False]
    assert store.snapshot(now=610.0).state.admitted == 3


def test_active_limit_and_sessions_lapsing() -> None:
    """active_limit counts live sessions; a session stops counting at its expiry second."""
    store = MemoryStore()
    assert store.try_admit(ticket(600.0, active_limit=2, session_expires=700))
    assert store.try_admit(ticket(601.0, active_limit=2, session_expires=650))
    assert not store.try_admit(ticket(602.0, active_limit=2))
    assert store.snapshot(now=649.9).state.active_users == 2
    assert store.snapshot(now=650.0).state.active_users == 1
    assert store.try_admit(ticket(650.0, active_limit=2))
    assert store.snapshot(now=650.0).state.active_users == 2


def test_session_already_lapsed_is_not_counted() -> None:
    """A session whose expiry second is not after now is not counted (nothing to lapse)."""
    store = MemoryStore()
    assert store.try_admit(ticket(600.0, session_expires=600))
    assert store.snapshot(now=600.0).state.active_users == 0
    store._check()


def test_shares_first_with_room_then_anywhere() -> None:
    """Shares are tried in order: the location's budget, then the anywhere pool; when every
    share is used the attempt is refused even though the group has room."""
    store = MemoryStore()
    shares = (("ams", 1), (ANYWHERE, 1))
    outcomes = [store.try_admit(ticket(group=3, cap=10, shares=shares)) for _ in range(3)]
    assert outcomes == [True, True, False]
    assert counters(store)["shares"] == {(10, 3, "ams"): 1, (10, 3, ANYWHERE): 1}
    # Another location's share is its own counter; the pool is shared.
    assert store.try_admit(ticket(group=3, cap=10, shares=(("fra", 1), (ANYWHERE, 1))))
    assert not store.try_admit(ticket(group=3, cap=10, shares=(("fra", 1), (ANYWHERE, 1))))
    store._check()


def test_traffic_counted_whatever_the_outcome_and_reported_next_minute() -> None:
    """Every attempt with a location counts in its traffic; the snapshot reports the minute
    before."""
    store = MemoryStore()
    assert store.try_admit(ticket(group=1, cap=1, location="ams"))
    assert not store.try_admit(ticket(group=1, cap=1, location="ams"))
    assert store.try_admit(ticket(group=2, cap=1, location="fra"))
    assert dict(store.snapshot(now=610.0).traffic) == {}
    assert dict(store.snapshot(now=660.0).traffic) == {"ams": 2, "fra": 1}
    assert dict(store.snapshot(now=720.0).traffic) == {}


# --- queued places --------------------------------------------------------------------------


def test_refused_attempt_moves_the_place_and_admission_removes_it() -> None:
    """Not admitted: the held place moves to the requeue second. Admitted: it is removed."""
    store = MemoryStore()
    assert not store.try_admit(ticket(cap=0, requeue=(10, 900)))
    assert store.snapshot(now=601.0).state.queued(601.0) == {10: 1}
    assert not store.try_admit(ticket(620.0, cap=0, queued=(10, 900), requeue=(10, 920)))
    assert dict(store.snapshot(now=621.0).state.buckets[0].expiring) == {920: 1}
    assert store.try_admit(ticket(640.0, group=10, cap=1, queued=(10, 920), requeue=(10, 940)))
    assert store.snapshot(now=641.0).state.buckets == ()
    store._check()


def test_refusal_without_requeue_keeps_the_place() -> None:
    """A refusal that names no requeue place leaves the held place where it was."""
    store = MemoryStore()
    store.try_admit(ticket(cap=0, requeue=(10, 900)))
    assert not store.try_admit(ticket(cap=0, queued=(10, 900)))
    assert dict(store.snapshot(now=601.0).state.buckets[0].expiring) == {900: 1}


def test_removing_a_place_that_is_not_counted_changes_nothing() -> None:
    """A stale or forged place to remove never drives a count negative or touches another."""
    store = MemoryStore()
    store.try_admit(ticket(cap=0, requeue=(10, 900)))
    assert store.try_admit(ticket(queued=(10, 901)))
    assert store.try_admit(ticket(queued=(11, 900)))
    assert store.snapshot(now=601.0).state.queued(601.0) == {10: 1}
    store._check()


def test_places_lapse_at_their_second_and_empty_buckets_go() -> None:
    """A place counts while now is before its second; the snapshot drops lapsed ones."""
    store = MemoryStore()
    store.try_admit(ticket(cap=0, requeue=(10, 900)))
    store.try_admit(ticket(cap=0, requeue=(10, 950)))
    assert store.snapshot(now=899.0).state.queued(899.0) == {10: 2}
    snapshot = store.snapshot(now=900.0)
    assert snapshot.state.buckets == (BucketCounts(10, expiring={950: 1}),)
    assert store.snapshot(now=950.0).state.buckets == ()
    assert counters(store)["places"] == {}


def test_requeue_at_a_lapsed_second_is_not_counted() -> None:
    """A place that would lapse at or before now is not counted."""
    store = MemoryStore()
    store.try_admit(ticket(cap=0, requeue=(10, 600)))
    assert counters(store)["places"] == {}


# --- renew ------------------------------------------------------------------------------------


def test_renew_moves_a_session() -> None:
    """renew takes the session off its old second and counts it at the new one."""
    store = MemoryStore()
    store.try_admit(ticket(600.0, session_expires=900))
    store.renew(900, 960, now=660.0)
    assert store.snapshot(now=930.0).state.active_users == 1
    assert store.snapshot(now=960.0).state.active_users == 0
    store._check()


def test_renew_of_an_unknown_or_lapsed_second_counts_the_new_one_only() -> None:
    """A previous second holding no session (or one at or before now) moves nothing."""
    store = MemoryStore()
    store.try_admit(ticket(600.0, session_expires=900))
    store.renew(901, 950, now=610.0)  # nothing at 901: one more session
    assert store.snapshot(now=611.0).state.active_users == 2
    store.renew(900, 1000, now=900.0)  # 900 has lapsed at 900
    assert store.snapshot(now=900.0).state.active_users == 2  # 950 and 1000
    store._check()


def test_renew_rejects_bad_arguments() -> None:
    """renew names the argument at fault."""
    store = MemoryStore()
    with pytest.raises(ArgumentTypeError, match="previous is float"):
        store.renew(1.0, 2, now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="expires is str"):
        store.renew(1, "2", now=0.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="now is nan"):
        store.renew(1, 2, now=float("nan"))


# --- snapshot -------------------------------------------------------------------------------


def test_snapshot_history_of_complete_minutes() -> None:
    """admitted_by_minute lists complete minutes with admissions, at most HISTORY_MINUTES
    back, oldest first; the minute in progress is not in it."""
    store = MemoryStore()
    for minute in (1, 2, 5):
        for _ in range(minute):
            store.try_admit(ticket(minute * 60.0 + 1.0))
    assert dict(store.snapshot(now=5 * 60.0 + 2.0).admitted_by_minute) == {1: 1, 2: 2}
    assert list(store.snapshot(now=6 * 60.0).admitted_by_minute) == [1, 2, 5]
    late = (3 + HISTORY_MINUTES) * 60.0  # minutes 3 .. 18 are the last 16
    assert list(store.snapshot(now=late).admitted_by_minute) == [5]


def test_old_minutes_are_dropped() -> None:
    """Counters of minutes more than HISTORY_MINUTES old are forgotten as minutes pass."""
    store = MemoryStore()
    store.try_admit(ticket(60.0, group=1, cap=5, shares=(("a", 5),), location="a"))
    store.snapshot(now=(2 + HISTORY_MINUTES) * 60.0)
    assert counters(store)["by_group"] == {}
    assert counters(store)["totals"] == {}
    assert counters(store)["shares"] == {}
    assert counters(store)["traffic"] == {}


def test_snapshot_rejects_bad_now() -> None:
    """snapshot needs a finite number."""
    with pytest.raises(ArgumentTypeError, match="now is str"):
        MemoryStore().snapshot(now="1")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="now is inf"):
        MemoryStore().snapshot(now=float("inf"))


def test_repr() -> None:
    """The repr shows the counts' sizes."""
    store = MemoryStore()
    store.try_admit(ticket(cap=0, requeue=(10, 900)))
    assert repr(store) == "MemoryStore(active_users=0, buckets=1, minutes=0)"


# --- a model check ------------------------------------------------------------------------


class Model:
    """The store's specification written the slow way: every session and place as an expiry
    second in a list."""

    def __init__(self) -> None:
        self.sessions: list[int] = []
        self.places: dict[int, list[int]] = {}
        self.groups: dict[tuple[int, int | None], int] = {}
        self.totals: dict[int, int] = {}
        self.shares: dict[tuple[int, int | None, str], int] = {}

    def active(self, now: float) -> int:
        return sum(1 for second in self.sessions if second > now)

    def try_admit(self, t: Admission) -> bool:
        self.sessions = [second for second in self.sessions if second > t.now]
        admitted = self.groups.get((t.minute, t.group), 0)
        allowed = (
            (t.cap is None or admitted < t.cap)
            and (t.minute_limit is None or self.totals.get(t.minute, 0) < t.minute_limit)
            and (t.active_limit is None or self.active(t.now) < t.active_limit)
        )
        chosen = None
        if allowed and t.shares:
            chosen = next(
                (
                    (t.minute, t.group, name)
                    for name, budget in t.shares
                    if self.shares.get((t.minute, t.group, name), 0) < budget
                ),
                None,
            )
            allowed = chosen is not None
        if not allowed:
            if t.requeue is not None:
                if t.queued is not None:
                    self.unplace(t.queued)
                if t.requeue[1] > t.now:
                    self.places.setdefault(t.requeue[0], []).append(t.requeue[1])
            return False
        self.groups[t.minute, t.group] = admitted + 1
        self.totals[t.minute] = self.totals.get(t.minute, 0) + 1
        if chosen is not None:
            self.shares[chosen] = self.shares.get(chosen, 0) + 1
        if t.queued is not None:
            self.unplace(t.queued)
        if t.session_expires > t.now:
            self.sessions.append(t.session_expires)
        return True

    def unplace(self, place: tuple[int, int]) -> None:
        seconds = self.places.get(place[0], [])
        if place[1] in seconds:
            seconds.remove(place[1])

    def renew(self, previous: int, expires: int, now: float) -> None:
        self.sessions = [second for second in self.sessions if second > now]
        if previous in self.sessions:
            self.sessions.remove(previous)
        if expires > now:
            self.sessions.append(expires)

    def queued(self, now: float) -> dict[int, int]:
        counts = {
            bucket: sum(1 for second in seconds if second > now)
            for bucket, seconds in sorted(self.places.items())
        }
        return {bucket: count for bucket, count in counts.items() if count}


limits = st.one_of(st.none(), st.integers(0, 4))
steps = st.lists(
    st.tuples(
        st.sampled_from(["admit", "renew", "snapshot"]),
        st.integers(0, 40),  # seconds since the last step
        st.integers(0, 3),  # group (3 means None)
        limits,
        limits,
        limits,
        st.integers(0, 90),  # session or place lifetime
        st.lists(st.tuples(st.sampled_from(["a", "b", ANYWHERE]), st.integers(0, 2)), max_size=2),
        st.booleans(),  # hold a place
        st.booleans(),  # requeue
    ),
    max_size=60,
)


@given(steps)
def test_memory_store_matches_the_model(program: list[tuple[Any, ...]]) -> None:
    """Random admissions, renewals and snapshots give the model's answers, and the store's
    invariants hold after every step."""
    store, model = MemoryStore(), Model()
    now = 600.0
    for (
        kind,
        advance,
        group_pick,
        cap,
        minute_limit,
        active_limit,
        span,
        shares,
        hold,
        again,
    ) in program:
        now += advance + 0.5
        minute = int(now // 60)
        group = None if group_pick == 3 else group_pick
        if kind == "admit":
            held = (group if group is not None else 0, int(now) + span) if hold else None
            t = Admission(
                minute=minute,
                group=group,
                cap=cap,
                minute_limit=minute_limit,
                active_limit=active_limit,
                session_expires=int(now) + span,
                now=now,
                shares=tuple(shares),
                queued=held,
                requeue=(minute, int(now) + span) if again else None,
            )
            assert store.try_admit(t) == model.try_admit(t)
        elif kind == "renew":
            previous = model.sessions[0] if model.sessions else int(now) + 1
            store.renew(previous, int(now) + span, now=now)
            model.renew(previous, int(now) + span, now)
        else:
            state = store.snapshot(now=now).state
            assert state.active_users == model.active(now)
            assert state.queued(now) == model.queued(now)
            assert state.admitted_new == model.groups.get((minute, None), 0)
            assert dict(state.admitted_by_bucket) == {
                g: n for (m, g), n in model.groups.items() if m == minute and g is not None
            }
        store._check()


# --- threads ------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_switching")
def test_threads_never_over_admit() -> None:
    """Eight threads racing 4,000 attempts against a minute limit of 150 and an active limit of
    100 admit exactly 100; the invariants hold afterwards."""
    store = MemoryStore()
    admitted: list[int] = []
    start = threading.Barrier(8)

    def attempt(worker: int) -> None:
        start.wait()
        count = 0
        for index in range(500):
            t = ticket(
                600.0 + index * 0.001,
                group=index % 3,
                cap=60,
                minute_limit=150,
                active_limit=100,
                requeue=(10, 900),
            )
            count += store.try_admit(t)
        admitted.append(count)

    threads = [threading.Thread(target=attempt, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = store.snapshot(now=601.0).state
    assert sum(admitted) == 100
    assert state.active_users == 100
    assert state.admitted == 100
    assert all(count <= 60 for count in state.admitted_by_bucket.values())
    assert state.queued(601.0) == {10: 8 * 500 - 100}
    store._check()


@pytest.mark.usefixtures("fast_switching")
def test_threads_never_over_admit_a_group_cap() -> None:
    """With only the group caps binding, each group admits exactly its cap under contention."""
    store = MemoryStore()
    start = threading.Barrier(6)

    def attempt() -> None:
        start.wait()
        for index in range(400):
            store.try_admit(ticket(600.0, group=index % 4, cap=25 + index % 4))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert dict(store.snapshot(now=600.0).state.admitted_by_bucket) == {
        0: 25,
        1: 26,
        2: 27,
        3: 28,
    }


# --- rejected tickets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"minute": 10.0}, ArgumentTypeError, "minute is float"),
        ({"group": True}, ArgumentTypeError, "group is bool"),
        ({"cap": -1}, InvalidArgument, "cap is -1; it must be an int >= 0 or None"),
        ({"minute_limit": -2}, InvalidArgument, "minute_limit is -2"),
        ({"active_limit": 1.5}, ArgumentTypeError, "active_limit is float"),
        ({"session_expires": None}, ArgumentTypeError, "session_expires is NoneType"),
        ({"now": float("nan")}, InvalidArgument, "now is nan; it must be finite"),
        ({"now": "600"}, ArgumentTypeError, "now is str"),
        ({"minute": 11}, InvalidArgument, "minute is 11 but now .600.0. is in minute 10"),
        ({"shares": [("a", 1)]}, ArgumentTypeError, "shares is list"),
        ({"shares": (("a",),)}, ArgumentTypeError, "each must be a .name, budget. tuple"),
        ({"shares": (("", 1),)}, InvalidArgument, "a share name is ''"),
        ({"shares": (("a", -1),)}, InvalidArgument, "the budget of share 'a' is -1"),
        ({"location": 3}, ArgumentTypeError, "location is int"),
        ({"location": ""}, InvalidArgument, "location is ''"),
        ({"queued": (1,)}, ArgumentTypeError, "queued is .1,.; it must be a .bucket, expiry"),
        ({"requeue": (1, 2.0)}, ArgumentTypeError, "the expiry second of requeue is float"),
        ({"queued": ("1", 2)}, ArgumentTypeError, "the bucket of queued is str"),
    ],
)
def test_bad_tickets_are_rejected(fields: dict[str, Any], error: type, message: str) -> None:
    """check_admission (run by MemoryStore.try_admit) names the field and the rule; nothing is
    counted."""
    store = MemoryStore()
    with pytest.raises(error, match=message):
        store.try_admit(ticket()._replace(**fields))
    assert counters(store)["totals"] == {}
    assert counters(store)["places"] == {}


def test_a_ticket_must_be_an_admission() -> None:
    """A plain tuple with the same fields is not a ticket."""
    with pytest.raises(ArgumentTypeError, match="ticket is tuple; it must be an Admission"):
        check_admission(tuple(ticket()))


def test_well_formed_tickets_pass_unchanged() -> None:
    """check_admission returns a good ticket as it is, with int times too."""
    good = ticket(shares=(("a", 1), (ANYWHERE, 0)), location="a", queued=(1, 2), requeue=(1, 3))
    assert check_admission(good) is good
    assert check_admission(ticket(600)) == ticket(600)


# --- the slotcounts kernel, both paths in lockstep, and tickets that are valid but not plain --


class IntLike(int):
    """An int subclass: valid in a ticket, but not plain."""


class Name(str):
    """A str subclass: valid as a location or share name, but not plain."""


def unplain(value: Any, how: int) -> Any:
    """``value`` in a form the kernel does not count as plain (how > 0), or as it is."""
    if how == 0 or value is None:
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if how == 1 else float("nan")
    if isinstance(value, int):
        return IntLike(value)
    if isinstance(value, str):
        return Name(value)
    return value


kernel_steps = st.lists(
    st.tuples(
        st.sampled_from(["admit", "admit", "renew", "snapshot"]),
        st.integers(0, 40),  # seconds since the last step
        st.integers(0, 3),  # group (3 means None)
        limits,
        limits,
        st.integers(0, 90),  # session or place lifetime
        st.lists(st.tuples(st.sampled_from(["a", "b", ANYWHERE]), st.integers(0, 2)), max_size=2),
        st.booleans(),  # hold a place
        st.sampled_from(["a", "b", None]),  # location
        st.integers(0, 2),  # make one field not plain: 0 no, 1 a subclass, 2 NaN now
        st.integers(0, 10),  # which field
    ),
    max_size=50,
)


@given(kernel_steps)
def test_slotcounts_paths_count_alike(
    fast_kernels: dict[str, Any], pure_kernels: dict[str, Any], program: list[tuple[Any, ...]]
) -> None:
    """The compiled SlotCounts gives the reference's outcome for every admission and renewal
    (NOT_PLAIN for the same tickets, which then change nothing), the same snapshots and the
    same counters, and keeps its invariants."""
    fast = fast_kernels["slotcounts"].SlotCounts(HISTORY_MINUTES)
    pure = pure_kernels["slotcounts"].SlotCounts(HISTORY_MINUTES)
    now = 600.0
    for kind, advance, group_pick, cap, limit, span, shares, hold, location, how, which in program:
        now += advance + 0.25
        minute = int(now // 60)
        group = None if group_pick == 3 else group_pick
        if kind == "admit":
            fields: list[Any] = [
                minute,
                group,
                cap,
                limit,
                limit,
                int(now) + span,
                now,
                tuple(shares),
                location,
                (group or 0, int(now) + span) if hold else None,
                (minute, int(now) + span),
            ]
            fields[which] = unplain(fields[which], how)
            t = tuple(fields)
            assert fast.admit(t) == pure.admit(t)
        elif kind == "renew":
            arguments: list[Any] = [int(now) + 1, int(now) + span, now]
            if which < 3:
                arguments[which] = unplain(arguments[which], how)
            assert fast.renew(*arguments) == pure.renew(*arguments)
        else:
            assert fast.snapshot(now) == pure.snapshot(now)
        assert fast.counters() == pure.counters()
        assert fast.sizes() == pure.sizes()
        fast.check()
        pure.check()


def test_slotcounts_refuses_what_is_not_plain_without_counting(impl: Any) -> None:
    """NOT_PLAIN for a ticket or renewal the kernel does not take as it is (the store then
    validates and converts it); nothing is counted."""
    counts = impl.slotcounts.SlotCounts(HISTORY_MINUTES)
    good: Any = ticket(location="a", requeue=(10, 900))
    changes: list[tuple[str, Any]] = [
        ("minute", IntLike(10)),
        ("minute", 11),  # not the minute of now
        ("group", IntLike(1)),
        ("cap", -1),
        ("session_expires", 900.0),
        ("now", 600),
        ("now", float("inf")),
        ("shares", [("a", 1)]),
        ("shares", (("", 1),)),
        ("location", Name("a")),
        ("location", ""),
        ("queued", (1, 2.0)),
        ("requeue", [10, 900]),
    ]
    assert impl.slotcounts.plain_ticket(good)
    for field, value in changes:
        changed = good._replace(**{field: value})
        assert not impl.slotcounts.plain_ticket(changed)
        assert counts.admit(tuple(changed)) == impl.slotcounts.NOT_PLAIN
    with pytest.raises(TypeError, match=r"^ticket is list; it must be a tuple$"):
        impl.slotcounts.plain_ticket(list(good))
    assert counts.renew(IntLike(1), 900, 600.0) == impl.slotcounts.NOT_PLAIN
    assert counts.renew(1, 900, 600) == impl.slotcounts.NOT_PLAIN
    assert counts.sizes() == (0, 0, 0)
    assert counts.counters() == {
        name: {} for name in ("by_group", "totals", "shares", "traffic", "places", "sessions")
    }


def test_valid_tickets_that_are_not_plain_count_like_plain_ones() -> None:
    """A ticket with an int now, int and str subclasses, counts exactly as its plain twin."""
    plain, other = MemoryStore(), MemoryStore()
    first = ticket(group=1, cap=5, shares=(("ams", 2),), location="ams", requeue=(10, 900))
    twin = first._replace(
        minute=IntLike(10),
        group=IntLike(1),
        cap=IntLike(5),
        now=600,
        shares=((Name("ams"), IntLike(2)),),
        location=Name("ams"),
        requeue=(IntLike(10), IntLike(900)),
    )
    for _ in range(3):
        assert plain.try_admit(first) == other.try_admit(twin)
    plain.renew(900, 960, now=601.0)
    other.renew(IntLike(900), IntLike(960), now=601)
    assert counters(plain) == counters(other)
    assert plain.snapshot(now=610.0) == other.snapshot(now=610)
    assert all(type(key) is int for key in counters(other)["sessions"])
    other._check()


def test_now_past_the_largest_float_is_refused_clearly() -> None:
    """An int now too large for a float is InvalidArgument, not an OverflowError, for every
    call; a finite float however large is a time."""
    store = MemoryStore()
    with pytest.raises(InvalidArgument, match=r"^now is 1000.*; it must be finite$"):
        store.renew(1, 2, now=10**400)
    with pytest.raises(InvalidArgument, match=r"^now is 1000.*; it must be finite$"):
        store.snapshot(now=10**400)
    with pytest.raises(InvalidArgument, match=r"^now is 1000.*; it must be finite$"):
        store.try_admit(ticket()._replace(now=10**400))
    huge = 2.0**1023 * 1.5
    store.renew(1, 2, now=huge)  # lapsed at once: nothing counted
    assert store.snapshot(now=huge).state.active_users == 0


@given(now=st.floats(-1e12, 1e12))
def test_the_minute_of_now_is_floor_of_now_over_60(now: float) -> None:
    """check_admission and the kernel agree on a ticket's minute, floor(now / 60): that one is
    counted, a neighbour is refused with the error that names both."""
    minute = math.floor(now / 60)
    good = ticket()._replace(minute=minute, now=now, session_expires=math.floor(now) + 300)
    assert check_admission(good) is good
    assert MemoryStore().try_admit(good)
    for wrong in (minute - 1, minute + 1):
        with pytest.raises(InvalidArgument, match=f"^minute is {wrong} but now"):
            MemoryStore().try_admit(good._replace(minute=wrong))
