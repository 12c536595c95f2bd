"""Maglev kernels, compiled: the weighted permutation walk and the batch lookup, mirroring
``lbkit._pure._maglev`` function for function, error for error. The walk and the lookup loop
run in C with the GIL released."""

from cpython.array cimport array, clone
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

cimport cython

from lbkit.errors import InvalidArgument

#: The value of an entry no server has claimed yet (never left in a finished table).
EMPTY = 0xFFFFFFFF

cdef uint32_t _EMPTY = 0xFFFFFFFF

# array('I') is 32 bits wide on every platform CPython supports; lbkit.hashing checks it at import.
cdef array _UINT32_TEMPLATE = array("I")


cdef struct Walker:
    # One server's walk through its permutation of the entries.
    uint32_t server
    uint32_t position
    uint32_t skip
    uint32_t quota
    uint32_t claims


@cython.boundscheck(False)  # every index is an offset, a position or a server, checked below size
@cython.wraparound(False)
def populate(const unsigned int[::1] offsets, const unsigned int[::1] skips,
             const unsigned int[::1] quotas, size):
    """Fill a Maglev table: the index of the server that owns each of ``size`` entries.

    Server ``i`` prefers the entries ``(offsets[i] + j * skips[i]) % size`` for ``j = 0, 1, ...``
    and ends with exactly ``quotas[i]`` of them. Rounds ``r = 1 .. max(quotas)`` visit the
    servers in index order; in round ``r`` server ``i`` claims its next preferred free entry
    only while ``claims[i] * max(quotas) < r * quotas[i]``, that is, while it is behind its
    share of the rounds so far.
    """
    cdef Py_ssize_t count = offsets.shape[0]
    _check_walk(offsets, skips, quotas, size)
    # _check_walk guarantees 1 <= size <= 2**31, so positions (< 2 * size) fit in uint32_t.
    cdef uint32_t table_size = size
    cdef array first_hops = clone(_UINT32_TEMPLATE, table_size, False)
    cdef unsigned int* table = first_hops.data.as_uints
    cdef Walker* walkers = <Walker*>malloc(count * sizeof(Walker))
    cdef Walker* walker
    cdef Py_ssize_t server, k, active = 0
    cdef uint64_t rounds = 0, round_number
    cdef uint32_t position, skip, empty = _EMPTY
    if walkers == NULL:
        raise MemoryError()
    # Servers with no quota never claim; leaving them out of the rounds changes nothing.
    for server in range(count):
        if quotas[server] > 0:
            walkers[active].server = <uint32_t>server
            walkers[active].position = offsets[server]
            walkers[active].skip = skips[server]
            walkers[active].quota = quotas[server]
            walkers[active].claims = 0
            if quotas[server] > rounds:
                rounds = quotas[server]
            active += 1
    memset(table, 0xFF, table_size * sizeof(unsigned int))
    with nogil:
        for round_number in range(1, rounds + 1):
            for k in range(active):
                walker = &walkers[k]
                # Both products are below 2**62: claims <= quota <= rounds <= size <= 2**31.
                if <uint64_t>walker.claims * rounds >= round_number * walker.quota:
                    continue
                skip = walker.skip
                position = walker.position
                # Terminates: the walk visits every entry (skip is coprime with size) and a
                # free entry exists (claims so far < sum(quotas) == size).
                while table[position] != empty:
                    position += skip
                    if position >= table_size:
                        position -= table_size
                table[position] = walker.server
                position += skip
                if position >= table_size:
                    position -= table_size
                walker.position = position
                walker.claims += 1
    free(walkers)
    return first_hops


@cython.boundscheck(False)  # every index is below size == first_hops.shape[0], or i < count
@cython.wraparound(False)
@cython.cdivision(True)  # unsigned operands and size >= 1 (checked): C's % is Python's
def lookup_many(const unsigned int[::1] hashes, const unsigned int[::1] first_hops):
    """The server index of each hash: ``first_hops[hash % len(first_hops)]``."""
    cdef Py_ssize_t count = hashes.shape[0]
    cdef Py_ssize_t entries = first_hops.shape[0]
    cdef array result
    cdef unsigned int* out
    cdef const unsigned int* hash_values
    cdef const unsigned int* table
    cdef uint32_t size, mask
    cdef Py_ssize_t i
    if entries == 0:
        raise InvalidArgument("first_hops is empty; a Maglev table has at least one entry")
    size = <uint32_t>entries if entries <= 0xFFFFFFFF else 0
    result = clone(_UINT32_TEMPLATE, count, False)
    if count == 0:
        return result
    out = result.data.as_uints
    hash_values = &hashes[0]
    table = &first_hops[0]
    if size == 0:
        # More entries than 32-bit hashes: every hash is its own entry.
        with nogil:
            for i in range(count):
                out[i] = table[hash_values[i]]
        return result
    # The memoryviews hold both buffer exports, so neither can move or shrink while the GIL
    # is released.
    with nogil:
        if size & (size - 1) == 0:
            # A power of two: the mask gives the same entry as the modulo, cheaper.
            mask = size - 1
            for i in range(count):
                out[i] = table[hash_values[i] & mask]
        else:
            for i in range(count):
                out[i] = table[hash_values[i] % size]
    return result


@cython.boundscheck(False)  # server < count, the length of all three (checked first)
@cython.wraparound(False)
cdef int _check_walk(const unsigned int[::1] offsets, const unsigned int[::1] skips,
                     const unsigned int[::1] quotas, object size) except -1:
    """Raise unless every server's walk is a full cycle over the table and the quotas fill it
    exactly: the facts populate's loops rely on to end and to stay in bounds."""
    cdef Py_ssize_t count = offsets.shape[0]
    cdef Py_ssize_t server
    cdef uint32_t table_size, skip
    cdef uint64_t total = 0
    if skips.shape[0] != count or quotas.shape[0] != count:
        raise InvalidArgument(
            f"offsets, skips and quotas have {count}, {skips.shape[0]} and {quotas.shape[0]} "
            "items; they must have one per server"
        )
    # Positions stay below 2 * size, which must fit the compiled kernel's 32-bit unsigned ints.
    if not 1 <= size <= 2**31:
        raise InvalidArgument(f"size is {size}; it must be in 1..2147483648")
    table_size = size
    for server in range(count):
        if offsets[server] >= table_size:
            raise InvalidArgument(
                f"offsets[{server}] is {offsets[server]}; it must be below size {size}"
            )
        skip = skips[server]
        if not 1 <= skip <= table_size or _gcd(skip, table_size) != 1:
            raise InvalidArgument(
                f"skips[{server}] is {skip}; it must be in 1..{size} and coprime with size"
            )
        total += quotas[server]
    if total != table_size:
        raise InvalidArgument(f"quotas add up to {total}; they must add up to size {size}")
    return 0


@cython.cdivision(True)  # unsigned operands and b != 0 inside the loop
cdef inline uint32_t _gcd(uint32_t a, uint32_t b) noexcept nogil:
    cdef uint32_t rest
    while b != 0:
        rest = a % b
        a = b
        b = rest
    return a
