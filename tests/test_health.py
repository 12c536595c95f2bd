"""lbkit.health monitor groups: location and endpoint verdicts with reasons, staleness,
latency, the batch fold on both kernel paths, and every rejected input."""

from __future__ import annotations

import math
from array import array
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.health import (
    BatchVerdicts,
    Member,
    MonitorGroup,
    MonitorResult,
    Reason,
    Rule,
    Verdict,
)

UP, DOWN, UNKNOWN = Verdict.UP, Verdict.DOWN, Verdict.UNKNOWN
#: Verdicts ordered from worst to best, for monotonicity.
RANK = {Verdict.DOWN: 0, Verdict.UNKNOWN: 1, Verdict.UP: 2}


def result(
    monitor: str,
    up: bool,
    location: str = "ams",
    *,
    endpoint: str = "web-1",
    at: float = 0.0,
    rtt: float | None = None,
) -> MonitorResult:
    return MonitorResult(monitor, endpoint, location, up, rtt, observed_at=at)


def three() -> list[Member]:
    """An HTTP check (critical), a TCP check and a database check."""
    return [Member("http", must_be_healthy=True), Member("tcp"), Member("db")]


def location_of(
    group: MonitorGroup, results: list[MonitorResult], location: str = "ams", now: float = 1.0
) -> Any:
    report = group.evaluate(results, now=now)["web-1"]
    return next(health for health in report.locations if health.location == location)


# --- location verdicts --------------------------------------------------------------------


def test_failing_critical_member_marks_location_down(impl: Any) -> None:
    """A critical member's down result makes the location DOWN whatever the others say."""
    group = MonitorGroup(three())
    here = location_of(group, [result("http", False), result("tcp", True), result("db", True)])
    assert here.verdict is DOWN
    assert here.reason.rule is Rule.CRITICAL_DOWN
    assert here.reason.member == "http"
    assert str(here.reason) == "critical-down: critical member 'http' reports down"


def test_lowest_critical_member_is_named(impl: Any) -> None:
    """With two critical members down, the reason names the first in the group's order."""
    group = MonitorGroup([Member("b", must_be_healthy=True), Member("a", must_be_healthy=True)])
    here = location_of(group, [result("a", False), result("b", False)])
    assert here.reason.member == "b"


def test_more_than_half_down_is_down_and_a_tie_is_up(impl: Any) -> None:
    """Majority rule: 2 of 3 down is DOWN, 1 of 2 down is UP (a tie is not a majority)."""
    group = MonitorGroup([Member("a"), Member("b"), Member("c")])
    here = location_of(group, [result("a", False), result("b", False), result("c", True)])
    assert here.verdict is DOWN
    assert here.reason == Reason(Rule.MAJORITY_DOWN, count=2, total=3)
    tie = location_of(group, [result("a", False), result("b", True)])
    assert tie.verdict is UP
    assert tie.reason == Reason(Rule.MAJORITY_UP, count=1, total=2)
    assert str(tie.reason) == "majority-up: 1 of 2 voting results are down (not more than half)"


def test_disabled_critical_member_does_not_decide(impl: Any) -> None:
    """A disabled member's results are ignored, even a critical member's down."""
    group = MonitorGroup([Member("http", must_be_healthy=True, enabled=False), Member("tcp")])
    here = location_of(group, [result("http", False), result("tcp", True)])
    assert here.verdict is UP


def test_monitoring_only_member_never_votes(impl: Any) -> None:
    """A monitoring-only member's down result does not count in the majority."""
    group = MonitorGroup([Member("tcp"), Member("probe", monitoring_only=True)])
    here = location_of(group, [result("tcp", True), result("probe", False)])
    assert here.verdict is UP
    assert here.reason.total == 1


def test_critical_votes_in_majority_option(impl: Any) -> None:
    """By default a passing critical member does not vote; with the option it does."""
    members = [Member("http", must_be_healthy=True), Member("tcp")]
    results = [result("http", True), result("tcp", False)]
    assert location_of(MonitorGroup(members), results).verdict is DOWN
    voting = MonitorGroup(members, critical_votes_in_majority=True)
    here = location_of(voting, results)
    assert here.verdict is UP
    assert here.reason == Reason(Rule.MAJORITY_UP, count=1, total=2)


def test_location_without_voting_results_is_unknown(impl: Any) -> None:
    """No current voting result: UNKNOWN, not UP; only passing critical members: UP."""
    group = MonitorGroup(three())
    here = location_of(group, [result("tcp", True, at=-500.0)])
    assert here.verdict is UNKNOWN
    assert here.reason.rule is Rule.NO_VOTES
    critical_only = location_of(group, [result("http", True)])
    assert critical_only.verdict is UP
    assert critical_only.reason.rule is Rule.CRITICAL_UP


@pytest.mark.parametrize(
    ("unknown_votes", "expected"), [("abstain", UP), ("up", UP), ("down", DOWN)]
)
def test_unknown_votes_option(impl: Any, unknown_votes: Any, expected: Verdict) -> None:
    """Missing results abstain by default, or count as up or down when asked."""
    group = MonitorGroup([Member("a"), Member("b"), Member("c")], unknown_votes=unknown_votes)
    assert location_of(group, [result("a", True)]).verdict is expected


def test_unknown_counted_down_trips_critical_member(impl: Any) -> None:
    """With unknown_votes='down', a critical member without a current result is down."""
    group = MonitorGroup(three(), unknown_votes="down")
    here = location_of(group, [result("tcp", True), result("db", True)])
    assert here.reason.rule is Rule.CRITICAL_DOWN


# --- staleness and time ---------------------------------------------------------------------


def test_result_is_unknown_at_exactly_max_age(impl: Any) -> None:
    """A result counts while younger than max_age and is unknown at exactly max_age."""
    group = MonitorGroup([Member("tcp")], max_age=30.0)
    results = [result("tcp", True, at=100.0)]
    assert group.evaluate(results, now=129.999)["web-1"].verdict is UP
    assert group.evaluate(results, now=130.0)["web-1"].verdict is UNKNOWN


def test_newest_result_stands_and_down_wins_a_tie(impl: Any) -> None:
    """The latest result of a (monitor, endpoint, location) replaces older ones; on equal
    times the down result stands."""
    group = MonitorGroup([Member("tcp")])
    assert (
        location_of(group, [result("tcp", False, at=0.0), result("tcp", True, at=0.5)]).verdict
        is UP
    )
    assert (
        location_of(group, [result("tcp", True, at=0.5), result("tcp", False, at=0.0)]).verdict
        is UP
    )
    assert location_of(group, [result("tcp", True), result("tcp", False)]).verdict is DOWN


def test_result_within_future_tolerance_is_accepted(impl: Any) -> None:
    """Clock skew up to future_tolerance is accepted and the result counts."""
    group = MonitorGroup([Member("tcp")], future_tolerance=2.0)
    assert group.evaluate([result("tcp", True, at=12.0)], now=10.0)["web-1"].verdict is UP


# --- endpoint verdicts ----------------------------------------------------------------------


def locations_up(group: MonitorGroup, up: int, down: int) -> Any:
    results = [result("tcp", True, f"up-{i}") for i in range(up)]
    results += [result("tcp", False, f"down-{i}") for i in range(down)]
    return group.evaluate(results, now=1.0)["web-1"]


def test_endpoint_needs_more_than_threshold_of_locations(impl: Any) -> None:
    """Exactly half the locations UP is not healthy; more than half is."""
    group = MonitorGroup([Member("tcp")])
    half = locations_up(group, 2, 2)
    assert half.verdict is DOWN
    assert half.reason == Reason(
        Rule.QUORUM_DOWN, count=2, total=4, threshold=0.5, unit="locations"
    )
    assert str(half.reason) == "quorum-down: 2 of 4 locations are up (not more than 0.5)"
    assert locations_up(group, 3, 2).verdict is UP
    assert not half.healthy
    assert locations_up(group, 3, 2).healthy


def test_threshold_zero_needs_one_location(impl: Any) -> None:
    """threshold=0: one UP location makes the endpoint healthy; none does not."""
    group = MonitorGroup([Member("tcp")], threshold=0.0)
    assert locations_up(group, 1, 9).verdict is UP
    assert locations_up(group, 0, 3).verdict is DOWN


def test_unknown_locations_do_not_count(impl: Any) -> None:
    """Only locations with a verdict count in the quorum; none at all is UNKNOWN."""
    group = MonitorGroup([Member("tcp")], max_age=10.0)
    results = [result("tcp", True, "ams", at=95.0), result("tcp", False, "fra", at=0.0)]
    report = group.evaluate(results, now=100.0)["web-1"]
    assert report.verdict is UP
    assert (report.reason.count, report.reason.total) == (1, 1)
    nothing = group.evaluate(results, now=200.0)["web-1"]
    assert nothing.verdict is UNKNOWN
    assert str(nothing.reason) == "no-verdicts: none of the locations has a verdict"


def test_region_first_fold(impl: Any) -> None:
    """With regions, a majority of data centres decides each region, then the regions vote."""
    regions = {
        "ams": "weu",
        "fra": "weu",
        "lhr": "weu",
        "iad": "enam",
        "ord": "enam",
        "sjc": "wnam",
    }
    group = MonitorGroup([Member("tcp")], regions=regions)
    # weu: 1 of 3 up (down); enam: 2 of 2 up (up); wnam: 1 of 1 up (up) -> 2 of 3 regions.
    ups = {"ams": True, "fra": False, "lhr": False, "iad": True, "ord": True, "sjc": True}
    results = [result("tcp", up, location) for location, up in ups.items()]
    report = group.evaluate(results, now=1.0)["web-1"]
    assert report.verdict is UP
    assert report.reason == Reason(Rule.QUORUM_UP, count=2, total=3, threshold=0.5, unit="regions")
    # Flat, the same results are 4 of 6 locations up; by region a tie of 1 of 2 is down.
    ups["sjc"] = False
    results = [result("tcp", up, location) for location, up in ups.items()]
    assert group.evaluate(results, now=1.0)["web-1"].verdict is DOWN
    assert MonitorGroup([Member("tcp")]).evaluate(results, now=1.0)["web-1"].verdict is DOWN


def test_region_tie_is_down(impl: Any) -> None:
    """A region whose data centres split evenly is not UP."""
    group = MonitorGroup([Member("tcp")], regions={"ams": "weu", "fra": "weu"}, threshold=0.0)
    results = [result("tcp", True, "ams"), result("tcp", False, "fra")]
    assert group.evaluate(results, now=1.0)["web-1"].verdict is DOWN


# --- latency --------------------------------------------------------------------------------


def test_latency_is_mean_rtt_of_deciding_members(impl: Any) -> None:
    """Mean RTT of current up results of enabled, non-monitoring-only members, per location,
    then across locations."""
    group = MonitorGroup(
        [
            Member("http", must_be_healthy=True),
            Member("tcp"),
            Member("probe", monitoring_only=True),
            Member("old", enabled=False),
        ],
        max_age=10.0,
    )
    results = [
        result("http", True, "ams", rtt=0.010),
        result("tcp", True, "ams", rtt=0.030),
        result("probe", True, "ams", rtt=5.0),
        result("old", True, "ams", rtt=5.0),
        result("tcp", False, "fra", rtt=9.0),  # failed probes' RTTs are left out
        result("http", True, "fra", rtt=0.050),
        result("tcp", True, "lhr", rtt=7.0, at=-20.0),  # stale
    ]
    report = group.evaluate(results, now=1.0)["web-1"]
    latencies = {health.location: health.latency for health in report.locations}
    assert latencies == {"ams": pytest.approx(0.020), "fra": 0.050, "lhr": None}
    assert report.latency == pytest.approx(0.035)


# --- the batch API ------------------------------------------------------------------------


def test_evaluate_many_agrees_with_evaluate(impl: Any) -> None:
    """The batch fold gives each endpoint the verdicts and reasons evaluate() gives it."""
    group = MonitorGroup(three())
    codes = bytes([1, 2, 2, 1, 1, 0, 2, 1, 1, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    batch = group.evaluate_many(codes, endpoints=2, locations=["ams", "fra", "lhr"])
    assert isinstance(batch, BatchVerdicts)
    assert batch.endpoint_count == 2
    for endpoint in range(2):
        results = [
            result(member.monitor, codes[(endpoint * 3 + column) * 3 + m] == 1, location)
            for column, location in enumerate(["ams", "fra", "lhr"])
            for m, member in enumerate(group.members)
            if codes[(endpoint * 3 + column) * 3 + m]
        ]
        report = group.evaluate(results, now=1.0)["web-1"]
        assert report.verdict is batch.verdict(endpoint)
        assert report.reason == batch.reason(endpoint)
        by_name = {health.location: health for health in report.locations}
        for column, location in enumerate(["ams", "fra", "lhr"]):
            if location in by_name:
                assert by_name[location].verdict is batch.location_verdict(endpoint, column)
                assert by_name[location].reason == batch.location_reason(endpoint, column)


def test_evaluate_many_accepts_byte_buffers(impl: Any) -> None:
    """bytes, bytearray, memoryview and array('B') give the same verdicts."""
    group = MonitorGroup([Member("a"), Member("b")])
    codes = bytes([1, 2, 2, 2, 0, 0])
    expected = group.evaluate_many(codes, endpoints=3, locations=["x"]).endpoint_verdicts
    for buffer in (bytearray(codes), memoryview(codes), array("B", codes)):
        batch = group.evaluate_many(buffer, endpoints=3, locations=["x"])
        assert batch.endpoint_verdicts == expected
    assert list(expected) == [UP, DOWN, UNKNOWN]


# --- properties -----------------------------------------------------------------------------


@st.composite
def groups(draw: st.DrawFn, *, regions: bool = True) -> MonitorGroup:
    size = draw(st.integers(1, 5))
    members = []
    for i in range(size):
        role = draw(st.sampled_from(["plain", "critical", "monitoring", "disabled"]))
        members.append(
            Member(
                f"m{i}",
                must_be_healthy=role == "critical",
                monitoring_only=role == "monitoring",
                enabled=role != "disabled",
            )
        )
    if not any(member.decides for member in members):
        members[0] = Member("m0")
    mapping = None
    if regions and draw(st.booleans()):
        mapping = {f"l{i}": draw(st.sampled_from("pqr")) for i in range(6)}
    return MonitorGroup(
        members,
        unknown_votes=draw(st.sampled_from(["abstain", "up", "down"])),
        critical_votes_in_majority=draw(st.booleans()),
        threshold=draw(st.sampled_from([0.0, 0.25, 0.5, 2 / 3, 0.75])),
        regions=mapping,
    )


@st.composite
def batches(draw: st.DrawFn) -> tuple[MonitorGroup, bytes, int, list[str]]:
    group = draw(groups())
    endpoints = draw(st.integers(0, 4))
    locations = [f"l{i}" for i in range(draw(st.integers(1, 6)))]
    size = endpoints * len(locations) * len(group.members)
    codes = bytes(draw(st.lists(st.integers(0, 2), min_size=size, max_size=size)))
    return group, codes, endpoints, locations


def all_verdicts(batch: BatchVerdicts) -> list[Verdict]:
    return [Verdict(code) for code in [*batch.location_verdicts, *batch.endpoint_verdicts]]


@given(batches(), st.data())
def test_more_up_results_never_make_a_verdict_worse(
    impl: Any, case: tuple[MonitorGroup, bytes, int, list[str]], data: st.DataObject
) -> None:
    """Monotonicity: turning any results UP never lowers a location or endpoint verdict
    (DOWN < UNKNOWN < UP)."""
    group, codes, endpoints, locations = case
    before = group.evaluate_many(codes, endpoints=endpoints, locations=locations)
    flips = data.draw(st.sets(st.integers(0, max(len(codes) - 1, 0))))
    better = bytearray(codes)
    for cell in flips:
        if cell < len(better):
            better[cell] = Verdict.UP
    after = group.evaluate_many(bytes(better), endpoints=endpoints, locations=locations)
    for old, new in zip(all_verdicts(before), all_verdicts(after), strict=True):
        assert RANK[new] >= RANK[old]


@given(batches(), st.data())
def test_monitoring_only_and_disabled_members_never_change_a_verdict(
    impl: Any, case: tuple[MonitorGroup, bytes, int, list[str]], data: st.DataObject
) -> None:
    """Adding a monitoring-only or disabled member, whatever it reports, changes nothing."""
    group, codes, endpoints, locations = case
    extra = data.draw(
        st.sampled_from(
            [
                Member("extra", monitoring_only=True),
                Member("extra", enabled=False),
                Member("extra", must_be_healthy=True, enabled=False),
            ]
        )
    )
    members = len(group.members)
    wider = MonitorGroup(
        [*group.members, extra],
        max_members=members + 1,
        unknown_votes=group.unknown_votes,
        critical_votes_in_majority=group.critical_votes_in_majority,
        threshold=group.threshold,
        regions=group.regions,
    )
    cells = len(codes) // members if members else 0
    extra_codes = data.draw(st.lists(st.integers(0, 2), min_size=cells, max_size=cells))
    widened = bytearray()
    for cell in range(cells):
        widened += codes[cell * members : (cell + 1) * members]
        widened.append(extra_codes[cell])
    before = group.evaluate_many(codes, endpoints=endpoints, locations=locations)
    after = wider.evaluate_many(bytes(widened), endpoints=endpoints, locations=locations)
    assert all_verdicts(before) == all_verdicts(after)


result_strategy = st.builds(
    MonitorResult,
    st.sampled_from(["m0", "m1", "m2"]),
    st.sampled_from(["e0", "e1"]),
    st.sampled_from(["l0", "l1", "l2"]),
    st.booleans(),
    st.one_of(st.none(), st.sampled_from([0.001, 0.01, 0.1, 0.3])),
    observed_at=st.integers(0, 20).map(float),
)


roles = st.sampled_from(
    [
        Member("m"),
        Member("m", must_be_healthy=True),
        Member("m", monitoring_only=True),
        Member("m", enabled=False),
    ]
)


@given(
    st.lists(roles, min_size=3, max_size=3),
    st.sampled_from(["abstain", "up", "down"]),
    st.lists(result_strategy, max_size=25),
    st.randoms(),
)
def test_order_of_results_does_not_matter(
    impl: Any, roles: list[Member], unknown_votes: Any, results: list[MonitorResult], rng: Any
) -> None:
    """evaluate() gives identical reports (latencies included) for any order of results."""
    members = [attrs.evolve(member, monitor=f"m{i}") for i, member in enumerate(roles)]
    members[0] = Member("m0")
    group = MonitorGroup(members, max_age=8.0, unknown_votes=unknown_votes)
    shuffled = list(results)
    rng.shuffle(shuffled)
    assert group.evaluate(results, now=20.0) == group.evaluate(shuffled, now=20.0)


@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.booleans(), st.sampled_from(["m0", "m1"])), max_size=12
    ),
    st.integers(1, 30),
    st.integers(0, 40),
)
def test_stale_results_are_unknown_from_exactly_max_age(
    impl: Any, stamps: list[tuple[int, bool, str]], max_age: int, now: int
) -> None:
    """Evaluating with stale results equals evaluating without them: a result with
    now - observed_at >= max_age is unknown."""
    group = MonitorGroup(
        [Member("m0"), Member("m1")], max_age=float(max_age), future_tolerance=100.0
    )
    results = [result(monitor, up, at=float(at)) for at, up, monitor in stamps]
    # The newest result per monitor stands; if it is stale, that monitor has nothing current.
    newest: dict[str, MonitorResult] = {}
    for item in sorted(results, key=lambda r: (r.observed_at, not r.up)):
        newest[item.monitor] = item
    fresh = [item for item in newest.values() if now - item.observed_at < max_age]
    whole = group.evaluate(results, now=float(now)).get("web-1")
    trimmed = group.evaluate(fresh, now=float(now)).get("web-1")
    if trimmed is None:
        assert whole is None or whole.verdict is UNKNOWN
    else:
        assert whole is not None
        assert (whole.verdict, whole.reason) == (trimmed.verdict, trimmed.reason)


def naive_verdicts(
    group: MonitorGroup, codes: bytes, endpoints: int, locations: list[str]
) -> list[Verdict]:
    """The rules of lbkit.health.group, written out with lists and no kernel."""
    members = group.members
    as_vote = {"abstain": UNKNOWN, "up": UP, "down": DOWN}[group.unknown_votes]
    location_verdicts: list[Verdict] = []
    endpoint_verdicts: list[Verdict] = []
    for endpoint in range(endpoints):
        mine: list[Verdict] = []
        for column in range(len(locations)):
            start = (endpoint * len(locations) + column) * len(members)
            votes = [Verdict(code) or as_vote for code in codes[start : start + len(members)]]
            critical = [
                vote
                for member, vote in zip(members, votes, strict=True)
                if member.enabled and member.must_be_healthy
            ]
            voting = [
                vote
                for member, vote in zip(members, votes, strict=True)
                if member.decides
                and (group.critical_votes_in_majority or not member.must_be_healthy)
                and vote is not UNKNOWN
            ]
            if DOWN in critical:
                verdict = DOWN
            elif not voting:
                verdict = UP if UP in critical else UNKNOWN
            else:
                verdict = DOWN if voting.count(DOWN) > len(voting) / 2 else UP
            mine.append(verdict)
        location_verdicts += mine
        if group.regions is None:
            decided = [verdict for verdict in mine if verdict is not UNKNOWN]
        else:
            by_region: dict[str, list[Verdict]] = {}
            for location, verdict in zip(locations, mine, strict=True):
                if verdict is not UNKNOWN:
                    by_region.setdefault(group.regions[location], []).append(verdict)
            decided = [
                UP if region.count(UP) > len(region) / 2 else DOWN for region in by_region.values()
            ]
        if not decided:
            endpoint_verdicts.append(UNKNOWN)
        else:
            healthy = decided.count(UP) > group.threshold * len(decided)
            endpoint_verdicts.append(UP if healthy else DOWN)
    return location_verdicts + endpoint_verdicts


@given(batches())
def test_fold_follows_the_written_rules(
    impl: Any, case: tuple[MonitorGroup, bytes, int, list[str]]
) -> None:
    """evaluate_many agrees with a naive transcription of the rules on every verdict."""
    group, codes, endpoints, locations = case
    batch = group.evaluate_many(codes, endpoints=endpoints, locations=locations)
    assert all_verdicts(batch) == naive_verdicts(group, codes, endpoints, locations)


# --- the two kernels ------------------------------------------------------------------------


@st.composite
def kernel_inputs(draw: st.DrawFn) -> tuple[Any, ...]:
    members = draw(st.integers(1, 6))
    endpoints = draw(st.integers(0, 5))
    locations = draw(st.integers(0, 7))
    size = endpoints * locations * members
    states = bytes(draw(st.lists(st.integers(0, 2), min_size=size, max_size=size)))
    critical = bytes(draw(st.lists(st.integers(0, 1), min_size=members, max_size=members)))
    voting = bytes(draw(st.lists(st.integers(0, 1), min_size=members, max_size=members)))
    region_count = draw(st.integers(0, 3))
    region_of = array(
        "I",
        draw(st.lists(st.integers(0, region_count - 1), min_size=locations, max_size=locations))
        if region_count
        else [],
    )
    threshold = draw(st.sampled_from([0.0, 0.1, 1 / 3, 0.5, 0.6, 2 / 3, 0.99]))
    unknown_vote = draw(st.integers(0, 2))
    return (
        states,
        critical,
        voting,
        unknown_vote,
        endpoints,
        locations,
        region_of,
        region_count,
        threshold,
    )


@given(kernel_inputs())
def test_fast_fold_matches_pure(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    arguments: tuple[Any, ...],
) -> None:
    """The compiled fold returns exactly the reference fold's arrays, type codes included."""
    fast = fast_kernels["health"].fold(*arguments)
    pure = pure_kernels["health"].fold(*arguments)
    assert [(a.typecode, a.tolist()) for a in fast] == [(a.typecode, a.tolist()) for a in pure]


def test_fast_fold_matches_pure_on_a_large_batch(
    fast_kernels: dict[str, ModuleType], pure_kernels: dict[str, ModuleType]
) -> None:
    """On 40 locations x 5 members x 50 endpoints of pseudo-random codes, both folds agree."""
    size = 50 * 40 * 5
    states = bytes((i * 2654435761 >> 7) % 3 for i in range(size))
    region_of = array("I", [i % 4 for i in range(40)])
    for regions in (0, 4):
        arguments = (
            states,
            b"\x01\x00\x00\x00\x00",
            b"\x00\x01\x01\x01\x00",
            0,
            50,
            40,
            region_of if regions else array("I"),
            regions,
            0.5,
        )
        fast = fast_kernels["health"].fold(*arguments)
        pure = pure_kernels["health"].fold(*arguments)
        assert [a.tobytes() for a in fast] == [a.tobytes() for a in pure]


# --- errors ---------------------------------------------------------------------------------


def test_results_from_unknown_members_are_rejected(impl: Any) -> None:
    """A result of a monitor that is not a member raises InvalidArgument naming it."""
    group = MonitorGroup([Member("tcp")])
    with pytest.raises(
        InvalidArgument,
        match=r"^results\[0\]\.monitor is 'http'; it is not a member of this group \('tcp'\)$",
    ):
        group.evaluate([result("http", True)], now=1.0)


def test_duplicate_members_are_rejected() -> None:
    """Two members with the same monitor raise ConfigError."""
    with pytest.raises(ConfigError, match=r"^members\[1\] repeats monitor 'tcp'"):
        MonitorGroup([Member("tcp"), Member("tcp", monitoring_only=True)])


def test_too_many_members_are_rejected() -> None:
    """More members than max_members raise ConfigError; raising the limit allows them."""
    members = [Member(f"m{i}") for i in range(6)]
    with pytest.raises(ConfigError, match=r"^members has 6 members; at most max_members=5"):
        MonitorGroup(members)
    assert len(MonitorGroup(members, max_members=6).members) == 6


@pytest.mark.parametrize(
    "members",
    [
        [],
        [Member("a", monitoring_only=True)],
        [Member("a", enabled=False), Member("b", monitoring_only=True)],
    ],
)
def test_group_without_a_voting_member_is_rejected(members: list[Member]) -> None:
    """An empty group, or one whose members are all disabled or monitoring-only, is rejected."""
    with pytest.raises(ConfigError, match=r"^members (is empty|has no voting member)"):
        MonitorGroup(members)


@pytest.mark.parametrize("rtt", [math.nan, -0.001, math.inf, -math.inf])
def test_bad_rtt_is_rejected(rtt: float) -> None:
    """NaN, infinite or negative RTTs raise InvalidArgument."""
    with pytest.raises(InvalidArgument, match=r"^rtt is .*; it must be None or finite and >= 0$"):
        result("tcp", True, rtt=rtt)


@pytest.mark.parametrize("at", [math.nan, math.inf])
def test_non_finite_observation_time_is_rejected(at: float) -> None:
    """observed_at must be finite."""
    with pytest.raises(InvalidArgument, match=r"^observed_at is .*; it must be finite$"):
        result("tcp", True, at=at)


def test_results_from_the_future_beyond_tolerance_are_rejected(impl: Any) -> None:
    """A result stamped more than future_tolerance after now raises InvalidArgument."""
    group = MonitorGroup([Member("tcp")], future_tolerance=2.0)
    with pytest.raises(InvalidArgument, match=r"at most future_tolerance=2 s in the future$"):
        group.evaluate([result("tcp", True, at=12.5)], now=10.0)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("up", ArgumentTypeError, r"^up is str; it must be a bool$"),
        (1, ArgumentTypeError, r"^up is int; it must be a bool$"),
    ],
)
def test_result_types_are_checked(value: object, error: type[Exception], message: str) -> None:
    """A result's fields must have their types."""
    with pytest.raises(error, match=message):
        MonitorResult("tcp", "web-1", "ams", value, observed_at=0.0)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=r"^monitor is int; it must be a str$"):
        MonitorResult(7, "web-1", "ams", True, observed_at=0.0)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=r"^rtt is str; it must be a float$"):
        MonitorResult("tcp", "web-1", "ams", True, "1", observed_at=0.0)  # type: ignore[arg-type]


def test_critical_monitoring_only_member_is_rejected() -> None:
    """A member cannot be both critical and monitoring-only."""
    with pytest.raises(ConfigError, match=r"must_be_healthy=True and monitoring_only=True"):
        Member("http", must_be_healthy=True, monitoring_only=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": 1.0}, r"^threshold is 1.0; it must be in \[0, 1\)$"),
        ({"threshold": -0.1}, r"^threshold is -0.1; it must be in \[0, 1\)$"),
        ({"threshold": math.nan}, r"^threshold is nan; it must be in \[0, 1\)$"),
        ({"max_age": 0.0}, r"^max_age is 0.0; it must be finite and > 0$"),
        ({"max_age": math.inf}, r"^max_age is inf; it must be finite and > 0$"),
        ({"future_tolerance": -1.0}, r"^future_tolerance is -1.0; it must be finite and >= 0$"),
        ({"unknown_votes": "maybe"}, r"^unknown_votes is 'maybe'; it must be one of"),
        ({"max_members": 0}, r"^max_members is 0; it must be >= 1$"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, Any], message: str) -> None:
    """Each option out of its range raises ConfigError naming it."""
    with pytest.raises(ConfigError, match=message):
        MonitorGroup([Member("tcp")], **options)


def test_bad_member_types_are_rejected() -> None:
    """members must be an iterable of Member."""
    with pytest.raises(ArgumentTypeError, match=r"^members\[0\] is str; it must be a Member$"):
        MonitorGroup(["tcp"])  # type: ignore[list-item]
    with pytest.raises(ArgumentTypeError, match=r"^critical_votes_in_majority is int"):
        MonitorGroup([Member("tcp")], critical_votes_in_majority=1)  # type: ignore[arg-type]


def test_locations_missing_from_regions_are_rejected(impl: Any) -> None:
    """With regions, every location evaluated must map to a region."""
    group = MonitorGroup([Member("tcp")], regions={"ams": "weu"})
    with pytest.raises(InvalidArgument, match=r"^results\[0\]\.location is 'fra'; regions"):
        group.evaluate([result("tcp", True, "fra")], now=1.0)
    with pytest.raises(InvalidArgument, match=r"^locations\[1\] is 'fra'; regions"):
        group.evaluate_many(bytes(2), endpoints=1, locations=["ams", "fra"])


def test_evaluate_many_rejects_bad_batches(impl: Any) -> None:
    """Wrong lengths, bad codes, repeated locations and wrong types raise clear errors."""
    group = MonitorGroup([Member("a"), Member("b")])
    with pytest.raises(
        InvalidArgument,
        match=r"^states has 3 codes; endpoints x locations x "
        r"members is 1 x 1 x 2 = 2$",
    ):
        group.evaluate_many(bytes(3), endpoints=1, locations=["x"])
    with pytest.raises(InvalidArgument, match=r"^states holds the code 3; codes must be"):
        group.evaluate_many(bytes([1, 3]), endpoints=1, locations=["x"])
    with pytest.raises(InvalidArgument, match=r"^locations repeats a name"):
        group.evaluate_many(bytes(4), endpoints=1, locations=["x", "x"])
    with pytest.raises(InvalidArgument, match=r"^endpoints is -1; it must be >= 0$"):
        group.evaluate_many(b"", endpoints=-1, locations=["x"])
    with pytest.raises(ArgumentTypeError, match=r"^states is array\('I'\); it must hold bytes"):
        group.evaluate_many(array("I", [1, 1]), endpoints=1, locations=["x"])
    with pytest.raises(ArgumentTypeError, match=r"^states is list; it must be bytes-like$"):
        group.evaluate_many([1, 1], endpoints=1, locations=["x"])  # type: ignore[arg-type]


def test_non_finite_now_is_rejected(impl: Any) -> None:
    """now must be finite."""
    with pytest.raises(InvalidArgument, match=r"^now is nan; it must be finite$"):
        MonitorGroup([Member("tcp")]).evaluate([], now=math.nan)
