"""Writes tests/vectors/waitingroom_cookies.json. Run it only to add vectors on purpose; the
file is the contract, and a change to existing entries means cookies already in users'
browsers stop opening after an upgrade.

Everything here follows the token format in ``lbkit.waitingroom.cookies``' docstring, written
again without any lbkit code: the payload with ``int.to_bytes``, the room tag with
:mod:`hashlib`, the associated data by concatenation, AES-GCM-SIV from ``cryptography`` with a
fixed nonce, and base64url from :mod:`base64`. ``tests/test_waitingroom_cookies.py`` checks
that ``CookieSealer`` seals the same tokens (given the same nonce) and opens them to the same
fields, and that it refuses the ``rejects`` tokens for the reason written here.

Run from the repository root: ``python tests/vectors/make_waitingroom_cookie_vectors.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

VERSION = 1
QUEUED = 2**40 - 1

# (name, key id, key, room id, cookie name, nonce, bucket id, last check-in offset ms,
#  accepted offset ms or None, expiry delay ms, refresh interval ms)
CASES: list[tuple[str, int, bytes, str, str, bytes, int, int, int | None, int, int]] = [
    (
        "queued user, AES-256",
        1,
        bytes(range(32)),
        "shop",
        "__lbkit_wr",
        bytes(range(12)),
        28_000_000,
        12_500,
        None,
        300_000,
        21_337,
    ),
    (
        "admitted user, AES-128, non-ASCII room id",
        200,
        bytes(range(100, 116)),
        "événements",
        "wr",
        bytes(range(12, 24)),
        28_000_001,
        600_000,
        59_999,
        300_000,
        18_004,
    ),
    (
        "smallest values",
        0,
        bytes(32),
        "r",
        "c",
        bytes(12),
        0,
        0,
        0,
        0,
        1,
    ),
    (
        "largest values",
        255,
        bytes([255] * 32),
        "x" * 255,
        "__lbkit_wr",
        bytes([255] * 12),
        2**32 - 1,
        2**40 - 1,
        2**40 - 2,
        2**32 - 1,
        2**24 - 1,
    ),
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def binding(room_id: str, cookie_name: str) -> bytes:
    room = room_id.encode("utf-8")
    return len(room).to_bytes(1, "big") + room + cookie_name.encode("ascii")


def room_tag(room_id: str, cookie_name: str) -> bytes:
    return hashlib.blake2b(
        binding(room_id, cookie_name), digest_size=2, person=b"lbkit wr room"
    ).digest()


def payload(
    bucket_id: int, check_in: int, accepted: int | None, expiry: int, refresh: int
) -> bytes:
    return (
        bucket_id.to_bytes(4, "big")
        + check_in.to_bytes(5, "big")
        + (QUEUED if accepted is None else accepted).to_bytes(5, "big")
        + expiry.to_bytes(4, "big")
        + refresh.to_bytes(3, "big")
    )


def seal(
    key_id: int, key: bytes, room_id: str, cookie_name: str, nonce: bytes, plaintext: bytes
) -> tuple[str, bytes]:
    header = bytes([VERSION, key_id]) + room_tag(room_id, cookie_name)
    associated = header + binding(room_id, cookie_name)
    sealed = AESGCMSIV(key).encrypt(nonce, plaintext, associated)
    return b64url(header + nonce + sealed), associated


def seconds(milliseconds: int) -> float:
    return milliseconds / 1000


def vector(case: tuple[str, int, bytes, str, str, bytes, int, int, int | None, int, int]) -> Any:
    name, key_id, key, room_id, cookie_name, nonce, bucket, check_in, accepted, expiry, refresh = (
        case
    )
    plaintext = payload(bucket, check_in, accepted, expiry, refresh)
    token, associated = seal(key_id, key, room_id, cookie_name, nonce, plaintext)
    start = bucket * 60_000
    return {
        "name": name,
        "key_id": key_id,
        "key": key.hex(),
        "room_id": room_id,
        "cookie_name": cookie_name,
        "nonce": nonce.hex(),
        "cookie": {
            "bucket_id": bucket,
            "last_check_in": seconds(start + check_in),
            "refresh_interval": seconds(refresh),
            "expires_at": seconds(start + check_in + expiry),
            "accepted_at": None if accepted is None else seconds(start + accepted),
        },
        "payload": plaintext.hex(),
        "associated_data": associated.hex(),
        "token": token,
    }


def rejects() -> Any:
    """Tokens the sealer described under ``sealer`` must refuse, each with its reason."""
    key = bytes(range(32))
    plaintext = payload(28_000_000, 12_500, None, 300_000, 21_337)
    nonce = bytes(range(12))
    good, _ = seal(1, key, "shop", "__lbkit_wr", nonce, plaintext)
    blob = bytearray(base64.urlsafe_b64decode(good + "="))
    altered = bytearray(blob)
    altered[30] ^= 0x01
    future = bytearray(blob)
    future[0] = 2
    return {
        "sealer": {
            "keys": {"1": key.hex()},
            "primary": 1,
            "room_id": "shop",
            "cookie_name": "__lbkit_wr",
        },
        "now": seconds(28_000_000 * 60_000 + 12_500),
        "tokens": [
            {
                "name": "a byte of the ciphertext flipped",
                "reason": "tampered",
                "token": b64url(bytes(altered)),
            },
            {
                "name": "sealed for the room 'shop2'",
                "reason": "wrong_room",
                "token": seal(1, key, "shop2", "__lbkit_wr", nonce, plaintext)[0],
            },
            {
                "name": "sealed under the cookie name 'wr'",
                "reason": "wrong_room",
                "token": seal(1, key, "shop", "wr", nonce, plaintext)[0],
            },
            {
                "name": "sealed with key id 9",
                "reason": "unknown_key",
                "token": seal(9, key, "shop", "__lbkit_wr", nonce, plaintext)[0],
            },
            {
                "name": "sealed with another key under id 1",
                "reason": "tampered",
                "token": seal(1, bytes(32), "shop", "__lbkit_wr", nonce, plaintext)[0],
            },
            {"name": "format version 2", "reason": "malformed", "token": b64url(bytes(future))},
            {
                "name": "expired: sealed with expires_at == last_check_in",
                "reason": "expired",
                "token": seal(
                    1,
                    key,
                    "shop",
                    "__lbkit_wr",
                    nonce,
                    payload(28_000_000, 12_500, None, 0, 21_337),
                )[0],
            },
            {
                "name": "the standard base64 alphabet",
                "reason": "malformed",
                "token": base64.b64encode(bytes(blob)).decode().rstrip("="),
            },
            {"name": "padded", "reason": "malformed", "token": good + "="},
            {"name": "one character short", "reason": "malformed", "token": good[:-1]},
            {"name": "129 characters", "reason": "too_large", "token": good + "A" * 58},
        ],
    }


def main() -> None:
    document = {
        "format": "lbkit.waitingroom.cookies token format version 1: base64url (no padding) of "
        "version u8 | key id u8 | room tag (BLAKE2b-16, person 'lbkit wr room', of the binding) "
        "| nonce 12 | AES-GCM-SIV(payload, associated data = the 4 header bytes + binding); "
        "binding = u8 length of the UTF-8 room id + room id + cookie name; payload (big-endian) "
        "= bucket_id u32 | last_check_in u40 ms after bucket_id * 60 s | accepted_at u40 ms "
        "after it (2**40 - 1 while queued) | expires_at u32 ms after last_check_in | "
        "refresh_interval u24 ms",
        "vectors": [vector(case) for case in CASES],
        "rejects": rejects(),
    }
    # The standard-alphabet entry only tests something if the token has a '-' or '_'.
    standard = document["rejects"]["tokens"][7]["token"]
    assert "+" in standard or "/" in standard
    path = Path(__file__).with_name("waitingroom_cookies.json")
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
