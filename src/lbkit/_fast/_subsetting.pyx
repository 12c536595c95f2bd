"""Subsetting kernels, compiled: bit reversal, the Van der Corput order in linear time, and the
ring walk of Ringsteady subsetting, mirroring ``lbkit._pure._subsetting`` function for
function. The order and the load count run in C with the GIL released."""

from cpython.array cimport array, clone
from cpython.tuple cimport PyTuple_GetSlice
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

cimport cython

#: Ring positions are fractions of a turn in units of ``2**-RING_BITS``.
RING_BITS = 32

# array('I') is 32 bits wide on every platform CPython supports; lbkit.hashing checks it at import.
cdef array _UINT32_TEMPLATE = array("I")


cdef inline uint64_t _reverse(uint64_t value, int bits) noexcept nogil:
    cdef uint64_t result = 0
    cdef int i
    for i in range(bits):
        result = (result << 1) | (value & 1)
        value >>= 1
    return result


cdef inline uint32_t _reverse32(uint32_t value) noexcept nogil:
    # Swap ever larger groups of bits: the same result as _reverse(value, 32) in five steps.
    value = ((value >> 1) & 0x55555555u) | ((value & 0x55555555u) << 1)
    value = ((value >> 2) & 0x33333333u) | ((value & 0x33333333u) << 2)
    value = ((value >> 4) & 0x0F0F0F0Fu) | ((value & 0x0F0F0F0Fu) << 4)
    value = ((value >> 8) & 0x00FF00FFu) | ((value & 0x00FF00FFu) << 8)
    return (value >> 16) | (value << 16)


def bit_reverse(uint64_t value, int bits):
    """The low ``bits`` bits of ``value`` in reverse order (``value < 2**bits``, ``bits <= 64``)."""
    return _reverse(value, bits)


@cython.boundscheck(False)  # filled < n: it counts the t whose reversal is < n, n of them at most
@cython.wraparound(False)
def vdc_order(Py_ssize_t n):
    """The indices ``0 .. n - 1`` in increasing order of their Van der Corput positions."""
    cdef array order = clone(_UINT32_TEMPLATE, n, False)
    cdef uint32_t* out = order.data.as_uints
    cdef int bits = 0
    cdef uint64_t top, t, carry, reversed_counter = 0
    cdef Py_ssize_t filled = 0
    if n == 0:
        return order
    while (<uint64_t>1 << bits) < <uint64_t>n:
        bits += 1
    top = <uint64_t>1 << bits
    with nogil:
        for t in range(top):
            if reversed_counter < <uint64_t>n:
                out[filled] = <uint32_t>reversed_counter
                filled += 1
            # Adding 1 to a bit-reversed counter carries from its highest bit downwards.
            carry = top >> 1
            while carry and reversed_counter & carry:
                reversed_counter ^= carry
                carry >>= 1
            reversed_counter |= carry
    return order


@cython.boundscheck(False)  # i < count == len(indices) == len(positions)
@cython.wraparound(False)
def ring_positions(const uint32_t[::1] indices):
    """Each index's position on the ring: ``bit_reverse(index, RING_BITS)``."""
    cdef Py_ssize_t count = indices.shape[0]
    cdef array positions = clone(_UINT32_TEMPLATE, count, False)
    cdef uint32_t* out = positions.data.as_uints
    cdef Py_ssize_t i
    with nogil:
        for i in range(count):
            out[i] = _reverse32(indices[i])
    return positions


cdef inline uint64_t _frontend_rank(uint64_t frontend, uint64_t frontends, int bits) noexcept nogil:
    # See lbkit._pure._subsetting.frontend_rank; bits = ceil(log2(frontends)) <= 32, so
    # 1 << (level + 1) <= 2**32 and every sum below fits in 64 bits.
    cdef uint64_t rank = 0, low
    cdef int level
    for level in range(bits):
        if (frontend >> level) & 1:
            low = frontend & ((<uint64_t>1 << level) - 1)
            if low < frontends:
                rank += (frontends - low + (<uint64_t>1 << (level + 1)) - 1) >> (level + 1)
    return rank


cdef inline int _rank_bits(uint64_t frontends) noexcept nogil:
    # (frontends - 1).bit_length()
    cdef int bits = 0
    cdef uint64_t rest = frontends - 1
    while rest:
        bits += 1
        rest >>= 1
    return bits


def frontend_rank(uint64_t frontend, uint64_t frontends):
    """Where ``frontend`` comes among ``0 .. frontends - 1`` in Van der Corput order."""
    return _frontend_rank(frontend, frontends, _rank_bits(frontends))


cdef class Ring:
    """Walks one ring of backends: ``positions`` (strictly increasing ring positions) and
    ``members`` (the backend ids at those positions, in the same order), for frontends
    ``0 .. frontends - 1``."""

    # The typed memoryview holds a buffer export on the array, so it cannot be resized (and
    # the raw pointer cannot dangle) while this object lives.
    cdef const uint32_t[::1] _positions_view
    cdef const uint32_t* _positions
    cdef tuple _members
    cdef Py_ssize_t _count
    cdef Py_ssize_t _subset_size
    cdef bint _rank_scaled
    cdef uint64_t _frontends
    cdef int _rank_bits

    def __init__(
        self,
        positions,
        tuple members,
        Py_ssize_t subset_size,
        bint rank_scaled,
        uint64_t frontends,
    ):
        self._positions_view = positions
        self._positions = &self._positions_view[0] if self._positions_view.shape[0] else NULL
        self._members = members
        self._count = len(members)
        self._subset_size = subset_size
        self._rank_scaled = rank_scaled
        self._frontends = frontends
        self._rank_bits = _rank_bits(frontends)

    @cython.cdivision(True)  # frontends >= 1: Ringsteady validates the count
    cdef inline Py_ssize_t _start_of_rank(self, uint64_t rank) noexcept nogil:
        # rank <= frontends <= 2**32 and count <= 2**28, so the product fits in 64 bits.
        cdef uint64_t first = (
            (rank * <uint64_t>self._count + self._frontends - 1) // self._frontends
        )
        return 0 if first >= <uint64_t>self._count else <Py_ssize_t>first

    cdef inline Py_ssize_t _start(self, uint32_t frontend) noexcept nogil:
        cdef uint32_t position
        cdef Py_ssize_t low = 0, high = self._count, middle
        if self._rank_scaled:
            return self._start_of_rank(
                _frontend_rank(frontend, self._frontends, self._rank_bits)
            )
        position = _reverse32(frontend)
        while low < high:
            middle = (low + high) >> 1
            if self._positions[middle] < position:
                low = middle + 1
            else:
                high = middle
        return 0 if low == self._count else low

    def start(self, uint32_t frontend):
        """The ring rank where a frontend's subset starts."""
        return self._start(frontend)

    # A plain builtin method taking one positional argument (METH_O) is the cheapest call
    # CPython has; Ringsteady.subset_for calls it once per lookup.
    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def walk(self, frontend):
        """A frontend's subset: ``subset_size`` backend ids in ring order."""
        cdef Py_ssize_t first = self._start(<uint32_t>frontend)
        cdef Py_ssize_t end = first + self._subset_size
        if end <= self._count:
            return PyTuple_GetSlice(self._members, first, end)
        return (PyTuple_GetSlice(self._members, first, self._count)
                + PyTuple_GetSlice(self._members, 0, end - self._count))

    @cython.boundscheck(False)  # every rank written is < count: starts are < count, ends <= count
    @cython.wraparound(False)
    def loads(self):
        """How many of the frontends connect to each ring rank."""
        cdef Py_ssize_t count = self._count
        cdef array loads = clone(_UINT32_TEMPLATE, count, False)
        cdef uint32_t* out = loads.data.as_uints
        cdef long long* changes = <long long*>malloc((count + 1) * sizeof(long long))
        cdef uint64_t number
        cdef Py_ssize_t first, end, rank
        cdef long long running = 0
        if changes == NULL:
            raise MemoryError()
        memset(changes, 0, (count + 1) * sizeof(long long))
        with nogil:
            for number in range(self._frontends):
                # A frontend number, or with rank scaling a frontend rank: the ranks are
                # exactly 0 .. frontends - 1.
                first = (self._start_of_rank(number) if self._rank_scaled
                         else self._start(<uint32_t>number))
                end = first + self._subset_size
                changes[first] += 1
                if end <= count:
                    changes[end] -= 1
                else:
                    changes[count] -= 1
                    changes[0] += 1
                    changes[end - count] -= 1
            for rank in range(count):
                running += changes[rank]
                out[rank] = <uint32_t>running
        free(changes)
        return loads
