"""lbkit.health hysteresis, pools and events: the stateful control-plane pieces (pure Python,
no kernels, so the tests do not take ``impl``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, UnknownServer
from lbkit.health.events import EventLog, HealthEvent, SubscriberError
from lbkit.health.hysteresis import BurstReport, Hysteresis
from lbkit.health.pools import PoolHealth

# -- events ----------------------------------------------------------------------------------


def event(at: float = 1.0, subject: Hashable = "web-1") -> HealthEvent:
    return HealthEvent("endpoint", subject, "up", "down", at, "test")


def test_event_log_keeps_a_bounded_list_of_recent_events() -> None:
    """The log keeps the newest `maxlen` events, oldest first, and counts every emission."""
    log = EventLog(maxlen=3)
    for at in range(5):
        log.emit(event(float(at)))
    assert [e.at for e in log.recent] == [2.0, 3.0, 4.0]
    assert len(log) == 3
    assert log.emitted == 5
    assert log.maxlen == 3
    log._check()


def test_subscribers_receive_every_event_and_can_be_removed() -> None:
    """Subscribed callbacks see each event in order; an unsubscribed one sees no more."""
    log = EventLog()
    first: list[HealthEvent] = []
    second: list[HealthEvent] = []
    log.subscribe(first.append)
    log.subscribe(second.append)
    log.emit(event(1.0))
    log.unsubscribe(first.append)
    log.emit(event(2.0))
    assert [e.at for e in first] == [1.0]
    assert [e.at for e in second] == [1.0, 2.0]
    assert log.subscribers == (second.append,)


def test_a_raising_subscriber_does_not_stop_the_others() -> None:
    """Every subscriber sees every event; the failures are raised together afterwards."""
    log = EventLog()
    seen: list[float] = []

    def broken(_: HealthEvent) -> None:
        raise RuntimeError("pager down")

    log.subscribe(broken)
    log.subscribe(lambda e: seen.append(e.at))
    with pytest.raises(SubscriberError, match=r"2 subscriber call\(s\) raised") as caught:
        log.emit_all([event(1.0), event(2.0)])
    assert seen == [1.0, 2.0]
    assert [e.at for e in log.recent] == [1.0, 2.0]
    assert len(caught.value.errors) == 2
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert isinstance(caught.value, RuntimeError)


def test_a_raising_subscriber_leaves_the_emitter_state_committed() -> None:
    """Hysteresis and pools commit their new state before emitting, so a failing subscriber
    never leaves a verdict half-changed."""
    log = EventLog()

    def broken(_: HealthEvent) -> None:
        raise RuntimeError("boom")

    log.subscribe(broken)
    hysteresis = Hysteresis(events=log)
    with pytest.raises(SubscriberError):
        hysteresis.observe("http", "web-1", "dc-1", False, now=0.0)
    assert hysteresis.member_up("http", "web-1", "dc-1") is False
    pool = PoolHealth(["a", "b"], events=log)
    with pytest.raises(SubscriberError):
        pool.update({"a": False, "b": False}, now=0.0)
    assert pool.report().healthy is False
    assert [e.kind for e in log.recent] == ["member", "pool", "panic"]


@pytest.mark.parametrize(
    ("maxlen", "error", "message"),
    [
        (0, ConfigError, "maxlen is 0; it must be an int >= 1"),
        (-3, ConfigError, "maxlen is -3; it must be an int >= 1"),
        (1.5, ArgumentTypeError, "maxlen is float; it must be an int"),
        (True, ArgumentTypeError, "maxlen is bool; it must be an int"),
    ],
)
def test_event_log_rejects_bad_maxlen(maxlen: Any, error: type[Exception], message: str) -> None:
    """maxlen is an int >= 1; the message names it and the rule."""
    with pytest.raises(error, match=f"^{message}$"):
        EventLog(maxlen=maxlen)


def test_event_log_rejects_bad_subscriptions_and_events() -> None:
    """Non-callables, double subscriptions, unknown unsubscriptions and non-events are errors."""
    log = EventLog()
    with pytest.raises(ArgumentTypeError, match="callback is int; subscribers must be callable"):
        log.subscribe(3)  # type: ignore[arg-type]
    log.subscribe(print)
    with pytest.raises(InvalidArgument, match="already subscribed"):
        log.subscribe(print)
    log.unsubscribe(print)
    with pytest.raises(InvalidArgument, match="is not subscribed"):
        log.unsubscribe(print)
    with pytest.raises(ArgumentTypeError, match=r"events\[1\] is str; it must be a HealthEvent"):
        log.emit_all([event(), "oops"])  # type: ignore[list-item]
    assert log.emitted == 0


# -- hysteresis: validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"consecutive_up": 0}, ConfigError, "consecutive_up is 0; it must be an int >= 1"),
        ({"consecutive_down": -2}, ConfigError, "consecutive_down is -2; it must be an int >= 1"),
        ({"consecutive_up": "2"}, ArgumentTypeError, "consecutive_up is str; it must be an int"),
        ({"consecutive_down": 2.0}, ArgumentTypeError, "consecutive_down is float"),
        ({"min_dwell": -1.0}, ConfigError, "min_dwell is -1.0; durations must be finite and >= 0"),
        ({"min_dwell": math.nan}, ConfigError, "min_dwell is nan; durations must be finite"),
        ({"failback_delay": math.inf}, ConfigError, "failback_delay is inf; durations must be"),
        ({"failback_delay": "5"}, ArgumentTypeError, "failback_delay is str; it must be a number"),
        ({"burst_limit": 0, "burst_window": 1.0}, ConfigError, "burst_limit is 0; it must be"),
        ({"burst_limit": 3}, ConfigError, "burst_window is 0.0; it must be > 0 when burst_limit"),
        ({"burst_window": -1.0}, ConfigError, "burst_window is -1.0; durations must be"),
        ({"initially_up": 1}, ArgumentTypeError, "initially_up is int; it must be a bool"),
        ({"events": []}, ArgumentTypeError, "events is list; it must be an EventLog"),
    ],
)
def test_hysteresis_rejects_bad_configuration(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Thresholds are ints >= 1 and durations finite and >= 0; the message names the argument."""
    with pytest.raises(error, match=f"^{message}"):
        Hysteresis(**kwargs)


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
def test_hysteresis_rejects_non_finite_times(now: float) -> None:
    """NaN and infinite times are rejected with a message naming `now`."""
    hysteresis = Hysteresis()
    with pytest.raises(InvalidArgument, match=r"^now is .*; times must be finite$"):
        hysteresis.observe("m", "e", "l", True, now=now)
    with pytest.raises(InvalidArgument, match=r"^now is .*; times must be finite$"):
        hysteresis.update_endpoint("e", True, now=now)


def test_hysteresis_rejects_time_going_backwards() -> None:
    """A `now` earlier than a previous one is an error; an equal one is fine."""
    hysteresis = Hysteresis()
    hysteresis.observe("m", "e", "l", True, now=10.0)
    hysteresis.update_endpoint("e", True, now=10.0)
    with pytest.raises(
        InvalidArgument,
        match=r"^now is 9.5, before the previous now 10.0; time must not go backwards$",
    ):
        hysteresis.update_endpoint("e", True, now=9.5)
    with pytest.raises(InvalidArgument, match="time must not go backwards"):
        hysteresis.advance(now=1.0)
    with pytest.raises(ArgumentTypeError, match="now is str; it must be a number"):
        hysteresis.observe("m", "e", "l", True, now="11")  # type: ignore[arg-type]


def test_hysteresis_rejects_bad_observations() -> None:
    """Observations are real bools (not ints that an enum could alias) on hashable keys."""
    hysteresis = Hysteresis()
    with pytest.raises(ArgumentTypeError, match="up is 'yes'; it must be a bool"):
        hysteresis.observe("m", "e", "l", "yes", now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="up is 2; it must be a bool"):
        hysteresis.update_endpoint("e", 2, now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="unhashable"):
        hysteresis.observe(["m"], "e", "l", True, now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="up is 0; it must be a bool"):
        hysteresis.observe("m", "e", "l", 0, now=0.0)  # type: ignore[arg-type]
    assert hysteresis.observe("m", "e", "l", False, now=0.0) is False


# -- hysteresis: member streaks ----------------------------------------------------------------


def test_a_member_flips_only_after_consecutive_opposite_observations() -> None:
    """With consecutive_down=3 and consecutive_up=2, a down member needs 3 downs in a row and
    comes back after 2 ups in a row; an interruption restarts the count."""
    hysteresis = Hysteresis(consecutive_up=2, consecutive_down=3)
    observations = [False, False, True, False, False, False, True, False, True, True]
    states = [
        hysteresis.observe("http", "web", "dc", up, now=float(t))
        for t, up in enumerate(observations)
    ]
    assert states == [True, True, True, True, True, False, False, False, False, True]
    hysteresis._check()


def test_members_are_tracked_per_member_endpoint_and_location() -> None:
    """Streaks of different members, endpoints or locations never mix."""
    hysteresis = Hysteresis(consecutive_down=2)
    hysteresis.observe("http", "web", "dc-1", False, now=0.0)
    hysteresis.observe("tcp", "web", "dc-1", False, now=1.0)
    hysteresis.observe("http", "db", "dc-1", False, now=2.0)
    hysteresis.observe("http", "web", "dc-2", False, now=3.0)
    assert hysteresis.member_up("http", "web", "dc-1")
    assert not hysteresis.observe("http", "web", "dc-1", False, now=4.0)
    assert hysteresis.member_up("http", "web", "dc-2")


def _majority_up(states: list[bool]) -> bool:
    # A stand-in for a monitor group's fold: down only if more than half are down.
    return sum(not up for up in states) * 2 <= len(states)


@given(
    consecutive_up=st.integers(2, 6),
    consecutive_down=st.integers(2, 6),
    starts=st.lists(st.booleans(), min_size=1, max_size=4),
    initially_up=st.booleans(),
    probes=st.integers(1, 60),
)
def test_a_member_alternating_on_every_probe_never_changes_the_endpoint_verdict(
    consecutive_up: int,
    consecutive_down: int,
    starts: list[bool],
    initially_up: bool,
    probes: int,
) -> None:
    """The issue's bar: with both thresholds >= 2, members that alternate up/down on every
    probe (in any phase) never flip, so the endpoint verdict folded from them never changes."""
    events = EventLog()
    hysteresis = Hysteresis(
        consecutive_up=consecutive_up,
        consecutive_down=consecutive_down,
        initially_up=initially_up,
        events=events,
    )
    members = [f"m{i}" for i in range(len(starts))]
    verdicts = set()
    for probe in range(probes):
        states = [
            hysteresis.observe(member, "web", "dc", start != (probe % 2 == 1), now=float(probe))
            for member, start in zip(members, starts, strict=True)
        ]
        assert states == [initially_up] * len(members)
        verdicts.add(hysteresis.update_endpoint("web", _majority_up(states), now=float(probe)))
        hysteresis._check()
    assert verdicts == {initially_up}
    assert events.recent == ()


def _naive_member_states(
    observations: list[bool], consecutive_up: int, consecutive_down: int, initially_up: bool
) -> list[bool]:
    # The definition, restated: the state flips when the observations since the last flip
    # end in a run of `threshold` opposite values.
    state, since_flip, result = initially_up, [], []
    for up in observations:
        since_flip.append(up)
        threshold = consecutive_up if not state else consecutive_down
        tail = since_flip[-threshold:]
        if len(tail) == threshold and all(value != state for value in tail):
            state, since_flip = not state, []
        result.append(state)
    return result


@given(
    observations=st.lists(st.booleans(), max_size=40),
    consecutive_up=st.integers(1, 4),
    consecutive_down=st.integers(1, 4),
    initially_up=st.booleans(),
)
def test_member_states_follow_the_consecutive_rule(
    observations: list[bool], consecutive_up: int, consecutive_down: int, initially_up: bool
) -> None:
    """A member's filtered state matches a naive restatement of the consecutive rule."""
    hysteresis = Hysteresis(
        consecutive_up=consecutive_up, consecutive_down=consecutive_down, initially_up=initially_up
    )
    states = [
        hysteresis.observe("m", "e", "l", up, now=float(t)) for t, up in enumerate(observations)
    ]
    assert states == _naive_member_states(
        observations, consecutive_up, consecutive_down, initially_up
    )


@given(
    sequences=st.dictionaries(
        st.tuples(st.sampled_from("ab"), st.sampled_from("xyz"), st.sampled_from("12")),
        st.lists(st.booleans(), max_size=8),
        max_size=6,
    ),
    order=st.randoms(use_true_random=False),
)
def test_interleaving_members_does_not_change_their_states(
    sequences: dict[tuple[str, str, str], list[bool]], order: Any
) -> None:
    """Without burst suppression, how observations of different members interleave does not
    change any member's final state."""
    in_order = Hysteresis(consecutive_up=2, consecutive_down=3)
    for key, observations in sequences.items():
        for up in observations:
            in_order.observe(*key, up, now=0.0)
    stream = [(key, up_index) for key, obs in sequences.items() for up_index in range(len(obs))]
    order.shuffle(stream)
    # Shuffle across keys but keep each key's own order.
    positions = dict.fromkeys(sequences, 0)
    shuffled = Hysteresis(consecutive_up=2, consecutive_down=3)
    for key, _ in stream:
        shuffled.observe(*key, sequences[key][positions[key]], now=0.0)
        positions[key] += 1
    for key in sequences:
        assert shuffled.member_up(*key) == in_order.member_up(*key)


# -- hysteresis: endpoint dwell and failback ---------------------------------------------------


def test_min_dwell_holds_a_changed_verdict_until_exactly_min_dwell() -> None:
    """A verdict changed at t holds until t + min_dwell, inclusive of the boundary."""
    hysteresis = Hysteresis(min_dwell=10.0)
    assert hysteresis.update_endpoint("e", True, now=0.0)
    assert not hysteresis.update_endpoint("e", False, now=100.0)
    assert not hysteresis.update_endpoint("e", True, now=109.999)
    assert hysteresis.update_endpoint("e", True, now=110.0)
    assert hysteresis.update_endpoint("e", False, now=119.0)
    # The raw verdict came back before the dwell ended: the change never happens.
    assert hysteresis.update_endpoint("e", True, now=125.0)
    hysteresis._check()


def test_failback_waits_for_an_unbroken_recovery_of_failback_delay() -> None:
    """DOWN returns to UP only once the raw verdict has been UP for failback_delay without a
    break; a relapse restarts the wait. Going DOWN is immediate."""
    events = EventLog()
    hysteresis = Hysteresis(failback_delay=30.0, events=events)
    assert hysteresis.update_endpoint("e", True, now=0.0)
    assert not hysteresis.update_endpoint("e", False, now=5.0)
    assert not hysteresis.update_endpoint("e", True, now=10.0)
    assert not hysteresis.update_endpoint("e", True, now=39.0)
    assert not hysteresis.update_endpoint("e", False, now=39.5)  # relapse
    assert not hysteresis.update_endpoint("e", True, now=40.0)
    assert not hysteresis.update_endpoint("e", True, now=69.999)
    assert hysteresis.update_endpoint("e", True, now=70.0)
    assert [(e.old_state, e.new_state, e.at) for e in events.recent] == [
        ("up", "down", 5.0),
        ("down", "up", 70.0),
    ]
    assert events.recent[1].reason == "up since 40 (failback_delay 30s)"
    hysteresis._check()


def test_advance_publishes_held_changes_when_due() -> None:
    """A held change is published by advance() once due, with an endpoint event."""
    events = EventLog()
    hysteresis = Hysteresis(min_dwell=5.0, failback_delay=2.0, events=events)
    hysteresis.update_endpoint("a", False, now=0.0)
    hysteresis.update_endpoint("b", True, now=0.0)
    hysteresis.update_endpoint("a", True, now=1.0)
    hysteresis.update_endpoint("b", False, now=1.0)
    assert hysteresis.advance(now=4.9) == []
    assert set(hysteresis.advance(now=5.0)) == {"a", "b"}
    assert hysteresis.endpoint_up("a")
    assert not hysteresis.endpoint_up("b")
    assert {(e.subject, e.new_state, e.at) for e in events.recent} == {
        ("a", "up", 5.0),
        ("b", "down", 5.0),
    }


def test_an_initially_down_endpoint_recovers_through_failback() -> None:
    """With initially_up=False, an endpoint's first UP waits failback_delay like any recovery."""
    hysteresis = Hysteresis(initially_up=False, failback_delay=3.0)
    assert not hysteresis.endpoint_up("e")
    assert not hysteresis.update_endpoint("e", True, now=1.0)
    assert hysteresis.update_endpoint("e", True, now=4.0)


@given(
    min_dwell=st.integers(0, 20),
    failback_delay=st.integers(0, 20),
    down_at=st.integers(0, 50),
    gap=st.integers(0, 30),
    offset=st.integers(-2, 2),
)
def test_dwell_and_failback_boundaries_are_exact(
    min_dwell: int, failback_delay: int, down_at: int, gap: int, offset: int
) -> None:
    """After going DOWN at `down_at` and raw UP at `down_at + gap`, the endpoint is UP at time
    t exactly when t >= max(down_at + min_dwell, down_at + gap + failback_delay)."""
    hysteresis = Hysteresis(min_dwell=float(min_dwell), failback_delay=float(failback_delay))
    hysteresis.update_endpoint("e", True, now=0.0)
    hysteresis.advance(now=float(down_at + 1000))  # the first verdict's dwell is long over
    base = down_at + 1000
    assert not hysteresis.update_endpoint("e", False, now=float(base))
    recovered = base + gap
    hysteresis.update_endpoint("e", True, now=float(recovered))
    due = max(base + min_dwell, recovered + failback_delay)
    probe = max(recovered, due + offset)
    assert hysteresis.update_endpoint("e", True, now=float(probe)) == (probe >= due)


# -- hysteresis: burst suppression -----------------------------------------------------------


def test_a_burst_from_one_location_is_suppressed_and_reported() -> None:
    """A health agent restart: one location reports many endpoints down at once. After
    burst_limit flips in the window its changes are held for burst_window seconds, counted,
    and announced with a burst event; other locations are unaffected."""
    events = EventLog()
    hysteresis = Hysteresis(burst_limit=3, burst_window=60.0, events=events)
    endpoints = [f"web-{i}" for i in range(6)]
    states = [hysteresis.observe("http", e, "dc-1", False, now=100.0) for e in endpoints]
    assert states == [False, False, False, True, True, True]
    assert hysteresis.suppressed("dc-1", now=100.0)
    assert not hysteresis.suppressed("dc-2", now=100.0)
    assert not hysteresis.observe("http", "web-0", "dc-2", False, now=101.0)
    # The agent is back: its ups are ignored too while suppressed (each counted).
    assert not hysteresis.observe("http", "web-0", "dc-1", True, now=110.0)
    report = hysteresis.burst_report(now=110.0)
    assert report == BurstReport(
        activations=1, suppressed_changes=4, suppressed_locations=(("dc-1", 160.0),)
    )
    burst = [e for e in events.recent if e.kind == "burst"]
    assert [(e.subject, e.new_state, e.at) for e in burst] == [("dc-1", "on", 100.0)]
    assert "more than 3 member changes from 'dc-1' within 60s" in burst[0].reason
    # Exactly burst_window after the trigger, the location counts again.
    assert not hysteresis.suppressed("dc-1", now=160.0)
    assert hysteresis.observe("http", "web-0", "dc-1", True, now=160.0)
    assert hysteresis.burst_report(now=160.0).suppressed_locations == ()
    hysteresis._check()


def test_flips_older_than_the_burst_window_do_not_count() -> None:
    """The window is (now - burst_window, now]: a flip exactly burst_window ago is out."""
    hysteresis = Hysteresis(burst_limit=1, burst_window=10.0)
    assert not hysteresis.observe("m", "a", "dc", False, now=0.0)
    assert not hysteresis.observe("m", "b", "dc", False, now=10.0)
    assert hysteresis.observe("m", "c", "dc", False, now=19.999)  # held: 2 flips in window
    assert hysteresis.burst_report(now=20.0).activations == 1


@given(
    flips=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["dc-1", "dc-2"])), max_size=30),
    burst_limit=st.integers(1, 4),
)
def test_no_location_exceeds_burst_limit_flips_within_any_window(
    flips: list[tuple[int, str]], burst_limit: int
) -> None:
    """Whatever arrives, the member flips that get through from one location within any
    window of burst_window seconds never exceed burst_limit."""
    window = 10.0
    events = EventLog(maxlen=1000)
    hysteresis = Hysteresis(burst_limit=burst_limit, burst_window=window, events=events)
    for index, (at, location) in enumerate(sorted(flips)):
        hysteresis.observe("m", f"e{index}", location, False, now=float(at))
        hysteresis._check()
    member_flips = [e for e in events.recent if e.kind == "member"]
    for location in ("dc-1", "dc-2"):
        times = [e.at for e in member_flips if e.subject[2] == location]  # type: ignore[index]
        for start in times:
            assert sum(start <= t < start + window for t in times) <= burst_limit


# -- pools -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoints", "kwargs", "error", "message"),
    [
        ([], {}, ConfigError, "endpoints is empty; a pool needs at least one endpoint"),
        (["a", "a"], {}, ConfigError, r"endpoints\[1\] repeats 'a'; endpoints are unique"),
        ("ab", {}, ArgumentTypeError, "endpoints is str; it must be an iterable"),
        (
            [["a"]],
            {},
            ArgumentTypeError,
            r"endpoints\[0\] is \['a'\] \(location None\); .* hashable",
        ),
        (["a"], {"minimum_healthy": 2}, ConfigError, "minimum_healthy is 2 but the pool has 1"),
        (["a"], {"minimum_healthy": -1}, ConfigError, "minimum_healthy is -1; it must be an int"),
        (["a"], {"panic_threshold": 1.5}, ConfigError, r"panic_threshold is 1.5; it must be in"),
        (["a"], {"panic_threshold": math.nan}, ConfigError, "panic_threshold is nan"),
        (["a"], {"panic_threshold": -0.1}, ConfigError, "panic_threshold is -0.1"),
        (["a"], {"degraded_fraction": 1.0}, ConfigError, r"degraded_fraction is 1.0; .*\[0, 1\)"),
        (["a"], {"fail_open": "yes"}, ArgumentTypeError, "fail_open is str; it must be a bool"),
        (["a"], {"events": object()}, ArgumentTypeError, "events is object"),
    ],
)
def test_pool_rejects_bad_configuration(
    endpoints: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Pools need unique hashable endpoints and parameters in range; messages name them."""
    with pytest.raises(error, match=f"^{message}"):
        PoolHealth(endpoints, **kwargs)


def test_pool_rejects_bad_updates_without_changing_anything() -> None:
    """Unknown endpoints, non-bool health and bad times are errors; nothing is applied."""
    pool = PoolHealth(["a", "b"])
    with pytest.raises(UnknownServer, match="endpoint 'z' is not in pool 'pool'"):
        pool.update({"a": False, "z": False}, now=0.0)
    with pytest.raises(ArgumentTypeError, match=r"healthy\['a'\] is 0; endpoint health must"):
        pool.update({"a": 0}, now=0.0)  # type: ignore[dict-item]
    with pytest.raises(ArgumentTypeError, match="healthy is list"):
        pool.update([("a", False)], now=0.0)  # type: ignore[arg-type]
    assert pool.report().healthy_count == 2
    pool.update({}, now=5.0)
    with pytest.raises(InvalidArgument, match="time must not go backwards"):
        pool.update({"a": False}, now=4.0)
    with pytest.raises(InvalidArgument, match="times must be finite"):
        pool.update({"a": False}, now=math.nan)
    assert pool.report().healthy_count == 2
    with pytest.raises(UnknownServer):
        pool.location_of("z")


def test_pool_is_healthy_while_minimum_healthy_endpoints_are() -> None:
    """healthy_count >= minimum_healthy is healthy, one fewer is not; events say so."""
    events = EventLog()
    pool = PoolHealth(["a", "b", "c"], minimum_healthy=2, panic_threshold=0.0, events=events)
    assert pool.update({"a": False}, now=1.0).healthy
    report = pool.update({"b": False}, now=2.0)
    assert not report.healthy
    assert report.reason.startswith("unhealthy: 1 of 3 endpoints healthy (minimum_healthy 2)")
    assert pool.update({"a": True}, now=3.0).healthy
    assert [(e.kind, e.new_state, e.at) for e in events.recent] == [
        ("pool", "down", 2.0),
        ("pool", "up", 3.0),
    ]
    pool._check()


def test_minimum_healthy_zero_keeps_a_pool_healthy() -> None:
    """minimum_healthy=0 never marks the pool down."""
    pool = PoolHealth(["a"], minimum_healthy=0, panic_threshold=0.0)
    assert pool.update({"a": False}, now=0.0).healthy


@pytest.mark.parametrize("fail_open", [True, False])
def test_panic_fails_open_or_closed_and_counts_activations(fail_open: bool) -> None:
    """Below panic_threshold the pool panics: every endpoint (open) or none (closed) is
    eligible; exactly at the threshold it does not; each activation is counted."""
    events = EventLog()
    pool = PoolHealth(["a", "b", "c", "d"], fail_open=fail_open, events=events)
    report = pool.update({"a": False, "b": False}, now=1.0)  # 2 of 4 = 0.5: not below
    assert not report.panic
    assert report.eligible == {"c", "d"}
    report = pool.update({"c": False}, now=2.0)
    assert report.panic
    assert report.eligible == ({"a", "b", "c", "d"} if fail_open else set())
    assert report.panic_activations == 1
    assert f"failing {'open' if fail_open else 'closed'}" in report.reason
    assert not pool.update({"c": True}, now=3.0).panic
    assert pool.update({"d": False}, now=4.0).panic_activations == 2
    assert pool.panic_activations == 2
    panic = [(e.new_state, e.at) for e in events.recent if e.kind == "panic"]
    assert panic == [("on", 2.0), ("off", 3.0), ("on", 4.0)]
    pool._check()


def test_a_zero_panic_threshold_disables_the_guard() -> None:
    """panic_threshold=0 never panics, even with every endpoint down."""
    pool = PoolHealth(["a", "b"], panic_threshold=0.0)
    report = pool.update({"a": False, "b": False}, now=0.0)
    assert not report.panic
    assert report.eligible == frozenset()
    assert report.panic_activations == 0


def test_a_pool_that_starts_in_panic_counts_it() -> None:
    """A pool whose endpoints start unhealthy is in panic from construction, counted once."""
    pool = PoolHealth(["a", "b"], initially_healthy=False)
    assert pool.report().panic
    assert pool.report().panic_activations == 1


def test_failures_are_told_apart_by_scope() -> None:
    """A few scattered failures are 'isolated', most of one data centre down is 'location',
    most of the pool down is 'pool'."""
    endpoints = {f"{dc}-{i}": dc for dc in ("ams", "fra", "lhr") for i in range(4)}
    pool = PoolHealth(endpoints, panic_threshold=0.0)
    report = pool.update({"ams-0": False, "fra-1": False}, now=0.0)
    assert report.scope == "isolated"
    assert report.reason.endswith("; isolated failures: ams-0, fra-1")
    report = pool.update({"lhr-0": False, "lhr-1": False, "lhr-2": False}, now=1.0)
    assert report.scope == "location"
    assert report.degraded_locations == ("lhr",)
    assert report.reason.endswith("; data-centre-wide degradation in 'lhr' (3 of 4 down)")
    # Exactly half of the pool down (6 of 12) is still told by location.
    report = pool.update({"fra-1": True, "ams-1": False, "ams-2": False}, now=2.0)
    assert report.scope == "location"
    assert report.degraded_locations == ("ams", "lhr")
    report = pool.update({"fra-0": False}, now=3.0)
    assert report.scope == "pool"
    assert report.reason.endswith("; pool-wide degradation: 7 of 12 endpoints down")
    assert pool.update(dict.fromkeys(endpoints, True), now=4.0).scope == "none"


@given(
    size=st.integers(1, 8),
    data=st.data(),
    minimum_healthy=st.integers(0, 8),
    panic_threshold=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
)
def test_pool_updates_do_not_depend_on_order(
    size: int, data: st.DataObject, minimum_healthy: int, panic_threshold: float
) -> None:
    """A batch gives the same report whatever its order, and applying its items one by one
    in any order ends in the same state (only panic_activations may differ)."""
    endpoints = {f"e{i}": f"dc{i % 3}" for i in range(size)}
    minimum_healthy = min(minimum_healthy, size)
    batch = data.draw(st.dictionaries(st.sampled_from(sorted(endpoints)), st.booleans()))
    items = list(batch.items())
    permuted = data.draw(st.permutations(items))

    def fresh() -> PoolHealth:
        return PoolHealth(
            endpoints, minimum_healthy=minimum_healthy, panic_threshold=panic_threshold
        )

    first = fresh().update(dict(items), now=0.0)
    second = fresh().update(dict(permuted), now=0.0)
    assert first == second
    one_by_one = fresh()
    for endpoint, up in permuted:
        one_by_one.update({endpoint: up}, now=0.0)
        one_by_one._check()
    assert attrs_without_activations(one_by_one.report()) == attrs_without_activations(first)


@given(
    states=st.lists(st.booleans(), min_size=1, max_size=8),
    data=st.data(),
    minimum_healthy=st.integers(0, 8),
    panic_threshold=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
)
def test_more_healthy_endpoints_never_make_a_pool_worse(
    states: list[bool], data: st.DataObject, minimum_healthy: int, panic_threshold: float
) -> None:
    """Turning one more endpoint healthy never makes the pool unhealthy, never starts a
    panic, and never shrinks the eligible set outside panic."""
    endpoints = [f"e{i}" for i in range(len(states))]
    minimum_healthy = min(minimum_healthy, len(states))
    pool = PoolHealth(endpoints, minimum_healthy=minimum_healthy, panic_threshold=panic_threshold)
    before = pool.update(dict(zip(endpoints, states, strict=True)), now=0.0)
    down = [e for e, up in zip(endpoints, states, strict=True) if not up]
    if not down:
        return
    after = pool.update({data.draw(st.sampled_from(down)): True}, now=1.0)
    assert after.healthy >= before.healthy
    assert after.panic <= before.panic
    if not after.panic and not before.panic:
        assert after.eligible > before.eligible


def attrs_without_activations(report: Any) -> tuple[Any, ...]:
    return (
        report.healthy,
        report.healthy_count,
        report.panic,
        report.eligible,
        report.scope,
        report.degraded_locations,
        report.reason,
    )


# -- stateful: hysteresis and pools against naive models ---------------------------------------


class HysteresisAgainstModel(RuleBasedStateMachine):
    """Random member observations, endpoint updates and time steps applied to Hysteresis and
    to naive models (observation histories, raw-verdict histories); after each step the
    states agree, the invariants hold (`_check`), and every change was announced by one
    event."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.events = EventLog(maxlen=10_000)
        self.hysteresis = Hysteresis()
        self.history: dict[tuple[str, str, str], list[bool]] = {}
        self.raw: dict[str, list[tuple[float, bool]]] = {}
        self.published: dict[str, tuple[bool, float]] = {}
        self.config: dict[str, Any] = {}

    @initialize(
        consecutive_up=st.integers(1, 3),
        consecutive_down=st.integers(1, 3),
        min_dwell=st.sampled_from([0.0, 1.0, 2.5]),
        failback_delay=st.sampled_from([0.0, 1.0, 3.0]),
        initially_up=st.booleans(),
    )
    def build(self, **config: Any) -> None:
        self.config = config
        self.hysteresis = Hysteresis(**config, events=self.events)

    def model_member(self, key: tuple[str, str, str]) -> bool:
        states = _naive_member_states(
            self.history.get(key, []),
            self.config["consecutive_up"],
            self.config["consecutive_down"],
            self.config["initially_up"],
        )
        return states[-1] if states else bool(self.config["initially_up"])

    def settle_model(self, endpoint: str) -> None:
        # Publish the latest raw verdict when the rules allow it (restated from the docs).
        up, changed_at = self.published[endpoint]
        raw_at, raw_up = self.raw[endpoint][-1]
        if raw_up == up or self.now - changed_at < self.config["min_dwell"]:
            return
        if raw_up:
            since = raw_at
            for at, value in reversed(self.raw[endpoint]):
                if not value:
                    break
                since = at
            if self.now - since < self.config["failback_delay"]:
                return
        self.published[endpoint] = (raw_up, self.now)

    @rule(
        member=st.sampled_from(["http", "tcp"]),
        endpoint=st.sampled_from(["a", "b"]),
        location=st.sampled_from(["dc-1", "dc-2"]),
        up=st.booleans(),
    )
    def observe(self, member: str, endpoint: str, location: str, up: bool) -> None:
        key = (member, endpoint, location)
        self.history.setdefault(key, []).append(up)
        assert self.hysteresis.observe(*key, up, now=self.now) == self.model_member(key)

    @rule(endpoint=st.sampled_from(["a", "b", "c"]), up=st.booleans())
    def update_endpoint(self, endpoint: str, up: bool) -> None:
        if endpoint not in self.published:
            initially_up = self.config["initially_up"]
            if self.config["failback_delay"] and up and not initially_up:
                self.published[endpoint] = (False, self.now)
                self.raw[endpoint] = [(self.now, False)]
            else:
                self.published[endpoint] = (up, self.now)
                self.raw[endpoint] = [(self.now, up)]
                assert self.hysteresis.update_endpoint(endpoint, up, now=self.now) == up
                return
        self.raw[endpoint].append((self.now, up))
        self.settle_model(endpoint)
        published = self.hysteresis.update_endpoint(endpoint, up, now=self.now)
        assert published == self.published[endpoint][0]

    @rule(step=st.sampled_from([0.0, 0.5, 1.0, 2.5]))
    def tick(self, step: float) -> None:
        self.now += step

    @rule()
    def advance(self) -> None:
        changed = self.hysteresis.advance(now=self.now)
        before = dict(self.published)
        for endpoint in self.published:
            self.settle_model(endpoint)
        assert set(changed) == {e for e in before if before[e] != self.published[e]}

    @invariant()
    def agrees_with_the_model(self) -> None:
        if not self.config:
            return
        self.hysteresis._check()
        self.events._check()
        for key in self.history:
            assert self.hysteresis.member_up(*key) == self.model_member(key)
        for endpoint, (up, _) in self.published.items():
            assert self.hysteresis.endpoint_up(endpoint) == up
        member_events = sum(e.kind == "member" for e in self.events.recent)
        flips = 0
        for key, observations in self.history.items():
            states = [
                bool(self.config["initially_up"]),
                *_naive_member_states(
                    observations,
                    self.config["consecutive_up"],
                    self.config["consecutive_down"],
                    self.config["initially_up"],
                ),
            ]
            flips += sum(a != b for a, b in itertools.pairwise(states))
            del key
        assert member_events == flips


TestHysteresisAgainstModel = HysteresisAgainstModel.TestCase
TestHysteresisAgainstModel.settings = settings(settings.default, stateful_step_count=30)


class PoolAgainstModel(RuleBasedStateMachine):
    """Random batches of endpoint health applied to PoolHealth and to a plain dict; after each
    step the report matches a naive recomputation, the invariants hold (`_check`), and the
    events and activation count match the transitions the model saw."""

    endpoints: ClassVar[dict[str, str]] = {
        "a1": "dc-a",
        "a2": "dc-a",
        "a3": "dc-a",
        "b1": "dc-b",
        "b2": "dc-b",
    }

    def __init__(self) -> None:
        super().__init__()
        self.events = EventLog(maxlen=10_000)
        self.pool: PoolHealth | None = None
        self.model: dict[str, bool] = {}
        self.config: dict[str, Any] = {}
        self.activations = 0
        self.transitions = 0
        self.now = 0.0

    @initialize(
        minimum_healthy=st.integers(0, 5),
        panic_threshold=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
        fail_open=st.booleans(),
    )
    def build(self, **config: Any) -> None:
        self.config = config
        self.pool = PoolHealth(self.endpoints, events=self.events, **config)
        self.model = dict.fromkeys(self.endpoints, True)
        self.activations = int(self.model_panic())

    def model_panic(self) -> bool:
        healthy = sum(self.model.values())
        return bool(healthy / len(self.model) < self.config["panic_threshold"])

    def model_healthy(self) -> bool:
        return bool(sum(self.model.values()) >= self.config["minimum_healthy"])

    @rule(
        batch=st.dictionaries(st.sampled_from(sorted(endpoints)), st.booleans(), max_size=5),
        step=st.sampled_from([0.0, 1.0]),
    )
    def update(self, batch: dict[str, bool], step: float) -> None:
        assert self.pool is not None
        self.now += step
        was_panic, was_healthy = self.model_panic(), self.model_healthy()
        self.model.update(batch)
        if self.model_panic() and not was_panic:
            self.activations += 1
        self.transitions += (self.model_panic() != was_panic) + (
            self.model_healthy() != was_healthy
        )
        self.pool.update(batch, now=self.now)

    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.pool is None:
            return
        self.pool._check()
        report = self.pool.report()
        healthy = {e for e, up in self.model.items() if up}
        assert report.healthy_count == len(healthy)
        assert report.healthy == self.model_healthy()
        assert report.panic == self.model_panic()
        if report.panic:
            expected = set(self.endpoints) if self.config["fail_open"] else set()
        else:
            expected = healthy
        assert report.eligible == expected
        assert report.panic_activations == self.activations
        assert len(self.events.recent) == self.transitions
        down_by_location: dict[str, int] = {}
        for endpoint, location in self.endpoints.items():
            down_by_location[location] = down_by_location.get(location, 0) + (
                not self.model[endpoint]
            )
        degraded = tuple(
            location
            for location in ("dc-a", "dc-b")
            if down_by_location.get(location, 0) * 2
            > sum(loc == location for loc in self.endpoints.values())
        )
        assert report.degraded_locations == degraded


TestPoolAgainstModel = PoolAgainstModel.TestCase
TestPoolAgainstModel.settings = settings(settings.default, stateful_step_count=20)
