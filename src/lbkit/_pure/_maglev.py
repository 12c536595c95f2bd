"""Maglev kernels, reference implementation: the weighted permutation walk that fills a table
(Eisenbud et al., NSDI 2016, §3.4, Listing 1, with per-round pacing for weights) and the batch
lookup.

``lbkit.forwarding.maglev`` computes each server's offset, skip and entry quota and documents
the rule; these kernels only walk. They trust their caller for everything except the few
facts that keep the walk finite and in bounds, which :func:`populate` checks first (in O(N))
so that a wrong call fails instead of looping forever or writing outside the table.
"""

from __future__ import annotations

import math
from array import array

from lbkit.errors import InvalidArgument

#: The value of an entry no server has claimed yet (never left in a finished table).
EMPTY = 0xFFFFFFFF


def populate(offsets: array[int], skips: array[int], quotas: array[int], size: int) -> array[int]:
    """Fill a Maglev table: the index of the server that owns each of ``size`` entries.

    Server ``i`` prefers the entries ``(offsets[i] + j * skips[i]) % size`` for ``j = 0, 1, ...``
    and ends with exactly ``quotas[i]`` of them. Rounds ``r = 1 .. max(quotas)`` visit the
    servers in index order; in round ``r`` server ``i`` claims its next preferred free entry
    only while ``claims[i] * max(quotas) < r * quotas[i]``, that is, while it is behind its
    share of the rounds so far.
    """
    count = len(offsets)
    _check_walk(offsets, skips, quotas, size)
    first_hops = array("I", [EMPTY]) * size
    positions = array("I", offsets)
    claims = array("I", bytes(4 * count))
    # Servers with no quota never claim; leaving them out of the rounds changes nothing.
    active = array("I", [server for server in range(count) if quotas[server] > 0])
    rounds = max(quotas)
    for round_number in range(1, rounds + 1):
        for k in range(len(active)):
            server = active[k]
            if claims[server] * rounds >= round_number * quotas[server]:
                continue
            skip = skips[server]
            position = positions[server]
            # Terminates: the walk visits every entry (skip is coprime with size) and a free
            # entry exists (claims so far < sum(quotas) == size).
            while first_hops[position] != EMPTY:
                position += skip
                if position >= size:
                    position -= size
            first_hops[position] = server
            position += skip
            if position >= size:
                position -= size
            positions[server] = position
            claims[server] += 1
    return first_hops


def lookup_many(hashes: array[int], first_hops: array[int]) -> array[int]:
    """The server index of each hash: ``first_hops[hash % len(first_hops)]``."""
    size = len(first_hops)
    if size == 0:
        raise InvalidArgument("first_hops is empty; a Maglev table has at least one entry")
    return array("I", [first_hops[hash_value % size] for hash_value in hashes])


def _check_walk(offsets: array[int], skips: array[int], quotas: array[int], size: int) -> None:
    """Raise unless every server's walk is a full cycle over the table and the quotas fill it
    exactly: the facts :func:`populate`'s loops rely on to end and to stay in bounds."""
    count = len(offsets)
    if len(skips) != count or len(quotas) != count:
        raise InvalidArgument(
            f"offsets, skips and quotas have {count}, {len(skips)} and {len(quotas)} items; "
            "they must have one per server"
        )
    # Positions stay below 2 * size, which must fit the compiled kernel's 32-bit unsigned ints.
    if not 1 <= size <= 2**31:
        raise InvalidArgument(f"size is {size}; it must be in 1..2147483648")
    total = 0
    for server in range(count):
        if offsets[server] >= size:
            raise InvalidArgument(
                f"offsets[{server}] is {offsets[server]}; it must be below size {size}"
            )
        skip = skips[server]
        if not 1 <= skip <= size or math.gcd(skip, size) != 1:
            raise InvalidArgument(
                f"skips[{server}] is {skip}; it must be in 1..{size} and coprime with size"
            )
        total += quotas[server]
    if total != size:
        raise InvalidArgument(f"quotas add up to {total}; they must add up to size {size}")
