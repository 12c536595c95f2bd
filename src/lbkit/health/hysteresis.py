"""Hysteresis: health verdicts that change only on sustained evidence.

Two layers, each usable alone:

* **Member streaks.** Each ``(member, endpoint, location)`` has a filtered state that flips only
  after ``consecutive_down`` down observations in a row (when up) or ``consecutive_up`` up
  observations in a row (when down), as in Cloudflare Load Balancing's "consecutive up/down"
  monitor settings and the rise/fall counts of HAProxy. A member that alternates on every
  probe never flips while both thresholds are 2 or more.
* **Endpoint verdicts.** The caller folds the filtered member states into a raw endpoint
  verdict (for example with a monitor group's quorum) and passes it to
  :meth:`lbkit.health.Hysteresis.update_endpoint`. A changed verdict then holds for at least
  ``min_dwell`` seconds, and a DOWN endpoint comes back UP only once its raw verdict has been UP
  without a break for ``failback_delay`` seconds.

**Burst suppression.** When a health agent restarts, one location briefly reports many
endpoints down and then up again (the transient flaps described for Cloudflare's Unimog). If
the member flips coming from one location would exceed ``burst_limit`` within
``burst_window`` seconds, that flip is held and the location's observations are ignored until
``burst_window`` seconds after the flip that triggered it; each ignored observation that
disagrees with a member's state counts as a suppressed change.

Time is injected: every call takes ``now`` (seconds), which must never go backwards.

>>> hysteresis = Hysteresis(consecutive_up=2, consecutive_down=2)
>>> flapping = [False, True, False, True]
>>> [hysteresis.observe("http", "web-1", "dc-1", up, now=t) for t, up in enumerate(flapping)]
[True, True, True, True]
>>> [hysteresis.observe("http", "web-1", "dc-1", False, now=t) for t in (4, 5)]
[True, False]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError
from lbkit.health.events import EventLog, HealthEvent, check_int, check_now, check_seconds

__all__ = ["BurstReport", "Hysteresis", "MemberKey"]

MemberKey = tuple[Hashable, Hashable, Hashable]


@attrs.frozen
class BurstReport:
    """How much burst suppression did, for logs and dashboards.

    Attributes:
        activations: how many times some location's changes started being suppressed.
        suppressed_changes: observations ignored during suppression that disagreed with the
            member's state (each one a change that could have counted).
        suppressed_locations: the locations suppressed at the time of the report, sorted by
            ``repr``, each with the time its suppression ends.

    >>> Hysteresis().burst_report(now=0.0)
    BurstReport(activations=0, suppressed_changes=0, suppressed_locations=())
    """

    activations: int
    suppressed_changes: int
    suppressed_locations: tuple[tuple[Hashable, float], ...]


@attrs.define
class _Streak:
    up: bool
    streak: int  # consecutive observations disagreeing with `up`


@attrs.define
class _Endpoint:
    up: bool
    changed_at: float
    raw_up: bool
    recovered_at: float | None  # since when the raw verdict is UP while the verdict is DOWN


class Hysteresis:
    """Debounces member observations and endpoint verdicts (see the module docstring).

    Args:
        consecutive_up: up observations in a row that turn a down member up, >= 1.
        consecutive_down: down observations in a row that turn an up member down, >= 1.
        min_dwell: seconds a changed endpoint verdict holds before it may change again, >= 0.
        failback_delay: seconds an endpoint's raw verdict must stay UP before a DOWN verdict
            returns to UP, >= 0.
        burst_limit: member flips allowed from one location within ``burst_window``; the next
            one starts suppression. ``None`` (the default) disables burst suppression.
        burst_window: the window, in seconds (> 0 when ``burst_limit`` is set).
        initially_up: the state of members and endpoints before their first observation.
        events: an :class:`~lbkit.health.events.EventLog` that receives member, endpoint and
            burst transitions.

    Raises:
        ConfigError: a threshold below 1, a negative or non-finite duration, a burst limit
            below 1, or ``burst_window`` not > 0 with a burst limit.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(1) amortised per observation and per endpoint update.

    >>> hysteresis = Hysteresis(min_dwell=10.0, failback_delay=30.0)
    >>> hysteresis.update_endpoint("web-1", False, now=0.0)
    False
    >>> hysteresis.update_endpoint("web-1", True, now=20.0)  # recovered, failback pending
    False
    >>> hysteresis.update_endpoint("web-1", True, now=50.0)
    True
    """

    def __init__(
        self,
        *,
        consecutive_up: int = 1,
        consecutive_down: int = 1,
        min_dwell: float = 0.0,
        failback_delay: float = 0.0,
        burst_limit: int | None = None,
        burst_window: float = 0.0,
        initially_up: bool = True,
        events: EventLog | None = None,
    ) -> None:
        self._consecutive_up = check_int(consecutive_up, "consecutive_up", minimum=1)
        self._consecutive_down = check_int(consecutive_down, "consecutive_down", minimum=1)
        self._min_dwell = check_seconds(min_dwell, "min_dwell")
        self._failback_delay = check_seconds(failback_delay, "failback_delay")
        if burst_limit is not None:
            check_int(burst_limit, "burst_limit", minimum=1)
        self._burst_limit = burst_limit
        self._burst_window = check_seconds(burst_window, "burst_window")
        if burst_limit is not None and self._burst_window <= 0:
            raise ConfigError(
                f"burst_window is {burst_window!r}; it must be > 0 when burst_limit is set"
            )
        if not isinstance(initially_up, bool):
            raise ArgumentTypeError(
                f"initially_up is {type(initially_up).__name__}; it must be a bool"
            )
        if events is not None and not isinstance(events, EventLog):
            raise ArgumentTypeError(f"events is {type(events).__name__}; it must be an EventLog")
        self._initially_up = initially_up
        self._events = events
        self._now = -float("inf")
        self._members: dict[MemberKey, _Streak] = {}
        self._endpoints: dict[Hashable, _Endpoint] = {}
        self._flips: dict[Hashable, deque[float]] = {}
        self._suppressed_until: dict[Hashable, float] = {}
        self._activations = 0
        self._suppressed_changes = 0

    # -- member streaks ------------------------------------------------------------------

    def observe(
        self, member: Hashable, endpoint: Hashable, location: Hashable, up: bool, *, now: float
    ) -> bool:
        """Record one observation and return the member's filtered state (True is up).

        Raises:
            ArgumentTypeError: ``up`` is not a bool, or a key is unhashable.
            InvalidArgument: ``now`` is not finite or earlier than a previous ``now``.
            SubscriberError: an event subscriber raised (the observation is recorded).

        Runtime complexity: O(1) amortised.

        >>> hysteresis = Hysteresis(consecutive_down=3)
        >>> [hysteresis.observe("tcp", "db", "dc-2", False, now=t) for t in (1, 2, 3)]
        [True, True, False]
        """
        up = _check_up(up)
        key = (member, endpoint, location)
        _check_hashable(key)
        now = self._advance(now)
        state = self._members.get(key)
        if state is None:
            state = self._members[key] = _Streak(self._initially_up, 0)
        suppressed_until = self._suppressed_until.get(location)
        if suppressed_until is not None:
            if now < suppressed_until:
                if up != state.up:
                    self._suppressed_changes += 1
                return state.up
            del self._suppressed_until[location]
            self._flips.pop(location, None)
        if up == state.up:
            state.streak = 0
            return state.up
        state.streak += 1
        if state.streak < (self._consecutive_up if up else self._consecutive_down):
            return state.up
        if self._burst_limit is not None:
            flips = self._flips.setdefault(location, deque())
            # The window is (now - burst_window, now]: a flip exactly burst_window ago is out.
            while flips and flips[0] <= now - self._burst_window:
                flips.popleft()
            if len(flips) >= self._burst_limit:
                self._suppressed_until[location] = now + self._burst_window
                self._activations += 1
                self._suppressed_changes += 1
                flips.clear()
                # The held flip needs fresh evidence once suppression ends.
                state.streak = 0
                self._emit(
                    [
                        HealthEvent(
                            "burst",
                            location,
                            "off",
                            "on",
                            now,
                            f"more than {self._burst_limit} member changes from "
                            f"{location!r} within {self._burst_window:g}s; its changes are "
                            f"held until {now + self._burst_window:g}",
                        )
                    ]
                )
                return state.up
            flips.append(now)
        state.up = up
        state.streak = 0
        threshold = self._consecutive_up if up else self._consecutive_down
        self._emit(
            [
                HealthEvent(
                    "member",
                    key,
                    _word(not up),
                    _word(up),
                    now,
                    f"{threshold} consecutive {_word(up)} observation(s)",
                )
            ]
        )
        return up

    def member_up(self, member: Hashable, endpoint: Hashable, location: Hashable) -> bool:
        """The member's filtered state (``initially_up`` before any observation).

        Runtime complexity: O(1).

        >>> Hysteresis(initially_up=False).member_up("http", "web-1", "dc-1")
        False
        """
        state = self._members.get((member, endpoint, location))
        return self._initially_up if state is None else state.up

    def suppressed(self, location: Hashable, *, now: float) -> bool:
        """Whether ``location``'s observations are being ignored at ``now``.

        Runtime complexity: O(1).

        >>> Hysteresis(burst_limit=1, burst_window=5.0).suppressed("dc-1", now=0.0)
        False
        """
        now = self._advance(now)
        until = self._suppressed_until.get(location)
        return until is not None and now < until

    def burst_report(self, *, now: float) -> BurstReport:
        """What burst suppression has done, and which locations it holds at ``now``.

        Runtime complexity: O(L log L) for L suppressed locations.

        >>> hysteresis = Hysteresis(burst_limit=1, burst_window=10.0)
        >>> for t, endpoint in enumerate(["a", "b"]):
        ...     _ = hysteresis.observe("http", endpoint, "dc-9", False, now=t)
        >>> hysteresis.burst_report(now=2.0)
        BurstReport(activations=1, suppressed_changes=1, suppressed_locations=(('dc-9', 11.0),))
        """
        now = self._advance(now)
        held = sorted(
            (
                (location, until)
                for location, until in self._suppressed_until.items()
                if now < until
            ),
            key=lambda item: repr(item[0]),
        )
        return BurstReport(self._activations, self._suppressed_changes, tuple(held))

    # -- endpoint verdicts ---------------------------------------------------------------

    def update_endpoint(self, endpoint: Hashable, up: bool, *, now: float) -> bool:
        """Give the endpoint's raw verdict at ``now``; return its published verdict.

        The first update of an endpoint publishes its raw verdict at once, except that with
        ``initially_up=False`` a first UP waits ``failback_delay`` like any recovery. A DOWN
        verdict is published once the current verdict is ``min_dwell`` old; an UP verdict once,
        in addition, the raw verdict has been UP since at least ``failback_delay`` seconds
        (both boundaries inclusive). A change held back is published by a later update or
        :meth:`advance`, if the raw verdict still asks for it.

        Raises:
            ArgumentTypeError: ``up`` is not a bool, or ``endpoint`` is unhashable.
            InvalidArgument: ``now`` is not finite or earlier than a previous ``now``.
            SubscriberError: an event subscriber raised (the verdict is recorded).

        Runtime complexity: O(1).

        >>> hysteresis = Hysteresis(min_dwell=5.0)
        >>> hysteresis.update_endpoint("web-1", False, now=0.0)
        False
        >>> hysteresis.update_endpoint("web-1", True, now=4.0), hysteresis.advance(now=5.0)
        (False, ['web-1'])
        """
        up = _check_up(up)
        _check_hashable(endpoint)
        now = self._advance(now)
        state = self._endpoints.get(endpoint)
        if state is None:
            if self._failback_delay == 0 or not up or self._initially_up:
                self._endpoints[endpoint] = _Endpoint(up, now, up, None)
                return up
            # Never seen UP and initially down: its first UP is a recovery like any other.
            state = self._endpoints[endpoint] = _Endpoint(False, now, False, None)
        if up and not state.raw_up and not state.up:
            state.recovered_at = now
        elif not up:
            state.recovered_at = None
        state.raw_up = up
        event = self._transition(endpoint, state, now)
        if event is not None:
            self._emit([event])
        return state.up

    def advance(self, *, now: float) -> list[Hashable]:
        """Publish every held endpoint change that is due at ``now``; return those endpoints.

        Runtime complexity: O(endpoints).

        >>> hysteresis = Hysteresis(failback_delay=3.0)
        >>> hysteresis.update_endpoint("a", False, now=0.0)
        False
        >>> hysteresis.update_endpoint("a", True, now=1.0)
        False
        >>> hysteresis.advance(now=3.9), hysteresis.advance(now=4.0)
        ([], ['a'])
        """
        now = self._advance(now)
        changed = []
        events = []
        for endpoint, state in self._endpoints.items():
            event = self._transition(endpoint, state, now)
            if event is not None:
                changed.append(endpoint)
                events.append(event)
        self._emit(events)
        return changed

    def endpoint_up(self, endpoint: Hashable) -> bool:
        """The endpoint's published verdict (``initially_up`` before any update).

        Runtime complexity: O(1).

        >>> Hysteresis().endpoint_up("never-seen")
        True
        """
        state = self._endpoints.get(endpoint)
        return self._initially_up if state is None else state.up

    def _transition(self, endpoint: Hashable, state: _Endpoint, now: float) -> HealthEvent | None:
        if state.raw_up == state.up or now - state.changed_at < self._min_dwell:
            return None
        if state.raw_up:
            assert state.recovered_at is not None
            if now - state.recovered_at < self._failback_delay:
                return None
            reason = f"up since {state.recovered_at:g}"
            if self._failback_delay:
                reason += f" (failback_delay {self._failback_delay:g}s)"
        else:
            reason = "raw verdict down"
        if self._min_dwell:
            reason += f"; previous verdict held since {state.changed_at:g}"
        old = state.up
        state.up = state.raw_up
        state.changed_at = now
        state.recovered_at = None
        return HealthEvent("endpoint", endpoint, _word(old), _word(state.up), now, reason)

    # -- helpers -------------------------------------------------------------------------

    def _advance(self, now: float) -> float:
        self._now = check_now(now, self._now)
        return self._now

    def _emit(self, events: list[HealthEvent]) -> None:
        if self._events is not None and events:
            self._events.emit_all(events)

    def _check(self) -> None:
        """Assert the structural invariants (for tests)."""
        for state in self._members.values():
            threshold = self._consecutive_down if state.up else self._consecutive_up
            # A streak that reaches its threshold flips the state (or is reset when held).
            assert 0 <= state.streak < threshold
        for endpoint_state in self._endpoints.values():
            assert endpoint_state.changed_at <= self._now
            if endpoint_state.recovered_at is not None:
                assert endpoint_state.raw_up
                assert not endpoint_state.up
                assert endpoint_state.changed_at <= endpoint_state.recovered_at <= self._now
            elif endpoint_state.raw_up and not endpoint_state.up:
                raise AssertionError("a recovering endpoint must know when it recovered")
        if self._burst_limit is not None:
            for flips in self._flips.values():
                assert len(flips) <= self._burst_limit
                assert list(flips) == sorted(flips)
        assert self._suppressed_changes >= self._activations >= 0


def _word(up: bool) -> str:
    return "up" if up else "down"


def _check_up(up: object) -> bool:
    # Only a real bool: an int-valued verdict enum (where UNKNOWN may be 0) must be mapped by
    # the caller, who decides what an unknown observation means.
    if isinstance(up, bool):
        return up
    raise ArgumentTypeError(
        f"up is {up!r}; it must be a bool (map verdicts explicitly, e.g. verdict is Verdict.UP)"
    )


def _check_hashable(key: object) -> None:
    try:
        hash(key)
    except TypeError:
        raise ArgumentTypeError(f"{key!r} is unhashable; names must be hashable") from None
