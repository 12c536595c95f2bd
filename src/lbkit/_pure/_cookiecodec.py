"""Queue-cookie codec, reference implementation: the byte work of
:mod:`lbkit.waitingroom.cookies` around the cipher calls.

* :func:`encode_token` and :func:`decode_token`: unpadded base64url (RFC 4648 section 5), the
  decoder canonical, so exactly one token decodes to each blob;
* :func:`pack_payload` and :func:`cookie_fields`: the 21-byte payload of a version 1 token
  (big-endian)::

    bucket_id u32 | last_check_in u40 | accepted_at u40 | expires_at u32 | refresh_interval u24

  ``last_check_in`` and ``accepted_at`` in milliseconds after the bucket's start
  (``bucket_id * 60_000`` ms; ``accepted_at`` is ``2**40 - 1`` while queued), ``expires_at`` in
  milliseconds after ``last_check_in``, ``refresh_interval`` in milliseconds.

Arguments arrive validated (:class:`~lbkit.waitingroom.cookies.QueueCookie` checks the ranges
and :meth:`~lbkit.waitingroom.cookies.CookieSealer.open` the token's type and length). What
would be unsafe or lossy is still refused here, the same way on both paths: a token that is not
a str (TypeError), a payload field outside its width (ValueError; never truncated) and a
payload of the wrong size (ValueError). Times come back
as ``whole milliseconds / 1000``: every integer involved is below 2**53, so the int true
division here and the C ``double`` division of ``_fast/_cookiecodec.pyx`` are both the
correctly rounded quotient, and the two paths give the same floats.
"""

from __future__ import annotations

import binascii
import struct

#: Bytes in a version 1 payload.
PAYLOAD_SIZE = 21
#: Bytes in a version 1 token before base64url: header 4, nonce 12, ciphertext and tag 37.
BLOB_SIZE = 53
#: Characters in a version 1 token: 53 bytes of unpadded base64url.
TOKEN_LENGTH = 71

_BUCKET_MS = 60_000
_QUEUED = 2**40 - 1
_M32 = 0xFFFFFFFF
_MAX_U24 = 2**24 - 1
_MAX_U32 = 2**32 - 1
_MAX_U40 = 2**40 - 1
# bucket_id | last_check_in hi, lo | accepted_at hi, lo | expires_at | refresh_interval hi, lo
_PAYLOAD = struct.Struct(">IBIBIIBH")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# '+', '/' and '=' become '!', a character binascii discards, so a token holding one decodes
# to fewer bytes than a canonical one.
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/!!!")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The last of 71 characters carries 2 unused bits, zero in canonical base64.
_CANONICAL_LAST = frozenset(_ALPHABET[::4])
_a2b_base64 = binascii.a2b_base64
_b2a_base64 = binascii.b2a_base64
_unpack = _PAYLOAD.unpack

assert _PAYLOAD.size == PAYLOAD_SIZE
assert (BLOB_SIZE * 4 + 2) // 3 == TOKEN_LENGTH


def encode_token(blob: bytes) -> str:
    """The unpadded base64url text of ``blob`` (any length): 71 characters for a 53-byte blob."""
    return _b2a_base64(blob, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> tuple[bytes, bytes, bytes] | None:
    """The blob a token encodes, split into header (4 bytes), nonce (12) and sealed payload
    (37): ``None`` unless ``token`` is the canonical unpadded base64url of 53 bytes.

    Canonical: 71 characters of the base64url alphabet, the last one's two unused bits zero,
    so that :func:`encode_token` of the blob gives ``token`` back and changing any character
    of a token changes its blob or makes it undecodable.
    """
    if not isinstance(token, str):
        raise TypeError(f"token is {type(token).__name__}; it must be a str")
    if len(token) != TOKEN_LENGTH:
        return None
    try:
        blob = _a2b_base64(token.encode("ascii").translate(_FROM_URLSAFE) + b"=")
    except (UnicodeEncodeError, binascii.Error):
        return None
    # Of 71 valid characters, only the last has unused bits; a discarded character (anything
    # outside the alphabet) leaves fewer than 53 bytes or a padding error.
    if len(blob) != BLOB_SIZE or token[-1] not in _CANONICAL_LAST:
        return None
    return blob[:4], blob[4:16], blob[16:]


def pack_payload(
    bucket_id: int, last_check_in: int, accepted_at: int, expiry: int, refresh_interval: int
) -> bytes:
    """The 21-byte payload of a cookie: ``bucket_id`` (u32), ``last_check_in`` and
    ``accepted_at`` (u40, ms after the bucket's start, ``2**40 - 1`` while queued), ``expiry``
    (u32, ms after the last check-in) and ``refresh_interval`` (u24, ms), big-endian.

    Raises:
        ValueError: a field outside its width.
    """
    for name, value, largest in (
        ("bucket_id", bucket_id, _MAX_U32),
        ("last_check_in", last_check_in, _MAX_U40),
        ("accepted_at", accepted_at, _MAX_U40),
        ("expiry", expiry, _MAX_U32),
        ("refresh_interval", refresh_interval, _MAX_U24),
    ):
        if not 0 <= value <= largest:
            raise ValueError(f"{name} is {value}; it must be in 0..{largest}")
    return _PAYLOAD.pack(
        bucket_id,
        last_check_in >> 32,
        last_check_in & _M32,
        accepted_at >> 32,
        accepted_at & _M32,
        expiry,
        refresh_interval >> 16,
        refresh_interval & 0xFFFF,
    )


def cookie_fields(payload: bytes) -> dict[str, object]:
    """The fields a 21-byte payload holds, as a ``QueueCookie``'s ``__dict__``: ``bucket_id``
    (int), ``last_check_in``, ``refresh_interval``, ``expires_at`` (seconds, float),
    ``accepted_at`` (seconds, or ``None`` while queued) and ``_payload`` (``payload`` itself).

    Raises:
        ValueError: ``payload`` is not 21 bytes.
    """
    if len(payload) != PAYLOAD_SIZE:
        raise ValueError(f"payload is {len(payload)} bytes; a payload is {PAYLOAD_SIZE}")
    bucket_id, check_hi, check_lo, accepted_hi, accepted_lo, expiry, refresh_hi, refresh_lo = (
        _unpack(payload)
    )
    start = bucket_id * _BUCKET_MS
    last_check_in = start + (check_hi << 32 | check_lo)
    accepted = accepted_hi << 32 | accepted_lo
    return {
        "bucket_id": bucket_id,
        "last_check_in": last_check_in / 1000,
        "refresh_interval": (refresh_hi << 16 | refresh_lo) / 1000,
        "expires_at": (last_check_in + expiry) / 1000,
        "accepted_at": None if accepted == _QUEUED else (start + accepted) / 1000,
        "_payload": payload,
    }
