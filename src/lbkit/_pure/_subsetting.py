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


class Ring:
    """Walks one ring of backends: ``positions`` (strictly increasing ring positions) and
    ``members`` (the backend ids at those positions, in the same order).

    A frontend ``f`` sits at ``bit_reverse(f, 32)``. Without ``rank_scaled`` its subset starts
    at the first backend at or after that position; with it, the backends count as evenly
    spaced by rank (rank ``r`` at ``r / n`` of a turn) and the subset starts at rank
    ``ceil(position * n / 2**32)``. Either way it takes ``subset_size`` backends in ring order,
    wrapping around.
    """

    def __init__(
        self,
        positions: array[int],
        members: tuple[object, ...],
        subset_size: int,
        rank_scaled: bool,
    ) -> None:
        self._positions = positions
        self._members = members
        self._count = len(members)
        self._subset_size = subset_size
        self._rank_scaled = rank_scaled

    def start(self, frontend: int) -> int:
        """The ring rank where a frontend's subset starts."""
        position = bit_reverse(frontend, RING_BITS)
        count = self._count
        if self._rank_scaled:
            first = (position * count + (1 << RING_BITS) - 1) >> RING_BITS
        else:
            # The first rank whose position is >= the frontend's (bisect_left).
            low, high = 0, count
            while low < high:
                middle = (low + high) >> 1
                if self._positions[middle] < position:
                    low = middle + 1
                else:
                    high = middle
            first = low
        return 0 if first == count else first

    def walk(self, frontend: int) -> tuple[object, ...]:
        """A frontend's subset: ``subset_size`` backend ids in ring order."""
        first = self.start(frontend)
        end = first + self._subset_size
        if end <= self._count:
            return self._members[first:end]
        return self._members[first:] + self._members[: end - self._count]

    def loads(self, frontends: int) -> array[int]:
        """How many of frontends ``0 .. frontends - 1`` connect to each ring rank."""
        count = self._count
        changes = [0] * (count + 1)
        size = self._subset_size
        for frontend in range(frontends):
            first = self.start(frontend)
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
