"""What monitors report and what a :class:`~lbkit.health.MonitorGroup` concludes from it.

* :class:`MonitorResult`: one probe's outcome, from one location, for one endpoint.
* :class:`Member`: how one monitor takes part in a group (critical, observational, disabled).
* :class:`Verdict`, :class:`Rule` and :class:`Reason`: every verdict with the rule behind it,
  machine-readable for alerting and readable as ``str`` for logs.
* :class:`LocationHealth`, :class:`EndpointHealth` and :class:`BatchVerdicts`: the reports.
"""

from __future__ import annotations

import enum
import math
from array import array
from collections.abc import Callable
from typing import Any

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument

__all__ = [
    "BatchVerdicts",
    "EndpointHealth",
    "LocationHealth",
    "Member",
    "MonitorResult",
    "Reason",
    "Rule",
    "Verdict",
]


class Verdict(enum.IntEnum):
    """A result, a location's or an endpoint's health; the values are the kernel's codes.

    >>> Verdict.UP, str(Verdict.DOWN), Verdict(0)
    (<Verdict.UP: 1>, 'down', <Verdict.UNKNOWN: 0>)
    """

    UNKNOWN = 0
    UP = 1
    DOWN = 2

    def __str__(self) -> str:
        return self.name.lower()


class Rule(str, enum.Enum):
    """Which rule decided a verdict.

    Location rules: ``CRITICAL_DOWN`` (a critical member reports down), ``MAJORITY_DOWN``
    (more than half of the voting results are down), ``MAJORITY_UP`` (not more than half),
    ``CRITICAL_UP`` (no voting result, but critical members report up), ``NO_VOTES`` (nothing
    current to decide on). Endpoint rules: ``QUORUM_UP``, ``QUORUM_DOWN``, ``NO_VERDICTS``.

    >>> Rule.CRITICAL_DOWN.value
    'critical-down'
    """

    NO_VOTES = "no-votes"
    CRITICAL_DOWN = "critical-down"
    MAJORITY_DOWN = "majority-down"
    MAJORITY_UP = "majority-up"
    CRITICAL_UP = "critical-up"
    QUORUM_UP = "quorum-up"
    QUORUM_DOWN = "quorum-down"
    NO_VERDICTS = "no-verdicts"


#: Location rules in the order of the kernel's rule codes.
LOCATION_RULES = (
    Rule.NO_VOTES,
    Rule.CRITICAL_DOWN,
    Rule.MAJORITY_DOWN,
    Rule.MAJORITY_UP,
    Rule.CRITICAL_UP,
)


@attrs.frozen
class Reason:
    """Why a verdict is what it is: the rule, the member that decided it (for the critical
    rule), and the counts the rule compared.

    Attributes:
        rule: the :class:`Rule` that decided.
        member: the critical member that reported down, else ``None``.
        count: down results (location rules) or UP locations or regions (endpoint rules).
        total: voting results (location rules) or locations or regions with a verdict.
        threshold: the endpoint quorum's threshold (``None`` for location rules).
        unit: what ``count`` and ``total`` count, for the message.

    >>> print(Reason(Rule.MAJORITY_DOWN, count=2, total=3))
    majority-down: 2 of 3 voting results are down (more than half)
    >>> print(Reason(Rule.CRITICAL_DOWN, member="http"))
    critical-down: critical member 'http' reports down
    """

    rule: Rule
    member: str | None = None
    count: int = 0
    total: int = 0
    threshold: float | None = None
    unit: str = "voting results"

    def __str__(self) -> str:
        rule = self.rule
        if rule is Rule.CRITICAL_DOWN:
            text = f"critical member {self.member!r} reports down"
        elif rule is Rule.MAJORITY_DOWN:
            text = f"{self.count} of {self.total} {self.unit} are down (more than half)"
        elif rule is Rule.MAJORITY_UP:
            text = f"{self.count} of {self.total} {self.unit} are down (not more than half)"
        elif rule is Rule.CRITICAL_UP:
            text = "no voting member has a current result; the critical members report up"
        elif rule is Rule.NO_VOTES:
            text = "no voting member has a current result"
        elif rule is Rule.QUORUM_UP:
            text = f"{self.count} of {self.total} {self.unit} are up (more than {self.threshold:g})"
        elif rule is Rule.QUORUM_DOWN:
            text = (
                f"{self.count} of {self.total} {self.unit} are up "
                f"(not more than {self.threshold:g})"
            )
        else:
            text = f"none of the {self.unit} has a verdict"
        return f"{rule.value}: {text}"


def _text(name: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str):
            raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a str")

    return check


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{attribute.name} is {type(value).__name__}; it must be a bool")


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a float")
    return float(value)


def _check_rtt(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    rtt = _number(value, "rtt")
    if not (math.isfinite(rtt) and rtt >= 0.0):
        raise InvalidArgument(f"rtt is {value!r}; it must be None or finite and >= 0")


def _check_time(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not math.isfinite(_number(value, "observed_at")):
        raise InvalidArgument(f"observed_at is {value!r}; it must be finite")


@attrs.frozen
class MonitorResult:
    """One probe's outcome: ``monitor`` checked ``endpoint`` from ``location`` at
    ``observed_at`` (seconds, the caller's clock) and found it up or down, in ``rtt`` seconds.

    A result stands until a later one of the same monitor, endpoint and location replaces it,
    and counts as unknown once it is ``max_age`` old (see :class:`~lbkit.health.MonitorGroup`).

    Raises:
        ArgumentTypeError: a name is not a ``str``, ``up`` not a ``bool``, a time not a number.
        InvalidArgument: ``rtt`` is NaN, infinite or negative; ``observed_at`` is not finite.

    >>> MonitorResult("http", "10.0.0.1", "ams", True, 0.012, observed_at=100.0).rtt
    0.012
    """

    monitor: str = attrs.field(validator=_text("monitor"))
    endpoint: str = attrs.field(validator=_text("endpoint"))
    location: str = attrs.field(validator=_text("location"))
    up: bool = attrs.field(validator=_flag)
    rtt: float | None = attrs.field(default=None, validator=_check_rtt)
    observed_at: float = attrs.field(kw_only=True, validator=_check_time)


@attrs.frozen
class Member:
    """How one monitor takes part in a group.

    * ``must_be_healthy``: critical; its down result marks the location down, whatever the
      others say.
    * ``monitoring_only``: observational; its results are kept and shown but never vote and
      never count in the latency.
    * ``enabled=False``: ignored entirely.

    Raises:
        ConfigError: a member is both critical and monitoring-only (it would have to decide
            and not decide).

    >>> Member("http", must_be_healthy=True)
    Member(monitor='http', must_be_healthy=True, monitoring_only=False, enabled=True)
    """

    monitor: str = attrs.field(validator=_text("monitor"))
    must_be_healthy: bool = attrs.field(default=False, kw_only=True, validator=_flag)
    monitoring_only: bool = attrs.field(default=False, kw_only=True, validator=_flag)
    enabled: bool = attrs.field(default=True, kw_only=True, validator=_flag)

    def __attrs_post_init__(self) -> None:
        if self.must_be_healthy and self.monitoring_only:
            raise ConfigError(
                f"member {self.monitor!r} has must_be_healthy=True and monitoring_only=True; "
                "a monitoring-only member never decides, so it cannot be critical"
            )

    @property
    def decides(self) -> bool:
        """True for an enabled member that is not monitoring-only: its results count."""
        return self.enabled and not self.monitoring_only


@attrs.frozen
class LocationHealth:
    """One location's verdict on one endpoint, its reason, and the mean RTT there.

    Attributes:
        location: the location's name.
        verdict: UP, DOWN or UNKNOWN.
        reason: the rule that decided, with its counts.
        latency: the mean RTT of the current up results of the deciding members, or ``None``.

    >>> LocationHealth("ams", Verdict.UP, Reason(Rule.MAJORITY_UP, count=0, total=2), 0.01)
    ... # doctest: +ELLIPSIS
    LocationHealth(location='ams', verdict=<Verdict.UP: 1>, ...)
    """

    location: str
    verdict: Verdict
    reason: Reason
    latency: float | None


@attrs.frozen
class EndpointHealth:
    """One endpoint's verdict across locations, its reason, the per-location detail and the
    latency dynamic steering uses (the mean of the per-location latencies).

    >>> health = EndpointHealth("10.0.0.1", Verdict.UNKNOWN,
    ...                         Reason(Rule.NO_VERDICTS, unit="locations"), (), None)
    >>> print(health.reason)
    no-verdicts: none of the locations has a verdict
    """

    endpoint: str
    verdict: Verdict
    reason: Reason
    locations: tuple[LocationHealth, ...]
    latency: float | None

    @property
    def healthy(self) -> bool:
        """True when the verdict is UP."""
        return self.verdict is Verdict.UP


def endpoint_reason(up: int, counted: int, threshold: float, unit: str) -> Reason:
    """The reason for an endpoint verdict computed by the fold kernel."""
    if counted == 0:
        return Reason(Rule.NO_VERDICTS, unit=unit)
    rule = Rule.QUORUM_UP if up > threshold * counted else Rule.QUORUM_DOWN
    return Reason(rule, count=up, total=counted, threshold=threshold, unit=unit)


@attrs.frozen
class BatchVerdicts:
    """The verdicts of :meth:`MonitorGroup.evaluate_many
    <lbkit.health.MonitorGroup.evaluate_many>`: endpoints are numbered as in the batch,
    locations are indices into ``locations``.

    Attributes:
        members: the monitors, in the group's order (the batch's member axis).
        locations: the location names (the batch's location axis).
        threshold: the endpoint quorum's threshold.
        by_region: True when locations were folded into regions first.
        location_verdicts: ``array('B')`` of verdict codes, ``endpoint * len(locations) +
            location``.
        location_rules, culprits, down_votes, votes: the kernel's per-cell reasons.
        endpoint_verdicts: ``array('B')`` of verdict codes, one per endpoint.
        endpoints_up, endpoints_counted: UP locations (or regions) of those with a verdict.

    >>> from lbkit.health import Member, MonitorGroup
    >>> group = MonitorGroup([Member("http"), Member("tcp")])
    >>> batch = group.evaluate_many(bytes([1, 2, 2, 2]), endpoints=2, locations=["ams"])
    >>> batch.verdict(0), batch.verdict(1)
    (<Verdict.UP: 1>, <Verdict.DOWN: 2>)
    """

    members: tuple[str, ...]
    locations: tuple[str, ...]
    threshold: float
    by_region: bool
    location_verdicts: array[int]
    location_rules: array[int]
    culprits: array[int]
    down_votes: array[int]
    votes: array[int]
    endpoint_verdicts: array[int]
    endpoints_up: array[int]
    endpoints_counted: array[int]

    @property
    def endpoint_count(self) -> int:
        """How many endpoints the batch held."""
        return len(self.endpoint_verdicts)

    def verdict(self, endpoint: int) -> Verdict:
        """The endpoint's verdict across locations."""
        return Verdict(self.endpoint_verdicts[endpoint])

    def reason(self, endpoint: int) -> Reason:
        """Why the endpoint has its verdict."""
        unit = "regions" if self.by_region else "locations"
        return endpoint_reason(
            self.endpoints_up[endpoint], self.endpoints_counted[endpoint], self.threshold, unit
        )

    def location_verdict(self, endpoint: int, location: int) -> Verdict:
        """One location's verdict on the endpoint."""
        return Verdict(self.location_verdicts[endpoint * len(self.locations) + location])

    def location_reason(self, endpoint: int, location: int) -> Reason:
        """Why one location has its verdict on the endpoint."""
        cell = endpoint * len(self.locations) + location
        culprit = self.culprits[cell]
        return Reason(
            LOCATION_RULES[self.location_rules[cell]],
            member=self.members[culprit] if culprit >= 0 else None,
            count=self.down_votes[cell],
            total=self.votes[cell],
        )
