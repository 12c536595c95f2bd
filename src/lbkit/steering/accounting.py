"""Request accounting: outstanding requests, open connections, latency and error EWMAs per key.

A proxy calls :meth:`RequestStats.begin` when it sends a request to an endpoint and
:meth:`RequestStats.end` when the response (or the failure) comes back, and
:meth:`~RequestStats.connect` / :meth:`~RequestStats.disconnect` around each connection. The
counts feed ``least_outstanding`` and ``least_connections`` steering; the latency EWMA feeds
dashboards and ``dynamic``-style decisions; the error-rate EWMA (a sample of 1.0 per failed
request, 0.0 per successful one) says how much of the recent traffic failed.

Every method takes one lock, so a proxy with many threads may share one :class:`RequestStats`
(the counts are exact, never lost to a race). Keys are anything hashable, usually endpoint ids;
a key exists from its first ``begin`` or ``connect``, and a key never seen reads as idle.

An ``end`` without a matching ``begin`` (or a ``disconnect`` without a ``connect``) is a bug in
the caller and raises :class:`~lbkit.errors.InvalidArgument`: counts never go negative.

>>> stats = RequestStats(tau=10.0)
>>> stats.begin("web-1"); stats.begin("web-1")
>>> stats.end("web-1", latency=0.120, now=1.0)
>>> stats.outstanding("web-1"), stats.latency("web-1"), stats.error_rate("web-1")
(1, 0.12, 0.0)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.steering.ewma import Ewma

__all__ = ["KeyStats", "RequestStats"]


@attrs.frozen
class KeyStats:
    """What :class:`RequestStats` knows about one key, at one moment.

    Attributes:
        key: the key (an endpoint id, usually).
        outstanding: requests begun and not yet ended.
        connections: connections opened and not yet closed.
        started: requests begun, in total.
        completed: requests ended, in total (``started - outstanding``).
        errors: requests ended with ``ok=False``, in total.
        latency: the latency EWMA in seconds, ``None`` before the first latency sample.
        error_rate: the EWMA of failures (1.0 failed, 0.0 succeeded), ``None`` before the first
            ended request.

    >>> RequestStats().stats("web-1")
    KeyStats(key='web-1', outstanding=0, connections=0, started=0, completed=0, errors=0, ...)
    """

    key: Hashable
    outstanding: int
    connections: int
    started: int
    completed: int
    errors: int
    latency: float | None
    error_rate: float | None


class _Entry:
    __slots__ = ("completed", "connections", "error_rate", "errors", "latency", "started")

    def __init__(self, latency: Ewma, error_rate: Ewma) -> None:
        self.started = 0
        self.completed = 0
        self.errors = 0
        self.connections = 0
        self.latency = latency
        self.error_rate = error_rate


class RequestStats:
    """Thread-safe per-key request and connection counts with latency and error EWMAs.

    Args:
        tau: the decay time of the latency EWMA in seconds, finite and > 0.
        peak: make the latency EWMA a peak EWMA (a slower sample replaces the estimate at once).
        error_tau: the decay time of the error-rate EWMA; ``None`` (the default) uses ``tau``.

    Raises:
        ConfigError: ``tau`` or ``error_tau`` is not finite and > 0.
        ArgumentTypeError: an argument of the wrong type.

    Times: ``end`` takes ``now`` (seconds). Threads read their clocks before they take the
    lock, so a ``now`` slightly earlier than the key's latest sample is expected under
    concurrency; it is folded in at the latest sample's time (as a simultaneous sample)
    instead of being rejected. ``now`` must still be finite.

    Runtime complexity: O(1) per call, except :meth:`snapshot` and :meth:`keys`, O(keys).

    >>> stats = RequestStats(peak=True)
    >>> stats.begin("a"); stats.end("a", latency=0.5, ok=False, now=0.0)
    >>> stats.stats("a").errors, stats.latency("a")
    (1, 0.5)
    """

    def __init__(
        self, *, tau: float = 10.0, peak: bool = False, error_tau: float | None = None
    ) -> None:
        self._tau = _check_tau(tau, "tau")
        self._error_tau = self._tau if error_tau is None else _check_tau(error_tau, "error_tau")
        if not isinstance(peak, bool):
            raise ArgumentTypeError(f"peak is {type(peak).__name__}; it must be a bool")
        self._peak = peak
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}

    @property
    def tau(self) -> float:
        """The latency EWMA's decay time in seconds."""
        return self._tau

    @property
    def error_tau(self) -> float:
        """The error-rate EWMA's decay time in seconds."""
        return self._error_tau

    @property
    def peak(self) -> bool:
        """Whether the latency EWMA is a peak EWMA."""
        return self._peak

    def begin(self, key: Hashable) -> None:
        """Count one more outstanding request on ``key``.

        Raises:
            ArgumentTypeError: ``key`` is not hashable.

        Runtime complexity: O(1).

        >>> stats = RequestStats()
        >>> stats.begin("web-1"); stats.outstanding("web-1")
        1
        """
        _check_key(key)
        with self._lock:
            self._entry(key).started += 1

    def end(
        self, key: Hashable, *, latency: float | None = None, ok: bool = True, now: float
    ) -> None:
        """Count one outstanding request on ``key`` as finished, and fold in its outcome.

        Args:
            key: the key given to :meth:`begin`.
            latency: the request's latency in seconds (finite, >= 0), or ``None`` when it was
                not measured (the latency EWMA is then left alone).
            ok: ``False`` when the request failed; it counts in ``errors`` and samples 1.0 into
                the error-rate EWMA (``True`` samples 0.0).
            now: when the request finished, in seconds.

        Raises:
            InvalidArgument: ``key`` has no outstanding request (an ``end`` without a matching
                ``begin``), ``latency`` is negative or not finite, ``now`` is not finite.
            ArgumentTypeError: an argument of the wrong type.

        Nothing is changed when an error is raised.

        Runtime complexity: O(1).

        >>> stats = RequestStats()
        >>> stats.end("web-1", now=0.0)
        Traceback (most recent call last):
        ...
        lbkit.errors.InvalidArgument: end('web-1') has no matching begin('web-1'); ...
        """
        _check_key(key)
        if latency is not None:
            latency = _check_latency(latency)
        if not isinstance(ok, bool):
            raise ArgumentTypeError(f"ok is {type(ok).__name__}; it must be a bool")
        now = _check_now(now)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.started == entry.completed:
                raise InvalidArgument(
                    f"end({key!r}) has no matching begin({key!r}); "
                    f"{key!r} has no outstanding requests"
                )
            if latency is not None:
                entry.latency.update(latency, now=max(now, entry.latency.updated_at))
            entry.error_rate.update(0.0 if ok else 1.0, now=max(now, entry.error_rate.updated_at))
            entry.completed += 1
            if not ok:
                entry.errors += 1

    def connect(self, key: Hashable) -> None:
        """Count one more open connection to ``key``.

        Raises:
            ArgumentTypeError: ``key`` is not hashable.

        Runtime complexity: O(1).

        >>> stats = RequestStats()
        >>> stats.connect("db-1"); stats.connections("db-1")
        1
        """
        _check_key(key)
        with self._lock:
            self._entry(key).connections += 1

    def disconnect(self, key: Hashable) -> None:
        """Count one open connection to ``key`` as closed.

        Raises:
            InvalidArgument: ``key`` has no open connection (a ``disconnect`` without a
                matching ``connect``).
            ArgumentTypeError: ``key`` is not hashable.

        Runtime complexity: O(1).

        >>> stats = RequestStats()
        >>> stats.connect("db-1"); stats.disconnect("db-1"); stats.connections("db-1")
        0
        """
        _check_key(key)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.connections == 0:
                raise InvalidArgument(
                    f"disconnect({key!r}) has no matching connect({key!r}); "
                    f"{key!r} has no open connections"
                )
            entry.connections -= 1

    def outstanding(self, key: Hashable) -> int:
        """The requests begun on ``key`` and not yet ended (0 for a key never seen).

        Runtime complexity: O(1).

        >>> RequestStats().outstanding("never-seen")
        0
        """
        _check_key(key)
        with self._lock:
            entry = self._entries.get(key)
            return 0 if entry is None else entry.started - entry.completed

    def connections(self, key: Hashable) -> int:
        """The open connections to ``key`` (0 for a key never seen).

        Runtime complexity: O(1).

        >>> RequestStats().connections("never-seen")
        0
        """
        _check_key(key)
        with self._lock:
            entry = self._entries.get(key)
            return 0 if entry is None else entry.connections

    def latency(self, key: Hashable) -> float | None:
        """The latency EWMA of ``key`` in seconds (``None`` before its first latency sample).

        Runtime complexity: O(1).

        >>> stats = RequestStats(peak=True)
        >>> stats.begin("a"); stats.begin("a")
        >>> stats.end("a", latency=0.1, now=0.0); stats.end("a", latency=0.4, now=1.0)
        >>> stats.latency("a")  # peak: the slower sample replaces the estimate
        0.4
        """
        _check_key(key)
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry.latency.value

    def error_rate(self, key: Hashable) -> float | None:
        """The error-rate EWMA of ``key``: near 1.0 when recent requests failed, near 0.0 when
        they succeeded (``None`` before its first ended request).

        Runtime complexity: O(1).

        >>> stats = RequestStats()
        >>> stats.begin("a"); stats.end("a", ok=False, now=0.0); stats.error_rate("a")
        1.0
        """
        _check_key(key)
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry.error_rate.value

    def stats(self, key: Hashable) -> KeyStats:
        """Everything known about ``key``, as one consistent record (zeros for a key never
        seen).

        Runtime complexity: O(1).

        >>> stats = RequestStats()
        >>> stats.begin("a"); stats.stats("a").outstanding
        1
        """
        _check_key(key)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return KeyStats(key, 0, 0, 0, 0, 0, None, None)
            return _record(key, entry)

    def snapshot(self) -> tuple[KeyStats, ...]:
        """One consistent record per key, in the order the keys were first seen, all taken
        under one lock (no update falls between two records).

        Runtime complexity: O(keys).

        >>> stats = RequestStats()
        >>> stats.begin("a"); stats.connect("b")
        >>> [(record.key, record.outstanding, record.connections) for record in stats.snapshot()]
        [('a', 1, 0), ('b', 0, 1)]
        """
        with self._lock:
            return tuple(_record(key, entry) for key, entry in self._entries.items())

    def keys(self) -> tuple[Hashable, ...]:
        """The keys seen so far (and not discarded), in the order they were first seen.

        Runtime complexity: O(keys).

        >>> stats = RequestStats()
        >>> stats.connect(2); stats.begin(1); stats.keys()
        (2, 1)
        """
        with self._lock:
            return tuple(self._entries)

    def discard(self, key: Hashable) -> bool:
        """Forget an idle key (no outstanding request, no open connection), for example an
        endpoint removed from the configuration; return whether it was forgotten. A busy key
        is kept, so the ``end`` of an in-flight request still finds it.

        Runtime complexity: O(1).

        >>> stats = RequestStats()
        >>> stats.begin("a"); stats.discard("a")
        False
        >>> stats.end("a", now=0.0); stats.discard("a"), stats.keys()
        (True, ())
        """
        _check_key(key)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.started != entry.completed or entry.connections:
                return False
            del self._entries[key]
            return True

    def _entry(self, key: Hashable) -> _Entry:
        # Called with the lock held.
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(
                Ewma(tau=self._tau, peak=self._peak), Ewma(tau=self._error_tau)
            )
        return entry

    def _check(self) -> None:
        """Assert the structural invariants (for tests)."""
        with self._lock:
            for key, entry in self._entries.items():
                assert 0 <= entry.completed <= entry.started, key
                assert 0 <= entry.errors <= entry.completed, key
                assert entry.connections >= 0, key
                assert (entry.error_rate.value is None) == (entry.completed == 0), key
                rate = entry.error_rate.value
                assert rate is None or 0.0 <= rate <= 1.0, key


def _record(key: Hashable, entry: _Entry) -> KeyStats:
    return KeyStats(
        key,
        entry.started - entry.completed,
        entry.connections,
        entry.started,
        entry.completed,
        entry.errors,
        entry.latency.value,
        entry.error_rate.value,
    )


def _check_tau(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    tau = float(value)
    if not math.isfinite(tau) or tau <= 0.0:
        raise ConfigError(f"{name} is {value!r}; it must be finite and > 0 seconds")
    return tau


def _check_key(key: object) -> None:
    try:
        hash(key)
    except TypeError:
        raise ArgumentTypeError(f"key is {type(key).__name__}; keys must be hashable") from None


def _check_latency(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"latency is {type(value).__name__}; it must be a number or None")
    latency = float(value)
    if not math.isfinite(latency) or latency < 0.0:
        raise InvalidArgument(f"latency is {value!r}; latencies must be finite and >= 0 seconds")
    return latency


def _check_now(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"now is {type(value).__name__}; it must be a number")
    now = float(value)
    if not math.isfinite(now):
        raise InvalidArgument(f"now is {value!r}; times must be finite")
    return now
