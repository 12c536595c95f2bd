"""An example HTTP reverse proxy built on lbkit: a waiting room in front of health-checked,
least-outstanding-requests-balanced backends, in the standard library's asyncio.

Per request, in this order:

1. **Waiting room** (:class:`lbkit.waitingroom.WaitingRoom`). The request's queue cookie
   (:func:`~lbkit.waitingroom.read_cookie`) goes to :meth:`~lbkit.waitingroom.WaitingRoom.handle`.
   ``admit`` forwards the request; ``queue`` answers with the waiting-room page (HTML that
   refreshes itself after the decision's refresh interval and shows the queue position or the
   estimated wait), or with the decision's JSON status for ``Accept: application/json``;
   ``reject`` answers 503 with the same status. Every response carries the ``Set-Cookie``
   header exactly as :meth:`~lbkit.waitingroom.WaitingRoom.set_cookie_header` builds it.
2. **Steering** (:class:`lbkit.steering.LoadBalancer`, one pool, the ``least_outstanding``
   picker: power of two choices on the requests in flight). The proxy counts each forwarded
   request from :meth:`~lbkit.steering.LoadBalancer.begin` to
   :meth:`~lbkit.steering.LoadBalancer.end`.
3. **Failover.** A backend that refuses the connection (or times out connecting) was sent
   nothing, so the request goes to another backend whatever its method
   (``decide(..., failed=...)``); a backend that fails after the request was sent is retried
   only for idempotent methods, and only before any byte of the response reached the client.
   Each such failure also counts as a failed health check.
4. **Health** (:mod:`lbkit.health`). Every ``health_interval`` seconds each backend gets an
   HTTP ``GET`` of ``health_path``; 2xx and 3xx are up. The results go through a
   :class:`~lbkit.health.Hysteresis` (``rise`` successes to come back, ``fall`` failures to go
   down) into a :class:`~lbkit.health.MonitorGroup`, whose verdicts the load balancer takes
   with :meth:`~lbkit.steering.LoadBalancer.apply_health`.

The HTTP/1.1 side is deliberately small: requests with a ``Content-Length`` body or none
(chunked request bodies get 501), keep-alive to the client, one upstream connection per
request (``Connection: close``), responses streamed back as they arrive (``Content-Length``,
chunked, or until the backend closes), hop-by-hop headers dropped, ``X-Forwarded-For``,
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` added, timeouts on every read, and small 4xx and
5xx pages of its own. No TLS: put it behind a TLS terminator and pass
``--trust-forwarded-proto``.

Run ``python examples/proxy/lbkit_proxy.py --help`` for the flags, and see README.md beside
this file. Tests and embedding applications use :class:`Proxy` (and :class:`BackgroundProxy`
to run one on a thread of its own); the room they pass in carries its own clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import http
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbkit.errors import LbkitError, NoHealthyEndpoint
from lbkit.health import Hysteresis, Member, MonitorGroup, MonitorResult, Verdict
from lbkit.steering import Decision as Route
from lbkit.steering import Endpoint, LoadBalancer, Pool, Request
from lbkit.waitingroom import (
    Decision,
    Keyring,
    WaitingRoom,
    WaitingRoomConfig,
    new_key,
    parse_cookie_header,
    read_cookie,
)

__all__ = [
    "Backend",
    "BackgroundProxy",
    "HttpError",
    "Proxy",
    "ProxySettings",
    "main",
    "read_key_file",
    "serve",
]

log = logging.getLogger("lbkit_proxy")

#: The one pool every backend is in, the monitor's name and the location the checks run from.
POOL = "origin"
MONITOR = "http"
LOCATION = "proxy"
#: Methods a request may be sent again for after it reached a backend (RFC 9110, 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: Headers that describe one connection, not the message (RFC 9110, 7.6.1): never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_BLOCK = 64 * 1024


@dataclass(frozen=True)
class Backend:
    """One origin server: a name (the endpoint id in lbkit) and where it listens."""

    name: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, default_name: str) -> Backend:
        """``HOST:PORT`` or ``NAME=HOST:PORT`` (an IPv6 host in brackets)."""
        name, equals, address = text.partition("=")
        if not equals:
            name, address = default_name, text
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536 or not name:
            raise ValueError(f"backend {text!r} is not [NAME=]HOST:PORT")
        return cls(name, host.strip("[]"), int(port))

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ProxySettings:
    """How the proxy checks, times out and retries (seconds, counts and bytes)."""

    health_path: str = "/healthz"
    health_interval: float = 2.0
    health_timeout: float = 1.0
    rise: int = 2
    fall: int = 2
    connect_timeout: float = 2.0
    response_timeout: float = 30.0
    client_timeout: float = 15.0
    retries: int = 1
    max_header_bytes: int = 32 * 1024
    max_body_bytes: int = 10 * 1024 * 1024
    trust_forwarded_proto: bool = False
    seed: int | None = None


class HttpError(Exception):
    """A request the proxy answers itself with ``status`` (and closes the connection)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class HttpRequest:
    """One parsed request head (header names lower-cased, in order, repeats kept)."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @property
    def keep_alive(self) -> bool:
        tokens = {
            token.strip().lower() for token in ",".join(self.header_values("connection")).split(",")
        }
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    @property
    def wants_json(self) -> bool:
        accept = self.header("accept") or ""
        return any(
            part.split(";")[0].strip().lower() == "application/json" for part in accept.split(",")
        )

    def cookies(self) -> dict[str, str]:
        """The ``Cookie`` header lines as name to value (the first of a repeated name wins)."""
        return parse_cookie_header(self.header_values("cookie"))


@dataclass
class _Outcome:
    """How one forward went: whether the client got a response head, and whether to retry."""

    answered: bool = False
    ok: bool = False
    keep_alive: bool = False
    retry: bool = False
    backend_failed: bool = False
    status: int | None = None
    error: str = ""


@dataclass
class _Upstream:
    """A backend's response head."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)


class Proxy:
    """The proxy: a waiting room, a load balancer over health-checked backends, and the HTTP
    plumbing between them.

    Args:
        backends: the origin servers (names unique).
        room: the waiting room every request goes through; it carries its own clock
            (``WaitingRoom(..., clock=...)``), which is how tests move time.
        settings: checks, timeouts and retries.
        monotonic: the clock of the health checks and the request accounting, which must
            never go backwards (``time.monotonic`` by default).
    """

    def __init__(
        self,
        backends: Sequence[Backend],
        room: WaitingRoom,
        *,
        settings: ProxySettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backends:
            raise ValueError("a proxy needs at least one backend")
        self.backends = {backend.name: backend for backend in backends}
        if len(self.backends) != len(backends):
            raise ValueError("backend names must be unique")
        self.room = room
        self.settings = settings or ProxySettings()
        self._monotonic = monotonic
        endpoints = [Endpoint(backend.name, address=backend.address) for backend in backends]
        self.balancer = LoadBalancer(
            [Pool(POOL, endpoints)], endpoint_picker="least_outstanding", seed=self.settings.seed
        )
        # Results older than three missed rounds no longer count: the verdict is then UNKNOWN,
        # which leaves the load balancer's state as it was rather than guessing.
        self.monitors = MonitorGroup(
            [Member(MONITOR)],
            max_age=3 * self.settings.health_interval + self.settings.health_timeout,
        )
        self.hysteresis = Hysteresis(
            consecutive_up=self.settings.rise, consecutive_down=self.settings.fall
        )
        self._results: dict[str, MonitorResult] = {}
        #: The latest verdict per backend, as the load balancer took it.
        self.verdicts: dict[str, Verdict] = dict.fromkeys(self.backends, Verdict.UP)
        #: Rounds of health checks completed (tests wait on it).
        self.health_rounds = 0
        self._server: asyncio.Server | None = None
        self._checker: asyncio.Task[None] | None = None
        # The task of each client connection, so close() can end idle keep-alive ones.
        self._clients: set[asyncio.Task[Any]] = set()

    # --- life cycle ----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0: a free port) and start the health checks."""
        self._server = await asyncio.start_server(
            self._connection, host, port, limit=self.settings.max_header_bytes
        )
        self._checker = asyncio.create_task(self._check_forever())

    @property
    def address(self) -> tuple[str, int]:
        """The host and port the proxy listens on."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        """Stop listening and checking, and end every client connection (a request in
        progress is cut off)."""
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        if self._server is not None:
            self._server.close()
        clients = list(self._clients)
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # --- health --------------------------------------------------------------------------

    async def check_health(self) -> None:
        """One round: probe every backend at once, then fold the results."""
        names = list(self.backends)
        probes = await asyncio.gather(*(self._probe(self.backends[name]) for name in names))
        for name, (up, rtt) in zip(names, probes, strict=True):
            self.observe(name, up, rtt)
        self.health_rounds += 1

    def observe(self, name: str, up: bool, rtt: float | None = None) -> None:
        """Take one health observation of backend ``name``, a check's or a failed forward's:
        debounce it, fold the group's verdicts, and hand them to the load balancer."""
        now = self._monotonic()
        steady = self.hysteresis.observe(MONITOR, name, LOCATION, up, now=now)
        self._results[name] = MonitorResult(
            MONITOR, name, LOCATION, steady, rtt if steady and up else None, observed_at=now
        )
        report = self.monitors.evaluate(self._results.values(), now=now)
        self.balancer.apply_health(report, now=now)
        for endpoint, health in report.items():
            if (
                health.verdict is not Verdict.UNKNOWN
                and self.verdicts.get(endpoint) != health.verdict
            ):
                log.warning("backend %s is %s: %s", endpoint, health.verdict, health.reason)
                self.verdicts[endpoint] = health.verdict

    async def _check_forever(self) -> None:
        while True:
            try:
                await self.check_health()
            except Exception:  # a bug here must not stop the checks for good
                log.exception("health round failed")
            await asyncio.sleep(self.settings.health_interval)

    async def _probe(self, backend: Backend) -> tuple[bool, float | None]:
        started = time.monotonic()
        try:
            status_line = await asyncio.wait_for(
                self._probe_status_line(backend), self.settings.health_timeout
            )
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            return False, None
        parts = status_line.split(None, 2)
        up = len(parts) >= 2 and parts[1][:1] in (b"2", b"3")
        return up, time.monotonic() - started if up else None

    async def _probe_status_line(self, backend: Backend) -> bytes:
        reader, writer = await asyncio.open_connection(backend.host, backend.port)
        try:
            writer.write(
                f"GET {self.settings.health_path} HTTP/1.1\r\nHost: {backend.address}\r\n"
                "User-Agent: lbkit-proxy-health\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            await writer.drain()
            return await reader.readline()
        finally:
            writer.close()

    # --- the client side -----------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if isinstance(peer, tuple) else ""
        try:
            while True:
                try:
                    request = await self._read_request(reader, writer)
                except HttpError as error:
                    await self._send_page(writer, error.status, error.message, keep_alive=False)
                    return
                if request is None:
                    return
                if not await self._respond(request, client_ip, writer):
                    return
        except (ConnectionError, asyncio.TimeoutError):
            pass  # the client went away or stalled: nothing left to tell it
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> HttpRequest | None:
        """The next request on the connection, or None when the client closed it or idled."""
        try:
            head = await asyncio.wait_for(
                reader.readuntil(b"\r\n\r\n"), self.settings.client_timeout
            )
        except asyncio.IncompleteReadError as error:
            if error.partial.strip():
                raise HttpError(400, "the request head ended early") from None
            return None
        except asyncio.LimitOverrunError:
            raise HttpError(431, "the request head is too large") from None
        except asyncio.TimeoutError:
            return None
        request = parse_request_head(head)
        length = request_body_length(request, self.settings.max_body_bytes)
        if length:
            if (request.header("expect") or "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                request.body = await asyncio.wait_for(
                    reader.readexactly(length), self.settings.client_timeout
                )
            except (asyncio.IncompleteReadError, asyncio.TimeoutError):
                raise HttpError(400, "the request body ended early") from None
        return request

    async def _respond(
        self, request: HttpRequest, client_ip: str, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; True when the connection may carry another."""
        https = (
            self.settings.trust_forwarded_proto
            and (request.header("x-forwarded-proto") or "").lower() == "https"
        )
        token = read_cookie(request.cookies(), self.room.config.cookie, https=https)
        decision = self.room.handle(token)
        set_cookie = self.room.set_cookie_header(decision, https=https)
        if decision.store_error is not None:
            log.error("waiting-room store: %s", decision.store_error)
        keep_alive = request.keep_alive
        if decision.action == "queue":
            await self._send_waiting_room(writer, request, decision, set_cookie, keep_alive)
            return keep_alive
        if decision.action == "reject":
            if request.wants_json:
                await self._send_status(writer, request, decision, 503, set_cookie, keep_alive)
            else:
                await self._send_page(
                    writer, 503, "The waiting room is closed.", keep_alive=keep_alive
                )
            return keep_alive
        return await self._forward(request, client_ip, https, set_cookie, writer)

    # --- forwarding ----------------------------------------------------------------------

    async def _forward(
        self,
        request: HttpRequest,
        client_ip: str,
        https: bool,
        set_cookie: str | None,
        writer: asyncio.StreamWriter,
    ) -> bool:
        steering = _steering_request(request, client_ip, https)
        failed: list[Route] = []  # every attempt that failed: a retry avoids them all
        for attempt in range(self.settings.retries + 1):
            try:
                route = self.balancer.decide(steering, now=self._monotonic(), failed=failed)
            except NoHealthyEndpoint as error:
                log.error("no backend can serve: %s", "; ".join(error.reasons))
                await self._send_page(
                    writer,
                    503,
                    "No backend can serve this request right now.",
                    keep_alive=request.keep_alive,
                    extra=[("Retry-After", "5")],
                )
                return request.keep_alive
            assert route.endpoint is not None
            backend = self.backends[str(route.endpoint.id)]
            self.balancer.begin(route)
            started = self._monotonic()
            outcome = _Outcome()
            try:
                outcome = await self._exchange(
                    backend, request, client_ip, https, set_cookie, writer
                )
            finally:
                self.balancer.end(
                    route, latency=self._monotonic() - started, ok=outcome.ok, now=self._monotonic()
                )
            if outcome.backend_failed:
                log.warning("backend %s failed: %s", backend.name, outcome.error)
                self.observe(backend.name, False)
            if outcome.answered:
                return outcome.keep_alive
            if not outcome.retry or attempt == self.settings.retries:
                status = outcome.status or 502
                await self._send_page(
                    writer,
                    status,
                    "The origin did not answer properly. Please try again.",
                    keep_alive=request.keep_alive,
                )
                return request.keep_alive
            failed.append(route)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self,
        backend: Backend,
        request: HttpRequest,
        client_ip: str,
        https: bool,
        set_cookie: str | None,
        writer: asyncio.StreamWriter,
    ) -> _Outcome:
        """Send the request to one backend and stream its response to the client."""
        settings = self.settings
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(
                    backend.host, backend.port, limit=settings.max_header_bytes
                ),
                settings.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError) as error:
            # Nothing was sent: any method may go to another backend.
            return _Outcome(retry=True, backend_failed=True, error=f"connect: {error!r}")
        try:
            upstream_writer.write(_upstream_head(request, backend, client_ip, https) + request.body)
            try:
                await asyncio.wait_for(upstream_writer.drain(), settings.response_timeout)
                head = await asyncio.wait_for(
                    upstream_reader.readuntil(b"\r\n\r\n"), settings.response_timeout
                )
                response = parse_response_head(head)
            except (
                OSError,
                asyncio.TimeoutError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                HttpError,
            ) as error:
                timed_out = isinstance(error, asyncio.TimeoutError)
                return _Outcome(
                    retry=request.method in IDEMPOTENT,
                    backend_failed=True,
                    status=504 if timed_out else 502,
                    error=f"response: {error!r}",
                )
            return await self._relay(request, response, upstream_reader, set_cookie, writer)
        finally:
            upstream_writer.close()

    async def _relay(
        self,
        request: HttpRequest,
        response: _Upstream,
        upstream: asyncio.StreamReader,
        set_cookie: str | None,
        writer: asyncio.StreamWriter,
    ) -> _Outcome:
        """Stream a backend's response to the client, framed for the client's connection."""
        headers = _end_to_end(response.headers)
        keep_alive = request.keep_alive
        no_body = request.method == "HEAD" or response.status in (204, 304) or response.status < 200
        length_text = _first(response.headers, "content-length")
        chunked = "chunked" in (_first(response.headers, "transfer-encoding") or "").lower()
        if no_body:
            framing = "none"
        elif chunked:
            framing = "chunked"
            headers.append(("Transfer-Encoding", "chunked"))
        elif length_text is not None and length_text.isdigit():
            framing = "length"
        else:
            framing = "close"  # the body ends when the backend closes: so does this connection
            keep_alive = False
        if set_cookie is not None:
            headers.append(("Set-Cookie", set_cookie))
        headers.append(("Connection", "keep-alive" if keep_alive else "close"))
        writer.write(_head(response.status, response.reason, headers))
        outcome = _Outcome(
            answered=True, ok=response.status < 500, keep_alive=keep_alive, status=response.status
        )
        idle = self.settings.response_timeout
        try:
            if framing == "length":
                await _copy_exactly(upstream, writer, int(length_text or 0), idle)
            elif framing == "chunked":
                await _copy_chunked(upstream, writer, idle)
            elif framing == "close":
                await _copy_until_eof(upstream, writer, idle)
            await writer.drain()
        except (
            OSError,
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ) as error:
            # Part of the response is out: the only honest thing left is to close.
            outcome.ok = False
            outcome.keep_alive = False
            # A connection error may be the client's (it left): only a broken or stalled
            # body from the backend counts against the backend.
            outcome.backend_failed = not isinstance(error, ConnectionError)
            outcome.error = f"body: {error!r}"
        return outcome

    # --- pages of the proxy's own ----------------------------------------------------------

    async def _send_waiting_room(
        self,
        writer: asyncio.StreamWriter,
        request: HttpRequest,
        decision: Decision,
        set_cookie: str | None,
        keep_alive: bool,
    ) -> None:
        if request.wants_json:
            await self._send_status(writer, request, decision, 200, set_cookie, keep_alive)
            return
        body = waiting_room_page(decision).encode("utf-8")
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        if set_cookie is not None:
            headers.append(("Set-Cookie", set_cookie))
        await _send(
            writer, 200, headers, body, keep_alive=keep_alive, head_only=request.method == "HEAD"
        )

    async def _send_status(
        self,
        writer: asyncio.StreamWriter,
        request: HttpRequest,
        decision: Decision,
        status: int,
        set_cookie: str | None,
        keep_alive: bool,
    ) -> None:
        """The decision's status as JSON, the form an app or a page's script reads."""
        body = json.dumps(dict(decision.status or {}), sort_keys=True).encode("utf-8")
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if set_cookie is not None:
            headers.append(("Set-Cookie", set_cookie))
        await _send(
            writer, status, headers, body, keep_alive=keep_alive, head_only=request.method == "HEAD"
        )

    async def _send_page(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        message: str,
        *,
        keep_alive: bool,
        extra: Iterable[tuple[str, str]] = (),
    ) -> None:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            *extra,
        ]
        await _send(
            writer, status, headers, _page(status, message).encode("utf-8"), keep_alive=keep_alive
        )


def waiting_room_page(decision: Decision) -> str:
    """The HTML a queued user sees: where they stand, and a refresh after the decision's
    refresh interval (rounded up to whole seconds, what ``<meta http-equiv=refresh>`` takes;
    a check-in earlier than the interval would not count)."""
    status: Mapping[str, Any] = decision.status or {}
    refresh = max(
        1, math.ceil(decision.refresh_interval or status.get("refresh_interval_seconds") or 1)
    )
    position = status.get("queue_position")
    minutes = status.get("estimated_wait_minutes")
    lines = []
    if position is not None:
        lines.append(f'<p id="position">You are number <b>{int(position)}</b> in the queue.</p>')
    if status.get("wait_time_known") and minutes is not None:
        unit = "minute" if minutes == 1 else "minutes"
        lines.append(f'<p id="estimate">Estimated wait: <b>{int(minutes)} {unit}</b>.</p>')
    else:
        lines.append('<p id="estimate">Estimated wait: not known yet.</p>')
    lines.append(f'<p id="waiting">Users waiting: {int(status.get("users_waiting") or 0)}.</p>')
    lines.append(
        f'<p id="refresh">This page refreshes itself in {refresh} s. Keep it open to keep your '
        "place; refreshing it sooner does not move you forward.</p>"
    )
    updated = html.escape(str(status.get("last_updated", "")))
    lines.append(f'<p id="updated">Last updated: <time>{updated}</time></p>')
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{refresh}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>Waiting room</title></head>\n<body><main id="waiting-room">'
        "<h1>You are in the waiting room</h1>\n" + "\n".join(lines) + "\n</main></body></html>\n"
    )


# --- HTTP helpers --------------------------------------------------------------------------


def parse_request_head(head: bytes) -> HttpRequest:
    """A request head (request line, headers, the blank line); HttpError when malformed."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise HttpError(400, "the request head is not text") from None
    lines = text[:-4].split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/"):
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are spoken here")
    if not target.startswith("/"):
        raise HttpError(400, "only origin-form request targets (a path) are accepted")
    headers = _parse_headers(lines[1:])
    if version == "HTTP/1.1" and not any(name == "host" for name, _ in headers):
        raise HttpError(400, "an HTTP/1.1 request needs a Host header")
    return HttpRequest(method.upper(), target, version, headers)


def request_body_length(request: HttpRequest, limit: int) -> int:
    """The request body's length from ``Content-Length`` (0 when absent)."""
    if request.header("transfer-encoding") is not None:
        raise HttpError(501, "chunked request bodies are not supported; send a Content-Length")
    values = {value.strip() for value in request.header_values("content-length")}
    if not values:
        return 0
    if len(values) != 1 or not (value := values.pop()).isdigit():
        raise HttpError(400, "a malformed Content-Length")
    length = int(value)
    if length > limit:
        raise HttpError(413, f"the request body is larger than {limit} bytes")
    return length


def parse_response_head(head: bytes) -> _Upstream:
    lines = head.decode("latin-1")[:-4].split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(502, "the backend sent a malformed status line")
    reason = parts[2] if len(parts) == 3 else ""
    return _Upstream(int(parts[1]), reason, _parse_headers(lines[1:]))


def _parse_headers(lines: list[str]) -> list[tuple[str, str]]:
    headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        # No obsolete line folding and no space before the colon (RFC 9112, 5.1 and 5.2).
        if not colon or not name or name != name.strip() or line[0] in " \t":
            raise HttpError(400, "a malformed header line")
        headers.append((name.lower(), value.strip()))
    return headers


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key == name), None)


def _end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers a proxy passes on: without hop-by-hop ones, nor those ``Connection`` names."""
    named = {
        token.strip().lower()
        for key, value in headers
        if key == "connection"
        for token in value.split(",")
    }
    return [
        (_title(key), value) for key, value in headers if key not in HOP_BY_HOP and key not in named
    ]


def _title(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _upstream_head(request: HttpRequest, backend: Backend, client_ip: str, https: bool) -> bytes:
    host = request.header("host") or backend.address
    headers = [
        (key, value)
        for key, value in _end_to_end(request.headers)
        if key.lower()
        not in (
            "content-length",
            "expect",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "host",
        )
    ]
    forwarded_for = ", ".join(
        [*request.header_values("x-forwarded-for"), client_ip]
        if client_ip
        else request.header_values("x-forwarded-for")
    )
    headers = [("Host", host), *headers]
    if forwarded_for:
        headers.append(("X-Forwarded-For", forwarded_for))
    headers += [("X-Forwarded-Proto", "https" if https else "http"), ("X-Forwarded-Host", host)]
    if request.body or request.method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(request.body))))
    headers.append(("Connection", "close"))
    lines = [f"{request.method} {request.target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _head(status: int, reason: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    keep_alive: bool,
    head_only: bool = False,
) -> None:
    headers = [
        *headers,
        ("Content-Length", str(len(body))),
        ("Connection", "keep-alive" if keep_alive else "close"),
    ]
    writer.write(
        _head(status, http.HTTPStatus(status).phrase, headers) + (b"" if head_only else body)
    )
    await writer.drain()


def _page(status: int, message: str) -> str:
    title = f"{status} {http.HTTPStatus(status).phrase}"
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><h1>{title}</h1><p>{html.escape(message)}</p></body></html>\n"
    )


def _steering_request(request: HttpRequest, client_ip: str, https: bool) -> Request:
    try:
        return Request(
            host=request.header("host") or "",
            path=request.target.split("?", 1)[0],
            method=request.method,
            scheme="https" if https else "http",
            client_ip=client_ip or None,
        )
    except LbkitError:  # an address steering cannot parse (a scoped IPv6 one, say)
        return Request(method=request.method, path=request.target.split("?", 1)[0])


async def _copy_exactly(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, length: int, idle: float
) -> None:
    """Copy ``length`` bytes; each read may take ``idle`` seconds at most."""
    while length:
        block = await asyncio.wait_for(source.read(min(length, _BLOCK)), idle)
        if not block:
            raise asyncio.IncompleteReadError(b"", length)
        length -= len(block)
        sink.write(block)
        await asyncio.wait_for(sink.drain(), idle)


async def _copy_chunked(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, idle: float
) -> None:
    """Relay a chunked body as it is, reading its framing to find where it ends."""
    while True:
        size_line = await asyncio.wait_for(source.readuntil(b"\r\n"), idle)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        sink.write(size_line)
        if size == 0:
            while True:  # trailers, then the blank line
                line = await asyncio.wait_for(source.readuntil(b"\r\n"), idle)
                sink.write(line)
                if line == b"\r\n":
                    return
        await _copy_exactly(source, sink, size + 2, idle)


async def _copy_until_eof(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, idle: float
) -> None:
    while True:
        block = await asyncio.wait_for(source.read(_BLOCK), idle)
        if not block:
            return
        sink.write(block)
        await asyncio.wait_for(sink.drain(), idle)


# --- running it ----------------------------------------------------------------------------


class BackgroundProxy:
    """A :class:`Proxy` served by an event loop on a thread of its own, for tests and for
    applications that are not asyncio. ``with BackgroundProxy(proxy) as (host, port): ...``.
    """

    def __init__(self, proxy: Proxy, host: str = "127.0.0.1", port: int = 0) -> None:
        self.proxy = proxy
        self._where = (host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="lbkit-proxy", daemon=True
        )

    def __enter__(self) -> tuple[str, int]:
        self._thread.start()
        self.call(self.proxy.start(*self._where))
        return self.proxy.address

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self.proxy.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the proxy's loop and return its result (thread-safe)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)


def read_key_file(path: Path) -> Keyring:
    """The keys of a key file: one ``key_id:base64url`` per line (``lbkit cookie new-key``
    prints one), the first sealing new cookies and the others still opening old ones (for
    rotation); blank lines and ``#`` comments are skipped."""
    lines = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise ValueError(f"{path}: no key (lbkit cookie new-key prints one)")
    primary = int(lines[0].partition(":")[0]) if lines[0].partition(":")[0].isdigit() else -1
    return Keyring.from_strings(lines, primary=primary)


async def serve(proxy: Proxy, host: str, port: int) -> None:
    """Run ``proxy`` on ``host:port`` until cancelled."""
    await proxy.start(host, port)
    where = proxy.address
    log.warning(
        "lbkit proxy listening on http://%s:%d/ for %s",
        where[0],
        where[1],
        ", ".join(f"{b.name}={b.address}" for b in proxy.backends.values()),
    )
    try:
        await asyncio.Event().wait()
    finally:
        await proxy.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: build the room and the proxy from flags, and serve."""
    parser = argparse.ArgumentParser(
        description="An example reverse proxy: lbkit's waiting room, health checks and "
        "least-outstanding-requests steering in front of HTTP backends."
    )
    parser.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    parser.add_argument(
        "--backend",
        action="append",
        required=True,
        metavar="[NAME=]HOST:PORT",
        help="an origin server (repeat for more)",
    )
    room = parser.add_argument_group("waiting room")
    room.add_argument("--total-active-users", type=int, default=100)
    room.add_argument("--new-users-per-minute", type=int, default=20)
    room.add_argument("--session-duration", type=float, default=300.0, metavar="SECONDS")
    room.add_argument("--refresh-interval", type=float, default=20.0, metavar="SECONDS")
    room.add_argument(
        "--queueing-method", default="fifo", choices=("fifo", "random", "passthrough", "reject")
    )
    room.add_argument("--room-id", default="room")
    room.add_argument(
        "--key-file",
        type=Path,
        help="cookie keys, one 'key_id:base64url' a line, the first sealing (lbkit cookie "
        "new-key prints one); without it a key is generated, and cookies die with the process",
    )
    checks = parser.add_argument_group("health checks, timeouts and retries")
    defaults = ProxySettings()
    checks.add_argument("--health-path", default=defaults.health_path)
    checks.add_argument("--health-interval", type=float, default=defaults.health_interval)
    checks.add_argument("--health-timeout", type=float, default=defaults.health_timeout)
    checks.add_argument("--rise", type=int, default=defaults.rise, help="successes to come back")
    checks.add_argument("--fall", type=int, default=defaults.fall, help="failures to go down")
    checks.add_argument("--connect-timeout", type=float, default=defaults.connect_timeout)
    checks.add_argument("--response-timeout", type=float, default=defaults.response_timeout)
    checks.add_argument("--client-timeout", type=float, default=defaults.client_timeout)
    checks.add_argument("--retries", type=int, default=defaults.retries)
    checks.add_argument(
        "--trust-forwarded-proto",
        action="store_true",
        help="take X-Forwarded-Proto: https from a TLS terminator in front (Secure cookies)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log every backend transition and error"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )
    try:
        backends = [
            Backend.parse(text, default_name=f"b{i + 1}") for i, text in enumerate(args.backend)
        ]
        host, _, port = args.listen.rpartition(":")
        config = WaitingRoomConfig(
            total_active_users=args.total_active_users,
            new_users_per_minute=args.new_users_per_minute,
            session_duration=args.session_duration,
            refresh_interval=args.refresh_interval,
            queueing_method=args.queueing_method,
            room_id=args.room_id,
        )
        if args.key_file is not None:
            keys = read_key_file(args.key_file)
        else:
            log.warning("no --key-file: cookies are sealed with a key generated now, lost on exit")
            keys = Keyring({1: new_key()}, primary=1)
        settings = ProxySettings(
            health_path=args.health_path,
            health_interval=args.health_interval,
            health_timeout=args.health_timeout,
            rise=args.rise,
            fall=args.fall,
            connect_timeout=args.connect_timeout,
            response_timeout=args.response_timeout,
            client_timeout=args.client_timeout,
            retries=args.retries,
            trust_forwarded_proto=args.trust_forwarded_proto,
        )
        proxy = Proxy(backends, WaitingRoom(config, keys=keys), settings=settings)
        listen_port = int(port)
    except (ValueError, OSError) as error:  # lbkit's ConfigError is a ValueError
        parser.error(str(error))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(proxy, host.strip("[]") or "127.0.0.1", listen_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
