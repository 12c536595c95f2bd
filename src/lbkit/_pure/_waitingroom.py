"""Waiting-room kernel, reference implementation: the integer arithmetic behind
:mod:`lbkit.waitingroom.allocator` and :mod:`lbkit.waitingroom.distribution`.

* :func:`largest_remainder`: Hamilton's method (the largest remainder method of apportionment):
  every part gets the integer part of its exact quota, and the seats left over go one each to
  the parts with the largest fractional remainders, ties to the lower index. The result sums to
  ``total`` exactly and no part is more than one away from its quota.
* :func:`reserve_fifo`: first come, first served over buckets ordered oldest first: each bucket
  takes what it needs while slots last; the first bucket that does not fit gets the rest.

Arguments arrive validated (the public modules check them): ``0 <= total <= MAX_TOTAL``,
``1 <= len(weights) <= MAX_PARTS``, every weight finite and ``>= 0`` with a finite sum, every
count in ``0..2**62``. Integers are int64 on both paths. The quota of part ``i`` is computed as
``float(total) * (weights[i] / sum)``, the sum accumulated in index order, the same operations in
the same order as ``_fast/_waitingroom.pyx``, so both paths give the same integers.

Why the bounds keep the sum exact: the computed quotas exceed the exact ones by a relative error
of at most about ``(parts + 1) * 2**-53``, so with ``total * (parts + 1) < 2**52`` their floors
can never add up to more than ``total``, and the leftover seats never outnumber the parts with
a positive remainder (so a part of weight 0 never gets a seat while another weight is
positive). Outside the bounds the kernel checks and raises instead of over-allocating.
"""

from __future__ import annotations

import math
from array import array

from lbkit.errors import InvalidArgument

#: The largest ``total`` :func:`largest_remainder` is specified for.
MAX_TOTAL = 4294967295
#: The most parts :func:`largest_remainder` is specified for.
MAX_PARTS = 65536


def largest_remainder(total: int, weights: array[float]) -> array[int]:
    """Split ``total`` into integers proportional to ``weights`` by the largest remainder.

    ``weights`` is an ``array('d')`` of at least one finite, non-negative weight. Part ``i``'s
    quota is ``total * (weights[i] / sum(weights))``; it gets the quota's floor, and the
    ``total - sum(floors)`` seats left over go to the largest remainders ``quota - floor``, the
    lower index first among equal remainders. All weights zero means an even split by the same
    rule (every weight counts as 1.0). Returns an ``array('q')`` that sums to ``total``.

    Raises:
        InvalidArgument: the floors overshoot ``total`` (only possible beyond ``MAX_TOTAL`` or
            ``MAX_PARTS``, where float quotas lose too much precision).
    """
    count = len(weights)
    weight_sum = 0.0
    for index in range(count):
        weight_sum += weights[index]
    even = weight_sum == 0.0
    if even:
        weight_sum = float(count)
    scale = float(total)
    seats = array("q", bytes(8 * count))
    remainders = [0.0] * count
    given = 0
    for index in range(count):
        weight = 1.0 if even else weights[index]
        quota = scale * (weight / weight_sum)
        whole = math.floor(quota)
        seats[index] = whole
        remainders[index] = quota - whole
        given += whole
    left = total - given
    if left < 0 or left > count:
        raise InvalidArgument(
            f"total is {total}; it is too large to split exactly over {count} weights"
        )
    order = sorted(range(count), key=lambda index: (-remainders[index], index))
    for rank in range(left):
        seats[order[rank]] += 1
    return seats


def reserve_fifo(slots: int, queued_counts: array[int]) -> tuple[array[int], int]:
    """Reserve ``slots`` for buckets ordered oldest first, each up to its queued count.

    ``queued_counts`` is an ``array('q')`` of counts ``>= 0``, oldest bucket first; ``slots``
    is ``>= 0``. A bucket gets ``min(count, slots left)``, so every bucket before the first
    partly served one is served in full and every bucket after it gets nothing. Returns the
    reservations (an ``array('q')`` of the same length) and the slots left over.
    """
    count = len(queued_counts)
    reservations = array("q", bytes(8 * count))
    left = slots
    for index in range(count):
        wanted = queued_counts[index]
        take = wanted if wanted < left else left
        reservations[index] = take
        left -= take
    return reservations, left
