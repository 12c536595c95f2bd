"""Distribution: split a minute's slots across locations (data centres, regions, proxies) and
their workers, so that each can admit users without asking the others.

A plan (:mod:`lbkit.waitingroom.allocator`) says how many users of a bucket, or how many new
users, may enter this minute. Where many locations admit at once, each gets a share: its share
of the **previous minute's traffic** (the users it saw), so slots go where the users are. The
shares are whole numbers that add up to the total exactly, by the largest remainder method
(Hamilton's method): every location gets the integer part of its quota, and the slots left go
one each to the largest fractional parts, **ties to the location whose name sorts first**
(locations are ordered by name, so every worker that computes a split gets the same one). No
share is more than one slot away from its quota, none is negative, a location with no traffic
gets nothing unless nobody had any (then the split is even), and the shares never add up to
more than the total: the room never over-admits because of rounding.

**The anywhere pool.** A location that saw no traffic last minute (new, or just back) gets no
share, so its first users would queue even with slots to spare. ``anywhere=f`` sets a fraction
``f`` of every total aside as a shared pool that any location may draw from once its own
share is used; the locations split the rest. The pool is apportioned with the shares (it is
the last part, after every location), so shares and pool still add up to the total. With no
traffic anywhere (the first minute) and ``f > 0``, the whole total goes to the pool. A few per
cent (``anywhere=0.05``) suits a fleet whose locations come and go; 0, the default, suits a
fixed set. Drawing from the pool needs one counter shared by all locations.

**Per-location counters versus per-worker budgets.** There are two ways to spend a location's
share:

* :func:`location_budgets` (recommended, the exact mode): all workers of a location take
  tickets from **one counter** per location and group, an atomic "increment if below the
  budget" like a ticket dispenser (a lock in one process, shared memory, or a store in the
  location). The location admits up to the last slot of its share before anyone queues.
* :func:`worker_budgets`: each location's share is split again across its workers (evenly,
  or by their own traffic), and every worker counts on its own, with no shared state and no
  round trip. But the budgets are small and traffic is bursty: a worker whose users arrive
  together queues them while its neighbours still have slots, and rounding to whole slots
  leaves more unused the more workers there are. Cloudflare saw rooms start queueing at
  20-30 % below their limits this way. Use it only when the workers of a location cannot
  share an atomic counter.

**With a plan.** Split each group's slots (:meth:`~lbkit.waitingroom.allocator.MinutePlan.cap`
of a bucket, or of ``None`` for new users, under a plan made at the start of the minute) and
key the counters by ``(minute, group, location)``. The location counters bound each location;
when budgets are recomputed in mid-minute (new traffic shares, a new plan), keep checking the
group's minute counter against ``plan.cap`` in the same atomic call: a location whose new
budget is below what it already admitted stops, and the group's cap keeps the total exact.

>>> budgets = location_budgets(10, {"ams": 30.0, "fra": 50.0, "lhr": 20.0})
>>> dict(budgets.locations), budgets.anywhere
({'ams': 3, 'fra': 5, 'lhr': 2}, 0)
>>> budgets = location_budgets(10, {"ams": 1.0, "fra": 1.0, "new": 0.0}, anywhere=0.25)
>>> dict(budgets.locations), budgets.anywhere
({'ams': 4, 'fra': 4, 'new': 0}, 2)
>>> workers = worker_budgets(10, {"ams": 30.0, "fra": 70.0}, {"ams": 2, "fra": [3.0, 1.0]})
>>> dict(workers.workers)
{'ams': (2, 1), 'fra': (5, 2)}
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import attrs

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, InvalidArgument

__all__ = [
    "LocationBudgets",
    "WorkerBudgets",
    "apportion",
    "location_budgets",
    "worker_budgets",
]


# --- validation helpers ------------------------------------------------------------------------


def _total(value: object, name: str = "total") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    limit = _kernels.waitingroom.MAX_TOTAL
    if not 0 <= value <= limit:
        raise InvalidArgument(f"{name} is {value}; it must be an int in 0..{limit}")
    return int(value)


def _weight(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    weight = float(value)
    if not math.isfinite(weight) or weight < 0.0:
        raise InvalidArgument(f"{name} is {value!r}; it must be finite and >= 0")
    return weight


def _sum(values: array[float]) -> float:
    """The sum in index order, as the kernel adds (an overflow gives inf)."""
    total = 0.0
    for value in values:
        total += value
    return total


def _weights(values: object, name: str) -> array[float]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        raise ArgumentTypeError(f"{name} is {type(values).__name__}; it must be a sequence")
    limit = _kernels.waitingroom.MAX_PARTS
    if not 1 <= len(values) <= limit:
        raise InvalidArgument(f"{name} has {len(values)} entries; it must have 1..{limit}")
    weights = array("d", [_weight(value, f"{name}[{index}]") for index, value in enumerate(values)])
    if not math.isfinite(_sum(weights)):
        raise InvalidArgument(f"{name} add up to more than a float can hold; scale them down")
    return weights


def _traffic(value: object) -> tuple[list[str], array[float]]:
    """Location names in sorted order and their traffic, validated."""
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"traffic is {type(value).__name__}; it must be a mapping")
    names: list[str] = []
    for name in value:
        if not isinstance(name, str):
            raise ArgumentTypeError(
                f"traffic has a {type(name).__name__} key; location names must be str"
            )
        if not name:
            raise InvalidArgument("traffic has an empty location name; names must be non-empty")
        names.append(name)
    names.sort()
    limit = _kernels.waitingroom.MAX_PARTS - 1
    if not 1 <= len(names) <= limit:
        raise InvalidArgument(f"traffic has {len(names)} locations; it must have 1..{limit}")
    seen = array("d", [_weight(value[name], f"traffic[{name!r}]") for name in names])
    if not math.isfinite(_sum(seen)):
        raise InvalidArgument("traffic adds up to more than a float can hold; scale it down")
    return names, seen


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"anywhere is {type(value).__name__}; it must be a number")
    fraction = float(value)
    if not 0.0 <= fraction <= 1.0:
        raise InvalidArgument(f"anywhere is {value!r}; it must be a fraction in [0, 1]")
    return fraction


# --- the splits --------------------------------------------------------------------------------


def apportion(total: int, weights: Sequence[float]) -> tuple[int, ...]:
    """Split ``total`` into whole numbers proportional to ``weights`` (largest remainder).

    Each part gets the floor of its quota ``total * weight / sum(weights)``; the rest go one
    each to the largest fractional parts, the lower index first among equals. The parts add up
    to ``total`` exactly, each within one of its quota; a weight of 0 gets 0 unless every
    weight is 0, which splits evenly.

    Args:
        total: what to split, an int in ``0..MAX_TOTAL`` (2**32 - 1).
        weights: one finite weight ``>= 0`` per part, 1 to 65536 of them.

    Raises:
        InvalidArgument: a total out of range, a negative or non-finite weight, no weights or
            too many.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(n log n) for n weights.

    >>> apportion(10, [1.0, 1.0, 1.0]), apportion(7, [0.0, 0.0]), apportion(5, [3.0, 0.0, 1.0])
    ((4, 3, 3), (4, 3), (4, 0, 1))
    """
    count = _total(total)
    return tuple(_kernels.waitingroom.largest_remainder(count, _weights(weights, "weights")))


def _split(total: int, names: list[str], seen: array[float], fraction: float) -> list[int]:
    """Shares for ``names`` (sorted) then, when ``fraction > 0``, the pool as the last part."""
    weights = array("d")
    seen_total = _sum(seen)
    for traffic in seen:
        weights.append((1.0 - fraction) * (traffic / seen_total) if seen_total > 0.0 else 0.0)
    if fraction > 0.0:
        weights.append(fraction)
    return list(_kernels.waitingroom.largest_remainder(total, weights))


@attrs.frozen
class LocationBudgets:
    """One total split across locations (and the anywhere pool): the per-location counter mode.

    Attributes:
        total: what was split.
        locations: ``{location: budget}``, in name order.
        anywhere: the shared pool any location may draw from once its own budget is used.

    Runtime complexity: O(1) per lookup.

    >>> location_budgets(3, {"a": 1.0, "b": 1.0}).budget("b")
    1
    """

    total: int
    locations: Mapping[str, int]
    anywhere: int

    def budget(self, location: str) -> int:
        """The budget of ``location``; 0 for a location not in the split (it draws from the
        anywhere pool only).

        Runtime complexity: O(1).

        >>> location_budgets(3, {"a": 1.0}).budget("elsewhere")
        0
        """
        return self.locations.get(location, 0)


def location_budgets(
    total: int, traffic: Mapping[str, float], *, anywhere: float = 0.0
) -> LocationBudgets:
    """Split ``total`` slots across locations by their share of last minute's traffic, each
    location's budget to be spent through one shared counter (the exact mode).

    Args:
        total: the slots to split (a bucket's reservation, or the new users' slots), an int in
            ``0..2**32 - 1``.
        traffic: ``{location: users seen last minute}`` (any non-negative measure); every
            location that may admit should be listed, those without history with 0.
        anywhere: the fraction of ``total`` set aside as the shared pool, in [0, 1].

    Raises:
        InvalidArgument: a total out of range, negative or non-finite traffic, an empty
            location name, no locations, ``anywhere`` outside [0, 1].
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(n log n) for n locations.

    >>> dict(location_budgets(7, {"b": 1.0, "a": 1.0}).locations)  # tie: "a" sorts first
    {'a': 4, 'b': 3}
    """
    count = _total(total)
    names, seen = _traffic(traffic)
    fraction = _fraction(anywhere)
    shares = _split(count, names, seen, fraction)
    pool = shares[len(names)] if fraction > 0.0 else 0
    return LocationBudgets(
        total=count,
        locations=MappingProxyType(dict(zip(names, shares[: len(names)], strict=True))),
        anywhere=pool,
    )


@attrs.frozen
class WorkerBudgets:
    """One total split across locations and then across each location's workers: the
    per-worker mode (see the module docstring for its cost).

    Attributes:
        total: what was split.
        locations: ``{location: budget}``, in name order.
        workers: ``{location: (budget of worker 0, budget of worker 1, ...)}``; each tuple adds
            up to the location's budget.
        anywhere: the shared pool any location may draw from.

    Runtime complexity: O(1) per lookup.

    >>> worker_budgets(5, {"a": 1.0}, {"a": 2}).workers["a"]
    (3, 2)
    """

    total: int
    locations: Mapping[str, int]
    workers: Mapping[str, tuple[int, ...]]
    anywhere: int

    def budget(self, location: str, worker: int) -> int:
        """The budget of worker ``worker`` (an index) of ``location``; 0 for a location or a
        worker not in the split.

        Runtime complexity: O(1).

        >>> worker_budgets(5, {"a": 1.0}, {"a": 2}).budget("a", 1)
        2
        """
        budgets = self.workers.get(location, ())
        if isinstance(worker, bool) or not isinstance(worker, int):
            raise ArgumentTypeError(f"worker is {type(worker).__name__}; it must be an int")
        return budgets[worker] if 0 <= worker < len(budgets) else 0


def worker_budgets(
    total: int,
    traffic: Mapping[str, float],
    workers: Mapping[str, int | Sequence[float]],
    *,
    anywhere: float = 0.0,
) -> WorkerBudgets:
    """Split ``total`` slots across locations as :func:`location_budgets` does, then each
    location's budget across its workers, each worker counting on its own.

    Args:
        total: the slots to split, an int in ``0..2**32 - 1``.
        traffic: ``{location: users seen last minute}``.
        workers: for every location of ``traffic``, its number of workers (an even split) or
            one weight per worker (their own traffic last minute; all 0 splits evenly).
        anywhere: the fraction of ``total`` set aside as the shared pool, in [0, 1].

    Raises:
        InvalidArgument: what :func:`location_budgets` rejects, a location missing from
            ``workers`` or not in ``traffic``, a worker count or weights out of range.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(n log n + w log w) for n locations and w workers.

    >>> dict(worker_budgets(9, {"a": 2.0, "b": 1.0}, {"a": 4, "b": [1.0, 0.0]}).workers)
    {'a': (2, 2, 1, 1), 'b': (3, 0)}
    """
    budgets = location_budgets(total, traffic, anywhere=anywhere)
    if not isinstance(workers, Mapping):
        raise ArgumentTypeError(f"workers is {type(workers).__name__}; it must be a mapping")
    for name in workers:
        if name not in budgets.locations:
            raise InvalidArgument(
                f"workers names location {name!r}, which traffic does not list; "
                "list every location in both"
            )
    limit = _kernels.waitingroom.MAX_PARTS
    split: dict[str, tuple[int, ...]] = {}
    for name, budget in budgets.locations.items():
        if name not in workers:
            raise InvalidArgument(
                f"workers has no entry for location {name!r}; give its worker count or weights"
            )
        spec = workers[name]
        if (
            isinstance(spec, bool)
            or not isinstance(spec, (int, Sequence))
            or isinstance(spec, (str, bytes))
        ):
            raise ArgumentTypeError(
                f"workers[{name!r}] is {type(spec).__name__}; it must be an int or a sequence "
                "of weights"
            )
        if isinstance(spec, int):
            if not 1 <= spec <= limit:
                raise InvalidArgument(
                    f"workers[{name!r}] is {spec}; a worker count must be in 1..{limit}"
                )
            weights = array("d", bytes(8 * spec))
        else:
            weights = _weights(spec, f"workers[{name!r}]")
        split[name] = tuple(_kernels.waitingroom.largest_remainder(budget, weights))
    return WorkerBudgets(
        total=budgets.total,
        locations=budgets.locations,
        workers=MappingProxyType(split),
        anywhere=budgets.anywhere,
    )
