"""lbkit.waitingroom configuration: defaults, the cookie's SameSite and Secure rules, and
every rejected setting."""

from __future__ import annotations

from typing import Any

import pytest

from lbkit.errors import ArgumentTypeError, ConfigError
from lbkit.waitingroom import CookieSettings, WaitingRoomConfig


def config(**changes: Any) -> WaitingRoomConfig:
    options: dict[str, Any] = {"total_active_users": 1000, "new_users_per_minute": 200}
    options.update(changes)
    return WaitingRoomConfig(**options)


def test_defaults_follow_the_issue() -> None:
    """FIFO, a 20 s refresh with 10 % jitter, a 5 min queued-cookie lifetime, renewal on."""
    room = config()
    assert room.queueing_method == "fifo"
    assert room.refresh_interval == 20.0
    assert room.refresh_jitter == 0.1
    assert room.queued_cookie_lifetime == 300.0
    assert room.session_duration == 300.0
    assert not room.disable_session_renewal
    assert not room.queue_all
    assert room.cookie == CookieSettings()


@pytest.mark.parametrize(
    ("settings", "https", "expected"),
    [
        ({}, True, ("None", True)),
        ({}, False, ("Lax", False)),
        ({"same_site": "lax"}, True, ("Lax", True)),
        ({"same_site": "strict", "secure": "never"}, True, ("Strict", False)),
        ({"same_site": "lax", "secure": "always"}, False, ("Lax", True)),
        ({"same_site": "none"}, False, ("None", True)),
        ({"same_site": "none", "secure": "always"}, True, ("None", True)),
        ({"secure": "never"}, True, ("Lax", False)),
    ],
)
def test_cookie_attributes(settings: dict[str, str], https: bool, expected: Any) -> None:
    """auto picks None+Secure on HTTPS and Lax otherwise; SameSite=None always has Secure."""
    assert CookieSettings(**settings).attributes(https=https) == expected


def test_host_prefix_needs_secure_root_path_and_no_domain() -> None:
    """__Host- applies only to Secure cookies with Path=/ and no Domain."""
    assert CookieSettings().host_prefix_allowed(https=True)
    assert not CookieSettings().host_prefix_allowed(https=False)
    assert not CookieSettings(path="/shop").host_prefix_allowed(https=True)
    assert not CookieSettings(domain="example.com").host_prefix_allowed(https=True)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"total_active_users": 0}, ConfigError, "total_active_users is 0; it must be an int >= 1"),
        ({"new_users_per_minute": 1.5}, ArgumentTypeError, "new_users_per_minute is float"),
        ({"new_users_per_minute": True}, ArgumentTypeError, "new_users_per_minute is bool"),
        (
            {"session_duration": 0},
            ConfigError,
            "session_duration is 0.0; it must be finite and > 0",
        ),
        ({"session_duration": "5m"}, ArgumentTypeError, "session_duration is str; it must be a"),
        ({"refresh_jitter": "x"}, ArgumentTypeError, "refresh_jitter is str; it must be a number"),
        ({"refresh_interval": None}, ArgumentTypeError, "refresh_interval is NoneType"),
        ({"queued_cookie_lifetime": True}, ArgumentTypeError, "queued_cookie_lifetime is bool"),
        ({"room_id": 5}, ArgumentTypeError, "room_id is int; it must be a str"),
        ({"refresh_interval": float("inf")}, ConfigError, "refresh_interval is inf"),
        ({"queueing_method": "lifo"}, ConfigError, "queueing_method is 'lifo'; it must be one of"),
        ({"refresh_jitter": 1.0}, ConfigError, "refresh_jitter is 1.0; it must be in [0, 1)"),
        ({"refresh_jitter": -0.1}, ConfigError, "refresh_jitter is -0.1; it must be in [0, 1)"),
        (
            {"queued_cookie_lifetime": 22.0},
            ConfigError,
            "queued_cookie_lifetime is 22.0; it must be longer than the longest refresh interval",
        ),
        ({"queue_all": 1}, ArgumentTypeError, "queue_all is int; it must be a bool"),
        ({"room_id": ""}, ConfigError, "room_id is ''; it must be a non-empty str"),
        ({"room_id": "r" * 256}, ConfigError, "room_id is longer than 255 UTF-8 bytes"),
        ({"cookie": {}}, ArgumentTypeError, "cookie is dict; it must be a CookieSettings"),
    ],
)
def test_bad_configuration_is_rejected(
    changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every setting out of its range is an error naming it and the rule."""
    with pytest.raises(error) as raised:
        config(**changes)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "a b"}, "name is 'a b'; a cookie name must be an HTTP token"),
        ({"same_site": "loose"}, "same_site is 'loose'; it must be one of auto, lax, strict, none"),
        ({"secure": "sometimes"}, "secure is 'sometimes'; it must be one of auto, always, never"),
        (
            {"same_site": "none", "secure": "never"},
            "same_site is 'none' but secure is 'never'; browsers reject SameSite=None",
        ),
        ({"path": "shop"}, "path is 'shop'; it must start with '/' and hold no ';'"),
        ({"path": "/a;b"}, "path is '/a;b'; it must start with '/' and hold no ';'"),
        ({"path": "/a b"}, "path is '/a b'; it must start with '/' and hold no ';'"),
        ({"name": "__Host-wr"}, "name is '__Host-wr'; leave out the __Host- prefix"),
        ({"domain": ""}, "domain is ''; it must be a host name or None"),
    ],
)
def test_bad_cookie_settings_are_rejected(settings: dict[str, str], message: str) -> None:
    """Cookie names, SameSite/Secure values and their one forbidden combination are checked."""
    with pytest.raises(ConfigError) as raised:
        CookieSettings(**settings)
    assert str(raised.value).startswith(message)
