"""Per-event-loop subsets: each event loop of one proxy instance connects to a small, disjoint
subset of the origins, as Netflix's Zuul does with Ringsteady subsetting.

Sources: A. Gonigberg and Argha C, "Curbing Connection Churn in Zuul", Netflix Technology Blog,
August 2023 (subsets per Netty event loop, an ideal subset of 25 to 50 origins, replication across
loops); the ring is Ringsteady's (Ward, Wankadia and Guliani, "Reinventing Backend Subsetting
at Google", ACM Queue 20(5), 2022).

A proxy built on event loops keeps one connection pool per loop, so a request never leaves the
loop it arrived on. If every loop connects to every origin, one instance holds
``loops * origins`` connections. Here the origins are split into ``S`` disjoint subsets and each
loop connects to one of them.

**The plan** (:func:`~lbkit.subsetting.plan_event_loops`), for ``N`` origins and ``L`` loops:

* The subset count ``S`` is the smallest power of two with ``ceil(N / S) <= max_size``, but at
  most the largest power of two ``<= L`` (a subset no loop used would leave its origins idle).
  ``N <= max_size`` gives one subset of every origin, so ``N < min_size`` always does. Because
  ``max_size >= 2 * min_size`` (checked), every size then lies in ``min_size..max_size`` unless
  the loop cap forces larger subsets.
* Sizes differ by at most one: ``N mod S`` subsets of ``ceil(N / S)`` origins, the rest
  ``floor(N / S)``.
* Loop ``i`` uses subset ``i mod S``. Each subset serves ``L // S`` loops (the *replication*);
  when ``S`` does not divide ``L`` the first ``L mod S`` subsets serve one loop more, so their
  origins carry ``(r + 1) / r`` times the load from this instance (``r = L // S``). Seed each
  instance differently (``seed``) and the favoured origins differ between instances.

``N = 400, L = 32``: 8 subsets of 50, replication 4, 1,600 connections instead of 12,800.
``N`` in ``201..400`` plans 8 subsets; ``200`` plans 4 of 50.

**Hysteresis.** A running :class:`EventLoopSubsets` keeps its count ``S`` while the mean size
``N / S`` stays within ``min_size * (1 - h) .. max_size * (1 + h)`` (no lower limit when
``S == 1``, no upper limit at the loop cap) and no subset is empty. Only when ``N`` leaves that
band is ``S`` chosen afresh by the rule above, and the fresh choice always lies inside its own
band. With the defaults (25..50, ``h = 0.1``) 8 subsets hold for ``N`` in ``180..440`` and 16 for
``360..880``: an origin growing from 200 to 400 nodes never changes ``S``, and ``N`` swinging
between 400 and 401 never flips it, whichever side it started on.

**The ring.** Subset ``r`` holds the origins whose stable index ``i`` has ``i mod S == r``. On
Ringsteady's ring index ``i`` sits at the Van der Corput position ``vdc(i)``, and for ``S`` a
power of two the indices with ``i mod S == r`` are exactly those in the arc
``[bitrev(r) / S, (bitrev(r) + 1) / S)``: the subsets are ``S`` equal arcs of the ring. While
the indices are dense, subset ``r`` is exactly :class:`~lbkit.subsetting.Ringsteady`'s subset
for frontend ``r`` of ``S`` (walking as many backends as the arc holds); after removals the rule
stays ``i mod S``, and the arcs hold the origins that are left. Powers of two also nest:
when ``S`` doubles, every loop's new subset is half of its old one (the loop only closes
connections); when it halves, the new subset contains the old one (the loop only opens them).

**Stable indices and churn.** Origins keep their index. An added origin takes the lowest free
index among the smallest subsets; a removed one frees its index, and only if that leaves its
subset two below the largest does one origin move: the one with the highest index in a largest
subset, into the lowest free index of the shrunken one. So, while ``S`` holds, adding an origin
changes one subset by one member, removing one changes at most two subsets by one member each, and
:meth:`~lbkit.subsetting.EventLoopSubsets.replace_origin` (or
:meth:`~lbkit.subsetting.EventLoopSubsets.update`, which pairs removals with additions) changes
one subset by one member. Subset sizes are always within one of
each other, after any sequence of changes.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, UnknownServer
from lbkit.forwarding._servers import ServerId, check_server
from lbkit.hashing import MAX_SEED

__all__ = [
    "MAX_LOOPS",
    "MAX_ORIGINS",
    "EventLoopChange",
    "EventLoopPlan",
    "EventLoopSubsets",
    "plan_event_loops",
]

#: The most event loops one instance may have (far beyond any core count).
MAX_LOOPS = 2**16
#: The most origins (stable indices are 32-bit elsewhere in lbkit.subsetting).
MAX_ORIGINS = 2**28
#: The largest ``max_size``.
MAX_SUBSET_SIZE = 2**31 - 1
#: The largest ``hysteresis``: beyond it two subsets could be kept below ``min_size`` origins.
MAX_HYSTERESIS = 0.5


@attrs.frozen
class EventLoopPlan:
    """How the origins are split across event loops.

    Attributes:
        origins: how many origins (``N``).
        loops: how many event loops (``L``).
        subset_count: how many disjoint subsets (``S``, a power of two).
        subset_sizes: the size of each subset, by subset number; they differ by at most one.
        loops_per_subset: how many loops use each subset (loop ``i`` uses subset ``i mod S``).

    >>> plan = plan_event_loops(400, loops=32)
    >>> plan.subset_count, plan.subset_sizes[0], plan.replication, plan.connections
    (8, 50, 4, 1600)
    """

    origins: int
    loops: int
    subset_count: int
    subset_sizes: tuple[int, ...]
    loops_per_subset: tuple[int, ...]

    @property
    def replication(self) -> int:
        """How many loops every subset serves at least (``loops // subset_count``); exact when
        ``subset_count`` divides ``loops``.

        Runtime complexity: O(1).

        >>> plan_event_loops(400, loops=12).replication
        1
        """
        return self.loops // self.subset_count

    @property
    def connections(self) -> int:
        """How many connections the instance holds: one per loop per origin of its subset.

        Runtime complexity: O(subset_count).

        >>> plan_event_loops(400, loops=32).connections, 400 * 32
        (1600, 12800)
        """
        pairs = zip(self.subset_sizes, self.loops_per_subset, strict=True)
        return sum(size * loops for size, loops in pairs)


@attrs.frozen
class EventLoopChange:
    """What one change to an :class:`EventLoopSubsets` did, for updating connection pools.

    Attributes:
        added: origins that joined, in the order they were added.
        removed: origins that left.
        moved: origins that stayed but took another stable index (and so another subset) to keep
            subset sizes within one of each other.
        loops: the loops whose subset changed, ascending; every loop when the subset count
            changed.
        previous_subset_count: the subset count before the change.
        subset_count: the subset count after it.

    >>> subsets = EventLoopSubsets(range(8), loops=4, min_size=1, max_size=2)
    >>> change = subsets.add_origin(8)
    >>> change.added, change.moved, change.loops, change.subset_count
    ((8,), (), (0,), 4)
    """

    added: tuple[ServerId, ...]
    removed: tuple[ServerId, ...]
    moved: tuple[ServerId, ...]
    loops: tuple[int, ...]
    previous_subset_count: int
    subset_count: int

    @property
    def repartitioned(self) -> bool:
        """True when the subset count changed (every loop's subset changed with it).

        Runtime complexity: O(1).

        >>> subsets = EventLoopSubsets(range(50), loops=8)  # one subset, up to 55 with hysteresis
        >>> [subsets.add_origin(n).repartitioned for n in range(50, 56)], subsets.subset_count
        ([False, False, False, False, False, True], 2)
        """
        return self.subset_count != self.previous_subset_count


def plan_event_loops(
    origins: int, *, loops: int, min_size: int = 25, max_size: int = 50
) -> EventLoopPlan:
    """The plan a fresh :class:`EventLoopSubsets` makes for ``origins`` origins (a count) and
    ``loops`` event loops: the rule of the module docs, without hysteresis.

    Args:
        origins: the number of origins, >= 0.
        loops: the number of event loops, 1..65536.
        min_size: the smallest ideal subset size, >= 1.
        max_size: the largest ideal subset size, >= ``2 * min_size``.

    Raises:
        ConfigError: a value out of range, or ``max_size < 2 * min_size``.
        ArgumentTypeError: an argument that is not an int.

    Runtime complexity: O(log(origins) + subset_count).

    >>> [plan_event_loops(n, loops=32).subset_count for n in (20, 50, 51, 200, 201, 400, 401)]
    [1, 1, 2, 4, 8, 8, 16]
    >>> plan = plan_event_loops(300, loops=6)  # 8 subsets would be ideal; 6 loops cap them at 4
    >>> plan.subset_count, plan.subset_sizes, plan.loops_per_subset
    (4, (75, 75, 75, 75), (2, 2, 1, 1))
    """
    _check_int(origins, "origins", 0, MAX_ORIGINS)
    _check_sizes(loops, min_size, max_size)
    count = _ideal_count(origins, _loop_cap(loops), max_size)
    sizes = tuple(-(-(origins - subset) // count) for subset in range(count))
    return EventLoopPlan(origins, loops, count, sizes, _loops_per_subset(loops, count))


class EventLoopSubsets:
    """Subsets of the origins for the event loops of one instance; the single writer of their
    history as origins come and go.

    Args:
        origins: the origin ids (str or int, unique). Their order (shuffled first when ``seed``
            is given) sets the initial stable indices.
        loops: the number of event loops, 1..65536.
        min_size: the smallest ideal subset size, >= 1.
        max_size: the largest ideal subset size, >= ``2 * min_size``.
        hysteresis: ``h`` in 0..0.5; the subset count holds while the mean subset size stays
            within ``min_size * (1 - h) .. max_size * (1 + h)`` (see the module docs).
        seed: shuffles the initial order (0..2**32-1), so instances seeded differently favour
            different origins; ``None`` keeps the order given.

    Raises:
        ConfigError: a value out of range, ``max_size < 2 * min_size``, a duplicate origin.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(N + L) to build; :meth:`add_origin` is O(S + log N) and
    :meth:`remove_origin` O(N) at worst (a rebalancing move looks for the highest index), with
    O(N) more when the subset count changes.

    >>> subsets = EventLoopSubsets(range(400), loops=32)
    >>> subsets.plan.subset_count, subsets.plan.subset_sizes[0], subsets.plan.replication
    (8, 50, 4)
    >>> subsets.subset_for_loop(3)[:4]
    (3, 11, 19, 27)
    >>> subsets.subset_for_loop(11) == subsets.subset_for_loop(3)
    True
    >>> change = subsets.replace_origin(3, "new")
    >>> change.loops, subsets.subset_for_loop(3)[:2]
    ((3, 11, 19, 27), ('new', 11))
    """

    def __init__(
        self,
        origins: Iterable[ServerId],
        *,
        loops: int,
        min_size: int = 25,
        max_size: int = 50,
        hysteresis: float = 0.1,
        seed: int | None = None,
    ) -> None:
        _check_sizes(loops, min_size, max_size)
        if isinstance(hysteresis, bool) or not isinstance(hysteresis, (int, float)):
            raise ArgumentTypeError(
                f"hysteresis is {type(hysteresis).__name__}; it must be a number"
            )
        if not 0.0 <= hysteresis <= MAX_HYSTERESIS:  # NaN fails this too
            raise ConfigError(
                f"hysteresis is {hysteresis!r}; it must be a fraction in 0..{MAX_HYSTERESIS}"
            )
        if seed is not None:
            _check_int(seed, "seed", 0, MAX_SEED)
        ordered = _check_origins(origins, "origins")
        if seed is not None:
            random.Random(seed).shuffle(ordered)
        self._loops = loops
        self._min_size = min_size
        self._max_size = max_size
        self._hysteresis = float(hysteresis)
        self._cap = _loop_cap(loops)
        # Stable index -> origin (None for a free index below the highest one in use).
        self._slots: list[ServerId | None] = list(ordered)
        self._index: dict[ServerId, int] = {origin: i for i, origin in enumerate(ordered)}
        self._count = _ideal_count(len(ordered), self._cap, max_size)
        self._sizes: list[int] = []
        # Free indices per subset, min-heaps; entries may be stale (checked when read).
        self._free: list[list[int]] = []
        self._regroup()
        self._subsets_cache: tuple[tuple[ServerId, ...], ...] | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def plan(self) -> EventLoopPlan:
        """The current split: the subset count (kept by hysteresis) and the actual sizes.

        Runtime complexity: O(S).

        >>> plan = EventLoopSubsets(range(10), loops=4).plan
        >>> plan.subset_count, plan.subset_sizes, plan.loops_per_subset
        (1, (10,), (4,))
        """
        return EventLoopPlan(
            len(self._index),
            self._loops,
            self._count,
            tuple(self._sizes),
            _loops_per_subset(self._loops, self._count),
        )

    @property
    def subset_count(self) -> int:
        """The number of subsets, ``S``."""
        return self._count

    @property
    def loops(self) -> int:
        """The number of event loops, ``L``."""
        return self._loops

    @property
    def min_size(self) -> int:
        """The smallest ideal subset size."""
        return self._min_size

    @property
    def max_size(self) -> int:
        """The largest ideal subset size."""
        return self._max_size

    @property
    def hysteresis(self) -> float:
        """The fraction by which the mean subset size may leave the ideal range before the
        subset count changes."""
        return self._hysteresis

    @property
    def origins(self) -> tuple[ServerId, ...]:
        """Every origin, in stable-index order.

        Runtime complexity: O(N).

        >>> EventLoopSubsets(["a", "b", "c"], loops=2).origins
        ('a', 'b', 'c')
        """
        return tuple(origin for origin in self._slots if origin is not None)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, origin: object) -> bool:
        try:
            return origin in self._index
        except TypeError:  # an unhashable value is no origin
            return False

    def __repr__(self) -> str:
        return (
            f"EventLoopSubsets(origins={len(self._index)}, loops={self._loops}, "
            f"subset_count={self._count})"
        )

    def subsets(self) -> tuple[tuple[ServerId, ...], ...]:
        """Every subset, by subset number; each in stable-index order.

        Runtime complexity: O(N) after a change, O(1) until the next one.

        >>> EventLoopSubsets(range(6), loops=4, min_size=1, max_size=2).subsets()
        ((0, 4), (1, 5), (2,), (3,))
        """
        if self._subsets_cache is None:
            groups: list[list[ServerId]] = [[] for _ in range(self._count)]
            for index, origin in enumerate(self._slots):
                if origin is not None:
                    groups[index % self._count].append(origin)
            self._subsets_cache = tuple(tuple(group) for group in groups)
        return self._subsets_cache

    def subset_for_loop(self, loop: int) -> tuple[ServerId, ...]:
        """The origins event loop ``loop`` connects to: subset ``loop mod S``.

        Raises:
            InvalidArgument: ``loop`` is not in ``0..loops-1``.
            ArgumentTypeError: ``loop`` is not an int.

        Runtime complexity: O(1), after an O(N) rebuild following a change.

        >>> subsets = EventLoopSubsets(range(6), loops=4, min_size=1, max_size=2)
        >>> subsets.subset_for_loop(0), subsets.subset_for_loop(3)
        ((0, 4), (3,))
        """
        if isinstance(loop, bool) or not isinstance(loop, int):
            raise ArgumentTypeError(f"loop is {type(loop).__name__}; it must be an int")
        if not 0 <= loop < self._loops:
            raise InvalidArgument(f"loop is {loop}; loops are numbered 0..{self._loops - 1}")
        return self.subsets()[loop % self._count]

    def subset_of(self, origin: ServerId) -> int:
        """The number of the subset that holds ``origin``.

        Raises:
            UnknownServer: ``origin`` is not one of the origins.

        Runtime complexity: O(1).

        >>> EventLoopSubsets(["a", "b", "c"], loops=2, min_size=1, max_size=2).subset_of("c")
        0
        """
        return self._known(origin, "origin") % self._count

    def loops_for_origin(self, origin: ServerId) -> tuple[int, ...]:
        """The event loops that connect to ``origin``.

        Raises:
            UnknownServer: ``origin`` is not one of the origins.

        Runtime complexity: O(L / S).

        >>> EventLoopSubsets(range(400), loops=32).loops_for_origin(9)
        (1, 9, 17, 25)
        """
        return tuple(range(self.subset_of(origin), self._loops, self._count))

    # -- changes -------------------------------------------------------------------------

    def add_origin(self, origin: ServerId) -> EventLoopChange:
        """Add an origin: it joins one of the smallest subsets, at the lowest free index.

        Raises:
            ConfigError: ``origin`` is already present.
            ArgumentTypeError: ``origin`` is not a str or int.

        Runtime complexity: O(S + log N), plus O(N) when the subset count changes.

        >>> subsets = EventLoopSubsets(range(4), loops=2, min_size=1, max_size=2)
        >>> subsets.add_origin("x").loops, subsets.subset_for_loop(0)
        ((0,), (0, 2, 'x'))
        """
        check_server(origin, "origin")
        if origin in self._index:
            raise ConfigError(f"origin {origin!r} is already present; origin ids must be unique")
        return self._apply(removed=[], added=[origin], replaced=[])

    def remove_origin(self, origin: ServerId) -> EventLoopChange:
        """Remove an origin; if its subset falls two below the largest, one origin moves over.

        Raises:
            UnknownServer: ``origin`` is not one of the origins.

        Runtime complexity: O(S + log N) usually; O(N) at worst, when an origin must move or
        the subset count changes.

        >>> subsets = EventLoopSubsets(range(6), loops=4, min_size=1, max_size=2)
        >>> change = subsets.remove_origin(2)
        >>> change.moved, change.loops, subsets.subsets()
        ((5,), (1, 2), ((0, 4), (1,), (5,), (3,)))
        """
        self._known(origin, "origin")
        return self._apply(removed=[origin], added=[], replaced=[])

    def replace_origin(self, old: ServerId, new: ServerId) -> EventLoopChange:
        """Put ``new`` in ``old``'s place (same stable index, same subset): an instance
        replacement touches one subset and moves nothing else.

        Raises:
            UnknownServer: ``old`` is not one of the origins.
            ConfigError: ``new`` is already present.
            ArgumentTypeError: ``new`` is not a str or int.

        Runtime complexity: O(L) (listing the loops that changed).

        >>> subsets = EventLoopSubsets(range(6), loops=4, min_size=1, max_size=2)
        >>> subsets.replace_origin(1, "b").loops, subsets.subsets()
        ((1,), ((0, 4), ('b', 5), (2,), (3,)))
        """
        self._known(old, "old")
        check_server(new, "new")
        if new in self._index:
            raise ConfigError(
                f"new is {new!r}, which is already present; origin ids must be unique"
            )
        return self._apply(removed=[], added=[], replaced=[(old, new)])

    def update(self, origins: Iterable[ServerId]) -> EventLoopChange:
        """Make the origins exactly ``origins`` (a discovery refresh): each origin that left is
        replaced in place by one that arrived, then the rest are removed or added.

        Raises:
            ConfigError: a duplicate origin.
            ArgumentTypeError: an origin of the wrong type.

        Runtime complexity: O(N + L + changes * (S + log N)); nothing changes when a check
        fails.

        >>> subsets = EventLoopSubsets(["a", "b", "c", "d"], loops=2, min_size=1, max_size=2)
        >>> change = subsets.update(["a", "c", "d", "e"])
        >>> change.added, change.removed, change.moved, subsets.subsets()
        (('e',), ('b',), (), (('a', 'c'), ('e', 'd')))
        """
        wanted = _check_origins(origins, "origins")
        keep = set(wanted)
        removed = [origin for origin in self._slots if origin is not None and origin not in keep]
        added = [origin for origin in wanted if origin not in self._index]
        pairs = min(len(removed), len(added))
        return self._apply(
            removed=removed[pairs:],
            added=added[pairs:],
            replaced=list(zip(removed[:pairs], added[:pairs], strict=True)),
        )

    # -- invariants ----------------------------------------------------------------------

    def _check(self) -> None:
        """Assert every structural invariant (for tests; O(N + L))."""
        count, slots = self._count, self._slots
        assert count >= 1
        assert count & (count - 1) == 0, "the subset count is a power of two"
        assert count <= self._cap <= self._loops
        assert not slots or slots[-1] is not None, "no free index above the highest in use"
        occupied = [(i, origin) for i, origin in enumerate(slots) if origin is not None]
        assert len(occupied) == len(self._index)
        assert all(self._index[origin] == i for i, origin in occupied)
        sizes = [0] * count
        for i, _ in occupied:
            sizes[i % count] += 1
        assert sizes == self._sizes
        assert max(sizes) - min(sizes) <= 1, f"subset sizes {sizes} differ by more than one"
        assert self._keeps(count, len(self._index)), "the subset count is outside its band"
        for subset in range(count):
            free = {i for i in self._free[subset] if i < len(slots) and slots[i] is None}
            holes = {i for i in range(subset, len(slots), count) if slots[i] is None}
            assert free == holes, f"subset {subset} tracks free indices {free}, not {holes}"
        if self._subsets_cache is not None:
            assert self._subsets_cache == tuple(
                tuple(origin for i, origin in occupied if i % count == subset)
                for subset in range(count)
            )

    # -- internals -----------------------------------------------------------------------

    def _known(self, origin: object, name: str) -> int:
        try:
            return self._index[origin]  # type: ignore[index]
        except (KeyError, TypeError):  # TypeError: an unhashable argument
            raise UnknownServer(f"{name} is {origin!r}, which is not one of the origins") from None

    def _apply(
        self,
        *,
        removed: list[ServerId],
        added: list[ServerId],
        replaced: list[tuple[ServerId, ServerId]],
    ) -> EventLoopChange:
        # Arguments are validated: removed and the first of each pair are present, added and
        # the second of each pair are not, and no id appears twice.
        previous = self._count
        touched: set[int] = set()
        for old, new in replaced:
            index = self._take(old)
            self._put(new, index)
            touched.add(index % self._count)
        for origin in removed:
            touched.add(self._take(origin) % self._count)
        for origin in added:
            index = self._lowest_free_in_smallest()
            self._put(origin, index)
            touched.add(index % self._count)
        moved = self._rebalance(touched)
        if not self._keeps(self._count, len(self._index)):
            self._count = _ideal_count(len(self._index), self._cap, self._max_size)
            if self._count != previous:
                self._regroup()
                moved += self._rebalance(touched)
        if removed or added or replaced or moved:
            self._subsets_cache = None
        if self._count != previous:
            loops = tuple(range(self._loops))
        else:
            loops = tuple(loop for loop in range(self._loops) if loop % self._count in touched)
        return EventLoopChange(
            added=tuple(new for _, new in replaced) + tuple(added),
            removed=tuple(old for old, _ in replaced) + tuple(removed),
            moved=tuple(dict.fromkeys(moved)),
            loops=loops,
            previous_subset_count=previous,
            subset_count=self._count,
        )

    def _keeps(self, count: int, origins: int) -> bool:
        """Whether ``count`` subsets may hold ``origins`` origins (the hysteresis band)."""
        if origins < count:
            return count == 1  # one subset may be empty; several must not be
        mean = origins / count
        if count > 1 and mean < self._min_size * (1.0 - self._hysteresis):
            return False
        return count == self._cap or mean <= self._max_size * (1.0 + self._hysteresis)

    def _regroup(self) -> None:
        """Recount sizes and free indices for the current subset count."""
        count = self._count
        self._sizes = [0] * count
        self._free = [[] for _ in range(count)]
        for index, origin in enumerate(self._slots):
            if origin is None:
                self._free[index % count].append(index)  # ascending: already a heap
            else:
                self._sizes[index % count] += 1

    def _take(self, origin: ServerId) -> int:
        index = self._index.pop(origin)
        subset = index % self._count
        self._slots[index] = None
        self._sizes[subset] -= 1
        heapq.heappush(self._free[subset], index)
        while self._slots and self._slots[-1] is None:
            self._slots.pop()  # the heaps' entries above the end go stale
        return index

    def _put(self, origin: ServerId, index: int) -> None:
        slots, count = self._slots, self._count
        while len(slots) < index:
            heapq.heappush(self._free[len(slots) % count], len(slots))
            slots.append(None)
        if index == len(slots):
            slots.append(origin)
        else:
            slots[index] = origin
        self._index[origin] = index
        self._sizes[index % count] += 1

    def _lowest_free(self, subset: int) -> int:
        heap, slots = self._free[subset], self._slots
        while heap and (heap[0] >= len(slots) or slots[heap[0]] is not None):
            heapq.heappop(heap)
        if heap:
            return heap[0]
        return len(slots) + (subset - len(slots)) % self._count

    def _lowest_free_in_smallest(self) -> int:
        smallest = min(self._sizes)
        return min(
            self._lowest_free(subset)
            for subset in range(self._count)
            if self._sizes[subset] == smallest
        )

    def _rebalance(self, touched: set[int]) -> list[ServerId]:
        """Move origins until sizes are within one: each time the highest-index origin of a
        largest subset goes to the lowest free index of a smallest one."""
        moved: list[ServerId] = []
        count = self._count
        while max(self._sizes) - min(self._sizes) > 1:
            largest = max(self._sizes)
            index = len(self._slots) - 1
            while self._slots[index] is None or self._sizes[index % count] != largest:
                index -= 1
            origin = self._slots[index]
            assert origin is not None
            self._take(origin)
            target = self._lowest_free_in_smallest()
            self._put(origin, target)
            touched.update((index % count, target % count))
            moved.append(origin)
        return moved


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if not low <= value <= high:
        raise ConfigError(f"{name} is {value}; it must be in {low}..{high}")
    return value


def _check_sizes(loops: object, min_size: object, max_size: object) -> None:
    _check_int(loops, "loops", 1, MAX_LOOPS)
    low = _check_int(min_size, "min_size", 1, MAX_SUBSET_SIZE // 2)
    high = _check_int(max_size, "max_size", 1, MAX_SUBSET_SIZE)
    if high < 2 * low:
        raise ConfigError(
            f"max_size is {high} and min_size is {low}; max_size must be >= 2 * min_size, "
            "since subset counts are powers of two and sizes move by factors of two"
        )


def _check_origins(origins: Iterable[ServerId], name: str) -> list[ServerId]:
    if isinstance(origins, (str, bytes, bytearray)):
        raise ArgumentTypeError(
            f"{name} is {type(origins).__name__}; pass an iterable of origin ids"
        )
    try:
        iterator = iter(origins)
    except TypeError:
        raise ArgumentTypeError(
            f"{name} is {type(origins).__name__}; pass an iterable of origin ids"
        ) from None
    checked: dict[ServerId, None] = {}
    for position, origin in enumerate(iterator):
        check_server(origin, f"{name}[{position}]")
        if origin in checked:
            raise ConfigError(f"{name} names {origin!r} twice; origin ids must be unique")
        checked[origin] = None
    if len(checked) > MAX_ORIGINS:
        raise ConfigError(f"{name} has {len(checked)} ids; at most {MAX_ORIGINS} are allowed")
    return list(checked)


def _loop_cap(loops: int) -> int:
    """The largest power of two <= loops: no more subsets than loops."""
    return 1 << (loops.bit_length() - 1)


def _ideal_count(origins: int, cap: int, max_size: int) -> int:
    """The smallest power of two ``S <= cap`` with ``ceil(origins / S) <= max_size``."""
    if origins <= max_size:
        return 1
    # 2 ** ceil(log2(origins / max_size)), computed exactly on integers.
    needed = -(-origins // max_size)
    return min(cap, 1 << (needed - 1).bit_length())


def _loops_per_subset(loops: int, count: int) -> tuple[int, ...]:
    return tuple(-(-(loops - subset) // count) for subset in range(count))
