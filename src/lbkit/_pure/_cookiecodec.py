"""Queue-cookie codec, reference implementation: the byte work of
:mod:`lbkit.waitingroom.cookies` around the cipher calls.

* :func:`encode_token` and :func:`decode_token`: unpadded base64url (RFC 4648 section 5), the
  decoder canonical, so exactly one token decodes to each blob;
* :func:`open_token` and :func:`seal_milliseconds`: a whole cookie round trip around the
  cipher call, one kernel call each way (decode, key lookup, decrypt, read; check, pack,
  encrypt, encode), for the room's per-request path;
* :func:`pack_milliseconds`, :func:`pack_payload` and :func:`cookie_fields`: the 21-byte payload
  of a version 1 token (big-endian)::

    bucket_id u32 | last_check_in u40 | accepted_at u40 | expires_at u32 | refresh_interval u24

  ``last_check_in`` and ``accepted_at`` in milliseconds after the bucket's start
  (``bucket_id * 60_000`` ms; ``accepted_at`` is ``2**40 - 1`` while queued), ``expires_at`` in
  milliseconds after ``last_check_in``, ``refresh_interval`` in milliseconds.

Arguments arrive validated (:class:`~lbkit.waitingroom.cookies.QueueCookie` checks the ranges
and :meth:`~lbkit.waitingroom.cookies.CookieSealer.open` the token's type and length). What
would be unsafe or lossy is still refused here, the same way on both paths: a token that is not
a str (TypeError), a payload field outside its width (ValueError; never truncated), a payload
of the wrong size (ValueError), and a cookie in milliseconds that the format cannot hold
(:func:`pack_milliseconds` and :func:`seal_milliseconds` return ``None``, so that the caller
raises the error that names the field). Times come back
as ``whole milliseconds / 1000``: every integer involved is below 2**53, so the int true
division here and the C ``double`` division of ``_fast/_cookiecodec.pyx`` are both the
correctly rounded quotient, and the two paths give the same floats.
"""

from __future__ import annotations

import binascii
import struct
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag

#: Bytes in a version 1 payload.
PAYLOAD_SIZE = 21
#: Bytes in a version 1 token before base64url: header 4, nonce 12, ciphertext and tag 37.
BLOB_SIZE = 53
#: Characters in a version 1 token: 53 bytes of unpadded base64url.
TOKEN_LENGTH = 71
#: What :func:`open_token` returns instead of fields: the token is not the canonical unpadded
#: base64url of a 53-byte blob.
NOT_CANONICAL = 1
#: ... no cipher is registered for the token's 4-byte header (version, key id, room tag).
NO_CIPHER = 2
#: ... the cipher refused the token (InvalidTag): altered, or sealed with another key.
NOT_AUTHENTIC = 3

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
_new_object = object.__new__
_set_field = object.__setattr__
_Cookie = TypeVar("_Cookie")

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


def pack_milliseconds(
    bucket_id: int,
    last_check_in: int,
    refresh_interval: int,
    expires_at: int,
    accepted_at: int | None,
) -> bytes | None:
    """The payload of a cookie given in whole milliseconds since the epoch (``bucket_id`` a
    minute number, ``accepted_at`` ``None`` while queued), or ``None`` unless every value is
    an int (not a bool) that the format holds: ``bucket_id`` in 0..2**32 - 1,
    ``last_check_in`` from the bucket's start to 2**40 - 1 ms later, ``accepted_at`` from the
    bucket's start to 2**40 - 2 ms later (2**40 - 1 is the queued mark), ``expires_at`` from
    ``last_check_in`` to 2**32 - 1 ms later, ``refresh_interval`` in 1..2**24 - 1. ``None``
    lets the caller name the fault; a value is never truncated or clamped.
    """
    if (
        bucket_id.__class__ is not int
        or last_check_in.__class__ is not int
        or refresh_interval.__class__ is not int
        or expires_at.__class__ is not int
        or (accepted_at is not None and accepted_at.__class__ is not int)
    ):
        return None
    if not 0 <= bucket_id <= _MAX_U32:
        return None
    start = bucket_id * _BUCKET_MS
    check = last_check_in - start
    expiry = expires_at - last_check_in
    if not (
        0 <= check <= _MAX_U40 and 0 <= expiry <= _MAX_U32 and 1 <= refresh_interval <= _MAX_U24
    ):
        return None
    if accepted_at is None:
        accepted = _QUEUED
    else:
        accepted = accepted_at - start
        if not 0 <= accepted < _QUEUED:
            return None
    return _PAYLOAD.pack(
        bucket_id,
        check >> 32,
        check & _M32,
        accepted >> 32,
        accepted & _M32,
        expiry,
        refresh_interval >> 16,
        refresh_interval & 0xFFFF,
    )


def seal_milliseconds(
    sealing: tuple[Any, bytes, bytes],
    nonce: bytes,
    cookie_type: type[_Cookie],
    bucket_id: int,
    last_check_in: int,
    refresh_interval: int,
    expires_at: int,
    accepted_at: int | None,
) -> tuple[str, _Cookie] | None:
    """A new cookie, sealed: ``(token, cookie)``, where ``cookie`` is a ``cookie_type`` made
    by :func:`new_cookie` from the payload's fields, or ``None`` when :func:`pack_milliseconds`
    refuses the values. ``sealing`` is ``(cipher, associated data, 4-byte header)``; the
    token is the unpadded base64url of ``header + nonce + cipher.encrypt(nonce, payload,
    associated data)``.

    Raises:
        TypeError, ValueError: what ``cipher.encrypt`` raises (a nonce of the wrong size).
    """
    payload = pack_milliseconds(bucket_id, last_check_in, refresh_interval, expires_at, accepted_at)
    if payload is None:
        return None
    cipher, associated, header = sealing
    blob = header + nonce + cipher.encrypt(nonce, payload, associated)
    return encode_token(blob), new_cookie(cookie_type, cookie_fields(payload))


def reseal_milliseconds(
    sealing: tuple[Any, bytes, bytes],
    nonce: bytes,
    cookie_type: type[_Cookie],
    payload: bytes,
    last_check_in: int,
    expires_at: int,
) -> tuple[str, _Cookie] | None:
    """:func:`seal_milliseconds` for the cookie whose 21-byte ``payload`` is given, with a new
    ``last_check_in`` and ``expires_at`` (milliseconds since the epoch) and its bucket,
    refresh interval and admission as they are: what renewing a session changes. ``None``
    when :func:`pack_milliseconds` refuses the new times.

    Raises:
        ValueError: ``payload`` is not 21 bytes; what ``cipher.encrypt`` raises.
    """
    if len(payload) != PAYLOAD_SIZE:
        raise ValueError(f"payload is {len(payload)} bytes; a payload is {PAYLOAD_SIZE}")
    bucket_id, _, _, accepted_hi, accepted_lo, _, refresh_hi, refresh_lo = _unpack(payload)
    accepted = accepted_hi << 32 | accepted_lo
    return seal_milliseconds(
        sealing,
        nonce,
        cookie_type,
        bucket_id,
        last_check_in,
        refresh_hi << 16 | refresh_lo,
        expires_at,
        None if accepted == _QUEUED else bucket_id * _BUCKET_MS + accepted,
    )


def open_token(
    token: str, ciphers: dict[bytes, tuple[Any, bytes]], cookie_type: type[_Cookie]
) -> _Cookie | int:
    """The cookie a token seals, a ``cookie_type`` made by :func:`new_cookie` from the
    payload's fields, or why not: :data:`NOT_CANONICAL`, :data:`NO_CIPHER` (``ciphers``, keyed
    by the token's 4-byte header, has no ``(cipher, associated data)`` for it) or
    :data:`NOT_AUTHENTIC` (the cipher raised ``InvalidTag``). Expiry is the caller's to check.

    Raises:
        TypeError: ``token`` is not a str.
    """
    parts = decode_token(token)
    if parts is None:
        return NOT_CANONICAL
    header, nonce, sealed = parts
    entry = ciphers.get(header)
    if entry is None:
        return NO_CIPHER
    cipher, associated = entry
    try:
        payload = cipher.decrypt(nonce, sealed, associated)
    except InvalidTag:
        return NOT_AUTHENTIC
    return new_cookie(cookie_type, cookie_fields(payload))


def new_cookie(cookie_type: type[_Cookie], fields: dict[str, object]) -> _Cookie:
    """An instance of ``cookie_type`` whose ``__dict__`` is ``fields``, made without calling
    its ``__init__`` or its ``__setattr__`` (a frozen class refuses that one): what the fields
    of a checked payload become."""
    cookie = _new_object(cookie_type)
    _set_field(cookie, "__dict__", fields)
    return cookie
