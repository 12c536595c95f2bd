"""Steering configurations as JSON, and a seeded simulation of the traffic they would see.

:func:`scenario_from_json` builds a :class:`~lbkit.steering.LoadBalancer` and a traffic mix
from one JSON document (the format ``lbkit steer simulate`` reads, documented in
:data:`FORMAT`); :func:`simulate` sends a number of seeded requests through it and counts where
they go, next to the share each pool and endpoint is configured for. A simulation answers the
questions an operator has before a change: how much traffic the standby pool gets when the
primary loses two endpoints, whether weights 3:1 really give 75 %, how many clients move when a
pool goes down under hash steering.

>>> scenario = scenario_from_json({
...     "pools": [{"id": "eu", "endpoints": [{"id": "eu-1"}, {"id": "eu-2", "weight": 3}]}],
...     "seed": 1})
>>> report = simulate(scenario, requests=4000)
>>> report.endpoints[("eu", "eu-2")], report.expected_endpoint_share[("eu", "eu-2")]
(3010, 0.75)
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

from lbkit import _kernels
from lbkit._json import check_object, json_kind
from lbkit.errors import ArgumentTypeError, ConfigError, LbkitError, NoHealthyEndpoint
from lbkit.steering.affinity import AffinityConfig, SessionAffinity
from lbkit.steering.balancer import Decision, LoadBalancer
from lbkit.steering.model import Endpoint, Pool
from lbkit.steering.pickers import SlowStart
from lbkit.steering.policies import make_policy
from lbkit.steering.request import Request

__all__ = [
    "FORMAT",
    "Scenario",
    "SimulationReport",
    "TrafficClass",
    "scenario_from_json",
    "simulate",
]

#: The JSON format :func:`scenario_from_json` reads, for ``lbkit steer simulate --help``.
FORMAT = """\
The JSON document is an object:
  "pools"            list of pools, in failover order (required); each pool:
      {"id": "eu", "weight": 1, "minimum_healthy": 1, "coordinates": [lat, lon],
       "region": "EU", "endpoints": [{"id": "eu-1", "weight": 1, "healthy": true,
       "address": "10.0.0.1:80", "location": "fra"}, ...]}
  "policy"           a policy name, or {"name": "geo", ...its options} (default "failover")
  "fallback_pool"    a pool id
  "endpoint_picker"  a picker kind, or an object from pool id to kind (default "random")
  "picker_options"   options for the pickers, e.g. {"mode": "edf"}; "slow_start" is
                     {"window": 30, "aggression": 1, "floor": 0.1}
  "rules"            a list of rules (see lbkit.steering.rules)
  "affinity"         affinity settings, e.g. {"by": "cookie", "failover": "temporary"}
  "panic_threshold"  a number in [0, 1] (default 0.5); "fail_open": a boolean (default true)
  "rtt"              RTT samples for dynamic steering: [{"pool": "eu", "location": "FRA",
                     "rtt": 0.012}, ...]
  "traffic"          the request mix: [{"share": 3, "request": {"country": "DE",
                     "pop": "FRA", "path": "/", "headers": {...}, "coordinates": [...]}}, ...];
                     default one class of plain requests. Each simulated request comes from
                     one of "clients" client addresses (default 10000), so hash steering and
                     affinity see real clients.
  "seed"             an integer seed (default 0)
"""

_TOP_KEYS = {
    "pools": "a list",
    "policy": "any",
    "fallback_pool": "any",
    "endpoint_picker": "any",
    "picker_options": "an object",
    "rules": "a list",
    "affinity": "an object",
    "panic_threshold": "a number",
    "fail_open": "a boolean",
    "rtt": "a list",
    "traffic": "a list",
    "clients": "an integer",
    "seed": "an integer",
}
_POOL_KEYS = {
    "id": "any",
    "endpoints": "a list",
    "weight": "a number",
    "minimum_healthy": "an integer",
    "coordinates": "a list",
    "region": "a string",
}
_ENDPOINT_KEYS = {
    "id": "any",
    "weight": "a number",
    "healthy": "a boolean",
    "address": "a string",
    "location": "a string",
}
_RTT_KEYS = {"pool": "any", "location": "a string", "rtt": "a number", "at": "a number"}
_TRAFFIC_KEYS = {"share": "a number", "request": "an object"}
_REQUEST_KEYS = {
    "host": "a string",
    "path": "a string",
    "method": "a string",
    "scheme": "a string",
    "headers": "an object",
    "query": "an object",
    "cookies": "an object",
    "client_ip": "a string",
    "country": "a string",
    "region": "a string",
    "pop": "a string",
    "coordinates": "a list",
    "key": "a string",
}
_SLOW_START_KEYS = {"window": "a number", "aggression": "a number", "floor": "a number"}
#: The affinity key of a simulation: fixed, since nothing outside the simulation reads it.
_SIMULATION_KEY = b"lbkit steering simulation key...."


@attrs.frozen
class TrafficClass:
    """One kind of request in a simulated mix, and its share of the requests.

    >>> TrafficClass(2.0, Request(country="DE")).share
    2.0
    """

    share: float
    request: Request


@attrs.frozen
class Scenario:
    """A load balancer and the traffic it is simulated with.

    Attributes:
        balancer: the :class:`~lbkit.steering.LoadBalancer`, health and RTTs applied.
        traffic: the request mix.
        clients: how many distinct client addresses send the requests.
        seed: the seed of the simulation's draws (the balancer has its own, derived from it).

    >>> scenario_from_json({"pools": [{"id": "p", "endpoints": [{"id": "a"}]}]}).clients
    10000
    """

    balancer: LoadBalancer
    traffic: tuple[TrafficClass, ...]
    clients: int
    seed: int


@attrs.frozen
class SimulationReport:
    """Where the simulated requests went.

    Attributes:
        requests: how many requests were simulated.
        pools: requests per pool id.
        endpoints: requests per ``(pool id, endpoint id)``.
        fixed_responses: requests answered by a rule's fixed response, per status.
        unserved: requests that raised :class:`~lbkit.errors.NoHealthyEndpoint`.
        expected_pool_share: each pool's configured share among the pools that may serve
            (by pool weight), for comparison under the weighted policies.
        expected_endpoint_share: each endpoint's configured share within its pool among the
            endpoints that may serve (by endpoint weight).

    >>> SimulationReport(0, {}, {}, {}, 0, {}, {}).unserved
    0
    """

    requests: int
    pools: Mapping[Any, int]
    endpoints: Mapping[tuple[Any, Any], int]
    fixed_responses: Mapping[int, int]
    unserved: int
    expected_pool_share: Mapping[Any, float]
    expected_endpoint_share: Mapping[tuple[Any, Any], float]


def scenario_from_json(document: object) -> Scenario:
    """Build a :class:`Scenario` from a parsed JSON document (see :data:`FORMAT`).

    Raises:
        ConfigError: the document does not have the documented shape, or the load balancer
            rejects a value; the message names the place (``$.pools[1].endpoints[0].weight``).

    Runtime complexity: O(size of the document).

    >>> scenario_from_json({"pools": [], "seed": 1})
    Traceback (most recent call last):
    ...
    lbkit.errors.ConfigError: $.pools is empty; a load balancer needs at least one pool
    """
    top = check_object(document, "$", _TOP_KEYS, ("pools",))
    pools: list[Pool] = []
    health: list[tuple[Any, dict[Any, bool]]] = []
    if not top["pools"]:
        raise ConfigError("$.pools is empty; a load balancer needs at least one pool")
    for index, item in enumerate(top["pools"]):
        where = f"$.pools[{index}]"
        spec = check_object(item, where, _POOL_KEYS, ("id", "endpoints"))
        endpoints = []
        healthy: dict[Any, bool] = {}
        for position, entry in enumerate(spec["endpoints"]):
            place = f"{where}.endpoints[{position}]"
            fields = check_object(entry, place, _ENDPOINT_KEYS, ("id",))
            up = fields.pop("healthy", True)
            endpoints.append(_build(place, Endpoint, fields.pop("id"), **fields))
            healthy[endpoints[-1].id] = up
        options = {key: value for key, value in spec.items() if key not in ("id", "endpoints")}
        if "coordinates" in options:
            options["coordinates"] = tuple(options["coordinates"])
        pools.append(_build(where, Pool, spec["id"], endpoints, **options))
        health.append((pools[-1].id, healthy))
    seed = top.get("seed", 0)
    if not 0 <= seed < 2**64:
        raise ConfigError(f"$.seed is {seed}; it must be in 0..{2**64 - 1}")
    policy: Any = top.get("policy", "failover")
    if isinstance(policy, dict):
        options = dict(policy)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"$.policy.name is {json_kind(name)}; it must be a string")
        policy = _build("$.policy", make_policy, name, **options)
    elif not isinstance(policy, str):
        raise ConfigError(f"$.policy is {json_kind(policy)}; it must be a string or an object")
    picker_options = dict(top.get("picker_options", {}))
    if "slow_start" in picker_options:
        ramp = check_object(
            picker_options["slow_start"],
            "$.picker_options.slow_start",
            _SLOW_START_KEYS,
            ("window",),
        )
        window = ramp.pop("window")
        picker_options["slow_start"] = _build(
            "$.picker_options.slow_start", SlowStart, window, **ramp
        )
    affinity = None
    if "affinity" in top:
        settings = dict(top["affinity"])
        by = settings.pop("by", None)
        config = _build("$.affinity", AffinityConfig, by, **settings)
        affinity = SessionAffinity(config, key=_SIMULATION_KEY)
    balancer = _build(
        "$",
        LoadBalancer,
        pools,
        policy=policy,
        fallback_pool=top.get("fallback_pool"),
        endpoint_picker=top.get("endpoint_picker", "random"),
        picker_options=picker_options,
        rules=top.get("rules"),
        affinity=affinity,
        panic_threshold=top.get("panic_threshold", 0.5),
        fail_open=top.get("fail_open", True),
        seed=_kernels.steering.splitmix64(seed),
    )
    for pool_id, healthy in health:
        if not all(healthy.values()):
            balancer.update_health(pool_id, healthy, now=0.0)
    for index, item in enumerate(top.get("rtt", [])):
        where = f"$.rtt[{index}]"
        sample = check_object(item, where, _RTT_KEYS, ("pool", "location", "rtt"))
        _build(
            where,
            balancer.observe_rtt,
            sample["pool"],
            sample["location"],
            sample["rtt"],
            now=sample.get("at", 0.0),
        )
    traffic = []
    for index, item in enumerate(top.get("traffic", [{"share": 1, "request": {}}])):
        where = f"$.traffic[{index}]"
        spec = check_object(item, where, _TRAFFIC_KEYS, ("request",))
        share = float(spec.get("share", 1.0))
        if share <= 0.0:
            raise ConfigError(f"{where}.share is {share!r}; it must be > 0")
        fields = dict(check_object(spec["request"], f"{where}.request", _REQUEST_KEYS, ()))
        if "coordinates" in fields:
            fields["coordinates"] = tuple(fields["coordinates"])
        traffic.append(TrafficClass(share, _build(f"{where}.request", Request, **fields)))
    if not traffic:
        raise ConfigError("$.traffic is empty; give at least one kind of request")
    clients = top.get("clients", 10_000)
    if not 1 <= clients <= 2**24:
        raise ConfigError(f"$.clients is {clients}; it must be in 1..{2**24}")
    return Scenario(balancer, tuple(traffic), clients, seed)


def simulate(scenario: Scenario, *, requests: int, concurrency: int = 0) -> SimulationReport:
    """Send ``requests`` seeded requests through the scenario's balancer and count where they
    go. Each request is drawn from the traffic mix (by share) and from one of the scenario's
    clients (a seeded address in 10.0.0.0/8 unless the traffic class names one); a client
    returns its affinity cookie, as a browser would. With ``concurrency`` > 0 that many
    requests stay outstanding (:meth:`~lbkit.steering.LoadBalancer.begin`) and the oldest
    ends when a new one begins, which is what the least-outstanding pickers and policies see.
    The simulated clock advances 1 ms per request.

    Raises:
        ConfigError: ``requests`` < 1 or ``concurrency`` < 0.
        ArgumentTypeError: a count that is not an int.

    Runtime complexity: O(requests x cost of a decision).

    >>> scenario = scenario_from_json({"pools": [{"id": "p", "endpoints": [{"id": "a"}]}]})
    >>> simulate(scenario, requests=10).pools
    {'p': 10}
    """
    for value, name, minimum in ((requests, "requests", 1), (concurrency, "concurrency", 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
        if value < minimum:
            raise ConfigError(f"{name} is {value}; it must be >= {minimum}")
    balancer = scenario.balancer
    rng = _kernels.steering.Rng(scenario.seed)
    shares = [traffic.share for traffic in scenario.traffic]
    cookies: dict[str, Mapping[str, str]] = {}
    pools: dict[Any, int] = {}
    endpoints: dict[tuple[Any, Any], int] = {}
    fixed: dict[int, int] = {}
    unserved = 0
    in_flight: deque[Decision] = deque()
    now = 0.0
    for _ in range(requests):
        now += 0.001
        template = scenario.traffic[_kernels.steering.weighted_choice(rng, shares)].request
        client = template.client_ip
        if client is None:
            client = str(ipaddress.IPv4Address(0x0A000000 + rng.below(scenario.clients)))
        jar = cookies.get(client)
        request = attrs.evolve(
            template, client_ip=client, cookies={**template.cookies, **(jar or {})}
        )
        try:
            decision = balancer.decide(request, now=now)
        except NoHealthyEndpoint:
            unserved += 1
            continue
        if decision.fixed_response is not None:
            status = decision.fixed_response.status
            fixed[status] = fixed.get(status, 0) + 1
            continue
        assert decision.pool is not None
        assert decision.endpoint is not None
        pools[decision.pool.id] = pools.get(decision.pool.id, 0) + 1
        key = (decision.pool.id, decision.endpoint.id)
        endpoints[key] = endpoints.get(key, 0) + 1
        if decision.set_cookie is not None:
            cookie_name, _, cookie_value = decision.set_cookie.split(";", 1)[0].partition("=")
            cookies[client] = {cookie_name: cookie_value}
        if concurrency:
            balancer.begin(decision)
            in_flight.append(decision)
            if len(in_flight) > concurrency:
                balancer.end(in_flight.popleft(), now=now)
    while in_flight:
        balancer.end(in_flight.popleft(), now=now)
    return SimulationReport(
        requests,
        pools,
        endpoints,
        fixed,
        unserved,
        _expected_pools(balancer),
        _expected_endpoints(balancer),
    )


def _expected_pools(balancer: LoadBalancer) -> dict[Any, float]:
    serving = [pool for pool in balancer.pools if _serving(balancer, pool)]
    total = math.fsum(pool.weight for pool in serving)
    return {pool.id: (pool.weight / total if total else 0.0) for pool in serving}


def _expected_endpoints(balancer: LoadBalancer) -> dict[tuple[Any, Any], float]:
    expected: dict[tuple[Any, Any], float] = {}
    for pool in balancer.pools:
        eligible = balancer.pool_report(pool.id).eligible
        weights = {e.id: e.weight for e in pool.endpoints if e.id in eligible}
        total = math.fsum(weights.values())
        for endpoint_id, weight in weights.items():
            expected[(pool.id, endpoint_id)] = weight / total if total else 0.0
    return expected


def _serving(balancer: LoadBalancer, pool: Pool) -> bool:
    report = balancer.pool_report(pool.id)
    return report.healthy and any(
        endpoint.weight > 0 and endpoint.id in report.eligible for endpoint in pool.endpoints
    )


def _build(where: str, factory: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``factory`` and place any lbkit error it raises at ``where`` in the document."""
    try:
        return factory(*args, **kwargs)
    except (LbkitError, TypeError) as error:
        # A plain TypeError is an unexpected keyword: a key the factory does not take.
        raise ConfigError(f"{where}: {error}") from None
