"""Hashing kernels, compiled: MurmurHash3 x86 32-bit (see ``_murmur3.pxd``), mirroring
``lbkit._pure._hashing`` function for function, error for error."""

from cpython.array cimport array, clone
from cpython.sequence cimport PySequence_Fast_GET_ITEM, PySequence_Fast_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t

cimport cython

from lbkit._fast._keys cimport key_data
from lbkit._fast._murmur3 cimport murmur3_32

# array('I') is 32 bits wide on every platform CPython supports; lbkit.hashing checks it at import.
cdef array _UINT32_TEMPLATE = array("I")


def hash_key(key, uint32_t seed):
    """MurmurHash3 x86 32-bit of one key, unsigned."""
    cdef Py_ssize_t size
    cdef const char* data = key_data(key, -1, &size)
    return murmur3_32(<const uint8_t*>data, size, seed)


def hash_many(keys, uint32_t seed):
    """One unsigned hash per key, in order."""
    # keys is a list or tuple (lbkit.hashing guarantees it): the GET_ITEM macros read its items
    # directly, and nothing in the loop runs Python code that could change it.
    cdef Py_ssize_t count = PySequence_Fast_GET_SIZE(keys)
    cdef array hashes = clone(_UINT32_TEMPLATE, count, False)
    cdef unsigned int* out = hashes.data.as_uints
    cdef Py_ssize_t i, size
    cdef const char* data
    for i in range(count):
        data = key_data(<object>PySequence_Fast_GET_ITEM(keys, i), i, &size)
        out[i] = murmur3_32(<const uint8_t*>data, size, seed)
    return hashes


@cython.boundscheck(False)  # every record start is below (len(data) // record_size) * record_size
@cython.wraparound(False)
def hash_packed(const uint8_t[::1] data, Py_ssize_t record_size, uint32_t seed):
    """One unsigned hash per fixed-width record of a flat byte buffer."""
    cdef Py_ssize_t count = data.shape[0] // record_size
    cdef array hashes = clone(_UINT32_TEMPLATE, count, False)
    cdef unsigned int* out = hashes.data.as_uints
    cdef const uint8_t* records
    cdef Py_ssize_t i
    if count == 0:
        return hashes
    records = &data[0]
    # The memoryview holds the buffer export, so the bytes cannot move or shrink while the GIL
    # is released.
    with nogil:
        for i in range(count):
            out[i] = murmur3_32(records + i * record_size, record_size, seed)
    return hashes
