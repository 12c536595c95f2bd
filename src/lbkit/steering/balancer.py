"""The load balancer: rules, then a pool policy, then an endpoint picker, with session affinity
and the health guard, returning a :class:`Decision` that says what was chosen and why.

The order follows Cloudflare Load Balancing's request path:

1. **Rules** (:mod:`lbkit.steering.rules`) are evaluated against the request. A fixed response
   ends the decision there; overrides replace the pool order, the fallback pool, the policy or
   the session-affinity settings for this request only.
2. **Session affinity** (:mod:`lbkit.steering.affinity`): a valid pin to an endpoint that may
   serve wins; a pin to an endpoint that may not serve follows the configured failover mode.
3. **Pool policy** (:mod:`lbkit.steering.policies`) over the *healthy* pools: a pool is healthy
   while at least ``minimum_healthy`` of its endpoints are (:class:`lbkit.health.PoolHealth`).
   When no pool qualifies, the **fallback pool** serves, its health ignored.
4. **Endpoint picker** (:mod:`lbkit.steering.pickers`) inside the chosen pool, over the
   endpoints the pool's health guard makes eligible: the healthy ones; when the healthy fraction
   falls below ``panic_threshold``, every endpoint (fail open) or none (fail closed). In the
   fallback pool, when none of its endpoints is healthy, every endpoint with a weight may serve.

Health is set directly (:meth:`LoadBalancer.set_health`) or taken from a monitor group's
report (:meth:`LoadBalancer.apply_health`), which also feeds the latencies of ``dynamic``
steering. Request accounting (:meth:`LoadBalancer.begin`, :meth:`LoadBalancer.end`) keeps the
outstanding counts the least-outstanding pickers and policies use.

**Threads.** One balancer may be shared by the threads of a proxy: decisions, accounting and
health updates each hold one lock around the pickers' state (their generators, schedules and
outstanding counts are not safe to change from two threads at once, and a pure-Python pick
takes many bytecodes). Rules are evaluated before the lock is taken. A proxy that needs more
parallelism than one lock allows keeps one balancer per thread or event loop, each with its
own seed, as Netflix Zuul keeps one subset per event loop.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from lbkit import _kernels
from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    InvalidArgument,
    NoHealthyEndpoint,
    UnknownServer,
)
from lbkit.health import EndpointHealth, EventLog, PoolHealth, PoolReport, Verdict
from lbkit.steering.accounting import RequestStats
from lbkit.steering.accounting import _check_now as _check_time
from lbkit.steering.affinity import (
    Action,
    AffinityMiss,
    EndpointStatus,
    Pin,
    SessionAffinity,
)
from lbkit.steering.model import Endpoint, Pool
from lbkit.steering.pickers import KINDS, EndpointPicker, _check_seed, accepted_options, make_picker
from lbkit.steering.policies import (
    POLICIES,
    DynamicPolicy,
    GeoPolicy,
    PoolPolicy,
    SteeringContext,
    make_policy,
)
from lbkit.steering.request import Request
from lbkit.steering.rules import FixedResponse, RuleSet, load_rules

__all__ = ["Decision", "LoadBalancer"]

PoolId = str | int
EndpointId = str | int

_NO_OVERRIDES: Mapping[str, Any] = {}


@attrs.frozen
class Decision:
    """Where one request goes, and why.

    Attributes:
        pool: the chosen :class:`~lbkit.steering.Pool`, or ``None`` for a fixed response.
        endpoint: the chosen :class:`~lbkit.steering.Endpoint`, or ``None`` for a fixed
            response.
        reasons: the steps that led here, in order, for logs (rules, affinity, pool policy,
            health guard, endpoint picker).
        rules: the names of the rules that matched, in order.
        fixed_response: the response to send instead of proxying, when a rule says so.
        set_cookie: a ``Set-Cookie`` header value to send (a new affinity cookie), or ``None``.
        pin: the session pin in force for this request (looked up or just made), or ``None``.
        fallback: the fallback pool serves because no pool was healthy.
        panic: the pool's panic guard was on: the endpoint may not be healthy (fail open).

    Runtime complexity: O(1).

    >>> lb = LoadBalancer([Pool("eu", [Endpoint("web-1")])], seed=1)
    >>> print(lb.decide(Request(), now=0.0))
    eu/web-1: failover: 'eu' is the first healthy pool in order; random: 'web-1'
    """

    pool: Pool | None
    endpoint: Endpoint | None
    reasons: tuple[str, ...]
    rules: tuple[str, ...] = ()
    fixed_response: FixedResponse | None = None
    set_cookie: str | None = None
    pin: Pin | None = None
    fallback: bool = False
    panic: bool = False

    def __str__(self) -> str:
        if self.pool is None or self.endpoint is None:
            return "; ".join(self.reasons)
        return f"{self.pool.id}/{self.endpoint.id}: " + "; ".join(self.reasons)


class LoadBalancer:
    """Rules, pool policy, endpoint picker and session affinity over health-checked pools (see
    the module docstring for the order).

    Args:
        pools: the pools, in failover order; ids unique.
        policy: the pool policy: a name from :data:`~lbkit.steering.policies.POLICIES` or a
            :class:`~lbkit.steering.policies.PoolPolicy`. Rules may override it by name.
        fallback_pool: the id of the pool of last resort (its health is ignored), or ``None``:
            then a request with no healthy pool raises :class:`~lbkit.errors.NoHealthyEndpoint`.
        endpoint_picker: the picker kind for every pool (one of
            :data:`~lbkit.steering.pickers.KINDS`), or a mapping from pool id to kind (pools
            it leaves out use ``"random"``).
        picker_options: keyword options for every picker (``slow_start``, ``mode``, ``tau``,
            ...); each picker gets the options its kind takes.
        rules: a :class:`~lbkit.steering.rules.RuleSet`, its plain data (validated against
            the pools and policies), or ``None``.
        affinity: a :class:`~lbkit.steering.affinity.SessionAffinity`, or ``None`` for none.
        panic_threshold: each pool's panic guard (:class:`lbkit.health.PoolHealth`): below
            this healthy fraction every endpoint becomes eligible (fail open) or none (fail
            closed); 0 disables it.
        fail_open: what the panic guard does.
        seed: seeds every random choice (pool policies and pickers) for reproducible runs;
            ``None`` draws a random seed.
        events: an :class:`lbkit.health.EventLog` for the pools' health and panic transitions.
        stats_tau: the decay time of the per-endpoint latency and error EWMAs, in seconds.

    Raises:
        ConfigError: no pools, duplicate pool ids, an unknown fallback pool, policy or picker
            kind, or anything the policy, pickers or rules reject.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(total endpoints + size of the rules) to build; :meth:`decide` is
    O(P + cost of the rules + cost of the picker) for P pools.

    >>> lb = LoadBalancer([Pool("eu", [Endpoint("a"), Endpoint("b")]),
    ...                    Pool("us", [Endpoint("c")])], fallback_pool="us", seed=7)
    >>> lb.set_health("eu", "a", False, now=1.0)
    >>> lb.set_health("eu", "b", False, now=1.0)
    >>> str(lb.decide(Request(), now=2.0))
    "us/c: failover: 'us' is the first healthy pool in order; random: 'c'"
    """

    def __init__(
        self,
        pools: Iterable[Pool],
        *,
        policy: str | PoolPolicy = "failover",
        fallback_pool: PoolId | None = None,
        endpoint_picker: str | Mapping[PoolId, str] = "random",
        picker_options: Mapping[str, Any] | None = None,
        rules: RuleSet | Sequence[Mapping[str, Any]] | None = None,
        affinity: SessionAffinity | None = None,
        panic_threshold: float = 0.5,
        fail_open: bool = True,
        seed: int | None = None,
        events: EventLog | None = None,
        stats_tau: float = 10.0,
    ) -> None:
        self._pools = _check_pools(pools)
        self._by_id: dict[PoolId, Pool] = {pool.id: pool for pool in self._pools}
        if fallback_pool is not None and fallback_pool not in self._by_id:
            raise ConfigError(
                f"fallback_pool is {fallback_pool!r}; it must be the id of a configured pool "
                f"({', '.join(map(repr, self._by_id))})"
            )
        self._fallback = fallback_pool
        self._seed = _check_seed(seed)
        self._kernel = _kernels.steering
        self._rng = self._kernel.Rng(self._kernel.splitmix64(self._seed))
        # The policy: a name or an instance; rules may name others, built on first use.
        if isinstance(policy, str):
            self._policy = make_policy(policy)
        elif isinstance(policy, PoolPolicy):
            self._policy = policy
        else:
            raise ArgumentTypeError(
                f"policy is {type(policy).__name__}; it must be a policy name or a PoolPolicy"
            )
        self._policy.validate(list(self._by_id))
        # One dynamic policy collects RTTs whichever policy is in force, so a rule that
        # switches to dynamic steering finds data.
        self._dynamic = self._policy if isinstance(self._policy, DynamicPolicy) else None
        self._policies: dict[Hashable, PoolPolicy] = {(self._policy.name,): self._policy}
        # Pickers: a kind per pool, one picker per (pool, kind), built on first use.
        self._kinds = _picker_kinds(endpoint_picker, self._by_id)
        self._picker_options = _check_options(picker_options)
        self._pickers: dict[tuple[PoolId, str, bool], EndpointPicker] = {}
        self._affinity = _check_affinity(affinity)
        self._rules = self._load_rules(rules)
        if not isinstance(fail_open, bool):
            raise ArgumentTypeError(f"fail_open is {type(fail_open).__name__}; it must be a bool")
        self._health: dict[PoolId, PoolHealth] = {
            pool.id: PoolHealth(
                {endpoint.id: endpoint.location for endpoint in pool.endpoints},
                name=pool.id,
                minimum_healthy=pool.minimum_healthy,
                panic_threshold=panic_threshold,
                fail_open=fail_open,
                events=events,
            )
            for pool in self._pools
        }
        self._draining: dict[tuple[PoolId, EndpointId], float] = {}
        self._serving: dict[PoolId, bool] = {}
        self._stats = RequestStats(tau=stats_tau)
        self._pool_stats = RequestStats(tau=stats_tau)
        self._lock = threading.RLock()
        self._now = -math.inf
        for pool in self._pools:
            self._refresh_pool(pool, now=None)
            self._picker(pool, self._kinds[pool.id])  # validate the picker options now

    # -- configuration, read only -------------------------------------------------------------

    @property
    def pools(self) -> tuple[Pool, ...]:
        """The pools, in failover order."""
        return self._pools

    @property
    def policy(self) -> PoolPolicy:
        """The pool policy in force when no rule overrides it."""
        return self._policy

    @property
    def fallback_pool(self) -> Pool | None:
        """The pool of last resort, or ``None``."""
        return None if self._fallback is None else self._by_id[self._fallback]

    @property
    def stats(self) -> RequestStats:
        """Per-endpoint request accounting, keyed by ``(pool_id, endpoint_id)``."""
        return self._stats

    @property
    def pool_stats(self) -> RequestStats:
        """Per-pool request accounting, keyed by pool id."""
        return self._pool_stats

    def pool(self, pool_id: PoolId) -> Pool:
        """The pool with ``pool_id``.

        Raises:
            UnknownServer: no pool has that id.

        Runtime complexity: O(1).

        >>> LoadBalancer([Pool("eu", [Endpoint("a")])]).pool("eu").endpoints[0].id
        'a'
        """
        try:
            return self._by_id[pool_id]
        except (KeyError, TypeError):
            raise UnknownServer(f"no pool has the id {pool_id!r}") from None

    def picker_kind(self, pool_id: PoolId) -> str:
        """The endpoint picker kind a pool uses when no rule overrides it.

        Raises:
            UnknownServer: no pool has that id.

        Runtime complexity: O(1).

        >>> LoadBalancer([Pool("eu", [Endpoint("a")])], endpoint_picker="hash").picker_kind("eu")
        'hash'
        """
        return self._kinds[self.pool(pool_id).id]

    def pool_report(self, pool_id: PoolId) -> PoolReport:
        """The health report of one pool (healthy, panic, eligible endpoints, reason).

        Raises:
            UnknownServer: no pool has that id.

        Runtime complexity: O(1).

        >>> LoadBalancer([Pool("eu", [Endpoint("a")])]).pool_report("eu").healthy
        True
        """
        return self._health[self.pool(pool_id).id].report()

    # -- health -------------------------------------------------------------------------------

    def set_health(
        self, pool_id: PoolId, endpoint_id: EndpointId, healthy: bool, *, now: float
    ) -> None:
        """Set one endpoint's health directly.

        Raises:
            UnknownServer: an unknown pool or endpoint.
            ArgumentTypeError: ``healthy`` is not a bool.
            InvalidArgument: ``now`` is not finite or earlier than a previous ``now``.

        Runtime complexity: O(E) for the pool's E endpoints.

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a"), Endpoint("b")])], seed=1)
        >>> lb.set_health("eu", "a", False, now=0.0)
        >>> sorted(lb.pool_report("eu").eligible)
        ['b']
        """
        self.update_health(pool_id, {endpoint_id: healthy}, now=now)

    def update_health(
        self, pool_id: PoolId, healthy: Mapping[EndpointId, bool], *, now: float
    ) -> PoolReport:
        """Set the health of some endpoints of one pool; returns the pool's report.

        Raises:
            UnknownServer: an unknown pool or endpoint (nothing is changed).
            ArgumentTypeError: a value that is not a bool.
            InvalidArgument: ``now`` is not finite or earlier than a previous ``now``.

        Runtime complexity: O(E + len(healthy)).

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a"), Endpoint("b")])], seed=1)
        >>> lb.update_health("eu", {"a": False, "b": False}, now=0.0).panic
        True
        """
        pool = self.pool(pool_id)
        with self._lock:
            report = self._health[pool.id].update(healthy, now=now)
            self._now = max(self._now, float(now))
            self._refresh_pool(pool, now=float(now))
        return report

    def apply_health(self, report: Mapping[Any, EndpointHealth], *, now: float) -> None:
        """Take a monitor group's verdicts (:meth:`lbkit.health.MonitorGroup.evaluate`): every
        pool holding an endpoint of the report gets its verdict (UP healthy, DOWN unhealthy;
        UNKNOWN, no evidence, leaves the endpoint as it was), and ``dynamic`` steering gets the
        per-location latencies.

        Raises:
            ArgumentTypeError: ``report`` is not a mapping of :class:`lbkit.health.EndpointHealth`.
            InvalidArgument: ``now`` is not finite or earlier than a previous ``now``.

        Runtime complexity: O(total endpoints + size of the report).

        >>> from lbkit.health import Member, MonitorGroup, MonitorResult
        >>> group = MonitorGroup([Member("http")])
        >>> health = group.evaluate([MonitorResult("http", "a", "ams", False, observed_at=0.0)],
        ...                         now=1.0)
        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a"), Endpoint("b")])], seed=1)
        >>> lb.apply_health(health, now=1.0)
        >>> sorted(lb.pool_report("eu").eligible)
        ['b']
        """
        if not isinstance(report, Mapping):
            raise ArgumentTypeError(
                f"report is {type(report).__name__}; it must map endpoint ids to EndpointHealth"
            )
        for endpoint_id, health in report.items():
            if not isinstance(health, EndpointHealth):
                raise ArgumentTypeError(
                    f"report[{endpoint_id!r}] is {type(health).__name__}; it must be an "
                    "EndpointHealth"
                )
        for pool in self._pools:
            verdicts = {
                endpoint.id: report[endpoint.id].verdict is Verdict.UP
                for endpoint in pool.endpoints
                if endpoint.id in report and report[endpoint.id].verdict is not Verdict.UNKNOWN
            }
            self.update_health(pool.id, verdicts, now=now)
            if self._dynamic is not None:
                self._dynamic.observe_health(pool, report, now=now)

    def observe_rtt(self, pool_id: PoolId, location: str, rtt: float, *, now: float) -> None:
        """Feed one RTT sample from ``location`` (a PoP code) to ``pool_id`` to ``dynamic``
        steering (a no-op under other policies).

        Raises:
            UnknownServer: an unknown pool.
            InvalidArgument: a negative or non-finite RTT or time.

        Runtime complexity: O(1).

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a")])], policy="dynamic")
        >>> lb.observe_rtt("eu", "FRA", 0.004, now=0.0)
        >>> lb.policy.rtt("eu", "FRA")
        0.004
        """
        self.pool(pool_id)
        if self._dynamic is not None:
            self._dynamic.observe(pool_id, location, rtt, now=now)

    def drain(self, pool_id: PoolId, endpoint_id: EndpointId, *, now: float) -> None:
        """Stop sending new sessions to an endpoint from ``now`` on; pinned sessions keep it
        for the affinity ``drain_duration`` (then they are re-pinned).

        Raises:
            UnknownServer: an unknown pool or endpoint.

        Runtime complexity: O(E).

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a"), Endpoint("b")])], seed=3)
        >>> lb.drain("eu", "a", now=0.0)
        >>> {lb.decide(Request(), now=1.0).endpoint.id for _ in range(20)}
        {'b'}
        """
        pool = self.pool(pool_id)
        pool.endpoint(endpoint_id)
        at = _check_time(now)
        with self._lock:
            self._draining[(pool.id, endpoint_id)] = at
            self._refresh_pool(pool, now=at)

    def undrain(self, pool_id: PoolId, endpoint_id: EndpointId, *, now: float) -> None:
        """Take an endpoint back into service after :meth:`drain`.

        Raises:
            UnknownServer: an unknown pool or endpoint.

        Runtime complexity: O(E).

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a")])], seed=3)
        >>> lb.drain("eu", "a", now=0.0); lb.undrain("eu", "a", now=1.0)
        >>> lb.decide(Request(), now=2.0).endpoint.id
        'a'
        """
        pool = self.pool(pool_id)
        pool.endpoint(endpoint_id)
        at = _check_time(now)
        with self._lock:
            self._draining.pop((pool.id, endpoint_id), None)
            self._refresh_pool(pool, now=at)

    # -- decisions ----------------------------------------------------------------------------

    def decide(
        self,
        request: Request,
        *,
        now: float,
        failed: Decision | Iterable[Decision] | None = None,
    ) -> Decision:
        """Choose the pool and endpoint for ``request`` at ``now``.

        ``failed`` retries a request: it is an earlier decision for this same request whose
        endpoint failed it (a refused connection, a reset) before the health monitors noticed,
        or every such decision of the request so far (a second retry must not go back to the
        first endpoint that failed). Those endpoints are avoided: when the picker draws one
        again, another eligible endpoint of its pool is drawn by weight, and when the pool has
        no other, the policy chooses among the remaining pools (then the fallback pool). A
        session pinned to such an endpoint follows the affinity ``failover`` mode, Cloudflare's
        zero-downtime failover: ``none`` fails the request
        (:class:`~lbkit.errors.NoHealthyEndpoint`), ``temporary`` serves elsewhere and keeps the
        pin, ``sticky`` re-pins.

        Raises:
            NoHealthyEndpoint: nothing may serve (``reasons`` holds the steps taken).
            ArgumentTypeError: ``request`` is not a :class:`~lbkit.steering.Request`;
                ``failed`` is neither a Decision nor an iterable of them.
            InvalidArgument: ``now`` is not finite; the policy needs something the request
                lacks (a hash key for ``hash``); a failed decision has no endpoint.

        Runtime complexity: O(P + F + cost of the rules + cost of the picker) for F failed
        decisions.

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a")])], seed=1,
        ...     rules=[{"name": "old", "condition": {"field": "path", "op": "prefix",
        ...             "value": "/old"}, "fixed_response": {"status": 410, "body": "gone"}}])
        >>> lb.decide(Request(path="/old/x"), now=0.0).fixed_response.status
        410
        """
        if not isinstance(request, Request):
            raise ArgumentTypeError(f"request is {type(request).__name__}; it must be a Request")
        now = _check_time(now)
        avoid = _avoided(failed)
        reasons: list[str] = []
        outcome = self._rules.evaluate(request) if self._rules is not None else None
        overrides = _NO_OVERRIDES if outcome is None else outcome.overrides
        matched = () if outcome is None else outcome.matched
        if matched:
            reasons.append(f"rules: {', '.join(repr(name) for name in matched)} matched")
        if outcome is not None and outcome.fixed_response is not None:
            response = outcome.fixed_response
            reasons.append(f"fixed response {response.status} from rule {outcome.terminated_by!r}")
            return Decision(None, None, tuple(reasons), matched, fixed_response=response)
        pools = self._pools
        if "pools" in overrides:
            pools = tuple(self._by_id[pool_id] for pool_id in overrides["pools"])
        fallback = overrides.get("fallback_pool", self._fallback)
        affinity = self._affinity
        if affinity is not None and "session_affinity" in overrides:
            affinity = affinity.with_overrides(overrides["session_affinity"])

        with self._lock:
            policy = self._policy_for(overrides)
            keep_pin: Pin | None = None
            if affinity is not None and affinity.config.by != "none":
                found = affinity.check(request, now=now)
                if isinstance(found, AffinityMiss):
                    reasons.append(str(found))
                else:
                    status, drain_started = self._status(found, pools, fallback)
                    resolution = affinity.resolve(
                        found,
                        status=status,
                        now=now,
                        drain_started=drain_started,
                        failed=found.endpoint_key in avoid,
                    )
                    reasons.append(resolution.reason)
                    if resolution.action is Action.FAIL:
                        raise NoHealthyEndpoint(
                            "no endpoint may serve: " + "; ".join(reasons), tuple(reasons)
                        )
                    if resolution.action is Action.USE:
                        pool = self._by_id[found.pool_id]
                        return Decision(
                            pool,
                            pool.endpoint(found.endpoint_id),
                            tuple(reasons),
                            matched,
                            pin=found,
                        )
                    if resolution.action is Action.DETOUR:
                        keep_pin = found
            pool, endpoint, is_fallback, panic = self._choose(
                request, pools, fallback, policy, overrides, now, reasons, avoid
            )
            pin = keep_pin
            set_cookie = None
            if affinity is not None and keep_pin is None:
                pin = affinity.pin(request, pool.id, endpoint.id, now=now)
                if pin is not None and pin.cookie is not None:
                    set_cookie = affinity.set_cookie(pin)
            return Decision(
                pool,
                endpoint,
                tuple(reasons),
                matched,
                set_cookie=set_cookie,
                pin=pin,
                fallback=is_fallback,
                panic=panic,
            )

    def begin(self, decision: Decision) -> None:
        """A request was sent where ``decision`` says: count it as outstanding. Safe under
        threads.

        Raises:
            ArgumentTypeError: ``decision`` is not a :class:`Decision`.
            InvalidArgument: the decision carries no endpoint (a fixed response).

        Runtime complexity: O(1), or O(log E) for the EDF picker.

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a")])], seed=1)
        >>> decision = lb.decide(Request(), now=0.0)
        >>> lb.begin(decision); lb.stats.outstanding(("eu", "a"))
        1
        """
        pool, endpoint = _served(decision)
        with self._lock:
            self._stats.begin((pool.id, endpoint.id))
            self._pool_stats.begin(pool.id)
            for (pool_id, _, _), picker in self._pickers.items():
                if pool_id == pool.id:
                    picker.begin(endpoint.id)

    def end(
        self,
        decision: Decision,
        *,
        latency: float | None = None,
        ok: bool = True,
        now: float,
    ) -> None:
        """The request of :meth:`begin` finished after ``latency`` seconds, ``ok`` or not:
        outstanding counts drop, latency and error EWMAs move. Safe under threads.

        Raises:
            ArgumentTypeError: an argument of the wrong type.
            InvalidArgument: no matching :meth:`begin`, a fixed-response decision, a negative
                or non-finite latency, a bad ``now``.

        Runtime complexity: O(1), or O(log E) for the EDF picker.

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a")])], seed=1)
        >>> decision = lb.decide(Request(), now=0.0)
        >>> lb.begin(decision); lb.end(decision, latency=0.02, now=1.0)
        >>> lb.stats.outstanding(("eu", "a")), lb.stats.latency(("eu", "a"))
        (0, 0.02)
        """
        pool, endpoint = _served(decision)
        with self._lock:
            self._stats.end((pool.id, endpoint.id), latency=latency, ok=ok, now=now)
            self._pool_stats.end(pool.id, latency=latency, ok=ok, now=now)
            for (pool_id, _, _), picker in self._pickers.items():
                if pool_id == pool.id:
                    picker.end(endpoint.id, latency=latency, ok=ok, now=now)

    def connect(self, decision: Decision) -> None:
        """A connection was opened where ``decision`` says (for ``least_connections``).

        Runtime complexity: O(1).

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a")])], seed=1)
        >>> lb.connect(lb.decide(Request(), now=0.0)); lb.pool_stats.connections("eu")
        1
        """
        pool, endpoint = _served(decision)
        with self._lock:
            self._stats.connect((pool.id, endpoint.id))
            self._pool_stats.connect(pool.id)

    def disconnect(self, decision: Decision) -> None:
        """A connection of :meth:`connect` was closed.

        Raises:
            InvalidArgument: no matching :meth:`connect`.

        Runtime complexity: O(1).

        >>> lb = LoadBalancer([Pool("eu", [Endpoint("a")])], seed=1)
        >>> decision = lb.decide(Request(), now=0.0)
        >>> lb.connect(decision); lb.disconnect(decision); lb.pool_stats.connections("eu")
        0
        """
        pool, endpoint = _served(decision)
        with self._lock:
            self._stats.disconnect((pool.id, endpoint.id))
            self._pool_stats.disconnect(pool.id)

    # -- internals ----------------------------------------------------------------------------

    def _choose(
        self,
        request: Request,
        pools: Sequence[Pool],
        fallback: PoolId | None,
        policy: PoolPolicy,
        overrides: Mapping[str, Any],
        now: float,
        reasons: list[str],
        avoid: frozenset[tuple[PoolId, EndpointId]],
    ) -> tuple[Pool, Endpoint, bool, bool]:
        healthy = {pool.id for pool in pools if self._serving[pool.id]}
        context = SteeringContext(
            now=now,
            rng=self._rng,
            # Only the least-* policies read the counts; the others skip the lock round trips.
            outstanding={pool.id: self._pool_stats.outstanding(pool.id) for pool in pools}
            if policy.name == "least_outstanding"
            else {},
            connections={pool.id: self._pool_stats.connections(pool.id) for pool in pools}
            if policy.name == "least_connections"
            else {},
        )
        kind_override = overrides.get("endpoint_policy")
        # A round per pool at most: only a pool whose endpoints are all avoided comes up empty.
        while (choice := policy.choose(pools, healthy, request, context)) is not None:
            pool = choice.pool
            reasons.append(choice.reason)
            report = self._health[pool.id].report()
            if report.panic:
                reasons.append(f"pool {pool.id!r}: {report.reason}")
            kind = kind_override or self._kinds[pool.id]
            picker = self._picker(pool, kind)
            endpoint = self._pick(pool, picker, kind, request, now, avoid, reasons)
            if endpoint is not None:
                return pool, endpoint, False, report.panic
            healthy.discard(pool.id)
        if fallback is None:
            reasons.append("no pool qualifies and there is no fallback pool")
            raise NoHealthyEndpoint("no pool may serve: " + "; ".join(reasons), tuple(reasons))
        pool = self._by_id[fallback]
        reasons.append(f"fallback: no pool qualifies; {pool.id!r} serves, its health ignored")
        report = self._health[pool.id].report()
        if report.panic:
            reasons.append(f"pool {pool.id!r}: {report.reason}")
        kind = kind_override or self._kinds[pool.id]
        picker = self._picker(pool, kind)
        if picker.eligible():
            endpoint = self._pick(pool, picker, kind, request, now, avoid, reasons)
            if endpoint is not None:
                return pool, endpoint, True, report.panic
        # Nothing in the fallback pool is eligible (all down and failing closed, or drained):
        # its health is ignored, so every endpoint with a weight may serve.
        try:
            picker = self._picker(pool, kind, ignore_health=True)
            endpoint = self._pick(pool, picker, kind, request, now, avoid, reasons)
        except NoHealthyEndpoint as error:
            reasons.append(f"fallback pool {pool.id!r}: {error}")
            endpoint = None
        if endpoint is None:
            raise NoHealthyEndpoint("no endpoint may serve: " + "; ".join(reasons), tuple(reasons))
        reasons[-1] += " (health ignored)"
        return pool, endpoint, True, True

    def _pick(
        self,
        pool: Pool,
        picker: EndpointPicker,
        kind: str,
        request: Request,
        now: float,
        avoid: frozenset[tuple[PoolId, EndpointId]],
        reasons: list[str],
    ) -> Endpoint | None:
        """The picker's endpoint, unless it is one to avoid: then a weighted draw over the
        pool's eligible endpoints not to avoid, or ``None`` when there is none."""
        endpoint = picker.pick(request, now=now)
        if (pool.id, endpoint.id) not in avoid:
            reasons.append(f"{kind}: {endpoint.id!r}")
            return endpoint
        others = [e for e in picker.eligible() if (pool.id, e.id) not in avoid and e.weight > 0.0]
        if not others:
            reasons.append(f"retry: {endpoint.id!r} failed; pool {pool.id!r} has no other endpoint")
            return None
        drawn = others[self._kernel.weighted_choice(self._rng, [e.weight for e in others])]
        reasons.append(
            f"retry: {endpoint.id!r} failed; drew {drawn.id!r} by weight from the pool's "
            f"{len(others)} other eligible endpoint{'s' if len(others) > 1 else ''}"
        )
        return drawn

    def _status(
        self, pin: Pin, pools: Sequence[Pool], fallback: PoolId | None
    ) -> tuple[EndpointStatus, float | None]:
        pool = self._by_id.get(pin.pool_id)
        allowed = pool is not None and (pool in pools or pool.id == fallback)
        if pool is None or not allowed:
            return EndpointStatus.GONE, None
        try:
            endpoint = pool.endpoint(pin.endpoint_id)
        except UnknownServer:
            return EndpointStatus.GONE, None
        if endpoint.weight == 0.0:
            return EndpointStatus.GONE, None
        if endpoint.id not in self._health[pool.id].report().eligible:
            return EndpointStatus.UNHEALTHY, None
        drain_started = self._draining.get((pool.id, endpoint.id))
        if drain_started is not None:
            return EndpointStatus.DRAINING, drain_started
        return EndpointStatus.HEALTHY, None

    def _policy_for(self, overrides: Mapping[str, Any]) -> PoolPolicy:
        name = overrides.get("policy")
        maps = tuple(
            tuple(sorted(overrides[key].items(), key=repr)) if key in overrides else None
            for key in ("pop_pools", "country_pools", "region_pools")
        )
        if name is None and maps == (None, None, None):
            return self._policy
        if name is None:
            name = self._policy.name
        cache_key: Hashable = (name, *maps) if name == "geo" else (name,)
        policy = self._policies.get(cache_key)
        if policy is not None:
            return policy
        if name == "geo":
            base = self._policy if isinstance(self._policy, GeoPolicy) else GeoPolicy()
            pops, countries, regions = (
                base_map if override is None else dict(override)
                for base_map, override in zip(
                    (base.pops, base.countries, base.regions), maps, strict=True
                )
            )
            policy = GeoPolicy(
                pops=pops,
                countries=countries,
                regions=regions,
                default_pools=base.default_pools,
                cascade=base.cascade,
            )
        elif name == "dynamic":
            if self._dynamic is None:
                self._dynamic = DynamicPolicy()
            policy = self._dynamic
        else:
            policy = make_policy(name)
        policy.validate(list(self._by_id))
        self._policies[cache_key] = policy
        return policy

    def _picker(self, pool: Pool, kind: str, *, ignore_health: bool = False) -> EndpointPicker:
        key = (pool.id, kind, ignore_health)
        picker = self._pickers.get(key)
        if picker is None:
            options = _options_for(kind, self._picker_options)
            # Each picker gets its own stream, derived from the seed, the pool and the kind.
            index = self._pools.index(pool) * len(KINDS) * 2 + KINDS.index(kind) * 2
            seed = self._kernel.splitmix64(
                self._seed + (index + 1 + ignore_health) * self._kernel.GOLDEN_GAMMA
            )
            picker = make_picker(kind, pool.endpoints, seed=seed, **options)
            if not ignore_health:
                eligible = self._eligible_ids(pool)
                for endpoint in pool.endpoints:
                    if endpoint.id not in eligible:
                        picker.set_eligible(endpoint.id, False, now=max(self._now, 0.0))
            # Every picker of a pool sees every begin and end; one built now (a rule switched
            # to its kind) starts with the requests already outstanding, so their ends match.
            with self._lock:
                for endpoint in pool.endpoints:
                    for _ in range(self._stats.outstanding((pool.id, endpoint.id))):
                        picker.begin(endpoint.id)
                self._pickers[key] = picker
        return picker

    def _eligible_ids(self, pool: Pool) -> set[Hashable]:
        report = self._health[pool.id].report()
        return {
            endpoint_id
            for endpoint_id in report.eligible
            if (pool.id, endpoint_id) not in self._draining
        }

    def _refresh_pool(self, pool: Pool, *, now: float | None) -> None:
        eligible = self._eligible_ids(pool)
        self._serving[pool.id] = self._health[pool.id].report().healthy and any(
            endpoint.weight > 0.0 and endpoint.id in eligible for endpoint in pool.endpoints
        )
        if now is None:
            return
        for (pool_id, _, ignore_health), picker in self._pickers.items():
            if pool_id != pool.id or ignore_health:
                continue
            # set_eligible is a no-op for an unchanged endpoint (no rebuild, no ramp restart).
            for endpoint in pool.endpoints:
                picker.set_eligible(endpoint.id, endpoint.id in eligible, now=now)

    def _load_rules(self, rules: object) -> RuleSet | None:
        if rules is None or isinstance(rules, RuleSet):
            return rules
        return load_rules(
            rules,
            pool_ids=list(self._by_id),
            policies=list(POLICIES),
            endpoint_policies=list(KINDS),
            affinity=None if self._affinity is None else self._affinity.config,
        )


def _avoided(failed: object) -> frozenset[tuple[PoolId, EndpointId]]:
    """The (pool, endpoint) keys of the decisions in ``failed`` (one, an iterable, or None)."""
    if failed is None:
        return frozenset()
    if isinstance(failed, Decision):
        pool, endpoint = _served(failed, "failed")
        return frozenset({(pool.id, endpoint.id)})
    if isinstance(failed, (str, bytes, Mapping)) or not isinstance(failed, Iterable):
        raise ArgumentTypeError(
            f"failed is {type(failed).__name__}; it must be a Decision or an iterable of them"
        )
    keys = set()
    for index, decision in enumerate(failed):
        pool, endpoint = _served(decision, f"failed[{index}]")
        keys.add((pool.id, endpoint.id))
    return frozenset(keys)


def _served(decision: object, name: str = "decision") -> tuple[Pool, Endpoint]:
    if not isinstance(decision, Decision):
        raise ArgumentTypeError(f"{name} is {type(decision).__name__}; it must be a Decision")
    if decision.pool is None or decision.endpoint is None:
        raise InvalidArgument(f"{name} has no endpoint (a fixed response); nothing to count")
    return decision.pool, decision.endpoint


def _check_pools(pools: object) -> tuple[Pool, ...]:
    if isinstance(pools, (str, bytes, Mapping)) or not isinstance(pools, Iterable):
        raise ArgumentTypeError(f"pools is {type(pools).__name__}; it must be an iterable of Pool")
    result = tuple(pools)
    if not result:
        raise ConfigError("pools is empty; a load balancer needs at least one pool")
    seen: set[PoolId] = set()
    for index, pool in enumerate(result):
        if not isinstance(pool, Pool):
            raise ArgumentTypeError(f"pools[{index}] is {type(pool).__name__}; it must be a Pool")
        if pool.id in seen:
            raise ConfigError(f"pools[{index}] repeats the id {pool.id!r}; pool ids are unique")
        seen.add(pool.id)
    # The weighted pool policies draw over the sum of the weights; it must stay finite.
    if not math.isfinite(sum(pool.weight for pool in result) * len(result)):
        raise ConfigError(
            "the pool weights sum to more than a float can hold; scale them down (only their "
            "ratios matter)"
        )
    return result


def _picker_kinds(endpoint_picker: object, pools: Mapping[PoolId, Pool]) -> dict[PoolId, str]:
    if isinstance(endpoint_picker, str):
        kinds = dict.fromkeys(pools, endpoint_picker)
    elif isinstance(endpoint_picker, Mapping):
        for pool_id in endpoint_picker:
            if pool_id not in pools:
                raise ConfigError(
                    f"endpoint_picker names the pool {pool_id!r}; it is not a configured pool"
                )
        kinds = {pool_id: endpoint_picker.get(pool_id, "random") for pool_id in pools}
    else:
        raise ArgumentTypeError(
            f"endpoint_picker is {type(endpoint_picker).__name__}; it must be a picker kind or a "
            "mapping from pool id to kind"
        )
    for pool_id, kind in kinds.items():
        if kind not in KINDS:
            raise ConfigError(
                f"endpoint_picker for pool {pool_id!r} is {kind!r}; it must be one of "
                f"{', '.join(KINDS)}"
            )
    return kinds


def _check_options(options: object) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ArgumentTypeError(
            f"picker_options is {type(options).__name__}; it must be a mapping of option names"
        )
    if "seed" in options:
        raise ConfigError("picker_options has 'seed'; seed the load balancer instead")
    known = sorted({name for kind in KINDS for name in accepted_options(kind)} - {"seed"})
    for name in options:
        if name not in known:
            raise ConfigError(
                f"picker_options has {name!r}, which no picker takes; the options are "
                f"{', '.join(known)}"
            )
    return dict(options)


def _options_for(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    # An option that another kind takes (mode for least_outstanding, tau for peak_ewma) is
    # not passed to this one: the options apply to every pool, whatever its kind.
    accepted = accepted_options(kind)
    return {name: value for name, value in options.items() if name in accepted}


def _check_affinity(affinity: object) -> SessionAffinity | None:
    if affinity is None or isinstance(affinity, SessionAffinity):
        return affinity
    raise ArgumentTypeError(
        f"affinity is {type(affinity).__name__}; it must be a SessionAffinity or None"
    )
