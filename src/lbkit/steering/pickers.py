"""Endpoint pickers: choose one endpoint of a pool for each request.

Five pickers share one interface, :class:`EndpointPicker`, which the load balancer drives:
``pick`` chooses, ``set_eligible`` applies health verdicts, ``begin`` / ``end`` report each
request's life. The hot picks run in kernels (``lbkit._kernels.steering``), which draw from
their own seeded SplitMix64 generator, implemented identically on both paths: a picker built
with the same seed and fed the same calls picks the same endpoints on the compiled and the
pure-Python path.

* :class:`WeightedRandomPicker`: Walker's alias method, as built by Vose ("A linear algorithm
  for generating random numbers with a given distribution", IEEE TSE 1991): O(n) to rebuild
  when health or weights change, O(1) per pick.
* :class:`HashPicker`: weighted rendezvous hashing (Thaler and Ravishankar, "Using name-based
  mappings to increase hit rates", IEEE/ACM ToN 1998) on the request's hash key, so every
  proxy sends a key to the same endpoint and an endpoint going down moves only its own keys.
* :class:`LeastOutstandingPicker`: Envoy's least-request load balancer in three modes: power
  of two choices with two **distinct** draws comparing ``outstanding / weight`` (Mitzenmacher,
  "The power of two choices in randomized load balancing", IEEE TPDS 2001); earliest deadline
  first with the effective weight ``weight / (active + 1) ** bias``; and a weighted random draw
  in proportion to ``weight / (outstanding + 1) ** bias``.
* :class:`PeakEwmaPicker`: Finagle's and Linkerd's peak-EWMA power of two choices, cost
  ``latency * (pending + 1) / weight``, where a slower latency sample replaces the estimate at
  once and a faster one decays in.
* :class:`RoundRobinPicker`: smooth weighted round robin by earliest deadline first, starting
  at a random offset so that proxies built at the same moment do not all start on the same
  endpoint (Envoy does the same).
* :class:`SlowStart`: Envoy's slow start: an endpoint that became eligible ``t`` seconds ago
  gets ``weight * max(floor, (t / window) ** (1 / aggression))`` until ``t >= window``.

Weight 0 means an endpoint is never picked (it is still listed and still takes health
verdicts). An ineligible endpoint is never picked; the load balancer decides when to fail open
(by marking every endpoint eligible). When nothing can be picked, ``pick`` raises
:class:`~lbkit.errors.NoHealthyEndpoint` whose ``reasons`` name each endpoint's state.

Pickers are single-writer objects, like the rest of the control plane: one thread (or one
event loop) at a time may call them; a multi-threaded proxy serialises the calls or keeps one
picker per thread. :class:`lbkit.steering.accounting.RequestStats` is the thread-safe counter.

>>> endpoints = [Endpoint("web-1"), Endpoint("web-2", weight=3), Endpoint("spare", weight=0)]
>>> picker = make_picker("random", endpoints, seed=7)
>>> from collections import Counter
>>> Counter(picker.pick().id for _ in range(4000)).most_common()
[('web-2', 2976), ('web-1', 1024)]
"""

from __future__ import annotations

import functools
import inspect
import math
import secrets
import sys
from array import array
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from lbkit import _kernels
from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    InvalidArgument,
    NoHealthyEndpoint,
    UnknownServer,
)
from lbkit.steering.accounting import _check_latency, _check_now
from lbkit.steering.ewma import Ewma
from lbkit.steering.keys import id_hash, key_hash
from lbkit.steering.model import Endpoint
from lbkit.steering.request import Request

__all__ = [
    "KINDS",
    "MODES",
    "EndpointPicker",
    "HashPicker",
    "LeastOutstandingPicker",
    "PeakEwmaPicker",
    "RoundRobinPicker",
    "SlowStart",
    "WeightedRandomPicker",
    "accepted_options",
    "make_picker",
]

EndpointId = str | int

#: The picker kinds :func:`make_picker` builds, in the order the docs present them.
KINDS: tuple[str, ...] = ("random", "hash", "least_outstanding", "peak_ewma", "round_robin")
#: The modes of :class:`LeastOutstandingPicker`.
MODES: tuple[str, ...] = ("p2c", "weighted_random", "edf")

#: The largest seed: seeds are unsigned 64-bit integers.
MAX_SEED = 2**64 - 1
#: The smallest normal double: an eligible endpoint's load-adjusted weight never rounds down
#: to 0 (which would make it ineligible) however many requests it has outstanding.
_TINY = sys.float_info.min


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    return float(value)


def _positive_seconds(value: object, name: str) -> float:
    seconds = _number(value, name)
    if not math.isfinite(seconds) or seconds <= 0.0:
        raise ConfigError(f"{name} is {value!r}; it must be finite and > 0 seconds")
    return seconds


def _window(value: object) -> float:
    return _positive_seconds(value, "window")


def _aggression(value: object) -> float:
    aggression = _number(value, "aggression")
    if not math.isfinite(aggression) or aggression <= 0.0:
        raise ConfigError(f"aggression is {value!r}; it must be finite and > 0")
    return aggression


def _floor(value: object) -> float:
    floor = _number(value, "floor")
    if not 0.0 < floor <= 1.0:
        raise ConfigError(f"floor is {value!r}; it must be in (0, 1]")
    return floor


def _interval(value: object) -> float | None:
    if value is None:
        return None
    interval = _number(value, "interval")
    if not math.isfinite(interval) or interval < 0.0:
        raise ConfigError(f"interval is {value!r}; it must be finite and >= 0 seconds, or None")
    return interval


@attrs.frozen
class SlowStart:
    """Envoy's slow start: ramp up the weight of an endpoint that just became eligible.

    An endpoint that became eligible ``t`` seconds ago (it was added, or it came back to health)
    gets the effective weight ``weight * factor(t)`` with
    ``factor(t) = max(floor, (t / window) ** (1 / aggression))`` for ``t < window`` and 1 from
    ``t >= window`` on. ``aggression`` 1 ramps linearly; above 1 the weight rises fast at first,
    below 1 slowly.

    Args:
        window: the ramp's length in seconds, finite and > 0.
        aggression: the ramp's shape, finite and > 0.
        floor: the smallest factor, in (0, 1]: a returning endpoint gets at least this share of
            its weight from its first second.
        interval: while an endpoint ramps, ``pick(now=...)`` recomputes the effective weights
            when at least this many seconds passed since the last recomputation; ``None`` (the
            default) means ``window / 100``, 0 means on every pick with a new ``now``. Each
            recomputation costs O(n) for the alias table of :class:`WeightedRandomPicker`
            and O(ramping endpoints) for the other pickers; ``refresh(now)`` recomputes at once.

    Raises:
        ConfigError: a value out of range.
        ArgumentTypeError: a value that is not a number.

    Runtime complexity: O(1).

    >>> ramp = SlowStart(60.0, aggression=1.0, floor=0.1)
    >>> [ramp.factor(t) for t in (0.0, 3.0, 30.0, 60.0)]
    [0.1, 0.1, 0.5, 1.0]
    """

    window: float = attrs.field(converter=_window)
    aggression: float = attrs.field(default=1.0, kw_only=True, converter=_aggression)
    floor: float = attrs.field(default=0.1, kw_only=True, converter=_floor)
    interval: float | None = attrs.field(default=None, kw_only=True, converter=_interval)

    @property
    def refresh_interval(self) -> float:
        """The seconds between two recomputations of a ramp by ``pick(now=...)``."""
        return self.window / 100.0 if self.interval is None else self.interval

    def factor(self, elapsed: float) -> float:
        """The share of its weight an endpoint gets ``elapsed`` seconds after it became
        eligible: ``floor`` at 0 (and for a negative ``elapsed``), 1 from ``window`` on.

        Runtime complexity: O(1).

        >>> SlowStart(10.0, aggression=2.0, floor=0.05).factor(2.5)
        0.5
        """
        if elapsed >= self.window:
            return 1.0
        if elapsed <= 0.0:
            return self.floor
        return max(self.floor, float((elapsed / self.window) ** (1.0 / self.aggression)))


@runtime_checkable
class EndpointPicker(Protocol):
    """What the load balancer needs from an endpoint picker; every picker here provides it.

    * ``endpoints``: the endpoints, in the order given; indices refer to it.
    * ``pick(request=None, *, now=None) -> Endpoint``: one endpoint for ``request``; raises
      :class:`~lbkit.errors.NoHealthyEndpoint` (with ``reasons``) when none can be picked.
    * ``set_eligible(endpoint_id, eligible, *, now)``: apply a health verdict; an endpoint that
      becomes eligible again starts its slow start at ``now``.
    * ``begin(endpoint_id)`` and ``end(endpoint_id, *, latency=None, ok=True, now)``: a request
      was sent to the endpoint / finished.
    * ``eligible() -> tuple[Endpoint, ...]``: the endpoints currently eligible.

    >>> isinstance(WeightedRandomPicker([Endpoint("a")], seed=1), EndpointPicker)
    True
    """

    @property
    def endpoints(self) -> tuple[Endpoint, ...]: ...

    def pick(self, request: Request | None = None, *, now: float | None = None) -> Endpoint: ...

    def set_eligible(self, endpoint_id: EndpointId, eligible: bool, *, now: float) -> None: ...

    def begin(self, endpoint_id: EndpointId) -> None: ...

    def end(
        self,
        endpoint_id: EndpointId,
        *,
        latency: float | None = None,
        ok: bool = True,
        now: float,
    ) -> None: ...

    def eligible(self) -> tuple[Endpoint, ...]: ...


class _Picker:
    """The machinery every picker shares: endpoints and their ids, eligibility, slow start and
    the effective weights (``weight``, times the slow-start factor, 0 when ineligible) that the
    kernels read. Subclasses build their kernel structure from ``_effective`` and keep it in
    step in :meth:`_weights_changed`."""

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        *,
        seed: int | None,
        slow_start: SlowStart | None,
        eligible_since: Mapping[EndpointId, float] | None,
    ) -> None:
        self._endpoints = _check_endpoints(endpoints)
        count = len(self._endpoints)
        self._position: dict[EndpointId, int] = {
            endpoint.id: index for index, endpoint in enumerate(self._endpoints)
        }
        self._weights = [endpoint.weight for endpoint in self._endpoints]
        total = sum(self._weights)
        # The alias build scales each weight by the count before dividing by the total.
        if not math.isfinite(total * count):
            raise ConfigError(
                f"the endpoint weights sum to {total!r}; the sum times the number of endpoints "
                f"({count}) must be finite"
            )
        if slow_start is not None and not isinstance(slow_start, SlowStart):
            raise ArgumentTypeError(
                f"slow_start is {type(slow_start).__name__}; it must be a SlowStart or None"
            )
        self._slow_start = slow_start
        self._seed = _check_seed(seed)
        # The kernel flavour is fixed at construction: every kernel object of this picker must
        # come from the same flavour as its generator.
        self._kernel = _kernels.steering
        self._rng = self._kernel.Rng(self._seed)
        self._eligible = [True] * count
        self._since: list[float | None] = [None] * count
        self._ramping: list[int] = []
        self._next_refresh = -math.inf
        self._effective = array("d", self._weights)
        if eligible_since is not None:
            self._start_ramps(eligible_since)
        self._positive = sum(1 for weight in self._effective if weight > 0.0)

    def _start_ramps(self, eligible_since: Mapping[EndpointId, float]) -> None:
        if not isinstance(eligible_since, Mapping):
            raise ArgumentTypeError(
                f"eligible_since is {type(eligible_since).__name__}; it must be a mapping of "
                "endpoint id to time, or None"
            )
        if eligible_since and self._slow_start is None:
            raise ConfigError("eligible_since is given without slow_start; it sets ramp starts")
        ramp = self._slow_start
        for endpoint_id, since in eligible_since.items():
            index = self._index(endpoint_id)
            at = _check_now(since)
            if ramp is not None and self._weights[index] > 0.0:
                self._since[index] = at
                self._effective[index] = self._weights[index] * ramp.floor
        self._ramping = sorted(i for i in range(len(self._since)) if self._since[i] is not None)

    # -- what every picker offers --------------------------------------------------------

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The endpoints, in the order given (indices such as ``pick_index()`` refer to it)."""
        return self._endpoints

    @property
    def seed(self) -> int:
        """The seed of the picker's generator (drawn at random when none was given)."""
        return self._seed

    @property
    def slow_start(self) -> SlowStart | None:
        """The slow-start configuration, or ``None``."""
        return self._slow_start

    def eligible(self) -> tuple[Endpoint, ...]:
        """The endpoints currently eligible (healthy), weight 0 ones included, in order.

        Runtime complexity: O(n).

        >>> picker = RoundRobinPicker([Endpoint("a"), Endpoint("b")], seed=1)
        >>> picker.set_eligible("a", False, now=0.0)
        >>> [endpoint.id for endpoint in picker.eligible()]
        ['b']
        """
        return tuple(
            endpoint
            for endpoint, eligible in zip(self._endpoints, self._eligible, strict=True)
            if eligible
        )

    def is_eligible(self, endpoint_id: EndpointId) -> bool:
        """Whether ``endpoint_id`` is eligible.

        Raises:
            UnknownServer: no endpoint has that id.

        Runtime complexity: O(1).

        >>> RoundRobinPicker([Endpoint("a")], seed=1).is_eligible("a")
        True
        """
        return self._eligible[self._index(endpoint_id)]

    def effective_weights(self) -> tuple[float, ...]:
        """The weights the picks use now, in endpoint order: the configured weight, times the
        slow-start factor as of the last recomputation, 0 for an ineligible endpoint.

        Runtime complexity: O(n).

        >>> picker = WeightedRandomPicker([Endpoint("a", weight=2), Endpoint("b")],
        ...                               seed=1, slow_start=SlowStart(10.0))
        >>> picker.set_eligible("b", False, now=0.0); picker.set_eligible("b", True, now=0.0)
        >>> picker.effective_weights()
        (2.0, 0.1)
        >>> picker.refresh(5.0); picker.effective_weights()
        (2.0, 0.5)
        """
        return tuple(self._effective)

    def set_eligible(self, endpoint_id: EndpointId, eligible: bool, *, now: float) -> None:
        """Mark an endpoint eligible (healthy) or not, as of ``now``.

        A change rebuilds the picker's structure (O(n) for the alias table and the round-robin
        schedule, O(n) for power of two choices, O(log n) otherwise). An endpoint that becomes
        eligible again starts its slow start at ``now``; setting the current state again
        changes nothing (it does not restart a ramp).

        Raises:
            UnknownServer: no endpoint has that id.
            InvalidArgument: ``now`` is not finite.
            ArgumentTypeError: ``eligible`` is not a bool.

        Runtime complexity: O(n) per change.

        >>> picker = WeightedRandomPicker([Endpoint("a"), Endpoint("b")], seed=3)
        >>> picker.set_eligible("a", False, now=0.0)
        >>> {picker.pick().id for _ in range(20)}
        {'b'}
        """
        index = self._index(endpoint_id)
        if not isinstance(eligible, bool):
            raise ArgumentTypeError(f"eligible is {type(eligible).__name__}; it must be a bool")
        now = _check_now(now)
        if eligible == self._eligible[index]:
            return
        self._eligible[index] = eligible
        weight = self._weights[index]
        ramp = self._slow_start
        if eligible and ramp is not None and weight > 0.0:
            self._since[index] = now
            self._ramping.append(index)
            self._ramping.sort()
            self._effective[index] = weight * ramp.floor
        elif eligible:
            self._effective[index] = weight
        else:
            if self._since[index] is not None:
                self._since[index] = None
                self._ramping.remove(index)
            self._effective[index] = 0.0
        self._positive = sum(1 for value in self._effective if value > 0.0)
        self._weights_changed([index], eligibility=True)

    def refresh(self, now: float) -> None:
        """Recompute the slow-start weights of the ramping endpoints as of ``now`` (a no-op
        when none ramps). ``pick(now=...)`` calls it every ``SlowStart.refresh_interval``
        seconds; call it yourself to ramp on a timer and pick with ``now=None``.

        Raises:
            InvalidArgument: ``now`` is not finite.

        Runtime complexity: O(n) with :class:`WeightedRandomPicker` (an alias rebuild),
        O(r * n) with power of two choices, O(r log n) otherwise, for r ramping endpoints.

        >>> picker = RoundRobinPicker([Endpoint("a", weight=4)], seed=1,
        ...                           slow_start=SlowStart(8.0, floor=0.25),
        ...                           eligible_since={"a": 0.0})
        >>> picker.refresh(1.0); picker.effective_weights()
        (1.0,)
        >>> picker.refresh(4.0); picker.effective_weights()
        (2.0,)
        >>> picker.refresh(9.0); picker.effective_weights()
        (4.0,)
        """
        now = _check_now(now)
        ramp = self._slow_start
        if ramp is None or not self._ramping:
            return
        changed: list[int] = []
        finished: list[int] = []
        for index in self._ramping:
            since = self._since[index]
            assert since is not None
            factor = ramp.factor(now - since)
            if factor >= 1.0:
                finished.append(index)
            weight = self._weights[index] * factor
            if weight != self._effective[index]:
                self._effective[index] = weight
                changed.append(index)
        for index in finished:
            self._since[index] = None
            self._ramping.remove(index)
        self._next_refresh = now + ramp.refresh_interval
        if changed:
            self._weights_changed(changed, eligibility=False)

    def pick(self, request: Request | None = None, *, now: float | None = None) -> Endpoint:
        """One endpoint for ``request``.

        Args:
            request: the request; only :class:`HashPicker` reads it (its hash key).
            now: the time, read only while an endpoint ramps up under slow start (to recompute
                the ramp every ``SlowStart.refresh_interval`` seconds); ``None`` picks with the
                weights as they are.

        Raises:
            NoHealthyEndpoint: no endpoint is eligible with a positive weight; ``reasons``
                says, for each endpoint, whether it is ineligible or weighted 0.

        Runtime complexity: O(1) for random and power of two choices, O(log n) for EDF,
        O(n) for the weighted draw of ``least_outstanding``/``weighted_random`` and for hash.

        >>> picker = RoundRobinPicker([Endpoint("a"), Endpoint("b", weight=0)], seed=5)
        >>> picker.set_eligible("a", False, now=0.0)
        >>> picker.pick()
        Traceback (most recent call last):
        ...
        lbkit.errors.NoHealthyEndpoint: no endpoint can be picked: 1 of 2 endpoints ineligible, ...
        """
        if now is not None and self._ramping:
            self._maybe_refresh(now)
        return self._endpoints[self._pick(request)]

    def begin(self, endpoint_id: EndpointId) -> None:
        """A request was sent to ``endpoint_id``. Pickers that do not count requests only check
        the id.

        Raises:
            UnknownServer: no endpoint has that id.

        Runtime complexity: O(1), or O(log n) for the EDF mode of least outstanding.

        >>> picker = LeastOutstandingPicker([Endpoint("a"), Endpoint("b")], seed=1)
        >>> picker.begin("a"); picker.outstanding("a")
        1
        """
        self._index(endpoint_id)

    def end(
        self,
        endpoint_id: EndpointId,
        *,
        latency: float | None = None,
        ok: bool = True,
        now: float,
    ) -> None:
        """A request sent to ``endpoint_id`` finished, after ``latency`` seconds (``None``
        when not measured), successfully or not (``ok``), at ``now``. Pickers that do not
        count requests only check the arguments; ``ok`` informs none of them yet.

        Raises:
            UnknownServer: no endpoint has that id.
            InvalidArgument: the endpoint has no outstanding request (an ``end`` without a
                matching ``begin``, for pickers that count), a negative or non-finite
                ``latency``, a non-finite ``now``.
            ArgumentTypeError: an argument of the wrong type.

        Runtime complexity: O(1), or O(log n) for the EDF mode of least outstanding.

        >>> picker = LeastOutstandingPicker([Endpoint("a")], seed=1)
        >>> picker.end("a", now=0.0)
        Traceback (most recent call last):
        ...
        lbkit.errors.InvalidArgument: end('a') has no matching begin('a'); ...
        """
        self._check_end(endpoint_id, latency, ok, now)

    # -- helpers for subclasses ----------------------------------------------------------

    def _pick(self, request: Request | None) -> int:
        raise NotImplementedError

    def _weights_changed(self, indices: list[int], *, eligibility: bool) -> None:
        """``_effective[i]`` changed for each of ``indices`` (sorted), because of a health
        change (``eligibility``) or a slow-start ramp."""
        raise NotImplementedError

    def _maybe_refresh(self, now: float) -> None:
        now = _check_now(now)
        if now >= self._next_refresh:
            self.refresh(now)

    def _index(self, endpoint_id: EndpointId) -> int:
        try:
            return self._position[endpoint_id]
        except KeyError:
            raise UnknownServer(
                f"endpoint_id is {endpoint_id!r}; no endpoint of this picker has that id"
            ) from None
        except TypeError:
            raise ArgumentTypeError(
                f"endpoint_id is {type(endpoint_id).__name__}; ids are str or int"
            ) from None

    def _check_end(self, endpoint_id: EndpointId, latency: object, ok: object, now: object) -> int:
        index = self._index(endpoint_id)
        if latency is not None:
            _check_latency(latency)
        if not isinstance(ok, bool):
            raise ArgumentTypeError(f"ok is {type(ok).__name__}; it must be a bool")
        _check_now(now)
        return index

    def _unmatched_end(self, endpoint_id: EndpointId) -> InvalidArgument:
        return InvalidArgument(
            f"end({endpoint_id!r}) has no matching begin({endpoint_id!r}); "
            f"{endpoint_id!r} has no outstanding requests"
        )

    def _no_endpoint(self) -> NoHealthyEndpoint:
        count = len(self._endpoints)
        reasons = []
        ineligible = 0
        for endpoint, eligible in zip(self._endpoints, self._eligible, strict=True):
            if not eligible:
                ineligible += 1
                reasons.append(f"endpoint {endpoint.id!r} is ineligible")
            else:
                reasons.append(f"endpoint {endpoint.id!r} has weight 0")
        return NoHealthyEndpoint(
            f"no endpoint can be picked: {ineligible} of {count} endpoints ineligible, "
            f"{count - ineligible} of {count} weighted 0",
            tuple(reasons),
        )

    def _raise_no_endpoint(self) -> int:
        raise self._no_endpoint()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self._endpoints)} endpoints, "
            f"{sum(self._eligible)} eligible, seed={self._seed})"
        )

    def _check(self) -> None:
        """Assert the structural invariants (for tests)."""
        count = len(self._endpoints)
        assert len(self._weights) == len(self._effective) == len(self._eligible) == count
        assert self._ramping == sorted(set(self._ramping))
        for index in range(count):
            weight, effective = self._weights[index], self._effective[index]
            if index in self._ramping:
                ramp = self._slow_start
                assert ramp is not None
                assert self._eligible[index]
                assert self._since[index] is not None
                assert weight * ramp.floor <= effective <= weight
            else:
                assert self._since[index] is None
                assert effective == (weight if self._eligible[index] else 0.0)
        assert self._positive == sum(1 for value in self._effective if value > 0.0)


class _IndexedPicker(_Picker):
    """A picker that picks without reading the request. Its :meth:`pick_index` is rebound by
    ``_bind`` after every change: to the kernel's own bound method where one does the whole
    pick (the alias table's ``pick``, ``P2C.pick``, ``EdfScheduler.next``), so a call costs
    one kernel call; to a raising method when nothing can be picked."""

    def pick_index(self) -> int:
        """The index into :attr:`endpoints` of one pick, without the slow-start recomputation
        that ``pick(now=...)`` does: the raw fast path. Where the kernel does the whole pick,
        this is the kernel object's bound method itself (an instance attribute rebound when
        health or weights change), so a call costs exactly one kernel call.

        Raises:
            NoHealthyEndpoint: no endpoint is eligible with a positive weight.

        Runtime complexity: O(1) for random and power of two choices, O(log n) for EDF,
        O(n) for the weighted draw of ``least_outstanding``/``weighted_random``.

        >>> WeightedRandomPicker([Endpoint("a", weight=0), Endpoint("b")], seed=9).pick_index()
        1
        """
        raise AssertionError("_bind replaces pick_index at construction")

    def pick(self, request: Request | None = None, *, now: float | None = None) -> Endpoint:
        """One endpoint (``request`` is not read); see :meth:`EndpointPicker.pick`.

        Raises:
            NoHealthyEndpoint: no endpoint is eligible with a positive weight; ``reasons``
                says, for each endpoint, whether it is ineligible or weighted 0.

        Runtime complexity: that of :meth:`pick_index`, plus a slow-start recomputation when
        one is due.

        >>> WeightedRandomPicker([Endpoint("a")], seed=2).pick().id
        'a'
        """
        if now is not None and self._ramping:
            self._maybe_refresh(now)
        return self._endpoints[self.pick_index()]

    def _pick(self, request: Request | None) -> int:
        return self.pick_index()


class WeightedRandomPicker(_IndexedPicker):
    """Weighted random picks by the alias method: each eligible endpoint is picked with
    probability ``weight / sum(eligible weights)``.

    The alias table is rebuilt (O(n)) when eligibility or a slow-start weight changes, never
    on the pick path. :meth:`pick_index` is the raw fast path: an instance attribute bound to
    the kernel table's own ``pick`` method, so calling it costs exactly one kernel call.

    Args:
        endpoints: the endpoints, at least one, ids unique.
        seed: the generator's seed, in 0..2**64-1; ``None`` draws one with :mod:`secrets`.
        slow_start: a :class:`SlowStart`, or ``None`` for none.
        eligible_since: endpoint id to the time it became eligible, for endpoints that should
            start ramping (just added); needs ``slow_start``. Others start at full weight.

    Raises:
        ConfigError: no endpoints, duplicate ids, a seed out of range, weights whose sum
            overflows, ``eligible_since`` without ``slow_start``.
        ArgumentTypeError: an argument of the wrong type.
        UnknownServer: an ``eligible_since`` id that is not an endpoint's.

    Runtime complexity: O(n) to build and rebuild, O(1) per pick.

    >>> picker = WeightedRandomPicker([Endpoint("a"), Endpoint("b", weight=0)], seed=1)
    >>> {picker.pick().id for _ in range(50)}
    {'a'}
    """

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        *,
        seed: int | None = None,
        slow_start: SlowStart | None = None,
        eligible_since: Mapping[EndpointId, float] | None = None,
    ) -> None:
        super().__init__(endpoints, seed=seed, slow_start=slow_start, eligible_since=eligible_since)
        self._bind()

    def _bind(self) -> None:
        if self._positive:
            table = self._kernel.AliasTable(self._effective, self._rng)
            # The bound kernel method itself: the fast path pays for nothing but the kernel.
            self.pick_index = table.pick  # type: ignore[method-assign]
        else:
            self.pick_index = self._raise_no_endpoint  # type: ignore[method-assign]

    def _weights_changed(self, indices: list[int], *, eligibility: bool) -> None:
        self._bind()


class HashPicker(_Picker):
    """Weighted rendezvous hashing on the request's hash key (``Request.hash_key``: its
    ``key``, else its client IP): the same key picks the same endpoint on every proxy and on
    both paths, each endpoint holds a share of the keys in proportion to its weight, and an
    endpoint going down (or weighted 0) moves only its own keys, which come back when it does.

    A request without a hash key raises :class:`~lbkit.errors.InvalidArgument` rather than
    falling back to a random endpoint: a silent fallback would break the stickiness callers
    rely on. Key hashes are MurmurHash3-based (:func:`lbkit.steering.key_hash`), not salted.

    Args:
        endpoints: the endpoints, at least one, ids unique.
        seed: accepted so that every kind takes the same options, and validated; picks do not
            depend on it (every proxy must agree).

    Raises:
        ConfigError: no endpoints, duplicate ids, a seed out of range.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(n) to build, O(n) per pick.

    >>> picker = HashPicker([Endpoint("a"), Endpoint("b"), Endpoint("c")])
    >>> first = picker.pick(Request(client_ip="198.51.100.7"))
    >>> picker.pick(Request(key="198.51.100.7")) == first
    True
    """

    def __init__(self, endpoints: Iterable[Endpoint], *, seed: int | None = None) -> None:
        super().__init__(endpoints, seed=seed, slow_start=None, eligible_since=None)
        self._id_hashes = array("Q", [id_hash(endpoint.id) for endpoint in self._endpoints])

    def pick_key(self, key: bytes | str | int) -> Endpoint:
        """The endpoint for a hash key (what ``pick`` does with ``request.hash_key``).

        Raises:
            NoHealthyEndpoint: no endpoint is eligible with a positive weight.
            ArgumentTypeError: ``key`` is not bytes, str or int.

        Runtime complexity: O(n + len(key)).

        >>> picker = HashPicker([Endpoint("a"), Endpoint("b")])
        >>> picker.pick_key("user-42") == picker.pick_key(b"user-42")
        True
        """
        return self._endpoints[self._pick_hash(key_hash(key))]

    def _pick(self, request: Request | None) -> int:
        if request is None:
            raise InvalidArgument(
                "request is None; HashPicker hashes the request's key or client_ip"
            )
        if not isinstance(request, Request):
            raise ArgumentTypeError(
                f"request is {type(request).__name__}; it must be a Request or None"
            )
        key = request.hash_key
        if key is None:
            raise InvalidArgument(
                "request has no hash key (neither key nor client_ip is set); "
                "HashPicker needs one to pick an endpoint"
            )
        return self._pick_hash(key_hash(key))

    def _pick_hash(self, hashed: int) -> int:
        index = int(self._kernel.rendezvous_pick(hashed, self._id_hashes, self._effective))
        if index < 0:
            raise self._no_endpoint()
        return index

    def _weights_changed(self, indices: list[int], *, eligibility: bool) -> None:
        # The kernel reads the effective weights on every pick: nothing to rebuild.
        pass


class LeastOutstandingPicker(_IndexedPicker):
    """Least outstanding requests, as Envoy's least-request load balancer, in three modes.

    * ``"p2c"`` (the default): two **distinct** random eligible endpoints, the one with the
      lower ``outstanding / weight`` wins (the first draw on a tie). With two eligible
      endpoints the less loaded one is always picked.
    * ``"edf"``: earliest-deadline-first round robin over the effective weights
      ``weight / (outstanding + 1) ** active_request_bias``, started at a seeded random offset
      as :class:`RoundRobinPicker` is; an endpoint's weight is updated on each of its ``begin``
      and ``end`` and on a health change (a slow-start change applies when it is next picked,
      as Envoy re-adds a host to its scheduler).
    * ``"weighted_random"``: a weighted draw in proportion to
      ``weight / (outstanding + 1) ** active_request_bias``, which with the default bias 1 is
      the issue's ``weight / (outstanding + 1)`` and, with nothing outstanding, plain weighted
      random.

    The outstanding counts live in one place per mode (the kernel's P2C object for ``"p2c"``).
    A load-adjusted weight never rounds down to 0 for an eligible endpoint.

    Args:
        endpoints: the endpoints, at least one, ids unique.
        mode: ``"p2c"``, ``"edf"`` or ``"weighted_random"``.
        active_request_bias: how strongly outstanding requests lower the weight in the ``edf``
            and ``weighted_random`` modes, finite and >= 0 (0 ignores them); ``p2c`` compares
            ``outstanding / weight`` and does not use it.
        seed: the generator's seed, in 0..2**64-1; ``None`` draws one with :mod:`secrets`.
        slow_start: a :class:`SlowStart`, or ``None``.
        eligible_since: as for :class:`WeightedRandomPicker`.

    Raises:
        ConfigError: an unknown mode, a bias out of range, and as for
            :class:`WeightedRandomPicker`.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(n) to build; per pick O(1) (p2c), O(log n) (edf), O(n)
    (weighted_random); ``begin``/``end`` O(1), O(log n) for edf.

    >>> picker = LeastOutstandingPicker([Endpoint("a"), Endpoint("b")], seed=4)
    >>> picker.begin("a"); picker.begin("a")
    >>> {picker.pick().id for _ in range(20)}
    {'b'}
    """

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        *,
        mode: str = "p2c",
        active_request_bias: float = 1.0,
        seed: int | None = None,
        slow_start: SlowStart | None = None,
        eligible_since: Mapping[EndpointId, float] | None = None,
    ) -> None:
        if not isinstance(mode, str):
            raise ArgumentTypeError(f"mode is {type(mode).__name__}; it must be a str")
        if mode not in MODES:
            raise ConfigError(f"mode is {mode!r}; it must be one of {', '.join(map(repr, MODES))}")
        bias = _number(active_request_bias, "active_request_bias")
        if not math.isfinite(bias) or bias < 0.0:
            raise ConfigError(
                f"active_request_bias is {active_request_bias!r}; it must be finite and >= 0"
            )
        super().__init__(endpoints, seed=seed, slow_start=slow_start, eligible_since=eligible_since)
        self._mode = mode
        self._bias = bias
        count = len(self._endpoints)
        self._stale: set[int] = set()
        if mode == "p2c":
            self._p2c = self._kernel.P2C(self._effective, self._rng, False)
        else:
            self._outstanding = [0] * count
            self._scores = array("d", self._effective)
            if mode == "edf":
                self._scheduler = self._kernel.EdfScheduler(self._scores)
                # A random start, as for round robin (Envoy offsets every EDF scheduler).
                if self._positive:
                    for _ in range(self._rng.below(self._positive)):
                        self._scheduler.next()
        self._bind()

    @property
    def mode(self) -> str:
        """``"p2c"``, ``"edf"`` or ``"weighted_random"``."""
        return self._mode

    @property
    def active_request_bias(self) -> float:
        """The exponent of ``(outstanding + 1)`` in the ``edf`` and ``weighted_random`` modes."""
        return self._bias

    def outstanding(self, endpoint_id: EndpointId) -> int:
        """The requests begun on ``endpoint_id`` and not yet ended.

        Raises:
            UnknownServer: no endpoint has that id.

        Runtime complexity: O(1).

        >>> LeastOutstandingPicker([Endpoint("a")], seed=1).outstanding("a")
        0
        """
        index = self._index(endpoint_id)
        if self._mode == "p2c":
            return int(self._p2c.outstanding(index))
        return self._outstanding[index]

    def begin(self, endpoint_id: EndpointId) -> None:
        index = self._index(endpoint_id)
        if self._mode == "p2c":
            self._p2c.begin(index)
        else:
            self._outstanding[index] += 1
            self._rescore(index)

    def end(
        self,
        endpoint_id: EndpointId,
        *,
        latency: float | None = None,
        ok: bool = True,
        now: float,
    ) -> None:
        index = self._check_end(endpoint_id, latency, ok, now)
        if self._mode == "p2c":
            if self._p2c.outstanding(index) == 0:
                raise self._unmatched_end(endpoint_id)
            self._p2c.end(index)
        else:
            if self._outstanding[index] == 0:
                raise self._unmatched_end(endpoint_id)
            self._outstanding[index] -= 1
            self._rescore(index)

    def _score(self, index: int) -> float:
        weight = self._effective[index]
        outstanding = self._outstanding[index]
        if weight <= 0.0 or outstanding == 0:
            return weight
        try:
            score = weight / float((outstanding + 1.0) ** self._bias)
        except OverflowError:
            score = 0.0
        return max(score, min(weight, _TINY))

    def _rescore(self, index: int) -> None:
        score = self._score(index)
        self._scores[index] = score
        if self._mode == "edf":
            self._scheduler.set_weight(index, score)
            self._stale.discard(index)

    def _bind(self) -> None:
        if not self._positive:
            self.pick_index = self._raise_no_endpoint  # type: ignore[method-assign]
        elif self._mode == "p2c":
            self.pick_index = self._p2c.pick  # type: ignore[method-assign]
        elif self._mode == "weighted_random":
            self.pick_index = functools.partial(  # type: ignore[method-assign]
                self._kernel.weighted_choice, self._rng, self._scores
            )
        elif self._slow_start is None:
            self.pick_index = self._scheduler.next  # type: ignore[method-assign]
        else:
            self.pick_index = self._pick_edf  # type: ignore[method-assign]

    def _pick_edf(self) -> int:
        index = int(self._scheduler.next())
        if index in self._stale:
            self._stale.discard(index)
            self._scheduler.set_weight(index, self._scores[index])
        return index

    def _weights_changed(self, indices: list[int], *, eligibility: bool) -> None:
        if self._mode == "p2c":
            for index in indices:
                self._p2c.set_weight(index, self._effective[index])
            self._bind()
            return
        for index in indices:
            self._scores[index] = self._score(index)
            if self._mode == "edf":
                if eligibility:
                    self._scheduler.set_weight(index, self._scores[index])
                    self._stale.discard(index)
                else:
                    self._stale.add(index)
        self._bind()

    def _check(self) -> None:
        super()._check()
        if self._mode == "p2c":
            for index in range(len(self._endpoints)):
                assert self._p2c.outstanding(index) >= 0
            return
        assert all(count >= 0 for count in self._outstanding)
        for index in range(len(self._endpoints)):
            assert self._scores[index] == self._score(index)
            assert (self._scores[index] > 0.0) == (self._effective[index] > 0.0)


class PeakEwmaPicker(_IndexedPicker):
    """Peak-EWMA power of two choices (Finagle, Linkerd): of two **distinct** random eligible
    endpoints, the one with the lower ``latency * (pending + 1) / weight`` wins.

    Each endpoint's latency is a peak :class:`~lbkit.steering.Ewma` of the latencies passed to
    :meth:`end`: a sample above the estimate replaces it at once (a slowdown shows on the next
    pick), a faster one decays in with ``exp(-dt / tau)``. Before its first sample an endpoint's
    latency is ``default_latency``. ``pending`` counts requests begun and not ended, kept in the
    kernel's P2C object. A ``now`` earlier than an endpoint's latest sample (clocks read before
    a lock) counts as a sample at that latest time.

    Args:
        endpoints: the endpoints, at least one, ids unique.
        tau: the EWMA's decay time in seconds, finite and > 0 (Linkerd's default, 10 s).
        default_latency: the latency assumed before the first sample, in seconds, finite and
            > 0 (Linkerd's default, 30 ms).
        seed: the generator's seed, in 0..2**64-1; ``None`` draws one with :mod:`secrets`.
        slow_start: a :class:`SlowStart`, or ``None``.
        eligible_since: as for :class:`WeightedRandomPicker`.

    Raises:
        ConfigError: ``tau`` or ``default_latency`` out of range, and as for
            :class:`WeightedRandomPicker`.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(n) to build, O(1) per pick, ``begin`` and ``end``.

    >>> picker = PeakEwmaPicker([Endpoint("a"), Endpoint("b")], seed=1)
    >>> picker.begin("a"); picker.end("a", latency=2.0, now=1.0)
    >>> {picker.pick().id for _ in range(20)}, picker.latency("a")
    ({'b'}, 2.0)
    """

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        *,
        tau: float = 10.0,
        default_latency: float = 0.030,
        seed: int | None = None,
        slow_start: SlowStart | None = None,
        eligible_since: Mapping[EndpointId, float] | None = None,
    ) -> None:
        Ewma(tau=tau, peak=True)  # validates tau with Ewma's message
        default = _positive_seconds(default_latency, "default_latency")
        super().__init__(endpoints, seed=seed, slow_start=slow_start, eligible_since=eligible_since)
        self._tau = float(tau)
        self._default_latency = default
        self._ewmas = [Ewma(tau=self._tau, peak=True) for _ in self._endpoints]
        self._p2c = self._kernel.P2C(self._effective, self._rng, True)
        for index in range(len(self._endpoints)):
            self._p2c.set_latency(index, default)
        self._bind()

    @property
    def tau(self) -> float:
        """The EWMA's decay time in seconds."""
        return self._tau

    @property
    def default_latency(self) -> float:
        """The latency assumed before an endpoint's first sample, in seconds."""
        return self._default_latency

    def latency(self, endpoint_id: EndpointId) -> float:
        """The latency estimate of ``endpoint_id`` in seconds (``default_latency`` before its
        first sample).

        Raises:
            UnknownServer: no endpoint has that id.

        Runtime complexity: O(1).

        >>> PeakEwmaPicker([Endpoint("a")], seed=1, default_latency=0.05).latency("a")
        0.05
        """
        return float(self._p2c.latency(self._index(endpoint_id)))

    def outstanding(self, endpoint_id: EndpointId) -> int:
        """The requests begun on ``endpoint_id`` and not yet ended.

        Raises:
            UnknownServer: no endpoint has that id.

        Runtime complexity: O(1).

        >>> picker = PeakEwmaPicker([Endpoint("a")], seed=1)
        >>> picker.begin("a"); picker.outstanding("a")
        1
        """
        return int(self._p2c.outstanding(self._index(endpoint_id)))

    def begin(self, endpoint_id: EndpointId) -> None:
        self._p2c.begin(self._index(endpoint_id))

    def end(
        self,
        endpoint_id: EndpointId,
        *,
        latency: float | None = None,
        ok: bool = True,
        now: float,
    ) -> None:
        index = self._check_end(endpoint_id, latency, ok, now)
        if self._p2c.outstanding(index) == 0:
            raise self._unmatched_end(endpoint_id)
        self._p2c.end(index)
        if latency is not None:
            average = self._ewmas[index]
            estimate = average.update(latency, now=max(float(now), average.updated_at))
            self._p2c.set_latency(index, estimate)

    def _bind(self) -> None:
        if self._positive:
            self.pick_index = self._p2c.pick  # type: ignore[method-assign]
        else:
            self.pick_index = self._raise_no_endpoint  # type: ignore[method-assign]

    def _weights_changed(self, indices: list[int], *, eligibility: bool) -> None:
        for index in indices:
            self._p2c.set_weight(index, self._effective[index])
        self._bind()


class RoundRobinPicker(_IndexedPicker):
    """Smooth weighted round robin by earliest deadline first, as Envoy schedules weighted
    hosts, starting at a random offset.

    With integer weights every run of ``sum(weights)`` consecutive picks gives each eligible
    endpoint exactly its weight, interleaved (weights 2 and 1 give a, a, b, a, a, b... from
    some offset, never a run of all a's then all b's). At construction and whenever
    eligibility changes, the schedule is rebuilt and advanced by a seeded random number of
    picks in ``[0, eligible endpoints)``, so proxies built together start on different
    endpoints. A slow-start weight change applies when the endpoint is next picked (as Envoy
    re-adds a host to its scheduler), which keeps the schedule smooth during a ramp.

    Args:
        endpoints: the endpoints, at least one, ids unique.
        seed: the generator's seed (only the offsets draw from it), in 0..2**64-1; ``None``
            draws one with :mod:`secrets`.
        slow_start: a :class:`SlowStart`, or ``None``.
        eligible_since: as for :class:`WeightedRandomPicker`.

    Raises:
        ConfigError: as for :class:`WeightedRandomPicker`.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(n log n) to build and on an eligibility change, O(log n) per pick.

    >>> picker = RoundRobinPicker([Endpoint("a", weight=2), Endpoint("b")], seed=3)
    >>> "".join(picker.pick().id for _ in range(9))
    'aabaabaab'
    """

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        *,
        seed: int | None = None,
        slow_start: SlowStart | None = None,
        eligible_since: Mapping[EndpointId, float] | None = None,
    ) -> None:
        super().__init__(endpoints, seed=seed, slow_start=slow_start, eligible_since=eligible_since)
        self._stale: set[int] = set()
        self._build()

    def _build(self) -> None:
        scheduler = self._kernel.EdfScheduler(self._effective)
        self._scheduler = scheduler
        self._stale.clear()
        if self._positive:
            for _ in range(self._rng.below(self._positive)):
                scheduler.next()
        if not self._positive:
            self.pick_index = self._raise_no_endpoint  # type: ignore[method-assign]
        elif self._slow_start is None:
            self.pick_index = scheduler.next  # type: ignore[method-assign]
        else:
            self.pick_index = self._pick_ramped  # type: ignore[method-assign]

    def _pick_ramped(self) -> int:
        index = int(self._scheduler.next())
        if index in self._stale:
            self._stale.discard(index)
            self._scheduler.set_weight(index, self._effective[index])
        return index

    def _weights_changed(self, indices: list[int], *, eligibility: bool) -> None:
        if eligibility:
            self._build()
        else:
            self._stale.update(indices)


_PICKERS: dict[str, type[_Picker]] = {
    "random": WeightedRandomPicker,
    "hash": HashPicker,
    "least_outstanding": LeastOutstandingPicker,
    "peak_ewma": PeakEwmaPicker,
    "round_robin": RoundRobinPicker,
}


def make_picker(kind: str, endpoints: Iterable[Endpoint], **options: Any) -> EndpointPicker:
    """Build the picker of one kind from its name, as a configuration file names it.

    Args:
        kind: one of :data:`KINDS`: ``"random"`` (:class:`WeightedRandomPicker`), ``"hash"``
            (:class:`HashPicker`), ``"least_outstanding"`` (:class:`LeastOutstandingPicker`),
            ``"peak_ewma"`` (:class:`PeakEwmaPicker`), ``"round_robin"``
            (:class:`RoundRobinPicker`).
        endpoints: the endpoints.
        options: the keyword options of that class.

    Raises:
        ConfigError: an unknown kind, an option the kind does not take, and whatever the class
            rejects.
        ArgumentTypeError: ``kind`` is not a str, or an option of the wrong type.

    Runtime complexity: that of the class's constructor.

    >>> make_picker("least_outstanding", [Endpoint("a")], mode="edf", seed=1).mode
    'edf'
    >>> make_picker("fastest", [Endpoint("a")])
    Traceback (most recent call last):
    ...
    lbkit.errors.ConfigError: kind is 'fastest'; it must be one of 'random', 'hash', ...
    """
    accepted = accepted_options(kind)
    picker_class = _PICKERS[kind]
    for name in sorted(options):
        if name not in accepted:
            raise ConfigError(
                f"option {name!r} does not apply to kind {kind!r}; "
                f"its options are {', '.join(accepted)}"
            )
    picker: EndpointPicker = picker_class(endpoints, **options)
    return picker


def accepted_options(kind: str) -> tuple[str, ...]:
    """The keyword options the picker of ``kind`` takes, in its signature's order.

    Raises:
        ConfigError: an unknown kind.
        ArgumentTypeError: ``kind`` is not a str.

    Runtime complexity: O(1).

    >>> accepted_options("least_outstanding")
    ('mode', 'active_request_bias', 'seed', 'slow_start', 'eligible_since')
    """
    if not isinstance(kind, str):
        raise ArgumentTypeError(f"kind is {type(kind).__name__}; it must be a str")
    picker_class = _PICKERS.get(kind)
    if picker_class is None:
        raise ConfigError(f"kind is {kind!r}; it must be one of {', '.join(map(repr, KINDS))}")
    return _options(picker_class)


def _options(picker_class: type[_Picker]) -> tuple[str, ...]:
    parameters = inspect.signature(picker_class.__init__).parameters.values()
    return tuple(
        parameter.name for parameter in parameters if parameter.kind is parameter.KEYWORD_ONLY
    )


def _check_endpoints(endpoints: object) -> tuple[Endpoint, ...]:
    if isinstance(endpoints, (str, bytes, Mapping)) or not isinstance(endpoints, Iterable):
        raise ArgumentTypeError(
            f"endpoints is {type(endpoints).__name__}; it must be an iterable of Endpoint"
        )
    checked = tuple(endpoints)
    if not checked:
        raise ConfigError("endpoints is empty; a picker needs at least one endpoint")
    seen: set[EndpointId] = set()
    for index, endpoint in enumerate(checked):
        if not isinstance(endpoint, Endpoint):
            raise ArgumentTypeError(
                f"endpoints[{index}] is {type(endpoint).__name__}; it must be an Endpoint"
            )
        if endpoint.id in seen:
            raise ConfigError(
                f"endpoints[{index}] repeats the id {endpoint.id!r}; endpoint ids must be unique"
            )
        seen.add(endpoint.id)
    return checked


def _check_seed(seed: object) -> int:
    if seed is None:
        return secrets.randbits(64)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ArgumentTypeError(f"seed is {type(seed).__name__}; it must be an int or None")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed is {seed}; it must be in 0..{MAX_SEED} (an unsigned 64-bit int)")
    return seed
