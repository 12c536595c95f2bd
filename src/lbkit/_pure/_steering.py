"""Steering kernel, reference implementation: the hot picks of :mod:`lbkit.steering`.

* :class:`Rng`: SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
  generators", OOPSLA 2014), a 64-bit generator small enough to be written identically in Python
  and C, so a seeded run makes the same picks on either path. :meth:`Rng.below` is unbiased
  (rejection on 32-bit products, Lemire, "Fast random integer generation in an interval", 2019).
* :class:`AliasTable`: Walker's alias method as built by Vose ("A linear algorithm for
  generating random numbers with a given distribution", 1991): O(n) to build, O(1) to pick.
* :func:`weighted_choice`: one linear weighted draw, for weights that change on every pick.
* :class:`P2C`: power of two choices (Mitzenmacher) with two **distinct** draws, comparing
  ``outstanding / weight``, or, latency-weighted, ``latency * (outstanding + 1) / weight``
  (Finagle's and Linkerd's peak EWMA; the EWMA itself is kept by the caller).
* :class:`EdfScheduler`: earliest-deadline-first weighted round robin, as Envoy schedules
  weighted hosts: each entry's next deadline is ``base + (picks + 1) / weight``.
* :func:`rendezvous_pick`: weighted rendezvous hashing (Thaler and Ravishankar, 1998; the
  logarithmic weighting of Schindelhauer and Schomaker, 2005).

Everything here assumes validated arguments: weights are finite and >= 0, indices are in range,
at least one weight is positive where a pick needs one. Integer arithmetic is masked to 64 bits
and floating-point expressions are evaluated in the same order as in ``_fast/_steering.pyx``, so
both paths return the same bits. Weight 0 means "never picked" everywhere.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

MASK64 = 0xFFFFFFFFFFFFFFFF
MASK32 = 0xFFFFFFFF
#: The SplitMix64 increment: 2**64 divided by the golden ratio, rounded to odd.
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
#: 2**-53: turns the top 53 bits of a draw into a double in [0, 1).
_UNIT = 1.0 / 9007199254740992.0


def splitmix64(value: int) -> int:
    """The SplitMix64 finaliser: a bijective mix of a 64-bit integer (also used to hash)."""
    z = value & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class Rng:
    """SplitMix64: a seeded 64-bit generator, identical on both paths.

    The state advances by :data:`GOLDEN_GAMMA` per draw and the output is :func:`splitmix64` of
    the new state, so ``Rng(seed)`` draws ``splitmix64(seed + k * GOLDEN_GAMMA)`` for k = 1, 2...
    """

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & MASK64

    def next_u64(self) -> int:
        """The next 64-bit draw."""
        self._state = (self._state + GOLDEN_GAMMA) & MASK64
        return splitmix64(self._state)

    def random(self) -> float:
        """A double in [0, 1): the top 53 bits of the next draw, times 2**-53."""
        return (self.next_u64() >> 11) * _UNIT

    def below(self, bound: int) -> int:
        """An unbiased integer in [0, bound), for 1 <= bound <= 2**32."""
        product = (self.next_u64() >> 32) * bound
        low = product & MASK32
        if low < bound:
            # Reject the few products that would favour small results (Lemire's method).
            threshold = (0x100000000 - bound) % bound
            while low < threshold:
                product = (self.next_u64() >> 32) * bound
                low = product & MASK32
        return product >> 32

    def getstate(self) -> int:
        """The 64-bit state, for :meth:`setstate`."""
        return self._state

    def setstate(self, state: int) -> None:
        """Restore a state returned by :meth:`getstate`."""
        self._state = state & MASK64


class AliasTable:
    """Walker/Vose alias table over ``weights``: each :meth:`pick` costs two draws.

    Entries of weight 0 are left out of the table, so they are never picked. At least one weight
    must be positive. The build is deterministic: worklists are stacks filled in index order.
    """

    __slots__ = ("_alias", "_columns", "_prob", "_rng")

    def __init__(self, weights: Sequence[float], rng: Rng) -> None:
        self._rng = rng
        columns = [index for index in range(len(weights)) if weights[index] > 0.0]
        count = len(columns)
        total = 0.0
        for index in columns:
            total += weights[index]
        scaled = [weights[index] * count / total for index in columns]
        prob = [1.0] * count
        alias = list(range(count))
        small: list[int] = []
        large: list[int] = []
        for column in range(count):
            if scaled[column] < 1.0:
                small.append(column)
            else:
                large.append(column)
        while small and large:
            less = small.pop()
            more = large.pop()
            prob[less] = scaled[less]
            alias[less] = more
            scaled[more] = (scaled[more] + scaled[less]) - 1.0
            if scaled[more] < 1.0:
                small.append(more)
            else:
                large.append(more)
        # Whatever is left (rounding residue on either list) keeps its own column: prob 1.0.
        self._columns = columns
        self._prob = prob
        self._alias = alias

    def pick(self) -> int:
        """The index (into the weights given) of one weighted draw."""
        column = self._rng.below(len(self._columns))
        if self._rng.random() >= self._prob[column]:
            column = self._alias[column]
        return self._columns[column]

    def size(self) -> int:
        """How many entries have a positive weight."""
        return len(self._columns)


def weighted_choice(rng: Rng, weights: Sequence[float]) -> int:
    """One weighted draw by a linear scan: the index whose cumulative weight first exceeds
    ``random() * total``. Weight 0 is never picked; at least one weight must be positive."""
    total = 0.0
    for index in range(len(weights)):
        total += weights[index]
    target = rng.random() * total
    cumulative = 0.0
    last = -1
    for index in range(len(weights)):
        weight = weights[index]
        if weight > 0.0:
            cumulative += weight
            last = index
            if target < cumulative:
                return index
    # Rounding can leave target == cumulative at the very end: the last positive entry wins.
    return last


class P2C:
    """Power of two choices over entries with a positive weight.

    :meth:`pick` draws two **distinct** eligible entries and returns the one with the lower
    cost (the first draw on a tie). The cost is ``outstanding / weight``, or with
    ``latency_weighted`` ``latency * (outstanding + 1) / weight``. With one eligible entry it
    returns that one without drawing; with none it returns -1.
    """

    __slots__ = ("_eligible", "_latency", "_latency_weighted", "_outstanding", "_rng", "_weights")

    def __init__(self, weights: Sequence[float], rng: Rng, latency_weighted: bool) -> None:
        self._rng = rng
        self._weights = [float(weight) for weight in weights]
        self._outstanding = [0] * len(weights)
        self._latency = [0.0] * len(weights)
        self._latency_weighted = latency_weighted
        self._eligible = [index for index in range(len(weights)) if weights[index] > 0.0]

    def _cost(self, index: int) -> float:
        if self._latency_weighted:
            return self._latency[index] * (self._outstanding[index] + 1) / self._weights[index]
        return self._outstanding[index] / self._weights[index]

    def pick(self) -> int:
        """The cheaper of two distinct random eligible entries (-1 when none is eligible)."""
        count = len(self._eligible)
        if count < 2:
            return self._eligible[0] if count else -1
        first = self._rng.below(count)
        second = self._rng.below(count - 1)
        if second >= first:
            second += 1
        first = self._eligible[first]
        second = self._eligible[second]
        if self._cost(second) < self._cost(first):
            return second
        return first

    def begin(self, index: int) -> None:
        """One more outstanding request on ``index``."""
        self._outstanding[index] += 1

    def end(self, index: int) -> None:
        """One outstanding request fewer on ``index`` (never below zero)."""
        if self._outstanding[index] > 0:
            self._outstanding[index] -= 1

    def outstanding(self, index: int) -> int:
        """The outstanding requests on ``index``."""
        return self._outstanding[index]

    def set_weight(self, index: int, weight: float) -> None:
        """Change one weight; 0 makes the entry ineligible."""
        self._weights[index] = float(weight)
        self._eligible = [i for i in range(len(self._weights)) if self._weights[i] > 0.0]

    def set_latency(self, index: int, latency: float) -> None:
        """Set the latency estimate used by the latency-weighted cost."""
        self._latency[index] = float(latency)

    def latency(self, index: int) -> float:
        """The latency estimate of ``index``."""
        return self._latency[index]


class EdfScheduler:
    """Earliest-deadline-first weighted round robin over entries with a positive weight.

    Entry i's next deadline is ``base[i] + (picks[i] + 1) / weight[i]``, where ``picks[i]``
    counts its picks since its weight was last set; :meth:`next` returns the entry with the
    smallest ``(deadline, index)`` and moves the scheduler's clock to that deadline. Computing
    each deadline from the pick count (rather than adding ``1 / weight`` repeatedly) keeps the
    schedule exact: with integer weights every run of ``sum(weights)`` picks from the start
    serves each entry exactly its weight. :meth:`set_weight` restarts an entry at the current
    clock, as Envoy's scheduler does when a host's weight changes.
    """

    __slots__ = ("_base", "_clock", "_heap", "_picks", "_version", "_weights")

    def __init__(self, weights: Sequence[float]) -> None:
        count = len(weights)
        self._weights = [float(weight) for weight in weights]
        self._base = [0.0] * count
        self._picks = [0] * count
        self._version = [0] * count
        self._clock = 0.0
        # Heap entries are (deadline, index, version); an entry whose version is stale was
        # replaced by set_weight and is skipped when it surfaces.
        self._heap: list[tuple[float, int, int]] = []
        for index in range(count):
            if self._weights[index] > 0.0:
                self._heap.append((self._deadline(index), index, 0))
        heapq.heapify(self._heap)

    def _deadline(self, index: int) -> float:
        return self._base[index] + (self._picks[index] + 1) / self._weights[index]

    def next(self) -> int:
        """The entry with the earliest deadline (-1 when no weight is positive)."""
        heap = self._heap
        while heap:
            deadline, index, version = heap[0]
            if version != self._version[index]:
                heapq.heappop(heap)
                continue
            self._clock = deadline
            self._picks[index] += 1
            heapq.heapreplace(heap, (self._deadline(index), index, version))
            return index
        return -1

    def set_weight(self, index: int, weight: float) -> None:
        """Give ``index`` a new weight, starting from the current clock; 0 removes it."""
        self._version[index] += 1
        self._weights[index] = float(weight)
        self._base[index] = self._clock
        self._picks[index] = 0
        if self._weights[index] > 0.0:
            heapq.heappush(self._heap, (self._deadline(index), index, self._version[index]))

    def clock(self) -> float:
        """The deadline of the latest pick (0.0 before the first)."""
        return self._clock


def rendezvous_pick(key_hash: int, id_hashes: Sequence[int], weights: Sequence[float]) -> int:
    """Weighted rendezvous hashing: the index with the highest score for ``key_hash``.

    Each entry's draw is ``h = splitmix64(key_hash ^ id_hashes[i])``. When every positive weight
    is equal the highest ``h`` wins (integer comparison, exact on every platform); otherwise
    the score is ``weight / -log(u)`` with ``u = ((h >> 11) + 0.5) * 2**-53`` in (0, 1), which
    picks each entry with probability proportional to its weight. Ties go to the lower index.
    Removing an entry (weight 0) moves only the keys it held. Returns -1 when no weight is
    positive.
    """
    count = len(weights)
    uniform = True
    first_weight = 0.0
    for index in range(count):
        weight = weights[index]
        if weight > 0.0:
            if first_weight == 0.0:
                first_weight = weight
            elif weight != first_weight:
                uniform = False
                break
    best = -1
    best_draw = 0
    best_score = 0.0
    for index in range(count):
        weight = weights[index]
        if weight <= 0.0:
            continue
        draw = splitmix64((key_hash ^ id_hashes[index]) & MASK64)
        if uniform:
            if best < 0 or draw > best_draw:
                best, best_draw = index, draw
        else:
            score = weight / -math.log(((draw >> 11) + 0.5) * _UNIT)
            if best < 0 or score > best_score:
                best, best_score = index, score
    return best
