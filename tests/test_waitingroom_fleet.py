"""A fleet of proxies: several OS processes, each with its own WaitingRoom on one RedisStore
room, take a spike at the same instants. Over ten spikes, no minute admits more than
new_users_per_minute and the active users never pass total_active_users; every admitted user's
cookie is honoured by every process; and FIFO order holds across processes: the minute after
the spike, the spike's queued users get the slots before anyone who arrives then."""

from __future__ import annotations

import multiprocessing
import random
from collections import Counter
from typing import Any

import pytest

from lbkit.waitingroom import RedisStore, WaitingRoom, WaitingRoomConfig

pytest.importorskip("redis", reason="redis-py is not installed (the redis extra)")

PROCESSES = 4
T0 = 1_700_000_040.0  # the start of a minute
KEYS = {1: bytes(range(32))}
NEW_PER_MINUTE = 20
TOTAL_ACTIVE = 30
CONFIG = WaitingRoomConfig(
    total_active_users=TOTAL_ACTIVE,
    new_users_per_minute=NEW_PER_MINUTE,
    session_duration=600,
    refresh_interval=20,
    refresh_jitter=0.0,
    room_id="fleet",
)


def serve(
    url: str, room_id: str, requests: list[tuple[str | None, float]], start: Any
) -> list[tuple[str, str, str | None]]:
    """One proxy process: a room of its own on the shared store, the requests in order, as
    soon as every process is ready. Returns (action, reason, cookie) per request."""
    store = RedisStore.from_url(url, room_id=room_id, timeout=5.0)
    room = WaitingRoom(CONFIG, keys=KEYS, primary=1, store=store, rng=random.Random(len(requests)))
    start.wait()
    decisions = []
    for cookie, now in requests:
        decision = room.handle(cookie, now=now)
        assert decision.store_error is None, decision.store_error
        decisions.append((decision.action, decision.reason, decision.cookie))
    return decisions


def fleet(
    url: str, room_id: str, batches: list[list[tuple[str | None, float]]]
) -> list[list[tuple[str, str, str | None]]]:
    """Each batch served by its own process, all at once."""
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with context.Manager() as manager:
        start = manager.Barrier(len(batches))
        with context.Pool(len(batches)) as pool:
            results = [pool.apply_async(serve, (url, room_id, batch, start)) for batch in batches]
            return [result.get(timeout=120) for result in results]


def spread(requests: list[tuple[str | None, float]]) -> list[list[tuple[str | None, float]]]:
    """Requests dealt round-robin to the processes, each process's share in time order."""
    return [requests[index::PROCESSES] for index in range(PROCESSES)]


@pytest.mark.parametrize("spike", range(10))
def test_a_fleet_never_over_admits_and_keeps_order(redis_url: str, spike: int) -> None:
    """One spike: 320 users in the first minute; their check-ins and 40 newcomers in the next.
    The limits hold exactly across the four processes, every session is honoured everywhere,
    and the next minute's slots go to the spike's bucket first."""
    room_id = f"fleet-{spike}-{random.Random(spike).getrandbits(32)}"
    arrivals: list[tuple[str | None, float]] = [
        (None, T0 + 1.0 + index * 0.025) for index in range(320)
    ]
    first = [
        decision for batch in fleet(redis_url, room_id, spread(arrivals)) for decision in batch
    ]
    reasons = Counter(reason for _, reason, _ in first)
    # The minute's limit holds exactly: the store counts for the whole fleet.
    assert reasons == {"admitted": NEW_PER_MINUTE, "queued": 320 - NEW_PER_MINUTE}
    admitted = [cookie for action, _, cookie in first if action == "admit"]
    queued = [cookie for action, _, cookie in first if action == "queue"]

    # Every admitted user is honoured by every process: in four rounds, each user's request
    # goes to another process, with the cookie the last response set, as a browser sends it.
    sessions = list(admitted)
    for round_ in range(PROCESSES):
        batches: list[list[tuple[str | None, float]]] = [[] for _ in range(PROCESSES)]
        owners: list[list[int]] = [[] for _ in range(PROCESSES)]
        for user, cookie in enumerate(sessions):
            process = (user + round_) % PROCESSES
            batches[process].append((cookie, T0 + 20.0 + round_ * 5.0 + user * 0.01))
            owners[process].append(user)
        for process, batch in enumerate(fleet(redis_url, room_id, batches)):
            for user, (action, reason, cookie) in zip(owners[process], batch, strict=True):
                assert (action, reason) == ("admit", "session")
                sessions[user] = cookie
    assert all(cookie is not None for cookie in sessions)

    # Next minute: the spike's queued users check in (on time), and 40 newcomers arrive, spread
    # over the same instants. FIFO: the 20 slots go to the older bucket, none to newcomers;
    # the active users stop at TOTAL_ACTIVE (20 already browsing, so 10 more at most).
    second_minute = T0 + 61.0
    check_ins: list[tuple[str | None, float]] = [
        (cookie, second_minute + index * 0.01) for index, cookie in enumerate(queued)
    ]
    newcomers: list[tuple[str | None, float]] = [
        (None, second_minute + index * 0.03) for index in range(40)
    ]
    mixed = sorted(check_ins + newcomers, key=lambda request: request[1])
    second = [decision for batch in fleet(redis_url, room_id, spread(mixed)) for decision in batch]
    by_kind = Counter(
        (action, "check-in" if cookie_given else "new")
        for (action, _, _), (cookie_given, _) in zip(
            second,
            [request for index in range(PROCESSES) for request in mixed[index::PROCESSES]],
            strict=True,
        )
    )
    assert by_kind[("admit", "new")] == 0
    assert by_kind[("admit", "check-in")] == TOTAL_ACTIVE - NEW_PER_MINUTE

    state = RedisStore.from_url(redis_url, room_id=room_id).snapshot(now=second_minute + 10.0).state
    assert state.active_users == TOTAL_ACTIVE
    assert state.admitted_by_bucket == {int(T0 // 60): TOTAL_ACTIVE - NEW_PER_MINUTE}
    assert state.admitted_new == 0
