"""Monitor groups: several monitors, probing every endpoint from several locations, folded into
one verdict per location and one per endpoint, each with its reason.

The rules follow Cloudflare Load Balancing's Monitor Groups and health monitor regions
(developers.cloudflare.com/load-balancing/monitors/monitor-groups, .../monitors):

1. **Location.** If an enabled critical member (``must_be_healthy``) reports down, the location
   is DOWN. Otherwise the *voting* members decide by majority: DOWN only if **more than half** of
   their current results are down, so a tie is UP. Voting members are the enabled members that
   are neither monitoring-only nor critical; with ``critical_votes_in_majority=True`` the
   critical members vote too (Cloudflare's quorum is over "all other" monitors, hence the
   default ``False``). When no voting member has a current result, the location is UP if a
   critical member reports up, and UNKNOWN otherwise (never UP by default).
2. **Staleness.** A result stands until a newer one (same monitor, endpoint and location)
   replaces it; once ``now - observed_at >= max_age`` it is unknown, so at exactly ``max_age``
   it no longer counts. Unknown results abstain unless ``unknown_votes`` says they count as
   ``"up"`` or ``"down"`` (for critical members too). A result observed more than
   ``future_tolerance`` seconds after ``now`` is rejected: a clock is wrong somewhere.
3. **Endpoint.** Healthy (UP) when **more than** ``threshold`` of the locations with a verdict
   are UP, so with the default 0.5 exactly half is DOWN; UNKNOWN when no location has a
   verdict. With ``regions`` (location -> region), a region is UP when more than half of its
   locations with a verdict are UP, and the ``threshold`` rule then applies to the regions.
4. **Latency.** Per location, the mean RTT of the current up results of the enabled,
   non-monitoring-only members; per endpoint, the mean of the per-location latencies. A failed
   probe's RTT (often a timeout) says nothing about how fast the endpoint serves, so it is left
   out.

The fold itself is a kernel (``lbkit._kernels.health.fold``) over plain byte arrays, so a batch
of 300 locations x 5 members x 1,000 endpoints costs one call:
:meth:`lbkit.health.MonitorGroup.evaluate_many`.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import attrs

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.health.results import (
    BatchVerdicts,
    EndpointHealth,
    LocationHealth,
    Member,
    MonitorResult,
    Verdict,
)

__all__ = ["UNKNOWN_VOTES", "MonitorGroup", "UnknownVotes"]

UnknownVotes = Literal["abstain", "up", "down"]
#: The ways an unknown (missing or stale) result can vote.
UNKNOWN_VOTES: tuple[UnknownVotes, ...] = ("abstain", "up", "down")
_UNKNOWN_CODES = {"abstain": Verdict.UNKNOWN, "up": Verdict.UP, "down": Verdict.DOWN}
_VALID_CODES = bytes([Verdict.UNKNOWN, Verdict.UP, Verdict.DOWN])


def _members(value: Iterable[Member]) -> tuple[Member, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(
            f"members is {type(value).__name__}; it must be an iterable of Member"
        )
    members = tuple(value)
    for position, member in enumerate(members):
        if not isinstance(member, Member):
            raise ArgumentTypeError(
                f"members[{position}] is {type(member).__name__}; it must be a Member"
            )
    return members


def _regions(value: Mapping[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"regions is {type(value).__name__}; it must be a mapping of location to region"
        )
    for location, region in value.items():
        if not isinstance(location, str) or not isinstance(region, str):
            raise ArgumentTypeError(
                f"regions[{location!r}] is {region!r}; locations and regions must be str"
            )
    return dict(value)


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{attribute.name} is {type(value).__name__}; it must be an int")
    if value < 1:
        raise ConfigError(f"{attribute.name} is {value}; it must be >= 1")


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a float")
    return float(value)


@attrs.frozen
class MonitorGroup:
    """A set of monitors that decide together whether endpoints are healthy (rules in the
    module documentation).

    Args:
        members: the :class:`~lbkit.health.Member` list; its order is the member axis of
            :meth:`evaluate_many` and breaks ties between critical members in reasons.
        max_members: the most members allowed (Cloudflare allows 5).
        max_age: seconds after which a result is unknown (at exactly ``max_age`` it is).
        future_tolerance: how far ahead of ``now`` a result may be stamped (clock skew).
        unknown_votes: ``"abstain"`` (default), ``"up"`` or ``"down"``.
        critical_votes_in_majority: whether critical members also vote in the majority
            (default ``False``, as in Cloudflare's quorum of the other monitors).
        threshold: the fraction of locations (or regions) that must be UP, exclusive.
        regions: optional location -> region mapping for the region-first fold.

    Raises:
        ConfigError: duplicate members, more than ``max_members``, no enabled member that is
            not monitoring-only, or an option out of its range.
        ArgumentTypeError: an argument of the wrong type.

    >>> group = MonitorGroup([Member("http", must_be_healthy=True), Member("tcp"),
    ...                       Member("db")], max_age=60.0)
    >>> results = [
    ...     MonitorResult("http", "web-1", "ams", True, 0.010, observed_at=100.0),
    ...     MonitorResult("tcp", "web-1", "ams", False, observed_at=100.0),
    ...     MonitorResult("db", "web-1", "ams", True, 0.030, observed_at=100.0),
    ...     MonitorResult("http", "web-1", "fra", False, observed_at=100.0),
    ... ]
    >>> report = group.evaluate(results, now=110.0)["web-1"]
    >>> for location in report.locations:
    ...     print(location.location, location.verdict, "|", location.reason)
    ams up | majority-up: 1 of 2 voting results are down (not more than half)
    fra down | critical-down: critical member 'http' reports down
    >>> print(report.verdict, "|", report.reason)
    down | quorum-down: 1 of 2 locations are up (not more than 0.5)
    >>> report.latency
    0.02
    """

    members: tuple[Member, ...] = attrs.field(converter=_members)
    max_members: int = attrs.field(default=5, kw_only=True, validator=_positive_int)
    max_age: float = attrs.field(default=180.0, kw_only=True)
    future_tolerance: float = attrs.field(default=5.0, kw_only=True)
    unknown_votes: UnknownVotes = attrs.field(default="abstain", kw_only=True)
    critical_votes_in_majority: bool = attrs.field(default=False, kw_only=True)
    threshold: float = attrs.field(default=0.5, kw_only=True)
    regions: dict[str, str] | None = attrs.field(
        default=None, kw_only=True, converter=_regions, hash=False
    )
    _index: dict[str, int] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _critical: bytes = attrs.field(init=False, repr=False, eq=False, hash=False)
    _voting: bytes = attrs.field(init=False, repr=False, eq=False, hash=False)
    _region_names: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        members = self.members
        if not members:
            raise ConfigError("members is empty; a group needs at least one member")
        if len(members) > self.max_members:
            raise ConfigError(
                f"members has {len(members)} members; at most max_members={self.max_members} "
                "are allowed"
            )
        index: dict[str, int] = {}
        for position, member in enumerate(members):
            if member.monitor in index:
                raise ConfigError(
                    f"members[{position}] repeats monitor {member.monitor!r}; "
                    "each monitor may be a member once"
                )
            index[member.monitor] = position
        if not any(member.decides for member in members):
            raise ConfigError(
                "members has no voting member; at least one member must be enabled and not "
                "monitoring-only"
            )
        for name in ("max_age", "future_tolerance", "threshold"):
            value = _seconds(getattr(self, name), name)
            object.__setattr__(self, name, value)
        if not (math.isfinite(self.max_age) and self.max_age > 0.0):
            raise ConfigError(f"max_age is {self.max_age!r}; it must be finite and > 0")
        if not (math.isfinite(self.future_tolerance) and self.future_tolerance >= 0.0):
            raise ConfigError(
                f"future_tolerance is {self.future_tolerance!r}; it must be finite and >= 0"
            )
        if not (0.0 <= self.threshold < 1.0):
            raise ConfigError(f"threshold is {self.threshold!r}; it must be in [0, 1)")
        if self.unknown_votes not in UNKNOWN_VOTES:
            raise ConfigError(
                f"unknown_votes is {self.unknown_votes!r}; it must be one of "
                f"{', '.join(repr(way) for way in UNKNOWN_VOTES)}"
            )
        if not isinstance(self.critical_votes_in_majority, bool):
            raise ArgumentTypeError(
                f"critical_votes_in_majority is {type(self.critical_votes_in_majority).__name__}"
                "; it must be a bool"
            )
        critical = bytes(member.enabled and member.must_be_healthy for member in members)
        voting = bytes(
            member.decides and (self.critical_votes_in_majority or not member.must_be_healthy)
            for member in members
        )
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_critical", critical)
        object.__setattr__(self, "_voting", voting)
        regions = sorted(set(self.regions.values())) if self.regions is not None else []
        object.__setattr__(self, "_region_names", tuple(regions))

    def evaluate(
        self, results: Iterable[MonitorResult], *, now: float
    ) -> dict[str, EndpointHealth]:
        """The health of every endpoint that ``results`` mention, at time ``now``.

        For each (monitor, endpoint, location) the newest result stands (on equal
        ``observed_at``, a down result wins, so the order of ``results`` never matters);
        results ``max_age`` old or older count as unknown. Locations are listed by name.

        Raises:
            InvalidArgument: a result names a monitor that is not a member, is stamped more
                than ``future_tolerance`` after ``now``, or names a location ``regions`` lacks;
                ``now`` is not finite.

        Runtime complexity: O(R + E * L * M) for R results, E endpoints, L locations and M
        members.

        >>> group = MonitorGroup([Member("http"), Member("tcp")], max_age=30.0)
        >>> results = [MonitorResult("http", "web-1", "ams", True, observed_at=0.0)]
        >>> group.evaluate(results, now=29.0)["web-1"].verdict
        <Verdict.UP: 1>
        >>> group.evaluate(results, now=30.0)["web-1"].verdict
        <Verdict.UNKNOWN: 0>
        """
        moment = _seconds(now, "now")
        if not math.isfinite(moment):
            raise InvalidArgument(f"now is {now!r}; it must be finite")
        latest: dict[tuple[str, str, int], MonitorResult] = {}
        for position, result in enumerate(results):
            if not isinstance(result, MonitorResult):
                raise ArgumentTypeError(
                    f"results[{position}] is {type(result).__name__}; it must be a MonitorResult"
                )
            member = self._index.get(result.monitor)
            if member is None:
                raise InvalidArgument(
                    f"results[{position}].monitor is {result.monitor!r}; it is not a member "
                    f"of this group ({', '.join(repr(name) for name in self._index)})"
                )
            if result.observed_at - moment > self.future_tolerance:
                raise InvalidArgument(
                    f"results[{position}].observed_at is {result.observed_at!r}, "
                    f"{result.observed_at - moment:g} s after now={moment!r}; results may be "
                    f"at most future_tolerance={self.future_tolerance:g} s in the future"
                )
            if self.regions is not None and result.location not in self.regions:
                raise InvalidArgument(
                    f"results[{position}].location is {result.location!r}; regions does not "
                    "map it to a region"
                )
            key = (result.endpoint, result.location, member)
            held = latest.get(key)
            if held is None or _newer(result, held):
                latest[key] = result
        endpoints = sorted({key[0] for key in latest})
        locations = sorted({key[1] for key in latest})
        members = len(self.members)
        endpoint_at = {endpoint: i for i, endpoint in enumerate(endpoints)}
        location_at = {location: i for i, location in enumerate(locations)}
        states = bytearray(len(endpoints) * len(locations) * members)
        rtt_sums = [0.0] * (len(endpoints) * len(locations))
        rtt_counts = [0] * (len(endpoints) * len(locations))
        # Sorted keys, so the RTT sums add in one order whatever the order of the results.
        for (endpoint, location, member), result in sorted(latest.items()):
            if moment - result.observed_at >= self.max_age:
                continue  # stale: stays UNKNOWN
            cell = endpoint_at[endpoint] * len(locations) + location_at[location]
            states[cell * members + member] = Verdict.UP if result.up else Verdict.DOWN
            if result.up and result.rtt is not None and self.members[member].decides:
                rtt_sums[cell] += result.rtt
                rtt_counts[cell] += 1
        batch = self._fold(bytes(states), len(endpoints), tuple(locations))
        report: dict[str, EndpointHealth] = {}
        for e, endpoint in enumerate(endpoints):
            detail = []
            total = 0.0
            measured = 0
            for column, location in enumerate(locations):
                cell = e * len(locations) + column
                latency = rtt_sums[cell] / rtt_counts[cell] if rtt_counts[cell] else None
                if latency is not None:
                    total += latency
                    measured += 1
                detail.append(
                    LocationHealth(
                        location,
                        batch.location_verdict(e, column),
                        batch.location_reason(e, column),
                        latency,
                    )
                )
            report[endpoint] = EndpointHealth(
                endpoint,
                batch.verdict(e),
                batch.reason(e),
                tuple(detail),
                total / measured if measured else None,
            )
        return report

    def evaluate_many(
        self,
        states: bytes | bytearray | memoryview | array[int],
        *,
        endpoints: int,
        locations: Sequence[str],
    ) -> BatchVerdicts:
        """Fold a batch of result codes in one kernel call.

        ``states`` holds one :class:`~lbkit.health.Verdict` code (0 unknown, 1 up, 2 down) per
        (endpoint, location, member), endpoint-major then location then member in the group's
        order: ``states[(e * len(locations) + l) * len(members) + m]``. The caller applies
        staleness when encoding (a stale result is 0). No latency is computed here.

        Raises:
            InvalidArgument: ``states`` has the wrong length or a code other than 0, 1, 2;
                ``locations`` repeats a name or names one ``regions`` lacks.

        Runtime complexity: O(E * L * M), in the kernel, without the GIL.

        >>> group = MonitorGroup([Member("http", must_be_healthy=True), Member("tcp")])
        >>> batch = group.evaluate_many(bytes([2, 1, 1, 1]), endpoints=1,
        ...                             locations=["ams", "fra"])
        >>> print(batch.location_reason(0, 0))
        critical-down: critical member 'http' reports down
        >>> batch.verdict(0)
        <Verdict.DOWN: 2>
        """
        if isinstance(endpoints, bool) or not isinstance(endpoints, int):
            raise ArgumentTypeError(f"endpoints is {type(endpoints).__name__}; it must be an int")
        if endpoints < 0:
            raise InvalidArgument(f"endpoints is {endpoints}; it must be >= 0")
        if isinstance(locations, str) or not isinstance(locations, Sequence):
            raise ArgumentTypeError(
                f"locations is {type(locations).__name__}; it must be a sequence of str"
            )
        names = tuple(locations)
        for position, location in enumerate(names):
            if not isinstance(location, str):
                raise ArgumentTypeError(
                    f"locations[{position}] is {type(location).__name__}; it must be a str"
                )
        if len(set(names)) != len(names):
            raise InvalidArgument("locations repeats a name; each location may appear once")
        if not isinstance(states, (bytes, bytearray, memoryview, array)):
            raise ArgumentTypeError(f"states is {type(states).__name__}; it must be bytes-like")
        if isinstance(states, array) and states.itemsize != 1:
            raise ArgumentTypeError(
                f"states is array({states.typecode!r}); it must hold bytes ('B')"
            )
        codes = bytes(states)
        expected = endpoints * len(names) * len(self.members)
        if len(codes) != expected:
            raise InvalidArgument(
                f"states has {len(codes)} codes; endpoints x locations x members is "
                f"{endpoints} x {len(names)} x {len(self.members)} = {expected}"
            )
        # Deleting every valid code leaves exactly the invalid ones, at C speed.
        invalid = codes.translate(None, _VALID_CODES)
        if invalid:
            raise InvalidArgument(
                f"states holds the code {invalid[0]}; codes must be 0 (unknown), 1 (up) or 2 (down)"
            )
        return self._fold(codes, endpoints, names)

    def _fold(self, codes: bytes, endpoints: int, locations: tuple[str, ...]) -> BatchVerdicts:
        if self.regions is None:
            region_of = array("I")
            region_count = 0
        else:
            region_at = {name: i for i, name in enumerate(self._region_names)}
            region_of = array("I", bytes(4 * len(locations)))
            for position, location in enumerate(locations):
                region = self.regions.get(location)
                if region is None:
                    raise InvalidArgument(
                        f"locations[{position}] is {location!r}; regions does not map it to a "
                        "region"
                    )
                region_of[position] = region_at[region]
            region_count = len(self._region_names)
        folded = _kernels.health.fold(
            codes,
            self._critical,
            self._voting,
            int(_UNKNOWN_CODES[self.unknown_votes]),
            endpoints,
            len(locations),
            region_of,
            region_count,
            self.threshold,
        )
        return BatchVerdicts(
            tuple(member.monitor for member in self.members),
            locations,
            self.threshold,
            self.regions is not None,
            *folded,
        )


def _newer(result: MonitorResult, held: MonitorResult) -> bool:
    # A total order on results of one key, so which one stands never depends on their order:
    # later first, then down before up, then the larger RTT.
    return _rank(result) > _rank(held)


def _rank(result: MonitorResult) -> tuple[float, bool, float]:
    return (result.observed_at, not result.up, -1.0 if result.rtt is None else result.rtt)
