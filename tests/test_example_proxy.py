"""examples/proxy end to end: two toy backends (real processes) and the example proxy on
loopback, driven over HTTP: a spike against the waiting room, its cookies, FIFO admission as the
room's clock moves, least-outstanding steering, failover when a backend dies, and the HTTP
edges of the proxy itself.

The waiting room runs on a clock the test moves, so a minute passes without waiting for one;
health checks and request accounting use the real monotonic clock, with short intervals, and
every wait on them is bounded and says what it was waiting for.
"""

from __future__ import annotations

import http.client
import json
import random
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from example_proxy_support import COOKIE, EXAMPLE, NOON, ManualClock, example
from lbkit.health import Verdict
from lbkit.waitingroom import WaitingRoom, WaitingRoomConfig, set_cookie_header


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def start_backend(name: str) -> tuple[subprocess.Popen[str], int]:
    """examples/proxy/backend.py in a process of its own, on a free port."""
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "backend.py"), "--name", name, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 20.0)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("listening on "):
        process.kill()
        process.wait(timeout=10)
        pytest.fail(f"backend {name} did not start: {line!r}")
    return process, int(line.rsplit(":", 1)[1])


@dataclass
class Reply:
    """One response, read whole."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def backend(self) -> str | None:
        return self.headers.get("X-Backend")

    @property
    def set_cookie(self) -> str | None:
        return self.headers.get("Set-Cookie")

    @property
    def token(self) -> str | None:
        """The queue cookie's value from Set-Cookie (None without one)."""
        if self.set_cookie is None:
            return None
        pair = self.set_cookie.split(";", 1)[0]
        name, _, value = pair.partition("=")
        assert name == COOKIE, self.set_cookie
        return value

    def json(self) -> Any:
        assert self.headers.get("Content-Type") == "application/json", self.headers
        return json.loads(self.body)


@dataclass
class Stack:
    """Two backends, the room and the proxy, running."""

    host: str
    port: int
    clock: ManualClock
    room: WaitingRoom
    proxy: Any
    runner: Any
    backends: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def request(
        self,
        path: str = "/",
        *,
        token: str | None = None,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        json_status: bool = False,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent["Cookie"] = f"{COOKIE}={token}"
        if json_status:
            sent["Accept"] = "application/json"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=20)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    def verdict(self, name: str) -> Verdict:
        async def read() -> Verdict:
            verdict: Verdict = self.proxy.verdicts[name]
            return verdict

        result: Verdict = self.runner.call(read())
        return result

    def outstanding(self, name: str) -> int:
        count: int = self.proxy.balancer.stats.outstanding((example.POOL, name))
        return count


@pytest.fixture
def backends() -> Iterator[dict[str, tuple[subprocess.Popen[str], int]]]:
    """Backends ``a`` and ``b``, stopped afterwards (whatever a test did to them)."""
    started = {name: start_backend(name) for name in ("a", "b")}
    try:
        yield started
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()


@pytest.fixture
def stack(impl: Any, backends: dict[str, tuple[subprocess.Popen[str], int]]) -> Iterator[Stack]:
    """The proxy in front of ``a`` and ``b``, 3 new users a minute, on the kernels of ``impl``."""
    yield from _stack(backends)


def _stack(backends: dict[str, tuple[subprocess.Popen[str], int]], **room: Any) -> Iterator[Stack]:
    clock = ManualClock(NOON + 1.0)
    config = WaitingRoomConfig(
        total_active_users=50,
        refresh_interval=5.0,
        refresh_jitter=0.0,
        room_id="shop",
        **{"new_users_per_minute": 3, **room},
    )
    waiting_room = WaitingRoom(
        config, keys={1: bytes(range(32))}, primary=1, clock=clock, rng=random.Random(7)
    )
    settings = example.ProxySettings(
        health_interval=0.1,
        # Generous: a loaded CI machine must not fail a live backend's check (a dead one
        # refuses the connection at once, whatever the timeout).
        health_timeout=5.0,
        rise=2,
        fall=2,
        connect_timeout=2.0,
        response_timeout=10.0,
        client_timeout=5.0,
        seed=11,
    )
    proxy = example.Proxy(
        [example.Backend(name, "127.0.0.1", port) for name, (_, port) in backends.items()],
        waiting_room,
        settings=settings,
    )
    runner = example.BackgroundProxy(proxy)
    with runner as (host, port):
        yield Stack(
            host,
            port,
            clock,
            waiting_room,
            proxy,
            runner,
            {name: process for name, (process, _) in backends.items()},
            {name: port for name, (_, port) in backends.items()},
        )


def spike(stack: Stack, users: int) -> list[Reply]:
    """``users`` new users (no cookie) at the same moment, each on a thread of its own."""
    barrier = threading.Barrier(users)
    replies: list[Reply | None] = [None] * users

    def user(index: int) -> None:
        barrier.wait(timeout=20)
        replies[index] = stack.request("/tickets", json_status=True)

    threads = [threading.Thread(target=user, args=(index,)) for index in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(reply is not None for reply in replies), "a user of the spike got no answer"
    return [reply for reply in replies if reply is not None]


def admitted(reply: Reply) -> bool:
    """The origin answered (an admitted user); the waiting room's answers have no X-Backend."""
    return reply.status == 200 and reply.backend is not None


def expected_cookie(stack: Stack, reply: Reply, *, session: bool) -> str:
    """The Set-Cookie header lbkit builds for the token the reply carries."""
    config = stack.room.config
    assert reply.token is not None
    lifetime = config.session_duration if session else config.queued_cookie_lifetime
    return set_cookie_header(reply.token, config.cookie, https=False, max_age=lifetime)


def test_a_spike_admits_the_minutes_limit_and_queues_the_rest(stack: Stack) -> None:
    """Twelve users at once against 3 new users a minute: exactly 3 reach the origin, 9 get
    the JSON status, and every one gets the cookie exactly as lbkit builds it."""
    replies = spike(stack, 12)
    entered = [reply for reply in replies if admitted(reply)]
    queued = [reply for reply in replies if not admitted(reply)]
    assert len(entered) == 3, [(r.status, r.body[:80]) for r in replies]
    assert len(queued) == 9
    assert stack.room.store.snapshot(now=stack.clock()).state.admitted_new == 3
    for reply in entered:
        assert reply.set_cookie == expected_cookie(stack, reply, session=True)
        assert b"Welcome to the origin" in reply.body
        assert reply.token is not None
        assert stack.room.sealer.open(reply.token, now=stack.clock()).accepted_at is not None
    positions = []
    for reply in queued:
        assert reply.status == 200
        assert reply.set_cookie == expected_cookie(stack, reply, session=False)
        assert reply.headers.get("Cache-Control") == "no-store"
        assert reply.token is not None
        cookie = stack.room.sealer.open(reply.token, now=stack.clock())
        assert cookie.accepted_at is None
        status = reply.json()
        assert status["queueing_method"] == "fifo"
        assert status["refresh_interval_seconds"] == 5.0
        assert isinstance(status["queue_position"], int)
        assert status["queue_position"] >= 1
        assert status["wait_time_known"] is False  # no complete minute of admissions yet
        positions.append(status["queue_position"])
    assert len(positions) == 9


def test_cookies_are_honoured_on_later_requests(stack: Stack) -> None:
    """An admitted user keeps access with their cookie (renewed each request) while new users
    queue; a queued user refreshing early stays queued with their cookie untouched, on time
    gets a new one; an altered cookie counts as none."""
    first = spike(stack, 4)
    inside = next(reply for reply in first if admitted(reply))
    waiting = next(reply for reply in first if not admitted(reply))
    stack.clock.advance(2.0)
    again = stack.request("/cart", token=inside.token)
    assert admitted(again)
    assert again.set_cookie == expected_cookie(stack, again, session=True)  # renewed
    newcomer = stack.request("/", json_status=True)
    assert not admitted(newcomer)
    assert newcomer.json()["queue_position"] >= 1
    early = stack.request("/", token=waiting.token, json_status=True)
    assert not admitted(early)
    assert early.set_cookie is None  # an early check-in leaves the cookie as it is
    assert early.json()["refresh_interval_seconds"] == pytest.approx(3.0)
    stack.clock.advance(3.0)
    on_time = stack.request("/", token=waiting.token, json_status=True)
    assert not admitted(on_time)  # still the same full minute
    assert on_time.set_cookie == expected_cookie(stack, on_time, session=False)
    assert on_time.token != waiting.token
    assert waiting.token is not None
    altered = waiting.token[:-2] + ("AA" if not waiting.token.endswith("AA") else "BB")
    forged = stack.request("/", token=altered, json_status=True)
    assert not admitted(forged)
    assert forged.token not in (None, altered)


def test_queued_users_enter_in_arrival_order_as_the_clock_moves(stack: Stack) -> None:
    """FIFO across minutes: users queued in minute 0 are not overtaken by users who arrived in
    minute 1 and check in first; each minute lets in 3."""
    minute_0 = spike(stack, 8)
    assert sum(admitted(reply) for reply in minute_0) == 3
    first_wave = [reply.token for reply in minute_0 if not admitted(reply)]
    assert len(first_wave) == 5

    stack.clock.advance(60.0)  # minute 1: all 3 slots are reserved for minute 0's queue
    second_wave = []
    for _ in range(3):
        reply = stack.request("/", json_status=True)
        assert not admitted(reply), "a newcomer overtook users queued a minute earlier"
        assert reply.json()["queue_position"] >= 6  # behind all 5 of minute 0's queue
        second_wave.append(reply.token)
    first_results = [stack.request("/", token=token, json_status=True) for token in first_wave]
    assert sum(admitted(reply) for reply in first_results) == 3
    first_wave = [reply.token for reply in first_results if not admitted(reply)]

    stack.clock.advance(60.0)  # minute 2: 2 slots for minute 0's last two, 1 for minute 1
    second_results = [stack.request("/", token=token, json_status=True) for token in second_wave]
    assert sum(admitted(reply) for reply in second_results) == 1
    first_results = [stack.request("/", token=token, json_status=True) for token in first_wave]
    assert all(admitted(reply) for reply in first_results), "minute 0's users lost their slots"
    second_wave = [reply.token for reply in second_results if not admitted(reply)]

    stack.clock.advance(60.0)  # minute 3: the rest of minute 1
    assert all(admitted(stack.request("/", token=token, json_status=True)) for token in second_wave)


def test_least_outstanding_requests_steer_around_a_busy_backend(stack: Stack) -> None:
    """With a request held in flight on one backend, the next requests all go to the other
    (power of two choices over two backends always compares both)."""
    (token,) = [reply.token for reply in spike(stack, 1)]
    # The proxy ends its count just after the client has the whole response: wait for it, or
    # that request could pass for the held one.
    wait_until(
        lambda: stack.outstanding("a") + stack.outstanding("b") == 0,
        "the first request's count to end",
    )
    held: list[Reply] = []
    holder = threading.Thread(
        target=lambda: held.append(stack.request("/hold?key=steering", token=token))
    )
    holder.start()
    try:
        wait_until(
            lambda: stack.outstanding("a") + stack.outstanding("b") == 1,
            "the held request to be in flight",
        )
        busy = "a" if stack.outstanding("a") else "b"
        quick = [stack.request("/", token=token) for _ in range(5)]
        assert stack.outstanding(busy) == 1, "the held request ended before its release"
    finally:
        for port in stack.ports.values():  # straight to the backends: the proxy would steer
            release = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            release.request("GET", "/release?key=steering")
            assert release.getresponse().status == 200
            release.close()
        holder.join(timeout=30)
    assert [reply.backend for reply in quick] == ["b" if busy == "a" else "a"] * 5, (
        busy,
        stack.proxy.verdicts,
    )
    assert len(held) == 1
    assert admitted(held[0])
    assert held[0].backend == busy
    wait_until(
        lambda: stack.outstanding("a") + stack.outstanding("b") == 0,
        "the outstanding counts to drop back to 0",
    )


def test_failover_when_a_backend_dies(stack: Stack) -> None:
    """Backend b is killed: requests (GET and POST) keep succeeding on a, the health checks
    mark b down; with both dead the proxy answers 503 itself."""
    (token,) = [reply.token for reply in spike(stack, 1)]
    wait_until(lambda: stack.proxy.health_rounds >= 2, "two rounds of health checks")
    served = {stack.request("/", token=token).backend for _ in range(6)}
    assert served <= {"a", "b"}
    stack.backends["b"].kill()
    stack.backends["b"].wait(timeout=10)
    replies = [stack.request(f"/after/{i}", token=token) for i in range(8)]
    assert [(reply.status, reply.backend) for reply in replies] == [(200, "a")] * 8
    posted = stack.request("/orders", token=token, method="POST", body=b"one ticket")
    assert (posted.status, posted.backend, posted.body) == (200, "a", b"one ticket")
    wait_until(lambda: stack.verdict("b") is Verdict.DOWN, "b to be marked down")
    assert stack.verdict("a") is Verdict.UP
    assert "b" not in stack.proxy.balancer.pool_report(example.POOL).eligible

    stack.backends["a"].kill()
    stack.backends["a"].wait(timeout=10)
    wait_until(lambda: stack.verdict("a") is Verdict.DOWN, "the health checks to mark a down")
    none_left = stack.request("/", token=token)
    assert none_left.status == 503
    assert none_left.headers.get("Retry-After") == "5"
    assert b"No backend can serve" in none_left.body


def test_the_http_edges_of_the_proxy(stack: Stack) -> None:
    """X-Forwarded-For is appended to, keep-alive carries several requests, HEAD has no body,
    and malformed, chunked or oversized requests get the proxy's own 4xx/5xx answers."""
    (token,) = [reply.token for reply in spike(stack, 1)]
    page = stack.request("/", token=token, headers={"X-Forwarded-For": "203.0.113.9"})
    assert b"X-Forwarded-For: <code>203.0.113.9, 127.0.0.1</code>" in page.body
    head = stack.request("/", token=token, method="HEAD")
    assert (head.status, head.body) == (200, b"")

    connection = http.client.HTTPConnection(stack.host, stack.port, timeout=20)
    try:
        for path in ("/one", "/two", "/three"):
            connection.request("GET", path, headers={"Cookie": f"{COOKIE}={token}"})
            response = connection.getresponse()
            assert response.status == 200
            assert path.encode() in response.read()
            assert response.getheader("Connection") == "keep-alive"
    finally:
        connection.close()

    def raw(data: bytes) -> bytes:
        with socket.create_connection((stack.host, stack.port), timeout=20) as client:
            client.sendall(data)
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    assert raw(b"NOT A REQUEST\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    assert raw(b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")  # no Host
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert raw(chunked).startswith(b"HTTP/1.1 501 ")
    huge = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"
    assert raw(huge).startswith(b"HTTP/1.1 413 ")
    assert raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 "
    )
    closing = raw(b"GET / HTTP/1.0\r\nCookie: " + f"{COOKIE}={token}".encode() + b"\r\n\r\n")
    assert closing.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: close" in closing
