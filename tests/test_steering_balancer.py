"""lbkit.steering.LoadBalancer: rules, pool policy, endpoint picker and affinity composed over
health-checked pools, with the fail-open guard, the fallback pool, accounting and every
rejected configuration."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    InvalidArgument,
    NoHealthyEndpoint,
    UnknownServer,
)
from lbkit.health import EventLog, Member, MonitorGroup, MonitorResult
from lbkit.steering import (
    AffinityConfig,
    Decision,
    Endpoint,
    LoadBalancer,
    Pool,
    Request,
    SessionAffinity,
)

KEY = b"k" * 32


def two_pools(**options: Any) -> LoadBalancer:
    """eu (a, b, c, d) and us (e, f), us the fallback."""
    pools = [
        Pool("eu", [Endpoint(name) for name in "abcd"]),
        Pool("us", [Endpoint("e"), Endpoint("f")]),
    ]
    options.setdefault("seed", 11)
    return LoadBalancer(pools, **options)


def served(lb: LoadBalancer, request: Request | None = None, *, now: float = 1.0) -> str:
    decision = lb.decide(request or Request(client_ip="192.0.2.1"), now=now)
    assert decision.pool is not None
    assert decision.endpoint is not None
    return f"{decision.pool.id}/{decision.endpoint.id}"


# --- pools, health and the fallback -------------------------------------------------------


def test_failover_moves_to_the_next_healthy_pool(impl: Any) -> None:
    """When a pool drops below minimum_healthy, failover steering moves to the next pool."""
    lb = two_pools()
    assert served(lb).startswith("eu/")
    lb.update_health("eu", dict.fromkeys("abcd", False), now=1.0)
    decision = lb.decide(Request(), now=2.0)
    assert decision.pool is not None
    assert decision.pool.id == "us"
    assert decision.reasons[0] == "failover: 'us' is the first healthy pool in order"
    assert not decision.fallback


def test_fallback_pool_serves_with_its_health_ignored(impl: Any) -> None:
    """With every pool down, the fallback pool serves even though it is down itself."""
    lb = two_pools(fallback_pool="us", fail_open=False)
    lb.update_health("eu", dict.fromkeys("abcd", False), now=1.0)
    lb.update_health("us", {"e": False, "f": False}, now=1.0)
    decision = lb.decide(Request(), now=2.0)
    assert decision.fallback
    assert decision.pool is not None
    assert decision.pool.id == "us"
    assert decision.reasons[0] == "fallback: no pool qualifies; 'us' serves, its health ignored"
    assert decision.reasons[-1].endswith("(health ignored)")


def test_fallback_pool_prefers_its_healthy_endpoints(impl: Any) -> None:
    """In the fallback pool, healthy endpoints serve when there are any."""
    lb = two_pools(fallback_pool="us", policy="failover")
    lb.update_health("eu", dict.fromkeys("abcd", False), now=1.0)
    lb.update_health("us", {"e": False}, now=1.0)
    # us is healthy (minimum_healthy 1), so failover picks it, never e.
    assert {served(lb) for _ in range(50)} == {"us/f"}


def test_no_pool_and_no_fallback_raises_with_reasons(impl: Any) -> None:
    """Without a fallback pool, no healthy pool is a NoHealthyEndpoint with its reasons."""
    lb = two_pools(fail_open=False)
    lb.update_health("eu", dict.fromkeys("abcd", False), now=1.0)
    lb.update_health("us", {"e": False, "f": False}, now=1.0)
    with pytest.raises(NoHealthyEndpoint) as raised:
        lb.decide(Request(), now=2.0)
    assert raised.value.reasons == ("no pool qualifies and there is no fallback pool",)
    assert isinstance(raised.value, LookupError)


def test_panic_fails_open_inside_a_healthy_pool(impl: Any) -> None:
    """Below panic_threshold every endpoint of the pool is eligible again (fail open)."""
    lb = two_pools(panic_threshold=0.5)
    lb.update_health("eu", {"a": False, "b": False, "c": False}, now=1.0)
    decisions = [lb.decide(Request(), now=2.0) for _ in range(400)]
    assert {d.endpoint.id for d in decisions if d.endpoint} == set("abcd")
    assert all(decision.panic for decision in decisions)
    assert "panic: healthy fraction 0.25 < panic_threshold 0.5" in decisions[0].reasons[1]


def test_panic_failing_closed_takes_the_pool_out(impl: Any) -> None:
    """Failing closed, a panicking pool serves nobody and failover moves on."""
    lb = two_pools(panic_threshold=0.5, fail_open=False)
    lb.update_health("eu", {"a": False, "b": False, "c": False}, now=1.0)
    assert {served(lb) for _ in range(50)} <= {"us/e", "us/f"}


def test_panic_threshold_zero_disables_the_guard(impl: Any) -> None:
    """With panic_threshold 0 only the healthy endpoint serves."""
    lb = two_pools(panic_threshold=0.0)
    lb.update_health("eu", {"a": False, "b": False, "c": False}, now=1.0)
    assert {served(lb) for _ in range(100)} == {"eu/d"}


def test_minimum_healthy_decides_pool_health(impl: Any) -> None:
    """A pool with fewer healthy endpoints than minimum_healthy is not chosen."""
    pools = [
        Pool("eu", [Endpoint(name) for name in "abcd"], minimum_healthy=3),
        Pool("us", [Endpoint("e")]),
    ]
    lb = LoadBalancer(pools, seed=3, panic_threshold=0.0)
    lb.update_health("eu", {"a": False, "b": False}, now=1.0)
    assert served(lb) == "us/e"
    assert not lb.pool_report("eu").healthy


@given(
    down=st.sets(st.sampled_from("abcdef")),
    weights=st.lists(st.sampled_from([0.0, 1.0, 2.5]), min_size=6, max_size=6),
    policy=st.sampled_from(["failover", "random", "least_outstanding", "hash"]),
    seed=st.integers(0, 2**64 - 1),
)
def test_unhealthy_or_weightless_endpoints_never_serve_without_panic(
    down: set[str], weights: list[float], policy: str, seed: int
) -> None:
    """Unless a pool's guard fails open, an unhealthy or weight-0 endpoint is never chosen."""
    names = "abcdef"
    pools = [
        Pool("eu", [Endpoint(n, weight=w) for n, w in zip(names[:4], weights[:4], strict=True)]),
        Pool("us", [Endpoint(n, weight=w) for n, w in zip(names[4:], weights[4:], strict=True)]),
    ]
    lb = LoadBalancer(pools, policy=policy, seed=seed, panic_threshold=0.0)
    for pool in pools:
        lb.update_health(pool.id, {e.id: e.id not in down for e in pool.endpoints}, now=1.0)
    for index in range(20):
        try:
            decision = lb.decide(Request(client_ip=f"192.0.2.{index}"), now=2.0)
        except NoHealthyEndpoint:
            continue
        assert decision.endpoint is not None
        assert decision.endpoint.id not in down
        assert decision.endpoint.weight > 0


def test_drained_endpoint_takes_no_new_sessions(impl: Any) -> None:
    """drain() keeps an endpoint out of new picks; undrain() brings it back."""
    lb = two_pools()
    lb.drain("eu", "a", now=1.0)
    assert "eu/a" not in {served(lb) for _ in range(200)}
    lb.undrain("eu", "a", now=2.0)
    assert "eu/a" in {served(lb, now=3.0) for _ in range(200)}


def test_apply_health_takes_monitor_group_verdicts(impl: Any) -> None:
    """Monitor-group verdicts mark endpoints up and down; UNKNOWN changes nothing."""
    group = MonitorGroup([Member("http")])
    results = [
        MonitorResult("http", "a", "ams", False, observed_at=0.0),
        MonitorResult("http", "b", "ams", True, observed_at=0.0),
    ]
    lb = two_pools()
    lb.set_health("eu", "c", False, now=0.5)
    lb.apply_health(group.evaluate(results, now=1.0), now=1.0)
    assert sorted(map(str, lb.pool_report("eu").eligible)) == ["b", "d"]


def test_apply_health_feeds_dynamic_steering(impl: Any) -> None:
    """Latencies from the health report steer dynamic policy to the fastest pool per PoP."""
    group = MonitorGroup([Member("http")])
    results = [
        MonitorResult("http", "a", "FRA", True, rtt=0.050, observed_at=0.0),
        MonitorResult("http", "e", "FRA", True, rtt=0.010, observed_at=0.0),
        MonitorResult("http", "a", "JFK", True, rtt=0.008, observed_at=0.0),
        MonitorResult("http", "e", "JFK", True, rtt=0.090, observed_at=0.0),
    ]
    lb = two_pools(policy="dynamic")
    lb.apply_health(group.evaluate(results, now=1.0), now=1.0)
    assert served(lb, Request(pop="FRA")).startswith("us/")
    assert served(lb, Request(pop="JFK")).startswith("eu/")
    lb.observe_rtt("eu", "FRA", 0.001, now=1000.0)
    assert served(lb, Request(pop="FRA"), now=1000.0).startswith("eu/")


def test_health_events_reach_the_event_log(impl: Any) -> None:
    """Pool and panic transitions go to the event log passed to the balancer."""
    log = EventLog()
    lb = two_pools(events=log)
    lb.update_health("eu", dict.fromkeys("abcd", False), now=5.0)
    assert [(event.kind, event.subject, event.new_state) for event in log.recent] == [
        ("pool", "eu", "down"),
        ("panic", "eu", "on"),
    ]


# --- hash, reproducibility, both paths -----------------------------------------------------


def test_hash_policy_moves_only_the_downed_pools_keys(impl: Any) -> None:
    """With hash steering, a pool going down moves only the clients it held."""
    pools = [Pool(name, [Endpoint(f"{name}-1")]) for name in ("p0", "p1", "p2", "p3")]
    lb = LoadBalancer(pools, policy="hash", endpoint_picker="hash", seed=1)
    requests = [Request(client_ip=f"198.51.100.{i}") for i in range(200)]
    before = [served(lb, request) for request in requests]
    lb.update_health("p2", {"p2-1": False}, now=1.0)
    after = [served(lb, request, now=2.0) for request in requests]
    for old, new in zip(before, after, strict=True):
        assert old == new or old.startswith("p2/")
    assert any(old.startswith("p2/") for old in before)


def test_seeded_runs_reproduce_exactly(impl: Any) -> None:
    """Two balancers with one seed make the same choices; another seed makes others."""

    def run(seed: int) -> list[str]:
        lb = two_pools(policy="random", seed=seed, endpoint_picker="least_outstanding")
        return [served(lb) for _ in range(100)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_both_paths_make_the_same_choices(
    fast_kernels: dict[str, Any], pure_kernels: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seeded balancer makes the same decisions on the compiled and the pure kernels."""
    from lbkit import _kernels

    runs = []
    for kernels in (fast_kernels, pure_kernels):
        monkeypatch.setattr(_kernels, "steering", kernels["steering"])
        monkeypatch.setattr(_kernels, "hashing", kernels["hashing"])
        for picker in ("random", "round_robin", "least_outstanding", "hash", "peak_ewma"):
            lb = two_pools(policy="random", seed=99, endpoint_picker=picker)
            runs.append([served(lb, Request(client_ip=f"10.0.0.{i}")) for i in range(200)])
    assert runs[:5] == runs[5:]


def test_weighted_random_pools_share_by_weight(impl: Any) -> None:
    """Random pool steering splits requests by pool weight over the healthy pools."""
    pools = [
        Pool("eu", [Endpoint("a")], weight=3),
        Pool("us", [Endpoint("b")], weight=1),
        Pool("ap", [Endpoint("c")], weight=0),
    ]
    lb = LoadBalancer(pools, policy="random", seed=4)
    counts = Counter(served(lb) for _ in range(8000))
    assert counts["ap/c"] == 0
    assert counts["eu/a"] / 8000 == pytest.approx(0.75, abs=0.02)


# --- rules --------------------------------------------------------------------------------


RULES = [
    {
        "name": "maintenance",
        "condition": {"field": "path", "op": "prefix", "value": "/old"},
        "fixed_response": {"status": 503, "body": "back soon"},
    },
    {
        "name": "us-only",
        "condition": {"field": "country", "op": "equals", "value": "US"},
        "overrides": {"pools": ["us"]},
    },
    {
        "name": "round-robin",
        "condition": {"field": "header.x-rr", "op": "exists"},
        "overrides": {"endpoint_policy": "round_robin"},
    },
]


def test_rules_answer_with_a_fixed_response(impl: Any) -> None:
    """A fixed response ends the decision: no pool, no endpoint, the response and the rule."""
    lb = two_pools(rules=RULES)
    decision = lb.decide(Request(path="/old/x"), now=1.0)
    assert decision.pool is None
    assert decision.endpoint is None
    assert decision.fixed_response is not None
    assert decision.fixed_response.status == 503
    assert decision.rules == ("maintenance",)
    assert (
        str(decision) == "rules: 'maintenance' matched; fixed response 503 from rule 'maintenance'"
    )
    with pytest.raises(InvalidArgument, match="decision has no endpoint"):
        lb.begin(decision)


def test_rules_override_the_pools(impl: Any) -> None:
    """A rule's pools override steers its requests over those pools only."""
    lb = two_pools(rules=RULES)
    assert {served(lb, Request(country="US")) for _ in range(30)} <= {"us/e", "us/f"}
    assert served(lb, Request(country="DE")).startswith("eu/")


def test_rules_override_the_endpoint_picker(impl: Any) -> None:
    """A rule's endpoint_policy switches the picker; round robin then cycles the pool."""
    lb = two_pools(rules=RULES)
    picks = [served(lb, Request(headers={"X-RR": "1"})) for _ in range(8)]
    assert Counter(picks) == Counter({f"eu/{name}": 2 for name in "abcd"})
    assert lb.decide(Request(headers={"X-RR": "1"}), now=1.0).reasons[-1].startswith("round_robin")


def test_rules_are_validated_against_the_pools() -> None:
    """A rule naming a pool the balancer lacks is a ConfigError at construction."""
    bad = [{"name": "x", "condition": True, "overrides": {"pools": ["mars"]}}]
    with pytest.raises(ConfigError, match=r"rules\[0\] \('x'\): overrides.pools\[0\] is 'mars'"):
        two_pools(rules=bad)


# --- session affinity ---------------------------------------------------------------------


def cookie_lb(failover: str = "none", drain: float = 0.0) -> LoadBalancer:
    config = AffinityConfig("cookie", failover=failover, drain_duration=drain, ttl=3600)
    return two_pools(affinity=SessionAffinity(config, key=KEY), fallback_pool="us")


def follow(lb: LoadBalancer, decision: Decision, *, now: float) -> Decision:
    """The next request of the same browser: it sends the cookie it was given."""
    assert decision.set_cookie is not None
    value = decision.set_cookie.split(";", 1)[0].split("=", 1)[1]
    return lb.decide(Request(cookies={"__lbkit_affinity": value}), now=now)


def test_cookie_affinity_keeps_a_session_on_its_endpoint(impl: Any) -> None:
    """A session's later requests go to the endpoint its first request got."""
    lb = cookie_lb()
    first = lb.decide(Request(), now=1.0)
    assert first.set_cookie is not None
    assert "HttpOnly" in first.set_cookie
    assert first.reasons[0] == "affinity miss (absent): the request carries no session key"
    for step in range(20):
        again = follow(lb, first, now=2.0 + step)
        assert again.endpoint == first.endpoint
        assert again.set_cookie is None
        assert again.reasons[-1].startswith("affinity: pinned to")


def test_forged_cookie_gets_no_say(impl: Any) -> None:
    """A tampered cookie is a miss: the request is steered normally and re-pinned."""
    lb = cookie_lb()
    forged = Request(cookies={"__lbkit_affinity": "A" * 80})
    decision = lb.decide(forged, now=1.0)
    assert decision.reasons[0].startswith("affinity miss (")
    assert decision.set_cookie is not None


def test_temporary_failover_returns_when_healthy(impl: Any) -> None:
    """failover=temporary serves elsewhere while the pinned endpoint is down, then returns."""
    lb = cookie_lb("temporary")
    first = lb.decide(Request(), now=1.0)
    assert first.endpoint is not None
    lb.set_health("eu", first.endpoint.id, False, now=2.0)
    detour = follow(lb, first, now=3.0)
    assert detour.endpoint != first.endpoint
    assert detour.set_cookie is None  # the pin is kept
    lb.set_health("eu", first.endpoint.id, True, now=4.0)
    assert follow(lb, first, now=5.0).endpoint == first.endpoint


def test_sticky_failover_repins(impl: Any) -> None:
    """failover=sticky re-pins a session whose endpoint went down."""
    lb = cookie_lb("sticky")
    first = lb.decide(Request(), now=1.0)
    assert first.endpoint is not None
    lb.set_health("eu", first.endpoint.id, False, now=2.0)
    moved = follow(lb, first, now=3.0)
    assert moved.endpoint != first.endpoint
    assert moved.set_cookie is not None
    lb.set_health("eu", first.endpoint.id, True, now=4.0)
    assert follow(lb, moved, now=5.0).endpoint == moved.endpoint


def test_drained_endpoint_keeps_sessions_for_the_drain_duration(impl: Any) -> None:
    """A draining endpoint keeps its pinned sessions until drain_duration passes."""
    lb = cookie_lb(drain=60.0)
    first = lb.decide(Request(), now=1.0)
    assert first.endpoint is not None
    lb.drain("eu", first.endpoint.id, now=10.0)
    assert follow(lb, first, now=69.0).endpoint == first.endpoint
    moved = follow(lb, first, now=70.0)
    assert moved.endpoint != first.endpoint
    assert moved.set_cookie is not None


def test_client_ip_affinity(impl: Any) -> None:
    """By client IP, one address keeps its endpoint without any cookie."""
    affinity = SessionAffinity(AffinityConfig("client_ip"), key=KEY)
    lb = two_pools(affinity=affinity)
    first = served(lb, Request(client_ip="203.0.113.9"))
    assert {served(lb, Request(client_ip="203.0.113.9")) for _ in range(30)} == {first}


# --- accounting ---------------------------------------------------------------------------


def test_least_outstanding_avoids_busy_endpoints(impl: Any) -> None:
    """With requests outstanding on a, the P2C picker sends new ones elsewhere first."""
    lb = two_pools(endpoint_picker="least_outstanding")
    busy = lb.decide(Request(), now=1.0)
    assert busy.endpoint is not None
    for _ in range(5):
        lb.begin(busy)
    picks = Counter(served(lb) for _ in range(300))
    assert picks[f"eu/{busy.endpoint.id}"] < 300 / 4 / 2


def test_accounting_is_exact_under_threads(impl: Any) -> None:
    """begin/end from many threads leave exact counts (zero outstanding at the end)."""
    lb = two_pools(endpoint_picker="least_outstanding")
    decisions = [lb.decide(Request(), now=1.0) for _ in range(8)]
    started = threading.Barrier(8)

    def work(decision: Decision) -> None:
        started.wait()
        for step in range(500):
            lb.begin(decision)
            lb.end(decision, latency=0.001, ok=step % 10 != 0, now=2.0)

    threads = [threading.Thread(target=work, args=(d,)) for d in decisions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lb.pool_stats.outstanding("eu") == 0
    assert lb.pool_stats.stats("eu").completed == 8 * 500
    assert lb.pool_stats.stats("eu").errors == 8 * 50


def test_end_without_begin_is_an_error(impl: Any) -> None:
    """end() without a matching begin() is an InvalidArgument, not a negative count."""
    lb = two_pools()
    decision = lb.decide(Request(), now=1.0)
    with pytest.raises(InvalidArgument):
        lb.end(decision, now=2.0)


def test_least_connections_pool_policy_reads_connections(impl: Any) -> None:
    """least_connections steers away from the pool holding the open connections."""
    lb = two_pools(policy="least_connections")
    held = [lb.decide(Request(), now=1.0) for _ in range(40)]
    for decision in held:
        if decision.pool is not None and decision.pool.id == "eu":
            lb.connect(decision)
    counts = Counter(served(lb).split("/")[0] for _ in range(2000))
    assert counts["us"] > counts["eu"]


# --- configuration errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: LoadBalancer([]), ConfigError, "pools is empty; a load balancer needs"),
        (
            lambda: LoadBalancer([Pool("a", [Endpoint("x")]), Pool("a", [Endpoint("y")])]),
            ConfigError,
            "pools[1] repeats the id 'a'; pool ids are unique",
        ),
        (
            lambda: LoadBalancer(["a"]),  # type: ignore[list-item]
            ArgumentTypeError,
            "pools[0] is str; it must be a Pool",
        ),
        (
            lambda: two_pools(fallback_pool="ap"),
            ConfigError,
            "fallback_pool is 'ap'; it must be the id of a configured pool ('eu', 'us')",
        ),
        (lambda: two_pools(policy="fastest"), ConfigError, "policy is 'fastest'; it must be"),
        (lambda: two_pools(policy=3), ArgumentTypeError, "policy is int; it must be a policy"),
        (
            lambda: two_pools(endpoint_picker="fastest"),
            ConfigError,
            "endpoint_picker for pool 'eu' is 'fastest'; it must be one of random",
        ),
        (
            lambda: two_pools(endpoint_picker={"ap": "random"}),
            ConfigError,
            "endpoint_picker names the pool 'ap'; it is not a configured pool",
        ),
        (
            lambda: two_pools(picker_options={"speed": 2}),
            ConfigError,
            "picker_options has 'speed', which no picker takes; the options are",
        ),
        (
            lambda: two_pools(picker_options={"seed": 2}),
            ConfigError,
            "picker_options has 'seed'; seed the load balancer instead",
        ),
        (
            lambda: two_pools(
                picker_options={"mode": "fastest"}, endpoint_picker="least_outstanding"
            ),
            ConfigError,
            "mode is 'fastest'",
        ),
        (
            lambda: two_pools(seed=-1),
            ConfigError,
            "seed is -1; it must be in 0..18446744073709551615",
        ),
        (
            lambda: two_pools(seed=1.0),
            ArgumentTypeError,
            "seed is float; it must be an int or None",
        ),
        (lambda: two_pools(fail_open=1), ArgumentTypeError, "fail_open is int; it must be a bool"),
        (
            lambda: two_pools(affinity="cookie"),
            ArgumentTypeError,
            "affinity is str; it must be a SessionAffinity or None",
        ),
        (lambda: two_pools(panic_threshold=2), ConfigError, "panic_threshold is 2; it must be in"),
        (
            lambda: LoadBalancer(
                [Pool("a", [Endpoint("x")], weight=1e308), Pool("b", [Endpoint("y")], weight=1e308)]
            ),
            ConfigError,
            "the pool weights sum to more than a float can hold",
        ),
    ],
)
def test_bad_configuration_is_rejected(build: Any, error: type[Exception], message: str) -> None:
    """Every configuration mistake is an error naming the argument and the rule."""
    with pytest.raises(error) as raised:
        build()
    assert str(raised.value).startswith(message)


def test_bad_calls_are_rejected(impl: Any) -> None:
    """Unknown pools and endpoints, wrong types and bad times are errors."""
    lb = two_pools()
    with pytest.raises(UnknownServer, match="no pool has the id 'ap'"):
        lb.set_health("ap", "a", False, now=1.0)
    with pytest.raises(UnknownServer):
        lb.set_health("eu", "z", False, now=1.0)
    with pytest.raises(UnknownServer):
        lb.drain("eu", "z", now=1.0)
    with pytest.raises(ArgumentTypeError, match="request is dict; it must be a Request"):
        lb.decide({"path": "/"}, now=1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="now is nan; times must be finite"):
        lb.decide(Request(), now=float("nan"))
    with pytest.raises(ArgumentTypeError, match="report is list"):
        lb.apply_health([], now=1.0)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="decision is str; it must be a Decision"):
        lb.begin("eu/a")  # type: ignore[arg-type]
    lb.set_health("eu", "a", False, now=5.0)
    with pytest.raises(InvalidArgument, match="before the previous now"):
        lb.set_health("eu", "a", True, now=4.0)


def test_hash_policy_without_a_key_is_an_error(impl: Any) -> None:
    """Hash steering on a request with neither key nor client IP says what it needs."""
    lb = two_pools(policy="hash")
    with pytest.raises(InvalidArgument, match="request has no hash key"):
        lb.decide(Request(), now=1.0)


def test_a_picker_built_mid_flight_sees_the_outstanding_requests(impl: Any) -> None:
    """A rule switching to a new picker kind after begin() leaves every end() matched."""
    lb = two_pools(rules=RULES, endpoint_picker="least_outstanding")
    first = lb.decide(Request(), now=1.0)
    lb.begin(first)
    switched = lb.decide(Request(headers={"X-RR": "1"}), now=1.5)
    lb.begin(switched)
    lb.end(first, latency=0.01, now=2.0)
    lb.end(switched, latency=0.01, now=2.0)
    assert lb.pool_stats.outstanding("eu") == 0


# --- retries after a failed attempt -------------------------------------------------------


def test_retry_avoids_the_endpoint_that_failed(impl: Any) -> None:
    """decide(failed=...) never returns the endpoint that failed the request."""
    lb = two_pools()
    for index in range(100):
        request = Request(client_ip=f"192.0.2.{index}")
        first = lb.decide(request, now=1.0)
        retry = lb.decide(request, now=1.0, failed=first)
        assert retry.endpoint != first.endpoint
        assert retry.pool == first.pool


def test_retry_says_why_in_the_reasons(impl: Any) -> None:
    """A retry that drew the failed endpoint again names the redraw in its reasons."""
    lb = two_pools(endpoint_picker="hash")
    request = Request(client_ip="198.51.100.3")
    first = lb.decide(request, now=1.0)
    assert first.endpoint is not None
    retry = lb.decide(request, now=1.0, failed=first)
    assert retry.reasons[-1].startswith(f"retry: {first.endpoint.id!r} failed; drew ")
    assert retry.reasons[-1].endswith("from the pool's 3 other eligible endpoints")


def test_retry_moves_to_another_pool_when_the_pool_has_no_other(impl: Any) -> None:
    """With no other endpoint in the pool, the policy chooses among the other pools."""
    pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
    lb = LoadBalancer(pools, seed=2)
    first = lb.decide(Request(), now=1.0)
    retry = lb.decide(Request(), now=1.0, failed=first)
    assert served_ids(retry) == "us/b"
    assert "retry: 'a' failed; pool 'eu' has no other endpoint" in retry.reasons


def test_retry_avoids_every_endpoint_that_failed(impl: Any) -> None:
    """decide(failed=[...]) with every earlier attempt avoids all their endpoints: a third
    attempt does not go back to the first endpoint, and with all failed the next pool serves."""
    pools = [Pool("eu", [Endpoint("a"), Endpoint("b"), Endpoint("c")]), Pool("us", [Endpoint("d")])]
    lb = LoadBalancer(pools, seed=3, endpoint_picker="hash")
    request = Request(client_ip="203.0.113.9")
    attempts = [lb.decide(request, now=1.0)]
    while len(attempts) < 3:
        attempts.append(lb.decide(request, now=1.0, failed=attempts))
    assert len({served_ids(attempt) for attempt in attempts}) == 3
    assert {served_ids(attempt) for attempt in attempts} == {"eu/a", "eu/b", "eu/c"}
    last = lb.decide(request, now=1.0, failed=iter(attempts))
    assert served_ids(last) == "us/d"
    assert lb.decide(request, now=1.0, failed=[]) == lb.decide(request, now=1.0)


def test_retry_refuses_what_is_not_a_decision(impl: Any) -> None:
    """failed must be a Decision or an iterable of them, each with an endpoint."""
    lb = two_pools()
    first = lb.decide(Request(), now=1.0)
    with pytest.raises(
        ArgumentTypeError, match=r"^failed is str; it must be a Decision or an iterable of them$"
    ):
        lb.decide(Request(), now=1.0, failed="eu/a")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=r"^failed\[1\] is int; it must be a Decision$"):
        lb.decide(Request(), now=1.0, failed=[first, 7])  # type: ignore[list-item]


def test_retry_with_nothing_else_raises(impl: Any) -> None:
    """A single endpoint that failed leaves nothing to retry on."""
    lb = LoadBalancer([Pool("eu", [Endpoint("a")])], seed=2)
    first = lb.decide(Request(), now=1.0)
    with pytest.raises(NoHealthyEndpoint) as raised:
        lb.decide(Request(), now=1.0, failed=first)
    assert raised.value.reasons[-1] == "no pool qualifies and there is no fallback pool"


@pytest.mark.parametrize(("failover", "action"), [("temporary", "keep"), ("sticky", "repin")])
def test_retry_of_a_pinned_session_follows_the_failover_mode(
    impl: Any, failover: str, action: str
) -> None:
    """temporary serves elsewhere and keeps the pin; sticky re-pins to the new endpoint."""
    lb = cookie_lb(failover)
    first = lb.decide(Request(), now=1.0)
    assert first.set_cookie is not None
    value = first.set_cookie.split(";", 1)[0].split("=", 1)[1]
    request = Request(cookies={"__lbkit_affinity": value})
    pinned = lb.decide(request, now=2.0)
    retry = lb.decide(request, now=2.0, failed=pinned)
    assert retry.endpoint != first.endpoint
    if action == "keep":
        assert retry.set_cookie is None
        assert follow(lb, first, now=3.0).endpoint == first.endpoint
    else:
        assert retry.set_cookie is not None
        assert follow(lb, retry, now=3.0).endpoint == retry.endpoint


def test_retry_of_a_pinned_session_without_failover_fails(impl: Any) -> None:
    """failover=none does not move a pinned session whose endpoint failed the request."""
    lb = cookie_lb("none")
    first = lb.decide(Request(), now=1.0)
    assert first.set_cookie is not None
    value = first.set_cookie.split(";", 1)[0].split("=", 1)[1]
    request = Request(cookies={"__lbkit_affinity": value})
    pinned = lb.decide(request, now=2.0)
    with pytest.raises(NoHealthyEndpoint) as raised:
        lb.decide(request, now=2.0, failed=pinned)
    assert "failover=none does not retry elsewhere" in raised.value.reasons[-1]


def test_retry_needs_a_served_decision(impl: Any) -> None:
    """failed must be a Decision that named an endpoint."""
    lb = two_pools(rules=RULES)
    fixed = lb.decide(Request(path="/old"), now=1.0)
    with pytest.raises(InvalidArgument, match="failed has no endpoint"):
        lb.decide(Request(), now=1.0, failed=fixed)
    with pytest.raises(ArgumentTypeError, match="failed is str; it must be a Decision"):
        lb.decide(Request(), now=1.0, failed="eu/a")  # type: ignore[arg-type]


def served_ids(decision: Decision) -> str:
    assert decision.pool is not None
    assert decision.endpoint is not None
    return f"{decision.pool.id}/{decision.endpoint.id}"
