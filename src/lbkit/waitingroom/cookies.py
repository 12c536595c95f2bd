"""The waiting room's queue cookie: a compact payload sealed with AES-GCM-SIV, and the
``Set-Cookie`` header that carries it.

A queued or admitted user holds their state in a cookie, as in Cloudflare Waiting Room: the
minute they arrived (``bucket_id``), when they were admitted, when they last checked in, their
own jittered refresh interval and when the cookie expires. The proxy keeps no per-user state;
it trusts what it sealed itself and nothing else.

>>> keyring = Keyring({1: bytes(32)}, primary=1)  # a real key comes from new_key()
>>> sealer = CookieSealer(keyring, room_id="shop", cookie_name="__lbkit_wr")
>>> cookie = QueueCookie(bucket_id=28_000_000, last_check_in=1_680_000_012.5,
...                      refresh_interval=21.337, expires_at=1_680_000_312.5)
>>> token = sealer.seal(cookie)
>>> len(token)
71
>>> sealer.open(token, now=1_680_000_030.0) == cookie
True
>>> sealer.open(token, now=1_680_000_312.5)
Traceback (most recent call last):
...
lbkit.errors.InvalidCookie: the cookie expired at 1680000312.5; now is 1680000312.5

**Token format, version 1.** The token is the unpadded base64url (RFC 4648 section 5)
encoding of 53 bytes, so always 71 characters; integers are big-endian::

    format version u8 = 1 | key id u8 | room tag 2 bytes | nonce 12 bytes
    | AES-GCM-SIV ciphertext of the 21-byte payload | authentication tag 16 bytes

    payload: bucket_id u32 (minutes since time 0)
             | last_check_in u40 (ms after the bucket's start, bucket_id * 60 s)
             | accepted_at u40 (ms after the bucket's start; 2**40 - 1 while queued)
             | expires_at u32 (ms after last_check_in)
             | refresh_interval u24 (ms, >= 1)

The associated data, authenticated but not encrypted, is the 4-byte header followed by the
room id's UTF-8 length (u8), the room id and the cookie name (``CookieSettings.name``, without
any ``__Host-`` prefix). So the format version, the key id, the room and the cookie name are
all bound to the ciphertext: changing any of them fails authentication.

Times are seconds (``now``, as everywhere in lbkit) held to the millisecond: a
:class:`QueueCookie` rounds each time to the nearest millisecond when it is built, and what it
holds is exactly what a seal and an open give back. Ranges are checked when the cookie is
built, so nothing is truncated when it is packed: every time is >= its bucket's start and at
most 2**40 - 1 ms (34.8 years) after it, a cookie expires at most 2**32 - 1 ms (49.7 days)
after the last check-in, and a refresh interval is 1 ms to 2**24 - 1 ms (4.66 hours).

**Choices the issue leaves open.**

* *Key ids* are 0..255, one byte in clear in the header: :meth:`CookieSealer.open` finds the
  key with one dict lookup and never tries keys in turn. Rotate by adding a key under a new id
  as the primary (new cookies are sealed with it) and retiring the old id once every cookie it
  sealed has expired; ids can be reused after that.
* *Wrong room.* A cookie sealed for another room fails authentication like an altered one. To
  tell the two apart in logs, the header carries a *room tag*: the first two bytes of BLAKE2b
  (personalised ``b"lbkit wr room"``) of the room id and cookie name. It is not keyed, so a
  key mismatch within one room still reads as ``tampered`` and a room mismatch as
  ``wrong_room`` whatever the keys. The tag is a label, not a defence: it is bound as
  associated data like the rest of the header, it reveals only which room a cookie is for
  (which its name and domain show anyway), and an altered tag is reported as ``wrong_room``.
  Two rooms share a tag with probability 1/65,536; their cookies are then reported as
  ``tampered``. Either way the cookie is refused.
* *Order of checks* in :meth:`CookieSealer.open`: length (``too_large`` above
  :data:`MAX_TOKEN_LENGTH`, before any decoding work; ``malformed`` if not exactly
  :data:`TOKEN_LENGTH`), canonical base64url and format version (``malformed``), room tag
  (``wrong_room``), key id (``unknown_key``), authentication (``tampered``), expiry
  (``expired``: a cookie is valid while ``now < expires_at``, so it has expired at exactly
  ``expires_at``). The base64url must be canonical (exactly one token encodes each byte
  string), so changing any single character of a token is always detected.

**Threat model.** Without a key, a user cannot forge a cookie or change one (for example to
move to an older bucket, or to mark themselves admitted): AES-GCM-SIV authenticates every
byte of the token, and the base64url is canonical. A cookie sealed for one room, or under one
cookie name, is refused by every other. A user who refreshes before their interval has passed
gains nothing, because their interval and last check-in are sealed in the cookie (the
waiting room enforces the rule). AES-GCM-SIV (RFC 8452) takes a
random 96-bit nonce per cookie and derives a fresh key per nonce, and a repeated nonce only
reveals that two cookies held identical contents, so the nonce volume of a large room (a
million users refreshing every 20 s seal 4.3 billion cookies a day, past AES-GCM's limit of
2**32 random nonces per key) is safe. What it does not stop: a user copying their cookie to
another browser or sharing it (a cookie is a bearer token; replay within its lifetime and room
is allowed), or replaying an older cookie of their own before it expires (an admitted user can
only prolong access they had). Retired keys no longer open anything; a leaked key lets its
holder mint cookies until it is retired.

**Implementation.** The cryptography is in the ``cryptography`` package (OpenSSL). The byte
work around it, the canonical base64url of the token and the packing and unpacking of the
payload, is the ``cookiecodec`` kernel (``lbkit._pure._cookiecodec``, the specification, and
its compiled mirror): done with ``binascii``, ``bytes.translate``, ``struct``, slices and
shifts, it took about a dozen Python-level calls per round trip, a third of its cost beside
the few microseconds of the cipher calls. Compiled, :meth:`CookieSealer.open` is one kernel
call (decode, find the key by the header, decrypt, read the fields into a cookie), and so is
:meth:`CookieSealer.seal_milliseconds`, what a waiting room seals with (check the ranges,
pack, encrypt, encode). The checks and the error messages stay here, once, on both paths.
Nonces come 341 at a time from one ``os.urandom`` call (see ``nonce_source``).
``benchmarks/test_waitingroom_cookies.py`` times a round trip beside the bare cipher calls and
Fernet.
"""

from __future__ import annotations

import binascii
import hashlib
import itertools
import math
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, NoReturn

import attrs
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from lbkit import _kernels
from lbkit._pure import _cookiecodec as _pure_codec
from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, InvalidCookie
from lbkit.waitingroom.config import CookieSettings, WaitingRoomConfig

__all__ = [
    "BUCKET_SECONDS",
    "FORMAT_VERSION",
    "HOST_PREFIX",
    "KEY_SIZES",
    "MAX_COOKIE_LIFETIME",
    "MAX_KEY_ID",
    "MAX_REFRESH_INTERVAL",
    "MAX_TOKEN_LENGTH",
    "REASONS",
    "TOKEN_LENGTH",
    "CookieSealer",
    "Keyring",
    "QueueCookie",
    "bucket_for",
    "cookie_from_milliseconds",
    "decode_key",
    "encode_key",
    "new_key",
    "parse_cookie_header",
    "prefixed_name",
    "read_cookie",
    "set_cookie_header",
]

#: The token format this module writes and reads.
FORMAT_VERSION: Final = 1
#: Seconds per bucket; ``bucket_id`` is the arrival time // 60 s.
BUCKET_SECONDS: Final = 60
#: AES-GCM-SIV keys are 16 (AES-128) or 32 (AES-256) bytes.
KEY_SIZES: Final = (16, 32)
#: Key ids are one byte in the token header.
MAX_KEY_ID: Final = 255
#: Every version 1 token is this many characters long.
TOKEN_LENGTH: Final = 71
#: Tokens longer than this are refused (``too_large``) before any decoding work.
MAX_TOKEN_LENGTH: Final = 128
#: The ``reason`` of an :class:`~lbkit.errors.InvalidCookie`.
REASONS: Final = ("malformed", "unknown_key", "tampered", "expired", "wrong_room", "too_large")
#: The prefix browsers reserve for Secure, host-only cookies with ``Path=/``.
HOST_PREFIX: Final = "__Host-"
#: The longest refresh interval a cookie holds in seconds (2**24 - 1 ms); a room's
#: ``refresh_interval * (1 + refresh_jitter)`` must not exceed it.
MAX_REFRESH_INTERVAL: Final = 16_777.215
#: The longest a cookie may stay valid after the last check-in in seconds (2**32 - 1 ms, 49.7
#: days); a room's ``session_duration`` and ``queued_cookie_lifetime`` must not exceed it.
MAX_COOKIE_LIFETIME: Final = 4_294_967.295

_NONCE_SIZE = 12
_HEADER_SIZE = 4
_TAG_SIZE = 16
_BUCKET_MS = BUCKET_SECONDS * 1000
_MAX_BUCKET_ID = 2**32 - 1
_MAX_OFFSET = 2**40 - 1  # a time after its bucket's start, in ms
_QUEUED = 2**40 - 1  # accepted_at's value while queued
_MAX_EXPIRY_DELAY = 2**32 - 1  # expires_at after last_check_in, in ms
_MAX_REFRESH = 2**24 - 1
_PAYLOAD_SIZE = 21  # packed and unpacked by the cookiecodec kernel (lbkit._pure._cookiecodec)
_BLOB_SIZE = _HEADER_SIZE + _NONCE_SIZE + _PAYLOAD_SIZE + _TAG_SIZE
_ROOM_PERSON = b"lbkit wr room"
# For keys (encode_key, decode_key); tokens go through the cookiecodec kernel.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/!!!")
_INFINITY = math.inf
_PADDING = (b"", b"", b"==", b"=")  # by length % 4; 1 is never valid
# RFC 6265 cookie-octet: visible ASCII except '"', ',', ';' and '\'.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3A\x3C-\x7E]+")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

assert _PAYLOAD_SIZE == _pure_codec.PAYLOAD_SIZE
assert round(MAX_REFRESH_INTERVAL * 1000) == _MAX_REFRESH
assert round(MAX_COOKIE_LIFETIME * 1000) == _MAX_EXPIRY_DELAY
assert _BLOB_SIZE == _pure_codec.BLOB_SIZE
assert (_BLOB_SIZE * 4 + 2) // 3 == TOKEN_LENGTH == _pure_codec.TOKEN_LENGTH


# Not slotted: a cookie keeps its packed payload in its __dict__ beside the fields (attrs.asdict,
# repr and == see only the fields), and an opened cookie is built with one __dict__ assignment
# instead of six object.__setattr__ calls, the costliest Python step of CookieSealer.open.
@attrs.frozen(slots=False, init=False)
class QueueCookie:
    """What a user's cookie holds: their arrival minute, their admission, their last check-in,
    their refresh interval and the cookie's expiry. Times are seconds, rounded to the nearest
    millisecond when the cookie is built (so they round-trip exactly through a seal).

    Args:
        bucket_id: the minute the user arrived, ``arrival // 60`` (see :func:`bucket_for`), an
            int in 0..2**32 - 1.
        last_check_in: when the user last checked in, seconds: from the bucket's start
            (``bucket_id * 60``) to 2**40 - 1 ms later.
        refresh_interval: this user's jittered refresh interval, seconds, 0.001..16777.215.
        expires_at: when the cookie stops being accepted, seconds: from ``last_check_in`` to
            2**32 - 1 ms (49.7 days) later.
        accepted_at: when the user was admitted, in the same range as ``last_check_in``, or
            ``None`` while they are queued.

    Raises:
        InvalidArgument: a value out of range, NaN or infinite (after rounding to the
            millisecond).
        ArgumentTypeError: a value of the wrong type.

    Runtime complexity: O(1).

    >>> cookie = QueueCookie(bucket_id=2, last_check_in=130.0004, refresh_interval=20,
    ...                      expires_at=430.0)
    >>> cookie.last_check_in, cookie.refresh_interval, cookie.state
    (130.0, 20.0, 'queued')
    >>> QueueCookie(bucket_id=2, last_check_in=100.0, refresh_interval=20, expires_at=430.0)
    Traceback (most recent call last):
    ...
    lbkit.errors.InvalidArgument: last_check_in is 100.0; ...from 120.0 (the start of bucket 2)...
    """

    bucket_id: int
    last_check_in: float
    refresh_interval: float
    expires_at: float
    accepted_at: float | None = None

    def __init__(
        self,
        *,
        bucket_id: int,
        last_check_in: float,
        refresh_interval: float,
        expires_at: float,
        accepted_at: float | None = None,
    ) -> None:
        # A waiting room builds a cookie per request: the common case (an int and floats, all
        # in range) is checked with attribute loads, arithmetic and comparisons only; anything
        # else goes through _checked_milliseconds, which raises the precise error.
        fast = (
            bucket_id.__class__ is int
            and last_check_in.__class__ is float
            and refresh_interval.__class__ is float
            and expires_at.__class__ is float
            and (accepted_at is None or accepted_at.__class__ is float)
            and 0 <= bucket_id <= _MAX_BUCKET_ID
        )
        if fast:
            try:
                start = bucket_id * _BUCKET_MS
                # round() is exact for a time already on the millisecond grid (time * 1000 is
                # within an ulp of the integer): building a cookie from an opened one, or
                # again from its own fields, changes nothing.
                check = round(last_check_in * 1000.0)
                expires = round(expires_at * 1000.0)
                refresh = round(refresh_interval * 1000.0)
                accepted = _QUEUED if accepted_at is None else round(accepted_at * 1000.0) - start
            except (ValueError, OverflowError):  # NaN or infinite
                fast = False
            else:
                fast = (
                    start <= check <= start + _MAX_OFFSET
                    and check <= expires <= check + _MAX_EXPIRY_DELAY
                    and 1 <= refresh <= _MAX_REFRESH
                    and 0 <= accepted <= _QUEUED
                    and (accepted < _QUEUED or accepted_at is None)
                )
        if not fast:
            start, check, expires, refresh, accepted = _checked_milliseconds(
                bucket_id, last_check_in, refresh_interval, expires_at, accepted_at
            )
        # The packed payload is computed once, here (the checks need its integers anyway), or
        # taken as is from an opened token, so seal() packs nothing. It lives in __dict__
        # beside the fields; attrs' ==, hash, repr and asdict see only the fields.
        _set_field(
            self,
            "__dict__",
            {
                "bucket_id": bucket_id,
                "last_check_in": check / 1000,
                "refresh_interval": refresh / 1000,
                "expires_at": expires / 1000,
                "accepted_at": None if accepted == _QUEUED else (start + accepted) / 1000,
                "_payload": _kernels.cookiecodec.pack_payload(
                    bucket_id, check - start, accepted, expires - check, refresh
                ),
            },
        )

    @property
    def state(self) -> str:
        """``"queued"`` before admission, ``"admitted"`` after (``accepted_at`` is set).

        Runtime complexity: O(1).

        >>> QueueCookie(bucket_id=0, last_check_in=5.0, refresh_interval=20.0,
        ...             expires_at=305.0, accepted_at=5.0).state
        'admitted'
        """
        return "queued" if self.accepted_at is None else "admitted"

    @property
    def bucket_start(self) -> float:
        """The start of the user's arrival minute in seconds, ``bucket_id * 60``.

        Runtime complexity: O(1).

        >>> QueueCookie(bucket_id=3, last_check_in=200.0, refresh_interval=20.0,
        ...             expires_at=500.0).bucket_start
        180.0
        """
        return float(self.bucket_id * BUCKET_SECONDS)


def _checked_milliseconds(
    bucket_id: object,
    last_check_in: object,
    refresh_interval: object,
    expires_at: object,
    accepted_at: object,
) -> tuple[int, int, int, int, int]:
    """A cookie's values as ``(bucket start, last check-in, expiry, refresh interval, accepted
    offset or _QUEUED)`` in milliseconds, or the error that names what is wrong."""
    if isinstance(bucket_id, bool) or not isinstance(bucket_id, int):
        raise ArgumentTypeError(f"bucket_id is {type(bucket_id).__name__}; it must be an int")
    if not 0 <= bucket_id <= _MAX_BUCKET_ID:
        raise InvalidArgument(
            f"bucket_id is {bucket_id}; it must be an int in 0..{_MAX_BUCKET_ID} "
            "(the arrival minute)"
        )
    start = bucket_id * _BUCKET_MS
    within_bucket = f"(the start of bucket {bucket_id})"
    check = _milliseconds(last_check_in, "last_check_in", start, start + _MAX_OFFSET, within_bucket)
    accepted = _QUEUED
    if accepted_at is not None:
        accepted = (
            _milliseconds(accepted_at, "accepted_at", start, start + _MAX_OFFSET - 1, within_bucket)
            - start
        )
    expires = _milliseconds(
        expires_at, "expires_at", check, check + _MAX_EXPIRY_DELAY, "(last_check_in)"
    )
    refresh = _milliseconds(refresh_interval, "refresh_interval", 1, _MAX_REFRESH, "")
    return start, check, expires, refresh, accepted


def _milliseconds(value: object, name: str, low: int, high: int, low_note: str) -> int:
    """``value`` seconds as whole milliseconds, checked to lie in ``low..high`` ms."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    if isinstance(value, int):
        milliseconds = value * 1000
    else:
        # round() is exact for a value already on the millisecond grid (value * 1000 is within
        # an ulp of the integer), so building a cookie from an opened one changes nothing.
        scaled = value * 1000.0
        milliseconds = round(scaled) if math.isfinite(scaled) else -1
    if not low <= milliseconds <= high:
        note = f" {low_note}" if low_note else ""
        raise InvalidArgument(
            f"{name} is {value!r}; it must be a finite number of seconds from "
            f"{low / 1000!r}{note} to {high / 1000!r}"
        )
    return milliseconds


_set_field = object.__setattr__


def cookie_from_milliseconds(
    bucket_id: int,
    last_check_in: int,
    refresh_interval: int,
    expires_at: int,
    accepted_at: int | None,
) -> QueueCookie:
    """A :class:`QueueCookie` from times in whole milliseconds (ints): what a waiting room,
    which works in milliseconds, builds per request. Equal to
    ``QueueCookie(bucket_id=..., last_check_in=last_check_in / 1000, ...)``, with the same
    range checks; in range it packs and unpacks in the ``cookiecodec`` kernel instead of
    rounding each float in Python.

    Raises:
        InvalidArgument: a value out of range (from :class:`QueueCookie`).
        ArgumentTypeError: a value that is not an int (or ``None`` for ``accepted_at``).

    Runtime complexity: O(1).

    >>> cookie_from_milliseconds(2, 130_000, 20_000, 430_000, None) == QueueCookie(
    ...     bucket_id=2, last_check_in=130.0, refresh_interval=20.0, expires_at=430.0)
    True
    """
    codec = _kernels.cookiecodec
    payload = codec.pack_milliseconds(
        bucket_id, last_check_in, refresh_interval, expires_at, accepted_at
    )
    if payload is not None:
        return codec.new_cookie(QueueCookie, codec.cookie_fields(payload))
    # Out of range or of the wrong type: the constructor names the fault.
    for name, value in (
        ("bucket_id", bucket_id),
        ("last_check_in", last_check_in),
        ("refresh_interval", refresh_interval),
        ("expires_at", expires_at),
        ("accepted_at", accepted_at),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ArgumentTypeError(
                f"{name} is {type(value).__name__}; it must be an int of milliseconds"
            )
    return QueueCookie(
        bucket_id=bucket_id,
        last_check_in=last_check_in / 1000,
        refresh_interval=refresh_interval / 1000,
        expires_at=expires_at / 1000,
        accepted_at=None if accepted_at is None else accepted_at / 1000,
    )


def bucket_for(now: float) -> int:
    """The bucket (arrival minute) of a user arriving at ``now``: ``now // 60``, computed on the
    millisecond grid the cookie uses, so a cookie with ``last_check_in=now`` always fits.

    Raises:
        InvalidArgument: ``now`` is not a finite number of seconds in the buckets' range.
        ArgumentTypeError: ``now`` is not a number.

    Runtime complexity: O(1).

    >>> bucket_for(0.0), bucket_for(59.9996), bucket_for(1_680_000_012.5)
    (0, 1, 28000000)
    """
    milliseconds = _milliseconds(now, "now", 0, (_MAX_BUCKET_ID + 1) * _BUCKET_MS - 1, "")
    return milliseconds // _BUCKET_MS


class Keyring:
    """AES-GCM-SIV keys by key id, and the primary key id that new cookies are sealed with.

    A keyring never shows its keys: its ``repr`` lists the key ids only.

    Args:
        keys: key id (an int in 0..255) to key (``bytes`` of 16 or 32 bytes).
        primary: the key id new cookies are sealed with; one of ``keys``.

    Raises:
        ConfigError: no keys, a key id out of range, a key of the wrong size, a primary that
            is not among the keys.
        ArgumentTypeError: a key id or key of the wrong type.

    Runtime complexity: O(len(keys)) to build; O(1) per lookup.

    >>> keyring = Keyring({1: bytes(16), 2: bytes(32)}, primary=2)
    >>> keyring
    Keyring(key_ids=(1, 2), primary=2)
    >>> keyring.retire(1).key_ids
    (2,)
    """

    __slots__ = ("_keys", "_primary")

    def __init__(self, keys: Mapping[int, bytes], *, primary: int) -> None:
        if not isinstance(keys, Mapping):
            raise ArgumentTypeError(
                f"keys is {type(keys).__name__}; it must be a mapping of key id to key bytes"
            )
        if not keys:
            raise ConfigError("keys is empty; a keyring needs at least one key")
        checked: dict[int, bytes] = {}
        for key_id, key in keys.items():
            _check_key_id(key_id, "key id")
            if not isinstance(key, bytes):
                raise ArgumentTypeError(
                    f"keys[{key_id}] is {type(key).__name__}; a key must be bytes"
                )
            if len(key) not in KEY_SIZES:
                raise ConfigError(
                    f"keys[{key_id}] is {len(key)} bytes; AES-GCM-SIV keys are 16 or 32 bytes"
                )
            checked[key_id] = key
        _check_key_id(primary, "primary")
        if primary not in checked:
            raise ConfigError(
                f"primary is {primary}; it must be one of the key ids {_ids(checked)}"
            )
        self._keys = dict(sorted(checked.items()))
        self._primary = primary

    @classmethod
    def from_strings(cls, encoded: Iterable[str], *, primary: int) -> Keyring:
        """A keyring from keys in the ``"key_id:base64url"`` form of :func:`encode_key` (as the
        CLI prints them and a configuration file holds them).

        Raises:
            ConfigError: a malformed key, a key id given twice, or what :class:`Keyring`
                refuses.

        Runtime complexity: O(total length).

        >>> Keyring.from_strings([encode_key(7, bytes(16))], primary=7)
        Keyring(key_ids=(7,), primary=7)
        """
        if isinstance(encoded, str):
            raise ArgumentTypeError("encoded is a str; it must be an iterable of encoded keys")
        keys: dict[int, bytes] = {}
        for text in encoded:
            key_id, key = decode_key(text)
            if key_id in keys:
                raise ConfigError(f"key id {key_id} is given twice")
            keys[key_id] = key
        return cls(keys, primary=primary)

    @property
    def primary(self) -> int:
        """The key id new cookies are sealed with.

        Runtime complexity: O(1).

        >>> Keyring({4: bytes(16)}, primary=4).primary
        4
        """
        return self._primary

    @property
    def key_ids(self) -> tuple[int, ...]:
        """Every key id, ascending.

        Runtime complexity: O(number of keys).

        >>> Keyring({9: bytes(16), 3: bytes(16)}, primary=9).key_ids
        (3, 9)
        """
        return tuple(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def key(self, key_id: int) -> bytes:
        """The key with this id.

        Raises:
            KeyError: no key has this id.

        Runtime complexity: O(1).

        >>> len(Keyring({1: bytes(32)}, primary=1).key(1))
        32
        """
        return self._keys[key_id]

    def rotate(self, key_id: int, key: bytes) -> Keyring:
        """A new keyring with ``key`` added under ``key_id`` as the primary; the old keys still
        open the cookies they sealed.

        Raises:
            ConfigError: ``key_id`` is already in use, or what :class:`Keyring` refuses.

        Runtime complexity: O(number of keys).

        >>> Keyring({1: bytes(16)}, primary=1).rotate(2, bytes(32))
        Keyring(key_ids=(1, 2), primary=2)
        """
        if key_id in self._keys:
            raise ConfigError(f"key_id is {key_id}; it is already in use (retire it first)")
        return Keyring({**self._keys, key_id: key}, primary=key_id)

    def retire(self, key_id: int) -> Keyring:
        """A new keyring without ``key_id``: cookies it sealed become ``unknown_key``.

        Raises:
            ConfigError: ``key_id`` is the primary, or not in the keyring.

        Runtime complexity: O(number of keys).

        >>> Keyring({1: bytes(16), 2: bytes(16)}, primary=2).retire(1)
        Keyring(key_ids=(2,), primary=2)
        """
        if key_id == self._primary:
            raise ConfigError(f"key_id is {key_id}, the primary; rotate to another key first")
        if key_id not in self._keys:
            raise ConfigError(f"key_id is {key_id}; it is not one of {_ids(self._keys)}")
        return Keyring(
            {kid: key for kid, key in self._keys.items() if kid != key_id},
            primary=self._primary,
        )

    def __repr__(self) -> str:
        return f"Keyring(key_ids={self.key_ids!r}, primary={self._primary})"


def _check_key_id(key_id: object, name: str) -> None:
    if isinstance(key_id, bool) or not isinstance(key_id, int):
        raise ArgumentTypeError(f"{name} is {type(key_id).__name__}; it must be an int")
    if not 0 <= key_id <= MAX_KEY_ID:
        raise ConfigError(f"{name} is {key_id}; key ids are ints in 0..{MAX_KEY_ID}")


def _ids(keys: Mapping[int, bytes]) -> str:
    return ", ".join(str(key_id) for key_id in sorted(keys))


def new_key(size: int = 32) -> bytes:
    """A fresh random AES-GCM-SIV key from :mod:`secrets`: 32 bytes (AES-256) by default, or 16.

    Raises:
        ConfigError: ``size`` is not 16 or 32.

    Runtime complexity: O(size).

    >>> len(new_key()), len(new_key(16))
    (32, 16)
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise ArgumentTypeError(f"size is {type(size).__name__}; it must be an int")
    if size not in KEY_SIZES:
        raise ConfigError(f"size is {size}; AES-GCM-SIV keys are 16 or 32 bytes")
    return secrets.token_bytes(size)


def encode_key(key_id: int, key: bytes) -> str:
    """A key and its id as text, ``"key_id:base64url"`` (unpadded), for the CLI and
    configuration files. :func:`decode_key` reads it back.

    Raises:
        ConfigError: a key id out of 0..255, a key that is not 16 or 32 bytes.
        ArgumentTypeError: a key id or key of the wrong type.

    Runtime complexity: O(len(key)).

    >>> encode_key(1, bytes(16))
    '1:AAAAAAAAAAAAAAAAAAAAAA'
    """
    Keyring({key_id: key}, primary=key_id)  # the checks, with the keyring's messages
    return f"{key_id}:{_b64url_encode(key)}"


def decode_key(text: str) -> tuple[int, bytes]:
    """The key id and key of a ``"key_id:base64url"`` string from :func:`encode_key`.

    Raises:
        ConfigError: text not of that form, a key id out of range, a key of the wrong size.
        ArgumentTypeError: ``text`` is not a str.

    Runtime complexity: O(len(text)).

    >>> decode_key('1:AAAAAAAAAAAAAAAAAAAAAA')
    (1, b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
    """
    if not isinstance(text, str):
        raise ArgumentTypeError(f"an encoded key is {type(text).__name__}; it must be a str")
    key_id_text, colon, key_text = text.partition(":")
    key = _b64url_decode(key_text) if colon else None
    if not (key_id_text.isascii() and key_id_text.isdigit()) or key is None:
        # Nothing of the text is echoed into the message: it may hold a real key.
        raise ConfigError(
            "an encoded key is not of the form 'key_id:base64url' (a key id in 0..255, a "
            "colon, a 16- or 32-byte key in unpadded base64url)"
        )
    key_id = int(key_id_text)
    Keyring({key_id: key}, primary=key_id)
    return key_id, key


class CookieSealer:
    """Seals :class:`QueueCookie` values into tokens and opens them, for one room and cookie
    name, with the keys of a :class:`Keyring`.

    A sealer is immutable and may be shared by threads. It prepares one cipher and the
    associated data per key id when it is built, so :meth:`open` costs one dict lookup to find
    the key and one decryption, whatever the number of keys.

    Args:
        keys: a :class:`Keyring`, or a mapping of key id to key from which one is built.
        primary: the key id new cookies are sealed with: required with a mapping; with a
            keyring it defaults to the keyring's primary.
        room_id: the room's id (``WaitingRoomConfig.room_id``): a non-empty str of at most
            255 UTF-8 bytes.
        cookie_name: the cookie's name without a ``__Host-`` prefix (``CookieSettings.name``).
        nonce_source: called with 12, returns 12 bytes; by default, bytes of ``os.urandom``
            drawn a block at a time (one system call per 341 nonces; a forked child never
            reuses its parent's block). Pass a
            fixed source only for test vectors.

    Raises:
        ConfigError: a bad room id, cookie name or key (see :class:`Keyring`).
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(number of keys) to build; :meth:`seal` and :meth:`open` are O(1).

    >>> sealer = CookieSealer({1: bytes(16)}, primary=1, room_id="r", cookie_name="wr")
    >>> sealer
    CookieSealer(room_id='r', cookie_name='wr', key_ids=(1,), primary=1)
    """

    __slots__ = (
        "_by_header",
        "_cookie_name",
        "_keyring",
        "_nonces",
        "_room_id",
        "_room_tag",
        "_seal_with",
    )

    def __init__(
        self,
        keys: Mapping[int, bytes] | Keyring,
        *,
        room_id: str,
        cookie_name: str,
        primary: int | None = None,
        nonce_source: Callable[[int], bytes] | None = None,
    ) -> None:
        if isinstance(keys, Keyring):
            keyring = keys if primary is None else Keyring(keys._keys, primary=primary)
        elif primary is None:
            raise ConfigError("primary is None; with a mapping of keys, name the primary key id")
        else:
            keyring = Keyring(keys, primary=primary)
        if not isinstance(room_id, str):
            raise ArgumentTypeError(f"room_id is {type(room_id).__name__}; it must be a str")
        room = room_id.encode("utf-8", "surrogatepass")
        if not room or len(room) > 255:
            raise ConfigError(
                f"room_id is {room_id!r}; it must be a non-empty str of at most 255 UTF-8 bytes"
            )
        if not isinstance(cookie_name, str):
            raise ArgumentTypeError(
                f"cookie_name is {type(cookie_name).__name__}; it must be a str"
            )
        if not _TOKEN.fullmatch(cookie_name):
            raise ConfigError(
                f"cookie_name is {cookie_name!r}; a cookie name must be an HTTP token"
            )
        nonces: list[Iterator[bytes]]
        if nonce_source is None:
            nonces = _RANDOM_NONCES
        elif not callable(nonce_source):
            raise ArgumentTypeError(
                f"nonce_source is {type(nonce_source).__name__}; it must be callable"
            )
        else:
            nonces = [map(nonce_source, itertools.repeat(_NONCE_SIZE))]
        binding = bytes([len(room)]) + room + cookie_name.encode("ascii")
        room_tag = hashlib.blake2b(binding, digest_size=2, person=_ROOM_PERSON).digest()
        # Keyed by the whole 4-byte header: one slice and one dict lookup check the version,
        # the room tag and the key id of a token together; only a miss looks closer.
        by_header: dict[bytes, tuple[AESGCMSIV, bytes]] = {}
        for key_id in keyring.key_ids:
            header = bytes([FORMAT_VERSION, key_id]) + room_tag
            by_header[header] = (AESGCMSIV(keyring.key(key_id)), header + binding)
        primary_header = bytes([FORMAT_VERSION, keyring.primary]) + room_tag
        self._keyring = keyring
        self._room_id = room_id
        self._cookie_name = cookie_name
        self._room_tag = room_tag
        self._nonces = nonces
        self._by_header = by_header
        self._seal_with = (*by_header[primary_header], primary_header)

    @classmethod
    def from_config(
        cls,
        config: WaitingRoomConfig,
        keys: Mapping[int, bytes] | Keyring,
        *,
        primary: int | None = None,
        nonce_source: Callable[[int], bytes] | None = None,
    ) -> CookieSealer:
        """The sealer for a room's configuration: its ``room_id`` and ``cookie.name``.

        Runtime complexity: O(number of keys).

        >>> config = WaitingRoomConfig(total_active_users=10, new_users_per_minute=5,
        ...                            room_id="tickets")
        >>> CookieSealer.from_config(config, Keyring({1: bytes(16)}, primary=1))
        CookieSealer(room_id='tickets', cookie_name='__lbkit_wr', key_ids=(1,), primary=1)
        """
        if not isinstance(config, WaitingRoomConfig):
            raise ArgumentTypeError(
                f"config is {type(config).__name__}; it must be a WaitingRoomConfig"
            )
        return cls(
            keys,
            room_id=config.room_id,
            cookie_name=config.cookie.name,
            primary=primary,
            nonce_source=nonce_source,
        )

    @property
    def keyring(self) -> Keyring:
        """The keys, with the primary this sealer seals with.

        Runtime complexity: O(1).

        >>> CookieSealer({3: bytes(16)}, primary=3, room_id="r", cookie_name="c").keyring
        Keyring(key_ids=(3,), primary=3)
        """
        return self._keyring

    @property
    def room_id(self) -> str:
        """The room whose cookies this sealer seals and opens.

        Runtime complexity: O(1).

        >>> CookieSealer({3: bytes(16)}, primary=3, room_id="r", cookie_name="c").room_id
        'r'
        """
        return self._room_id

    @property
    def cookie_name(self) -> str:
        """The cookie name bound into every token (without a ``__Host-`` prefix).

        Runtime complexity: O(1).

        >>> CookieSealer({3: bytes(16)}, primary=3, room_id="r", cookie_name="c").cookie_name
        'c'
        """
        return self._cookie_name

    @property
    def room_tag(self) -> bytes:
        """The two bytes of the header that name the room and cookie name (not a secret).

        Runtime complexity: O(1).

        >>> len(CookieSealer({3: bytes(16)}, primary=3, room_id="r", cookie_name="c").room_tag)
        2
        """
        return self._room_tag

    def seal(self, cookie: QueueCookie) -> str:
        """The token for ``cookie``: sealed with the primary key and a fresh nonce, 71
        characters of base64url.

        Raises:
            ArgumentTypeError: ``cookie`` is not a :class:`QueueCookie`.
            InvalidArgument: the nonce source returned something other than 12 bytes.

        Runtime complexity: O(1).

        >>> sealer = CookieSealer({1: bytes(16)}, primary=1, room_id="r", cookie_name="c")
        >>> cookie = QueueCookie(bucket_id=0, last_check_in=1.0, refresh_interval=20.0,
        ...                      expires_at=301.0)
        >>> first, second = sealer.seal(cookie), sealer.seal(cookie)
        >>> first != second, sealer.open(first, now=2.0) == sealer.open(second, now=2.0)
        (True, True)
        """
        if cookie.__class__ is not QueueCookie and not isinstance(cookie, QueueCookie):
            raise ArgumentTypeError(f"cookie is {type(cookie).__name__}; it must be a QueueCookie")
        nonces = self._nonces[0]
        nonce = next(nonces, None)
        if nonce is None:
            nonce = _next_block(self._nonces, nonces)
        cipher, associated, header = self._seal_with
        try:
            # AES-GCM-SIV refuses a nonce that is not 12 bytes.
            blob = header + nonce + cipher.encrypt(nonce, cookie.__dict__["_payload"], associated)
        except (TypeError, ValueError):
            raise _bad_nonce(nonce) from None
        return _kernels.cookiecodec.encode_token(blob)

    def seal_milliseconds(
        self,
        bucket_id: int,
        last_check_in: int,
        refresh_interval: int,
        expires_at: int,
        accepted_at: int | None = None,
    ) -> tuple[str, QueueCookie]:
        """A new cookie from times in whole milliseconds, and its token, in one step:
        ``(token, cookie)``, where ``cookie`` is
        ``cookie_from_milliseconds(bucket_id, last_check_in, ...)`` and ``token`` is what
        :meth:`seal` gives for it. This is what a waiting room does on most requests; one
        kernel call checks, packs, encrypts and encodes.

        Raises:
            InvalidArgument: a value out of range (as :func:`cookie_from_milliseconds`), or a
                nonce source that returned something other than 12 bytes.
            ArgumentTypeError: a value that is not an int (or ``None`` for ``accepted_at``).

        Runtime complexity: O(1).

        >>> sealer = CookieSealer({1: bytes(16)}, primary=1, room_id="r", cookie_name="c")
        >>> token, cookie = sealer.seal_milliseconds(0, 1_000, 20_000, 301_000)
        >>> sealer.open(token, now=2.0) == cookie, cookie.expires_at, cookie.state
        (True, 301.0, 'queued')
        """
        nonces = self._nonces[0]
        nonce = next(nonces, None)
        if nonce is None:
            nonce = _next_block(self._nonces, nonces)
        try:
            sealed = _kernels.cookiecodec.seal_milliseconds(
                self._seal_with,
                nonce,
                QueueCookie,
                bucket_id,
                last_check_in,
                refresh_interval,
                expires_at,
                accepted_at,
            )
        except (TypeError, ValueError):
            raise _bad_nonce(nonce) from None
        if sealed is None:
            # Not a cookie the format holds: the builder raises the error that names the field.
            cookie = cookie_from_milliseconds(
                bucket_id, last_check_in, refresh_interval, expires_at, accepted_at
            )
            return self.seal(cookie), cookie
        return sealed

    def reseal_milliseconds(
        self, cookie: QueueCookie, last_check_in: int, expires_at: int
    ) -> tuple[str, QueueCookie]:
        """``cookie`` checked in again, and its token: the same bucket, refresh interval and
        admission, with a new ``last_check_in`` and ``expires_at`` in whole milliseconds,
        ``(token, cookie)`` as :meth:`seal_milliseconds` gives them. What renewing a session
        changes, in one kernel call.

        Raises:
            InvalidArgument: a new time out of range (as :func:`cookie_from_milliseconds`),
                or a nonce source that returned something other than 12 bytes.
            ArgumentTypeError: ``cookie`` is not a :class:`QueueCookie`, a time not an int.

        Runtime complexity: O(1).

        >>> sealer = CookieSealer({1: bytes(16)}, primary=1, room_id="r", cookie_name="c")
        >>> _, cookie = sealer.seal_milliseconds(0, 1_000, 20_000, 301_000, 1_000)
        >>> token, renewed = sealer.reseal_milliseconds(cookie, 61_000, 361_000)
        >>> renewed.last_check_in, renewed.expires_at, renewed.accepted_at
        (61.0, 361.0, 1.0)
        >>> sealer.open(token, now=62.0) == renewed
        True
        """
        if cookie.__class__ is not QueueCookie and not isinstance(cookie, QueueCookie):
            raise ArgumentTypeError(f"cookie is {type(cookie).__name__}; it must be a QueueCookie")
        nonces = self._nonces[0]
        nonce = next(nonces, None)
        if nonce is None:
            nonce = _next_block(self._nonces, nonces)
        try:
            sealed = _kernels.cookiecodec.reseal_milliseconds(
                self._seal_with,
                nonce,
                QueueCookie,
                cookie.__dict__["_payload"],
                last_check_in,
                expires_at,
            )
        except (TypeError, ValueError):
            raise _bad_nonce(nonce) from None
        if sealed is None:
            # Not a cookie the format holds: the builder raises the error that names the field.
            accepted = cookie.accepted_at
            renewed = cookie_from_milliseconds(
                cookie.bucket_id,
                last_check_in,
                round(cookie.refresh_interval * 1000.0),
                expires_at,
                None if accepted is None else round(accepted * 1000.0),
            )
            return self.seal(renewed), renewed
        return sealed

    def open(self, token: str, *, now: float) -> QueueCookie:
        """The cookie a token holds, if this sealer sealed it (with any key of its keyring)
        and it has not expired: valid while ``now < expires_at``.

        Raises:
            InvalidCookie: with ``reason`` ``"too_large"`` (longer than
                :data:`MAX_TOKEN_LENGTH`), ``"malformed"`` (not canonical unpadded base64url,
                an unknown format version, a wrong length), ``"wrong_room"`` (sealed for
                another room or cookie name), ``"unknown_key"`` (a key id not in the keyring),
                ``"tampered"`` (fails authentication: altered, or sealed with another key
                under the same id) or ``"expired"``.
            ArgumentTypeError: ``token`` is not a str or ``now`` not a number.
            InvalidArgument: ``now`` is NaN or infinite.

        Runtime complexity: O(1) (tokens longer than ``MAX_TOKEN_LENGTH`` are refused unread).

        >>> sealer = CookieSealer({1: bytes(16)}, primary=1, room_id="r", cookie_name="c")
        >>> other = CookieSealer({1: bytes(16)}, primary=1, room_id="s", cookie_name="c")
        >>> token = other.seal(QueueCookie(bucket_id=0, last_check_in=1.0,
        ...                                refresh_interval=20.0, expires_at=301.0))
        >>> try:
        ...     sealer.open(token, now=2.0)
        ... except InvalidCookie as error:
        ...     print(error.reason)
        wrong_room
        """
        # Nothing but attribute loads, comparisons and C calls on the way to an opened cookie
        # (the codec is a kernel, lbkit._pure._cookiecodec): at 50-100 ns a Python-level call,
        # this is what keeps open() near the cost of the bare cipher calls.
        if now.__class__ is not float or now - now:  # now - now is NaN for NaN and infinities
            _check_now(now)
        # One kernel call checks the length, decodes, finds the key by the header, decrypts
        # and reads the fields; a token it cannot open comes back as a number, and _refuse
        # says why, in the documented order.
        try:
            cookie = _kernels.cookiecodec.open_token(token, self._by_header, QueueCookie)
        except TypeError:
            raise ArgumentTypeError(f"token is {type(token).__name__}; it must be a str") from None
        if isinstance(cookie, int):
            self._refuse(token, cookie)
        # The payload's fields as the constructor would hold them: every value the format
        # holds is one the constructor accepts (a refresh interval of 0 aside, refused below),
        # and whole milliseconds / 1000 is what it rounds to, so the kernel skips its checks.
        if now >= cookie.expires_at:
            raise InvalidCookie(
                f"the cookie expired at {cookie.expires_at!r}; now is {now!r}", "expired"
            )
        if not cookie.refresh_interval:
            # Only a sealer other than this module's could have written it: refuse it rather
            # than return a cookie the constructor would not build.
            raise InvalidCookie("the cookie's refresh interval is 0", "malformed")
        return cookie

    def inspect(self, token: str) -> QueueCookie:
        """The cookie a token holds, authenticated like :meth:`open` but whatever its expiry:
        for debugging (``lbkit cookie inspect``), never for admission.

        Raises:
            InvalidCookie: every reason of :meth:`open` but ``"expired"``.
            ArgumentTypeError: ``token`` is not a str.

        Runtime complexity: O(1).

        >>> sealer = CookieSealer({1: bytes(16)}, primary=1, room_id="r", cookie_name="c")
        >>> cookie = QueueCookie(bucket_id=0, last_check_in=1.0, refresh_interval=20.0,
        ...                      expires_at=301.0)
        >>> sealer.inspect(sealer.seal(cookie)) == cookie
        True
        """
        # Every time a cookie holds is >= 0, so nothing has expired at -1.
        return self.open(token, now=-1.0)

    def _refuse_length(self, token: str) -> NoReturn:
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidCookie(
                f"the cookie is {len(token)} characters; at most {MAX_TOKEN_LENGTH} are read",
                "too_large",
            )
        raise InvalidCookie(
            f"the cookie is {len(token)} characters; a version {FORMAT_VERSION} cookie is "
            f"{TOKEN_LENGTH}",
            "malformed",
        )

    def _refuse(self, token: str, why: int) -> NoReturn:
        """The error for a token that ``open_token`` could not open."""
        if len(token) != TOKEN_LENGTH:
            self._refuse_length(token)
        codec = _kernels.cookiecodec
        parts = codec.decode_token(token)
        if why == codec.NOT_CANONICAL or parts is None:
            raise InvalidCookie("the cookie is not canonical unpadded base64url", "malformed")
        header = parts[0]
        if why == codec.NOT_AUTHENTIC:
            raise InvalidCookie(
                f"the cookie does not authenticate under key id {header[1]}: it was altered, "
                "or sealed with another key under the same id",
                "tampered",
            )
        # No key for the header: say why, in the order version, room, key id.
        if header[0] != FORMAT_VERSION:
            raise InvalidCookie(
                f"the cookie has format version {header[0]}; this lbkit reads version "
                f"{FORMAT_VERSION}",
                "malformed",
            )
        if header[2:4] != self._room_tag:
            raise InvalidCookie(
                "the cookie was sealed for another room or cookie name (this is room "
                f"{self._room_id!r}, cookie {self._cookie_name!r})",
                "wrong_room",
            )
        raise InvalidCookie(
            f"the cookie was sealed with key id {header[1]}, which is not in the keyring "
            f"(key ids {_ids(self._keyring._keys)})",
            "unknown_key",
        )

    def __repr__(self) -> str:
        return (
            f"CookieSealer(room_id={self._room_id!r}, cookie_name={self._cookie_name!r}, "
            f"key_ids={self._keyring.key_ids!r}, primary={self._keyring.primary})"
        )


# --- nonces ---------------------------------------------------------------------------------
#
# A sealer takes its nonces with next() on an iterator held in a one-element list, a C call
# instead of a Python-level one (which costs about as much as the os.urandom(12) it replaces,
# on Linux): for a nonce_source, map(nonce_source, repeat(12)), which never ends; by default,
# the module's stream: 12-byte slices of one os.urandom block of 4,092 bytes, one system call
# per 341 nonces. When a block is used up, next(block, None) gives None and the sealer calls
# _next_block, which puts a new block in the list under a lock (once, however many threads
# found the old one used up).
#
# Each slice is handed out once: next() on a block runs no Python code between taking a slice
# and moving past it, so, under the GIL, threads never share one. A forked child replaces the
# block it inherited (os.register_at_fork), so a parent and its child never seal with the same
# nonce. Were a nonce ever repeated anyway, AES-GCM-SIV would only reveal that two cookies held
# identical contents (RFC 8452, section 9).

_NONCES_PER_BLOCK: Final = 341
_NONCE_SLICES: Final = tuple(
    slice(start, start + _NONCE_SIZE)
    for start in range(0, _NONCE_SIZE * _NONCES_PER_BLOCK, _NONCE_SIZE)
)


def _nonce_block() -> Iterator[bytes]:
    return map(os.urandom(_NONCE_SIZE * _NONCES_PER_BLOCK).__getitem__, _NONCE_SLICES)


_RANDOM_NONCES: Final = [_nonce_block()]
_NONCE_LOCK: Final = threading.Lock()


def _next_block(holder: list[Iterator[bytes]], used_up: Iterator[bytes]) -> bytes:
    """The next nonce after ``used_up``, ``holder``'s iterator, came to its end."""
    if holder is not _RANDOM_NONCES:  # map() over a nonce_source never ends on its own
        raise InvalidArgument(
            "the nonce source returned None or raised StopIteration; it must return 12 bytes"
        )
    while True:
        with _NONCE_LOCK:
            if holder[0] is used_up:  # no other thread replaced it meanwhile
                holder[0] = _nonce_block()
            block = holder[0]
        try:
            return next(block)
        except StopIteration:  # other threads used the new block up already
            used_up = block


def _forget_nonce_block() -> None:
    _RANDOM_NONCES[0] = _nonce_block()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_nonce_block)


def _bad_nonce(nonce: object) -> InvalidArgument:
    returned = (
        f"{len(nonce)} bytes"
        if isinstance(nonce, (bytes, bytearray, memoryview))
        else type(nonce).__name__
    )
    return InvalidArgument(f"the nonce source returned {returned}; it must return 12 bytes")


def _check_now(now: object) -> None:
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise ArgumentTypeError(f"now is {type(now).__name__}; it must be a number")
    if not -_INFINITY < now < _INFINITY:
        raise InvalidArgument(f"now is {now!r}; it must be finite")


def _b64url_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes | None:
    """The bytes of canonical unpadded base64url text, or None. Canonical: encoding the bytes
    gives ``text`` back, so no two texts decode to the same bytes (binascii alone would accept
    '+', '/', padding, stray characters and non-zero unused bits)."""
    if not text.isascii() or len(text) % 4 == 1:
        return None
    data = text.encode("ascii")
    try:
        raw = binascii.a2b_base64(data.translate(_FROM_URLSAFE) + _PADDING[len(data) % 4])
    except binascii.Error:
        return None
    if binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=") != data:
        return None
    return raw


def prefixed_name(settings: CookieSettings, *, https: bool) -> str:
    """The cookie's name on the wire: ``settings.name``, with the ``__Host-`` prefix when the
    settings allow it for this request (Secure, no Domain, Path ``/``).

    Runtime complexity: O(len(name)).

    >>> prefixed_name(CookieSettings(), https=True), prefixed_name(CookieSettings(), https=False)
    ('__Host-__lbkit_wr', '__lbkit_wr')
    """
    _check_settings(settings, https)
    return (
        HOST_PREFIX + settings.name if settings.host_prefix_allowed(https=https) else settings.name
    )


def set_cookie_header(token: str, settings: CookieSettings, *, https: bool, max_age: float) -> str:
    """The ``Set-Cookie`` header value that stores ``token``: ``Path``, ``Domain`` (when set),
    ``Max-Age`` (whole seconds, rounded up), ``HttpOnly``, ``Secure`` and ``SameSite`` as
    :meth:`~lbkit.waitingroom.config.CookieSettings.attributes` gives them for this request,
    and the ``__Host-`` prefix when
    :meth:`~lbkit.waitingroom.config.CookieSettings.host_prefix_allowed`. ``token=""`` with
    ``max_age=0`` deletes the cookie.

    Args:
        token: the cookie value (a sealed token): RFC 6265 cookie-octets only.
        settings: the room's :class:`~lbkit.waitingroom.config.CookieSettings`.
        https: whether the request came over HTTPS.
        max_age: seconds the browser keeps the cookie, finite and >= 0.

    Raises:
        InvalidArgument: a token with characters a cookie value cannot hold, a ``max_age``
            that is negative, NaN or infinite, a name that already carries the ``__Host-``
            prefix, a path or domain with characters an attribute cannot hold.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(len(token)).

    >>> set_cookie_header("abc", CookieSettings(), https=True, max_age=299.2)
    '__Host-__lbkit_wr=abc; Path=/; Max-Age=300; HttpOnly; Secure; SameSite=None'
    >>> set_cookie_header("abc", CookieSettings(domain="example.com"), https=False, max_age=20)
    '__lbkit_wr=abc; Path=/; Domain=example.com; Max-Age=20; HttpOnly; SameSite=Lax'
    """
    if not isinstance(token, str):
        raise ArgumentTypeError(f"token is {type(token).__name__}; it must be a str")
    if not _COOKIE_VALUE.fullmatch(token):
        raise InvalidArgument(
            f"token is {token!r:.60}; a cookie value holds only RFC 6265 cookie-octets"
        )
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float)):
        raise ArgumentTypeError(f"max_age is {type(max_age).__name__}; it must be a number")
    if not (math.isfinite(max_age) and max_age >= 0):
        raise InvalidArgument(f"max_age is {max_age!r}; it must be finite and >= 0 seconds")
    name = prefixed_name(settings, https=https)
    if settings.name.startswith(HOST_PREFIX):
        raise InvalidArgument(
            f"the cookie name is {settings.name!r}; leave out the {HOST_PREFIX} prefix, it is "
            "added when the settings allow it"
        )
    for attribute, value in (("path", settings.path), ("domain", settings.domain)):
        if value is not None and not _ATTRIBUTE_VALUE.fullmatch(value):
            raise InvalidArgument(
                f"{attribute} is {value!r}; an attribute value holds no ';' or control characters"
            )
    same_site, secure = settings.attributes(https=https)
    parts = [f"{name}={token}", f"Path={settings.path}"]
    if settings.domain is not None:
        parts.append(f"Domain={settings.domain}")
    parts += [f"Max-Age={math.ceil(max_age)}", "HttpOnly"]
    if secure:
        parts.append("Secure")
    parts.append(f"SameSite={same_site}")
    return "; ".join(parts)


def read_cookie(cookies: Mapping[str, str], settings: CookieSettings, *, https: bool) -> str | None:
    """The queue cookie's value from a request's cookies (name to value), or None. It reads the
    name :func:`set_cookie_header` writes for the same ``https``: the ``__Host-`` name when the
    settings allow the prefix, and then only that one, so a cookie planted without the prefix
    (by a sibling domain, say) is not read.

    Raises:
        ArgumentTypeError: ``cookies`` is not a mapping, ``settings`` not a CookieSettings.

    Runtime complexity: O(1) for a dict.

    >>> read_cookie({"__Host-__lbkit_wr": "tok"}, CookieSettings(), https=True)
    'tok'
    >>> read_cookie({"__lbkit_wr": "tok"}, CookieSettings(), https=True) is None
    True
    """
    if not isinstance(cookies, Mapping):
        raise ArgumentTypeError(f"cookies is {type(cookies).__name__}; it must be a mapping")
    value = cookies.get(prefixed_name(settings, https=https))
    return value if isinstance(value, str) else None


def parse_cookie_header(header: str | Iterable[str]) -> dict[str, str]:
    """A request's ``Cookie`` header as name to value, for :func:`read_cookie`: the pairs
    split on ``;``, each name and value stripped of spaces and tabs and a value of its double
    quotes (RFC 6265, section 5.4 and 4.2.1). ``header`` is one header value, or an iterable
    of them (HTTP/2 may split the header, and some stacks keep repeated headers apart). A
    pair without ``=`` or with an empty name is skipped, as browsers never send one. When a
    name repeats, the first pair wins: a browser sends the cookie with the longer path first,
    and the ``__Host-`` name :func:`read_cookie` prefers cannot be planted by another site.

    Raises:
        ArgumentTypeError: ``header`` is neither a str nor an iterable of str.

    Runtime complexity: O(len(header)).

    >>> parse_cookie_header('theme=dark; __Host-__lbkit_wr="tok"; theme=light; flag')
    {'theme': 'dark', '__Host-__lbkit_wr': 'tok'}
    >>> read_cookie(parse_cookie_header("__Host-__lbkit_wr=tok"), CookieSettings(), https=True)
    'tok'
    """
    if isinstance(header, str):
        lines: Iterable[object] = (header,)
    elif isinstance(header, Iterable) and not isinstance(header, (bytes, bytearray)):
        lines = header
    else:
        raise ArgumentTypeError(
            f"header is {type(header).__name__}; it must be a str or an iterable of str"
        )
    cookies: dict[str, str] = {}
    for line in lines:
        if not isinstance(line, str):
            raise ArgumentTypeError(
                f"header holds a {type(line).__name__}; it must be a str or an iterable of str"
            )
        for pair in line.split(";"):
            name, equals, value = pair.partition("=")
            name = name.strip(" \t")
            if not equals or not name or name in cookies:
                continue
            value = value.strip(" \t")
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies[name] = value
    return cookies


def _check_settings(settings: object, https: object) -> None:
    if not isinstance(settings, CookieSettings):
        raise ArgumentTypeError(
            f"settings is {type(settings).__name__}; it must be a CookieSettings"
        )
    if not isinstance(https, bool):
        raise ArgumentTypeError(f"https is {type(https).__name__}; it must be a bool")
