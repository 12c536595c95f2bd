"""Pool policies: which pool (data centre, cloud region) serves a request.

A :class:`~lbkit.steering.LoadBalancer` keeps its pools in a configured order, works out which
of them may serve (pool health and ``minimum_healthy``) and asks its policy for one. Each policy
answers with a :class:`PoolChoice` (the pool and a sentence for logs) or ``None`` when no healthy
pool qualifies; the load balancer then uses its fallback pool, whose health is ignored. The
policies are those of Cloudflare Load Balancing's traffic steering:

==========================  =====================================================================
``failover``                the first healthy pool in the configured order ("off" in Cloudflare)
``random``                  weighted random over the healthy pools
``hash``                    weighted rendezvous hashing of the request's key (client IP)
``geo``                     the PoP, country or region map, most specific first, failover inside
``dynamic``                 the lowest RTT EWMA from the requesting PoP (``dynamic_latency``)
``proximity``               the nearest pool by great-circle distance
``least_outstanding``       weighted random, each weight divided by (outstanding requests + 1)
``least_connections``       weighted random, each weight divided by (open connections + 1)
==========================  =====================================================================

Decisions where the issue left room (each documented again on its policy):

* **Pool weights** steer only the weighted policies (``random``, ``hash``, ``least_*``), as
  Cloudflare's ``random_steering`` pool weights do. A pool of weight 0 never gets traffic from
  them. ``failover``, ``geo``, ``dynamic`` and ``proximity`` ignore weights: there a weight-0 pool
  is still a failover target (take a pool out of rotation by marking it unhealthy instead).
* **All healthy weights 0** (weighted policies): no pool qualifies and ``choose`` returns
  ``None``, so the load balancer goes to its fallback pool. Cloudflare documents that a weight-0
  pool or endpoint receives no traffic, and the issue pins "weight 0 is never chosen"; spreading
  evenly over weight-0 pools would break both.
* **Order** is always the configured order of ``pools``: ties (equal distance, equal RTT) go to
  the pool listed first; the weighted draws scan ``pools`` in order, so a seed gives the same
  picks on every run and on both kernel paths.

Time and randomness are injected through a :class:`SteeringContext`: ``now`` (seconds) and the
kernel generator ``rng`` (:class:`lbkit._pure._steering.Rng`, SplitMix64, identical on both
paths).

>>> from lbkit.steering import Endpoint, Pool, Request
>>> pools = [Pool("eu", [Endpoint("e1")]), Pool("us", [Endpoint("u1")])]
>>> choice = make_policy("failover").choose(pools, {"us"}, Request(), SteeringContext.seeded(1))
>>> choice.pool.id, choice.reason
('us', "failover: 'us' is the first healthy pool in order")
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
import secrets
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.health.results import EndpointHealth
from lbkit.steering.ewma import Ewma
from lbkit.steering.keys import id_hash, key_hash
from lbkit.steering.model import Coordinates, Pool
from lbkit.steering.request import Request

__all__ = [
    "EARTH_RADIUS_KM",
    "POLICIES",
    "DynamicPolicy",
    "FailoverPolicy",
    "GeoPolicy",
    "HashPolicy",
    "LeastConnectionsPolicy",
    "LeastOutstandingPolicy",
    "PoolChoice",
    "PoolId",
    "PoolPolicy",
    "ProximityPolicy",
    "RandomPolicy",
    "SteeringContext",
    "great_circle_km",
    "make_policy",
]

#: A pool's id, as :class:`~lbkit.steering.Pool` accepts it.
PoolId = str | int

#: The mean Earth radius (IUGG), in kilometres, for :func:`great_circle_km`.
EARTH_RADIUS_KM = 6371.0088

_MAX_SEED = 2**64 - 1


# --- the interface ----------------------------------------------------------------------------


@attrs.frozen
class PoolChoice:
    """A policy's answer: the pool and why, in one short sentence for logs.

    Attributes:
        pool: the chosen :class:`~lbkit.steering.Pool`.
        reason: for example ``"failover: 'eu' is the first healthy pool in order"``.

    Runtime complexity: O(1).

    >>> from lbkit.steering import Endpoint, Pool
    >>> PoolChoice(Pool("eu", [Endpoint("a")]), "failover: 'eu' is first").pool.id
    'eu'
    """

    pool: Pool
    reason: str


def _check_now(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"now is {type(value).__name__}; it must be a number")
    if not math.isfinite(value):
        raise InvalidArgument(f"now is {value!r}; it must be finite")


def _check_counts(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"{attribute.name} is {type(value).__name__}; it must be a mapping from pool id to int"
        )


@attrs.frozen
class SteeringContext:
    """What a policy may read besides the request: the time, the generator, the load.

    Args:
        now: the caller's clock, in seconds (finite); ``dynamic`` ages RTT data with it.
        rng: the kernel generator, ``_kernels.steering.Rng(seed)``; the weighted policies draw
            from it (one draw per choice).
        outstanding: outstanding requests per pool id, for ``least_outstanding`` (a missing
            pool counts 0).
        connections: open connections per pool id, for ``least_connections``.

    Raises:
        ArgumentTypeError: ``now`` is not a number, or a count map is not a mapping.
        InvalidArgument: ``now`` is not finite.

    Runtime complexity: O(1).

    >>> from lbkit import _kernels
    >>> context = SteeringContext(now=5.0, rng=_kernels.steering.Rng(7), outstanding={"eu": 3})
    >>> context.outstanding["eu"]
    3
    """

    now: float = attrs.field(validator=_check_now)
    rng: _kernels.steering.Rng
    outstanding: Mapping[PoolId, int] = attrs.field(factory=dict, validator=_check_counts)
    connections: Mapping[PoolId, int] = attrs.field(factory=dict, validator=_check_counts)

    @classmethod
    def seeded(
        cls,
        seed: int | None = None,
        *,
        now: float = 0.0,
        outstanding: Mapping[PoolId, int] | None = None,
        connections: Mapping[PoolId, int] | None = None,
    ) -> SteeringContext:
        """A context with a fresh kernel generator seeded with ``seed`` (``None``: a random
        64-bit seed from :mod:`secrets`).

        Raises:
            ArgumentTypeError: ``seed`` is not an int.
            ConfigError: ``seed`` is outside 0..2**64 - 1.

        Runtime complexity: O(1).

        >>> SteeringContext.seeded(1).rng.next_u64() == SteeringContext.seeded(1).rng.next_u64()
        True
        """
        if seed is None:
            seed = secrets.randbits(64)
        elif isinstance(seed, bool) or not isinstance(seed, int):
            raise ArgumentTypeError(f"seed is {type(seed).__name__}; it must be an int or None")
        elif not 0 <= seed <= _MAX_SEED:
            raise ConfigError(f"seed is {seed}; it must be in 0..{_MAX_SEED}")
        return cls(
            now=now,
            rng=_kernels.steering.Rng(seed),
            outstanding={} if outstanding is None else outstanding,
            connections={} if connections is None else connections,
        )


class PoolPolicy(abc.ABC):
    """The interface every pool policy implements; the load balancer calls only this.

    ``pools`` is the configured order and ``healthy`` holds the ids of the pools that may serve
    (a ``set`` or ``frozenset`` makes the membership tests O(1)); ids in ``healthy`` that name
    no pool are ignored. :meth:`choose` returns ``None`` when no healthy pool qualifies, and the
    load balancer then uses its fallback pool; a policy never picks the fallback itself.
    :meth:`validate` checks the policy's configuration against the configured pool ids once, when
    the load balancer is built.

    Runtime complexity: see each policy.

    >>> sorted(POLICIES)[:3]
    ['dynamic', 'failover', 'geo']
    """

    #: The name :func:`make_policy` knows the policy by.
    name: ClassVar[str]

    @abc.abstractmethod
    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """The pool to serve ``request``, or ``None`` when no healthy pool qualifies.

        Runtime complexity: see each policy.

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> FailoverPolicy().choose([Pool("eu", [Endpoint("a")])], set(), Request(),
        ...                         SteeringContext.seeded(1)) is None
        True
        """

    def validate(self, pool_ids: Collection[PoolId]) -> None:
        """Check the configuration against the configured pool ids (a no-op unless the policy
        names pools itself, as ``geo`` does).

        Raises:
            ConfigError: the configuration names a pool that is not configured.

        Runtime complexity: O(1) here; see each policy.

        >>> FailoverPolicy().validate(["eu", "us"])
        """
        return None


# --- helpers shared by the policies -----------------------------------------------------------


def _failover_choice(
    pools: Sequence[Pool], healthy: Collection[PoolId], prefix: str
) -> PoolChoice | None:
    for pool in pools:
        if pool.id in healthy:
            return PoolChoice(pool, f"{prefix}{pool.id!r} is the first healthy pool in order")
    return None


def _draw(weights: list[float], context: SteeringContext) -> int:
    # The kernel draws over the plain left-to-right sum; past the float range it would favour
    # the last pool, so such weights are an error rather than a wrong answer.
    if not math.isfinite(sum(weights)):
        raise ConfigError(
            "the pool weights sum to more than a float can hold; scale them down (only their "
            "ratios matter)"
        )
    for weight in weights:
        if weight > 0.0:
            return _kernels.steering.weighted_choice(context.rng, weights)
    return -1


def _count(counts: Mapping[PoolId, int], pool_id: PoolId, name: str) -> int:
    value = counts.get(pool_id, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(
            f"{name}[{pool_id!r}] is {type(value).__name__}; counts must be ints"
        )
    if value < 0:
        raise InvalidArgument(f"{name}[{pool_id!r}] is {value}; counts must be >= 0")
    return value


def _weight_text(value: float) -> str:
    return f"{value:g}"


@functools.lru_cache(maxsize=4096)
def _pool_hash(pool_id: PoolId) -> int:
    return id_hash(pool_id)


def _check_pool_id(value: object, name: str) -> PoolId:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; pool ids must be str or int")
    if isinstance(value, str) and not value:
        raise ConfigError(f"{name} is ''; pool ids must not be empty")
    return value


def _check_location(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a str")
    if not value:
        raise ConfigError(f"{name} is ''; it must not be empty")
    return value


def _pool_list(value: object, name: str) -> tuple[PoolId, ...]:
    if not isinstance(value, (list, tuple)):
        raise ArgumentTypeError(
            f"{name} is {type(value).__name__}; it must be a list of pool ids in failover order"
        )
    if not value:
        raise ConfigError(f"{name} is empty; it must name at least one pool")
    seen: set[PoolId] = set()
    for index, item in enumerate(value):
        pool_id = _check_pool_id(item, f"{name}[{index}]")
        if pool_id in seen:
            raise ConfigError(
                f"{name}[{index}] repeats the pool {pool_id!r}; each pool appears once per list"
            )
        seen.add(pool_id)
    return tuple(value)


# --- failover ---------------------------------------------------------------------------------


@attrs.frozen
class FailoverPolicy(PoolPolicy):
    """``failover``: the first healthy pool in the configured order (Cloudflare's "off").

    Pool weights are ignored, as in Cloudflare: a weight-0 pool is still a failover target.
    When no pool is healthy the answer is ``None`` and the load balancer uses its fallback pool.

    Runtime complexity: O(P) per choice for P pools (O(position of the first healthy pool)).

    >>> from lbkit.steering import Endpoint, Pool, Request
    >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
    >>> FailoverPolicy().choose(pools, {"eu", "us"}, Request(), SteeringContext.seeded(1)).pool.id
    'eu'
    """

    name: ClassVar[str] = "failover"

    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """The first pool of ``pools`` whose id is in ``healthy``, or ``None``.

        Runtime complexity: O(P).

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
        >>> FailoverPolicy().choose(pools, {"us"}, Request(), SteeringContext.seeded(1)).reason
        "failover: 'us' is the first healthy pool in order"
        """
        return _failover_choice(pools, healthy, "failover: ")


# --- weighted policies ------------------------------------------------------------------------


@attrs.frozen
class RandomPolicy(PoolPolicy):
    """``random``: a healthy pool drawn with probability ``weight / sum(healthy weights)``.

    Unhealthy pools count as weight 0, so the shares are normalised over the healthy pools
    (Cloudflare: with C down, A and B at 0.25 each get 50 % each). A pool of weight 0 is never
    drawn; when every healthy pool has weight 0 no pool qualifies and the answer is ``None``
    (the load balancer's fallback pool serves). One draw from ``context.rng`` per choice
    (:func:`lbkit._pure._steering.weighted_choice`), scanning ``pools`` in order, so a seed
    reproduces the same picks on both kernel paths.

    Runtime complexity: O(P) per choice.

    >>> from lbkit.steering import Endpoint, Pool, Request
    >>> pools = [Pool("eu", [Endpoint("a")], weight=0), Pool("us", [Endpoint("b")])]
    >>> RandomPolicy().choose(pools, {"eu", "us"}, Request(), SteeringContext.seeded(3)).reason
    "random: drew 'us', weight 1 of 1 over the healthy pools"
    """

    name: ClassVar[str] = "random"

    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """One weighted draw over the healthy pools, or ``None`` when none has a positive weight.

        Runtime complexity: O(P).

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
        >>> RandomPolicy().choose(pools, {"eu"}, Request(), SteeringContext.seeded(3)).pool.id
        'eu'
        """
        weights = [pool.weight if pool.id in healthy else 0.0 for pool in pools]
        index = _draw(weights, context)
        if index < 0:
            return None
        pool = pools[index]
        total = math.fsum(weights)
        return PoolChoice(
            pool,
            f"random: drew {pool.id!r}, weight {_weight_text(pool.weight)} of "
            f"{_weight_text(total)} over the healthy pools",
        )


@attrs.frozen
class HashPolicy(PoolPolicy):
    """``hash``: weighted rendezvous hashing of the request's key over the healthy pools.

    The key is ``request.hash_key`` (``Request.key``, else the client IP). Each healthy pool of
    positive weight scores the key (:func:`lbkit._pure._steering.rendezvous_pick` on
    :func:`~lbkit.steering.key_hash` of the key and :func:`~lbkit.steering.id_hash` of the pool
    id) and the highest score wins, so every proxy sends a key to the same pool, each pool
    receives keys in proportion to its weight, and a pool going down moves only the keys it
    held (they spread over the others by their weights); when it comes back they return. Weight
    0 is never chosen; no healthy pool of positive weight means ``None``.

    Raises (from :meth:`choose`):
        InvalidArgument: the request has no hash key (neither ``key`` nor ``client_ip``).

    Runtime complexity: O(P + len(key)) per choice.

    >>> from lbkit.steering import Endpoint, Pool, Request
    >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
    >>> request = Request(client_ip="198.51.100.7")
    >>> first = HashPolicy().choose(pools, {"eu", "us"}, request, SteeringContext.seeded(1))
    >>> again = HashPolicy().choose(pools, {"eu", "us"}, request, SteeringContext.seeded(2))
    >>> first.pool.id == again.pool.id
    True
    """

    name: ClassVar[str] = "hash"

    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """The healthy pool with the highest rendezvous score for the request's key.

        Raises:
            InvalidArgument: the request has neither ``key`` nor ``client_ip``.

        Runtime complexity: O(P + len(key)).

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
        >>> HashPolicy().choose(pools, {"us"}, Request(key="session-42"),
        ...                     SteeringContext.seeded(1)).reason
        "hash: the key ranks 'us' first among the healthy pools"
        """
        key = request.hash_key
        if key is None:
            raise InvalidArgument(
                "request has no hash key (key and client_ip are both None); hash steering "
                "needs Request(key=...) or a client_ip"
            )
        weights = [pool.weight if pool.id in healthy else 0.0 for pool in pools]
        index = _kernels.steering.rendezvous_pick(
            key_hash(key), [_pool_hash(pool.id) for pool in pools], weights
        )
        if index < 0:
            return None
        pool = pools[index]
        return PoolChoice(pool, f"hash: the key ranks {pool.id!r} first among the healthy pools")


@attrs.frozen
class LeastOutstandingPolicy(PoolPolicy):
    """``least_outstanding``: a healthy pool drawn with probability proportional to
    ``weight / (outstanding + 1)``.

    ``outstanding`` comes from ``context.outstanding`` (a pool missing there counts 0). With
    nothing outstanding this is exactly :class:`RandomPolicy` (same draw, same pick for the same
    seed); a busy pool's share shrinks in proportion to its backlog (Cloudflare: "pools with more
    pending requests are weighted proportionately less"). Weight 0 is never chosen; no healthy
    pool of positive weight means ``None``.

    Raises (from :meth:`choose`):
        ArgumentTypeError: a count is not an int.
        InvalidArgument: a count is negative.

    Runtime complexity: O(P) per choice.

    >>> from lbkit.steering import Endpoint, Pool, Request
    >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
    >>> context = SteeringContext.seeded(5, outstanding={"eu": 3})
    >>> LeastOutstandingPolicy().choose(pools, {"eu", "us"}, Request(), context).reason
    "least_outstanding: drew 'us', weight 1 / (0 outstanding + 1)"
    """

    name: ClassVar[str] = "least_outstanding"

    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """One draw over the healthy pools weighted by ``weight / (outstanding + 1)``.

        Raises:
            ArgumentTypeError: a healthy pool's count is not an int.
            InvalidArgument: a healthy pool's count is negative.

        Runtime complexity: O(P).

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> pools = [Pool("eu", [Endpoint("a")])]
        >>> LeastOutstandingPolicy().choose(pools, {"eu"}, Request(),
        ...                                 SteeringContext.seeded(1)).pool.id
        'eu'
        """
        return _least(pools, healthy, context, context.outstanding, "outstanding", self.name)


@attrs.frozen
class LeastConnectionsPolicy(PoolPolicy):
    """``least_connections``: a healthy pool drawn with probability proportional to
    ``weight / (connections + 1)``.

    As :class:`LeastOutstandingPolicy`, with the open connections of ``context.connections``.

    Raises (from :meth:`choose`):
        ArgumentTypeError: a count is not an int.
        InvalidArgument: a count is negative.

    Runtime complexity: O(P) per choice.

    >>> from lbkit.steering import Endpoint, Pool, Request
    >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
    >>> context = SteeringContext.seeded(5, connections={"eu": 9})
    >>> LeastConnectionsPolicy().choose(pools, {"eu", "us"}, Request(), context).pool.id
    'us'
    """

    name: ClassVar[str] = "least_connections"

    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """One draw over the healthy pools weighted by ``weight / (connections + 1)``.

        Raises:
            ArgumentTypeError: a healthy pool's count is not an int.
            InvalidArgument: a healthy pool's count is negative.

        Runtime complexity: O(P).

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> pools = [Pool("eu", [Endpoint("a")])]
        >>> LeastConnectionsPolicy().choose(pools, {"eu"}, Request(),
        ...                                 SteeringContext.seeded(1)).pool.id
        'eu'
        """
        return _least(pools, healthy, context, context.connections, "connections", self.name)


def _least(
    pools: Sequence[Pool],
    healthy: Collection[PoolId],
    context: SteeringContext,
    counts: Mapping[PoolId, int],
    counted: str,
    policy: str,
) -> PoolChoice | None:
    weights = [0.0] * len(pools)
    loads = [0] * len(pools)
    for index in range(len(pools)):
        pool = pools[index]
        if pool.id in healthy and pool.weight > 0.0:
            loads[index] = _count(counts, pool.id, counted)
            weights[index] = pool.weight / (loads[index] + 1)
    index = _draw(weights, context)
    if index < 0:
        return None
    pool = pools[index]
    return PoolChoice(
        pool,
        f"{policy}: drew {pool.id!r}, weight {_weight_text(pool.weight)} / "
        f"({loads[index]} {counted} + 1)",
    )


# --- geo --------------------------------------------------------------------------------------


def _geo_map(value: object, name: str, what: str) -> Mapping[str, tuple[PoolId, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"{name} is {type(value).__name__}; it must be a mapping from a {what} "
            "to a list of pool ids"
        )
    result: dict[str, tuple[PoolId, ...]] = {}
    for key, pool_ids in value.items():
        _check_location(key, f"{name} key {key!r}")
        result[key] = _pool_list(pool_ids, f"{name}[{key!r}]")
    return result


def _pops(value: object) -> Mapping[str, tuple[PoolId, ...]]:
    return _geo_map(value, "pops", "PoP")


def _countries(value: object) -> Mapping[str, tuple[PoolId, ...]]:
    return _geo_map(value, "countries", "country")


def _regions(value: object) -> Mapping[str, tuple[PoolId, ...]]:
    return _geo_map(value, "regions", "region")


def _default_pools(value: object) -> tuple[PoolId, ...] | None:
    if value is None:
        return None
    return _pool_list(value, "default_pools")


def _check_cascade(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"cascade is {type(value).__name__}; it must be a bool")


@attrs.frozen
class GeoPolicy(PoolPolicy):
    """``geo``: pools mapped to the requesting PoP, country or region, most specific first.

    The request's ``pop`` is looked up in ``pops``, then its ``country`` in ``countries``, then
    its ``region`` in ``regions``; the first mapping that exists for the request applies, and
    without one the default pools do (Cloudflare: "any data center not explicitly defined will
    fall back to using the corresponding country_pool, then region_pool mapping, and finally to
    associated default pools"). Inside a mapping the pools are tried in failover order: the
    first healthy one serves. Keys match exactly (``"GB"`` is not ``"gb"``).

    When the mapping that applies has no healthy pool, the answer is ``None`` and the load
    balancer sends the request to its fallback pool, as Cloudflare does. With ``cascade=True``
    the next less specific mapping that exists for the request is tried instead, and finally
    the default pools. Pool weights are ignored (failover order).

    Args:
        pops: PoP (data centre) code to pool ids in failover order.
        countries: country code to pool ids in failover order.
        regions: region code to pool ids in failover order.
        default_pools: the pools for requests no mapping covers, in failover order; ``None``
            (the default) means all configured pools in their configured order.
        cascade: on a mapping without a healthy pool, go on to less specific mappings and
            the default pools rather than to the fallback pool.

    Raises:
        ConfigError: an empty key or pool list, or a pool repeated within one list.
        ArgumentTypeError: a mapping, list, key or id of the wrong type.

    Pool ids are checked against the configured pools by :meth:`validate`, which the load
    balancer calls when it is built (a policy does not know the pools before).

    Runtime complexity: O(P + L) per choice for P pools and a list of L pool ids.

    >>> from lbkit.steering import Endpoint, Pool, Request
    >>> pools = [Pool(name, [Endpoint("a")]) for name in ("eu", "uk", "us")]
    >>> geo = GeoPolicy(countries={"GB": ["uk", "eu"]}, regions={"WEU": ["eu"]})
    >>> request = Request(country="GB", region="WEU")
    >>> geo.choose(pools, {"eu", "uk", "us"}, request, SteeringContext.seeded(1)).reason
    "geo: 'uk' is the first healthy pool for country 'GB'"
    >>> geo.choose(pools, {"us"}, request, SteeringContext.seeded(1)) is None
    True
    """

    name: ClassVar[str] = "geo"

    pops: Mapping[str, tuple[PoolId, ...]] = attrs.field(
        default=None, kw_only=True, converter=_pops
    )
    countries: Mapping[str, tuple[PoolId, ...]] = attrs.field(
        default=None, kw_only=True, converter=_countries
    )
    regions: Mapping[str, tuple[PoolId, ...]] = attrs.field(
        default=None, kw_only=True, converter=_regions
    )
    default_pools: tuple[PoolId, ...] | None = attrs.field(
        default=None, kw_only=True, converter=_default_pools
    )
    cascade: bool = attrs.field(default=False, kw_only=True, validator=_check_cascade)

    def validate(self, pool_ids: Collection[PoolId]) -> None:
        """Check that every mapped pool id names a configured pool.

        Raises:
            ConfigError: a mapping or ``default_pools`` names an unknown pool.

        Runtime complexity: O(M + P) for M mapped ids and P pools.

        >>> GeoPolicy(countries={"DE": ["eu", "mars"]}).validate(["eu", "us"])
        Traceback (most recent call last):
        ...
        lbkit.errors.ConfigError: countries['DE'][1] is 'mars', which is not a configured pool; ...
        """
        known = set(pool_ids)
        listed = ", ".join(repr(pool_id) for pool_id in pool_ids)
        tables = (("pops", self.pops), ("countries", self.countries), ("regions", self.regions))
        for table_name, table in tables:
            for key, ids in table.items():
                for position, pool_id in enumerate(ids):
                    if pool_id not in known:
                        raise ConfigError(
                            f"{table_name}[{key!r}][{position}] is {pool_id!r}, which is not a "
                            f"configured pool; the pools are {listed}"
                        )
        for position, pool_id in enumerate(self.default_pools or ()):
            if pool_id not in known:
                raise ConfigError(
                    f"default_pools[{position}] is {pool_id!r}, which is not a configured pool; "
                    f"the pools are {listed}"
                )

    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """The first healthy pool of the most specific mapping for the request (with
        ``cascade``, of the first mapping that has one), or ``None``.

        Runtime complexity: O(P + L).

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> pools = [Pool(name, [Endpoint("a")]) for name in ("eu", "uk", "us")]
        >>> geo = GeoPolicy(pops={"LHR": ["uk"]}, default_pools=["us", "eu"], cascade=True)
        >>> geo.choose(pools, {"eu", "us"}, Request(pop="LHR"), SteeringContext.seeded(1)).reason
        "geo: 'us' is the first healthy default pool (no healthy pool for pop 'LHR')"
        """
        levels: list[tuple[str, tuple[PoolId, ...]]] = []
        for kind, key, table in (
            ("pop", request.pop, self.pops),
            ("country", request.country, self.countries),
            ("region", request.region, self.regions),
        ):
            if key is not None and key in table:
                levels.append((f"{kind} {key!r}", table[key]))
        defaults = self.default_pools
        levels.append(
            ("default", defaults if defaults is not None else tuple(pool.id for pool in pools))
        )
        if not self.cascade:
            del levels[1:]
        by_id = {pool.id: pool for pool in pools}
        passed: list[str] = []
        for label, pool_ids in levels:
            for pool_id in pool_ids:
                pool = by_id.get(pool_id)
                if pool is not None and pool_id in healthy:
                    where = "default pool" if label == "default" else f"pool for {label}"
                    reason = f"geo: {pool_id!r} is the first healthy {where}"
                    if passed:
                        reason += f" (no healthy pool for {', '.join(passed)})"
                    return PoolChoice(pool, reason)
            passed.append(label)
        return None


# --- dynamic ----------------------------------------------------------------------------------


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    return float(value)


class DynamicPolicy(PoolPolicy):
    """``dynamic``: the healthy pool with the lowest RTT from the requesting PoP.

    RTTs are kept per (pool, location) in a time-aware EWMA (:class:`~lbkit.steering.Ewma`:
    ``w = exp(-dt / tau)``, ``estimate = w * estimate + (1 - w) * rtt``; the first sample is the
    estimate). Feed it with :meth:`observe` or, from the health aggregator, with
    :meth:`observe_health`. A request's location is ``request.pop``, so health-monitor locations
    and PoP names must use the same codes.

    For a request, the healthy pools with a current estimate at its location compete; the
    lowest estimate wins, ties to the pool listed first. Healthy pools without data there rank
    after those with data. With ``margin > 0`` a location keeps its current pool while that
    pool's estimate is at most ``(1 + margin)`` times the best one (hysteresis against flapping
    between two pools of similar RTT); it switches when the current pool is slower than the best
    by more than ``margin`` (a fraction: 0.1 = 10 %), or is unhealthy, or has no current data.
    On an exact tie the current pool stays. Without any current data at the location (or
    without a ``pop`` on the request) the healthy pools are used in failover order, as
    Cloudflare does, and the reason says so. Pool weights are ignored.

    Args:
        tau: the EWMA decay time in seconds, finite and > 0 (60 s: one default monitor interval).
        margin: the hysteresis fraction, finite and >= 0; 0 always moves to the fastest pool.
        max_age: an estimate whose latest sample is more than ``max_age`` seconds older than
            ``context.now`` counts as no data; ``None`` (the default) keeps estimates forever.

    Raises:
        ConfigError: ``tau``, ``margin`` or ``max_age`` out of range.
        ArgumentTypeError: an option of the wrong type.

    The policy is mutable: observations and the per-location current pools are guarded by a
    lock, so observers and choosers may run on different threads.

    Runtime complexity: O(P) per choice; O(1) per :meth:`observe`.

    >>> from lbkit.steering import Endpoint, Pool, Request
    >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
    >>> dynamic = DynamicPolicy(tau=30.0)
    >>> _ = dynamic.observe("eu", "JFK", 0.080, now=0.0)
    >>> _ = dynamic.observe("us", "JFK", 0.012, now=0.0)
    >>> dynamic.choose(pools, {"eu", "us"}, Request(pop="JFK"), SteeringContext.seeded(1)).reason
    "dynamic: 'us' has the lowest RTT from 'JFK' (12.0 ms)"
    """

    name: ClassVar[str] = "dynamic"

    def __init__(
        self, *, tau: float = 60.0, margin: float = 0.0, max_age: float | None = None
    ) -> None:
        tau = _seconds(tau, "tau")
        if not math.isfinite(tau) or tau <= 0.0:
            raise ConfigError(f"tau is {tau!r}; it must be finite and > 0 seconds")
        margin = _seconds(margin, "margin")
        if not math.isfinite(margin) or margin < 0.0:
            raise ConfigError(f"margin is {margin!r}; it must be finite and >= 0 (0.1 = 10 %)")
        if max_age is not None:
            max_age = _seconds(max_age, "max_age")
            if not math.isfinite(max_age) or max_age <= 0.0:
                raise ConfigError(f"max_age is {max_age!r}; it must be None or finite and > 0")
        self._tau = tau
        self._margin = margin
        self._max_age = max_age
        self._lock = threading.Lock()
        self._estimates: dict[str, dict[PoolId, Ewma]] = {}
        self._current: dict[str, PoolId] = {}

    @property
    def tau(self) -> float:
        """The EWMA decay time, in seconds."""
        return self._tau

    @property
    def margin(self) -> float:
        """The hysteresis fraction."""
        return self._margin

    @property
    def max_age(self) -> float | None:
        """How old an estimate may get before it counts as no data (``None``: forever)."""
        return self._max_age

    def __repr__(self) -> str:
        options = f"tau={self._tau!r}, margin={self._margin!r}, max_age={self._max_age!r}"
        return f"DynamicPolicy({options})"

    def observe(self, pool_id: PoolId, location: str, rtt: float, *, now: float) -> float:
        """Fold one RTT sample (seconds) of ``pool_id`` seen from ``location`` at ``now`` into
        its EWMA and return the new estimate.

        Raises:
            ArgumentTypeError: an argument of the wrong type.
            ConfigError: an empty pool id or location.
            InvalidArgument: ``rtt`` is not finite and >= 0; ``now`` is not finite or earlier
                than this pool and location's previous sample.

        Runtime complexity: O(1).

        >>> dynamic = DynamicPolicy(tau=10.0)
        >>> dynamic.observe("eu", "AMS", 0.100, now=0.0)
        0.1
        >>> round(dynamic.observe("eu", "AMS", 0.200, now=10.0), 4)  # w = exp(-1)
        0.1632
        """
        _check_pool_id(pool_id, "pool_id")
        _check_location(location, "location")
        sample = _seconds(rtt, "rtt")
        if not math.isfinite(sample) or sample < 0.0:
            raise InvalidArgument(f"rtt is {rtt!r}; it must be finite and >= 0 seconds")
        moment = _seconds(now, "now")
        if not math.isfinite(moment):
            raise InvalidArgument(f"now is {now!r}; it must be finite")
        with self._lock:
            estimates = self._estimates.setdefault(location, {})
            average = estimates.get(pool_id)
            if average is None:
                average = Ewma(tau=self._tau)
                estimates[pool_id] = average
            return average.update(sample, now=moment)

    def observe_health(
        self, pool: Pool, report: Mapping[Any, EndpointHealth], *, now: float
    ) -> dict[str, float]:
        """Feed the pool's RTT per location from a health report (for example
        :meth:`lbkit.health.MonitorGroup.evaluate`): at each location, the mean of
        ``EndpointHealth.locations[i].latency`` over the pool's endpoints that have one there.

        Endpoints are looked up by their id; endpoints the report lacks, and report entries for
        other endpoints, are skipped. Returns the sample fed per location.

        Raises:
            ArgumentTypeError: ``pool`` is not a Pool, ``report`` not a mapping, or an entry not
                an EndpointHealth.
            InvalidArgument: as :meth:`observe`.

        Runtime complexity: O(E * L) for E endpoints and L locations.

        >>> from lbkit.health import Member, MonitorGroup, MonitorResult
        >>> from lbkit.steering import Endpoint, Pool
        >>> group = MonitorGroup([Member("http")])
        >>> results = [MonitorResult("http", name, "AMS", True, rtt, observed_at=0.0)
        ...            for name, rtt in (("a", 0.010), ("b", 0.030))]
        >>> pool = Pool("eu", [Endpoint("a"), Endpoint("b")])
        >>> DynamicPolicy().observe_health(pool, group.evaluate(results, now=1.0), now=1.0)
        {'AMS': 0.02}
        """
        if not isinstance(pool, Pool):
            raise ArgumentTypeError(f"pool is {type(pool).__name__}; it must be a Pool")
        if not isinstance(report, Mapping):
            raise ArgumentTypeError(
                f"report is {type(report).__name__}; it must map endpoint ids to EndpointHealth"
            )
        samples: dict[str, list[float]] = {}
        for endpoint in pool.endpoints:
            health = report.get(endpoint.id)
            if health is None:
                continue
            if not isinstance(health, EndpointHealth):
                raise ArgumentTypeError(
                    f"report[{endpoint.id!r}] is {type(health).__name__}; "
                    "it must be an EndpointHealth"
                )
            for here in health.locations:
                if here.latency is not None:
                    samples.setdefault(here.location, []).append(here.latency)
        fed: dict[str, float] = {}
        for location, values in samples.items():
            mean = math.fsum(values) / len(values)
            self.observe(pool.id, location, mean, now=now)
            fed[location] = mean
        return fed

    def rtt(self, pool_id: PoolId, location: str) -> float | None:
        """The RTT estimate of ``pool_id`` from ``location`` (``None`` without samples).

        Runtime complexity: O(1).

        >>> dynamic = DynamicPolicy()
        >>> _ = dynamic.observe("eu", "AMS", 0.02, now=0.0)
        >>> dynamic.rtt("eu", "AMS"), dynamic.rtt("us", "AMS")
        (0.02, None)
        """
        with self._lock:
            average = self._estimates.get(location, {}).get(pool_id)
            return None if average is None else average.value

    def current(self, location: str) -> PoolId | None:
        """The pool the latest RTT-based choice for ``location`` went to (what hysteresis
        keeps), or ``None``.

        Runtime complexity: O(1).

        >>> DynamicPolicy().current("AMS") is None
        True
        """
        with self._lock:
            return self._current.get(location)

    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """The healthy pool with the lowest RTT estimate from ``request.pop``, subject to the
        hysteresis margin; failover order without data; ``None`` when no pool is healthy.

        Runtime complexity: O(P).

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> pools = [Pool("eu", [Endpoint("a")]), Pool("us", [Endpoint("b")])]
        >>> DynamicPolicy().choose(pools, {"eu", "us"}, Request(pop="SYD"),
        ...                        SteeringContext.seeded(1)).reason
        "dynamic: no healthy pool has RTT data from 'SYD'; 'eu' is the first healthy pool in order"
        """
        location = request.pop
        if location is None:
            return _failover_choice(pools, healthy, "dynamic: the request has no pop; ")
        oldest = -math.inf if self._max_age is None else context.now - self._max_age
        with self._lock:
            estimates = self._estimates.get(location)
            best = -1
            best_value = math.inf
            values: dict[int, float] = {}
            if estimates:
                for index in range(len(pools)):
                    pool_id = pools[index].id
                    average = estimates.get(pool_id)
                    if average is None or pool_id not in healthy:
                        continue
                    value = average.value
                    if value is None or average.updated_at < oldest:
                        continue
                    values[index] = value
                    if best < 0 or value < best_value:
                        best, best_value = index, value
            if best < 0:
                return _failover_choice(
                    pools, healthy, f"dynamic: no healthy pool has RTT data from {location!r}; "
                )
            chosen = best
            current_id = self._current.get(location)
            if current_id is not None and current_id != pools[best].id:
                for index, value in values.items():
                    if pools[index].id == current_id:
                        if value <= best_value * (1.0 + self._margin):
                            chosen = index
                        break
            pool = pools[chosen]
            self._current[location] = pool.id
        if chosen == best:
            reason = (
                f"dynamic: {pool.id!r} has the lowest RTT from {location!r} "
                f"({values[best] * 1000.0:.1f} ms)"
            )
        else:
            reason = (
                f"dynamic: {pool.id!r} kept for {location!r} ({values[chosen] * 1000.0:.1f} ms, "
                f"within {self._margin:.0%} of {pools[best].id!r} at {best_value * 1000.0:.1f} ms)"
            )
        return PoolChoice(pool, reason)


# --- proximity --------------------------------------------------------------------------------


def great_circle_km(a: Coordinates, b: Coordinates) -> float:
    """The great-circle distance in kilometres between two (latitude, longitude) points in
    degrees, by the haversine formula on a sphere of radius :data:`EARTH_RADIUS_KM`.

    Runtime complexity: O(1).

    >>> round(great_circle_km((51.5074, -0.1278), (50.1109, 8.6821)))  # London - Frankfurt
    638
    """
    latitude_a = math.radians(a[0])
    latitude_b = math.radians(b[0])
    half_latitude = (latitude_b - latitude_a) / 2.0
    half_longitude = math.radians(b[1] - a[1]) / 2.0
    haversine = (
        math.sin(half_latitude) ** 2
        + math.cos(latitude_a) * math.cos(latitude_b) * math.sin(half_longitude) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(haversine)))


@attrs.frozen
class ProximityPolicy(PoolPolicy):
    """``proximity``: the healthy pool nearest to the request's coordinates.

    Distances are great-circle (haversine) distances from ``request.coordinates`` to each
    healthy pool's ``coordinates``; equal distances go to the pool listed first. Pools without
    coordinates are skipped: they are used, in failover order, only when no healthy pool has
    coordinates (so a healthy pool is never passed over for the fallback pool). A request
    without coordinates gets the healthy pools in failover order, and the reason says so. Pool
    weights are ignored.

    Runtime complexity: O(P) per choice.

    >>> from lbkit.steering import Endpoint, Pool, Request
    >>> pools = [Pool("nyc", [Endpoint("a")], coordinates=(40.7128, -74.0060)),
    ...          Pool("fra", [Endpoint("b")], coordinates=(50.1109, 8.6821))]
    >>> london = Request(coordinates=(51.5074, -0.1278))
    >>> ProximityPolicy().choose(pools, {"nyc", "fra"}, london, SteeringContext.seeded(1)).reason
    "proximity: 'fra' is the nearest healthy pool (638 km)"
    """

    name: ClassVar[str] = "proximity"

    def choose(
        self,
        pools: Sequence[Pool],
        healthy: Collection[PoolId],
        request: Request,
        context: SteeringContext,
    ) -> PoolChoice | None:
        """The nearest healthy pool with coordinates; failover order when the request or every
        healthy pool lacks them; ``None`` when no pool is healthy.

        Runtime complexity: O(P).

        >>> from lbkit.steering import Endpoint, Pool, Request
        >>> pools = [Pool("nyc", [Endpoint("a")], coordinates=(40.7128, -74.0060))]
        >>> ProximityPolicy().choose(pools, {"nyc"}, Request(), SteeringContext.seeded(1)).reason
        "proximity: the request has no coordinates; 'nyc' is the first healthy pool in order"
        """
        origin = request.coordinates
        if origin is None:
            return _failover_choice(pools, healthy, "proximity: the request has no coordinates; ")
        best = -1
        best_distance = math.inf
        for index in range(len(pools)):
            pool = pools[index]
            if pool.coordinates is None or pool.id not in healthy:
                continue
            distance = great_circle_km(origin, pool.coordinates)
            if best < 0 or distance < best_distance:
                best, best_distance = index, distance
        if best < 0:
            return _failover_choice(pools, healthy, "proximity: no healthy pool has coordinates; ")
        pool = pools[best]
        return PoolChoice(
            pool, f"proximity: {pool.id!r} is the nearest healthy pool ({best_distance:.0f} km)"
        )


# --- the factory ------------------------------------------------------------------------------

#: The policies by name, in the order of the issue.
POLICIES: Mapping[str, type[PoolPolicy]] = {
    policy.name: policy
    for policy in (
        FailoverPolicy,
        RandomPolicy,
        HashPolicy,
        GeoPolicy,
        DynamicPolicy,
        ProximityPolicy,
        LeastOutstandingPolicy,
        LeastConnectionsPolicy,
    )
}


def make_policy(name: str, **options: Any) -> PoolPolicy:
    """The policy called ``name`` (see :data:`POLICIES`), built with ``options``.

    Raises:
        ArgumentTypeError: ``name`` is not a str, or an option of the wrong type.
        ConfigError: an unknown policy or option, or an option out of range.

    Runtime complexity: O(size of the options).

    >>> make_policy("dynamic", tau=30.0, margin=0.1)
    DynamicPolicy(tau=30.0, margin=0.1, max_age=None)
    >>> make_policy("round_robin")
    Traceback (most recent call last):
    ...
    lbkit.errors.ConfigError: policy is 'round_robin'; it must be one of failover, random, hash, ...
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"policy is {type(name).__name__}; it must be a str")
    policy = POLICIES.get(name)
    if policy is None:
        raise ConfigError(f"policy is {name!r}; it must be one of {', '.join(POLICIES)}")
    accepted = [
        parameter.name
        for parameter in inspect.signature(policy).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for option in options:
        if option not in accepted:
            takes = f"it takes {', '.join(accepted)}" if accepted else "it takes no options"
            raise ConfigError(f"option {option!r} is unknown for policy {name!r}; {takes}")
    return policy(**options)
