"""lbkit.waitingroom.redis_store: RedisStore against a real redis-server on loopback (the
``redis_url`` fixture starts one; the module is skipped, saying why, only when none can be
started). The store is run through the same random programs as MemoryStore and must give
the same answers; its keys are namespaced per room and expire on their own; its counts
outlive the store object; an unreachable Redis is StoreUnavailable with nothing counted; and a
WaitingRoom runs on it."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, StoreUnavailable
from lbkit.waitingroom import WaitingRoomConfig
from lbkit.waitingroom.redis_store import RedisStore
from lbkit.waitingroom.room import WaitingRoom
from lbkit.waitingroom.store import ANYWHERE, Admission, MemoryStore, SlotStore

redis = pytest.importorskip("redis", reason="redis-py is not installed (the redis extra)")

_rooms = itertools.count()


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    connection = redis.Redis.from_url(redis_url, socket_timeout=5.0)
    yield connection
    connection.close()


def new_room_id() -> str:
    """A room id no other test uses, so every test (and example) starts from no counts."""
    return f"test-{next(_rooms)}"


def ticket(now: float = 600.0, **fields: Any) -> Admission:
    values: dict[str, Any] = {
        "minute": math.floor(now / 60),
        "group": None,
        "cap": None,
        "minute_limit": None,
        "active_limit": None,
        "session_expires": int(now) + 300,
        "now": now,
    }
    values.update(fields)
    return Admission(**values)


# --- the same answers as MemoryStore -----------------------------------------------------------

limits = st.one_of(st.none(), st.integers(0, 4))
steps = st.lists(
    st.tuples(
        st.sampled_from(["admit", "admit", "renew", "snapshot"]),
        st.integers(0, 200),  # seconds since the last step: minutes pass, history is dropped
        st.integers(0, 3),  # group (3 means None)
        limits,
        limits,
        limits,
        st.integers(0, 90),  # session or place lifetime
        st.lists(
            st.tuples(st.sampled_from(["a", "b|c", "zürich", ANYWHERE]), st.integers(0, 2)),
            max_size=2,
        ),
        st.booleans(),  # hold a place
        st.sampled_from([None, "ams", "b|c", "東京"]),  # location
    ),
    max_size=40,
)


@given(steps)
def test_redis_store_answers_like_the_memory_store(
    client: Any, program: list[tuple[Any, ...]]
) -> None:
    """Every admission, renewal and snapshot of a random program gets the memory store's
    answer: the scripts are the slotcounts kernel, in Lua."""
    store, reference = RedisStore(client, room_id=new_room_id()), MemoryStore()
    now = 600.25
    sessions: list[int] = []
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
        location,
    ) in program:
        now += advance
        minute = math.floor(now / 60)
        group = None if group_pick == 3 else group_pick
        if kind == "admit":
            attempt = Admission(
                minute=minute,
                group=group,
                cap=cap,
                minute_limit=minute_limit,
                active_limit=active_limit,
                session_expires=int(now) + span,
                now=now,
                shares=tuple(shares),
                location=location,
                queued=(group or 0, int(now) + span) if hold else None,
                requeue=(minute, int(now) + span),
            )
            outcome = reference.try_admit(attempt)
            assert store.try_admit(attempt) == outcome
            if outcome:
                sessions.append(int(now) + span)
        elif kind == "renew":
            previous = sessions.pop(0) if sessions else int(now) + 1
            reference.renew(previous, int(now) + span, now=now)
            store.renew(previous, int(now) + span, now=now)
            sessions.append(int(now) + span)
        else:
            assert store.snapshot(now=now) == reference.snapshot(now=now)
    assert store.snapshot(now=now) == reference.snapshot(now=now)


def test_limits_hold_and_the_snapshot_reports_them(client: Any) -> None:
    """A worked example: the cap, the minute's limit and the active users, then the counts a
    plan is made from (places by bucket, admissions by group, traffic, history)."""
    store = RedisStore(client, room_id=new_room_id())
    assert isinstance(store, SlotStore)
    assert store.try_admit(ticket(group=10, cap=1, location="ams"))
    assert not store.try_admit(ticket(group=10, cap=1, location="ams", requeue=(10, 900)))
    assert store.try_admit(ticket(minute_limit=2, location="fra"))
    assert not store.try_admit(ticket(minute_limit=2, requeue=(10, 901)))
    assert not store.try_admit(ticket(active_limit=2))
    snapshot = store.snapshot(now=610.0)
    state = snapshot.state
    assert (state.minute, state.active_users, state.admitted_new) == (10, 2, 1)
    assert dict(state.admitted_by_bucket) == {10: 1}
    assert state.queued(610.0) == {10: 2}
    later = store.snapshot(now=665.0)
    assert dict(later.traffic) == {"ams": 2, "fra": 1}
    assert dict(later.admitted_by_minute) == {10: 2}


def test_keys_are_the_rooms_own_and_expire(client: Any) -> None:
    """Every key a room writes starts with its prefix (one cluster hash slot) and has a time
    to live of at most keep_for; another room's counts are apart."""
    room = new_room_id()
    store = RedisStore(client, room_id=room, keep_for=7200)
    store.try_admit(ticket(group=1, cap=5, shares=(("ams", 3),), location="ams", queued=None))
    store.try_admit(ticket(cap=0, requeue=(10, 900)))
    store.renew(900, 960, now=601.0)
    keys = [key.decode() for key in client.scan_iter(match=f"lbkit:wr:{{{room}}}:*")]
    assert {key.split(":", 3)[3] for key in keys} == {
        "room",
        "minute:10",
        "places:10",
        "buckets",
        "sessions",
        "session_seconds",
    }
    fields = client.hgetall(RedisStore.key_prefix(room) + "minute:10")
    assert fields == {b"g:1": b"1", b"total": b"1", b"s:1|ams": b"1", b"t:ams": b"1"}
    assert client.hgetall(RedisStore.key_prefix(room) + "room") == {
        b"newest": b"10",
        b"active": b"1",
        b"lapse": b"900",
    }
    assert all(0 < client.ttl(key) <= 7200 for key in keys)
    other = RedisStore(client, room_id=new_room_id())
    assert other.snapshot(now=610.0).state.active_users == 0


def test_counts_outlive_the_store_object(client: Any) -> None:
    """A proxy that restarts builds a new store on the same Redis and finds the counts."""
    room = new_room_id()
    RedisStore(client, room_id=room).try_admit(ticket(requeue=(10, 900)))
    again = RedisStore(client, room_id=room)
    assert again.snapshot(now=610.0).state.active_users == 1


def test_old_minutes_and_lapsed_counts_are_dropped(client: Any) -> None:
    """Minutes more than HISTORY_MINUTES old are deleted as minutes pass, lapsed sessions and
    places as time passes."""
    room = new_room_id()
    store = RedisStore(client, room_id=room)
    store.try_admit(ticket(60.0, group=1, cap=5, shares=(("a", 5),), location="a"))
    store.try_admit(ticket(60.0, cap=0, requeue=(1, 100)))
    snapshot = store.snapshot(now=20 * 60.0)
    assert snapshot.state.active_users == 0
    assert snapshot.state.buckets == ()
    names = {key.decode().split(":", 3)[3] for key in client.scan_iter(match=f"*{{{room}}}*")}
    assert names == {"room"}  # the newest minute and the active users, at 0
    assert client.hgetall(RedisStore.key_prefix(room) + "room") == {
        b"newest": b"20",
        b"active": b"0",
    }


def test_a_redis_that_forgot_the_scripts_is_taught_again(client: Any) -> None:
    """After SCRIPT FLUSH (as after a restart) the next call loads its script and counts once."""
    store = RedisStore(client, room_id=new_room_id())
    assert store.try_admit(ticket(requeue=(10, 900)))
    client.script_flush()
    assert store.try_admit(ticket(601.0, requeue=(10, 901)))
    client.script_flush()
    store.renew(900, 950, now=602.0)
    client.script_flush()
    assert store.snapshot(now=603.0).state.active_users == 2


def test_a_connection_the_server_closed_is_replaced(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection the server dropped while it sat idle (a restart, the server's idle
    timeout) is noticed before the next call, which connects again and counts once; under
    load (no idle time) the check is skipped, and a dropped connection costs one call."""
    from lbkit.waitingroom import redis_store

    store = RedisStore(client, room_id=new_room_id())
    assert store.try_admit(ticket())
    monkeypatch.setattr(redis_store, "_IDLE_SECONDS", -1.0)  # every connection counts as idle
    client.client_kill_filter(_type="normal", skipme=True)
    assert store.try_admit(ticket(601.0))
    assert store.snapshot(now=602.0).state.active_users == 2
    monkeypatch.setattr(redis_store, "_IDLE_SECONDS", math.inf)  # never checked
    client.client_kill_filter(_type="normal", skipme=True)
    with pytest.raises(StoreUnavailable, match="Redis did not answer for room 'test-"):
        store.try_admit(ticket(603.0))
    assert store.snapshot(now=604.0).state.active_users == 2  # nothing counted, reconnected


def test_threads_have_connections_of_their_own(client: Any) -> None:
    """Threads sharing one store each talk on their own connection: every call is answered
    and counted once, with no reply read by the wrong thread."""
    store = RedisStore(client, room_id=new_room_id())
    threads, calls = 8, 50

    def admit_many(offset: int) -> list[bool]:
        return [
            store.try_admit(ticket(600.0 + offset + index / 1000, session_expires=900 + offset))
            for index in range(calls)
        ]

    with ThreadPoolExecutor(threads) as pool:
        outcomes = [outcome for batch in pool.map(admit_many, range(threads)) for outcome in batch]
    assert outcomes == [True] * threads * calls
    snapshot = store.snapshot(now=609.0)
    assert snapshot.state.active_users == threads * calls
    assert snapshot.state.admitted_new == threads * calls


def _admit_in_child(url: str, room_id: str, store: RedisStore, results: Any) -> None:
    results.put(
        (
            store.try_admit(ticket(601.0)),
            RedisStore.from_url(url, room_id=room_id).snapshot(now=602.0).state.active_users,
        )
    )


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_a_forked_child_makes_its_own_connection(redis_url: str, client: Any) -> None:
    """A store used before a fork works in the child on a connection of the child's own; the
    parent's connection goes on answering the parent."""
    room_id = new_room_id()
    store = RedisStore(client, room_id=room_id)
    assert store.try_admit(ticket())
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_admit_in_child, args=(redis_url, room_id, store, results))
    child.start()
    admitted, seen = results.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    assert (admitted, seen) == (True, 2)
    assert store.try_admit(ticket(603.0))
    assert store.snapshot(now=604.0).state.active_users == 3


def test_a_redis_that_refuses_writes_is_store_unavailable(client: Any) -> None:
    """A Redis out of memory refuses the script's first write: StoreUnavailable, nothing
    counted, and the store works again once Redis does."""
    store = RedisStore(client, room_id=new_room_id())
    assert store.try_admit(ticket())
    (limit,) = client.config_get("maxmemory").values()
    client.config_set("maxmemory", 1)
    try:
        with pytest.raises(
            StoreUnavailable,
            match=r"Redis refused the call for room 'test-\d+': command not allowed when used memory",
        ):
            store.try_admit(ticket(601.0))
    finally:
        client.config_set("maxmemory", limit)
    assert store.snapshot(now=602.0).state.active_users == 1
    assert store.try_admit(ticket(603.0))


def test_unreachable_redis_is_store_unavailable() -> None:
    """No server behind the port: every call raises StoreUnavailable, promptly."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", room_id="gone", timeout=0.2)
    with pytest.raises(StoreUnavailable, match="Redis did not answer for room 'gone'"):
        store.try_admit(ticket())
    with pytest.raises(StoreUnavailable):
        store.renew(1, 2, now=1.0)
    with pytest.raises(StoreUnavailable):
        store.snapshot(now=1.0)


def test_bad_arguments(client: Any) -> None:
    """Construction and calls name what is wrong; nothing reaches Redis."""
    with pytest.raises(
        ArgumentTypeError, match=r"^client is dict; it must be a redis\.Redis client$"
    ):
        RedisStore({}, room_id="r")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="room_id is ''"):
        RedisStore(client, room_id="")
    with pytest.raises(ConfigError, match="keep_for is 60; it must be at least 3600"):
        RedisStore(client, room_id="r", keep_for=60)
    with pytest.raises(ConfigError, match=r"^timeout is 0; it must be finite and > 0 seconds$"):
        RedisStore.from_url("redis://127.0.0.1:1/0", room_id="r", timeout=0)
    store = RedisStore(client, room_id=new_room_id())
    with pytest.raises(InvalidArgument, match=r"cap is -1; it must be an int >= 0 or None"):
        store.try_admit(ticket(cap=-1))
    with pytest.raises(InvalidArgument, match=r"session_expires is 9007199254740993; a RedisStore"):
        store.try_admit(ticket(session_expires=2**53 + 1))
    with pytest.raises(InvalidArgument, match=r"^the second of requeue is 9007199254740993; a"):
        store.try_admit(ticket(requeue=(10, 2**53 + 1)))
    with pytest.raises(InvalidArgument, match=r"^the budget of share 'a' is 9007199254740993; a"):
        store.try_admit(ticket(shares=(("a", 2**53 + 1),)))
    with pytest.raises(InvalidArgument, match=r"^cap is 9007199254740993; a RedisStore takes"):
        store.try_admit(ticket(cap=2**53 + 1))
    with pytest.raises(InvalidArgument, match=r"now is 1e\+300; a RedisStore takes times"):
        store.snapshot(now=1e300)
    with pytest.raises(ArgumentTypeError, match="previous is str"):
        store.renew("1", 2, now=1.0)  # type: ignore[arg-type]
    assert store.snapshot(now=600.0).state.active_users == 0
    assert repr(store).startswith("RedisStore(room_id='test-")


def test_a_waiting_room_runs_on_redis(client: Any) -> None:
    """Two rooms (two proxies) on one RedisStore room id share its counts: the second sees
    the first's admissions and honours its cookies."""
    config = WaitingRoomConfig(total_active_users=2, new_users_per_minute=2, room_id="shop")
    room_id = new_room_id()
    first, second = (
        WaitingRoom(
            config, keys={1: bytes(32)}, primary=1, store=RedisStore(client, room_id=room_id)
        )
        for _ in range(2)
    )
    t0 = 1_700_000_040.0
    admitted = first.handle(None, now=t0)
    assert admitted.reason == "admitted"
    assert second.handle(None, now=t0 + 1).reason == "admitted"
    assert second.handle(None, now=t0 + 2).reason == "queued"
    assert second.handle(admitted.cookie, now=t0 + 3).reason == "session"
    assert first.store.snapshot(now=t0 + 4).state.active_users == 2


def test_a_room_on_an_unreachable_redis_follows_its_policy() -> None:
    """With Redis gone, a room decides by store_failure within the client's timeout and says
    so in every decision: "closed" queues a new user, "open" lets one in on its budget."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = f"redis://127.0.0.1:{port}/0"
    config = WaitingRoomConfig(total_active_users=10, new_users_per_minute=5)
    keys = {1: bytes(32)}
    closed = WaitingRoom(
        config, keys=keys, primary=1, store=RedisStore.from_url(dead, room_id="gone")
    )
    queued = closed.handle(None, now=1_700_000_040.0)
    assert (queued.action, queued.reason) == ("queue", "queued")
    assert queued.store_error is not None
    assert "Redis did not answer for room 'gone'" in queued.store_error
    opened = WaitingRoom(
        config,
        keys=keys,
        primary=1,
        store=RedisStore.from_url(dead, room_id="gone"),
        store_failure="open",
        emergency_budget=1,
    )
    assert opened.handle(None, now=1_700_000_040.0).action == "admit"
    assert opened.handle(None, now=1_700_000_041.0).action == "queue"
