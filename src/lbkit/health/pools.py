"""Pool health and the panic guard (fail open or fail closed).

A pool is **healthy** while at least ``minimum_healthy`` of its endpoints are healthy (the
Cloudflare Load Balancing pool rule). Separately, a **panic guard** watches the healthy
fraction: below ``panic_threshold`` the health checks themselves are suspect (a broken monitor,
a partitioned checker) or the few healthy endpoints would be crushed by the whole load, so the
pool *panics* and callers either treat every endpoint as eligible (**fail open**, Envoy's
"panic threshold", 50% by default) or none (**fail closed**). Every activation is counted.

Each report also says how the failures are spread, so an alert can tell a data-centre outage
from a few bad machines: ``"pool"`` when more than ``degraded_fraction`` of the whole pool is
down, ``"location"`` when that much of at least one location is down, ``"isolated"`` for any
other failures, ``"none"`` when all endpoints are healthy.

>>> pool = PoolHealth({"a1": "dc-a", "a2": "dc-a", "b1": "dc-b", "b2": "dc-b"})
>>> report = pool.update({"a1": False, "a2": False}, now=1.0)
>>> report.healthy, report.panic, report.scope, report.degraded_locations
(True, False, 'location', ('dc-a',))
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Literal

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError, UnknownServer
from lbkit.health.events import EventLog, HealthEvent, check_int, check_now

__all__ = ["FailureScope", "PoolHealth", "PoolReport"]

FailureScope = Literal["none", "isolated", "location", "pool"]


@attrs.frozen
class PoolReport:
    """A pool's state after an update.

    Attributes:
        healthy: at least ``minimum_healthy`` endpoints are healthy.
        healthy_count: how many endpoints are healthy.
        total: how many endpoints the pool has.
        panic: the healthy fraction is below ``panic_threshold``.
        fail_open: what panic means for ``eligible`` (configuration, repeated for callers).
        eligible: the endpoints to send traffic to: the healthy ones; in panic, every endpoint
            (fail open) or none (fail closed).
        scope: how the failures are spread: ``"none"``, ``"isolated"``, ``"location"`` or
            ``"pool"`` (see the module docstring).
        degraded_locations: the locations with more than ``degraded_fraction`` of their
            endpoints down, sorted by ``repr``.
        panic_activations: how many times the panic guard has switched on so far.
        reason: a sentence for logs and alerts.

    >>> PoolHealth(["a", "b"]).report().reason
    'healthy: 2 of 2 endpoints healthy (minimum_healthy 1)'
    """

    healthy: bool
    healthy_count: int
    total: int
    panic: bool
    fail_open: bool
    eligible: frozenset[Hashable]
    scope: FailureScope
    degraded_locations: tuple[Hashable, ...]
    panic_activations: int
    reason: str

    @property
    def healthy_fraction(self) -> float:
        """The fraction of endpoints that are healthy."""
        return self.healthy_count / self.total


class PoolHealth:
    """The health of one pool of endpoints, with a panic guard.

    Args:
        endpoints: the pool's endpoints, or a mapping from each endpoint to its location (data
            centre); without locations every endpoint is in location ``None``.
        name: the pool's name, the subject of its events.
        minimum_healthy: how many healthy endpoints keep the pool healthy, 0..len(endpoints).
        panic_threshold: the healthy fraction below which the pool panics, in [0, 1]; 0
            disables the guard.
        fail_open: in panic, every endpoint is eligible (True, the default) or none (False).
        degraded_fraction: a location (or the pool) with more than this fraction of its
            endpoints down counts as degraded as a whole, in [0, 1).
        initially_healthy: every endpoint's state before its first update.
        events: an :class:`~lbkit.health.events.EventLog` that receives pool and panic
            transitions.

    Raises:
        ConfigError: no endpoints, duplicate endpoints, or a parameter out of its range.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(E) per update and report for a pool of E endpoints.

    >>> pool = PoolHealth(["a", "b", "c", "d"], minimum_healthy=2, fail_open=False)
    >>> report = pool.update({"a": False, "b": False, "c": False}, now=0.0)
    >>> report.healthy, report.panic, sorted(report.eligible), report.panic_activations
    (False, True, [], 1)
    """

    def __init__(
        self,
        endpoints: Iterable[Hashable] | Mapping[Any, Hashable],
        *,
        name: Hashable = "pool",
        minimum_healthy: int = 1,
        panic_threshold: float = 0.5,
        fail_open: bool = True,
        degraded_fraction: float = 0.5,
        initially_healthy: bool = True,
        events: EventLog | None = None,
    ) -> None:
        if isinstance(endpoints, (str, bytes)):
            raise ArgumentTypeError(
                f"endpoints is {type(endpoints).__name__}; it must be an iterable of endpoints "
                "or a mapping from endpoint to location"
            )
        if isinstance(endpoints, Mapping):
            pairs = list(endpoints.items())
        else:
            pairs = [(endpoint, None) for endpoint in endpoints]
        if not pairs:
            raise ConfigError("endpoints is empty; a pool needs at least one endpoint")
        locations: dict[Hashable, Hashable] = {}
        for index, (endpoint, location) in enumerate(pairs):
            try:
                hash(endpoint)
                hash(location)
            except TypeError:
                raise ArgumentTypeError(
                    f"endpoints[{index}] is {endpoint!r} (location {location!r}); endpoints "
                    "and locations must be hashable"
                ) from None
            if endpoint in locations:
                raise ConfigError(f"endpoints[{index}] repeats {endpoint!r}; endpoints are unique")
            locations[endpoint] = location
        check_int(minimum_healthy, "minimum_healthy", minimum=0)
        if minimum_healthy > len(locations):
            raise ConfigError(
                f"minimum_healthy is {minimum_healthy} but the pool has {len(locations)} "
                "endpoints; it must be <= the number of endpoints"
            )
        self._panic_threshold = _check_fraction(panic_threshold, "panic_threshold", closed=True)
        self._degraded_fraction = _check_fraction(
            degraded_fraction, "degraded_fraction", closed=False
        )
        for flag, flag_name in ((fail_open, "fail_open"), (initially_healthy, "initially_healthy")):
            if not isinstance(flag, bool):
                raise ArgumentTypeError(f"{flag_name} is {type(flag).__name__}; it must be a bool")
        if events is not None and not isinstance(events, EventLog):
            raise ArgumentTypeError(f"events is {type(events).__name__}; it must be an EventLog")
        self._name = name
        self._locations = locations
        self._minimum_healthy = minimum_healthy
        self._fail_open = fail_open
        self._events = events
        self._healthy: dict[Hashable, bool] = dict.fromkeys(locations, initially_healthy)
        self._now = -math.inf
        self._activations = 0
        self._report = self._evaluate()
        if self._report.panic:
            self._activations = 1
            self._report = attrs.evolve(self._report, panic_activations=1)

    @property
    def endpoints(self) -> tuple[Hashable, ...]:
        """The pool's endpoints, in the order given."""
        return tuple(self._locations)

    @property
    def panic_activations(self) -> int:
        """How many times the panic guard has switched on (including at construction)."""
        return self._activations

    def location_of(self, endpoint: Hashable) -> Hashable:
        """The location ``endpoint`` was configured in.

        Raises:
            UnknownServer: ``endpoint`` is not in the pool.

        Runtime complexity: O(1).

        >>> PoolHealth({"a1": "dc-a"}).location_of("a1")
        'dc-a'
        """
        self._known(endpoint)
        return self._locations[endpoint]

    def report(self) -> PoolReport:
        """The pool's current state.

        Runtime complexity: O(1).

        >>> PoolHealth(["a"]).report().eligible
        frozenset({'a'})
        """
        return self._report

    def update(self, healthy: Mapping[Any, bool], *, now: float) -> PoolReport:
        """Set the health of some endpoints (the others keep theirs) and report the pool.

        The batch is applied as a whole: transitions are judged between the states before and
        after it, so the order of the mapping does not matter.

        Raises:
            UnknownServer: an endpoint that is not in the pool (nothing is changed).
            ArgumentTypeError: a value that is not a bool.
            InvalidArgument: ``now`` is not finite or earlier than a previous ``now``.
            SubscriberError: an event subscriber raised (the update is recorded).

        Runtime complexity: O(E + len(healthy)).

        >>> pool = PoolHealth(["a", "b", "c"])
        >>> pool.update({"a": False}, now=0.0).reason
        'healthy: 2 of 3 endpoints healthy (minimum_healthy 1); isolated failures: a'
        """
        if not isinstance(healthy, Mapping):
            raise ArgumentTypeError(
                f"healthy is {type(healthy).__name__}; it must map endpoints to bools"
            )
        changes: dict[Hashable, bool] = {}
        for endpoint, up in healthy.items():
            self._known(endpoint)
            if not isinstance(up, bool):
                raise ArgumentTypeError(
                    f"healthy[{endpoint!r}] is {up!r}; endpoint health must be a bool"
                )
            changes[endpoint] = up
        now = check_now(now, self._now)
        self._now = now
        self._healthy.update(changes)
        before = self._report
        after = self._evaluate()
        events: list[HealthEvent] = []
        if after.healthy != before.healthy:
            events.append(
                HealthEvent(
                    "pool",
                    self._name,
                    _word(before.healthy),
                    _word(after.healthy),
                    now,
                    after.reason,
                )
            )
        if after.panic != before.panic:
            if after.panic:
                self._activations += 1
                after = attrs.evolve(after, panic_activations=self._activations)
            events.append(
                HealthEvent(
                    "panic",
                    self._name,
                    "on" if before.panic else "off",
                    "on" if after.panic else "off",
                    now,
                    after.reason,
                )
            )
        self._report = after
        if self._events is not None and events:
            self._events.emit_all(events)
        return after

    def _known(self, endpoint: Hashable) -> None:
        try:
            known = endpoint in self._locations
        except TypeError:
            raise ArgumentTypeError(f"endpoint {endpoint!r} is unhashable") from None
        if not known:
            raise UnknownServer(f"endpoint {endpoint!r} is not in pool {self._name!r}")

    def _evaluate(self) -> PoolReport:
        total = len(self._healthy)
        healthy_endpoints = [endpoint for endpoint, up in self._healthy.items() if up]
        count = len(healthy_endpoints)
        down = total - count
        per_location: dict[Hashable, list[int]] = {}
        for endpoint, up in self._healthy.items():
            tally = per_location.setdefault(self._locations[endpoint], [0, 0])
            tally[0] += 1
            tally[1] += 0 if up else 1
        degraded = tuple(
            sorted(
                (
                    location
                    for location, (size, failed) in per_location.items()
                    if failed > self._degraded_fraction * size
                ),
                key=repr,
            )
        )
        scope: FailureScope
        if down == 0:
            scope = "none"
        elif down > self._degraded_fraction * total:
            scope = "pool"
        elif degraded:
            scope = "location"
        else:
            scope = "isolated"
        is_healthy = count >= self._minimum_healthy
        panic = count < self._panic_threshold * total
        if panic:
            eligible = frozenset(self._healthy) if self._fail_open else frozenset()
        else:
            eligible = frozenset(healthy_endpoints)
        reason = (
            f"{'healthy' if is_healthy else 'unhealthy'}: {count} of {total} endpoints healthy "
            f"(minimum_healthy {self._minimum_healthy})"
        )
        if panic:
            reason += (
                f"; panic: healthy fraction {count / total:.3g} < panic_threshold "
                f"{self._panic_threshold:g}, failing {'open' if self._fail_open else 'closed'}"
            )
        if scope == "pool":
            reason += f"; pool-wide degradation: {down} of {total} endpoints down"
        elif scope == "location":
            parts = []
            for location in degraded:
                size, failed = per_location[location]
                parts.append(f"{location!r} ({failed} of {size} down)")
            reason += f"; data-centre-wide degradation in {', '.join(parts)}"
        elif scope == "isolated":
            failed_names = sorted(
                (repr(e) if not isinstance(e, str) else e)
                for e, up in self._healthy.items()
                if not up
            )
            shown = ", ".join(failed_names[:5]) + (", ..." if len(failed_names) > 5 else "")
            reason += f"; isolated failures: {shown}"
        return PoolReport(
            healthy=is_healthy,
            healthy_count=count,
            total=total,
            panic=panic,
            fail_open=self._fail_open,
            eligible=eligible,
            scope=scope,
            degraded_locations=degraded,
            panic_activations=self._activations,
            reason=reason,
        )

    def _check(self) -> None:
        """Assert the structural invariants (for tests)."""
        report = self._report
        assert set(self._healthy) == set(self._locations)
        assert report.total == len(self._healthy)
        assert report.healthy_count == sum(self._healthy.values())
        assert report.healthy == (report.healthy_count >= self._minimum_healthy)
        assert report.panic == (report.healthy_count < self._panic_threshold * report.total)
        assert report.panic_activations == self._activations
        assert self._activations >= int(report.panic)
        healthy_set = frozenset(e for e, up in self._healthy.items() if up)
        if not report.panic:
            assert report.eligible == healthy_set
        else:
            assert report.eligible in (frozenset(self._healthy), frozenset())
        assert (report.scope == "none") == (report.healthy_count == report.total)
        assert set(report.degraded_locations) <= set(self._locations.values())


def _word(up: bool) -> str:
    return "up" if up else "down"


def _check_fraction(value: object, name: str, *, closed: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    fraction = float(value)
    if not (0.0 <= fraction <= 1.0) or (not closed and fraction == 1.0):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ConfigError(f"{name} is {value!r}; it must be in {interval}")
    return fraction
