"""Forwarding-table kernels, compiled, mirroring ``lbkit._pure._forwarding`` function for
function: apportionment, the interleaved layout, and the data-plane lookups."""

from cpython.array cimport array, clone
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.math cimport floor
from libc.stdint cimport uint8_t, uint32_t
from libc.stdlib cimport free, malloc, qsort

cimport cython

from lbkit._fast._keys cimport key_data
from lbkit._fast._murmur3 cimport murmur3_32

NO_SERVER = 0xFFFFFFFF
cdef uint32_t _NO_SERVER = 0xFFFFFFFF
cdef array _UINT32_TEMPLATE = array("I")


cdef struct _Candidate:
    double fraction
    Py_ssize_t index


cdef int _smallest_fraction_first(const void* a, const void* b) noexcept nogil:
    cdef const _Candidate* x = <const _Candidate*>a
    cdef const _Candidate* y = <const _Candidate*>b
    if x.fraction != y.fraction:
        return -1 if x.fraction < y.fraction else 1
    return -1 if x.index < y.index else (1 if x.index > y.index else 0)


cdef int _largest_fraction_first(const void* a, const void* b) noexcept nogil:
    cdef const _Candidate* x = <const _Candidate*>a
    cdef const _Candidate* y = <const _Candidate*>b
    if x.fraction != y.fraction:
        return -1 if x.fraction > y.fraction else 1
    return -1 if x.index < y.index else (1 if x.index > y.index else 0)


@cython.boundscheck(False)  # i < count == len(weights) == len(current) == len(targets)
@cython.wraparound(False)
def apportion(const double[::1] weights, const uint32_t[::1] current, Py_ssize_t bucket_count):
    """Bucket counts ``t`` with ``floor(q) <= t <= ceil(q)`` for every exact share ``q``
    (``q = bucket_count * weight / total``), summing to ``bucket_count``, and moving as few
    buckets away from ``current`` as that allows."""
    cdef Py_ssize_t count = weights.shape[0]
    cdef array targets = clone(_UINT32_TEMPLATE, count, True)
    cdef uint32_t* out = targets.data.as_uints
    cdef double total = 0.0
    cdef double quota, low, high
    cdef Py_ssize_t i, assigned = 0, candidates = 0, step
    cdef _Candidate* pool = <_Candidate*>malloc((count if count else 1) * sizeof(_Candidate))
    cdef double* floors = <double*>malloc((count if count else 1) * sizeof(double))
    cdef double* fractions = <double*>malloc((count if count else 1) * sizeof(double))
    if pool == NULL or floors == NULL or fractions == NULL:
        free(pool)
        free(floors)
        free(fractions)
        raise MemoryError()
    try:
        for i in range(count):
            total += weights[i]
        for i in range(count):
            quota = bucket_count * weights[i] / total
            low = floor(quota)
            floors[i] = low
            fractions[i] = quota - low
            high = low if fractions[i] == 0.0 else low + 1
            out[i] = <uint32_t>min(max(<double>current[i], low), high)
            assigned += out[i]
        if assigned > bucket_count:
            for i in range(count):
                if out[i] > floors[i]:
                    pool[candidates].fraction = fractions[i]
                    pool[candidates].index = i
                    candidates += 1
            qsort(pool, candidates, sizeof(_Candidate), _smallest_fraction_first)
            for step in range(assigned - bucket_count):
                out[pool[step].index] -= 1
        elif assigned < bucket_count:
            for i in range(count):
                if out[i] == floors[i] and fractions[i] > 0.0:
                    pool[candidates].fraction = fractions[i]
                    pool[candidates].index = i
                    candidates += 1
            qsort(pool, candidates, sizeof(_Candidate), _largest_fraction_first)
            for step in range(bucket_count - assigned):
                out[pool[step].index] += 1
    finally:
        free(pool)
        free(floors)
        free(fractions)
    return targets


cdef inline uint32_t _bit_reverse(uint32_t value, int bits) noexcept nogil:
    cdef uint32_t result = 0
    cdef int i
    for i in range(bits):
        result = (result << 1) | (value & 1)
        value >>= 1
    return result


@cython.boundscheck(False)  # counts sum to bucket_count, so every bit-reversed position is < it
@cython.wraparound(False)
def layout(const uint32_t[::1] counts, Py_ssize_t bucket_count, Py_ssize_t rotation):
    """First hops for a fresh table: server ``i`` takes ``counts[i]`` consecutive positions of
    the sequence ``0 .. bucket_count - 1`` (after rotating it by ``rotation``), and position
    ``t`` is bucket ``bit_reverse(t)``."""
    cdef int bits = 0
    while (<Py_ssize_t>1 << bits) < bucket_count:
        bits += 1
    cdef array first = clone(_UINT32_TEMPLATE, bucket_count, True)
    cdef uint32_t* out = first.data.as_uints
    cdef Py_ssize_t position = rotation % bucket_count
    cdef Py_ssize_t server, taken
    cdef Py_ssize_t servers = counts.shape[0]
    with nogil:
        for server in range(servers):
            for taken in range(counts[server]):
                out[_bit_reverse(<uint32_t>position, bits)] = <uint32_t>server
                position += 1
                if position == bucket_count:
                    position = 0
    return first


cdef class TableLookup:
    """Finds the two hops of a key in one table: ``bucket = hash & (bucket_count - 1)``."""

    # Typed memoryviews hold buffer exports on the arrays, so they cannot be resized (and the
    # raw pointers below cannot dangle) while this object lives.
    cdef const uint32_t[::1] _first_view
    cdef const uint32_t[::1] _second_view
    cdef const uint32_t* _first
    cdef const uint32_t* _second
    cdef tuple _servers
    cdef uint32_t _mask
    cdef uint32_t _hash_seed
    cdef object _fallback

    def __init__(self, first, second, tuple servers, uint32_t hash_seed, fallback):
        self._first_view = first
        self._second_view = second
        self._first = &self._first_view[0]
        self._second = &self._second_view[0]
        self._servers = servers
        self._mask = <uint32_t>(self._first_view.shape[0] - 1)
        self._hash_seed = hash_seed
        self._fallback = fallback

    # A plain builtin method taking one positional argument (METH_O) is the cheapest call
    # CPython has; ForwardingTable stores this bound method as its ``lookup``.
    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def lookup(self, key):
        """The (first hop, second hop or None) server ids of a key."""
        cdef Py_ssize_t size
        cdef const char* data
        if PyBytes_CheckExact(key):
            return self._hops(murmur3_32(
                <const uint8_t*>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), self._hash_seed
            ))
        if isinstance(key, (bytes, str)):
            data = key_data(key, -1, &size)
            return self._hops(murmur3_32(<const uint8_t*>data, size, self._hash_seed))
        return self._fallback(key)

    def hops(self, uint32_t hash_value):
        """The (first hop, second hop or None) server ids of a 32-bit hash."""
        return self._hops(hash_value)

    cdef inline tuple _hops(self, uint32_t hash_value):
        # Every stored index is < len(servers) or NO_SERVER (lbkit.forwarding checks tables).
        cdef uint32_t bucket = hash_value & self._mask
        cdef uint32_t second = self._second[bucket]
        cdef object first_id = <object>PyTuple_GET_ITEM(self._servers, self._first[bucket])
        if second == _NO_SERVER:
            return (first_id, None)
        return (first_id, <object>PyTuple_GET_ITEM(self._servers, second))


@cython.boundscheck(False)  # bucket = hash & (len(first) - 1) < len(first) == len(second)
@cython.wraparound(False)
def lookup_many(const uint32_t[::1] first, const uint32_t[::1] second, const uint32_t[::1] hashes):
    """First- and second-hop server indices for each hash (``NO_SERVER`` for no second hop)."""
    cdef Py_ssize_t count = hashes.shape[0]
    cdef uint32_t mask = <uint32_t>(first.shape[0] - 1)
    cdef array first_hops = clone(_UINT32_TEMPLATE, count, False)
    cdef array second_hops = clone(_UINT32_TEMPLATE, count, False)
    cdef uint32_t* first_out = first_hops.data.as_uints
    cdef uint32_t* second_out = second_hops.data.as_uints
    cdef Py_ssize_t i
    cdef uint32_t bucket
    with nogil:
        for i in range(count):
            bucket = hashes[i] & mask
            first_out[i] = first[bucket]
            second_out[i] = second[bucket]
    return first_hops, second_hops
