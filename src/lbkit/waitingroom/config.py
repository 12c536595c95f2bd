"""Waiting-room configuration: how many users the origin serves, how fast new ones get in, how
the queue is ordered, and how the queue cookie is sent.

The fields follow Cloudflare Waiting Room: ``total_active_users`` (the users the origin can
serve at once), ``new_users_per_minute`` (how many may enter per minute), ``session_duration``
(how long an admitted user keeps access after their last request), the queueing method, and
the cookie. Durations are seconds, as everywhere in lbkit.

>>> config = WaitingRoomConfig(total_active_users=1000, new_users_per_minute=200)
>>> config.queueing_method, config.refresh_interval, config.queued_cookie_lifetime
('fifo', 20.0, 300.0)
>>> config.cookie.attributes(https=True)
('None', True)
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError

__all__ = [
    "QUEUEING_METHODS",
    "SAME_SITE",
    "SECURE",
    "CookieSettings",
    "WaitingRoomConfig",
]

#: How the queue is ordered (first come first served, a raffle, everyone straight in, nobody).
QUEUEING_METHODS: Final = ("fifo", "random", "passthrough", "reject")
#: The cookie's SameSite setting.
SAME_SITE: Final = ("auto", "lax", "strict", "none")
#: The cookie's Secure setting.
SECURE: Final = ("auto", "always", "never")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _choice(options: tuple[str, ...], name: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str):
            raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a str")
        if value not in options:
            raise ConfigError(f"{name} is {value!r}; it must be one of {', '.join(options)}")

    return check


def _positive_int(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{attribute.name} is {type(value).__name__}; it must be an int")
    if value < 1:
        raise ConfigError(f"{attribute.name} is {value}; it must be an int >= 1")


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    return float(value)


# attrs converters get the value only: one per field, so that an error names its field.
def _session_duration(value: object) -> float:
    return _number(value, "session_duration")


def _refresh_interval(value: object) -> float:
    return _number(value, "refresh_interval")


def _refresh_jitter(value: object) -> float:
    return _number(value, "refresh_jitter")


def _queued_cookie_lifetime(value: object) -> float:
    return _number(value, "queued_cookie_lifetime")


def _positive_seconds(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not math.isfinite(value) or value <= 0.0:
        raise ConfigError(f"{attribute.name} is {value!r}; it must be finite and > 0 seconds")


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{attribute.name} is {type(value).__name__}; it must be a bool")


@attrs.frozen
class CookieSettings:
    """How the queue cookie is sent.

    Args:
        name: the cookie's name, an HTTP token.
        same_site: ``"auto"`` (None with Secure on HTTPS, Lax otherwise), ``"lax"``,
            ``"strict"`` or ``"none"``.
        secure: ``"auto"`` (Secure on HTTPS), ``"always"`` or ``"never"``.
        path: the cookie's ``Path``; ``"/"`` lets the ``__Host-`` prefix apply.
        domain: the cookie's ``Domain``, or ``None`` (host-only, also needed for ``__Host-``).

    Raises:
        ConfigError: a name that is not a token, an unknown setting, ``same_site="none"``
            with ``secure="never"`` (browsers drop SameSite=None cookies that are not Secure),
            a path that does not start with ``/``.
        ArgumentTypeError: a value of the wrong type.

    Runtime complexity: O(len(name)).

    >>> CookieSettings(same_site="lax").attributes(https=False)
    ('Lax', False)
    """

    name: str = attrs.field(default="__lbkit_wr", kw_only=True)
    same_site: str = attrs.field(
        default="auto", kw_only=True, validator=_choice(SAME_SITE, "same_site")
    )
    secure: str = attrs.field(default="auto", kw_only=True, validator=_choice(SECURE, "secure"))
    path: str = attrs.field(default="/", kw_only=True)
    domain: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ArgumentTypeError(f"name is {type(self.name).__name__}; it must be a str")
        if not _TOKEN.fullmatch(self.name):
            raise ConfigError(f"name is {self.name!r}; a cookie name must be an HTTP token")
        if self.name.lower().startswith(("__host-", "__secure-")):
            raise ConfigError(
                f"name is {self.name!r}; leave out the __Host- prefix: it is added when the "
                "settings allow it"
            )
        if (
            not isinstance(self.path, str)
            or not self.path.startswith("/")
            or any(char == ";" or ord(char) < 0x21 or ord(char) == 0x7F for char in self.path)
        ):
            raise ConfigError(
                f"path is {self.path!r}; it must start with '/' and hold no ';', spaces or "
                "control characters"
            )
        if self.domain is not None and (
            not isinstance(self.domain, str) or not self.domain or ";" in self.domain
        ):
            raise ConfigError(f"domain is {self.domain!r}; it must be a host name or None")
        if self.same_site == "none" and self.secure == "never":
            raise ConfigError(
                "same_site is 'none' but secure is 'never'; browsers reject SameSite=None "
                "cookies that are not Secure"
            )

    def attributes(self, *, https: bool) -> tuple[str, bool]:
        """The ``SameSite`` value and whether ``Secure`` is set, for a request over HTTPS or
        not. ``SameSite=None`` always comes with ``Secure`` (``secure="auto"`` adds it even on
        plain HTTP, where browsers will then ignore the cookie: configure ``lax`` there).

        Runtime complexity: O(1).

        >>> CookieSettings().attributes(https=False), CookieSettings().attributes(https=True)
        (('Lax', False), ('None', True))
        """
        if self.secure == "always":
            secure = True
        elif self.secure == "never":
            secure = False
        else:
            secure = https or self.same_site == "none"
        if self.same_site == "auto":
            # None only where it can be Secure: browsers drop SameSite=None without it.
            same_site = "None" if https and secure else "Lax"
        else:
            same_site = self.same_site.capitalize()
        return same_site, secure

    def host_prefix_allowed(self, *, https: bool) -> bool:
        """Whether the cookie may carry the ``__Host-`` prefix: Secure, no Domain, Path ``/``.

        Runtime complexity: O(1).

        >>> CookieSettings().host_prefix_allowed(https=True)
        True
        """
        return self.attributes(https=https)[1] and self.domain is None and self.path == "/"


@attrs.frozen
class WaitingRoomConfig:
    """One waiting room's settings.

    Args:
        total_active_users: the users the origin serves at once, >= 1.
        new_users_per_minute: the users admitted per minute at most, >= 1.
        session_duration: seconds an admitted user keeps access after their last request.
        queueing_method: ``"fifo"``, ``"random"``, ``"passthrough"`` (admit everyone, still
            counting) or ``"reject"`` (admit nobody new: a static page).
        queue_all: queue every new user, even when there is room (an event not yet started).
        refresh_interval: seconds between a queued user's check-ins (the page refresh).
        refresh_jitter: each user's interval is drawn in ``refresh_interval * (1 +- jitter)``,
            in [0, 1), so that users who arrived together do not all refresh together.
        queued_cookie_lifetime: seconds after a queued user's last check-in that their place
            is kept; after that the place (and the bucket's count) is released.
        disable_session_renewal: admitted users keep access for ``session_duration`` from
            admission, not from their last request.
        room_id: the room's name, bound into every cookie so one room's cookie is refused by
            another.
        cookie: the :class:`CookieSettings`.

    Raises:
        ConfigError: a value out of range, ``queued_cookie_lifetime`` not longer than the
            longest jittered refresh interval.
        ArgumentTypeError: a value of the wrong type.

    Runtime complexity: O(1).

    >>> WaitingRoomConfig(total_active_users=0, new_users_per_minute=1)
    Traceback (most recent call last):
    ...
    lbkit.errors.ConfigError: total_active_users is 0; it must be an int >= 1
    """

    total_active_users: int = attrs.field(kw_only=True, validator=_positive_int)
    new_users_per_minute: int = attrs.field(kw_only=True, validator=_positive_int)
    session_duration: float = attrs.field(
        default=300.0,
        kw_only=True,
        converter=_session_duration,
        validator=_positive_seconds,
    )
    queueing_method: str = attrs.field(
        default="fifo", kw_only=True, validator=_choice(QUEUEING_METHODS, "queueing_method")
    )
    queue_all: bool = attrs.field(default=False, kw_only=True, validator=_flag)
    refresh_interval: float = attrs.field(
        default=20.0,
        kw_only=True,
        converter=_refresh_interval,
        validator=_positive_seconds,
    )
    refresh_jitter: float = attrs.field(default=0.1, kw_only=True, converter=_refresh_jitter)
    queued_cookie_lifetime: float = attrs.field(
        default=300.0,
        kw_only=True,
        converter=_queued_cookie_lifetime,
        validator=_positive_seconds,
    )
    disable_session_renewal: bool = attrs.field(default=False, kw_only=True, validator=_flag)
    room_id: str = attrs.field(default="room", kw_only=True)
    cookie: CookieSettings = attrs.field(factory=CookieSettings, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.refresh_jitter < 1.0:
            raise ConfigError(f"refresh_jitter is {self.refresh_jitter!r}; it must be in [0, 1)")
        longest = self.refresh_interval * (1.0 + self.refresh_jitter)
        if self.queued_cookie_lifetime <= longest:
            raise ConfigError(
                f"queued_cookie_lifetime is {self.queued_cookie_lifetime!r}; it must be longer "
                f"than the longest refresh interval ({longest:g} s), or users who refresh on "
                "time lose their place"
            )
        if not isinstance(self.room_id, str):
            raise ArgumentTypeError(f"room_id is {type(self.room_id).__name__}; it must be a str")
        if not self.room_id:
            raise ConfigError("room_id is ''; it must be a non-empty str")
        if len(self.room_id.encode("utf-8", "surrogatepass")) > 255:
            raise ConfigError("room_id is longer than 255 UTF-8 bytes")
        if not isinstance(self.cookie, CookieSettings):
            raise ArgumentTypeError(
                f"cookie is {type(self.cookie).__name__}; it must be a CookieSettings"
            )
