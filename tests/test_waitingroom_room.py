"""lbkit.waitingroom.room: WaitingRoom.handle on both kernel paths. Every path of a decision
(sessions and their renewal, early check-ins, admission and queueing under each method), the
limits over simulated crowds (hypothesis), FIFO order and method switches, distribution by
location and worker, cookies refused or from elsewhere, threads, and every rejected argument."""

from __future__ import annotations

import heapq
import math
import random
import threading
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, StoreUnavailable
from lbkit.waitingroom import CookieSealer, Keyring, QueueCookie, WaitingRoomConfig
from lbkit.waitingroom.allocator import MinutePlan
from lbkit.waitingroom.estimate import fifo_wait, random_wait, whole_minutes
from lbkit.waitingroom.room import REASONS, Decision, WaitingRoom, _QueueGrowth
from lbkit.waitingroom.store import Admission, MemoryStore, StoreSnapshot

KEYS = Keyring({1: bytes(range(32))}, primary=1)
T0 = 1_700_000_040.0  # the start of a minute


def config(total: int = 100, per_minute: int = 10, **options: Any) -> WaitingRoomConfig:
    return WaitingRoomConfig(total_active_users=total, new_users_per_minute=per_minute, **options)


def make_room(settings: WaitingRoomConfig | None = None, **options: Any) -> WaitingRoom:
    options.setdefault("rng", random.Random(1))
    return WaitingRoom(settings or config(), keys=KEYS, **options)


# --- the paths ----------------------------------------------------------------------------------


def test_new_user_admitted_with_a_session_cookie(impl: Any) -> None:
    """With room, a new user enters with a cookie of their arrival minute that lapses
    session_duration later."""
    room = make_room(config(session_duration=600))
    decision = room.handle(None, now=T0 + 5.0)
    assert (decision.action, decision.reason, decision.admitted) == ("admit", "admitted", True)
    assert decision.max_age == 600.0
    assert decision.status is None
    assert decision.refresh_interval is None
    cookie = room.sealer.open(decision.cookie, now=T0 + 6.0)  # type: ignore[arg-type]
    assert cookie == decision.cookie_state
    assert cookie.bucket_id == int(T0 // 60)
    assert (cookie.accepted_at, cookie.last_check_in, cookie.expires_at) == (
        T0 + 5.0,
        T0 + 5.0,
        T0 + 605.0,
    )
    assert room.store.snapshot(now=T0 + 6.0).state.active_users == 1


def test_session_renewed_on_each_request(impl: Any) -> None:
    """An admitted user's session moves to session_duration after their latest request, in
    the cookie and in the store; they are active until it lapses."""
    room = make_room(config(session_duration=300))
    first = room.handle(None, now=T0)
    later = room.handle(first.cookie, now=T0 + 200.0)
    assert (later.action, later.reason) == ("admit", "session")
    assert later.cookie_state is not None
    assert later.cookie_state.expires_at == T0 + 500.0
    assert later.cookie_state.accepted_at == T0
    store = room.store
    assert store.snapshot(now=T0 + 400.0).state.active_users == 1
    assert store.snapshot(now=T0 + 500.0).state.active_users == 0
    # The first cookie expired at T0 + 300: replaying it after that makes a new user.
    assert room.handle(first.cookie, now=T0 + 300.0).cookie_error == "expired"


def test_session_without_renewal(impl: Any) -> None:
    """disable_session_renewal: access ends session_duration after admission, whatever the
    requests; the cookie is left as it is and the store is not called."""
    room = make_room(config(session_duration=300, disable_session_renewal=True))
    first = room.handle(None, now=T0)
    later = room.handle(first.cookie, now=T0 + 200.0)
    assert (later.action, later.reason, later.cookie) == ("admit", "session", first.cookie)
    assert later.max_age == pytest.approx(100.0)
    assert room.store.snapshot(now=T0 + 299.0).state.active_users == 1
    assert room.store.snapshot(now=T0 + 300.0).state.active_users == 0
    assert room.handle(first.cookie, now=T0 + 300.0).reason == "admitted"  # a new user now


def test_session_request_from_a_clock_behind_is_not_renewed(impl: Any) -> None:
    """A request timed before the session's last request (another proxy's clock is behind)
    is admitted without touching the cookie or the store: a renewal would shorten it."""
    room = make_room()
    first = room.handle(None, now=T0 + 10.0)
    before = room.store.snapshot(now=T0 + 10.0)
    behind = room.handle(first.cookie, now=T0 + 9.0)
    assert (behind.action, behind.reason, behind.cookie) == ("admit", "session", None)
    assert behind.cookie_state == first.cookie_state
    assert room.store.snapshot(now=T0 + 10.0) == before
    # Far behind: even before the user's arrival minute, nothing fails.
    assert room.handle(first.cookie, now=T0 - 120.0).reason == "session"


def test_queued_when_the_minute_is_used_and_admitted_next_minute(impl: Any) -> None:
    """new_users_per_minute bounds a minute; the queued user, checking in on time, enters in
    the next minute, keeping their bucket."""
    room = make_room(config(per_minute=2))
    assert [room.handle(None, now=T0 + i).action for i in range(2)] == ["admit", "admit"]
    queued = room.handle(None, now=T0 + 2.0)
    assert (queued.action, queued.reason) == ("queue", "queued")
    assert queued.max_age == 300.0
    state = queued.cookie_state
    assert state is not None
    assert state.state == "queued"
    assert state.accepted_at is None
    assert queued.refresh_interval == state.refresh_interval
    assert queued.status is not None
    assert queued.status["queue_position"] == 1
    again = room.handle(queued.cookie, now=T0 + 60.0)
    assert (again.action, again.reason) == ("admit", "admitted")
    assert again.cookie_state is not None
    assert again.cookie_state.bucket_id == state.bucket_id
    assert room.store.snapshot(now=T0 + 61.0).state.buckets == ()


def test_active_users_limit(impl: Any) -> None:
    """total_active_users bounds live sessions: a user waits until a session lapses."""
    room = make_room(config(total=2, per_minute=100, session_duration=120))
    room.handle(None, now=T0)
    room.handle(None, now=T0 + 1.0)
    waiting = room.handle(None, now=T0 + 2.0)
    assert waiting.action == "queue"
    interval = waiting.refresh_interval
    assert interval is not None
    assert room.handle(waiting.cookie, now=T0 + 2.0 + interval).action == "queue"
    assert room.handle(waiting.cookie, now=T0 + 120.0).action == "admit"  # the first lapsed


def test_early_check_in_does_not_count(impl: Any) -> None:
    """A check-in before the user's refresh interval has passed changes nothing: no store
    call, no new cookie, and the page is told how long is left."""
    room = make_room(config(per_minute=1))
    room.handle(None, now=T0)
    queued = room.handle(None, now=T0 + 1.0)
    assert queued.cookie_state is not None
    before = room.store.snapshot(now=T0 + 2.0)
    # The next minute has a slot; checking in early at T0 + 60 must not take it if early.
    room_store_calls: list[str] = []

    class Spy(MemoryStore):
        def try_admit(self, ticket: Any) -> bool:
            room_store_calls.append("try_admit")
            return super().try_admit(ticket)

    spied = make_room(config(per_minute=1), store=Spy())
    first = spied.handle(None, now=T0 + 1.0)
    early = spied.handle(first.cookie, now=T0 + 2.0)
    assert early.reason == "session"  # admitted users are not subject to the interval
    spied_queued = spied.handle(None, now=T0 + 3.0)
    room_store_calls.clear()
    too_soon = spied.handle(spied_queued.cookie, now=T0 + 4.0)
    assert (too_soon.action, too_soon.reason, too_soon.cookie) == (
        "queue",
        "early_check_in",
        None,
    )
    assert room_store_calls == []
    assert spied_queued.cookie_state is not None
    left = spied_queued.cookie_state.refresh_interval - 1.0
    assert too_soon.refresh_interval == pytest.approx(left)
    assert too_soon.status is not None
    assert too_soon.status["refresh_interval_seconds"] == pytest.approx(left)
    assert room.store.snapshot(now=T0 + 2.0) == before


def test_refresh_intervals_are_jittered_per_user_and_kept(impl: Any) -> None:
    """Each new user draws refresh_interval * (1 +- jitter), to the millisecond; a queued user
    keeps theirs across check-ins."""
    room = make_room(config(per_minute=1, refresh_interval=20.0, refresh_jitter=0.25))
    room.handle(None, now=T0)
    intervals = []
    for index in range(200):
        decision = room.handle(None, now=T0 + 1.0 + index * 0.01)
        assert decision.cookie_state is not None
        intervals.append(decision.cookie_state.refresh_interval)
    assert all(15.0 <= value <= 25.0 for value in intervals)
    assert all(round(value * 1000) / 1000 == value for value in intervals)
    assert len(set(intervals)) > 150
    assert min(intervals) < 16.0
    assert max(intervals) > 24.0
    first = room.handle(None, now=T0 + 10.0)
    assert first.cookie_state is not None
    again = room.handle(first.cookie, now=T0 + 10.0 + first.cookie_state.refresh_interval)
    assert again.cookie_state is not None
    assert again.cookie_state.refresh_interval == first.cookie_state.refresh_interval


def test_no_jitter_gives_the_configured_interval(impl: Any) -> None:
    """refresh_jitter=0 gives every user exactly refresh_interval."""
    room = make_room(config(per_minute=1, refresh_jitter=0.0, refresh_interval=7.5))
    room.handle(None, now=T0)
    assert room.handle(None, now=T0 + 1.0).refresh_interval == 7.5


def test_abandoned_place_lapses(impl: Any) -> None:
    """A queued user who stops checking in holds a reservation only until their place lapses;
    after that a younger bucket is served."""
    room = make_room(config(per_minute=1, queued_cookie_lifetime=100.0))
    room.handle(None, now=T0)
    gone = room.handle(None, now=T0 + 1.0)  # bucket m, never returns
    assert gone.cookie_state is not None
    stays = room.handle(None, now=T0 + 60.0)  # bucket m + 1; minute m + 1's slot is m's
    assert stays.action == "queue"
    # At T0 + 101 the first place lapsed: the next minute's slot goes to the second user.
    assert room.handle(stays.cookie, now=T0 + 120.0).action == "admit"
    assert room.handle(gone.cookie, now=T0 + 125.0).cookie_error == "expired"


# --- methods ------------------------------------------------------------------------------------


def test_fifo_reserves_for_the_queue_before_new_users(impl: Any) -> None:
    """Under fifo a new user does not overtake a queued one: the next minute's slot is
    reserved for the queued bucket."""
    room = make_room(config(per_minute=1))
    room.handle(None, now=T0)
    queued = room.handle(None, now=T0 + 1.0)
    newcomer = room.handle(None, now=T0 + 60.0)
    assert newcomer.action == "queue"
    assert room.handle(queued.cookie, now=T0 + 61.0).action == "admit"


def test_random_lets_whoever_checks_in_first(impl: Any) -> None:
    """Under random every user is new: a newcomer may take the slot before a queued user."""
    room = make_room(config(per_minute=1, queueing_method="random"))
    room.handle(None, now=T0)
    queued = room.handle(None, now=T0 + 1.0)
    newcomer = room.handle(None, now=T0 + 60.0)
    assert newcomer.action == "admit"
    assert room.handle(queued.cookie, now=T0 + 61.0).action == "queue"
    status = room.handle(queued.cookie, now=T0 + 90.0).status
    assert status is not None
    assert status["queue_position"] is None
    assert status["queueing_method"] == "random"


def test_passthrough_admits_everyone_and_counts(impl: Any) -> None:
    """passthrough admits past every limit, still counting the sessions."""
    room = make_room(config(total=1, per_minute=1, queueing_method="passthrough"))
    decisions = [room.handle(None, now=T0 + i) for i in range(5)]
    assert {(d.action, d.reason) for d in decisions} == {("admit", "passthrough")}
    assert room.store.snapshot(now=T0 + 10.0).state.active_users == 5


def test_reject_turns_away_all_but_sessions(impl: Any) -> None:
    """reject serves the static page to everyone without a session, writing no cookie; an
    admitted user keeps their session."""
    store = MemoryStore()
    open_room = make_room(config(), store=store)
    session = open_room.handle(None, now=T0)
    closed = make_room(config(queueing_method="reject"), store=store)
    refused = closed.handle(None, now=T0 + 1.0)
    assert (refused.action, refused.reason, refused.cookie) == ("reject", "rejected", None)
    assert refused.status is not None
    assert refused.status["queueing_method"] == "reject"
    assert refused.status["wait_time_known"] is False
    assert closed.handle(session.cookie, now=T0 + 2.0).reason == "session"


def test_queue_all_then_open_in_arrival_order(impl: Any) -> None:
    """queue_all queues everyone, in buckets by arrival; opening the room admits the oldest
    bucket first."""
    store = MemoryStore()
    shut = make_room(config(per_minute=2, queue_all=True), store=store)
    early = [shut.handle(None, now=T0 + i) for i in range(2)]
    late = [shut.handle(None, now=T0 + 60.0 + i) for i in range(2)]
    assert {d.reason for d in early + late} == {"queue_all"}
    opened = make_room(config(per_minute=2), store=store)
    moment = T0 + 180.0
    assert [opened.handle(d.cookie, now=moment).action for d in late] == ["queue", "queue"]
    assert [opened.handle(d.cookie, now=moment).action for d in early] == ["admit", "admit"]


def test_switching_methods_keeps_arrival_order(impl: Any) -> None:
    """fifo -> random -> fifo: buckets queued before and during random are served oldest
    first once fifo is back, since random keeps the bookkeeping."""
    store = MemoryStore()
    fifo = make_room(config(per_minute=1), store=store)
    fifo.handle(None, now=T0)
    oldest = fifo.handle(None, now=T0 + 1.0)  # bucket m
    raffle = make_room(config(per_minute=1, queueing_method="random"), store=store)
    assert raffle.handle(None, now=T0 + 61.0).admitted  # random: a newcomer takes m + 1's slot
    middle = raffle.handle(None, now=T0 + 62.0)  # bucket m + 1
    assert raffle.handle(None, now=T0 + 121.0).admitted
    newest = raffle.handle(None, now=T0 + 122.0)  # bucket m + 2
    assert {oldest.action, middle.action, newest.action} == {"queue"}
    back = make_room(config(per_minute=1), store=store)
    order: list[str] = []
    cookies = {"newest": newest.cookie, "middle": middle.cookie, "oldest": oldest.cookie}
    for minute in range(3, 6):
        for name in ("newest", "middle", "oldest"):  # the youngest asks first
            if name not in order:
                moment = T0 + minute * 60.0 + len(order) + 1.0
                decision = back.handle(cookies[name], now=moment)
                cookies[name] = decision.cookie
                if decision.admitted:
                    order.append(name)
    assert order == ["oldest", "middle", "newest"]


# --- crowds --------------------------------------------------------------------------------


def simulate(
    room: WaitingRoom, arrivals: list[float], *, browse: float, until: float
) -> dict[str, Any]:
    """Users arriving at ``arrivals`` check in at their refresh interval exactly while queued,
    then browse with a request every 10 s for ``browse`` seconds. Returns the admissions."""
    events: list[tuple[float, int, str | None]] = [
        (time, index, None) for index, time in enumerate(arrivals)
    ]
    heapq.heapify(events)
    admitted_at: dict[int, float] = {}
    last_request: dict[int, float] = {}
    bucket_of: dict[int, int] = {}
    plans: list[tuple[int, MinutePlan]] = []  # (bucket, the plan in force) per admission
    while events:
        now, user, token = heapq.heappop(events)
        if now > until:
            break
        decision = room.handle(token, now=now)
        if decision.action == "queue":
            assert decision.refresh_interval is not None
            state = decision.cookie_state
            assert state is not None
            bucket_of[user] = state.bucket_id
            next_token = decision.cookie or token
            heapq.heappush(events, (now + decision.refresh_interval, user, next_token))
        elif decision.reason in ("admitted", "passthrough"):
            state = decision.cookie_state
            assert state is not None
            assert user not in admitted_at
            admitted_at[user] = now
            last_request[user] = now
            bucket_of[user] = state.bucket_id
            assert room._current is not None
            plans.append((state.bucket_id, room._current.plan))
            if browse >= 10.0:
                heapq.heappush(events, (now + 10.0, user, decision.cookie))
        else:
            state = decision.cookie_state
            assert decision.reason == "session"
            assert state is not None
            last_request[user] = now
            if now + 10.0 <= admitted_at[user] + browse:
                heapq.heappush(events, (now + 10.0, user, decision.cookie))
    # A session counts until the whole second after its last request's session_duration.
    lapses = {
        user: math.ceil(moment + room.config.session_duration)
        for user, moment in last_request.items()
    }
    return {
        "admitted_at": admitted_at,
        "bucket_of": bucket_of,
        "lapses": lapses,
        "plans": plans,
    }


crowds = st.lists(st.integers(0, 25), min_size=1, max_size=12)  # arrivals per 10 s


@given(
    crowd=crowds,
    total=st.integers(1, 30),
    per_minute=st.integers(1, 15),
    method=st.sampled_from(["fifo", "random"]),
    browse=st.sampled_from([0.0, 30.0, 90.0]),
    seed=st.integers(0, 2**16),
)
def test_crowds_never_exceed_the_limits(
    impl: Any,
    crowd: list[int],
    total: int,
    per_minute: int,
    method: str,
    browse: float,
    seed: int,
) -> None:
    """Over simulated crowds, no minute admits more than new_users_per_minute and no admission
    takes the live sessions past total_active_users; under fifo, no user enters before every
    older bucket has its users' reservations."""
    settings = config(
        total=total, per_minute=per_minute, queueing_method=method, session_duration=60.0
    )
    room = make_room(settings, rng=random.Random(seed))
    rng = random.Random(seed)
    arrivals = sorted(
        T0 + slot * 10.0 + rng.random() * 10.0
        for slot, count in enumerate(crowd)
        for _ in range(count)
    )
    result = simulate(room, arrivals, browse=browse, until=T0 + 1200.0)
    admitted_at: dict[int, float] = result["admitted_at"]
    per_minute_counts = Counter(math.floor(t / 60) for t in admitted_at.values())
    assert all(count <= per_minute for count in per_minute_counts.values())
    # Live sessions at each admission, from the users' own requests, never above the limit.
    lapses: dict[int, int] = result["lapses"]
    for moment in admitted_at.values():
        live = sum(1 for user, start in admitted_at.items() if start <= moment < lapses[user])
        assert live <= total
    if method == "fifo":
        # Nobody enters from a bucket (or as a new user) unless every older bucket's queued
        # users had their reservation in the plan in force.
        for bucket, plan in result["plans"]:
            for older, queued in plan.queued.items():
                if older < bucket:
                    assert plan.reservations[older] == queued


def test_crowd_everyone_enters_eventually(impl: Any) -> None:
    """A spike of 50 users against 10 a minute: all enter within 5 minutes, 10 per minute,
    in bucket order."""
    room = make_room(config(total=1000, per_minute=10))
    arrivals = [T0 + i * 0.5 for i in range(50)]
    result = simulate(room, arrivals, browse=0.0, until=T0 + 600.0)
    assert len(result["admitted_at"]) == 50
    counts = Counter(
        math.floor(t / 60) - math.floor(T0 / 60) for t in result["admitted_at"].values()
    )
    assert counts == Counter({0: 10, 1: 10, 2: 10, 3: 10, 4: 10})


# --- status and estimates -------------------------------------------------------------------


def test_fifo_status_counts_older_buckets_and_half_the_own(impl: Any) -> None:
    """A queued user's position: everyone queued in older buckets, plus half of their own."""
    room = make_room(config(per_minute=1), plan_ttl=0.001)
    room.handle(None, now=T0)
    first_minute = [room.handle(None, now=T0 + 1.0 + i) for i in range(4)]
    second_minute = [room.handle(None, now=T0 + 61.0 + i) for i in range(3)]
    assert second_minute[0].status is not None
    # At T0 + 61 the four of minute m are ahead (one takes minute m+1's slot when it checks in).
    assert second_minute[0].status["queue_position"] == 5
    assert len(first_minute) == 4
    check = room.handle(second_minute[2].cookie, now=T0 + 90.0)
    assert check.status is not None
    # At T0 + 90: 4 queued in bucket m, 3 in bucket m + 1, so 4 + 3 // 2 ahead.
    assert check.status["queue_position"] == 6
    assert check.status["users_waiting"] == 7


def test_status_has_an_estimate_after_a_complete_minute(impl: Any) -> None:
    """The wait is unknown until a minute with admissions is complete; then it is users
    ahead / the let-in rate."""
    room = make_room(config(per_minute=2), plan_ttl=0.001)
    for i in range(2):
        room.handle(None, now=T0 + i)
    queued = [room.handle(None, now=T0 + 2.0 + i) for i in range(6)]
    assert queued[0].status is not None
    assert queued[0].status["wait_time_known"] is False
    later = room.handle(None, now=T0 + 61.0)
    assert later.status is not None
    assert later.status["wait_time_known"] is True
    # 6 ahead at 2 a minute.
    assert later.status["estimated_wait_minutes"] == 3


def test_random_status_shows_percentiles(impl: Any) -> None:
    """A random queue's status carries the 25th, 50th and 75th percentiles once known."""
    room = make_room(config(per_minute=2, queueing_method="random"), plan_ttl=0.001)
    for i in range(12):
        room.handle(None, now=T0 + i)
    assert [room.handle(None, now=T0 + 61.0).action for _ in range(3)] == [
        "admit",
        "admit",
        "queue",
    ]
    status = room.handle(None, now=T0 + 62.0).status
    assert status is not None
    assert status["wait_time_known"] is True
    assert set(status["wait_time_percentiles"]) == {"p25", "p50", "p75"}
    assert status["queue_position"] is None


# --- the queue's growth ---------------------------------------------------------------------


def test_queue_growth_is_the_median_of_the_last_five_slopes() -> None:
    """The first sample only anchors; samples under a minute apart (or from a clock that went
    back) are ignored; a slope is per minute however long its span; the growth is the median
    of the last five slopes, unfilled ones counting as 0."""
    growth = _QueueGrowth()
    assert growth.growth == 0.0
    assert growth.observe(T0, 100) == 0.0
    assert growth.observe(T0 + 59.9, 1000) == 0.0
    assert growth.observe(T0 + 30.0, 1000) == 0.0
    assert growth.observe(T0 + 60.0, 110) == 0.0  # slopes 10, 0, 0, 0, 0
    assert growth.observe(T0 + 10.0, 0) == 0.0  # the clock went back: no sample
    assert growth.observe(T0 + 180.0, 150) == 0.0  # 20 a minute over two minutes
    assert growth.observe(T0 + 240.0, 180) == 10.0  # slopes 0, 0, 10, 20, 30
    assert growth.observe(T0 + 300.0, 240) == 20.0  # 0, 10, 20, 30, 60
    assert growth.observe(T0 + 360.0, 240) == 20.0  # 10, 20, 30, 60, 0
    assert growth.observe(T0 + 420.0, 190) == 20.0  # 20, 30, 60, 0, -50
    assert growth.growth == 20.0


def test_one_burst_is_not_read_as_growth() -> None:
    """A hundred users in one minute lengthen the queue but are not a rate: the growth
    follows the steady 2 a minute around it."""
    growth = _QueueGrowth()
    counts = [0, 100, 102, 104, 106, 108, 110, 112]
    results = [growth.observe(T0 + 60.0 * minute, count) for minute, count in enumerate(counts)]
    assert results == [0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 2.0]


@given(
    start=st.integers(min_value=0, max_value=10**6),
    slope=st.integers(min_value=-50, max_value=50),
    gaps=st.lists(st.floats(min_value=0.0, max_value=400.0), min_size=2, max_size=30),
)
def test_a_steadily_growing_queue_gives_its_slope_whatever_the_sampling(
    start: int, slope: int, gaps: list[float]
) -> None:
    """A queue growing by g a minute, read at any moments (plans are irregular), gives g once
    three slopes are in: every slope is g, so their median is too."""
    growth = _QueueGrowth()
    moment = T0
    anchor: float | None = None
    samples = 0
    for gap in gaps:
        moment += gap
        # Whole users: the count at the moment, 1000 times finer so rounding stays small.
        growth.observe(moment, start + round(1000 * slope * (moment - T0) / 60.0))
        if anchor is None:
            anchor = moment
        elif moment - anchor >= 60.0:
            anchor = moment
            samples += 1
    if samples >= 3:
        assert growth.growth / 1000.0 == pytest.approx(slope, abs=0.05)


def growing_raffle(settings: WaitingRoomConfig) -> tuple[WaitingRoom, list[Decision]]:
    """Four minutes of a room letting in 2 a minute while 6 a minute arrive (the queue grows
    by 4 a minute); the decisions of the last minute's newcomers."""
    room = make_room(settings, plan_ttl=0.001)
    decisions: list[Decision] = []
    for minute in range(4):
        decisions = [room.handle(None, now=T0 + 60.0 * minute + 1.0 + i) for i in range(6)]
    return room, decisions


def test_a_random_room_allows_for_its_growing_queue(impl: Any) -> None:
    """The room measures the queue's growth from its plans (here about 4 a minute) and its
    random status shows random_wait with that growth: longer than a steady crowd's."""
    room, decisions = growing_raffle(config(per_minute=2, queueing_method="random"))
    current = room._current
    assert current is not None
    assert 3.0 < current.growth < 4.5
    queued = decisions[-1]
    assert queued.status is not None
    waiting = queued.status["users_waiting"]
    assert waiting == current.waiting
    grown = random_wait(waiting, current.rate, growth_per_minute=current.growth).minutes
    steady = random_wait(waiting, current.rate).minutes
    assert grown is not None
    assert steady is not None
    assert queued.status["estimated_wait_minutes"] == whole_minutes(grown[1])
    assert queued.status["wait_time_percentiles"] == {
        key: whole_minutes(minutes)
        for key, minutes in zip(("p25", "p50", "p75"), grown, strict=True)
    }
    assert whole_minutes(grown[1]) > whole_minutes(steady[1])


def test_a_fifo_room_shows_the_same_wait_whatever_the_growth(impl: Any) -> None:
    """FIFO ignores the growth: nobody who arrives later is ahead of a queued user."""
    room, decisions = growing_raffle(config(per_minute=2))
    current = room._current
    assert current is not None
    assert current.growth > 3.0
    status = decisions[0].status
    assert status is not None
    ahead = status["queue_position"] - 1
    expected = fifo_wait(ahead, current.rate).minutes
    assert expected is not None
    assert status["estimated_wait_minutes"] == whole_minutes(expected)


def test_a_plan_without_the_store_is_no_growth_sample(impl: Any) -> None:
    """A plan made while the store is down has no counts: it keeps the growth as it was
    instead of reading the queue as emptied."""
    store = FlakyStore()
    room = make_room(config(per_minute=1, queueing_method="random"), store=store)
    for minute in range(4):
        for i in range(5):
            room.handle(None, now=T0 + 60.0 * minute + 1.0 + i)
    before = room._current
    assert before is not None
    assert before.growth == 4.0  # 5 arrive, 1 is let in, every minute
    store.down = True
    during = room.handle(None, now=T0 + 245.0)
    assert during.store_error is not None
    current = room._current
    assert current is not None
    assert current.growth == before.growth


# --- cookies ------------------------------------------------------------------------------


def test_refused_cookies_make_a_new_user(impl: Any) -> None:
    """An altered cookie, or one from another room, is refused with its reason and the user is
    handled as new."""
    room = make_room()
    other = make_room(config(room_id="elsewhere"))
    foreign = other.handle(None, now=T0).cookie
    assert foreign is not None
    decision = room.handle(foreign, now=T0 + 1.0)
    assert (decision.cookie_error, decision.reason) == ("wrong_room", "admitted")
    token = room.handle(None, now=T0).cookie
    assert token is not None
    altered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert room.handle(altered, now=T0 + 1.0).cookie_error == "tampered"
    assert room.handle("", now=T0 + 1.0).cookie_error == "malformed"


def test_a_forged_admission_needs_the_key(impl: Any) -> None:
    """A cookie sealed with another key under the same id is refused: admission cannot be
    minted without the room's key."""
    room = make_room()
    forger = CookieSealer({1: bytes(32)}, primary=1, room_id="room", cookie_name="__lbkit_wr")
    forged = forger.seal(
        QueueCookie(
            bucket_id=int(T0 // 60),
            last_check_in=T0,
            refresh_interval=20.0,
            expires_at=T0 + 300.0,
            accepted_at=T0,
        )
    )
    assert room.handle(forged, now=T0 + 1.0).cookie_error == "tampered"


def test_key_rotation_keeps_cookies_valid(impl: Any) -> None:
    """A room whose keyring gains a new primary still opens cookies of the old key and seals
    new ones with the new key."""
    store = MemoryStore()
    old = WaitingRoom(config(), keys=KEYS, store=store)
    session = old.handle(None, now=T0)
    rotated = WaitingRoom(config(), keys=KEYS.rotate(2, bytes(32)), store=store)
    renewed = rotated.handle(session.cookie, now=T0 + 1.0)
    assert renewed.reason == "session"
    assert renewed.cookie is not None
    assert old.handle(renewed.cookie, now=T0 + 2.0).cookie_error == "unknown_key"


def test_set_cookie_header(impl: Any) -> None:
    """The room's Set-Cookie applies its cookie settings; a decision without a cookie has none."""
    room = make_room(config(per_minute=1))
    admitted = room.handle(None, now=T0)
    header = room.set_cookie_header(admitted, https=True)
    assert header is not None
    assert header.startswith(f"__Host-__lbkit_wr={admitted.cookie}; Path=/; Max-Age=300")
    assert room.set_cookie_header(admitted, https=False).endswith("SameSite=Lax")  # type: ignore[union-attr]
    queued = room.handle(None, now=T0 + 1.0)
    early = room.handle(queued.cookie, now=T0 + 2.0)
    assert room.set_cookie_header(early, https=True) is None
    with pytest.raises(ArgumentTypeError, match="decision is str"):
        room.set_cookie_header("x", https=True)  # type: ignore[arg-type]


# --- distribution -------------------------------------------------------------------------


def test_location_shares_follow_last_minute_traffic(impl: Any) -> None:
    """distribution='location': a group's cap is split by last minute's traffic; a location
    stops at its share while the other still admits."""
    # Random queueing, so that queued users take no FIFO reservation from the new ones.
    settings = config(per_minute=4, queueing_method="random")
    room = make_room(settings, distribution="location", plan_ttl=0.001)
    # Minute m: 3 users at ams, 1 at fra (all admitted, the split is even without history).
    for place in ("ams", "ams", "ams", "fra"):
        assert room.handle(None, now=T0 + 1.0, location=place).admitted
    # Minute m + 1: ams 3 slots, fra 1.
    outcomes = [room.handle(None, now=T0 + 61.0, location="fra").action for _ in range(2)]
    assert outcomes == ["admit", "queue"]
    outcomes = [room.handle(None, now=T0 + 62.0, location="ams").action for _ in range(4)]
    assert outcomes == ["admit", "admit", "admit", "queue"]


def test_anywhere_pool_serves_a_location_without_history(impl: Any) -> None:
    """A new location gets no share but may draw on the anywhere pool."""
    settings = config(per_minute=10, queueing_method="random")
    room = make_room(settings, distribution="location", anywhere=0.2, plan_ttl=0.001)
    for _ in range(5):
        room.handle(None, now=T0 + 1.0, location="ams")
    outcomes = [room.handle(None, now=T0 + 61.0, location="new").action for _ in range(3)]
    assert outcomes == ["admit", "admit", "queue"]


def test_worker_budgets(impl: Any) -> None:
    """distribution='worker': each worker counts its own share of its location's budget."""
    settings = config(per_minute=4, queueing_method="random")
    room = make_room(settings, distribution="worker", workers={"ams": 2}, plan_ttl=0.001)
    actions = [room.handle(None, now=T0 + 1.0, location="ams", worker=0).action for _ in range(3)]
    assert actions == ["admit", "admit", "queue"]
    actions = [room.handle(None, now=T0 + 2.0, location="ams", worker=1).action for _ in range(3)]
    assert actions == ["admit", "admit", "queue"]


def test_distribution_needs_its_place() -> None:
    """Location and worker distributions name what is missing or unknown."""
    located = make_room(distribution="location")
    with pytest.raises(InvalidArgument, match="location is None; distribution 'location'"):
        located.handle(None, now=T0)
    workers = make_room(distribution="worker", workers={"ams": 2})
    with pytest.raises(InvalidArgument, match="location is 'fra', which workers does not list"):
        workers.handle(None, now=T0, location="fra", worker=0)
    with pytest.raises(InvalidArgument, match=r"worker is 2; location 'ams' has workers 0\.\.1"):
        workers.handle(None, now=T0, location="ams", worker=2)
    with pytest.raises(InvalidArgument, match="worker is None"):
        workers.handle(None, now=T0, location="ams")
    with pytest.raises(InvalidArgument, match="location is '\\*'"):
        make_room().handle(None, now=T0, location="*")
    with pytest.raises(ArgumentTypeError, match="location is int"):
        make_room().handle(None, now=T0, location=3)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="worker is str"):
        make_room().handle(None, now=T0, worker="1")  # type: ignore[arg-type]


# --- threads ------------------------------------------------------------------------------


def test_threads_share_a_room_without_over_admitting(impl: Any) -> None:
    """Eight threads handling 200 new users each at one instant admit exactly the minute's 25."""
    room = make_room(config(total=1000, per_minute=25))
    decisions: list[Decision] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def serve() -> None:
        start.wait()
        mine = [room.handle(None, now=T0 + 1.0) for _ in range(200)]
        with lock:
            decisions.extend(mine)

    threads = [threading.Thread(target=serve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(d.action for d in decisions) == Counter({"admit": 25, "queue": 1575})
    state = room.store.snapshot(now=T0 + 2.0).state
    assert state.active_users == 25
    assert state.queued(T0 + 2.0) == {int(T0 // 60): 1575}


# --- rejected arguments ------------------------------------------------------------------


def test_reasons_are_listed() -> None:
    """Every reason a decision gives is in REASONS."""
    assert set(REASONS) == {
        "session",
        "admitted",
        "passthrough",
        "queued",
        "queue_all",
        "early_check_in",
        "rejected",
    }


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"store": object()}, ArgumentTypeError, "store is object; it must implement SlotStore"),
        ({"clock": 3}, ArgumentTypeError, "clock is int; it must be callable"),
        ({"rng": 3}, ArgumentTypeError, "rng is int; it must be a random.Random"),
        ({"plan_ttl": 0}, ConfigError, "plan_ttl is 0; it must be finite and > 0"),
        ({"plan_ttl": float("inf")}, ConfigError, "plan_ttl is inf; it must be finite"),
        ({"distribution": "ring"}, ConfigError, "distribution is 'ring'; it must be one of"),
        ({"distribution": 1}, ArgumentTypeError, "distribution is int"),
        ({"anywhere": 1.5, "distribution": "location"}, ConfigError, "anywhere is 1.5"),
        ({"anywhere": 0.1}, ConfigError, "anywhere is set but distribution is 'shared'"),
        ({"distribution": "worker"}, ConfigError, "workers is missing"),
        ({"workers": {"a": 1}}, ConfigError, "workers is set but distribution is 'shared'"),
        ({"distribution": "worker", "workers": {"a": 0}}, InvalidArgument, "workers\\['a'\\] is 0"),
        ({"keys": {1: b"short"}, "primary": 1}, ConfigError, "key"),
        ({"let_in_alpha": 0.0}, ConfigError, "alpha is 0.0"),
    ],
)
def test_bad_room_arguments(options: dict[str, Any], error: type, message: str) -> None:
    """The constructor names the argument and the rule."""
    options.setdefault("keys", KEYS)
    with pytest.raises(error, match=message):
        WaitingRoom(config(), **options)


def test_config_must_fit_in_a_cookie() -> None:
    """Durations a cookie cannot hold are refused when the room is built."""
    with pytest.raises(ArgumentTypeError, match="config is dict"):
        WaitingRoom({}, keys=KEYS)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"session_duration is 5000000\.0; a cookie holds"):
        WaitingRoom(config(session_duration=5e6), keys=KEYS)
    with pytest.raises(ConfigError, match=r"queued_cookie_lifetime is 5000000\.0"):
        WaitingRoom(config(queued_cookie_lifetime=5e6), keys=KEYS)
    with pytest.raises(
        ConfigError, match=r"refresh_interval is 16000\.0; with refresh_jitter 0\.1"
    ):
        WaitingRoom(config(refresh_interval=16000.0, queued_cookie_lifetime=20000.0), keys=KEYS)
    room = WaitingRoom(config(refresh_interval=15000.0, queued_cookie_lifetime=20000.0), keys=KEYS)
    assert room.handle(None, now=T0).admitted


@pytest.mark.parametrize(
    ("now", "error", "message"),
    [
        (-1.0, InvalidArgument, "now is -1.0; it must be seconds since the Unix epoch in 0"),
        (2.6e11, InvalidArgument, "now is 260000000000.0; it must be seconds since the Unix"),
        (float("nan"), InvalidArgument, "now is nan"),
        ("1", ArgumentTypeError, "now is str"),
        (True, ArgumentTypeError, "now is bool"),
    ],
)
def test_bad_now(now: Any, error: type, message: str) -> None:
    """handle needs a time in Unix seconds."""
    with pytest.raises(error, match=message):
        make_room().handle(None, now=now)


def test_clock_is_used_without_now(impl: Any) -> None:
    """Without now, the room asks its clock."""
    room = make_room(clock=lambda: T0 + 7.0)
    decision = room.handle(None)
    assert decision.cookie_state is not None
    assert decision.cookie_state.accepted_at == T0 + 7.0
    assert room.handle(None, now=T0 + 8).admitted  # an int time is accepted


def test_cookie_of_the_wrong_type() -> None:
    """A cookie that is not a str is a type error, not a refused cookie."""
    with pytest.raises(ArgumentTypeError, match="token is bytes"):
        make_room().handle(b"x", now=T0)  # type: ignore[arg-type]


def test_repr_and_properties() -> None:
    """The room shows its id, method and distribution; config and store are exposed."""
    settings = config(room_id="tickets")
    store = MemoryStore()
    room = WaitingRoom(settings, keys=KEYS, store=store)
    assert repr(room) == (
        "WaitingRoom(room_id='tickets', queueing_method='fifo', distribution='shared')"
    )
    assert room.config is settings
    assert room.store is store
    assert room.sealer.room_id == "tickets"
    assert room.handle(None, now=T0)._replace(reason="x").reason == "x"


def test_tuple_field_orders_are_the_rooms() -> None:
    """The room builds Decision and Admission positionally in these field orders; reordering a
    tuple's fields must fail here, not mislabel a decision."""
    assert Decision._fields == (
        "action",
        "reason",
        "cookie",
        "max_age",
        "refresh_interval",
        "status",
        "cookie_state",
        "cookie_error",
        "store_error",
    )
    assert Admission._fields == (
        "minute",
        "group",
        "cap",
        "minute_limit",
        "active_limit",
        "session_expires",
        "now",
        "shares",
        "location",
        "queued",
        "requeue",
    )


# --- when the store cannot be reached ------------------------------------------------------------


class FlakyStore:
    """A MemoryStore that can be switched off: then every call raises StoreUnavailable, as a
    RedisStore does when Redis does not answer."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("Redis did not answer for room 'room': timed out")

    def snapshot(self, *, now: float) -> StoreSnapshot:
        self._check()
        return self.inner.snapshot(now=now)

    def try_admit(self, ticket: Admission) -> bool:
        self._check()
        return self.inner.try_admit(ticket)

    def renew(self, previous: int, expires: int, *, now: float) -> None:
        self._check()
        self.inner.renew(previous, expires, now=now)


def test_store_down_closed_queues_new_users_and_keeps_sessions(impl: Any) -> None:
    """Under the default "closed" policy, with the store down: new users and check-ins are
    queued with a cookie, admitted users keep their sessions, and every such decision says
    what happened in store_error."""
    store = FlakyStore()
    room = make_room(config(total=100, per_minute=10), store=store)
    admitted = room.handle(None, now=T0 + 1.0)
    queued_before = room.handle(None, now=T0 + 2.0)
    assert admitted.reason == "admitted"
    assert queued_before.store_error is None
    store.down = True
    new = room.handle(None, now=T0 + 3.0)
    assert (new.action, new.reason, new.cookie is not None) == ("queue", "queued", True)
    assert new.store_error == "Redis did not answer for room 'room': timed out"
    session = room.handle(admitted.cookie, now=T0 + 4.0)
    assert (session.action, session.reason) == ("admit", "session")
    assert session.cookie_state is not None
    assert session.cookie_state.expires_at == T0 + 4.0 + 300
    assert session.store_error is not None
    later = room.handle(None, now=T0 + 70.0)  # a new minute: the plan cannot be read either
    assert (later.action, later.store_error is not None) == ("queue", True)
    store.down = False
    # The plan made without the store lives plan_ttl (1 s); the admission itself succeeds.
    during = room.handle(None, now=T0 + 70.5)
    assert (during.action, during.store_error is not None) == ("admit", True)
    assert room.handle(None, now=T0 + 72.0).store_error is None


def test_store_down_open_admits_up_to_the_emergency_budget_a_minute(impl: Any) -> None:
    """Under "open", a room lets in at most emergency_budget users a minute without the store,
    then queues; the budget is new each minute."""
    store = FlakyStore()
    room = make_room(config(), store=store, store_failure="open", emergency_budget=2)
    store.down = True
    first = [room.handle(None, now=T0 + 1.0 + i).action for i in range(4)]
    assert first == ["admit", "admit", "queue", "queue"]
    assert room.handle(None, now=T0 + 61.0).action == "admit"


def test_store_failure_arguments() -> None:
    """The policy and budget are checked when the room is built."""
    with pytest.raises(ConfigError, match=r"^store_failure is 'maybe'; it must be one of closed"):
        make_room(store_failure="maybe")
    with pytest.raises(ArgumentTypeError, match=r"^store_failure is int; it must be a str$"):
        make_room(store_failure=1)
    with pytest.raises(ConfigError, match=r"^emergency_budget is -1; it must be >= 0$"):
        make_room(store_failure="open", emergency_budget=-1)
    with pytest.raises(ArgumentTypeError, match=r"^emergency_budget is float; it must be an int$"):
        make_room(store_failure="open", emergency_budget=1.0)
    with pytest.raises(ConfigError, match=r"^emergency_budget is 5 but store_failure is 'closed'"):
        make_room(emergency_budget=5)
