"""Waiting room on Redis (loopback): what a decision costs when the counts are shared.

One group, **waiting room on Redis**, against the redis-server the ``redis_url`` fixture starts
on loopback (the group is skipped, saying why, when none can be started). The baseline is a
bare ``INCR`` round trip from the same client: the least any shared counter costs. Beside it:

* **INCR on a kept connection**: the same command written and read on one connection
  without redis-py's command layer, the way ``RedisStore`` sends its scripts: the floor of a
  round trip from Python;
* **try_admit round trip**: ``RedisStore.try_admit`` of a room's ticket (one script, one
  round trip, the only network call of a decision); the bar is at most 1.5 times the
  ``INCR`` round trip;
* **handle(), one process**: a new user's whole decision with a ``RedisStore`` (cookie crypto,
  the script, the plan read once per second);
* **handle(), four processes**: the same decisions made by four processes at once, each with
  its own room and client on the one store (made once per process, as a proxy's), timed from
  the start line to the last decision; the per-key figure is the wall time divided by all
  their decisions, so its inverse is the fleet's decisions per second (the bar: at least
  10,000).

Nothing here asserts a time; each variant checks its decisions.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.conftest import timing
from benchmarks.report import describe
from lbkit.waitingroom import RedisStore, WaitingRoom, WaitingRoomConfig
from lbkit.waitingroom.store import Admission

redis = pytest.importorskip("redis", reason="redis-py is not installed (the redis extra)")

GROUP = pytest.mark.benchmark(group="waiting room on Redis (loopback)")
TIMED_CALLS = 1_000
FLEET_CALLS = 4_000  # per process: a round of about a second, against the pool's dispatch
SMOKE_CALLS = 20
PROCESSES = 4
T0 = 1_700_000_040.0
KEYS = {1: bytes(range(32))}
# A room with space: every attempt is a full admission (the longest script path).
CONFIG = WaitingRoomConfig(total_active_users=10**9, new_users_per_minute=10**9)
STEP = 1e-4  # seconds between two requests of one process


def count(pytestconfig: pytest.Config) -> int:
    return TIMED_CALLS if timing(pytestconfig) else SMOKE_CALLS


def client_for(url: str) -> Any:
    return RedisStore.from_url(url, room_id="unused", timeout=5.0)._client


@GROUP
def test_incr_round_trip(
    benchmark: BenchmarkFixture, pytestconfig: pytest.Config, redis_url: str
) -> None:
    """The baseline: one INCR, one round trip, from the client RedisStore would use."""
    calls = count(pytestconfig)
    client = client_for(redis_url)
    describe(benchmark, "bare INCR round trip (baseline)", calls, baseline=True)

    def many() -> None:
        for _ in range(calls):
            client.incr("lbkit:bench:incr")

    benchmark(many)
    assert int(client.get("lbkit:bench:incr")) >= calls


@GROUP
def test_incr_on_a_kept_connection(
    benchmark: BenchmarkFixture, pytestconfig: pytest.Config, redis_url: str
) -> None:
    """The floor: one INCR written and read on a kept connection, as RedisStore calls its
    scripts, without redis-py's command layer."""
    calls = count(pytestconfig)
    client = client_for(redis_url)
    connection = client.connection_pool.get_connection()
    command = [b"*2\r\n$4\r\nINCR\r\n$16\r\nlbkit:bench:kept\r\n"]
    describe(benchmark, "bare INCR on a kept connection (no command layer)", calls)
    replies: list[int] = []

    def many() -> None:
        replies.clear()
        for _ in range(calls):
            connection.send_packed_command(command, False)
            replies.append(connection.read_response())

    benchmark(many)
    assert replies == sorted(replies)
    assert replies[-1] >= calls
    client.close()


@GROUP
def test_try_admit_round_trip(
    benchmark: BenchmarkFixture, pytestconfig: pytest.Config, redis_url: str
) -> None:
    """One admission script per call: check the limits, count, place the session."""
    calls = count(pytestconfig)
    store = RedisStore.from_url(redis_url, room_id=f"bench-{time.time_ns()}", timeout=5.0)
    describe(benchmark, "lbkit: RedisStore.try_admit round trip", calls)
    clock = [T0]
    outcomes: list[bool] = []

    def many() -> None:
        outcomes.clear()
        now = clock[0]
        for _ in range(calls):
            now += STEP
            ticket = Admission(
                minute=int(now // 60),
                group=None,
                cap=10**9,
                minute_limit=10**9,
                active_limit=10**9,
                session_expires=int(now) + 300,
                now=now,
                requeue=(int(now // 60), int(now) + 300),
            )
            outcomes.append(store.try_admit(ticket))
        clock[0] = now

    benchmark(many)
    assert all(outcomes)


def open_room(url: str, room_id: str, seed: int) -> WaitingRoom:
    """A proxy's room on the shared store: built once per process, as a proxy does."""
    return WaitingRoom(
        CONFIG,
        keys=KEYS,
        primary=1,
        store=RedisStore.from_url(url, room_id=room_id, timeout=5.0),
        rng=random.Random(seed),
    )


def new_users(room: WaitingRoom, calls: int, start: float) -> list[str]:
    """``calls`` new users' decisions in ``room``; their reasons."""
    reasons = []
    now = start
    for _ in range(calls):
        now += STEP
        reasons.append(room.handle(None, now=now).reason)
    return reasons


@GROUP
def test_handle_one_process(
    benchmark: BenchmarkFixture, pytestconfig: pytest.Config, redis_url: str
) -> None:
    """A new user's whole decision on a RedisStore, in this process."""
    calls = count(pytestconfig)
    room_id = f"bench-{time.time_ns()}"
    describe(benchmark, "lbkit: handle() on RedisStore, one process", calls)
    room = open_room(redis_url, room_id, 1)
    rounds = [0]
    reasons: list[str] = []

    def many() -> None:
        rounds[0] += 1
        reasons[:] = new_users(room, calls, T0 + rounds[0] * calls * STEP)

    benchmark(many)
    assert set(reasons) == {"admitted"}


# A pool worker's room, made once by its initializer, and the start line it waits at: a timed
# round is only decisions.
_worker: list[Any] = []


def _open_worker_room(url: str, room_id: str, ready: Any) -> None:
    _worker[:] = [open_room(url, room_id, multiprocessing.current_process().pid or 0), ready]


def _serve(calls: int, start: float) -> list[str]:
    room, ready = _worker
    ready.wait()
    return new_users(room, calls, start)


@GROUP
def test_handle_four_processes(
    benchmark: BenchmarkFixture, pytestconfig: pytest.Config, redis_url: str
) -> None:
    """Four processes, each with its own room on the one store, deciding at once; timed from
    the start line to the last decision."""
    calls = FLEET_CALLS if timing(pytestconfig) else SMOKE_CALLS
    room_id = f"bench-{time.time_ns()}"
    describe(benchmark, f"lbkit: handle() on RedisStore, {PROCESSES} processes", calls * PROCESSES)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    ready = context.Barrier(PROCESSES + 1)
    rounds = [0]
    reasons: list[str] = []
    with context.Pool(
        PROCESSES, initializer=_open_worker_room, initargs=(redis_url, room_id, ready)
    ) as pool:

        def line_up() -> tuple[tuple[Any, ...], dict[str, Any]]:
            # Untimed: the workers get their calls and wait at the start line.
            rounds[0] += 1
            start = T0 + rounds[0] * calls * STEP
            return ([pool.apply_async(_serve, (calls, start)) for _ in range(PROCESSES)],), {}

        def decide(results: list[Any]) -> None:
            ready.wait()  # the clock starts when every process is at the line
            reasons[:] = [reason for result in results for reason in result.get(timeout=300)]

        benchmark.pedantic(  # type: ignore[no-untyped-call]
            decide, setup=line_up, rounds=5 if timing(pytestconfig) else 1
        )
    assert reasons.count("admitted") == calls * PROCESSES
