"""The keys the hashing benchmarks hash: deterministic, cheap to build, checked against mmh3.

Every key is a canonical 12-byte IPv4 flow key (``lbkit.hashing`` documents the layout): a
client anywhere in the IPv4 space, one of eight virtual IPs in 198.51.100.0/24 (TEST-NET-2), an
ephemeral source port and destination port 443. Keys are packed with :mod:`struct` from a seeded
:class:`random.Random`, so a million of them take well under a second and every run, on any
machine, hashes the same bytes.
"""

from __future__ import annotations

import random
import socket
import struct
from dataclasses import dataclass

import mmh3

__all__ = ["SEED", "FlowSet", "KeySet", "make_flow_keys", "make_flow_set", "make_key_set"]

#: The seed of the key generator; changing it changes every key (and nothing else).
SEED = 20240611

# 198.51.100.1 .. 198.51.100.8, as big-endian integers.
_VIRTUAL_IPS = tuple(0xC6336400 + host for host in range(1, 9))
_IPV4_FLOW = struct.Struct("!IIHH")
_IPV4_FLOW_FIELDS = struct.Struct("!4s4sHH")


@dataclass(frozen=True)
class KeySet:
    """The same IPv4 flow keys as one packed buffer and as a list, with their mmh3 hashes."""

    #: The keys back to back: ``len(keys) * 12`` bytes.
    packed: bytes
    #: One 12-byte ``bytes`` object per key.
    keys: list[bytes]
    #: ``mmh3.hash(key, 0, signed=False)`` per key: what every benchmark must return.
    hashes: list[int]

    @property
    def count(self) -> int:
        """How many keys there are."""
        return len(self.keys)


@dataclass(frozen=True)
class FlowSet:
    """IPv4 flows as 4-tuples (string addresses and packed addresses), with their keys and
    hashes."""

    #: ``(src, dst, sport, dport)`` with dotted-quad address strings, as a user often has them.
    tuples: list[tuple[str, str, int, int]]
    #: The same flows with 4-byte packed addresses, as a packet parser has them.
    packed_tuples: list[tuple[bytes, bytes, int, int]]
    #: The canonical flow key of each flow.
    keys: list[bytes]
    #: ``mmh3.hash(key, 0, signed=False)`` of each flow key.
    hashes: list[int]

    @property
    def count(self) -> int:
        """How many flows there are."""
        return len(self.keys)


def make_flow_keys(count: int, *, seed: int = SEED) -> list[bytes]:
    """``count`` canonical 12-byte IPv4 flow keys, the same ones for the same seed."""
    bits = random.Random(seed).getrandbits
    pack = _IPV4_FLOW.pack
    return [pack(bits(32), _VIRTUAL_IPS[bits(3)], 32768 + bits(15), 443) for _ in range(count)]


def make_key_set(count: int, *, seed: int = SEED) -> KeySet:
    """``count`` flow keys in both layouts, with their expected hashes."""
    keys = make_flow_keys(count, seed=seed)
    murmur = mmh3.hash
    return KeySet(
        packed=b"".join(keys),
        keys=keys,
        hashes=[murmur(key, 0, signed=False) for key in keys],
    )


def make_flow_set(key_set: KeySet, count: int) -> FlowSet:
    """The first ``count`` keys of ``key_set``, decoded back into 4-tuples."""
    unpack = _IPV4_FLOW_FIELDS.unpack
    tuples: list[tuple[str, str, int, int]] = []
    packed_tuples: list[tuple[bytes, bytes, int, int]] = []
    for key in key_set.keys[:count]:
        src, dst, sport, dport = unpack(key)
        tuples.append((socket.inet_ntoa(src), socket.inet_ntoa(dst), sport, dport))
        packed_tuples.append((src, dst, sport, dport))
    return FlowSet(
        tuples=tuples,
        packed_tuples=packed_tuples,
        keys=key_set.keys[:count],
        hashes=key_set.hashes[:count],
    )
