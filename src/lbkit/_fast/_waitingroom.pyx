"""Waiting-room kernel, compiled, mirroring ``lbkit._pure._waitingroom`` function for function:
the largest remainder split and the FIFO reservation.

The quotas are the reference's expressions in the reference's order (``weight_sum`` summed in
index order, then ``(double)total * (weight / weight_sum)``, then ``quota - floor(quota)``), and
the leftover seats go by the same total order (larger remainder first, then lower index), so
both paths return the same integers. Counts are ``long long``: 64 bits on every platform
CPython supports, the width of ``array('q')``.
"""

from cpython.array cimport array, clone
from libc.math cimport floor
from libc.stdlib cimport free, malloc, qsort

cimport cython

from lbkit.errors import InvalidArgument

MAX_TOTAL = 4294967295
MAX_PARTS = 65536

cdef array _INT64_TEMPLATE = array("q")


cdef struct _Remainder:
    double remainder
    Py_ssize_t index


cdef int _largest_remainder_first(const void* a, const void* b) noexcept nogil:
    # The reference sorts by (-remainder, index): a total order, since no remainder is NaN.
    cdef const _Remainder* x = <const _Remainder*>a
    cdef const _Remainder* y = <const _Remainder*>b
    if x.remainder != y.remainder:
        return -1 if x.remainder > y.remainder else 1
    return -1 if x.index < y.index else (1 if x.index > y.index else 0)


@cython.boundscheck(False)  # index < count == len(weights) == len(seats); rank < left <= count
@cython.wraparound(False)
def largest_remainder(long long total, const double[::1] weights):
    """Split ``total`` into integers proportional to ``weights`` by the largest remainder.

    Returns an ``array('q')`` that sums to ``total``; see ``lbkit._pure._waitingroom``.
    """
    cdef Py_ssize_t count = weights.shape[0]
    cdef array seats = clone(_INT64_TEMPLATE, count, True)
    cdef long long* out = seats.data.as_longlongs
    cdef _Remainder* order = <_Remainder*>malloc((count if count else 1) * sizeof(_Remainder))
    cdef double weight_sum = 0.0
    cdef double scale = <double>total
    cdef double weight, quota, whole
    cdef long long given = 0
    cdef long long left
    cdef Py_ssize_t index, rank
    cdef bint even
    if order == NULL:
        raise MemoryError()
    try:
        with nogil:
            for index in range(count):
                weight_sum += weights[index]
            even = weight_sum == 0.0
            if even:
                weight_sum = <double>count
            for index in range(count):
                weight = 1.0 if even else weights[index]
                quota = scale * (weight / weight_sum)
                whole = floor(quota)
                out[index] = <long long>whole
                order[index].remainder = quota - whole
                order[index].index = index
                given += out[index]
            left = total - given
        if left < 0 or left > count:
            raise InvalidArgument(
                f"total is {total}; it is too large to split exactly over {count} weights"
            )
        with nogil:
            qsort(order, count, sizeof(_Remainder), _largest_remainder_first)
            for rank in range(left):
                out[order[rank].index] += 1
    finally:
        free(order)
    return seats


@cython.boundscheck(False)  # index < count == len(queued_counts) == len(reservations)
@cython.wraparound(False)
def reserve_fifo(long long slots, const long long[::1] queued_counts):
    """Reserve ``slots`` for buckets ordered oldest first, each up to its queued count.

    Returns the reservations (an ``array('q')``) and the slots left over.
    """
    cdef Py_ssize_t count = queued_counts.shape[0]
    cdef array reservations = clone(_INT64_TEMPLATE, count, True)
    cdef long long* out = reservations.data.as_longlongs
    cdef long long left = slots
    cdef long long wanted, take
    cdef Py_ssize_t index
    with nogil:
        for index in range(count):
            wanted = queued_counts[index]
            take = wanted if wanted < left else left
            out[index] = take
            left -= take
    return reservations, left
