"""Writes tests/vectors/maglev.json. Run it only to add vectors on purpose; the file is the
contract, and a change to existing entries means every deployed Maglev table would move.

The tables are computed here from the rules in ``lbkit.forwarding.maglev``'s module docs, by a
deliberately naive implementation that shares no code with lbkit: mmh3 for the hashes, the
canonical id bytes written out by hand, :class:`fractions.Fraction` for the quotas, and the
permutation walk with an explicit ``(offset + j * skip) % size``. ``tests/test_maglev.py``
checks lbkit's tables (both kernel paths) against the digests, entries and lookups written
here.

Digests are SHA-256 of the table's server indices as little-endian unsigned 32-bit integers.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
from fractions import Fraction
from pathlib import Path

import mmh3

SKIP_SEED_XOR = 0x9E3779B9

# (name, weights as (id, weight) pairs, size, seed, hash_seed)
CONFIGURATIONS: list[tuple[str, list[tuple[str | int, float]], int, int, int]] = [
    ("equal weights, prime size", [(f"backend-{i}", 1.0) for i in range(5)], 251, 0, 0),
    ("weights with a zero", [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 0.0)], 251, 7, 0),
    (
        "int ids, power-of-two size",
        [(1, 1.0), (2, 1.5), (-3, 2.5), (2**63 - 1, 0.25)],
        256,
        0,
        42,
    ),
    ("decimal weights", [("x", 0.1), ("y", 0.2), ("z", 0.3)], 257, 1, 1),
    ("default size", [(f"10.0.0.{i}", float(1 + i % 3)) for i in range(10)], 65537, 0, 0),
    (
        "power of two, largest seeds",
        [(f"s{i}", float(1 + i % 4)) for i in range(20)],
        1024,
        2**32 - 1,
        2**32 - 1,
    ),
    ("a share below one entry", [("big", 1000.0), ("tiny", 0.001)], 13, 0, 0),
    ("non-ASCII ids", [("zürich-straße", 1.0), ("サーバ", 2.0), ("🙂", 1.0)], 4099, 3, 0),
    ("one entry", [("only", 1.0)], 1, 0, 0),
    ("two entries", [("x", 1.0), ("y", 1.0)], 2, 0, 0),
]

LOOKUP_KEYS: list[object] = [
    b"",
    b"session-42",
    "user:\u00e9l\u00e8ve",
    ["192.0.2.1", "198.51.100.7", 40000, 443],
    ["10.0.0.1", "10.0.0.2", 12345, 80],
]


def canonical_id(server: str | int) -> bytes:
    if isinstance(server, str):
        return b"s" + server.encode("utf-8")
    return b"i" + server.to_bytes(8, "big", signed=True)


def is_prime(number: int) -> bool:
    return number >= 2 and all(number % divisor for divisor in range(2, int(number**0.5) + 1))


def murmur(data: bytes, seed: int) -> int:
    return int(mmh3.hash(data, seed, signed=False))


def build(weights: list[tuple[str | int, float]], size: int, seed: int) -> list[int]:
    offsets, skips = [], []
    for server, _ in weights:
        key = canonical_id(server)
        offsets.append(murmur(key, seed) % size)
        skip_hash = murmur(key, seed ^ SKIP_SEED_XOR)
        skips.append(skip_hash % (size - 1) + 1 if is_prime(size) else (skip_hash & (size - 1)) | 1)
    exact = [Fraction(weight) for _, weight in weights]
    shares = [size * weight / sum(exact) for weight in exact]
    quotas = [share.numerator // share.denominator for share in shares]
    leftover = size - sum(quotas)
    by_fraction = sorted(range(len(weights)), key=lambda i: (-(shares[i] - quotas[i]), i))
    for server in by_fraction[:leftover]:
        quotas[server] += 1
    table = [-1] * size
    steps = [0] * len(weights)
    claims = [0] * len(weights)
    rounds = max(quotas)
    for round_number in range(1, rounds + 1):
        for server in range(len(weights)):
            if claims[server] * rounds >= round_number * quotas[server]:
                continue
            while True:
                entry = (offsets[server] + steps[server] * skips[server]) % size
                steps[server] += 1
                if table[entry] < 0:
                    table[entry] = server
                    claims[server] += 1
                    break
    assert min(table) >= 0
    assert claims == quotas
    return table


def key_hash(key: object, hash_seed: int) -> int:
    if isinstance(key, list):
        src, dst, sport, dport = key
        data = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    elif isinstance(key, str):
        data = key.encode("utf-8")
    else:
        assert isinstance(key, bytes)
        data = key
    return murmur(data, hash_seed)


def main() -> None:
    tables = []
    for name, weights, size, seed, hash_seed in CONFIGURATIONS:
        table = build(weights, size, seed)
        ids = [server for server, _ in weights]
        sample = sorted({0, 1, 2, 3, size // 3, size // 2, size - 1} & set(range(size)))
        lookups = []
        for key in LOOKUP_KEYS:
            value = key_hash(key, hash_seed)
            lookups.append(
                {
                    "key": key.hex() if isinstance(key, bytes) else key,
                    "kind": "bytes" if isinstance(key, bytes) else type(key).__name__,
                    "hash": value,
                    "server": ids[table[value % size]],
                }
            )
        tables.append(
            {
                "name": name,
                "weights": [[server, weight] for server, weight in weights],
                "size": size,
                "seed": seed,
                "hash_seed": hash_seed,
                "sha256": hashlib.sha256(struct.pack(f"<{size}I", *table)).hexdigest(),
                "counts": [table.count(index) for index in range(len(ids))],
                "entries": {str(entry): table[entry] for entry in sample},
                "lookups": lookups,
            }
        )
    document = {
        "algorithm": (
            "Maglev (NSDI 2016, section 3.4) with largest-remainder quotas and per-round "
            "pacing, as documented in lbkit.forwarding.maglev; sha256 of the server indices "
            "as little-endian uint32; flows are [src, dst, sport, dport]"
        ),
        "skip_seed_xor": SKIP_SEED_XOR,
        "tables": tables,
    }
    path = Path(__file__).with_name("maglev.json")
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
