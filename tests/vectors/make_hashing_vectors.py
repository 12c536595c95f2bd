"""Writes tests/vectors/hashing.json. Run it only to add vectors on purpose; the file is the
contract, and a change to existing entries means every deployed table would move.

Sources: the ``published`` entries are MurmurHash3_x86_32 test values that circulate with the
reference implementation (SMHasher's verification set as commonly quoted), typed in by hand and
checked here against mmh3; the ``lengths`` and ``flows`` entries were computed with mmh3 5.3.1
when the file was made and pin lbkit's own encoding.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import mmh3

from lbkit.hashing import flow_key

PUBLISHED = [
    ("", 0, 0x00000000),
    ("", 1, 0x514E28B7),
    ("", 0xFFFFFFFF, 0x81F16F39),
    ("00000000", 0, 0x2362F9DE),
    ("ffffffff", 0, 0x76293B50),
    ("21436587", 0, 0xF55B516B),
    ("21436587", 0x5082EDEE, 0x2362F9DE),
    ("214365", 0, 0x7E4A8634),
    ("2143", 0, 0xA0F7B07A),
    ("21", 0, 0x72661CF4),
    ("000000", 0, 0x85F0B427),
    ("0000", 0, 0x30F4C306),
    ("00", 0, 0x514E28B7),
    (b"aaaa".hex(), 0x9747B28C, 0x5A97808A),
    (b"aaa".hex(), 0x9747B28C, 0x283E0130),
    (b"aa".hex(), 0x9747B28C, 0x5D211726),
    (b"a".hex(), 0x9747B28C, 0x7FA09EA6),
    (b"abcd".hex(), 0x9747B28C, 0xF0478627),
    (b"abc".hex(), 0x9747B28C, 0xC84A62DD),
    (b"ab".hex(), 0x9747B28C, 0x74875592),
    (b"Hello, world!".hex(), 0x9747B28C, 0x24884CBA),
    ("ππππππππ".encode().hex(), 0x9747B28C, 0xD58063C1),
    ((b"a" * 256).hex(), 0x9747B28C, 0x37405BDC),
    (b"The quick brown fox jumps over the lazy dog".hex(), 0x9747B28C, 0x2FA826CD),
]

FLOWS = [
    ("192.0.2.1", "198.51.100.7", 40000, 443),
    ("::ffff:192.0.2.1", "198.51.100.7", 40000, 443),
    ("0.0.0.0", "255.255.255.255", 0, 65535),
    ("10.0.0.1", "10.0.0.2", 12345, 80),
    ("2001:db8::1", "2001:db8::2", 1, 2),
    ("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 0),
    ("fe80::1", "2001:db8:1234:5678:9abc:def0:1234:5678", 51234, 443),
    ("64:ff9b::c000:201", "2001:db8::7", 5353, 53),
]


def main() -> None:
    for key_hex, seed, expected in PUBLISHED:
        got = mmh3.hash(bytes.fromhex(key_hex), seed, signed=False)
        assert got == expected, (key_hex, seed, hex(got), hex(expected))
    rng = random.Random(20261123)
    lengths = []
    for length in [*range(0, 33), 63, 64, 65, 255, 1000]:
        key = bytes(rng.getrandbits(8) for _ in range(length))
        seed = rng.choice([0, 1, 42, 0x9747B28C, 0xFFFFFFFF, rng.getrandbits(32)])
        lengths.append({"key": key.hex(), "seed": seed, "hash": mmh3.hash(key, seed, signed=False)})
    flows = []
    for src, dst, sport, dport in FLOWS:
        key = flow_key(src, dst, sport, dport)
        flows.append(
            {
                "src": src,
                "dst": dst,
                "sport": sport,
                "dport": dport,
                "key": key.hex(),
                "hash": mmh3.hash(key, 0, signed=False),
                "hash_seed_42": mmh3.hash(key, 42, signed=False),
            }
        )
    document = {
        "algorithm": "MurmurHash3_x86_32, unsigned; keys as hex",
        "published": [{"key": k, "seed": s, "hash": h} for k, s, h in PUBLISHED],
        "lengths": lengths,
        "flows": flows,
    }
    path = Path(__file__).with_name("hashing.json")
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
