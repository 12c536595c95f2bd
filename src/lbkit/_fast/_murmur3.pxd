# MurmurHash3 x86 32-bit (Austin Appleby, public domain), as inline C for the kernels.
#
# Blocks are assembled little-endian byte by byte, so the result is the same on every
# platform and equal to mmh3.hash(key, seed, signed=False); compilers turn the assembly into a
# single load on little-endian machines. All arithmetic is on uint32_t, so overflow wraps
# modulo 2**32 exactly as the reference does.

from libc.stdint cimport uint8_t, uint32_t


cdef inline uint32_t rotl32(uint32_t x, int r) noexcept nogil:
    return (x << r) | (x >> (32 - r))


cdef inline uint32_t mix_block(uint32_t k1) noexcept nogil:
    k1 *= <uint32_t>0xcc9e2d51
    k1 = rotl32(k1, 15)
    k1 *= <uint32_t>0x1b873593
    return k1


cdef inline uint32_t fmix32(uint32_t h) noexcept nogil:
    h ^= h >> 16
    h *= <uint32_t>0x85ebca6b
    h ^= h >> 13
    h *= <uint32_t>0xc2b2ae35
    h ^= h >> 16
    return h


cdef inline uint32_t murmur3_32(const uint8_t* data, Py_ssize_t length, uint32_t seed) noexcept nogil:
    cdef Py_ssize_t block_count = length >> 2
    cdef Py_ssize_t i
    cdef const uint8_t* block
    cdef const uint8_t* tail = data + (block_count << 2)
    cdef uint32_t h1 = seed
    cdef uint32_t k1
    for i in range(block_count):
        block = data + (i << 2)
        k1 = (<uint32_t>block[0] | (<uint32_t>block[1] << 8)
              | (<uint32_t>block[2] << 16) | (<uint32_t>block[3] << 24))
        h1 ^= mix_block(k1)
        h1 = rotl32(h1, 13)
        h1 = h1 * 5 + <uint32_t>0xe6546b64
    k1 = 0
    if (length & 3) == 3:
        k1 ^= <uint32_t>tail[2] << 16
    if (length & 3) >= 2:
        k1 ^= <uint32_t>tail[1] << 8
    if (length & 3) >= 1:
        k1 ^= <uint32_t>tail[0]
        h1 ^= mix_block(k1)
    # The reference mixes in the length truncated to 32 bits.
    h1 ^= <uint32_t>length
    return fmix32(h1)
