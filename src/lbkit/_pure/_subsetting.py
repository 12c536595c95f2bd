"""Subsetting kernels, reference implementation: bit reversal, the Van der Corput order in linear
time, and the ring walk of Ringsteady subsetting.

``lbkit.subsetting`` validates every argument and documents the rules; these functions trust
their caller. Positions on the ring are 32-bit fixed-point fractions of a turn: an index ``i``
sits at ``bit_reverse(i, 32)``, which is ``van_der_corput(i) * 2**32`` exactly.
"""

from __future__ import annotations

from array import array

#: Ring positions are fractions of a turn in units of ``2**-RING_BITS``.
RING_BITS = 32


def bit_reverse(value: int, bits: int) -> int:
    """The low ``bits`` bits of ``value`` in reverse order (``value < 2**bits``, ``bits <= 64``)."""
    result = 0
    for _ in range(bits):
        result = (result << 1) | (value & 1)
        value >>= 1
    return result


def vdc_order(n: int) -> array[int]:
    """The indices ``0 .. n - 1`` in increasing order of their Van der Corput positions.

    With ``bits = ceil(log2(n))``, index ``i`` sits at ``bit_reverse(i, bits) / 2**bits`` and
    bit reversal is a bijection of ``0 .. 2**bits - 1``, so walking a bit-reversed counter
    ``t = 0, 1, 2, ...`` and keeping ``bit_reverse(t) < n`` yields the order directly: at most
    ``2 * n`` steps, each amortised O(1), and no comparison sort.
    """
    order = array("I", bytes(4 * n))
    if n == 0:
        return order
    bits = (n - 1).bit_length()
    top = 1 << bits
    # `reversed_counter` is bit_reverse(t, bits) for t = 0, 1, ...: adding 1 to a reversed
    # number carries from its highest bit downwards.
    reversed_counter = 0
    filled = 0
    for _ in range(top):
        if reversed_counter < n:
            order[filled] = reversed_counter
            filled += 1
        carry = top >> 1
        while carry and reversed_counter & carry:
            reversed_counter ^= carry
            carry >>= 1
        reversed_counter |= carry
    return order


def ring_positions(indices: array[int]) -> array[int]:
    """Each index's position on the ring: ``bit_reverse(index, RING_BITS)``."""
    count = len(indices)
    positions = array("I", bytes(4 * count))
    for i in range(count):
        positions[i] = bit_reverse(indices[i], RING_BITS)
    return positions


def frontend_rank(frontend: int, frontends: int) -> int:
    """Where ``frontend`` comes among ``0 .. frontends - 1`` in Van der Corput order.

    With ``bits = ceil(log2(frontends))`` the rank is the number of ``t`` below
    ``bit_reverse(frontend, bits)`` whose own reversal is a frontend (``< frontends``). Count
    them by the highest bit where ``t`` falls below: for every set bit ``L`` of ``frontend``,
    the ``t`` that agree with it above that bit and have a 0 there reverse to
    ``S * 2**(L + 1) + (frontend mod 2**L)`` for every ``S``, and
    ``ceil((frontends - frontend mod 2**L) / 2**(L + 1))`` of them are frontends. O(bits), no
    table of all frontends. For ``frontend >= frontends`` (never passed by ``Ring``'s
    callers) the result is still in ``0..frontends``.
    """
    bits = (frontends - 1).bit_length()
    rank = 0
    for level in range(bits):
        if (frontend >> level) & 1:
            low = frontend & ((1 << level) - 1)
            if low < frontends:
                rank += (frontends - low + (1 << (level + 1)) - 1) >> (level + 1)
    return rank


class Ring:
    """Walks one ring of backends: ``positions`` (strictly increasing ring positions) and
    ``members`` (the backend ids at those positions, in the same order), for frontends
    ``0 .. frontends - 1``.

    Without ``rank_scaled``, frontend ``f`` sits at ``bit_reverse(f, 32)`` and its subset
    starts at the first backend at or after that position. With it, both sides count as evenly
    spaced by rank: the backend of ring rank ``r`` at ``r / n`` of a turn, the frontend of
    Van der Corput rank ``j`` (:func:`frontend_rank`) at ``j / frontends``, and the subset
    starts at rank ``ceil(j * n / frontends)``. Either way it takes ``subset_size`` backends in
    ring order, wrapping around.
    """

    def __init__(
        self,
        positions: array[int],
        members: tuple[object, ...],
        subset_size: int,
        rank_scaled: bool,
        frontends: int,
    ) -> None:
        self._positions = positions
        self._members = members
        self._count = len(members)
        self._subset_size = subset_size
        self._rank_scaled = rank_scaled
        self._frontends = frontends

    def start(self, frontend: int) -> int:
        """The ring rank where a frontend's subset starts."""
        if self._rank_scaled:
            return self._start_of_rank(frontend_rank(frontend, self._frontends))
        position = bit_reverse(frontend, RING_BITS)
        count = self._count
        # The first rank whose position is >= the frontend's (bisect_left).
        low, high = 0, count
        while low < high:
            middle = (low + high) >> 1
            if self._positions[middle] < position:
                low = middle + 1
            else:
                high = middle
        return 0 if low == count else low

    def _start_of_rank(self, rank: int) -> int:
        """The ring rank where the subset of the frontend of Van der Corput rank ``rank``
        starts, with rank scaling: ``ceil(rank * n / frontends)``, wrapped."""
        count = self._count
        # rank <= frontends <= 2**32 and count <= 2**28: the product fits in 64 bits.
        first = (rank * count + self._frontends - 1) // self._frontends
        return 0 if first >= count else first

    def walk(self, frontend: int) -> tuple[object, ...]:
        """A frontend's subset: ``subset_size`` backend ids in ring order."""
        first = self.start(frontend)
        end = first + self._subset_size
        if end <= self._count:
            return self._members[first:end]
        return self._members[first:] + self._members[: end - self._count]

    def loads(self) -> array[int]:
        """How many of the frontends connect to each ring rank."""
        count = self._count
        changes = [0] * (count + 1)
        size = self._subset_size
        for number in range(self._frontends):
            # A frontend number, or with rank scaling a frontend rank: the ranks are exactly
            # 0 .. frontends - 1.
            first = self._start_of_rank(number) if self._rank_scaled else self.start(number)
            end = first + size
            changes[first] += 1
            if end <= count:
                changes[end] -= 1
            else:
                changes[count] -= 1
                changes[0] += 1
                changes[end - count] -= 1
        loads = array("I", bytes(4 * count))
        running = 0
        for rank in range(count):
            running += changes[rank]
            loads[rank] = running
        return loads
