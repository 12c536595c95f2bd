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
  its own room and client on the one store, timed from the first to the last; the per-key
  figure is the wall time divided by all their decisions, so its inverse is the fleet's
  decisions per second (the bar: at least 10,000).

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


def new_users(url: str, room_id: str, calls: int, start: float) -> list[str]:
    """``calls`` new users' decisions in one room on the shared store; their reasons."""
    room = WaitingRoom(
        CONFIG,
        keys=KEYS,
        primary=1,
        store=RedisStore.from_url(url, room_id=room_id, timeout=5.0),
        rng=random.Random(int(start)),
    )
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
    rounds = [0]
    reasons: list[str] = []

    def many() -> None:
        rounds[0] += 1
        reasons[:] = new_users(redis_url, room_id, calls, T0 + rounds[0] * calls * STEP)

    benchmark(many)
    assert set(reasons) == {"admitted"}


def _serve(url: str, room_id: str, calls: int, start: float, ready: Any) -> list[str]:
    ready.wait()
    return new_users(url, room_id, calls, start)


@GROUP
def test_handle_four_processes(
    benchmark: BenchmarkFixture, pytestconfig: pytest.Config, redis_url: str
) -> None:
    """Four processes, each with its own room on the one store, deciding at once; timed from
    the start line to the last decision."""
    calls = count(pytestconfig)
    room_id = f"bench-{time.time_ns()}"
    describe(benchmark, f"lbkit: handle() on RedisStore, {PROCESSES} processes", calls * PROCESSES)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    rounds = [0]
    reasons: list[str] = []
    with context.Manager() as manager, context.Pool(PROCESSES) as pool:

        def many() -> None:
            rounds[0] += 1
            ready = manager.Barrier(PROCESSES + 1)
            start = T0 + rounds[0] * calls * STEP
            results = [
                pool.apply_async(_serve, (redis_url, room_id, calls, start, ready))
                for _ in range(PROCESSES)
            ]
            ready.wait()  # the clock starts when every process is at the line
            reasons[:] = [reason for result in results for reason in result.get(timeout=300)]

        benchmark(many)
    assert reasons.count("admitted") == calls * PROCESSES
