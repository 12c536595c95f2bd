"""lbkit.waitingroom.cookies: exact round trips over the payload's ranges, every altered,
truncated, oversized, foreign or expired token refused for the right reason, key rotation, the
golden vectors, the token's length beside Fernet's, the Set-Cookie header for every SameSite
and Secure setting, and every rejected input with its message; and the ``cookiecodec`` kernel
(base64url and the payload) compiled against its reference, byte for byte.

Every test here runs on both kernel paths (the module's autouse fixture takes ``impl``), so the
public API is checked end to end with the compiled codec and with the pure one."""

from __future__ import annotations

import base64
import itertools
import math
import os
import pickle
import re
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from hypothesis import given
from hypothesis import strategies as st

import lbkit._kernels
import lbkit._pure._cookiecodec
import lbkit.waitingroom.cookies
from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, InvalidCookie
from lbkit.waitingroom import CookieSettings, WaitingRoomConfig
from lbkit.waitingroom.cookies import (
    FORMAT_VERSION,
    MAX_COOKIE_LIFETIME,
    MAX_REFRESH_INTERVAL,
    MAX_TOKEN_LENGTH,
    REASONS,
    TOKEN_LENGTH,
    CookieSealer,
    Keyring,
    QueueCookie,
    bucket_for,
    cookie_from_milliseconds,
    decode_key,
    encode_key,
    new_key,
    parse_cookie_header,
    prefixed_name,
    read_cookie,
    set_cookie_header,
)

#: The module without its annotations, for calls that pass wrong types on purpose.
loose: Any = lbkit.waitingroom.cookies
KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MAX_OFFSET = 2**40 - 1
MAX_DELAY = 2**32 - 1
MAX_REFRESH = 2**24 - 1


@pytest.fixture(autouse=True)
def _both_paths(impl: Any) -> Any:
    """Every test of this module once per kernel flavour: the public code calls
    ``_kernels.cookiecodec`` at call time, and ``impl`` points it at the flavour under test."""
    return impl


def make_sealer(
    keys: dict[int, bytes] | None = None,
    *,
    primary: int = 1,
    room_id: str = "shop",
    cookie_name: str = "__lbkit_wr",
    nonce_source: Callable[[int], bytes] | None = None,
) -> CookieSealer:
    return CookieSealer(
        {1: KEY_1} if keys is None else keys,
        primary=primary,
        room_id=room_id,
        cookie_name=cookie_name,
        nonce_source=nonce_source,
    )


def make_cookie(**changes: Any) -> QueueCookie:
    fields: dict[str, Any] = {
        "bucket_id": 28_000_000,
        "last_check_in": 1_680_000_012.5,
        "refresh_interval": 21.337,
        "expires_at": 1_680_000_312.5,
        "accepted_at": None,
    }
    fields.update(changes)
    return QueueCookie(**fields)


def loose_sealer(**options: Any) -> Any:
    """make_sealer, untyped: for calls that pass wrong types on purpose."""
    return make_sealer(**options)


def reason_of(sealer: CookieSealer, token: str, now: float = 1_680_000_020.0) -> str:
    with pytest.raises(InvalidCookie) as error:
        sealer.open(token, now=now)
    assert error.value.reason in REASONS
    return error.value.reason


def blob_of(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def token_of(blob: bytes | bytearray) -> str:
    return base64.urlsafe_b64encode(bytes(blob)).decode().rstrip("=")


@st.composite
def cookies_in_range(draw: st.DrawFn) -> QueueCookie:
    """Any cookie the format holds, from integer milliseconds at and between the limits."""
    bucket_id = draw(st.integers(0, 2**32 - 1))
    start = bucket_id * 60_000
    check_in = start + draw(st.integers(0, MAX_OFFSET))
    accepted = draw(st.none() | st.integers(0, MAX_OFFSET - 1))
    return QueueCookie(
        bucket_id=bucket_id,
        last_check_in=check_in / 1000,
        refresh_interval=draw(st.integers(1, MAX_REFRESH)) / 1000,
        expires_at=(check_in + draw(st.integers(0, MAX_DELAY))) / 1000,
        accepted_at=None if accepted is None else (start + accepted) / 1000,
    )


# --- round trips ---------------------------------------------------------------------------


@given(cookie=cookies_in_range())
def test_round_trip_is_exact_over_the_payload_ranges(cookie: QueueCookie) -> None:
    """Any cookie the format holds opens to an equal cookie, field for field, bit for bit."""
    sealer = make_sealer()
    token = sealer.seal(cookie)
    assert len(token) == TOKEN_LENGTH
    opened = sealer.open(token, now=cookie.expires_at - 0.0005)
    assert opened == cookie
    assert attrs.astuple(opened) == attrs.astuple(cookie)
    assert type(opened.bucket_id) is int
    for value in (opened.last_check_in, opened.refresh_interval, opened.expires_at):
        assert type(value) is float
    # What was opened is what the constructor builds from the same values.
    assert QueueCookie(**attrs.asdict(opened)) == opened
    assert sealer.seal(opened) != token  # a fresh nonce
    assert sealer.inspect(sealer.seal(opened)) == cookie


@given(
    now=st.floats(0.0, (2**32) * 60.0 - 0.001, allow_nan=False),
    delay=st.floats(0.0, 86_400.0),
)
def test_any_time_fits_its_own_bucket(now: float, delay: float) -> None:
    """A cookie with bucket_for(now) and last_check_in=now is always valid and round-trips."""
    bucket = bucket_for(now)
    cookie = QueueCookie(
        bucket_id=bucket, last_check_in=now, refresh_interval=20.0, expires_at=now + delay
    )
    assert bucket * 60.0 <= cookie.last_check_in
    assert abs(cookie.last_check_in - now) <= 0.0005 + 1e-9 * now
    sealer = make_sealer()
    assert sealer.inspect(sealer.seal(cookie)) == cookie


class Seconds(float):
    """A float subclass: QueueCookie takes its checked path for it, not the fast one."""


@given(cookie=cookies_in_range())
def test_fast_and_checked_construction_agree(cookie: QueueCookie) -> None:
    """The fast path (plain floats) and the checked path (any other number type) build the
    same cookie with the same packed payload."""
    checked = QueueCookie(
        bucket_id=cookie.bucket_id,
        last_check_in=Seconds(cookie.last_check_in),
        refresh_interval=Seconds(cookie.refresh_interval),
        expires_at=Seconds(cookie.expires_at),
        accepted_at=None if cookie.accepted_at is None else Seconds(cookie.accepted_at),
    )
    assert checked == cookie
    assert attrs.astuple(checked) == attrs.astuple(cookie)
    assert all(type(value) is not Seconds for value in attrs.astuple(checked))
    assert checked.__dict__["_payload"] == cookie.__dict__["_payload"]


def test_times_are_held_to_the_millisecond() -> None:
    """The constructor rounds times to the nearest millisecond; ints and floats give equal
    cookies; building again from the held values changes nothing."""
    cookie = QueueCookie(
        bucket_id=2, last_check_in=130.0004, refresh_interval=20, expires_at=430.00051
    )
    assert (cookie.last_check_in, cookie.refresh_interval, cookie.expires_at) == (
        130.0,
        20.0,
        430.001,
    )
    assert cookie == QueueCookie(
        bucket_id=2, last_check_in=130, refresh_interval=20.0, expires_at=430.001
    )
    assert attrs.evolve(cookie) == cookie
    assert attrs.evolve(cookie, accepted_at=131.2346).accepted_at == 131.235


def test_cookie_state_bucket_start_hash_and_pickle() -> None:
    """state follows accepted_at; bucket_start is bucket_id * 60; cookies hash, compare and
    pickle as values."""
    queued = make_cookie()
    admitted = make_cookie(accepted_at=1_680_000_001.25)
    assert (queued.state, admitted.state) == ("queued", "admitted")
    assert queued.bucket_start == 1_680_000_000.0
    assert len({queued, make_cookie(), admitted}) == 2
    restored = pickle.loads(pickle.dumps(admitted))
    assert restored == admitted
    sealer = make_sealer()
    assert sealer.inspect(sealer.seal(restored)) == admitted
    assert "_payload" not in repr(admitted)


def test_bucket_for() -> None:
    """bucket_for is now // 60 on the millisecond grid, and refuses what no bucket holds."""
    assert bucket_for(0.0) == 0
    assert bucket_for(59.999) == 0
    assert bucket_for(59.9996) == 1  # rounds to 60.000
    assert bucket_for(60) == 1
    assert bucket_for(1_680_000_012.5) == 28_000_000
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            "now is -1.0; it must be a finite number of seconds from 0.0 to 257698037759.999"
        ),
    ):
        bucket_for(-1.0)
    with pytest.raises(InvalidArgument, match="now is nan;"):
        bucket_for(math.nan)
    with pytest.raises(ArgumentTypeError, match="now is str; it must be a number"):
        bucket_for("1")  # type: ignore[arg-type]


# --- tampering -----------------------------------------------------------------------------


@given(
    position=st.integers(0, TOKEN_LENGTH - 1),
    replacement=st.sampled_from(ALPHABET + "+/= .~%\x00é"),
)
def test_any_single_character_change_is_rejected(position: int, replacement: str) -> None:
    """Changing one character anywhere in a token is refused: outside the header by the
    authentication tag (or, at the last character, by canonical base64url)."""
    sealer = make_sealer({1: KEY_1, 2: KEY_2})
    token = sealer.seal(make_cookie())
    if token[position] == replacement:
        return
    changed = token[:position] + replacement + token[position + 1 :]
    reason = reason_of(sealer, changed)
    if replacement not in ALPHABET:
        assert reason == "malformed"
    elif position == TOKEN_LENGTH - 1 and ALPHABET.index(replacement) % 4:
        assert reason == "malformed"  # non-zero unused bits
    elif position >= 6:  # characters 6 and later hold only nonce and ciphertext bits
        assert reason == "tampered"
    else:
        assert reason in ("malformed", "wrong_room", "unknown_key", "tampered")


@given(position=st.integers(0, 52), xor=st.integers(1, 255))
def test_any_single_byte_change_is_rejected(position: int, xor: int) -> None:
    """Changing one byte of the sealed bytes is refused, for the reason its region implies."""
    sealer = make_sealer({1: KEY_1, 2: KEY_2})
    blob = blob_of(sealer.seal(make_cookie()))
    blob[position] ^= xor
    reason = reason_of(sealer, token_of(blob))
    if position == 0:
        assert reason == "malformed"  # another format version
    elif position == 1:
        assert reason == ("tampered" if blob[1] == 2 else "unknown_key")
    elif position in (2, 3):
        assert reason == "wrong_room"
    else:
        assert reason == "tampered"


def test_every_single_bit_flip_is_rejected() -> None:
    """Each of the 424 single-bit changes of one token is refused."""
    sealer = make_sealer()
    blob = blob_of(sealer.seal(make_cookie()))
    for bit in range(len(blob) * 8):
        changed = bytearray(blob)
        changed[bit // 8] ^= 0x80 >> (bit % 8)
        with pytest.raises(InvalidCookie):
            sealer.inspect(token_of(changed))


def test_cookie_from_another_room_or_key_is_rejected() -> None:
    """Another room or cookie name: wrong_room; another key under the same id: tampered; a key
    id this keyring does not hold: unknown_key."""
    cookie = make_cookie()
    sealer = make_sealer()
    assert reason_of(sealer, make_sealer(room_id="shop2").seal(cookie)) == "wrong_room"
    assert reason_of(sealer, make_sealer(cookie_name="wr").seal(cookie)) == "wrong_room"
    assert reason_of(sealer, make_sealer({1: KEY_2}).seal(cookie)) == "tampered"
    assert reason_of(sealer, make_sealer({9: KEY_1}, primary=9).seal(cookie)) == "unknown_key"
    # A foreign room is reported before an unknown key.
    foreign = make_sealer({9: KEY_2}, primary=9, room_id="elsewhere").seal(cookie)
    assert reason_of(sealer, foreign) == "wrong_room"
    with pytest.raises(InvalidCookie) as error:
        sealer.open(make_sealer({9: KEY_1}, primary=9).seal(cookie), now=0.0)
    assert str(error.value) == (
        "the cookie was sealed with key id 9, which is not in the keyring (key ids 1)"
    )
    with pytest.raises(InvalidCookie) as error:
        sealer.open(make_sealer(room_id="shop2").seal(cookie), now=0.0)
    assert str(error.value) == (
        "the cookie was sealed for another room or cookie name (this is room 'shop', cookie "
        "'__lbkit_wr')"
    )
    with pytest.raises(InvalidCookie) as error:
        sealer.open(make_sealer({1: KEY_2}).seal(cookie), now=0.0)
    assert str(error.value) == (
        "the cookie does not authenticate under key id 1: it was altered, or sealed with "
        "another key under the same id"
    )


def test_rooms_with_the_same_tag_still_refuse_each_other() -> None:
    """Two rooms whose two-byte tags collide still refuse each other's cookies (as
    tampered): the associated data binds the room id, the tag is only a label."""
    seen: dict[bytes, str] = {}
    for index in itertools.count():
        room = f"room-{index}"
        tag = make_sealer(room_id=room).room_tag
        if tag in seen:
            break
        seen[tag] = room
    first, second = make_sealer(room_id=seen[tag]), make_sealer(room_id=room)
    assert first.room_tag == second.room_tag
    assert reason_of(first, second.seal(make_cookie())) == "tampered"


# --- keys ----------------------------------------------------------------------------------


def test_key_rotation() -> None:
    """After a rotation new cookies are sealed with the new primary, old ones still open; after
    retiring the old key they are unknown_key; a sealer without the new key cannot open new
    cookies."""
    cookie = make_cookie()
    before = CookieSealer(Keyring({1: KEY_1}, primary=1), room_id="shop", cookie_name="wr")
    old_token = before.seal(cookie)
    rotated = before.keyring.rotate(2, KEY_2)
    after = CookieSealer(rotated, room_id="shop", cookie_name="wr")
    new_token = after.seal(cookie)
    assert blob_of(old_token)[1] == 1
    assert blob_of(new_token)[1] == 2
    assert after.open(old_token, now=1_680_000_020.0) == cookie
    assert after.open(new_token, now=1_680_000_020.0) == cookie
    assert reason_of(before, new_token) == "unknown_key"
    retired = CookieSealer(rotated.retire(1), room_id="shop", cookie_name="wr")
    assert reason_of(retired, old_token) == "unknown_key"
    assert retired.open(new_token, now=1_680_000_020.0) == cookie
    # A sealer may seal with another key of its keyring than the keyring's primary.
    by_old = CookieSealer(rotated, primary=1, room_id="shop", cookie_name="wr")
    assert blob_of(by_old.seal(cookie))[1] == 1
    assert by_old.keyring.primary == 1


def test_keyring_and_sealer_never_show_keys() -> None:
    """repr shows key ids, never key bytes."""
    keyring = Keyring({1: KEY_1, 2: KEY_2}, primary=2)
    sealer = CookieSealer(keyring, room_id="shop", cookie_name="wr")
    assert repr(keyring) == "Keyring(key_ids=(1, 2), primary=2)"
    assert repr(sealer) == (
        "CookieSealer(room_id='shop', cookie_name='wr', key_ids=(1, 2), primary=2)"
    )
    for text in (repr(keyring), repr(sealer)):
        assert KEY_1.hex() not in text
        assert base64.urlsafe_b64encode(KEY_1).decode()[:20] not in text
    assert len(keyring) == 2
    assert 2 in keyring
    assert 3 not in keyring
    assert keyring.key(2) == KEY_2


def test_keys_encode_and_decode() -> None:
    """encode_key and decode_key round-trip; from_strings builds a keyring; new_key draws keys
    of the two sizes."""
    for size in (16, 32):
        key = new_key(size)
        assert len(key) == size
        assert decode_key(encode_key(7, key)) == (7, key)
    assert new_key() != new_key()
    assert encode_key(255, bytes(32)) == "255:" + "A" * 43
    keyring = Keyring.from_strings([encode_key(1, KEY_1), encode_key(2, KEY_2)], primary=1)
    assert keyring.key_ids == (1, 2)
    assert keyring.key(2) == KEY_2


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        ":" + "A" * 22,
        "x:" + "A" * 22,
        "-1:" + "A" * 22,
        "1:" + "A" * 21,  # 15.75 bytes
        "1:" + "A" * 21 + "B",  # non-zero unused bits
        "1:" + "A" * 21 + "=",
        "1:" + "+" * 22,
        "1: " + "A" * 22,
        "\u0661:" + "A" * 22,  # ARABIC-INDIC DIGIT ONE
    ],
)
def test_decode_key_rejects_malformed_text(text: str) -> None:
    """A malformed encoded key is refused without echoing any of it."""
    with pytest.raises(ConfigError) as error:
        decode_key(text)
    assert str(error.value) == (
        "an encoded key is not of the form 'key_id:base64url' (a key id in 0..255, a colon, a "
        "16- or 32-byte key in unpadded base64url)"
    )


def test_key_errors() -> None:
    """Bad keys, key ids and primaries raise ConfigError or ArgumentTypeError with exact
    messages."""
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (
            lambda: loose.Keyring([], primary=1),
            ArgumentTypeError,
            "keys is list; it must be a mapping of key id to key bytes",
        ),
        (
            lambda: Keyring({}, primary=1),
            ConfigError,
            "keys is empty; a keyring needs at least one key",
        ),
        (
            lambda: Keyring({256: KEY_1}, primary=256),
            ConfigError,
            "key id is 256; key ids are ints in 0..255",
        ),
        (
            lambda: Keyring({-1: KEY_1}, primary=1),
            ConfigError,
            "key id is -1; key ids are ints in 0..255",
        ),
        (
            lambda: loose.Keyring({"1": KEY_1}, primary=1),
            ArgumentTypeError,
            "key id is str; it must be an int",
        ),
        (
            lambda: Keyring({True: KEY_1}, primary=1),
            ArgumentTypeError,
            "key id is bool; it must be an int",
        ),
        (
            lambda: loose.Keyring({1: bytearray(32)}, primary=1),
            ArgumentTypeError,
            "keys[1] is bytearray; a key must be bytes",
        ),
        (
            lambda: Keyring({1: bytes(24)}, primary=1),
            ConfigError,
            "keys[1] is 24 bytes; AES-GCM-SIV keys are 16 or 32 bytes",
        ),
        (
            lambda: Keyring({1: KEY_1}, primary=2),
            ConfigError,
            "primary is 2; it must be one of the key ids 1",
        ),
        (
            lambda: loose.Keyring({1: KEY_1}, primary=None),
            ArgumentTypeError,
            "primary is NoneType; it must be an int",
        ),
        (
            lambda: Keyring({1: KEY_1}, primary=1).rotate(1, KEY_2),
            ConfigError,
            "key_id is 1; it is already in use (retire it first)",
        ),
        (
            lambda: Keyring({1: KEY_1}, primary=1).rotate(2, bytes(8)),
            ConfigError,
            "keys[2] is 8 bytes; AES-GCM-SIV keys are 16 or 32 bytes",
        ),
        (
            lambda: Keyring({1: KEY_1, 2: KEY_2}, primary=2).retire(2),
            ConfigError,
            "key_id is 2, the primary; rotate to another key first",
        ),
        (
            lambda: Keyring({1: KEY_1, 2: KEY_2}, primary=2).retire(5),
            ConfigError,
            "key_id is 5; it is not one of 1, 2",
        ),
        (
            lambda: Keyring.from_strings("1:" + "A" * 22, primary=1),
            ArgumentTypeError,
            "encoded is a str; it must be an iterable of encoded keys",
        ),
        (
            lambda: Keyring.from_strings([encode_key(1, KEY_1)] * 2, primary=1),
            ConfigError,
            "key id 1 is given twice",
        ),
        (
            lambda: loose.decode_key(b"1:AA"),
            ArgumentTypeError,
            "an encoded key is bytes; it must be a str",
        ),
        (
            lambda: decode_key("300:" + "A" * 22),
            ConfigError,
            "key id is 300; key ids are ints in 0..255",
        ),
        (
            lambda: decode_key("1:" + "A" * 11),
            ConfigError,
            "keys[1] is 8 bytes; AES-GCM-SIV keys are 16 or 32 bytes",
        ),
        (
            lambda: encode_key(1, bytes(20)),
            ConfigError,
            "keys[1] is 20 bytes; AES-GCM-SIV keys are 16 or 32 bytes",
        ),
        (
            lambda: decode_key("1:"),
            ConfigError,
            "keys[1] is 0 bytes; AES-GCM-SIV keys are 16 or 32 bytes",
        ),
        (lambda: new_key(24), ConfigError, "size is 24; AES-GCM-SIV keys are 16 or 32 bytes"),
        (lambda: loose.new_key(32.0), ArgumentTypeError, "size is float; it must be an int"),
    ]
    for build, error_type, message in cases:
        with pytest.raises(error_type) as error:
            build()
        assert str(error.value) == message


def test_sealer_errors() -> None:
    """Bad sealer arguments raise with exact messages."""
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (
            lambda: CookieSealer({1: KEY_1}, room_id="r", cookie_name="c"),
            ConfigError,
            "primary is None; with a mapping of keys, name the primary key id",
        ),
        (
            lambda: CookieSealer(
                Keyring({1: KEY_1}, primary=1), primary=2, room_id="r", cookie_name="c"
            ),
            ConfigError,
            "primary is 2; it must be one of the key ids 1",
        ),
        (
            lambda: make_sealer(room_id=""),
            ConfigError,
            "room_id is ''; it must be a non-empty str of at most 255 UTF-8 bytes",
        ),
        (
            lambda: make_sealer(room_id="é" * 128),
            ConfigError,
            f"room_id is {'é' * 128!r}; it must be a non-empty str of at most 255 UTF-8 bytes",
        ),
        (lambda: loose_sealer(room_id=7), ArgumentTypeError, "room_id is int; it must be a str"),
        (
            lambda: make_sealer(cookie_name="a b"),
            ConfigError,
            "cookie_name is 'a b'; a cookie name must be an HTTP token",
        ),
        (
            lambda: make_sealer(cookie_name=""),
            ConfigError,
            "cookie_name is ''; a cookie name must be an HTTP token",
        ),
        (
            lambda: loose_sealer(cookie_name=b"c"),
            ArgumentTypeError,
            "cookie_name is bytes; it must be a str",
        ),
        (
            lambda: loose_sealer(nonce_source=12),
            ArgumentTypeError,
            "nonce_source is int; it must be callable",
        ),
        (
            lambda: loose.CookieSealer.from_config({}, {1: KEY_1}, primary=1),
            ArgumentTypeError,
            "config is dict; it must be a WaitingRoomConfig",
        ),
        (
            lambda: loose_sealer().seal(attrs.asdict(make_cookie())),
            ArgumentTypeError,
            "cookie is dict; it must be a QueueCookie",
        ),
        (
            lambda: make_sealer(nonce_source=lambda n: bytes(11)).seal(make_cookie()),
            InvalidArgument,
            "the nonce source returned 11 bytes; it must return 12 bytes",
        ),
        (
            lambda: loose_sealer(nonce_source=lambda n: "x" * n).seal(make_cookie()),
            InvalidArgument,
            "the nonce source returned str; it must return 12 bytes",
        ),
        (
            lambda: loose_sealer().open(b"x", now=0.0),
            ArgumentTypeError,
            "token is bytes; it must be a str",
        ),
        (
            lambda: loose_sealer().inspect(None),
            ArgumentTypeError,
            "token is NoneType; it must be a str",
        ),
        (
            lambda: loose_sealer().open("x", now="0"),
            ArgumentTypeError,
            "now is str; it must be a number",
        ),
        (
            lambda: make_sealer().open("x", now=True),
            ArgumentTypeError,
            "now is bool; it must be a number",
        ),
        (
            lambda: make_sealer().open("x", now=math.nan),
            InvalidArgument,
            "now is nan; it must be finite",
        ),
        (
            lambda: make_sealer().open("x", now=-math.inf),
            InvalidArgument,
            "now is -inf; it must be finite",
        ),
    ]
    for build, error_type, message in cases:
        with pytest.raises(error_type) as error:
            build()
        assert str(error.value) == message


def test_sealer_from_config_and_nonce_source() -> None:
    """from_config binds the room id and cookie name; a fixed nonce source seals the same
    token twice, the default one never."""
    config = WaitingRoomConfig(
        total_active_users=10,
        new_users_per_minute=5,
        room_id="tickets",
        cookie=CookieSettings(name="queue"),
    )
    sealer = CookieSealer.from_config(config, {1: KEY_1}, primary=1)
    assert (sealer.room_id, sealer.cookie_name) == ("tickets", "queue")
    cookie = make_cookie()
    token = sealer.seal(cookie)
    assert make_sealer(room_id="tickets", cookie_name="queue").open(token, now=0.0) == cookie
    fixed = CookieSealer.from_config(config, {1: KEY_1}, primary=1, nonce_source=bytes)
    assert fixed.seal(cookie) == fixed.seal(cookie)
    assert len({sealer.seal(cookie) for _ in range(20)}) == 20
    # Any 12-byte buffer will do as a nonce.
    by_bytearray = loose_sealer(nonce_source=bytearray)
    assert by_bytearray.open(by_bytearray.seal(cookie), now=0.0) == cookie


# --- expiry, size and malformed tokens -----------------------------------------------------


def test_cookie_expires_at_exactly_expires_at() -> None:
    """A cookie opens while now < expires_at and is expired from expires_at on; inspect ignores
    expiry."""
    sealer = make_sealer()
    cookie = make_cookie()
    token = sealer.seal(cookie)
    assert sealer.open(token, now=cookie.expires_at - 0.001) == cookie
    assert sealer.open(token, now=0) == cookie
    for now in (cookie.expires_at, cookie.expires_at + 0.001, 1e300, 2**2000):
        with pytest.raises(InvalidCookie) as error:
            sealer.open(token, now=now)
        assert error.value.reason == "expired"
    with pytest.raises(InvalidCookie) as error:
        sealer.open(token, now=cookie.expires_at)
    assert str(error.value) == "the cookie expired at 1680000312.5; now is 1680000312.5"
    assert sealer.inspect(token) == cookie
    instant = make_cookie(expires_at=cookie.last_check_in)
    assert reason_of(sealer, sealer.seal(instant), now=cookie.last_check_in) == "expired"


def test_oversized_tokens_are_refused_before_decoding() -> None:
    """Tokens over MAX_TOKEN_LENGTH are too_large whatever they hold; at the limit they are
    only malformed."""
    sealer = make_sealer()
    token = sealer.seal(make_cookie())
    for oversized in (
        token + "A" * (MAX_TOKEN_LENGTH + 1 - TOKEN_LENGTH),
        "é" * 10_000,
        "\x00" * (MAX_TOKEN_LENGTH + 1),
        token * 1000,
    ):
        with pytest.raises(InvalidCookie) as error:
            sealer.open(oversized, now=0.0)
        assert error.value.reason == "too_large"
        assert str(error.value) == (
            f"the cookie is {len(oversized)} characters; at most {MAX_TOKEN_LENGTH} are read"
        )
    assert reason_of(sealer, token + "A" * (MAX_TOKEN_LENGTH - TOKEN_LENGTH)) == "malformed"


def test_truncated_tokens_are_malformed() -> None:
    """Every proper prefix of a token is refused as malformed, naming its length."""
    sealer = make_sealer()
    token = sealer.seal(make_cookie())
    for length in range(TOKEN_LENGTH):
        with pytest.raises(InvalidCookie) as error:
            sealer.open(token[:length], now=0.0)
        assert error.value.reason == "malformed"
        assert str(error.value) == f"the cookie is {length} characters; a version 1 cookie is 71"


def test_malformed_base64_is_refused() -> None:
    """Tokens of the right length that are not canonical unpadded base64url are malformed."""
    sealer = make_sealer()
    token = sealer.seal(make_cookie())
    blob = bytes(blob_of(token))
    standard = base64.b64encode(blob).decode().rstrip("=")
    last_bits = token[:-1] + ALPHABET[ALPHABET.index(token[-1]) | 1]
    bad = [
        token[:-1] + "=",
        token[:35] + "=" + token[36:],
        token[:10] + " " + token[11:],
        token[:10] + "\n" + token[11:],
        token[:10] + "é" + token[11:],
        token[:10] + "+" + token[11:],
        token[:10] + "/" + token[11:],
        token[:10] + "\x00" + token[11:],
        "=" * TOKEN_LENGTH,
        "!" * TOKEN_LENGTH,
        last_bits,
    ]
    if standard != token:
        bad.append(standard)
    for text in bad:
        assert len(text) == TOKEN_LENGTH
        with pytest.raises(InvalidCookie) as error:
            sealer.open(text, now=0.0)
        assert error.value.reason == "malformed", repr(text)
        assert str(error.value) == "the cookie is not canonical unpadded base64url"


def test_unknown_format_version_is_malformed() -> None:
    """A token whose first byte is another format version is malformed, naming the version."""
    sealer = make_sealer()
    blob = blob_of(sealer.seal(make_cookie()))
    blob[0] = 2
    with pytest.raises(InvalidCookie) as error:
        sealer.open(token_of(blob), now=0.0)
    assert error.value.reason == "malformed"
    assert str(error.value) == "the cookie has format version 2; this lbkit reads version 1"
    assert FORMAT_VERSION == 1


def test_a_zero_refresh_interval_from_a_foreign_sealer_is_malformed() -> None:
    """An authentic payload no QueueCookie could produce (refresh interval 0) is refused."""
    sealer = make_sealer()
    blob = blob_of(sealer.seal(make_cookie()))
    header, nonce = bytes(blob[:4]), bytes(blob[4:16])
    associated = header + bytes([4]) + b"shop" + b"__lbkit_wr"
    payload = AESGCMSIV(KEY_1).decrypt(nonce, bytes(blob[16:]), associated)
    forged = payload[:-3] + bytes(3)
    token = token_of(header + nonce + AESGCMSIV(KEY_1).encrypt(nonce, forged, associated))
    with pytest.raises(InvalidCookie) as error:
        sealer.inspect(token)
    assert (error.value.reason, str(error.value)) == (
        "malformed",
        "the cookie's refresh interval is 0",
    )


def test_invalid_cookie_is_a_value_error() -> None:
    """InvalidCookie is an InvalidArgument and a ValueError, so callers may catch either."""
    with pytest.raises(ValueError, match="the cookie is 0 characters"):
        make_sealer().open("", now=0.0)
    assert issubclass(InvalidCookie, InvalidArgument)
    assert set(REASONS) == {
        "malformed",
        "unknown_key",
        "tampered",
        "expired",
        "wrong_room",
        "too_large",
    }


# --- golden vectors ------------------------------------------------------------------------


def fixed_nonce(nonce: bytes) -> Callable[[int], bytes]:
    def source(size: int) -> bytes:
        assert size == len(nonce)
        return nonce

    return source


def test_golden_vectors(vectors: Callable[[str], Any]) -> None:
    """Fixed keys and nonces seal exactly the pinned tokens, which open to the pinned fields
    and decrypt, with the pinned associated data, to the pinned payload."""
    document = vectors("waitingroom_cookies.json")
    assert len(document["vectors"]) == 4
    for vector in document["vectors"]:
        key = bytes.fromhex(vector["key"])
        nonce = bytes.fromhex(vector["nonce"])
        sealer = CookieSealer(
            {vector["key_id"]: key},
            primary=vector["key_id"],
            room_id=vector["room_id"],
            cookie_name=vector["cookie_name"],
            nonce_source=fixed_nonce(nonce),
        )
        cookie = QueueCookie(**vector["cookie"])
        assert sealer.seal(cookie) == vector["token"], vector["name"]
        assert sealer.inspect(vector["token"]) == cookie
        blob = blob_of(vector["token"])
        associated = bytes.fromhex(vector["associated_data"])
        assert AESGCMSIV(key).decrypt(bytes(blob[4:16]), bytes(blob[16:]), associated) == (
            bytes.fromhex(vector["payload"])
        )


def test_golden_rejects(vectors: Callable[[str], Any]) -> None:
    """The pinned bad tokens are refused for the pinned reasons."""
    rejects = vectors("waitingroom_cookies.json")["rejects"]
    config = rejects["sealer"]
    sealer = CookieSealer(
        {int(key_id): bytes.fromhex(key) for key_id, key in config["keys"].items()},
        primary=config["primary"],
        room_id=config["room_id"],
        cookie_name=config["cookie_name"],
    )
    assert len(rejects["tokens"]) == 11
    for entry in rejects["tokens"]:
        assert reason_of(sealer, entry["token"], now=rejects["now"]) == entry["reason"], entry[
            "name"
        ]


# --- size beside Fernet --------------------------------------------------------------------


def test_token_is_at_most_60_percent_of_a_fernet_token() -> None:
    """For the same packed fields a token is 71 characters and a Fernet token 120: 59 %."""
    cookie = make_cookie(accepted_at=1_680_000_001.25)
    sealer = make_sealer()
    token = sealer.seal(cookie)
    blob = blob_of(token)
    associated = bytes(blob[:4]) + bytes([4]) + b"shop" + b"__lbkit_wr"
    payload = AESGCMSIV(KEY_1).decrypt(bytes(blob[4:16]), bytes(blob[16:]), associated)
    assert len(payload) == 21
    fernet_token = Fernet(Fernet.generate_key()).encrypt(payload)
    assert (len(token), len(fernet_token)) == (71, 120)
    assert len(token) <= 0.6 * len(fernet_token)


# --- QueueCookie's checks ------------------------------------------------------------------


def test_queue_cookie_limits_are_accepted() -> None:
    """The smallest and largest value of every field are accepted and round-trip; the public
    limits are the format's."""
    assert MAX_REFRESH_INTERVAL == MAX_REFRESH / 1000
    assert MAX_COOKIE_LIFETIME == MAX_DELAY / 1000
    sealer = make_sealer()
    start = (2**32 - 1) * 60_000
    for cookie in (
        QueueCookie(
            bucket_id=0, last_check_in=0, refresh_interval=0.001, expires_at=0, accepted_at=0
        ),
        QueueCookie(
            bucket_id=2**32 - 1,
            last_check_in=(start + MAX_OFFSET) / 1000,
            refresh_interval=MAX_REFRESH / 1000,
            expires_at=(start + MAX_OFFSET + MAX_DELAY) / 1000,
            accepted_at=(start + MAX_OFFSET - 1) / 1000,
        ),
    ):
        assert sealer.inspect(sealer.seal(cookie)) == cookie


@pytest.mark.parametrize(
    ("changes", "error_type", "message"),
    [
        (
            {"bucket_id": -1},
            InvalidArgument,
            "bucket_id is -1; it must be an int in 0..4294967295 (the arrival minute)",
        ),
        (
            {"bucket_id": 2**32},
            InvalidArgument,
            "bucket_id is 4294967296; it must be an int in 0..4294967295 (the arrival minute)",
        ),
        ({"bucket_id": True}, ArgumentTypeError, "bucket_id is bool; it must be an int"),
        ({"bucket_id": 2.0}, ArgumentTypeError, "bucket_id is float; it must be an int"),
        (
            {"last_check_in": 1_679_999_999.999},
            InvalidArgument,
            "last_check_in is 1679999999.999; it must be a finite number of seconds from 1680000000.0 (the start of bucket 28000000) to 2779511627.775",
        ),
        (
            {"last_check_in": 2_779_511_627.776},
            InvalidArgument,
            "last_check_in is 2779511627.776; it must be a finite number of seconds from 1680000000.0 (the start of bucket 28000000) to 2779511627.775",
        ),
        (
            {"last_check_in": math.nan},
            InvalidArgument,
            "last_check_in is nan; it must be a finite number of seconds from 1680000000.0 (the start of bucket 28000000) to 2779511627.775",
        ),
        (
            {"last_check_in": math.inf},
            InvalidArgument,
            "last_check_in is inf; it must be a finite number of seconds from 1680000000.0 (the start of bucket 28000000) to 2779511627.775",
        ),
        (
            {"last_check_in": 1e308},
            InvalidArgument,
            "last_check_in is 1e+308; it must be a finite number of seconds from 1680000000.0 (the start of bucket 28000000) to 2779511627.775",
        ),
        (
            {"last_check_in": 10**400},
            InvalidArgument,
            "last_check_in is "
            + str(10**400)
            + "; it must be a finite number of seconds from 1680000000.0 (the start of bucket 28000000) to 2779511627.775",
        ),
        ({"last_check_in": "1"}, ArgumentTypeError, "last_check_in is str; it must be a number"),
        (
            {"last_check_in": None},
            ArgumentTypeError,
            "last_check_in is NoneType; it must be a number",
        ),
        (
            {"accepted_at": 1_679_999_999.0},
            InvalidArgument,
            "accepted_at is 1679999999.0; it must be a finite number of seconds from 1680000000.0 (the start of bucket 28000000) to 2779511627.774",
        ),
        (
            {"accepted_at": 2_779_511_627.775},
            InvalidArgument,
            "accepted_at is 2779511627.775; it must be a finite number of seconds from 1680000000.0 (the start of bucket 28000000) to 2779511627.774",
        ),
        ({"accepted_at": False}, ArgumentTypeError, "accepted_at is bool; it must be a number"),
        (
            {"expires_at": 1_680_000_012.499},
            InvalidArgument,
            "expires_at is 1680000012.499; it must be a finite number of seconds from 1680000012.5 (last_check_in) to 1684294979.795",
        ),
        (
            {"expires_at": 1_684_294_979.796},
            InvalidArgument,
            "expires_at is 1684294979.796; it must be a finite number of seconds from 1680000012.5 (last_check_in) to 1684294979.795",
        ),
        (
            {"refresh_interval": 0},
            InvalidArgument,
            "refresh_interval is 0; it must be a finite number of seconds from 0.001 to 16777.215",
        ),
        (
            {"refresh_interval": 0.0004},
            InvalidArgument,
            "refresh_interval is 0.0004; it must be a finite number of seconds from 0.001 to 16777.215",
        ),
        (
            {"refresh_interval": 16_777.216},
            InvalidArgument,
            "refresh_interval is 16777.216; it must be a finite number of seconds from 0.001 to 16777.215",
        ),
        (
            {"refresh_interval": -20.0},
            InvalidArgument,
            "refresh_interval is -20.0; it must be a finite number of seconds from 0.001 to 16777.215",
        ),
    ],
)
def test_queue_cookie_rejects_out_of_range_values(
    changes: dict[str, Any], error_type: type[Exception], message: str
) -> None:
    """Every field out of its range, NaN, infinite or of the wrong type raises, naming the
    field, the value and the range."""
    with pytest.raises(error_type) as error:
        make_cookie(**changes)
    assert str(error.value) == message


def test_queue_cookie_fields_are_keyword_only_and_frozen() -> None:
    """QueueCookie takes keywords only and cannot be changed after it is built."""
    with pytest.raises(TypeError):
        QueueCookie(0, 1.0, 20.0, 301.0)  # type: ignore[call-arg]
    cookie = make_cookie()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cookie.bucket_id = 1  # type: ignore[misc]


# --- Set-Cookie ----------------------------------------------------------------------------

# (same_site, secure, https) -> (SameSite value, Secure set): the rules of issue 7 item 1.
EXPECTED_ATTRIBUTES = {
    ("auto", "auto", True): ("None", True),
    ("auto", "auto", False): ("Lax", False),
    ("auto", "always", True): ("None", True),
    ("auto", "always", False): ("Lax", True),
    # auto never gives SameSite=None without Secure (browsers drop such cookies): Lax instead.
    ("auto", "never", True): ("Lax", False),
    ("auto", "never", False): ("Lax", False),
    ("lax", "auto", True): ("Lax", True),
    ("lax", "auto", False): ("Lax", False),
    ("lax", "always", True): ("Lax", True),
    ("lax", "always", False): ("Lax", True),
    ("lax", "never", True): ("Lax", False),
    ("lax", "never", False): ("Lax", False),
    ("strict", "auto", True): ("Strict", True),
    ("strict", "auto", False): ("Strict", False),
    ("strict", "always", True): ("Strict", True),
    ("strict", "always", False): ("Strict", True),
    ("strict", "never", True): ("Strict", False),
    ("strict", "never", False): ("Strict", False),
    ("none", "auto", True): ("None", True),
    ("none", "auto", False): ("None", True),
    ("none", "always", True): ("None", True),
    ("none", "always", False): ("None", True),
}


@pytest.mark.parametrize(("same_site", "secure", "https"), sorted(EXPECTED_ATTRIBUTES), ids=str)
def test_set_cookie_header_for_every_same_site_and_secure(
    same_site: str, secure: str, https: bool
) -> None:
    """Each SameSite/Secure setting over HTTP and HTTPS gives the expected attributes, with
    the __Host- prefix exactly when Secure is set (default Path=/, no Domain)."""
    settings = CookieSettings(same_site=same_site, secure=secure)
    same_site_value, secure_flag = EXPECTED_ATTRIBUTES[(same_site, secure, https)]
    header = set_cookie_header("tok", settings, https=https, max_age=300)
    name = "__Host-__lbkit_wr" if secure_flag else "__lbkit_wr"
    expected = f"{name}=tok; Path=/; Max-Age=300; HttpOnly"
    if secure_flag:
        expected += "; Secure"
    expected += f"; SameSite={same_site_value}"
    assert header == expected
    assert prefixed_name(settings, https=https) == name
    assert read_cookie({name: "tok"}, settings, https=https) == "tok"


def test_every_allowed_combination_is_covered() -> None:
    """The header table covers every CookieSettings combination that is allowed."""
    combinations = {
        (same_site, secure, https)
        for same_site in ("auto", "lax", "strict", "none")
        for secure in ("auto", "always", "never")
        for https in (True, False)
        if not (same_site == "none" and secure == "never")
    }
    assert combinations == set(EXPECTED_ATTRIBUTES)


def test_set_cookie_header_domain_path_and_max_age() -> None:
    """A Domain or a Path other than / drops the __Host- prefix; Max-Age is whole seconds
    rounded up; an empty token with Max-Age=0 deletes the cookie."""
    with_domain = CookieSettings(domain="example.com", same_site="lax", secure="always")
    assert set_cookie_header("t", with_domain, https=True, max_age=0.2) == (
        "__lbkit_wr=t; Path=/; Domain=example.com; Max-Age=1; HttpOnly; Secure; SameSite=Lax"
    )
    with_path = CookieSettings(path="/shop", name="wr")
    assert set_cookie_header("t", with_path, https=True, max_age=299.0001) == (
        "wr=t; Path=/shop; Max-Age=300; HttpOnly; Secure; SameSite=None"
    )
    assert set_cookie_header("", CookieSettings(), https=True, max_age=0) == (
        "__Host-__lbkit_wr=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None"
    )
    for max_age, seconds in ((0, "0"), (0.0, "0"), (1e-9, "1"), (59.5, "60"), (86_400, "86400")):
        header = set_cookie_header("t", CookieSettings(), https=False, max_age=max_age)
        assert f"; Max-Age={seconds};" in header
    token = make_sealer().seal(make_cookie())
    header = set_cookie_header(token, CookieSettings(), https=True, max_age=300)
    assert header.startswith(f"__Host-__lbkit_wr={token}; ")


def test_parse_cookie_header_reads_what_browsers_send() -> None:
    """A Cookie header splits on ';' into name to value: spaces and tabs stripped, a value's
    double quotes removed, pairs without '=' or a name skipped, the first of a repeated name
    kept, and several header lines read in order."""
    header = ' a=1;b = two ;\tc="quoted value";  flag; =nameless; a=again; e=; q="'
    assert parse_cookie_header(header) == {
        "a": "1",
        "b": "two",
        "c": "quoted value",
        "e": "",
        "q": '"',
    }
    assert parse_cookie_header(["x=1; y=2", "y=3; z=4"]) == {"x": "1", "y": "2", "z": "4"}
    assert parse_cookie_header("") == {}
    assert parse_cookie_header(iter(())) == {}
    token = make_sealer().seal(make_cookie())
    line = set_cookie_header(token, CookieSettings(), https=True, max_age=300).split(";")[0]
    assert (
        read_cookie(parse_cookie_header(f"theme=dark; {line}"), CookieSettings(), https=True)
        == token
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"a=1", r"^header is bytes; it must be a str or an iterable of str$"),
        (None, r"^header is NoneType; it must be a str or an iterable of str$"),
        (["a=1", 2], r"^header holds a int; it must be a str or an iterable of str$"),
    ],
)
def test_parse_cookie_header_refuses_what_is_not_text(header: object, message: str) -> None:
    """Bytes (decode them first), None and non-str lines are ArgumentTypeError."""
    with pytest.raises(ArgumentTypeError, match=message):
        parse_cookie_header(header)  # type: ignore[arg-type]


def test_read_cookie_honours_the_prefix() -> None:
    """read_cookie reads the name set_cookie_header writes for the same request, and only
    that one: no fallback to the unprefixed name."""
    settings = CookieSettings()
    cookies = {"__lbkit_wr": "plain", "__Host-__lbkit_wr": "prefixed"}
    assert read_cookie(cookies, settings, https=True) == "prefixed"
    assert read_cookie(cookies, settings, https=False) == "plain"
    assert read_cookie({"__lbkit_wr": "plain"}, settings, https=True) is None
    assert read_cookie({}, settings, https=False) is None
    with_domain = CookieSettings(domain="example.com")
    assert read_cookie(cookies, with_domain, https=True) == "plain"


def test_set_cookie_header_errors() -> None:
    """Bad header arguments raise with exact messages."""
    settings = CookieSettings()
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (
            lambda: set_cookie_header("a;b", settings, https=True, max_age=1),
            InvalidArgument,
            "token is 'a;b'; a cookie value holds only RFC 6265 cookie-octets",
        ),
        (
            lambda: set_cookie_header("a b", settings, https=True, max_age=1),
            InvalidArgument,
            "token is 'a b'; a cookie value holds only RFC 6265 cookie-octets",
        ),
        (
            lambda: set_cookie_header('a"', settings, https=True, max_age=1),
            InvalidArgument,
            "token is 'a\"'; a cookie value holds only RFC 6265 cookie-octets",
        ),
        (
            lambda: set_cookie_header("é", settings, https=True, max_age=1),
            InvalidArgument,
            "token is 'é'; a cookie value holds only RFC 6265 cookie-octets",
        ),
        (
            lambda: loose.set_cookie_header(b"t", settings, https=True, max_age=1),
            ArgumentTypeError,
            "token is bytes; it must be a str",
        ),
        (
            lambda: set_cookie_header("t", settings, https=True, max_age=-1),
            InvalidArgument,
            "max_age is -1; it must be finite and >= 0 seconds",
        ),
        (
            lambda: set_cookie_header("t", settings, https=True, max_age=math.nan),
            InvalidArgument,
            "max_age is nan; it must be finite and >= 0 seconds",
        ),
        (
            lambda: set_cookie_header("t", settings, https=True, max_age=math.inf),
            InvalidArgument,
            "max_age is inf; it must be finite and >= 0 seconds",
        ),
        (
            lambda: set_cookie_header("t", settings, https=True, max_age=True),
            ArgumentTypeError,
            "max_age is bool; it must be a number",
        ),
        (
            lambda: loose.set_cookie_header("t", settings, https=True, max_age="1"),
            ArgumentTypeError,
            "max_age is str; it must be a number",
        ),
        (
            lambda: loose.set_cookie_header("t", {}, https=True, max_age=1),
            ArgumentTypeError,
            "settings is dict; it must be a CookieSettings",
        ),
        (
            lambda: loose.set_cookie_header("t", settings, https=1, max_age=1),
            ArgumentTypeError,
            "https is int; it must be a bool",
        ),
        (
            lambda: set_cookie_header("t", CookieSettings(name="__Host-wr"), https=True, max_age=1),
            InvalidArgument,
            # CookieSettings refuses it first; set_cookie_header would too.
            "name is '__Host-wr'; leave out the __Host- prefix: it is added when the settings allow it",
        ),
        (
            lambda: set_cookie_header("t", CookieSettings(path="/a;b"), https=False, max_age=1),
            InvalidArgument,
            "path is '/a;b'; it must start with '/' and hold no ';', spaces or control characters",
        ),
        (
            lambda: set_cookie_header("t", CookieSettings(path="/a\nb"), https=False, max_age=1),
            InvalidArgument,
            "path is '/a\\nb'; it must start with '/' and hold no ';', spaces or control characters",
        ),
        (
            lambda: set_cookie_header("t", CookieSettings(domain="a\x00b"), https=False, max_age=1),
            InvalidArgument,
            "domain is 'a\\x00b'; an attribute value holds no ';' or control characters",
        ),
        (
            lambda: loose.read_cookie([], settings, https=True),
            ArgumentTypeError,
            "cookies is list; it must be a mapping",
        ),
        (
            lambda: loose.prefixed_name(settings, https=None),
            ArgumentTypeError,
            "https is NoneType; it must be a bool",
        ),
    ]
    for build, error_type, message in cases:
        with pytest.raises(error_type) as error:
            build()
        assert str(error.value) == message


# --- the cookiecodec kernel, each path beside the reference and an independent oracle -------

#: Characters a token must not hold, beside the alphabet: base64's other alphabet, padding,
#: what binascii would skip, non-ASCII.
NOT_BASE64URL = "+/=!. \n\x00\x7fé€"


def split_blob(blob: bytes) -> tuple[bytes, bytes, bytes]:
    return blob[:4], blob[4:16], blob[16:]


def canonical_split(text: str) -> tuple[bytes, bytes, bytes] | None:
    """The oracle for decode_token, from the base64 module: 71 alphabet characters whose bytes
    encode back to the same text."""
    if len(text) != TOKEN_LENGTH or any(character not in ALPHABET for character in text):
        return None
    blob = base64.urlsafe_b64decode(text + "=")
    return split_blob(blob) if token_of(blob) == text else None


@st.composite
def near_tokens(draw: st.DrawFn) -> str:
    """A canonical token, often with one character replaced by another (valid or not)."""
    text = token_of(draw(st.binary(min_size=53, max_size=53)))
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, TOKEN_LENGTH - 1))
        replacement = draw(st.sampled_from(ALPHABET + NOT_BASE64URL))
        text = text[:position] + replacement + text[position + 1 :]
    return text


@given(blob=st.binary(max_size=80))
def test_codec_encode_token_is_unpadded_base64url(impl: Any, blob: bytes) -> None:
    """encode_token gives the base64 module's unpadded base64url, on both paths."""
    expected = base64.urlsafe_b64encode(blob).decode().rstrip("=")
    assert impl.cookiecodec.encode_token(blob) == expected
    assert lbkit._pure._cookiecodec.encode_token(blob) == expected


@given(
    text=near_tokens() | st.text(max_size=80) | st.text(ALPHABET + "+/=", min_size=71, max_size=71)
)
def test_codec_decode_token_accepts_exactly_the_canonical_tokens(impl: Any, text: str) -> None:
    """decode_token splits a canonical 71-character token and returns None for anything else
    (wrong length, a character outside the alphabet, unused bits set), on both paths."""
    expected = canonical_split(text)
    assert impl.cookiecodec.decode_token(text) == expected
    assert lbkit._pure._cookiecodec.decode_token(text) == expected


@given(blob=st.binary(min_size=53, max_size=53))
def test_codec_token_round_trip(impl: Any, blob: bytes) -> None:
    """Any 53-byte blob encodes to 71 characters that decode to its three parts, on both paths."""
    codec = impl.cookiecodec
    token = codec.encode_token(blob)
    assert len(token) == TOKEN_LENGTH
    assert codec.decode_token(token) == split_blob(blob)


def test_codec_decode_token_takes_str_subclasses(impl: Any) -> None:
    """A str subclass decodes like the str it holds (open() accepts any str)."""

    class Text(str):
        pass

    token = token_of(bytes(range(53)))
    assert impl.cookiecodec.decode_token(Text(token)) == split_blob(bytes(range(53)))


@given(
    bucket_id=st.integers(0, 2**32 - 1),
    last_check_in=st.integers(0, MAX_OFFSET),
    accepted_at=st.integers(0, MAX_OFFSET),
    expiry=st.integers(0, MAX_DELAY),
    refresh_interval=st.integers(0, MAX_REFRESH),
)
def test_codec_payload_packs_and_unpacks_bit_for_bit(
    impl: Any,
    bucket_id: int,
    last_check_in: int,
    accepted_at: int,
    expiry: int,
    refresh_interval: int,
) -> None:
    """pack_payload writes the documented big-endian layout and cookie_fields reads it back as
    whole milliseconds / 1000 (None for the queued sentinel), on both paths."""
    codec = impl.cookiecodec
    payload = codec.pack_payload(bucket_id, last_check_in, accepted_at, expiry, refresh_interval)
    assert payload == (
        bucket_id.to_bytes(4, "big")
        + last_check_in.to_bytes(5, "big")
        + accepted_at.to_bytes(5, "big")
        + expiry.to_bytes(4, "big")
        + refresh_interval.to_bytes(3, "big")
    )
    start = bucket_id * 60_000
    fields = codec.cookie_fields(payload)
    assert fields == {
        "bucket_id": bucket_id,
        "last_check_in": (start + last_check_in) / 1000,
        "refresh_interval": refresh_interval / 1000,
        "expires_at": (start + last_check_in + expiry) / 1000,
        "accepted_at": None if accepted_at == MAX_OFFSET else (start + accepted_at) / 1000,
        "_payload": payload,
    }
    assert fields["_payload"] is payload
    assert [type(value) for value in fields.values()] == [
        type(value) for value in lbkit._pure._cookiecodec.cookie_fields(payload).values()
    ]


@pytest.mark.parametrize(
    ("position", "name", "largest"),
    [
        (0, "bucket_id", 2**32 - 1),
        (1, "last_check_in", 2**40 - 1),
        (2, "accepted_at", 2**40 - 1),
        (3, "expiry", 2**32 - 1),
        (4, "refresh_interval", 2**24 - 1),
    ],
)
@pytest.mark.parametrize("beyond", ["above", "negative", "past 64 bits"])
def test_codec_pack_payload_refuses_what_its_width_cannot_hold(
    impl: Any, position: int, name: str, largest: int, beyond: str
) -> None:
    """A field outside its width is a ValueError naming it on both paths, never truncated."""
    value = {"above": largest + 1, "negative": -1, "past 64 bits": 2**64 + 5}[beyond]
    arguments = [0, 0, 0, 0, 1]
    arguments[position] = value
    with pytest.raises(
        ValueError, match=f"^{re.escape(f'{name} is {value}; it must be in 0..{largest}')}$"
    ):
        impl.cookiecodec.pack_payload(*arguments)


def test_codec_decode_token_refuses_what_is_not_a_str(impl: Any) -> None:
    """decode_token takes text only, on both paths."""
    with pytest.raises(TypeError, match=r"^token is bytes; it must be a str$"):
        impl.cookiecodec.decode_token(b"A" * 71)


@given(payload=st.binary(min_size=21, max_size=21))
def test_codec_cookie_fields_of_any_payload(impl: Any, payload: bytes) -> None:
    """Every 21-byte payload reads the same on both paths, float for float."""
    fields = impl.cookiecodec.cookie_fields(payload)
    reference = lbkit._pure._cookiecodec.cookie_fields(payload)
    assert repr(fields) == repr(reference)
    assert fields == reference


@pytest.mark.parametrize("size", [0, 20, 22, 53])
def test_codec_refuses_a_payload_of_the_wrong_size(impl: Any, size: int) -> None:
    """cookie_fields reads only 21-byte payloads: anything else is a ValueError, never a read
    past the end."""
    with pytest.raises(ValueError, match=f"^payload is {size} bytes; a payload is 21$"):
        impl.cookiecodec.cookie_fields(bytes(size))


def test_tokens_cross_between_paths(
    fast_kernels: dict[str, Any], pure_kernels: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token sealed on one path is the same token on the other, and each path opens the
    other's tokens to equal cookies."""
    sealer = make_sealer(nonce_source=fixed_nonce(bytes(range(12))))
    cookies = [make_cookie(), make_cookie(accepted_at=1_680_000_001.25)]
    tokens = {}
    for name, kernels in (("fast", fast_kernels), ("pure", pure_kernels)):
        monkeypatch.setattr(lbkit._kernels, "cookiecodec", kernels["cookiecodec"])
        tokens[name] = [sealer.seal(cookie) for cookie in cookies]
    assert tokens["fast"] == tokens["pure"]
    for name, kernels in (("fast", fast_kernels), ("pure", pure_kernels)):
        monkeypatch.setattr(lbkit._kernels, "cookiecodec", kernels["cookiecodec"])
        other = tokens["pure" if name == "fast" else "fast"]
        assert [sealer.open(token, now=1_680_000_020.0) for token in other] == cookies


# --- cookies from milliseconds ------------------------------------------------------------


@given(
    bucket=st.integers(0, 2**32 - 1),
    offset=st.integers(0, 2**40 - 1),
    refresh=st.integers(1, 2**24 - 1),
    delay=st.integers(0, 2**32 - 1),
    accepted=st.one_of(st.none(), st.integers(0, 2**40 - 1)),
)
def test_cookie_from_milliseconds_equals_the_constructor(
    bucket: int, offset: int, refresh: int, delay: int, accepted: int | None
) -> None:
    """In range, the millisecond builder gives exactly the constructor's cookie, payload too."""
    start = bucket * 60_000
    check = start + offset
    accepted_ms = None if accepted is None else start + min(accepted, offset)
    built = cookie_from_milliseconds(bucket, check, refresh, check + delay, accepted_ms)
    expected = QueueCookie(
        bucket_id=bucket,
        last_check_in=check / 1000,
        refresh_interval=refresh / 1000,
        expires_at=(check + delay) / 1000,
        accepted_at=None if accepted_ms is None else accepted_ms / 1000,
    )
    assert built == expected
    assert built.__dict__["_payload"] == expected.__dict__["_payload"]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ((2, 100_000, 20_000, 430_000, None), InvalidArgument, "last_check_in is 100.0"),
        ((2, 130_000, 0, 430_000, None), InvalidArgument, "refresh_interval is 0.0"),
        ((2, 130_000, 20_000, 120_000, None), InvalidArgument, "expires_at is 120.0"),
        ((-1, 130_000, 20_000, 430_000, None), InvalidArgument, "bucket_id is -1"),
        ((2, 130_000, 20_000, 430_000, 110_000), InvalidArgument, "accepted_at is 110.0"),
        ((2, 130.0, 20_000, 430_000, None), ArgumentTypeError, "last_check_in is float"),
        (("2", 130_000, 20_000, 430_000, None), ArgumentTypeError, "bucket_id is str"),
        ((2, 130_000, 20_000, 430_000, True), ArgumentTypeError, "accepted_at is bool"),
    ],
)
def test_cookie_from_milliseconds_rejects_what_the_constructor_does(
    arguments: tuple[Any, ...], error: type, message: str
) -> None:
    """Out of range or of the wrong type, the builder raises the constructor's clear error."""
    with pytest.raises(error, match=message):
        cookie_from_milliseconds(*arguments)


def test_cookie_from_milliseconds_never_writes_the_queued_mark_as_an_admission() -> None:
    """An admission 2**40 - 1 ms after the bucket's start would pack as the queued mark and
    read back as a queued cookie: refused, like the constructor refuses it."""
    start = 5 * 60_000
    check = start + MAX_OFFSET
    with pytest.raises(InvalidArgument, match=r"^accepted_at is "):
        cookie_from_milliseconds(5, check, 20_000, check, start + MAX_OFFSET)
    latest = cookie_from_milliseconds(5, check, 20_000, check, start + MAX_OFFSET - 1)
    assert latest.accepted_at == (start + MAX_OFFSET - 1) / 1000
    assert latest.state == "admitted"


# --- the fused kernel calls: pack_milliseconds, seal_milliseconds, open_token ---------------

#: (bucket_id, last_check_in, refresh_interval, expires_at, accepted_at) in milliseconds.
Milliseconds = tuple[Any, Any, Any, Any, Any]


@st.composite
def milliseconds_near_the_limits(draw: st.DrawFn) -> Milliseconds:
    """Cookie times in milliseconds, in range or a step past a limit, sometimes of a type the
    format does not take."""
    bucket = draw(st.sampled_from([0, 1, 28_000_000, 2**32 - 1, 2**32, -1]))
    start = bucket * 60_000
    check = start + draw(st.sampled_from([0, 1, 5_000, MAX_OFFSET, MAX_OFFSET + 1, -1]))
    refresh = draw(st.sampled_from([1, 20_000, MAX_REFRESH, MAX_REFRESH + 1, 0, -5]))
    expires = check + draw(st.sampled_from([0, 300_000, MAX_DELAY, MAX_DELAY + 1, -1]))
    accepted = draw(
        st.sampled_from([None, start, start + 1, start + MAX_OFFSET - 1, start + MAX_OFFSET])
        | st.sampled_from([start - 1, check])
    )
    values: list[Any] = [bucket, check, refresh, expires, accepted]
    if draw(st.booleans()):
        position = draw(st.integers(0, 4))
        values[position] = draw(
            st.sampled_from([True, 1.0, "1", 2**64 + 7, -(2**70), None, IntLike(3)])
        )
    return (values[0], values[1], values[2], values[3], values[4])


class IntLike(int):
    """An int subclass: not an exact int, so the kernels refuse it and the caller decides."""


def reference_payload(values: Milliseconds) -> bytes | None:
    """What pack_milliseconds must give, from the constructor's rules: the payload of the
    cookie QueueCookie builds from these times, or None if it refuses them or one is not an
    exact int."""
    bucket, check, refresh, expires, accepted = values
    if any(type(value) is not int for value in values if value is not None) or None in (
        bucket,
        check,
        refresh,
        expires,
    ):
        return None
    try:
        cookie = QueueCookie(
            bucket_id=bucket,
            last_check_in=check / 1000,
            refresh_interval=refresh / 1000,
            expires_at=expires / 1000,
            accepted_at=None if accepted is None else accepted / 1000,
        )
    except (InvalidArgument, OverflowError):
        return None
    payload: bytes = cookie.__dict__["_payload"]
    return payload


@given(values=milliseconds_near_the_limits())
def test_pack_milliseconds_takes_exactly_what_the_constructor_takes(
    impl: Any, values: Milliseconds
) -> None:
    """pack_milliseconds gives the constructor's payload for every cookie the format holds and
    None for anything else (out of range by one, the queued mark, a bool, a float, an int
    subclass, an int past 64 bits), on both paths alike."""
    expected = reference_payload(values)
    assert impl.cookiecodec.pack_milliseconds(*values) == expected
    assert lbkit._pure._cookiecodec.pack_milliseconds(*values) == expected


@given(values=milliseconds_near_the_limits())
def test_seal_milliseconds_is_seal_of_cookie_from_milliseconds(
    impl: Any, values: Milliseconds
) -> None:
    """With the same nonce, the fused kernel call gives the token seal() gives for
    cookie_from_milliseconds(...) and an equal cookie, or None where the builder raises."""
    nonce = bytes(range(12))
    sealer = make_sealer(nonce_source=fixed_nonce(nonce))
    sealed = impl.cookiecodec.seal_milliseconds(sealer._seal_with, nonce, QueueCookie, *values)
    if reference_payload(values) is None:
        assert sealed is None
        return
    cookie = cookie_from_milliseconds(*values)
    assert sealed == (sealer.seal(cookie), cookie)
    assert type(sealed[1]) is QueueCookie
    assert sealed[1].__dict__["_payload"] == cookie.__dict__["_payload"]


def test_seal_milliseconds_passes_on_what_the_cipher_raises(impl: Any) -> None:
    """A nonce the cipher refuses is the cipher's error, from both paths (the sealer turns it
    into InvalidArgument)."""
    sealing = make_sealer()._seal_with
    arguments = (0, 1_000, 20_000, 301_000, None)
    with pytest.raises(ValueError, match="12 bytes"):
        impl.cookiecodec.seal_milliseconds(sealing, bytes(11), QueueCookie, *arguments)
    with pytest.raises(TypeError):
        impl.cookiecodec.seal_milliseconds(sealing, "x" * 12, QueueCookie, *arguments)


def test_open_token_says_why_it_cannot_open(impl: Any) -> None:
    """open_token gives the cookie, or NOT_CANONICAL, NO_CIPHER or NOT_AUTHENTIC, and refuses
    a token that is not a str, on both paths."""
    codec = impl.cookiecodec
    sealer = make_sealer()
    cookie = make_cookie()
    token = sealer.seal(cookie)
    opened = codec.open_token(token, sealer._by_header, QueueCookie)
    assert type(opened) is QueueCookie
    assert opened == cookie
    assert opened.__dict__ == cookie.__dict__
    assert codec.open_token(token[:-1] + "B", sealer._by_header, QueueCookie) == codec.NOT_CANONICAL
    assert codec.open_token("A" * 70, sealer._by_header, QueueCookie) == codec.NOT_CANONICAL
    other = make_sealer({9: KEY_2}, primary=9)
    assert codec.open_token(token, other._by_header, QueueCookie) == codec.NO_CIPHER
    altered = blob_of(token)
    altered[30] ^= 1
    assert (
        codec.open_token(token_of(altered), sealer._by_header, QueueCookie) == codec.NOT_AUTHENTIC
    )
    with pytest.raises(TypeError, match=r"^token is bytes; it must be a str$"):
        codec.open_token(token.encode(), sealer._by_header, QueueCookie)
    assert (codec.NOT_CANONICAL, codec.NO_CIPHER, codec.NOT_AUTHENTIC) == (1, 2, 3)


def test_new_cookie_skips_init_and_the_frozen_setattr(impl: Any) -> None:
    """new_cookie makes a frozen QueueCookie from its fields as they are."""
    fields = dict(make_cookie().__dict__)
    cookie = impl.cookiecodec.new_cookie(QueueCookie, fields)
    assert type(cookie) is QueueCookie
    assert cookie.__dict__ is fields
    assert cookie == make_cookie()


def test_sealer_seal_milliseconds() -> None:
    """The sealer's one-step builder: the cookie of cookie_from_milliseconds and a token that
    opens to it; the builder's errors for values out of range; a bad nonce source named."""
    sealer = make_sealer()
    token, cookie = sealer.seal_milliseconds(
        28_000_000, 1_680_000_012_500, 21_337, 1_680_000_312_500
    )
    assert cookie == make_cookie()
    assert sealer.open(token, now=1_680_000_020.0) == cookie
    admitted_token, admitted = sealer.seal_milliseconds(
        28_000_000, 1_680_000_012_500, 21_337, 1_680_000_312_500, 1_680_000_001_000
    )
    assert admitted.accepted_at == 1_680_000_001.0
    assert sealer.open(admitted_token, now=1_680_000_020.0) == admitted
    with pytest.raises(InvalidArgument, match=r"^last_check_in is 100.0"):
        sealer.seal_milliseconds(2, 100_000, 20_000, 430_000)
    with pytest.raises(ArgumentTypeError, match=r"^bucket_id is str"):
        loose_sealer().seal_milliseconds("2", 130_000, 20_000, 430_000)
    short = loose_sealer(nonce_source=lambda size: bytes(size - 1))
    with pytest.raises(InvalidArgument, match=r"^the nonce source returned 11 bytes"):
        short.seal_milliseconds(2, 130_000, 20_000, 430_000)


@pytest.mark.parametrize("outcome", ["stop", "none"])
def test_a_nonce_source_that_ends_is_named(outcome: str) -> None:
    """None or StopIteration from a nonce_source is not mistaken for the end of a block of the
    default source: the sealer says what is wrong, whichever way it seals."""

    def ended(size: int) -> bytes | None:
        if outcome == "stop":
            raise StopIteration
        return None

    sealer = loose_sealer(nonce_source=ended)
    message = "the nonce source returned None or raised StopIteration"
    with pytest.raises(InvalidArgument, match=message):
        sealer.seal(make_cookie())
    with pytest.raises(InvalidArgument, match=message):
        sealer.seal_milliseconds(2, 130_000, 20_000, 430_000)
    with pytest.raises(InvalidArgument, match=message):
        sealer.reseal_milliseconds(make_cookie(), 1_680_000_013_000, 1_680_000_313_000)


def nonce_of(token: str) -> bytes:
    return bytes(blob_of(token)[4:16])


@pytest.mark.usefixtures("fast_switching")
def test_default_nonces_are_never_repeated_across_threads() -> None:
    """Eight threads sealing 600 cookies each, across several random blocks at once, never
    get the same nonce twice."""
    sealer = make_sealer()
    cookie = make_cookie()
    tokens: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def seal() -> None:
        start.wait()
        mine = [sealer.seal(cookie) for _ in range(300)]
        mine += [sealer.seal_milliseconds(2, 130_000, 20_000, 430_000)[0] for _ in range(300)]
        with lock:
            tokens.extend(mine)

    threads = [threading.Thread(target=seal) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    nonces = [nonce_of(token) for token in tokens]
    assert len(nonces) == 4_800
    assert len(set(nonces)) == 4_800


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_never_reuses_its_parents_nonces() -> None:
    """After a fork, parent and child seal with different nonces: the child drops the block
    of random bytes it inherited."""
    sealer = make_sealer()
    cookie = make_cookie()
    sealer.seal(cookie)  # a block is in use
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, b"".join(nonce_of(sealer.seal(cookie)) for _ in range(20)))
        finally:
            os._exit(0)
    os.close(write)
    received = b""
    while chunk := os.read(read, 4096):
        received += chunk
    os.close(read)
    os.waitpid(child, 0)
    child_nonces = {received[i : i + 12] for i in range(0, len(received), 12)}
    assert len(child_nonces) == 20
    parent_nonces = {nonce_of(sealer.seal(cookie)) for _ in range(20)}
    assert not child_nonces & parent_nonces


@given(
    cookie=cookies_in_range(),
    check_offset=st.integers(-2, 2**41),
    delay=st.integers(-2, MAX_DELAY + 2),
)
def test_reseal_milliseconds_keeps_all_but_the_times(
    impl: Any, cookie: QueueCookie, check_offset: int, delay: int
) -> None:
    """reseal_milliseconds is seal_milliseconds of the cookie's bucket, refresh interval and
    admission with the new times, token for token (same nonce), None where that refuses."""
    nonce = bytes(range(12, 24))
    sealer = make_sealer()
    check = cookie.bucket_id * 60_000 + check_offset
    arguments = (
        cookie.bucket_id,
        check,
        round(cookie.refresh_interval * 1000),
        check + delay,
        None if cookie.accepted_at is None else round(cookie.accepted_at * 1000),
    )
    codec = impl.cookiecodec
    resealed = codec.reseal_milliseconds(
        sealer._seal_with, nonce, QueueCookie, cookie.__dict__["_payload"], check, check + delay
    )
    assert resealed == codec.seal_milliseconds(sealer._seal_with, nonce, QueueCookie, *arguments)
    assert resealed == lbkit._pure._cookiecodec.reseal_milliseconds(
        sealer._seal_with, nonce, QueueCookie, cookie.__dict__["_payload"], check, check + delay
    )


def test_reseal_milliseconds_refuses_a_payload_of_the_wrong_size(impl: Any) -> None:
    """Only 21-byte payloads are resealed, on both paths."""
    with pytest.raises(ValueError, match=r"^payload is 20 bytes; a payload is 21$"):
        impl.cookiecodec.reseal_milliseconds(
            make_sealer()._seal_with, bytes(12), QueueCookie, bytes(20), 0, 0
        )


def test_sealer_reseal_milliseconds() -> None:
    """The sealer renews a cookie's times and keeps the rest; times out of range are the
    builder's errors; only a QueueCookie is resealed."""
    sealer = make_sealer()
    admitted = make_cookie(accepted_at=1_680_000_001.0)
    token, renewed = sealer.reseal_milliseconds(admitted, 1_680_000_100_000, 1_680_000_400_000)
    assert renewed == attrs.evolve(
        admitted, last_check_in=1_680_000_100.0, expires_at=1_680_000_400.0
    )
    assert sealer.open(token, now=1_680_000_101.0) == renewed
    with pytest.raises(InvalidArgument, match=r"^expires_at is 1680000099.0"):
        sealer.reseal_milliseconds(admitted, 1_680_000_100_000, 1_680_000_099_000)
    with pytest.raises(ArgumentTypeError, match=r"^last_check_in is float"):
        loose_sealer().reseal_milliseconds(admitted, 1.5, 1_680_000_400_000)
    with pytest.raises(ArgumentTypeError, match=r"^cookie is dict; it must be a QueueCookie$"):
        loose_sealer().reseal_milliseconds({}, 1, 2)
