"""Forwarding-table kernels, reference implementation.

* :func:`apportion`: bucket counts within one bucket of each server's exact share, as close as
  possible to the current counts (largest remainder from scratch).
* :func:`layout`: the initial, interleaved assignment of buckets to servers.
* :class:`TableLookup` and :func:`lookup_many`: the data plane.

Weights and counts arrive validated (``lbkit.forwarding``); these functions trust them.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable

import mmh3

from lbkit.errors import unencodable_key_error

#: The second-hop value of a bucket that has none.
NO_SERVER = 0xFFFFFFFF

Hops = tuple[object, object]


def apportion(weights: array[float], current: array[int], bucket_count: int) -> array[int]:
    """Bucket counts ``t`` with ``floor(q) <= t <= ceil(q)`` for every exact share ``q``
    (``q = bucket_count * weight / total``), summing to ``bucket_count``, and moving as few
    buckets away from ``current`` as that allows.

    Each count starts at ``current`` clamped into ``[floor(q), ceil(q)]``. If they then sum to
    too much, counts at ``ceil(q)`` step down, smallest fractional part of ``q`` first; if too
    little, counts below ``ceil(q)`` step up, largest fractional part first; ties go to the
    lower index. From all-zero ``current`` this is the largest-remainder (Hamilton) method.
    """
    count = len(weights)
    # A plain left-to-right sum, as the compiled kernel does: sum() on floats is compensated
    # since Python 3.12 and would round differently.
    total = 0.0
    for i in range(count):
        total += weights[i]
    targets = array("I", bytes(4 * count))
    floors = [0] * count
    fractions = [0.0] * count
    assigned = 0
    for i in range(count):
        quota = bucket_count * weights[i] / total
        low = math.floor(quota)
        floors[i] = low
        fractions[i] = quota - low
        high = low if fractions[i] == 0.0 else low + 1
        targets[i] = min(max(current[i], low), high)
        assigned += targets[i]
    if assigned > bucket_count:
        lowerable = [i for i in range(count) if targets[i] > floors[i]]
        lowerable.sort(key=lambda i: (fractions[i], i))
        for step in range(assigned - bucket_count):
            targets[lowerable[step]] -= 1
    elif assigned < bucket_count:
        raisable = [i for i in range(count) if targets[i] == floors[i] and fractions[i] > 0.0]
        raisable.sort(key=lambda i: (-fractions[i], i))
        for step in range(bucket_count - assigned):
            targets[raisable[step]] += 1
    return targets


def layout(counts: array[int], bucket_count: int, rotation: int) -> array[int]:
    """First hops for a fresh table: server ``i`` takes ``counts[i]`` consecutive positions of
    the sequence ``0 .. bucket_count - 1`` (after rotating it by ``rotation``), and position
    ``t`` is bucket ``bit_reverse(t)``.

    Bit reversal turns a run of consecutive positions into buckets spread evenly over the
    table: neighbouring buckets differ in their lowest bit, which is the highest bit of their
    positions, so they belong to servers half the sequence apart.
    """
    bits = bucket_count.bit_length() - 1
    first = array("I", bytes(4 * bucket_count))
    position = rotation % bucket_count
    for server in range(len(counts)):
        for _ in range(counts[server]):
            first[_bit_reverse(position, bits)] = server
            position = (position + 1) % bucket_count
    return first


def _bit_reverse(value: int, bits: int) -> int:
    result = 0
    for _ in range(bits):
        result = (result << 1) | (value & 1)
        value >>= 1
    return result


class TableLookup:
    """Finds the two hops of a key in one table: ``bucket = hash & (bucket_count - 1)``.

    ``fallback(key)`` answers for keys that are neither ``bytes`` nor ``str`` (flows, and the
    errors for anything else), so the public class owns that logic once for both paths.
    """

    def __init__(
        self,
        first: array[int],
        second: array[int],
        servers: tuple[object, ...],
        hash_seed: int,
        fallback: Callable[[object], Hops],
    ) -> None:
        self._first = first
        self._second = second
        self._servers = servers
        self._mask = len(first) - 1
        self._hash_seed = hash_seed
        self._fallback = fallback

    def lookup(self, key: object) -> Hops:
        """The (first hop, second hop or None) server ids of a key."""
        if isinstance(key, bytes):
            data = key
        elif isinstance(key, str):
            try:
                data = key.encode("utf-8")
            except UnicodeEncodeError as error:
                raise unencodable_key_error(error, -1) from error
        else:
            return self._fallback(key)
        return self.hops(mmh3.hash(data, self._hash_seed, False))

    def hops(self, hash_value: int) -> Hops:
        """The (first hop, second hop or None) server ids of a 32-bit hash."""
        bucket = hash_value & self._mask
        second = self._second[bucket]
        return (
            self._servers[self._first[bucket]],
            None if second == NO_SERVER else self._servers[second],
        )


def lookup_many(
    first: array[int], second: array[int], hashes: array[int] | memoryview
) -> tuple[array[int], array[int]]:
    """First- and second-hop server indices for each hash (``NO_SERVER`` for no second hop)."""
    mask = len(first) - 1
    count = len(hashes)
    first_hops = array("I", bytes(4 * count))
    second_hops = array("I", bytes(4 * count))
    for i in range(count):
        bucket = hashes[i] & mask
        first_hops[i] = first[bucket]
        second_hops[i] = second[bucket]
    return first_hops, second_hops
