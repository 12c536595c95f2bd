"""Health events: every verdict transition, kept in a bounded log and sent to subscribers.

:class:`~lbkit.health.hysteresis.Hysteresis` and :class:`~lbkit.health.pools.PoolHealth` take an
optional :class:`EventLog` and emit a :class:`HealthEvent` into it whenever a member's filtered
state, an endpoint's verdict, a pool's verdict or a panic guard changes, and when a location's
burst of changes is suppressed. Users alert on these: subscribe a callback, or read the most
recent events.

A subscriber that raises does not stop the others: every subscriber sees every event, then the
failures are raised together as one :class:`SubscriberError` (not logged: a library should not
decide where errors go). The emitting object has already committed its new state by then, so a
failing subscriber never leaves a verdict half-changed.

>>> log = EventLog(maxlen=2)
>>> seen = []
>>> log.subscribe(seen.append)
>>> log.emit(HealthEvent("endpoint", "web-1", "up", "down", 10.0, "2 of 3 members down"))
>>> seen[0].new_state, len(log)
('down', 1)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Literal

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, LbkitError

__all__ = ["EVENT_KINDS", "EventKind", "EventLog", "HealthEvent", "Subscriber", "SubscriberError"]

EventKind = Literal["member", "endpoint", "pool", "panic", "burst"]
#: The kinds of :class:`HealthEvent`, in the order of the layers that emit them.
EVENT_KINDS: tuple[EventKind, ...] = ("member", "endpoint", "pool", "panic", "burst")


@attrs.frozen
class HealthEvent:
    """One verdict transition, with its time and reason.

    Attributes:
        kind: ``"member"`` (a member's filtered state for one endpoint at one location),
            ``"endpoint"``, ``"pool"``, ``"panic"`` (a pool's panic guard) or ``"burst"`` (a
            location whose changes are being suppressed).
        subject: what changed: ``(member, endpoint, location)`` for a member, the endpoint, the
            pool's name, or the location.
        old_state: the state before: ``"up"``/``"down"`` for members, endpoints and pools,
            ``"off"``/``"on"`` for panic and burst.
        new_state: the state after, in the same words.
        at: the ``now`` of the call that made the change, in seconds.
        reason: why, for logs and alerts.

    >>> event = HealthEvent("panic", "pool-a", "off", "on", 5.0, "1 of 4 healthy")
    >>> event.kind, event.at
    ('panic', 5.0)
    """

    kind: EventKind
    subject: Hashable
    old_state: str
    new_state: str
    at: float
    reason: str


Subscriber = Callable[[HealthEvent], object]


class SubscriberError(LbkitError, RuntimeError):
    """One or more subscribers raised while receiving events; every subscriber still received
    every event. ``errors`` holds ``(event, subscriber, exception)`` triples in the order they
    happened; the first exception is also the ``__cause__``."""

    def __init__(self, errors: list[tuple[HealthEvent, Subscriber, BaseException]]) -> None:
        first = errors[0]
        super().__init__(
            f"{len(errors)} subscriber call(s) raised; the first, on a {first[0].kind} event "
            f"for {first[0].subject!r}: {first[2]!r}"
        )
        self.errors = tuple(errors)


class EventLog:
    """A bounded list of recent :class:`HealthEvent` values and the callbacks that receive them.

    Args:
        maxlen: how many recent events to keep (the oldest are dropped first), at least 1.

    Raises:
        ConfigError: ``maxlen`` below 1.
        ArgumentTypeError: ``maxlen`` not an ``int``.

    Runtime complexity: O(1) to keep an event, plus one call per subscriber.

    >>> log = EventLog(maxlen=1)
    >>> log.emit(HealthEvent("pool", "a", "up", "down", 1.0, "no endpoint healthy"))
    >>> log.emit(HealthEvent("pool", "a", "down", "up", 2.0, "2 of 2 healthy"))
    >>> [event.at for event in log.recent]
    [2.0]
    """

    def __init__(self, *, maxlen: int = 1000) -> None:
        check_int(maxlen, "maxlen", minimum=1)
        self._recent: deque[HealthEvent] = deque(maxlen=maxlen)
        self._subscribers: list[Subscriber] = []
        self._emitted = 0

    @property
    def maxlen(self) -> int:
        """How many recent events are kept."""
        maxlen = self._recent.maxlen
        assert maxlen is not None
        return maxlen

    @property
    def recent(self) -> tuple[HealthEvent, ...]:
        """The kept events, oldest first."""
        return tuple(self._recent)

    @property
    def emitted(self) -> int:
        """How many events were ever emitted, including those no longer kept."""
        return self._emitted

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        """The subscribed callbacks, in the order they are called."""
        return tuple(self._subscribers)

    def __len__(self) -> int:
        return len(self._recent)

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(event)`` for every event emitted from now on.

        Raises:
            ArgumentTypeError: ``callback`` is not callable.
            InvalidArgument: ``callback`` is already subscribed.

        Runtime complexity: O(subscribers).

        >>> log = EventLog()
        >>> log.subscribe(print)
        >>> log.emit(HealthEvent("burst", "dc-1", "off", "on", 3.0, "agent restart?"))
        HealthEvent(kind='burst', subject='dc-1', old_state='off', new_state='on', at=3.0, reason='agent restart?')
        """  # noqa: E501
        if not callable(callback):
            raise ArgumentTypeError(
                f"callback is {type(callback).__name__}; subscribers must be callable"
            )
        if any(callback == known for known in self._subscribers):
            raise InvalidArgument(f"callback {callback!r} is already subscribed")
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop calling ``callback``.

        Raises:
            InvalidArgument: ``callback`` is not subscribed.

        Runtime complexity: O(subscribers).

        >>> log = EventLog()
        >>> log.subscribe(print)
        >>> log.unsubscribe(print)
        >>> log.subscribers
        ()
        """
        for index, known in enumerate(self._subscribers):
            if callback == known:
                del self._subscribers[index]
                return
        raise InvalidArgument(f"callback {callback!r} is not subscribed")

    def emit(self, event: HealthEvent) -> None:
        """Keep ``event`` and send it to every subscriber.

        Raises:
            ArgumentTypeError: ``event`` is not a :class:`HealthEvent`.
            SubscriberError: after every subscriber was called, if any raised.

        Runtime complexity: O(subscribers).

        >>> log = EventLog()
        >>> log.emit(HealthEvent("endpoint", "e", "down", "up", 0.0, "recovered"))
        >>> log.emitted
        1
        """
        self.emit_all((event,))

    def emit_all(self, events: Iterable[HealthEvent]) -> None:
        """Keep each event, in order, and send each to every subscriber.

        Every subscriber receives every event even when some raise; the failures are raised
        together at the end.

        Raises:
            ArgumentTypeError: an item is not a :class:`HealthEvent` (nothing is emitted).
            SubscriberError: after every event reached every subscriber, if any raised.

        Runtime complexity: O(events * subscribers).

        >>> log = EventLog()
        >>> log.emit_all([HealthEvent("pool", "p", "up", "down", 1.0, "r"),
        ...               HealthEvent("panic", "p", "off", "on", 1.0, "r")])
        >>> [event.kind for event in log.recent]
        ['pool', 'panic']
        """
        batch = list(events)
        for index, event in enumerate(batch):
            if not isinstance(event, HealthEvent):
                raise ArgumentTypeError(
                    f"events[{index}] is {type(event).__name__}; it must be a HealthEvent"
                )
        errors: list[tuple[HealthEvent, Subscriber, BaseException]] = []
        # A snapshot: a subscriber that (un)subscribes changes the next emit, not this one.
        subscribers = tuple(self._subscribers)
        for event in batch:
            self._recent.append(event)
            self._emitted += 1
            for subscriber in subscribers:
                try:
                    subscriber(event)
                except Exception as error:  # every subscriber must still see the event
                    errors.append((event, subscriber, error))
        if errors:
            raise SubscriberError(errors) from errors[0][2]

    def _check(self) -> None:
        """Assert the log's invariants (for tests)."""
        assert len(self._recent) <= self.maxlen
        assert self._emitted >= len(self._recent)
        assert all(isinstance(event, HealthEvent) for event in self._recent)
        assert len(set(map(id, self._subscribers))) == len(self._subscribers)


# -- validation shared by the health control-plane modules -----------------------------------


def check_int(value: object, name: str, *, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, or the error naming ``name`` and the rule."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if value < minimum:
        raise ConfigError(f"{name} is {value}; it must be an int >= {minimum}")
    return value


def check_seconds(value: object, name: str) -> float:
    """``value`` as a finite duration >= 0 in seconds, or the error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{name} is {value!r}; durations must be finite and >= 0")
    return seconds


def check_now(value: object, last: float) -> float:
    """``now`` as a finite float no earlier than ``last``, or the error saying which rule."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"now is {type(value).__name__}; it must be a number")
    now = float(value)
    if not math.isfinite(now):
        raise InvalidArgument(f"now is {value!r}; times must be finite")
    if now < last:
        raise InvalidArgument(
            f"now is {value!r}, before the previous now {last!r}; time must not go backwards"
        )
    return now
