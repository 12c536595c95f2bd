"""The steering model: endpoints and the pools that hold them.

Both are frozen value objects: configuration, not state. What changes at run time (health,
outstanding requests, latencies) lives in the pickers, policies and the
:class:`~lbkit.steering.LoadBalancer` that use them, so one model can be shared by many.

Weights follow Cloudflare Load Balancing and Envoy: finite and >= 0; a weight of 0 sends no
traffic but the endpoint or pool is still monitored (a standby, or a drain).

>>> pool = Pool("eu", [Endpoint("web-1"), Endpoint("web-2", weight=3)])
>>> [endpoint.id for endpoint in pool.endpoints], pool.total_weight
(['web-1', 'web-2'], 4.0)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError, UnknownServer

__all__ = ["Coordinates", "Endpoint", "Pool", "check_weight"]

#: (latitude, longitude) in degrees.
Coordinates = tuple[float, float]


def check_weight(value: object, name: str) -> float:
    """``value`` as a finite weight >= 0, or the error naming ``name`` and the rule.

    >>> check_weight(2, "weight")
    2.0

    Runtime complexity: O(1).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; weights must be numbers")
    weight = float(value)
    if not math.isfinite(weight) or weight < 0.0:
        raise ConfigError(f"{name} is {value!r}; weights must be finite and >= 0")
    return weight


def _check_id(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; ids must be str or int")
    if isinstance(value, str) and not value:
        raise ConfigError(f"{name} is ''; ids must not be empty")


def _weight(value: object) -> float:
    return check_weight(value, "weight")


def _coordinates(value: object) -> Coordinates | None:
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ArgumentTypeError(
            f"coordinates is {value!r}; it must be a (latitude, longitude) pair or None"
        )
    latitude, longitude = value
    for number, name, limit in ((latitude, "latitude", 90.0), (longitude, "longitude", 180.0)):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ArgumentTypeError(
                f"coordinates {name} is {type(number).__name__}; it must be a number"
            )
        if not math.isfinite(number) or abs(number) > limit:
            raise ConfigError(
                f"coordinates {name} is {number!r}; it must be finite and within "
                f"[-{limit:g}, {limit:g}] degrees"
            )
    return (float(latitude), float(longitude))


@attrs.frozen
class Endpoint:
    """One server a request can be sent to.

    Args:
        id: a unique, non-empty ``str`` or an ``int``; pickers hash it, logs show it.
        weight: the share of traffic, finite and >= 0; 0 means none (still monitored).
        address: where to send requests (free form: ``"10.0.0.1:8080"``, a URL), or ``None``.
        location: the data centre or zone the endpoint sits in, or ``None``.

    Raises:
        ConfigError: an empty id, or a negative, NaN or infinite weight.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(1).

    >>> Endpoint("web-1", weight=2, address="10.0.0.1:80").weight
    2.0
    """

    id: str | int = attrs.field()
    weight: float = attrs.field(default=1.0, kw_only=True, converter=_weight)
    address: str | None = attrs.field(default=None, kw_only=True)
    location: Hashable = attrs.field(default=None, kw_only=True)

    @id.validator
    def _check_id_value(self, attribute: attrs.Attribute[Any], value: object) -> None:
        _check_id(value, "id")

    @address.validator
    def _check_address(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, str):
            raise ArgumentTypeError(f"address is {type(value).__name__}; it must be a str or None")


def _endpoints(value: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(
            f"endpoints is {type(value).__name__}; it must be an iterable of Endpoint"
        )
    return tuple(value)


@attrs.frozen
class Pool:
    """A group of endpoints that serves together: a data centre, a cloud region, a cluster.

    Args:
        id: a unique, non-empty ``str`` or an ``int``.
        endpoints: the pool's :class:`Endpoint` s, at least one, ids unique within the pool.
        weight: the pool's share under the ``random`` policies, finite and >= 0.
        minimum_healthy: how many healthy endpoints keep the pool healthy (Cloudflare's
            "health threshold"), 1..len(endpoints).
        coordinates: (latitude, longitude) in degrees, for the ``proximity`` policy.
        region: a free-form region name, for logs and geo maps.

    Raises:
        ConfigError: no endpoints, duplicate endpoint ids, a bad weight, ``minimum_healthy``
            out of range, coordinates out of range.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(E) to build, for E endpoints.

    >>> Pool("us", [Endpoint("a"), Endpoint("b")], minimum_healthy=2).minimum_healthy
    2
    """

    id: str | int
    endpoints: tuple[Endpoint, ...] = attrs.field(converter=_endpoints)
    weight: float = attrs.field(default=1.0, kw_only=True, converter=_weight)
    minimum_healthy: int = attrs.field(default=1, kw_only=True)
    coordinates: Coordinates | None = attrs.field(
        default=None, kw_only=True, converter=_coordinates
    )
    region: Hashable = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        _check_id(self.id, "id")
        if not self.endpoints:
            raise ConfigError(f"pool {self.id!r} has no endpoints; a pool needs at least one")
        seen: set[str | int] = set()
        for index, endpoint in enumerate(self.endpoints):
            if not isinstance(endpoint, Endpoint):
                raise ArgumentTypeError(
                    f"pool {self.id!r} endpoints[{index}] is {type(endpoint).__name__}; "
                    "it must be an Endpoint"
                )
            if endpoint.id in seen:
                raise ConfigError(
                    f"pool {self.id!r} endpoints[{index}] repeats the id {endpoint.id!r}; "
                    "endpoint ids are unique within a pool"
                )
            seen.add(endpoint.id)
        minimum = self.minimum_healthy
        if isinstance(minimum, bool) or not isinstance(minimum, int):
            raise ArgumentTypeError(
                f"minimum_healthy is {type(minimum).__name__}; it must be an int"
            )
        if not 1 <= minimum <= len(self.endpoints):
            raise ConfigError(
                f"pool {self.id!r} minimum_healthy is {minimum}; it must be in "
                f"1..{len(self.endpoints)} (the number of endpoints)"
            )

    @property
    def total_weight(self) -> float:
        """The sum of the endpoint weights (``inf`` past the float range)."""
        try:
            return math.fsum(endpoint.weight for endpoint in self.endpoints)
        except OverflowError:
            return math.inf

    def endpoint(self, endpoint_id: str | int) -> Endpoint:
        """The endpoint with ``endpoint_id``.

        Raises:
            UnknownServer: no endpoint of this pool has that id.

        Runtime complexity: O(E).

        >>> Pool("p", [Endpoint("a")]).endpoint("a").id
        'a'
        """
        for endpoint in self.endpoints:
            if endpoint.id == endpoint_id:
                return endpoint
        raise UnknownServer(f"pool {self.id!r} has no endpoint {endpoint_id!r}")
