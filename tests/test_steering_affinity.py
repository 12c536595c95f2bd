"""lbkit.steering.affinity: sealed cookies (round trip, golden vector, tampering, expiry, keys),
header and client-IP sessions with their bounded table, the failover and drain decisions,
and every rejected input. Nothing here touches a kernel, so no test takes ``impl``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import struct
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.steering.affinity import (
    MAX_COOKIE_LENGTH,
    Action,
    AffinityConfig,
    AffinityMiss,
    EndpointStatus,
    InvalidAffinityCookie,
    MissReason,
    Pin,
    SessionAffinity,
    check_affinity_overrides,
)
from lbkit.steering.request import Request

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NAME = "__lbkit_affinity"


def cookie_affinity(**options: Any) -> SessionAffinity:
    extra = {name: options.pop(name) for name in ("key_id", "old_keys", "scope") if name in options}
    key = options.pop("key", KEY)
    return SessionAffinity(AffinityConfig("cookie", **options), key=key, **extra)


def with_cookie(value: str) -> Request:
    return Request(cookies={NAME: value})


def reason_of(affinity: SessionAffinity, value: str, now: float = 1.0) -> str:
    found = affinity.check(with_cookie(value), now=now)
    assert isinstance(found, AffinityMiss)
    return found.reason.value


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


ids = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30),
)


# --- cookies: round trip and golden vector ----------------------------------------------------


def test_cookie_round_trip_returns_the_pinned_ids_and_times() -> None:
    """A cookie made by pin opens to the same pool, endpoint, issue and expiry times."""
    affinity = cookie_affinity(ttl=600)
    pin = affinity.pin(None, "eu", "web-1", now=1000.25)
    assert pin is not None
    assert pin.cookie is not None
    assert (pin.issued_at, pin.expires_at) == (1000.25, 1600.25)
    found = affinity.lookup(with_cookie(pin.cookie), now=1500.0)
    assert found == Pin("eu", "web-1", issued_at=1000.25, expires_at=1600.25)
    assert affinity.stats().hits == 1


def test_int_and_str_ids_stay_distinct() -> None:
    """An int id comes back an int and a str id a str, even with the same digits."""
    affinity = cookie_affinity()
    for pool, endpoint in ((7, "7"), ("7", 7), (-3, 0)):
        pin = affinity.pin(None, pool, endpoint, now=0.0)
        assert pin is not None
        assert pin.cookie is not None
        found = affinity.lookup(with_cookie(pin.cookie), now=1.0)
        assert found is not None
        assert (found.pool_id, found.endpoint_id) == (pool, endpoint)
        assert (type(found.pool_id), type(found.endpoint_id)) == (type(pool), type(endpoint))


@given(
    pool=ids,
    endpoint=ids,
    now=st.floats(min_value=0, max_value=4e9),
    ttl=st.floats(min_value=0.01, max_value=1e7),
)
def test_cookie_round_trip_property(
    pool: str | int, endpoint: str | int, now: float, ttl: float
) -> None:
    """Any ids, time and ttl round-trip, and the session lives until its expiry, not after."""
    affinity = cookie_affinity(ttl=ttl)
    value = affinity.seal_cookie(pool, endpoint, now=now)
    assert len(value) <= MAX_COOKIE_LENGTH
    opened = affinity.open_cookie(value, now=now)
    assert opened.endpoint_key == (pool, endpoint)
    assert opened.issued_at == math.floor(now * 1000) / 1000  # millisecond precision
    assert now < opened.expires_at
    assert affinity.lookup(with_cookie(value), now=opened.expires_at) is None


def test_golden_cookie_vector() -> None:
    """The sealed bytes for a fixed key, time and ids are pinned: the format is stable."""
    affinity = cookie_affinity(ttl=3600)
    value = affinity.seal_cookie("eu", "web-1", now=1_700_000_000.0)
    assert value == GOLDEN
    raw = decode(value)
    assert raw[:18] == struct.pack(">BBQQ", 1, 0, 1_700_000_000_000, 1_700_003_600_000)
    assert raw[18:-32] == b"s\x02eus\x05web-1"
    # The tag is HMAC-SHA256 over the domain label, the (empty) scope and the body.
    signed = b"lbkit.steering.affinity.v1\x00" + b"\x00\x00" + raw[:-32]
    assert raw[-32:] == hmac.new(KEY, signed, hashlib.sha256).digest()
    assert affinity.open_cookie(value, now=1_700_000_001.0).endpoint_key == ("eu", "web-1")


GOLDEN = "AQAAAAGLz-VoAAAAAYvQHFaAcwJldXMFd2ViLTGlnuwzx9KZHLD8vGWTN8Dl0bNOQ7qHb7PHAEQ7yb473A"


def test_longest_ids_fill_the_maximum_cookie_length() -> None:
    """Ids of 255 UTF-8 bytes make the longest cookie, exactly MAX_COOKIE_LENGTH long."""
    affinity = cookie_affinity()
    value = affinity.seal_cookie("p" * 255, "é" * 127 + "x", now=0.0)
    assert len(value) == MAX_COOKIE_LENGTH
    assert affinity.open_cookie(value, now=1.0).pool_id == "p" * 255


# --- cookies: refusals ----------------------------------------------------------------------


@given(data=st.data(), pool=ids, endpoint=ids)
def test_flipping_any_byte_is_a_miss(
    data: st.DataObject, pool: str | int, endpoint: str | int
) -> None:
    """Changing any bit of any byte of a sealed cookie makes lookup return None."""
    affinity = cookie_affinity()
    raw = bytearray(decode(affinity.seal_cookie(pool, endpoint, now=5.0)))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    assert affinity.lookup(with_cookie(encode(bytes(raw))), now=6.0) is None


@given(data=st.data())
def test_changing_any_character_is_a_miss(data: st.DataObject) -> None:
    """Replacing any character of the cookie text, even in the unused bits, is a miss."""
    affinity = cookie_affinity()
    value = affinity.seal_cookie("eu", "web-1", now=5.0)
    index = data.draw(st.integers(0, len(value) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = data.draw(st.sampled_from(alphabet).filter(lambda c: c != value[index]))
    changed = value[:index] + replacement + value[index + 1 :]
    assert affinity.lookup(with_cookie(changed), now=6.0) is None


def test_non_canonical_last_character_is_malformed() -> None:
    """A last character that decodes to the same bytes but is not canonical is refused."""
    affinity = cookie_affinity()
    value = affinity.seal_cookie("eu", "web-1", now=5.0)
    assert len(value) % 4 in (2, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(value[-1])
    twin = value[:-1] + alphabet[last ^ 1]
    assert decode(twin) == decode(value)
    assert reason_of(affinity, twin, now=6.0) == "malformed"


def test_expiry_is_exactly_ttl_after_issue() -> None:
    """A cookie serves until just before issue + ttl and is expired from that instant."""
    affinity = cookie_affinity(ttl=60)
    pin = affinity.pin(None, "eu", "web-1", now=1000.0)
    assert pin is not None
    assert pin.cookie is not None
    assert affinity.lookup(with_cookie(pin.cookie), now=1059.999) is not None
    assert reason_of(affinity, pin.cookie, now=1060.0) == "expired"
    assert reason_of(affinity, pin.cookie, now=5000.0) == "expired"


def test_default_cookie_ttl_is_23_hours() -> None:
    """Without a ttl, cookies live 82,800 seconds (Cloudflare's default)."""
    pin = cookie_affinity().pin(None, "eu", "web-1", now=0.0)
    assert pin is not None
    assert pin.expires_at == 82_800.0


def test_cookie_sealed_with_another_key_is_a_bad_signature() -> None:
    """A cookie sealed by a load balancer with a different key does not verify."""
    value = cookie_affinity(key=OTHER_KEY).seal_cookie("eu", "web-1", now=0.0)
    assert reason_of(cookie_affinity(), value) == "bad-signature"


def test_cookie_from_another_scope_is_a_bad_signature() -> None:
    """The scope is bound into the tag: the same key under another scope refuses the cookie."""
    value = cookie_affinity(scope="shop.example").seal_cookie("eu", "web-1", now=0.0)
    assert reason_of(cookie_affinity(scope="api.example"), value) == "bad-signature"
    assert cookie_affinity(scope="shop.example").lookup(with_cookie(value), now=1.0) is not None


def test_key_rotation_keeps_old_sessions_and_seals_with_the_new_key() -> None:
    """After rotation old cookies still open, new ones carry the new key id, and dropping
    the old key turns its cookies into unknown-key misses."""
    old = cookie_affinity(key=KEY, key_id=3).seal_cookie("eu", "web-1", now=0.0)
    rotated = cookie_affinity(key=OTHER_KEY, key_id=4, old_keys={3: KEY})
    assert rotated.open_cookie(old, now=1.0).endpoint_id == "web-1"
    new = rotated.seal_cookie("us", "web-9", now=0.0)
    assert decode(new)[1] == 4
    assert cookie_affinity(key=KEY, key_id=3).lookup(with_cookie(new), now=1.0) is None
    retired = cookie_affinity(key=OTHER_KEY, key_id=4)
    assert reason_of(retired, old) == "unknown-key"
    assert retired.lookup(with_cookie(new), now=1.0) is not None


def test_refused_cookies_are_misses_with_a_reason() -> None:
    """Oversized, malformed, truncated, future-version and unknown-key cookies are misses."""
    affinity = cookie_affinity()
    raw = decode(affinity.seal_cookie("eu", "web-1", now=0.0))
    cases = {
        "A" * (MAX_COOKIE_LENGTH + 1): "oversized",
        "not base64!": "malformed",
        encode(raw) + "==": "malformed",
        "AAAAA": "malformed",  # a length no base64 text has
        encode(raw[:55]): "truncated",
        "": "truncated",
        encode(b"\x02" + raw[1:]): "unsupported-version",
        encode(raw[:1] + b"\x09" + raw[2:]): "unknown-key",
        encode(raw[:-1]): "bad-signature",
        encode(raw + b"\x00"): "bad-signature",
    }
    for value, reason in cases.items():
        assert reason_of(affinity, value) == reason, value
        with pytest.raises(InvalidAffinityCookie) as caught:
            affinity.open_cookie(value, now=1.0)
        assert caught.value.reason.value == reason


def test_request_without_a_cookie_is_absent() -> None:
    """No affinity cookie (or a cookie of another name) is an 'absent' miss."""
    affinity = cookie_affinity()
    assert affinity.check(Request(cookies={"other": "x"}), now=0.0) == AffinityMiss(
        MissReason.ABSENT
    )


def test_misses_are_counted_per_reason() -> None:
    """stats() counts hits and every miss reason; open_cookie counts nothing."""
    affinity = cookie_affinity(ttl=10)
    value = affinity.seal_cookie("eu", "web-1", now=0.0)
    affinity.lookup(Request(), now=0.0)
    affinity.lookup(with_cookie("x"), now=0.0)
    affinity.lookup(with_cookie(value), now=1.0)
    affinity.lookup(with_cookie(value), now=10.0)
    affinity.lookup(with_cookie(value), now=11.0)
    with pytest.raises(InvalidAffinityCookie):
        affinity.open_cookie("x", now=0.0)
    stats = affinity.stats()
    assert stats.hits == 1
    assert stats.misses["absent"] == 1
    assert stats.misses["malformed"] == 1
    assert stats.misses["expired"] == 2
    assert sum(stats.misses.values()) == 4
    assert "disabled" not in stats.misses


def test_open_cookie_message_names_the_reason() -> None:
    """open_cookie raises InvalidAffinityCookie (an InvalidArgument) saying what is wrong."""
    affinity = cookie_affinity(ttl=10)
    value = affinity.seal_cookie("eu", "web-1", now=0.0)
    with pytest.raises(InvalidAffinityCookie) as caught:
        affinity.open_cookie(value, now=10.0)
    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.reason is MissReason.EXPIRED
    shown = value if len(value) <= 80 else value[:77] + "..."
    assert (
        str(caught.value) == f"affinity cookie {shown!r} refused (expired): the session has expired"
    )
    long_value = "A" * 900
    with pytest.raises(
        InvalidAffinityCookie, match=r"^affinity cookie 'A{77}\.\.\.' refused \(oversized\)"
    ):
        affinity.open_cookie(long_value, now=0.0)


def test_set_cookie_header_carries_the_configured_attributes() -> None:
    """set_cookie renders name=value, Max-Age (rounded up), Path, Domain and the flags."""
    affinity = cookie_affinity(
        ttl=90.5, cookie_name="lb", same_site="Strict", domain="shop.example", path="/app"
    )
    pin = affinity.pin(None, "eu", "web-1", now=0.0)
    assert pin is not None
    assert affinity.set_cookie(pin) == (
        f"lb={pin.cookie}; Max-Age=91; Path=/app; Domain=shop.example; Secure; HttpOnly; "
        "SameSite=Strict"
    )
    plain = cookie_affinity(secure=False, http_only=False, same_site=None)
    pin = plain.pin(None, "eu", "web-1", now=0.0)
    assert pin is not None
    assert plain.set_cookie(pin) == f"{NAME}={pin.cookie}; Max-Age=82800; Path=/"


def test_set_cookie_needs_a_cookie_pin() -> None:
    """A table pin has no cookie to send."""
    affinity = cookie_affinity()
    with pytest.raises(
        InvalidArgument, match=r"^pin.cookie is None; only cookie-mode pins carry a cookie$"
    ):
        affinity.set_cookie(Pin("eu", "web-1", issued_at=0.0, expires_at=1.0))
    with pytest.raises(ArgumentTypeError, match=r"^pin is str; it must be a Pin$"):
        affinity.set_cookie("x")  # type: ignore[arg-type]


# --- pin arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "endpoint", "error", "message"),
    [
        ("", "a", InvalidArgument, "pool_id is ''; ids must not be empty"),
        ("a", True, ArgumentTypeError, "endpoint_id is bool; ids must be str or int"),
        ("a", 1.5, ArgumentTypeError, "endpoint_id is float; ids must be str or int"),
        (
            "p" * 256,
            "a",
            InvalidArgument,
            "pool_id takes 256 bytes; sealed ids are at most 255 UTF-8 bytes",
        ),
        (
            "a",
            10**255,
            InvalidArgument,
            "endpoint_id takes 256 bytes; sealed ids are at most 255 UTF-8 bytes",
        ),
        (
            "a\ud800",
            "a",
            InvalidArgument,
            "pool_id has the unencodable character '\\ud800'; ids are sealed as UTF-8",
        ),
    ],
)
def test_pin_rejects_bad_ids(
    pool: Any, endpoint: Any, error: type[Exception], message: str
) -> None:
    """Ids must be non-empty str or int that fit a cookie, in every mode."""
    for affinity in (cookie_affinity(), SessionAffinity(AffinityConfig("client_ip"), key=KEY)):
        with pytest.raises(error) as caught:
            affinity.pin(Request(client_ip="192.0.2.1"), pool, endpoint, now=0.0)
        assert str(caught.value) == message


@pytest.mark.parametrize(
    ("now", "error", "message"),
    [
        (-1.0, InvalidArgument, "now is -1.0; times must be finite seconds in 0..9007199254741"),
        (math.nan, InvalidArgument, "now is nan; times must be finite seconds in 0..9007199254741"),
        (math.inf, InvalidArgument, "now is inf; times must be finite seconds in 0..9007199254741"),
        (
            1e13,
            InvalidArgument,
            "now is 10000000000000.0; times must be finite seconds in 0..9007199254741",
        ),
        (True, ArgumentTypeError, "now is bool; it must be a number"),
        ("0", ArgumentTypeError, "now is str; it must be a number"),
    ],
)
def test_bad_now_is_rejected(now: Any, error: type[Exception], message: str) -> None:
    """Times are finite seconds since the epoch, in range; lookup and pin both check."""
    affinity = cookie_affinity()
    for call in (
        lambda: affinity.lookup(Request(), now=now),
        lambda: affinity.pin(None, "eu", "a", now=now),
        lambda: affinity.resolve(
            Pin("eu", "a", issued_at=0.0, expires_at=1.0), status="healthy", now=now
        ),
    ):
        with pytest.raises(error) as caught:
            call()
        assert str(caught.value) == message


def test_lookup_needs_a_request() -> None:
    """lookup and check take a Request; table modes need one to pin."""
    affinity = cookie_affinity()
    with pytest.raises(ArgumentTypeError, match=r"^request is dict; it must be a Request$"):
        affinity.lookup({}, now=0.0)  # type: ignore[arg-type]
    table = SessionAffinity(AffinityConfig("client_ip"), key=KEY)
    with pytest.raises(
        InvalidArgument, match=r"^request is None; by='client_ip' reads the session key from it$"
    ):
        table.pin(None, "eu", "a", now=0.0)


# --- failover and drain -----------------------------------------------------------------------

DECISIONS = {
    # (status, failed): (none, temporary, sticky)
    ("healthy", False): ("use", "use", "use"),
    ("healthy", True): ("fail", "detour", "repin"),
    ("unhealthy", False): ("repin", "detour", "repin"),
    ("unhealthy", True): ("repin", "detour", "repin"),
    ("gone", False): ("repin", "repin", "repin"),
    ("gone", True): ("repin", "repin", "repin"),
}


@pytest.mark.parametrize(("status", "failed"), list(DECISIONS))
@pytest.mark.parametrize("failover", ["none", "temporary", "sticky"])
def test_failover_modes_decide_as_documented(status: str, failed: bool, failover: str) -> None:
    """Each failover mode maps the pinned endpoint's state to the documented action."""
    affinity = cookie_affinity(failover=failover)
    pin = Pin("eu", "web-1", issued_at=0.0, expires_at=100.0)
    resolution = affinity.resolve(pin, status=status, failed=failed, now=1.0)
    expected = DECISIONS[(status, failed)][["none", "temporary", "sticky"].index(failover)]
    assert resolution.action.value == expected
    assert resolution.pin is pin
    assert resolution.reason.startswith("affinity: ")
    assert "'eu'/'web-1'" in resolution.reason


def test_resolution_reasons_read_well_in_logs() -> None:
    """Reasons name the endpoint, what happened and the mode that decided."""
    pin = Pin("eu", "web-1", issued_at=0.0, expires_at=100.0)
    none, temporary = cookie_affinity(), cookie_affinity(failover="temporary")
    assert none.resolve(pin, status="healthy", now=1.0).reason == "affinity: pinned to 'eu'/'web-1'"
    assert none.resolve(pin, status="healthy", failed=True, now=1.0).reason == (
        "affinity: 'eu'/'web-1' failed this request; failover=none does not retry elsewhere"
    )
    assert none.resolve(pin, status=EndpointStatus.UNHEALTHY, now=1.0).reason == (
        "affinity: 'eu'/'web-1' is unhealthy; re-pinning (failover=none)"
    )
    assert temporary.resolve(pin, status="unhealthy", now=1.0).reason == (
        "affinity: 'eu'/'web-1' is unhealthy; serving elsewhere until it recovers (failover=temporary)"
    )
    assert none.resolve(pin, status="gone", now=1.0).reason == (
        "affinity: 'eu'/'web-1' is out of service; re-pinning"
    )


def test_temporary_failover_returns_to_the_pinned_endpoint_once_healthy() -> None:
    """With temporary failover the session detours while its endpoint is down and uses it
    again, with the same cookie, when it is back."""
    affinity = cookie_affinity(failover="temporary")
    first = affinity.pin(None, "eu", "web-1", now=0.0)
    assert first is not None
    assert first.cookie is not None
    request = with_cookie(first.cookie)
    actions = []
    for now, status in ((1.0, "healthy"), (2.0, "unhealthy"), (3.0, "unhealthy"), (4.0, "healthy")):
        pin = affinity.lookup(request, now=now)
        assert pin is not None
        actions.append(affinity.resolve(pin, status=status, now=now).action)
    assert actions == [Action.USE, Action.DETOUR, Action.DETOUR, Action.USE]


def test_sticky_failover_moves_the_session() -> None:
    """With sticky failover the load balancer re-pins, and the new cookie names the new endpoint."""
    affinity = cookie_affinity(failover="sticky")
    first = affinity.pin(None, "eu", "web-1", now=0.0)
    assert first is not None
    assert first.cookie is not None
    pin = affinity.lookup(with_cookie(first.cookie), now=1.0)
    assert pin is not None
    assert affinity.resolve(pin, status="healthy", failed=True, now=1.0).action is Action.REPIN
    second = affinity.pin(None, "eu", "web-2", now=1.0)
    assert second is not None
    assert second.cookie is not None
    moved = affinity.lookup(with_cookie(second.cookie), now=2.0)
    assert moved is not None
    assert moved.endpoint_id == "web-2"
    assert affinity.resolve(moved, status="healthy", now=2.0).action is Action.USE


def test_draining_endpoint_keeps_sessions_for_the_drain_duration() -> None:
    """A draining endpoint serves its sessions until drain start + duration, then re-pins."""
    affinity = cookie_affinity(drain_duration=300)
    pin = Pin("eu", "web-1", issued_at=0.0, expires_at=10_000.0)
    use = affinity.resolve(pin, status="draining", drain_started=100.0, now=399.5)
    assert use.action is Action.USE
    assert use.reason == "affinity: pinned to 'eu'/'web-1', draining until 400"
    done = affinity.resolve(pin, status="draining", drain_started=100.0, now=400.0)
    assert done.action is Action.REPIN
    assert done.reason == "affinity: 'eu'/'web-1' finished draining at 400; re-pinning"


def test_zero_drain_duration_moves_sessions_at_once() -> None:
    """With drain_duration 0 a draining endpoint's sessions re-pin immediately."""
    pin = Pin("eu", "web-1", issued_at=0.0, expires_at=10_000.0)
    resolution = cookie_affinity().resolve(pin, status="draining", drain_started=5.0, now=5.0)
    assert resolution.action is Action.REPIN


@pytest.mark.parametrize(
    ("failover", "action"), [("none", "fail"), ("temporary", "detour"), ("sticky", "repin")]
)
def test_failure_on_a_draining_endpoint_follows_the_failover_mode(
    failover: str, action: str
) -> None:
    """Within its drain an endpoint counts as healthy, so a failed request follows the mode."""
    affinity = cookie_affinity(failover=failover, drain_duration=60)
    pin = Pin("eu", "web-1", issued_at=0.0, expires_at=10_000.0)
    resolution = affinity.resolve(pin, status="draining", drain_started=0.0, failed=True, now=1.0)
    assert resolution.action.value == action


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"status": "draining"},
            InvalidArgument,
            "drain_started is None; status 'draining' needs it",
        ),
        (
            {"status": "draining", "drain_started": math.inf},
            InvalidArgument,
            "drain_started is inf; it must be finite",
        ),
        (
            {"status": "draining", "drain_started": "0"},
            ArgumentTypeError,
            "drain_started is str; it must be a number",
        ),
        (
            {"status": "down"},
            ConfigError,
            "status is 'down'; it must be one of healthy, unhealthy, draining, gone",
        ),
        ({"status": 1}, ArgumentTypeError, "status is int; it must be an EndpointStatus or str"),
        ({"status": "healthy", "failed": 1}, ArgumentTypeError, "failed is int; it must be a bool"),
    ],
)
def test_resolve_rejects_bad_arguments(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """resolve validates the status, the drain start and the failed flag."""
    pin = Pin("eu", "web-1", issued_at=0.0, expires_at=10.0)
    with pytest.raises(error) as caught:
        cookie_affinity().resolve(pin, now=1.0, **options)
    assert str(caught.value) == message
    with pytest.raises(ArgumentTypeError, match=r"^pin is tuple; it must be a Pin$"):
        cookie_affinity().resolve(("eu", "web-1"), status="healthy", now=1.0)  # type: ignore[arg-type]


# --- header and client-IP sessions ------------------------------------------------------------


def header_affinity(*names: str, **options: Any) -> SessionAffinity:
    max_sessions = options.pop("max_sessions", 100_000)
    config = AffinityConfig("header", headers=list(names), **options)
    return SessionAffinity(config, key=KEY, max_sessions=max_sessions)


def test_header_sessions_follow_the_header_value() -> None:
    """Requests with the same header value share a session; another value has none."""
    affinity = header_affinity("X-Session-Id")
    pin = affinity.pin(Request(headers={"x-session-id": "abc"}), "eu", "web-1", now=0.0)
    assert pin == Pin("eu", "web-1", issued_at=0.0, expires_at=1800.0)
    found = affinity.lookup(Request(headers={"X-SESSION-ID": "abc"}), now=10.0)
    assert found is not None
    assert found.endpoint_key == ("eu", "web-1")
    other = affinity.check(Request(headers={"x-session-id": "abd"}), now=10.0)
    assert other == AffinityMiss(MissReason.UNKNOWN_SESSION)


def test_header_sessions_need_a_header() -> None:
    """Without any configured header there is no session: lookup is absent, pin is None."""
    affinity = header_affinity("x-a", "x-b")
    assert affinity.check(Request(headers={"x-c": "1"}), now=0.0) == AffinityMiss(MissReason.ABSENT)
    assert affinity.pin(Request(), "eu", "web-1", now=0.0) is None
    assert affinity.stats().sessions == 0


def test_header_set_is_part_of_the_session_key() -> None:
    """Adding or removing a configured header starts a different session."""
    affinity = header_affinity("x-a", "x-b")
    affinity.pin(Request(headers={"x-a": "1"}), "eu", "web-1", now=0.0)
    assert affinity.lookup(Request(headers={"x-a": "1"}), now=1.0) is not None
    assert affinity.lookup(Request(headers={"x-a": "1", "x-b": "2"}), now=1.0) is None
    assert affinity.lookup(Request(headers={"x-b": "1"}), now=1.0) is None


def test_require_all_headers() -> None:
    """With require_all_headers a session needs every configured header."""
    affinity = header_affinity("x-a", "x-b", require_all_headers=True)
    assert affinity.pin(Request(headers={"x-a": "1"}), "eu", "web-1", now=0.0) is None
    both = Request(headers={"x-a": "1", "x-b": "2"})
    assert affinity.pin(both, "eu", "web-1", now=0.0) is not None
    assert affinity.lookup(both, now=1.0) is not None


def test_table_sessions_expire_after_ttl_without_use() -> None:
    """Each hit extends a table session to now + ttl; an idle ttl ends it."""
    affinity = header_affinity("x-sid", ttl=100)
    request = Request(headers={"x-sid": "s"})
    affinity.pin(request, "eu", "web-1", now=0.0)
    found = affinity.lookup(request, now=99.0)
    assert found is not None
    assert found.expires_at == 199.0
    assert affinity.lookup(request, now=198.0) is not None
    assert affinity.check(request, now=298.0) == AffinityMiss(MissReason.EXPIRED)
    assert affinity.check(request, now=298.0) == AffinityMiss(MissReason.UNKNOWN_SESSION)
    assert affinity.stats().sessions == 0


def test_client_ip_sessions() -> None:
    """Client-IP sessions key on the address, IPv4 or IPv6, spelled any valid way."""
    affinity = SessionAffinity(AffinityConfig("client_ip", ttl=60), key=KEY)
    affinity.pin(Request(client_ip="2001:db8::1"), "us", 3, now=0.0)
    found = affinity.lookup(Request(client_ip="2001:0db8:0:0:0:0:0:1"), now=1.0)
    assert found is not None
    assert found.endpoint_key == ("us", 3)
    assert affinity.lookup(Request(client_ip="192.0.2.1"), now=1.0) is None
    assert affinity.check(Request(), now=1.0) == AffinityMiss(MissReason.ABSENT)


def test_repinning_a_table_session_replaces_it() -> None:
    """Pinning a session again points it at the new endpoint."""
    affinity = SessionAffinity(AffinityConfig("client_ip"), key=KEY)
    request = Request(client_ip="192.0.2.1")
    affinity.pin(request, "eu", "web-1", now=0.0)
    affinity.pin(request, "eu", "web-2", now=1.0)
    found = affinity.lookup(request, now=2.0)
    assert found is not None
    assert found.endpoint_id == "web-2"
    assert affinity.stats().sessions == 1


def test_table_is_bounded_and_evicts_the_least_recently_used() -> None:
    """Beyond max_sessions the least recently used session goes, and evictions are counted."""
    affinity = SessionAffinity(AffinityConfig("client_ip"), key=KEY, max_sessions=2)
    first, second, third = (Request(client_ip=f"192.0.2.{i}") for i in (1, 2, 3))
    affinity.pin(first, "eu", "a", now=0.0)
    affinity.pin(second, "eu", "b", now=1.0)
    assert affinity.lookup(first, now=2.0) is not None  # first is now the most recent
    affinity.pin(third, "eu", "c", now=3.0)
    assert affinity.lookup(second, now=4.0) is None
    assert affinity.lookup(first, now=4.0) is not None
    assert affinity.lookup(third, now=4.0) is not None
    stats = affinity.stats()
    assert (stats.evictions, stats.sessions) == (1, 2)


@given(st.lists(st.integers(0, 20), max_size=200), st.integers(1, 8))
def test_table_never_exceeds_its_bound(clients: list[int], bound: int) -> None:
    """Whatever the order of pins, the table holds at most max_sessions and counts every
    eviction."""
    affinity = SessionAffinity(AffinityConfig("client_ip"), key=KEY, max_sessions=bound)
    distinct: list[int] = []
    evictions = 0
    for now, client in enumerate(clients):
        affinity.pin(Request(client_ip=f"10.0.0.{client}"), "p", client, now=float(now))
        if client in distinct:
            distinct.remove(client)
        distinct.append(client)
        if len(distinct) > bound:
            distinct.pop(0)
            evictions += 1
        assert affinity.stats().sessions == len(distinct) <= bound
    assert affinity.stats().evictions == evictions
    for client in distinct:
        found = affinity.lookup(Request(client_ip=f"10.0.0.{client}"), now=float(len(clients)))
        assert found is not None
        assert found.endpoint_id == client


def test_disabled_affinity_never_pins() -> None:
    """With by='none' lookup misses as 'disabled' (uncounted) and pin records nothing."""
    affinity = SessionAffinity(AffinityConfig("none"), key=KEY)
    assert affinity.check(Request(client_ip="192.0.2.1"), now=0.0) == AffinityMiss(
        MissReason.DISABLED
    )
    assert affinity.pin(Request(client_ip="192.0.2.1"), "eu", "a", now=0.0) is None
    assert sum(affinity.stats().misses.values()) == 0


def test_lookups_from_many_threads_are_all_counted() -> None:
    """Concurrent pins and lookups keep the table and the counters consistent."""
    affinity = SessionAffinity(AffinityConfig("client_ip"), key=KEY, max_sessions=50)

    def work(worker: int) -> None:
        for step in range(300):
            request = Request(client_ip=f"10.{worker}.{step % 40}.1")
            if affinity.lookup(request, now=float(step)) is None:
                affinity.pin(request, "p", step, now=float(step))

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = affinity.stats()
    assert stats.hits + sum(stats.misses.values()) == 4 * 300
    assert stats.sessions <= 50


# --- overrides ----------------------------------------------------------------------------------


def test_with_overrides_shares_keys_table_and_counters() -> None:
    """A variant reads the base's cookies and table and adds to the same counters."""
    base = SessionAffinity(AffinityConfig("client_ip", ttl=60), key=KEY)
    request = Request(client_ip="192.0.2.1")
    base.pin(request, "eu", "a", now=0.0)
    variant = base.with_overrides({"ttl": 10, "failover": "sticky"})
    assert variant.config == AffinityConfig("client_ip", ttl=10, failover="sticky")
    found = variant.lookup(request, now=1.0)
    assert found is not None
    assert found.expires_at == 60.0
    assert base.stats().hits == 1
    assert variant.with_overrides({}) is variant
    cookie = base.with_overrides({"by": "cookie"})
    value = cookie.seal_cookie("eu", "a", now=0.0)
    assert base.with_overrides({"by": "cookie"}).open_cookie(value, now=1.0).endpoint_id == "a"


def test_with_overrides_variants_are_cached() -> None:
    """Equal overrides give the same variant object."""
    base = cookie_affinity()
    assert base.with_overrides({"ttl": 5}) is base.with_overrides({"ttl": 5.0})
    assert base.with_overrides({"ttl": 5}) is not base.with_overrides({"ttl": 6})


def test_with_overrides_rejects_bad_combinations() -> None:
    """Overrides are validated, including against the rest of the config."""
    base = cookie_affinity()
    with pytest.raises(
        ConfigError, match=r"^headers is \(\); by='header' needs at least one header name$"
    ):
        base.with_overrides({"by": "header"})
    with pytest.raises(
        ConfigError, match=r"^session_affinity has the unknown key 'tll'; it may set by, ttl, "
    ):
        base.with_overrides({"tll": 5})


def test_check_affinity_overrides_converts_values() -> None:
    """Partial settings are checked field by field and converted as the config stores them."""
    assert check_affinity_overrides({"by": "header", "headers": ["X-A"], "drain_duration": 5}) == {
        "by": "header",
        "headers": ("x-a",),
        "drain_duration": 5.0,
    }
    with pytest.raises(
        ArgumentTypeError, match=r"^session_affinity is list; it must be a mapping$"
    ):
        check_affinity_overrides([])
    with pytest.raises(
        ConfigError,
        match=r"^session_affinity has the unknown key 1; it may set by, ttl, failover, drain_duration, headers, require_all_headers, cookie_name, secure, http_only, same_site, path, domain$",
    ):
        check_affinity_overrides({1: "x"})


# --- configuration and construction errors ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "options", "error", "message"),
    [
        (
            ("cookies",),
            {},
            ConfigError,
            "by is 'cookies'; it must be one of none, cookie, header, client_ip",
        ),
        ((None,), {}, ArgumentTypeError, "by is NoneType; it must be a str"),
        (
            ("cookie",),
            {"failover": "always"},
            ConfigError,
            "failover is 'always'; it must be one of none, temporary, sticky",
        ),
        (
            ("cookie",),
            {"ttl": 0},
            ConfigError,
            "ttl is 0; it must be finite, > 0 and <= 1e+09 seconds",
        ),
        (
            ("cookie",),
            {"ttl": -5.0},
            ConfigError,
            "ttl is -5.0; it must be finite, > 0 and <= 1e+09 seconds",
        ),
        (
            ("cookie",),
            {"ttl": math.nan},
            ConfigError,
            "ttl is nan; it must be finite, > 0 and <= 1e+09 seconds",
        ),
        (
            ("cookie",),
            {"ttl": 2e9},
            ConfigError,
            "ttl is 2000000000.0; it must be finite, > 0 and <= 1e+09 seconds",
        ),
        (("cookie",), {"ttl": "60"}, ArgumentTypeError, "ttl is str; it must be a number"),
        (
            ("cookie",),
            {"drain_duration": -1},
            ConfigError,
            "drain_duration is -1; durations must be finite and >= 0",
        ),
        (
            ("cookie",),
            {"drain_duration": math.inf},
            ConfigError,
            "drain_duration is inf; durations must be finite and >= 0",
        ),
        (("header",), {}, ConfigError, "headers is (); by='header' needs at least one header name"),
        (
            ("header",),
            {"headers": "x-sid"},
            ArgumentTypeError,
            "headers is str; it must be a list or tuple of header names",
        ),
        (
            ("header",),
            {"headers": ["x sid"]},
            ConfigError,
            "headers[0] is 'x sid'; header names are HTTP tokens (letters, digits and !#$%&'*+-.^_`|~)",
        ),
        (
            ("header",),
            {"headers": ["X-A", "x-a"]},
            ConfigError,
            "headers[1] is 'x-a', a repeat; header names are unique (case-insensitively)",
        ),
        (
            ("header",),
            {"headers": [b"x"]},
            ArgumentTypeError,
            "headers[0] is bytes; header names must be str",
        ),
        (
            ("header",),
            {"headers": ["x"], "require_all_headers": 1},
            ArgumentTypeError,
            "require_all_headers is int; it must be a bool",
        ),
        (
            ("cookie",),
            {"cookie_name": "a=b"},
            ConfigError,
            "cookie_name is 'a=b'; cookie names are HTTP tokens (letters, digits and !#$%&'*+-.^_`|~)",
        ),
        (
            ("cookie",),
            {"same_site": "lax"},
            ConfigError,
            "same_site is 'lax'; it must be 'Strict', 'Lax', 'None', or None to omit it",
        ),
        (
            ("cookie",),
            {"same_site": "None", "secure": False},
            ConfigError,
            "same_site is 'None' but secure is False; browsers reject SameSite=None cookies that are not Secure",
        ),
        (("cookie",), {"path": "app"}, ConfigError, "path is 'app'; a cookie path starts with '/'"),
        (
            ("cookie",),
            {"path": "/a;b"},
            ConfigError,
            "path is '/a;b'; cookie attributes must be printable, without ; , \\ or \"",
        ),
        (
            ("cookie",),
            {"path": "/a b"},
            ConfigError,
            "path is '/a b'; cookie attributes must not contain spaces",
        ),
        (
            ("cookie",),
            {"domain": ""},
            ConfigError,
            "domain is ''; use None to leave the cookie's domain unset",
        ),
        (
            ("cookie",),
            {"domain": "a\r\nb"},
            ConfigError,
            "domain is 'a\\r\\nb'; cookie attributes must be printable, without ; , \\ or \"",
        ),
        (("cookie",), {"secure": "yes"}, ArgumentTypeError, "secure is str; it must be a bool"),
    ],
)
def test_config_rejects_bad_values(
    args: tuple[Any, ...], options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every AffinityConfig rule has a message naming the field, the value and the rule."""
    with pytest.raises(error) as caught:
        AffinityConfig(*args, **options)
    assert str(caught.value) == message


def test_config_defaults() -> None:
    """The defaults: failover none, no drain, Lax/Secure/HttpOnly cookie at '/'."""
    config = AffinityConfig("cookie")
    assert (config.failover, config.drain_duration, config.ttl) == ("none", 0.0, None)
    assert (config.cookie_name, config.secure, config.http_only, config.same_site, config.path) == (
        NAME,
        True,
        True,
        "Lax",
        "/",
    )
    assert AffinityConfig("header", headers=["x"]).session_ttl == 1800.0
    assert AffinityConfig("cookie", ttl=5).session_ttl == 5.0


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"key": b"short"},
            ConfigError,
            "key has 5 bytes; keys need at least 32 random bytes (secrets.token_bytes(32))",
        ),
        ({"key": "k" * 32}, ArgumentTypeError, "key is str; keys must be bytes"),
        ({"key": KEY, "key_id": 256}, ConfigError, "key_id is 256; key ids must be in 0..255"),
        ({"key": KEY, "key_id": True}, ArgumentTypeError, "key_id is bool; key ids must be int"),
        (
            {"key": KEY, "old_keys": {0: OTHER_KEY}},
            ConfigError,
            "old_keys[0] reuses the key id 0; every key needs its own id",
        ),
        (
            {"key": KEY, "old_keys": {1: b"x"}},
            ConfigError,
            "old_keys[1] has 1 bytes; keys need at least 32 random bytes (secrets.token_bytes(32))",
        ),
        (
            {"key": KEY, "old_keys": {-1: OTHER_KEY}},
            ConfigError,
            "old_keys[-1] id is -1; key ids must be in 0..255",
        ),
        (
            {"key": KEY, "old_keys": [OTHER_KEY]},
            ArgumentTypeError,
            "old_keys is list; it must be a mapping of key id to key",
        ),
        ({"key": KEY, "max_sessions": 0}, ConfigError, "max_sessions is 0; it must be an int >= 1"),
        (
            {"key": KEY, "max_sessions": 1.0},
            ArgumentTypeError,
            "max_sessions is float; it must be an int",
        ),
        ({"key": KEY, "scope": b"x"}, ArgumentTypeError, "scope is bytes; it must be a str"),
    ],
)
def test_session_affinity_rejects_bad_arguments(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Keys are at least 32 bytes with ids in 0..255, each id once; the table bound is >= 1."""
    with pytest.raises(error) as caught:
        SessionAffinity(AffinityConfig("cookie"), **options)
    assert str(caught.value) == message


def test_session_affinity_needs_a_config() -> None:
    """The first argument is an AffinityConfig."""
    with pytest.raises(ArgumentTypeError, match=r"^config is str; it must be an AffinityConfig$"):
        SessionAffinity("cookie", key=KEY)  # type: ignore[arg-type]
