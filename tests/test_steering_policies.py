"""lbkit.steering pool policies: failover, random, hash, geo, dynamic, proximity and least_*,
on both kernel paths: order, weights, health, minimal disruption, EWMA maths, hysteresis,
distances, reproducibility, and every rejected input."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.health import Member, MonitorGroup, MonitorResult
from lbkit.steering.model import Endpoint, Pool
from lbkit.steering.policies import (
    EARTH_RADIUS_KM,
    POLICIES,
    DynamicPolicy,
    FailoverPolicy,
    GeoPolicy,
    HashPolicy,
    LeastConnectionsPolicy,
    LeastOutstandingPolicy,
    PoolChoice,
    PoolPolicy,
    ProximityPolicy,
    RandomPolicy,
    SteeringContext,
    great_circle_km,
    make_policy,
)
from lbkit.steering.request import Request

LONDON = (51.5074, -0.1278)
FRANKFURT = (50.1109, 8.6821)
NEW_YORK = (40.7128, -74.0060)
BOSTON = (42.3601, -71.0589)


def pool(
    pool_id: str | int,
    *,
    weight: float = 1.0,
    coordinates: tuple[float, float] | None = None,
) -> Pool:
    return Pool(pool_id, [Endpoint(f"{pool_id}-1")], weight=weight, coordinates=coordinates)


def pools_of(*ids: str, weights: Sequence[float] | None = None) -> list[Pool]:
    if weights is None:
        weights = [1.0] * len(ids)
    return [pool(pool_id, weight=weight) for pool_id, weight in zip(ids, weights, strict=True)]


def context(seed: int = 1, **options: Any) -> SteeringContext:
    return SteeringContext.seeded(seed, **options)


def chosen_id(choice: PoolChoice | None) -> str | int | None:
    return None if choice is None else choice.pool.id


def draw_ids(
    policy: PoolPolicy,
    pools: Sequence[Pool],
    healthy: Collection[str | int],
    count: int,
    seed: int = 1,
    **options: Any,
) -> list[str | int | None]:
    """`count` choices with one generator, as a load balancer makes them."""
    shared = context(seed, **options)
    return [chosen_id(policy.choose(pools, healthy, Request(), shared)) for _ in range(count)]


@contextmanager
def using(kernels: dict[str, ModuleType]) -> Iterator[None]:
    """Run the public API on one kernel flavour (for lockstep comparisons in one test)."""
    saved = {name: getattr(_kernels, name) for name in kernels}
    for name, module in kernels.items():
        setattr(_kernels, name, module)
    try:
        yield
    finally:
        for name, module in saved.items():
            setattr(_kernels, name, module)


# Hypothesis: 1..8 pools named p0.., weights 0 or positive, a random healthy subset.
weights_strategy = st.lists(
    st.one_of(st.just(0.0), st.floats(0.01, 100.0), st.integers(1, 5).map(float)),
    min_size=1,
    max_size=8,
)


def configured(weights: list[float]) -> list[Pool]:
    return [pool(f"p{index}", weight=weight) for index, weight in enumerate(weights)]


# --- the interface ----------------------------------------------------------------------------


def test_policies_are_registered_by_name() -> None:
    """POLICIES maps each issue name to a PoolPolicy class whose `name` is that name."""
    assert list(POLICIES) == [
        "failover",
        "random",
        "hash",
        "geo",
        "dynamic",
        "proximity",
        "least_outstanding",
        "least_connections",
    ]
    for name, policy in POLICIES.items():
        assert issubclass(policy, PoolPolicy)
        assert policy.name == name


def test_pool_policy_is_abstract() -> None:
    """PoolPolicy cannot be instantiated; a policy must implement choose."""
    with pytest.raises(TypeError):
        PoolPolicy()  # type: ignore[abstract]


def test_validate_is_a_no_op_for_policies_that_name_no_pools() -> None:
    """Only geo checks pool ids; the others accept any configured ids."""
    for name in POLICIES:
        if name != "geo":
            make_policy(name).validate(["a"])


def test_make_policy_builds_each_policy_with_options() -> None:
    """make_policy passes options through to the policy's constructor."""
    assert isinstance(make_policy("failover"), FailoverPolicy)
    assert isinstance(make_policy("least_connections"), LeastConnectionsPolicy)
    dynamic = make_policy("dynamic", tau=5.0, margin=0.2, max_age=30.0)
    assert isinstance(dynamic, DynamicPolicy)
    assert (dynamic.tau, dynamic.margin, dynamic.max_age) == (5.0, 0.2, 30.0)
    geo = make_policy("geo", countries={"DE": ["eu"]}, cascade=True)
    assert isinstance(geo, GeoPolicy)
    assert geo.countries == {"DE": ("eu",)}
    assert geo.cascade is True


def test_make_policy_rejects_unknown_names_and_options() -> None:
    """An unknown policy lists the names; an unknown option lists the policy's options."""
    with pytest.raises(ConfigError) as error:
        make_policy("round_robin")
    assert str(error.value) == (
        "policy is 'round_robin'; it must be one of failover, random, hash, geo, dynamic, "
        "proximity, least_outstanding, least_connections"
    )
    with pytest.raises(ConfigError) as error:
        make_policy("failover", tau=1.0)
    assert str(error.value) == "option 'tau' is unknown for policy 'failover'; it takes no options"
    with pytest.raises(ConfigError) as error:
        make_policy("dynamic", decay=1.0)
    assert str(error.value) == (
        "option 'decay' is unknown for policy 'dynamic'; it takes tau, margin, max_age"
    )
    with pytest.raises(ArgumentTypeError) as type_error:
        make_policy(3)  # type: ignore[arg-type]
    assert str(type_error.value) == "policy is int; it must be a str"


def test_steering_context_validates_its_fields(impl: Any) -> None:
    """now must be a finite number, the count maps mappings, seeds 64-bit ints."""
    rng = _kernels.steering.Rng(1)
    with pytest.raises(InvalidArgument) as error:
        SteeringContext(now=math.nan, rng=rng)
    assert str(error.value) == "now is nan; it must be finite"
    with pytest.raises(ArgumentTypeError) as type_error:
        SteeringContext(now="0", rng=rng)  # type: ignore[arg-type]
    assert str(type_error.value) == "now is str; it must be a number"
    with pytest.raises(ArgumentTypeError) as type_error:
        SteeringContext(now=0.0, rng=rng, outstanding=[1])  # type: ignore[arg-type]
    assert str(type_error.value) == (
        "outstanding is list; it must be a mapping from pool id to int"
    )
    with pytest.raises(ConfigError) as error:
        SteeringContext.seeded(-1)
    assert str(error.value) == "seed is -1; it must be in 0..18446744073709551615"
    with pytest.raises(ArgumentTypeError) as type_error:
        SteeringContext.seeded(1.5)  # type: ignore[arg-type]
    assert str(type_error.value) == "seed is float; it must be an int or None"
    assert SteeringContext.seeded().now == 0.0
    assert SteeringContext.seeded(2**64 - 1, now=3.0).now == 3.0


# --- failover ---------------------------------------------------------------------------------


def test_failover_takes_the_first_healthy_pool_in_order(impl: Any) -> None:
    """Failover walks the configured order; the first healthy pool serves."""
    pools = pools_of("eu", "us", "ap")
    policy = FailoverPolicy()
    assert chosen_id(policy.choose(pools, {"eu", "us", "ap"}, Request(), context())) == "eu"
    assert chosen_id(policy.choose(pools, {"ap", "us"}, Request(), context())) == "us"
    choice = policy.choose(pools, {"ap"}, Request(), context())
    assert choice == PoolChoice(pools[2], "failover: 'ap' is the first healthy pool in order")


def test_failover_returns_none_when_no_pool_is_healthy(impl: Any) -> None:
    """With nothing healthy the load balancer's fallback pool must take over: None."""
    assert FailoverPolicy().choose(pools_of("eu", "us"), set(), Request(), context()) is None
    assert FailoverPolicy().choose([], {"eu"}, Request(), context()) is None


def test_failover_ignores_pool_weights(impl: Any) -> None:
    """As in Cloudflare, weights steer only the weighted policies: a weight-0 pool is still
    the first failover target."""
    pools = pools_of("standby", "us", weights=[0.0, 1.0])
    assert chosen_id(FailoverPolicy().choose(pools, {"standby", "us"}, Request(), context())) == (
        "standby"
    )


def test_healthy_ids_that_name_no_pool_are_ignored(impl: Any) -> None:
    """An id in `healthy` without a configured pool is never returned."""
    pools = pools_of("eu")
    for name in ("failover", "random", "least_outstanding", "least_connections", "proximity"):
        assert make_policy(name).choose(pools, {"ghost"}, Request(), context()) is None


# --- random -----------------------------------------------------------------------------------


def test_random_shares_are_normalised_over_the_healthy_pools(impl: Any) -> None:
    """Weights 1:2:3:4 with the weight-2 pool down give shares 1/8, 3/8, 4/8 (seeded, within
    one percentage point over 40,000 draws), and the down pool none."""
    pools = pools_of("a", "b", "c", "d", weights=[1, 2, 3, 4])
    picks = draw_ids(RandomPolicy(), pools, {"a", "c", "d"}, 40_000, seed=11)
    shares = {pool_id: picks.count(pool_id) / len(picks) for pool_id in "abcd"}
    assert shares["b"] == 0.0
    for pool_id, expected in (("a", 1 / 8), ("c", 3 / 8), ("d", 4 / 8)):
        assert abs(shares[pool_id] - expected) < 0.01, (pool_id, shares)


def test_random_returns_none_when_every_healthy_weight_is_zero(impl: Any) -> None:
    """All healthy pools at weight 0: no pool qualifies (weight 0 means no traffic), so the
    fallback pool serves."""
    pools = pools_of("a", "b", "c", weights=[0, 0, 5])
    assert RandomPolicy().choose(pools, {"a", "b"}, Request(), context()) is None


def test_random_reason_names_the_weight_and_the_healthy_total(impl: Any) -> None:
    """The reason shows the drawn pool's weight out of the healthy weights."""
    pools = pools_of("a", "b", "c", weights=[1, 3, 2])
    choice = RandomPolicy().choose(pools, {"b"}, Request(), context())
    assert choice is not None
    assert choice.reason == "random: drew 'b', weight 3 of 3 over the healthy pools"


def test_random_draws_once_per_choice_through_weighted_choice(impl: Any) -> None:
    """The policy's pick is the kernel's weighted_choice over the pools in configured order
    (unhealthy at weight 0), one draw per choice."""
    pools = pools_of("a", "b", "c", weights=[2, 5, 1])
    shared = context(99)
    reference = _kernels.steering.Rng(99)
    for _ in range(200):
        choice = RandomPolicy().choose(pools, {"a", "c"}, Request(), shared)
        index = _kernels.steering.weighted_choice(reference, [2.0, 0.0, 1.0])
        assert chosen_id(choice) == pools[index].id


# --- weighted policies: properties ------------------------------------------------------------


def weighted_policies() -> list[PoolPolicy]:
    return [RandomPolicy(), HashPolicy(), LeastOutstandingPolicy(), LeastConnectionsPolicy()]


@given(
    weights=weights_strategy,
    data=st.data(),
    seed=st.integers(0, 2**64 - 1),
)
def test_weighted_policies_never_choose_unhealthy_or_weight_zero_pools(
    impl: Any, weights: list[float], data: st.DataObject, seed: int
) -> None:
    """random, hash and least_* pick only healthy pools of positive weight, and answer None
    exactly when there is none."""
    pools = configured(weights)
    healthy = data.draw(st.sets(st.sampled_from([p.id for p in pools])), label="healthy")
    loads = {p.id: data.draw(st.integers(0, 50), label=f"load {p.id}") for p in pools}
    shared = SteeringContext.seeded(seed, outstanding=loads, connections=loads)
    eligible = {p.id for p in pools if p.id in healthy and p.weight > 0}
    for policy in weighted_policies():
        for key in range(5):
            choice = policy.choose(pools, healthy, Request(key=f"k{key}"), shared)
            if not eligible:
                assert choice is None, policy
            else:
                assert choice is not None, policy
                assert choice.pool.id in eligible, (policy, choice)


@given(weights=weights_strategy, data=st.data())
def test_order_policies_never_choose_unhealthy_pools(
    impl: Any, weights: list[float], data: st.DataObject
) -> None:
    """failover, geo, dynamic and proximity pick only healthy pools (weights ignored) and
    answer None exactly when none is healthy."""
    pools = [
        pool(f"p{index}", weight=weight, coordinates=(float(index), float(index)))
        for index, weight in enumerate(weights)
    ]
    ids = [p.id for p in pools]
    healthy = data.draw(st.sets(st.sampled_from(ids)), label="healthy")
    dynamic = DynamicPolicy()
    for index, pool_id in enumerate(ids):
        dynamic.observe(pool_id, "AMS", 0.01 * (len(ids) - index), now=0.0)
    request = Request(pop="AMS", coordinates=(0.5, 0.5), country="DE")
    policies: list[PoolPolicy] = [
        FailoverPolicy(),
        GeoPolicy(countries={"DE": list(reversed(ids))}),
        dynamic,
        ProximityPolicy(),
    ]
    for policy in policies:
        choice = policy.choose(pools, healthy, request, context())
        if healthy:
            assert choice is not None, policy
            assert choice.pool.id in healthy, (policy, choice)
        else:
            assert choice is None, policy


@given(weights=weights_strategy, seed=st.integers(0, 2**64 - 1))
def test_seeded_runs_reproduce_exactly(impl: Any, weights: list[float], seed: int) -> None:
    """The same seed gives the same sequence of picks, for every weighted policy."""
    pools = configured(weights)
    healthy = {p.id for p in pools}
    loads = {p.id: index for index, p in enumerate(pools)}
    for policy in (RandomPolicy(), LeastOutstandingPolicy(), LeastConnectionsPolicy()):
        first = draw_ids(policy, pools, healthy, 50, seed, outstanding=loads, connections=loads)
        again = draw_ids(policy, pools, healthy, 50, seed, outstanding=loads, connections=loads)
        assert first == again


@given(weights=weights_strategy, seed=st.integers(0, 2**64 - 1))
def test_seeded_runs_agree_across_kernel_paths(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    weights: list[float],
    seed: int,
) -> None:
    """A seed makes the same picks on the compiled and the pure kernels (random, least_*,
    and hash on the same keys)."""
    pools = configured(weights)
    healthy = {p.id for p in pools}
    loads = {p.id: index % 3 for index, p in enumerate(pools)}
    runs = []
    for kernels in (pure_kernels, fast_kernels):
        with using(kernels):
            picks = [
                draw_ids(policy, pools, healthy, 50, seed, outstanding=loads, connections=loads)
                for policy in (RandomPolicy(), LeastOutstandingPolicy(), LeastConnectionsPolicy())
            ]
            picks.append(
                [
                    chosen_id(HashPolicy().choose(pools, healthy, Request(key=f"k{i}"), context()))
                    for i in range(50)
                ]
            )
            runs.append(picks)
    assert runs[0] == runs[1]


# --- hash -------------------------------------------------------------------------------------


def test_hash_sends_a_key_to_the_same_pool_whatever_the_generator(impl: Any) -> None:
    """Hash steering is a function of the key and the healthy pools, not of the seed."""
    pools = pools_of("eu", "us", "ap")
    healthy = {"eu", "us", "ap"}
    for key in ("198.51.100.7", "203.0.113.9", "session-1"):
        answers = {
            chosen_id(HashPolicy().choose(pools, healthy, Request(key=key), context(seed)))
            for seed in range(5)
        }
        assert len(answers) == 1


def test_hash_uses_the_client_ip_when_the_request_has_no_key(impl: Any) -> None:
    """Request.hash_key: the key if set, else the client IP."""
    pools = pools_of("eu", "us", "ap", "sa")
    healthy = {"eu", "us", "ap", "sa"}
    for address in ("198.51.100.7", "203.0.113.9", "2001:db8::1"):
        by_ip = HashPolicy().choose(pools, healthy, Request(client_ip=address), context())
        by_key = HashPolicy().choose(pools, healthy, Request(key=address), context())
        assert chosen_id(by_ip) == chosen_id(by_key)


def test_hash_without_a_key_is_an_error(impl: Any) -> None:
    """A request with neither key nor client IP cannot be hashed: InvalidArgument."""
    with pytest.raises(InvalidArgument) as error:
        HashPolicy().choose(pools_of("eu"), {"eu"}, Request(), context())
    assert str(error.value) == (
        "request has no hash key (key and client_ip are both None); hash steering needs "
        "Request(key=...) or a client_ip"
    )


def test_hash_choice_is_the_rendezvous_kernel_pick(impl: Any) -> None:
    """The policy is rendezvous_pick over key_hash(key) and id_hash(pool id), unhealthy at
    weight 0; the reason does not reveal the key."""
    from lbkit.steering.keys import id_hash, key_hash

    pools = pools_of("eu", "us", "ap", weights=[1, 2, 3])
    for key in ("a", "b", "c", "d"):
        choice = HashPolicy().choose(pools, {"eu", "ap"}, Request(key=key), context())
        index = _kernels.steering.rendezvous_pick(
            key_hash(key), [id_hash(p.id) for p in pools], [1.0, 0.0, 3.0]
        )
        assert choice is not None
        assert choice.pool is pools[index]
        assert (
            choice.reason
            == f"hash: the key ranks {pools[index].id!r} first among the healthy pools"
        )


@given(
    weights=st.lists(st.floats(0.1, 10.0), min_size=2, max_size=8),
    uniform=st.booleans(),
    data=st.data(),
)
def test_hash_a_pool_going_down_moves_only_its_own_keys(
    impl: Any, weights: list[float], uniform: bool, data: st.DataObject
) -> None:
    """When one pool goes down only the keys it held move (to other healthy pools); when it
    comes back they return, and every other key stays put throughout."""
    if uniform:
        weights = [1.0] * len(weights)
    pools = configured(weights)
    ids = [p.id for p in pools]
    down = data.draw(st.sampled_from(ids), label="down")
    healthy = set(ids)
    keys = [f"198.51.100.{i}" for i in range(150)]
    before = [
        chosen_id(HashPolicy().choose(pools, healthy, Request(key=k), context())) for k in keys
    ]
    remaining = healthy - {down}
    after = [
        chosen_id(HashPolicy().choose(pools, remaining, Request(key=k), context())) for k in keys
    ]
    for old, new in zip(before, after, strict=True):
        if old == down:
            assert new in remaining
        else:
            assert new == old
    back = [chosen_id(HashPolicy().choose(pools, healthy, Request(key=k), context())) for k in keys]
    assert back == before


def test_hash_shares_follow_pool_weights(impl: Any) -> None:
    """Over many keys each pool's share is close to its weight share (1:3)."""
    pools = pools_of("small", "large", weights=[1, 3])
    keys = [f"client-{i}" for i in range(20_000)]
    picks = [
        chosen_id(HashPolicy().choose(pools, {"small", "large"}, Request(key=k), context()))
        for k in keys
    ]
    assert abs(picks.count("small") / len(picks) - 0.25) < 0.015


# --- least outstanding / least connections ----------------------------------------------------


@given(weights=weights_strategy, seed=st.integers(0, 2**64 - 1))
def test_least_policies_reduce_to_random_when_nothing_is_outstanding(
    impl: Any, weights: list[float], seed: int
) -> None:
    """With zero counts (missing or explicit) least_* make exactly the random policy's picks."""
    pools = configured(weights)
    healthy = {p.id for p in pools[::2]}
    zeros = {p.id: 0 for p in pools}
    expected = draw_ids(RandomPolicy(), pools, healthy, 40, seed)
    assert draw_ids(LeastOutstandingPolicy(), pools, healthy, 40, seed) == expected
    assert draw_ids(LeastOutstandingPolicy(), pools, healthy, 40, seed, outstanding=zeros) == (
        expected
    )
    assert draw_ids(LeastConnectionsPolicy(), pools, healthy, 40, seed, connections=zeros) == (
        expected
    )


def test_least_outstanding_prefers_idle_pools(impl: Any) -> None:
    """Equal weights, 9 outstanding on one pool and none on the other: shares 1/10 : 1 of
    the weights, i.e. about 9 % and 91 %."""
    pools = pools_of("busy", "idle")
    picks = draw_ids(
        LeastOutstandingPolicy(), pools, {"busy", "idle"}, 20_000, 3, outstanding={"busy": 9}
    )
    assert abs(picks.count("busy") / len(picks) - (0.1 / 1.1)) < 0.01


def test_least_connections_reads_connections_not_outstanding(impl: Any) -> None:
    """least_connections weighs by context.connections and ignores outstanding, and the
    other way round."""
    pools = pools_of("busy", "idle")
    healthy = {"busy", "idle"}
    loaded = {"busy": 1000}
    by_connections = draw_ids(LeastConnectionsPolicy(), pools, healthy, 500, 5, connections=loaded)
    assert by_connections.count("busy") < 10
    ignored = draw_ids(LeastConnectionsPolicy(), pools, healthy, 500, 5, outstanding=loaded)
    assert ignored == draw_ids(RandomPolicy(), pools, healthy, 500, 5)
    by_outstanding = draw_ids(LeastOutstandingPolicy(), pools, healthy, 500, 5, outstanding=loaded)
    assert by_outstanding.count("busy") < 10


def test_least_reasons_show_the_count(impl: Any) -> None:
    """The reason shows the weight and the count that divided it."""
    pools = pools_of("eu", weights=[2])
    choice = LeastOutstandingPolicy().choose(
        pools, {"eu"}, Request(), context(outstanding={"eu": 4})
    )
    assert choice is not None
    assert choice.reason == "least_outstanding: drew 'eu', weight 2 / (4 outstanding + 1)"
    choice = LeastConnectionsPolicy().choose(
        pools, {"eu"}, Request(), context(connections={"eu": 7})
    )
    assert choice is not None
    assert choice.reason == "least_connections: drew 'eu', weight 2 / (7 connections + 1)"


def test_least_policies_reject_bad_counts(impl: Any) -> None:
    """Negative or non-int counts of candidate pools are errors; unhealthy pools' are unread."""
    pools = pools_of("eu", "us")
    with pytest.raises(InvalidArgument) as error:
        LeastOutstandingPolicy().choose(pools, {"eu"}, Request(), context(outstanding={"eu": -1}))
    assert str(error.value) == "outstanding['eu'] is -1; counts must be >= 0"
    with pytest.raises(ArgumentTypeError) as type_error:
        LeastConnectionsPolicy().choose(pools, {"eu"}, Request(), context(connections={"eu": 1.5}))
    assert str(type_error.value) == "connections['eu'] is float; counts must be ints"
    with pytest.raises(ArgumentTypeError):
        LeastConnectionsPolicy().choose(pools, {"eu"}, Request(), context(connections={"eu": True}))
    choice = LeastOutstandingPolicy().choose(
        pools, {"eu"}, Request(), context(outstanding={"us": -5})
    )
    assert chosen_id(choice) == "eu"


# --- geo --------------------------------------------------------------------------------------

GEO_POOLS = pools_of("lhr-dc", "uk", "eu", "us", "ap")
EVERYONE = {"lhr-dc", "uk", "eu", "us", "ap"}


def geo(**options: Any) -> GeoPolicy:
    return GeoPolicy(
        pops={"LHR": ["lhr-dc", "uk"]},
        countries={"GB": ["uk", "eu"], "US": ["us"]},
        regions={"WEU": ["eu"], "ENAM": ["us"]},
        default_pools=["us", "eu"],
        **options,
    )


def test_geo_uses_the_most_specific_mapping(impl: Any) -> None:
    """PoP beats country beats region beats the default pools."""
    policy = geo()
    cases = [
        (Request(pop="LHR", country="GB", region="WEU"), "lhr-dc"),
        (Request(pop="CDG", country="GB", region="WEU"), "uk"),
        (Request(country="FR", region="WEU"), "eu"),
        (Request(country="JP", region="NEAS"), "us"),
        (Request(), "us"),
    ]
    for request, expected in cases:
        assert chosen_id(policy.choose(GEO_POOLS, EVERYONE, request, context())) == expected


def test_geo_uses_failover_order_inside_a_mapping(impl: Any) -> None:
    """Inside the applicable list, the first healthy pool serves."""
    policy = geo()
    request = Request(country="GB")
    choice = policy.choose(GEO_POOLS, EVERYONE - {"uk"}, request, context())
    assert choice is not None
    assert choice.reason == "geo: 'eu' is the first healthy pool for country 'GB'"


def test_geo_without_cascade_goes_to_the_fallback_pool(impl: Any) -> None:
    """By default a mapping with no healthy pool yields None (the fallback pool), even when
    less specific mappings and the default pools have healthy pools."""
    policy = geo()
    request = Request(pop="LHR", country="GB", region="WEU")
    assert policy.choose(GEO_POOLS, {"eu", "us", "ap"}, request, context()) is None
    assert policy.choose(GEO_POOLS, {"ap"}, Request(), context()) is None


def test_geo_cascade_tries_less_specific_mappings_then_default_pools(impl: Any) -> None:
    """With cascade=True the next mapping that exists for the request is tried, then the
    default pools; the reason names what was passed over."""
    policy = geo(cascade=True)
    request = Request(pop="LHR", country="GB", region="WEU")
    choice = policy.choose(GEO_POOLS, {"eu", "us"}, request, context())
    assert choice is not None
    assert choice.pool.id == "eu"
    assert choice.reason == (
        "geo: 'eu' is the first healthy pool for country 'GB' (no healthy pool for pop 'LHR')"
    )
    choice = policy.choose(GEO_POOLS, {"us", "ap"}, request, context())
    assert choice is not None
    assert choice.reason == (
        "geo: 'us' is the first healthy default pool (no healthy pool for pop 'LHR', "
        "country 'GB', region 'WEU')"
    )
    assert policy.choose(GEO_POOLS, {"ap"}, request, context()) is None


def test_geo_cascade_skips_mappings_the_request_does_not_match(impl: Any) -> None:
    """Only mappings that exist for the request take part: an unmapped country is skipped."""
    policy = geo(cascade=True)
    request = Request(pop="LHR", country="FR", region="WEU")
    choice = policy.choose(GEO_POOLS, {"eu"}, request, context())
    assert choice is not None
    assert choice.reason == (
        "geo: 'eu' is the first healthy pool for region 'WEU' (no healthy pool for pop 'LHR')"
    )


def test_geo_default_pools_default_to_the_configured_order(impl: Any) -> None:
    """Without default_pools, unmapped requests get all pools in configured order."""
    policy = GeoPolicy(countries={"GB": ["uk"]})
    choice = policy.choose(GEO_POOLS, {"eu", "ap"}, Request(country="DE"), context())
    assert choice is not None
    assert choice.reason == "geo: 'eu' is the first healthy default pool"


def test_geo_ignores_pool_weights(impl: Any) -> None:
    """Geo uses failover order: a weight-0 pool is still chosen first in its list."""
    pools = pools_of("uk", "eu", weights=[0, 1])
    policy = GeoPolicy(countries={"GB": ["uk", "eu"]})
    assert chosen_id(policy.choose(pools, {"uk", "eu"}, Request(country="GB"), context())) == "uk"


def test_geo_validate_rejects_unknown_pool_ids() -> None:
    """validate names the first mapped id that is not a configured pool."""
    policy = geo()
    policy.validate([p.id for p in GEO_POOLS])
    with pytest.raises(ConfigError) as error:
        policy.validate(["uk", "eu", "us", "ap"])
    assert str(error.value) == (
        "pops['LHR'][0] is 'lhr-dc', which is not a configured pool; "
        "the pools are 'uk', 'eu', 'us', 'ap'"
    )
    with pytest.raises(ConfigError) as error:
        GeoPolicy(default_pools=["eu", "mars"]).validate(["eu"])
    assert str(error.value) == (
        "default_pools[1] is 'mars', which is not a configured pool; the pools are 'eu'"
    )
    with pytest.raises(ConfigError) as error:
        GeoPolicy(regions={"WEU": [1]}).validate(["1"])
    assert str(error.value) == (
        "regions['WEU'][0] is 1, which is not a configured pool; the pools are '1'"
    )


@pytest.mark.parametrize(
    ("options", "error_type", "message"),
    [
        (
            {"countries": {"GB": []}},
            ConfigError,
            "countries['GB'] is empty; it must name at least one pool",
        ),
        (
            {"pops": {"LHR": ["uk", "eu", "uk"]}},
            ConfigError,
            "pops['LHR'][2] repeats the pool 'uk'; each pool appears once per list",
        ),
        (
            {"default_pools": ["uk", "uk"]},
            ConfigError,
            "default_pools[1] repeats the pool 'uk'; each pool appears once per list",
        ),
        (
            {"default_pools": []},
            ConfigError,
            "default_pools is empty; it must name at least one pool",
        ),
        (
            {"regions": {"WEU": "eu"}},
            ArgumentTypeError,
            "regions['WEU'] is str; it must be a list of pool ids in failover order",
        ),
        (
            {"regions": [("WEU", ["eu"])]},
            ArgumentTypeError,
            "regions is list; it must be a mapping from a region to a list of pool ids",
        ),
        ({"countries": {"": ["eu"]}}, ConfigError, "countries key '' is ''; it must not be empty"),
        ({"countries": {7: ["eu"]}}, ArgumentTypeError, "countries key 7 is int; it must be a str"),
        (
            {"pops": {"LHR": [None]}},
            ArgumentTypeError,
            "pops['LHR'][0] is NoneType; pool ids must be str or int",
        ),
        ({"pops": {"LHR": [""]}}, ConfigError, "pops['LHR'][0] is ''; pool ids must not be empty"),
        ({"cascade": 1}, ArgumentTypeError, "cascade is int; it must be a bool"),
    ],
)
def test_geo_rejects_malformed_maps(
    options: dict[str, Any], error_type: type[Exception], message: str
) -> None:
    """Every malformed geo option is refused at construction with a message naming it."""
    with pytest.raises(error_type) as error:
        GeoPolicy(**options)
    assert str(error.value) == message


def test_geo_maps_are_copied_as_tuples() -> None:
    """The policy keeps its own immutable copy of the lists it was given."""
    countries = {"GB": ["uk"]}
    policy = GeoPolicy(countries=countries, default_pools=("eu",))
    countries["GB"].append("eu")
    assert policy.countries == {"GB": ("uk",)}
    assert policy.default_pools == ("eu",)


# --- dynamic ----------------------------------------------------------------------------------


@given(
    tau=st.floats(0.5, 100.0),
    samples=st.lists(st.tuples(st.floats(0.0, 50.0), st.floats(0.0, 2.0)), min_size=1, max_size=12),
)
def test_dynamic_ewma_decays_with_exp_of_elapsed_time(
    impl: Any, tau: float, samples: list[tuple[float, float]]
) -> None:
    """Each estimate is w * previous + (1 - w) * sample with w = exp(-dt / tau); the first
    sample is the estimate."""
    policy = DynamicPolicy(tau=tau)
    now = 0.0
    expected: float | None = None
    last = 0.0
    for gap, rtt in samples:
        now += gap
        if expected is None:
            expected = rtt
        else:
            weight = math.exp(-(now - last) / tau)
            expected = weight * expected + (1.0 - weight) * rtt
        last = now
        assert math.isclose(policy.observe("eu", "AMS", rtt, now=now), expected, rel_tol=1e-12)
    assert policy.rtt("eu", "AMS") == pytest.approx(expected, rel=1e-12)


def test_dynamic_ewma_worked_example(impl: Any) -> None:
    """After tau seconds the old estimate keeps 1/e of its weight: 0.1 then 0.2 gives
    0.1/e + 0.2 (1 - 1/e)."""
    policy = DynamicPolicy(tau=10.0)
    policy.observe("eu", "AMS", 0.1, now=0.0)
    value = policy.observe("eu", "AMS", 0.2, now=10.0)
    assert value == pytest.approx(0.1 * math.exp(-1.0) + 0.2 * (1.0 - math.exp(-1.0)))
    assert value == pytest.approx(0.16321205588)


def test_dynamic_picks_the_lowest_rtt_per_location(impl: Any) -> None:
    """Each requesting PoP gets the pool that is fastest from there."""
    pools = pools_of("eu", "us")
    policy = DynamicPolicy()
    policy.observe("eu", "AMS", 0.010, now=0.0)
    policy.observe("us", "AMS", 0.090, now=0.0)
    policy.observe("eu", "JFK", 0.080, now=0.0)
    policy.observe("us", "JFK", 0.015, now=0.0)
    healthy = {"eu", "us"}
    choice = policy.choose(pools, healthy, Request(pop="AMS"), context())
    assert choice is not None
    assert choice.reason == "dynamic: 'eu' has the lowest RTT from 'AMS' (10.0 ms)"
    assert chosen_id(policy.choose(pools, healthy, Request(pop="JFK"), context())) == "us"
    assert policy.current("AMS") == "eu"
    assert policy.current("JFK") == "us"


def set_rtt(policy: DynamicPolicy, pool_id: str, rtt: float, now: float) -> None:
    """With tau = 1 and samples 1000 s apart, w = exp(-1000) == 0.0: the estimate is the
    sample."""
    policy.observe(pool_id, "AMS", rtt, now=now)
    assert policy.rtt(pool_id, "AMS") == rtt


def test_dynamic_margin_keeps_the_current_pool_until_another_is_clearly_faster(
    impl: Any,
) -> None:
    """With margin 0.1 the location stays on its pool while that pool is at most 10 % slower
    than the best, and moves once it is slower by more."""
    pools = pools_of("eu", "us")
    healthy = {"eu", "us"}
    policy = DynamicPolicy(tau=1.0, margin=0.1)
    set_rtt(policy, "eu", 0.100, 0.0)
    set_rtt(policy, "us", 0.200, 0.0)
    assert chosen_id(policy.choose(pools, healthy, Request(pop="AMS"), context())) == "eu"
    set_rtt(policy, "us", 0.095, 1000.0)
    choice = policy.choose(pools, healthy, Request(pop="AMS"), context())
    assert choice is not None
    assert choice.pool.id == "eu"
    assert choice.reason == (
        "dynamic: 'eu' kept for 'AMS' (100.0 ms, within 10% of 'us' at 95.0 ms)"
    )
    set_rtt(policy, "us", 0.0905, 2000.0)  # eu is 10.5 % slower: too slow to keep
    choice = policy.choose(pools, healthy, Request(pop="AMS"), context())
    assert chosen_id(choice) == "us"
    assert policy.current("AMS") == "us"
    set_rtt(policy, "eu", 0.085, 2000.0)  # now us is only 6 % slower: it stays
    assert chosen_id(policy.choose(pools, healthy, Request(pop="AMS"), context())) == "us"


def test_dynamic_without_margin_always_moves_to_the_fastest(impl: Any) -> None:
    """margin=0 follows the lowest estimate at every choice (ties stay on the current pool)."""
    pools = pools_of("eu", "us")
    healthy = {"eu", "us"}
    policy = DynamicPolicy(tau=1.0)
    set_rtt(policy, "eu", 0.100, 0.0)
    set_rtt(policy, "us", 0.100, 0.0)
    assert chosen_id(policy.choose(pools, healthy, Request(pop="AMS"), context())) == "eu"
    set_rtt(policy, "us", 0.099, 1000.0)
    assert chosen_id(policy.choose(pools, healthy, Request(pop="AMS"), context())) == "us"
    set_rtt(policy, "eu", 0.099, 1000.0)
    assert chosen_id(policy.choose(pools, healthy, Request(pop="AMS"), context())) == "us"


def test_dynamic_leaves_an_unhealthy_current_pool_at_once(impl: Any) -> None:
    """Hysteresis never keeps a pool that went unhealthy."""
    pools = pools_of("eu", "us")
    policy = DynamicPolicy(tau=1.0, margin=10.0)
    set_rtt(policy, "eu", 0.010, 0.0)
    set_rtt(policy, "us", 0.500, 0.0)
    assert chosen_id(policy.choose(pools, {"eu", "us"}, Request(pop="AMS"), context())) == "eu"
    assert chosen_id(policy.choose(pools, {"us"}, Request(pop="AMS"), context())) == "us"
    assert policy.current("AMS") == "us"


def test_dynamic_without_data_uses_failover_order_and_says_so(impl: Any) -> None:
    """No RTT data from the PoP, or no PoP on the request: failover order, named in the
    reason; nothing healthy: None."""
    pools = pools_of("eu", "us")
    policy = DynamicPolicy()
    policy.observe("us", "AMS", 0.01, now=0.0)
    choice = policy.choose(pools, {"eu", "us"}, Request(pop="SYD"), context())
    assert choice is not None
    assert (
        choice.reason
        == "dynamic: no healthy pool has RTT data from 'SYD'; 'eu' is the first healthy pool in order"
    )
    choice = policy.choose(pools, {"eu", "us"}, Request(), context())
    assert choice is not None
    assert (
        choice.reason == "dynamic: the request has no pop; 'eu' is the first healthy pool in order"
    )
    choice = policy.choose(pools, {"eu"}, Request(pop="AMS"), context())
    assert choice is not None
    assert (
        choice.reason
        == "dynamic: no healthy pool has RTT data from 'AMS'; 'eu' is the first healthy pool in order"
    )
    assert policy.choose(pools, set(), Request(pop="AMS"), context()) is None


def test_dynamic_pools_with_data_rank_before_pools_without(impl: Any) -> None:
    """A healthy pool with an estimate beats one earlier in order that has none."""
    pools = pools_of("eu", "us")
    policy = DynamicPolicy()
    policy.observe("us", "AMS", 5.0, now=0.0)
    assert chosen_id(policy.choose(pools, {"eu", "us"}, Request(pop="AMS"), context())) == "us"


def test_dynamic_max_age_turns_old_estimates_into_no_data(impl: Any) -> None:
    """An estimate older than max_age at context.now no longer counts."""
    pools = pools_of("eu", "us")
    policy = DynamicPolicy(max_age=60.0)
    policy.observe("us", "AMS", 0.01, now=0.0)
    assert (
        chosen_id(policy.choose(pools, {"eu", "us"}, Request(pop="AMS"), context(now=60.0))) == "us"
    )
    choice = policy.choose(pools, {"eu", "us"}, Request(pop="AMS"), context(now=60.5))
    assert choice is not None
    assert (
        choice.reason
        == "dynamic: no healthy pool has RTT data from 'AMS'; 'eu' is the first healthy pool in order"
    )


def test_dynamic_ignores_pool_weights(impl: Any) -> None:
    """A weight-0 pool with the lowest RTT is still chosen (weights steer random policies)."""
    pools = pools_of("eu", "us", weights=[1, 0])
    policy = DynamicPolicy()
    policy.observe("eu", "AMS", 0.05, now=0.0)
    policy.observe("us", "AMS", 0.01, now=0.0)
    assert chosen_id(policy.choose(pools, {"eu", "us"}, Request(pop="AMS"), context())) == "us"


def test_dynamic_observe_health_feeds_the_mean_latency_per_location(impl: Any) -> None:
    """observe_health averages, per location, the latencies of the pool's endpoints that have
    one there, and skips endpoints of other pools and endpoints the report lacks."""
    group = MonitorGroup([Member("http")])
    results = [
        MonitorResult("http", "a", "AMS", True, 0.010, observed_at=0.0),
        MonitorResult("http", "a", "FRA", True, 0.030, observed_at=0.0),
        MonitorResult("http", "b", "AMS", True, 0.020, observed_at=0.0),
        MonitorResult("http", "b", "FRA", False, None, observed_at=0.0),
        MonitorResult("http", "other", "AMS", True, 9.0, observed_at=0.0),
    ]
    report = group.evaluate(results, now=1.0)
    eu = Pool("eu", [Endpoint("a"), Endpoint("b"), Endpoint("c")])
    policy = DynamicPolicy(tau=10.0)
    assert policy.observe_health(eu, report, now=1.0) == {
        "AMS": pytest.approx(0.015),
        "FRA": pytest.approx(0.030),
    }
    assert policy.rtt("eu", "AMS") == pytest.approx(0.015)
    assert policy.rtt("eu", "FRA") == pytest.approx(0.030)
    assert policy.rtt("other", "AMS") is None
    later = group.evaluate(
        [MonitorResult("http", "a", "AMS", True, 0.050, observed_at=11.0)], now=11.0
    )
    policy.observe_health(eu, later, now=11.0)
    weight = math.exp(-1.0)
    assert policy.rtt("eu", "AMS") == pytest.approx(weight * 0.015 + (1 - weight) * 0.050)


def test_dynamic_observe_health_rejects_bad_reports(impl: Any) -> None:
    """The pool must be a Pool and the report map endpoint ids to EndpointHealth."""
    policy = DynamicPolicy()
    eu = Pool("eu", [Endpoint("a")])
    with pytest.raises(ArgumentTypeError) as error:
        policy.observe_health("eu", {}, now=0.0)  # type: ignore[arg-type]
    assert str(error.value) == "pool is str; it must be a Pool"
    with pytest.raises(ArgumentTypeError) as error:
        policy.observe_health(eu, [], now=0.0)  # type: ignore[arg-type]
    assert str(error.value) == "report is list; it must map endpoint ids to EndpointHealth"
    with pytest.raises(ArgumentTypeError) as error:
        policy.observe_health(eu, {"a": 0.01}, now=0.0)  # type: ignore[dict-item]
    assert str(error.value) == "report['a'] is float; it must be an EndpointHealth"


@pytest.mark.parametrize(
    ("options", "error_type", "message"),
    [
        ({"tau": 0.0}, ConfigError, "tau is 0.0; it must be finite and > 0 seconds"),
        ({"tau": -1}, ConfigError, "tau is -1.0; it must be finite and > 0 seconds"),
        ({"tau": math.inf}, ConfigError, "tau is inf; it must be finite and > 0 seconds"),
        ({"tau": math.nan}, ConfigError, "tau is nan; it must be finite and > 0 seconds"),
        ({"tau": "60"}, ArgumentTypeError, "tau is str; it must be a number"),
        ({"margin": -0.1}, ConfigError, "margin is -0.1; it must be finite and >= 0 (0.1 = 10 %)"),
        (
            {"margin": math.nan},
            ConfigError,
            "margin is nan; it must be finite and >= 0 (0.1 = 10 %)",
        ),
        ({"margin": True}, ArgumentTypeError, "margin is bool; it must be a number"),
        ({"max_age": 0}, ConfigError, "max_age is 0.0; it must be None or finite and > 0"),
        ({"max_age": math.inf}, ConfigError, "max_age is inf; it must be None or finite and > 0"),
    ],
)
def test_dynamic_rejects_bad_options(
    options: dict[str, Any], error_type: type[Exception], message: str
) -> None:
    """tau finite > 0, margin finite >= 0, max_age None or finite > 0."""
    with pytest.raises(error_type) as error:
        DynamicPolicy(**options)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("arguments", "error_type", "message"),
    [
        (
            ("eu", "AMS", -0.1, 0.0),
            InvalidArgument,
            "rtt is -0.1; it must be finite and >= 0 seconds",
        ),
        (
            ("eu", "AMS", math.nan, 0.0),
            InvalidArgument,
            "rtt is nan; it must be finite and >= 0 seconds",
        ),
        (("eu", "AMS", 0.1, math.inf), InvalidArgument, "now is inf; it must be finite"),
        (("eu", "", 0.1, 0.0), ConfigError, "location is ''; it must not be empty"),
        (("eu", None, 0.1, 0.0), ArgumentTypeError, "location is NoneType; it must be a str"),
        (
            (1.5, "AMS", 0.1, 0.0),
            ArgumentTypeError,
            "pool_id is float; pool ids must be str or int",
        ),
        (("eu", "AMS", "fast", 0.0), ArgumentTypeError, "rtt is str; it must be a number"),
    ],
)
def test_dynamic_observe_rejects_bad_samples(
    arguments: tuple[Any, Any, Any, Any], error_type: type[Exception], message: str
) -> None:
    """Samples must be finite and >= 0, at a finite time, for a named pool and location."""
    pool_id, location, rtt, now = arguments
    with pytest.raises(error_type) as error:
        DynamicPolicy().observe(pool_id, location, rtt, now=now)
    assert str(error.value) == message


def test_dynamic_observe_rejects_time_going_backwards() -> None:
    """A sample older than the previous one for the same pool and location is refused."""
    policy = DynamicPolicy()
    policy.observe("eu", "AMS", 0.1, now=10.0)
    with pytest.raises(InvalidArgument) as error:
        policy.observe("eu", "AMS", 0.1, now=5.0)
    assert str(error.value) == (
        "now is 5.0, before the previous sample at 10.0; time must not go backwards"
    )
    policy.observe("eu", "FRA", 0.1, now=5.0)


# --- proximity --------------------------------------------------------------------------------


def cosine_law_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """An independent formula (spherical law of cosines) to check the haversine against."""
    phi_a, phi_b = math.radians(a[0]), math.radians(b[0])
    delta = math.radians(b[1] - a[1])
    cosine = math.sin(phi_a) * math.sin(phi_b) + math.cos(phi_a) * math.cos(phi_b) * math.cos(delta)
    return EARTH_RADIUS_KM * math.acos(max(-1.0, min(1.0, cosine)))


def test_great_circle_distances_of_known_cities() -> None:
    """London-Frankfurt is about 638 km, London-New York about 5,570 km, and the haversine
    agrees with the law of cosines."""
    assert great_circle_km(LONDON, FRANKFURT) == pytest.approx(638, abs=1)
    assert great_circle_km(LONDON, NEW_YORK) == pytest.approx(5570, abs=5)
    for a, b in ((LONDON, FRANKFURT), (LONDON, NEW_YORK), (FRANKFURT, BOSTON)):
        assert great_circle_km(a, b) == pytest.approx(cosine_law_km(a, b), rel=1e-9)
        assert great_circle_km(a, b) == pytest.approx(great_circle_km(b, a), rel=1e-12)
    assert great_circle_km(LONDON, LONDON) == 0.0
    assert great_circle_km((0.0, 0.0), (0.0, 180.0)) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert great_circle_km((90.0, 0.0), (-90.0, 0.0)) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def proximity_pools() -> list[Pool]:
    return [
        pool("nyc", coordinates=NEW_YORK),
        pool("fra", coordinates=FRANKFURT),
        pool("lon", coordinates=LONDON),
    ]


def test_proximity_picks_the_nearest_healthy_pool(impl: Any) -> None:
    """From London: London, then Frankfurt when London is down; from Boston: New York."""
    pools = proximity_pools()
    everyone = {"nyc", "fra", "lon"}
    london = Request(coordinates=(51.5, -0.12))
    assert chosen_id(ProximityPolicy().choose(pools, everyone, london, context())) == "lon"
    choice = ProximityPolicy().choose(pools, {"nyc", "fra"}, Request(coordinates=LONDON), context())
    assert choice is not None
    assert choice.reason == "proximity: 'fra' is the nearest healthy pool (638 km)"
    boston = Request(coordinates=BOSTON)
    assert chosen_id(ProximityPolicy().choose(pools, everyone, boston, context())) == "nyc"


def test_proximity_ties_go_to_the_configured_order(impl: Any) -> None:
    """Two pools at the same place: the one listed first wins."""
    pools = [pool("second", coordinates=FRANKFURT), pool("first", coordinates=FRANKFURT)]
    request = Request(coordinates=LONDON)
    assert chosen_id(ProximityPolicy().choose(pools, {"first", "second"}, request, context())) == (
        "second"
    )


def test_proximity_skips_pools_without_coordinates(impl: Any) -> None:
    """A pool without coordinates is passed over for any healthy pool that has them, and used
    in failover order only when none has them."""
    pools = [pool("nowhere"), pool("nyc", coordinates=NEW_YORK), pool("unknown")]
    request = Request(coordinates=LONDON)
    assert chosen_id(ProximityPolicy().choose(pools, {"nowhere", "nyc"}, request, context())) == (
        "nyc"
    )
    choice = ProximityPolicy().choose(pools, {"unknown", "nowhere"}, request, context())
    assert choice is not None
    assert choice.reason == (
        "proximity: no healthy pool has coordinates; 'nowhere' is the first healthy pool in order"
    )


def test_proximity_without_request_coordinates_uses_failover_order(impl: Any) -> None:
    """A request without coordinates gets the first healthy pool, and the reason says why."""
    choice = ProximityPolicy().choose(proximity_pools(), {"fra", "lon"}, Request(), context())
    assert choice is not None
    assert choice.reason == (
        "proximity: the request has no coordinates; 'fra' is the first healthy pool in order"
    )
    assert (
        ProximityPolicy().choose(proximity_pools(), set(), Request(coordinates=LONDON), context())
        is None
    )


def test_proximity_ignores_pool_weights(impl: Any) -> None:
    """The nearest pool serves even at weight 0 (weights steer the weighted policies)."""
    pools = [pool("lon", weight=0.0, coordinates=LONDON), pool("nyc", coordinates=NEW_YORK)]
    request = Request(coordinates=FRANKFURT)
    assert chosen_id(ProximityPolicy().choose(pools, {"lon", "nyc"}, request, context())) == "lon"


def test_pool_weights_past_the_float_range_are_an_error(impl: Any) -> None:
    """Weights whose sum overflows would skew the draw; the weighted policies refuse them."""
    pools = [Pool("a", [Endpoint("x")], weight=1e308), Pool("b", [Endpoint("y")], weight=1e308)]
    for policy in (RandomPolicy(), LeastOutstandingPolicy(), LeastConnectionsPolicy()):
        with pytest.raises(ConfigError, match="the pool weights sum to more than a float can hold"):
            policy.choose(pools, {"a", "b"}, Request(), SteeringContext.seeded(1))
    assert (
        Pool("a", [Endpoint("x", weight=1e308), Endpoint("y", weight=1e308)]).total_weight
        == math.inf
    )
