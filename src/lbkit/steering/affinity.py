"""Session affinity: keep sending a client to the endpoint that served it before.

The semantics follow Cloudflare Load Balancing's session affinity, described here in lbkit's
own terms. A session is identified one of three ways (``AffinityConfig.by``):

* ``"cookie"``: the load balancer issues a cookie naming the pinned pool and endpoint. The
  cookie is **sealed**: its bytes carry an HMAC-SHA256 tag made with a server-side key, so a
  client can keep or drop its cookie but never forge one naming an endpoint of its choice. A
  cookie expires ``ttl`` seconds after it was issued (default 82,800 s, 23 hours); it is not
  extended by use.
* ``"header"``: the values of some request headers (for example ``x-session-id``) form the
  session key, and the load balancer remembers the pin in a bounded in-memory table. By default
  at least one of the headers must be present; ``require_all_headers`` asks for all of them. A
  client that changes the headers starts a new session.
* ``"client_ip"``: the client IP address is the session key, kept in the same table.

Table sessions expire after ``ttl`` seconds **without use** (default 1,800 s): each hit
extends them. The table holds at most ``max_sessions`` entries and evicts the least recently
used one beyond that (each eviction is counted).

**When the pinned endpoint cannot serve.** The caller (the load balancer) tells
:meth:`SessionAffinity.resolve` what became of the pinned endpoint, and gets an
:class:`Action` back:

================================  ==========  =============  ==========
pinned endpoint                   ``none``    ``temporary``  ``sticky``
================================  ==========  =============  ==========
healthy                           USE         USE            USE
unhealthy (monitors say so)       REPIN       DETOUR         REPIN
failed this request (transient)   FAIL        DETOUR         REPIN
draining, within drain duration   as healthy  as healthy     as healthy
draining past it, or gone         REPIN       REPIN          REPIN
================================  ==========  =============  ==========

The ``failover`` setting is Cloudflare's *zero-downtime failover*. Without it (``"none"``, the
default) a session whose endpoint the health monitors mark unhealthy still moves: a new
endpoint is chosen and pinned, as Cloudflare does; but a request that fails on a pinned
endpoint the monitors still consider healthy (a transient error between two health checks) is
not retried elsewhere, and the error reaches the user (``FAIL``). ``"temporary"`` serves such
requests, and requests while the endpoint is unhealthy, from another endpoint **without
moving the pin**, so the session returns once the endpoint is healthy again (this can make a
session flap between endpoints). ``"sticky"`` moves the pin to the new endpoint. Unlike
Cloudflare, lbkit allows ``"sticky"`` with header sessions too (the table simply records the
new endpoint).

**Draining.** An endpoint that an operator disables or removes with a drain keeps serving the
sessions already pinned to it for ``drain_duration`` seconds after the drain started (new
sessions go elsewhere, because the picker no longer offers it); after that its sessions are
re-pinned. With ``drain_duration=0`` they move at once.

**Cookie format (version 1)**, base64url without padding::

    version u8 = 1 | key id u8 | issued ms u64 | expires ms u64 | pool id | endpoint id | tag

Each id is a type byte (``s`` for ``str``, ``i`` for ``int``), a length byte and its UTF-8 text
(an ``int`` as its decimal digits, so ``7`` and ``"7"`` differ). The tag is the 32-byte
HMAC-SHA256, under the key named by the key id, of a domain label, the affinity ``scope`` and
every byte before the tag; it is checked in constant time before anything else is read. Ids
are at most 255 bytes each, so a cookie is at most :data:`MAX_COOKIE_LENGTH` characters. Keys
rotate without losing sessions: new cookies are sealed with the primary key while older key
ids still verify.

A cookie that is absent, malformed, truncated, oversized, of an unknown version or key id,
tampered with or expired is never an error for the client: :meth:`SessionAffinity.lookup`
returns ``None``, :meth:`SessionAffinity.check` says why (:class:`MissReason`), and
:meth:`SessionAffinity.stats` counts the misses per reason, for logs and dashboards.

Time is injected: every call takes ``now`` (seconds since the epoch, >= 0).

>>> affinity = SessionAffinity(AffinityConfig("cookie"), key=b"k" * 32)
>>> first = affinity.pin(Request(), "eu", "web-1", now=1000.0)
>>> request = Request(cookies={"__lbkit_affinity": first.cookie})
>>> pin = affinity.lookup(request, now=1060.0)
>>> pin.pool_id, pin.endpoint_id
('eu', 'web-1')
>>> affinity.resolve(pin, status="healthy", now=1060.0).action
<Action.USE: 'use'>
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import ipaddress
import math
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.steering.request import Request

__all__ = [
    "BY_MODES",
    "COOKIE_TTL",
    "DEFAULT_COOKIE_NAME",
    "FAILOVER_MODES",
    "MAX_COOKIE_LENGTH",
    "MAX_NOW",
    "MAX_TTL",
    "TABLE_TTL",
    "Action",
    "AffinityConfig",
    "AffinityMiss",
    "AffinityStats",
    "EndpointStatus",
    "InvalidAffinityCookie",
    "MissReason",
    "Pin",
    "Resolution",
    "SessionAffinity",
    "check_affinity_overrides",
]

#: How a session is identified.
BY_MODES: Final = ("none", "cookie", "header", "client_ip")
#: What happens when the pinned endpoint cannot serve (Cloudflare's zero-downtime failover).
FAILOVER_MODES: Final = ("none", "temporary", "sticky")
#: The affinity cookie's name unless configured otherwise.
DEFAULT_COOKIE_NAME: Final = "__lbkit_affinity"
#: The default lifetime of a cookie session, in seconds (23 hours, Cloudflare's default).
COOKIE_TTL: Final = 82_800.0
#: The default idle lifetime of a header or client-IP session, in seconds (Cloudflare's).
TABLE_TTL: Final = 1_800.0
#: The longest ttl accepted, in seconds (about 31 years), so expiry times stay exact.
MAX_TTL: Final = 1e9
#: The latest ``now`` accepted, in seconds, so millisecond times stay exact integers.
MAX_NOW: Final = 2.0**53 / 1000.0

_VERSION: Final = 1
_HEADER = struct.Struct(">BBQQ")
_TAG_SIZE: Final = 32
_MAX_ID_BYTES: Final = 255
_MIN_COOKIE_BYTES: Final = _HEADER.size + 2 * (2 + 1) + _TAG_SIZE
_MAX_COOKIE_BYTES: Final = _HEADER.size + 2 * (2 + _MAX_ID_BYTES) + _TAG_SIZE
#: The longest cookie value :meth:`SessionAffinity.lookup` reads, in characters.
MAX_COOKIE_LENGTH: Final = (4 * _MAX_COOKIE_BYTES + 2) // 3
_DOMAIN: Final = b"lbkit.steering.affinity.v1\x00"
_MIN_KEY_BYTES: Final = 32
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_BASE64URL_INDEX: Final = {
    character: index
    for index, character in enumerate(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
}
_INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_SAME_SITE: Final = ("Strict", "Lax", "None")


class MissReason(str, enum.Enum):
    """Why :meth:`SessionAffinity.check` found no usable session.

    >>> MissReason.BAD_SIGNATURE.value
    'bad-signature'
    """

    #: Affinity is off (``by="none"``); not counted.
    DISABLED = "disabled"
    #: The request carries no cookie, none of the headers, or no client IP.
    ABSENT = "absent"
    #: The cookie is not canonical base64url, or its authenticated fields do not parse.
    MALFORMED = "malformed"
    #: The cookie is shorter than any sealed cookie.
    TRUNCATED = "truncated"
    #: The cookie is longer than :data:`MAX_COOKIE_LENGTH`.
    OVERSIZED = "oversized"
    #: The cookie's format version is not one this lbkit reads.
    UNSUPPORTED_VERSION = "unsupported-version"
    #: The cookie names a key id that is not in the keyring (a retired key).
    UNKNOWN_KEY = "unknown-key"
    #: The cookie's tag does not verify; it was altered, or sealed for another scope.
    BAD_SIGNATURE = "bad-signature"
    #: The session's lifetime is over.
    EXPIRED = "expired"
    #: The session table has no entry for this key (new, evicted or never pinned).
    UNKNOWN_SESSION = "unknown-session"


_MISS_TEXT: Final = {
    MissReason.DISABLED: "session affinity is off",
    MissReason.ABSENT: "the request carries no session key",
    MissReason.MALFORMED: "the cookie is not a well-formed affinity cookie",
    MissReason.TRUNCATED: "the cookie is shorter than any sealed cookie",
    MissReason.OVERSIZED: f"the cookie is longer than {MAX_COOKIE_LENGTH} characters",
    MissReason.UNSUPPORTED_VERSION: f"the cookie's format version is not {_VERSION}",
    MissReason.UNKNOWN_KEY: "the cookie's key id is not in the keyring",
    MissReason.BAD_SIGNATURE: "the cookie's tag does not verify",
    MissReason.EXPIRED: "the session has expired",
    MissReason.UNKNOWN_SESSION: "no session is recorded for this key",
}


class InvalidAffinityCookie(InvalidArgument):
    """An affinity cookie that :meth:`SessionAffinity.open_cookie` cannot accept; ``reason``
    is the machine-readable :class:`MissReason`.

    Runtime complexity: O(1).

    >>> error = InvalidAffinityCookie(MissReason.EXPIRED, "affinity cookie: expired")
    >>> error.reason.value, str(error)
    ('expired', 'affinity cookie: expired')
    """

    def __init__(self, reason: MissReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EndpointStatus(str, enum.Enum):
    """What became of a pinned endpoint, as the caller tells :meth:`SessionAffinity.resolve`.

    When several apply, pass the first of: ``GONE``, ``UNHEALTHY``, ``DRAINING``,
    ``HEALTHY``.

    >>> EndpointStatus("draining")
    <EndpointStatus.DRAINING: 'draining'>
    """

    #: In service and healthy; it may take new sessions.
    HEALTHY = "healthy"
    #: Still configured and enabled, but the health monitors say it is down.
    UNHEALTHY = "unhealthy"
    #: Disabled or removed by an operator at ``drain_started``; still able to serve.
    DRAINING = "draining"
    #: No longer in service for this request; removed, disabled without a drain, weighted 0,
    #: or in a pool this request may not use.
    GONE = "gone"


class Action(str, enum.Enum):
    """What the load balancer does with a pinned session (see the module docstring's table).

    >>> Action.DETOUR.value
    'detour'
    """

    #: Send the request to the pinned endpoint; the pin stays as it is.
    USE = "use"
    #: Pick another endpoint for this request only; keep the pin (do not call ``pin``).
    DETOUR = "detour"
    #: Pick another endpoint and pin the session to it (call :meth:`SessionAffinity.pin`).
    REPIN = "repin"
    #: Do not fail over; the request fails (zero-downtime failover is off).
    FAIL = "fail"


# --- configuration --------------------------------------------------------------------------


def _by(value: object) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"by is {type(value).__name__}; it must be a str")
    if value not in BY_MODES:
        raise ConfigError(f"by is {value!r}; it must be one of {', '.join(BY_MODES)}")
    return value


def _failover(value: object) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"failover is {type(value).__name__}; it must be a str")
    if value not in FAILOVER_MODES:
        raise ConfigError(f"failover is {value!r}; it must be one of {', '.join(FAILOVER_MODES)}")
    return value


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    return float(value)


def _ttl(value: object) -> float | None:
    if value is None:
        return None
    seconds = _number(value, "ttl")
    if not math.isfinite(seconds) or not 0.0 < seconds <= MAX_TTL:
        raise ConfigError(f"ttl is {value!r}; it must be finite, > 0 and <= {MAX_TTL:g} seconds")
    return seconds


def _drain_duration(value: object) -> float:
    seconds = _number(value, "drain_duration")
    if not math.isfinite(seconds) or seconds < 0.0:
        raise ConfigError(f"drain_duration is {value!r}; durations must be finite and >= 0")
    return seconds


def _headers(value: object) -> tuple[str, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise ArgumentTypeError(
            f"headers is {type(value).__name__}; it must be a list or tuple of header names"
        )
    names: list[str] = []
    for index, name in enumerate(value):
        if not isinstance(name, str):
            raise ArgumentTypeError(
                f"headers[{index}] is {type(name).__name__}; header names must be str"
            )
        if not _TOKEN.fullmatch(name):
            raise ConfigError(
                f"headers[{index}] is {name!r}; header names are HTTP tokens "
                "(letters, digits and !#$%&'*+-.^_`|~)"
            )
        lowered = name.lower()
        if lowered in names:
            raise ConfigError(
                f"headers[{index}] is {name!r}, a repeat; header names are unique "
                "(case-insensitively)"
            )
        names.append(lowered)
    return tuple(names)


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a bool")
    return value


def _require_all_headers(value: object) -> bool:
    return _flag(value, "require_all_headers")


def _secure(value: object) -> bool:
    return _flag(value, "secure")


def _http_only(value: object) -> bool:
    return _flag(value, "http_only")


def _cookie_name(value: object) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"cookie_name is {type(value).__name__}; it must be a str")
    if not _TOKEN.fullmatch(value):
        raise ConfigError(
            f"cookie_name is {value!r}; cookie names are HTTP tokens "
            "(letters, digits and !#$%&'*+-.^_`|~)"
        )
    return value


def _same_site(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ArgumentTypeError(f"same_site is {type(value).__name__}; it must be a str or None")
    if value not in _SAME_SITE:
        raise ConfigError(
            f"same_site is {value!r}; it must be 'Strict', 'Lax', 'None', or None to omit it"
        )
    return value


def _attribute_text(value: str, name: str) -> str:
    if any(character in value for character in ';,\\"') or not value.isprintable():
        raise ConfigError(
            f'{name} is {value!r}; cookie attributes must be printable, without ; , \\ or "'
        )
    if any(character.isspace() for character in value):
        raise ConfigError(f"{name} is {value!r}; cookie attributes must not contain spaces")
    return value


def _path(value: object) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"path is {type(value).__name__}; it must be a str")
    if not value.startswith("/"):
        raise ConfigError(f"path is {value!r}; a cookie path starts with '/'")
    return _attribute_text(value, "path")


def _domain(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ArgumentTypeError(f"domain is {type(value).__name__}; it must be a str or None")
    if not value:
        raise ConfigError("domain is ''; use None to leave the cookie's domain unset")
    return _attribute_text(value, "domain")


_FIELD_CHECKS: Final[Mapping[str, Callable[[object], object]]] = MappingProxyType(
    {
        "by": _by,
        "ttl": _ttl,
        "failover": _failover,
        "drain_duration": _drain_duration,
        "headers": _headers,
        "require_all_headers": _require_all_headers,
        "cookie_name": _cookie_name,
        "secure": _secure,
        "http_only": _http_only,
        "same_site": _same_site,
        "path": _path,
        "domain": _domain,
    }
)


@attrs.frozen
class AffinityConfig:
    """How sessions are identified, how long they live and what happens on failure.

    Args:
        by: ``"cookie"``, ``"header"``, ``"client_ip"``, or ``"none"`` (affinity off).
        ttl: the session lifetime in seconds, finite, > 0 and <= 1e9; ``None`` means the
            mode's default (:attr:`session_ttl`: 82,800 s for cookies, 1,800 s otherwise).
            Cookies expire ``ttl`` after they were issued; table sessions ``ttl`` after their
            last use.
        failover: ``"none"``, ``"temporary"`` or ``"sticky"`` (see the module docstring).
        drain_duration: seconds a disabled or removed endpoint keeps its sessions, >= 0.
        headers: the request header names whose values form the session key, for
            ``by="header"`` (at least one then); stored lower-cased. Ignored otherwise.
        require_all_headers: with ``by="header"``, a session needs every header (the default
            is any one of them).
        cookie_name: the affinity cookie's name, an HTTP token.
        secure, http_only: the cookie's ``Secure`` and ``HttpOnly`` attributes.
        same_site: ``"Strict"``, ``"Lax"``, ``"None"`` (needs ``secure``), or ``None`` to omit.
        path, domain: the cookie's ``Path`` (starts with ``/``) and ``Domain`` (or ``None``).

    Raises:
        ConfigError: a value out of range, an unknown mode, ``by="header"`` without headers,
            ``same_site="None"`` without ``secure``.
        ArgumentTypeError: a value of the wrong type.

    Runtime complexity: O(number of headers).

    >>> AffinityConfig("header", headers=["X-Session-Id"]).headers
    ('x-session-id',)
    >>> AffinityConfig("cookie").session_ttl, AffinityConfig("client_ip").session_ttl
    (82800.0, 1800.0)
    """

    by: str = attrs.field(converter=_by)
    ttl: float | None = attrs.field(default=None, kw_only=True, converter=_ttl)
    failover: str = attrs.field(default="none", kw_only=True, converter=_failover)
    drain_duration: float = attrs.field(default=0.0, kw_only=True, converter=_drain_duration)
    headers: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_headers)
    require_all_headers: bool = attrs.field(
        default=False, kw_only=True, converter=_require_all_headers
    )
    cookie_name: str = attrs.field(
        default=DEFAULT_COOKIE_NAME, kw_only=True, converter=_cookie_name
    )
    secure: bool = attrs.field(default=True, kw_only=True, converter=_secure)
    http_only: bool = attrs.field(default=True, kw_only=True, converter=_http_only)
    same_site: str | None = attrs.field(default="Lax", kw_only=True, converter=_same_site)
    path: str = attrs.field(default="/", kw_only=True, converter=_path)
    domain: str | None = attrs.field(default=None, kw_only=True, converter=_domain)

    def __attrs_post_init__(self) -> None:
        if self.by == "header" and not self.headers:
            raise ConfigError("headers is (); by='header' needs at least one header name")
        if self.same_site == "None" and not self.secure:
            raise ConfigError(
                "same_site is 'None' but secure is False; browsers reject SameSite=None "
                "cookies that are not Secure"
            )

    @property
    def session_ttl(self) -> float:
        """The session lifetime in seconds (``ttl``, else the mode's default)."""
        if self.ttl is not None:
            return self.ttl
        return COOKIE_TTL if self.by == "cookie" else TABLE_TTL


def check_affinity_overrides(overrides: object) -> dict[str, Any]:
    """Validate a partial :class:`AffinityConfig` (a rule's ``session_affinity`` override)
    field by field, and return it with values converted as the config would store them.

    Checks that need the whole configuration (``by="header"`` needs headers) happen when the
    overrides are applied, by :meth:`SessionAffinity.with_overrides`.

    Raises:
        ConfigError: an unknown key or a value the field rejects.
        ArgumentTypeError: ``overrides`` is not a mapping, or a value of the wrong type.

    Runtime complexity: O(number of keys + number of headers).

    >>> check_affinity_overrides({"ttl": 60, "headers": ["X-Sid"]})
    {'ttl': 60.0, 'headers': ('x-sid',)}
    """
    if not isinstance(overrides, Mapping):
        raise ArgumentTypeError(
            f"session_affinity is {type(overrides).__name__}; it must be a mapping"
        )
    checked: dict[str, Any] = {}
    for key, value in overrides.items():
        check = _FIELD_CHECKS.get(key) if isinstance(key, str) else None
        if check is None:
            raise ConfigError(
                f"session_affinity has the unknown key {key!r}; it may set "
                f"{', '.join(_FIELD_CHECKS)}"
            )
        checked[key] = check(value)
    return checked


# --- sessions and decisions -----------------------------------------------------------------


@attrs.frozen
class Pin:
    """A session's pinned pool and endpoint.

    Attributes:
        pool_id, endpoint_id: where the session is pinned.
        issued_at: when the pin was made, in seconds (cookies keep millisecond precision).
        expires_at: when it expires (for table sessions: as of the last use).
        cookie: the sealed cookie value to send (``Set-Cookie``) when :meth:`SessionAffinity.pin`
            made it in cookie mode; ``None`` otherwise.

    Runtime complexity: O(1).

    >>> Pin("eu", "web-1", issued_at=0.0, expires_at=60.0).endpoint_key
    ('eu', 'web-1')
    """

    pool_id: str | int
    endpoint_id: str | int
    issued_at: float = attrs.field(kw_only=True)
    expires_at: float = attrs.field(kw_only=True)
    cookie: str | None = attrs.field(default=None, kw_only=True)

    @property
    def endpoint_key(self) -> tuple[str | int, str | int]:
        """``(pool_id, endpoint_id)``."""
        return (self.pool_id, self.endpoint_id)


@attrs.frozen
class AffinityMiss:
    """No usable session, and why (for the load balancer's reason chain).

    Runtime complexity: O(1).

    >>> str(AffinityMiss(MissReason.EXPIRED))
    'affinity miss (expired): the session has expired'
    """

    reason: MissReason

    def __str__(self) -> str:
        return f"affinity miss ({self.reason.value}): {_MISS_TEXT[self.reason]}"


@attrs.frozen
class Resolution:
    """What to do with a pinned session: the :class:`Action`, the pin it concerns, and a
    sentence for the load balancer's reason chain.

    Runtime complexity: O(1).

    >>> pin = Pin("eu", "web-1", issued_at=0.0, expires_at=60.0)
    >>> Resolution(Action.USE, pin, "affinity: pinned to 'eu'/'web-1'").action.value
    'use'
    """

    action: Action
    pin: Pin
    reason: str


@attrs.frozen
class AffinityStats:
    """Counters since the :class:`SessionAffinity` (and its override variants) was built.

    Attributes:
        hits: lookups that found a live session.
        misses: lookups without one, per :class:`MissReason` value (every reason but
            ``disabled`` is listed, zeros included).
        evictions: table sessions dropped because the table was full.
        sessions: table entries held now (expired ones are dropped lazily).

    Runtime complexity: O(1).

    >>> SessionAffinity(AffinityConfig("cookie"), key=b"k" * 32).stats().hits
    0
    """

    hits: int
    misses: Mapping[str, int]
    evictions: int
    sessions: int


# --- the session store ----------------------------------------------------------------------


@attrs.define
class _Entry:
    pool_id: str | int
    endpoint_id: str | int
    issued_at: float
    expires_at: float


class _Shared:
    """State shared by a :class:`SessionAffinity` and its override variants: the keyring,
    the session table and the counters, behind one lock."""

    def __init__(
        self,
        contexts: list[hmac.HMAC | None],
        primary: int,
        table_key: bytes,
        max_sessions: int,
    ) -> None:
        self.contexts = contexts
        self.primary = primary
        self.table_key = table_key
        self.max_sessions = max_sessions
        self.lock = threading.Lock()
        self.table: OrderedDict[bytes, _Entry] = OrderedDict()
        self.hits = 0
        self.misses: dict[MissReason, int] = {
            reason: 0 for reason in MissReason if reason is not MissReason.DISABLED
        }
        self.evictions = 0
        self.variants: dict[tuple[tuple[str, Any], ...], SessionAffinity] = {}


_MAX_VARIANTS: Final = 1024


class SessionAffinity:
    """Looks up, records and resolves sessions for one load balancer (see the module
    docstring). Safe to share between threads.

    Args:
        config: the :class:`AffinityConfig`.
        key: the secret that seals new cookies (and keys the session table), ``bytes`` of at
            least 32 bytes; generate it with ``secrets.token_bytes(32)`` and share it between
            the proxies that must read each other's cookies.
        key_id: the id cookies carry to name ``key``, 0..255.
        old_keys: retired keys by id that still open cookies sealed with them (rotation).
        scope: a label bound into every cookie's tag (for example the load balancer's host
            name), so a cookie from one load balancer is refused by another with the same key.
        max_sessions: the session table's bound (header and client-IP modes), >= 1.

    Raises:
        ConfigError: a short key, a key id out of range or repeated in ``old_keys``,
            ``max_sessions`` < 1.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(number of keys) to build.

    >>> affinity = SessionAffinity(AffinityConfig("client_ip"), key=b"k" * 32)
    >>> affinity.pin(Request(client_ip="192.0.2.1"), "eu", 7, now=0.0).endpoint_id
    7
    >>> affinity.lookup(Request(client_ip="192.0.2.1"), now=10.0).endpoint_key
    ('eu', 7)
    """

    def __init__(
        self,
        config: AffinityConfig,
        *,
        key: bytes,
        key_id: int = 0,
        old_keys: Mapping[int, bytes] | None = None,
        scope: str = "",
        max_sessions: int = 100_000,
    ) -> None:
        if not isinstance(config, AffinityConfig):
            raise ArgumentTypeError(
                f"config is {type(config).__name__}; it must be an AffinityConfig"
            )
        if not isinstance(scope, str):
            raise ArgumentTypeError(f"scope is {type(scope).__name__}; it must be a str")
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int):
            raise ArgumentTypeError(
                f"max_sessions is {type(max_sessions).__name__}; it must be an int"
            )
        if max_sessions < 1:
            raise ConfigError(f"max_sessions is {max_sessions}; it must be an int >= 1")
        keyring: dict[int, bytes] = {_key_id(key_id, "key_id"): _secret(key, "key")}
        if old_keys is not None:
            if not isinstance(old_keys, Mapping):
                raise ArgumentTypeError(
                    f"old_keys is {type(old_keys).__name__}; it must be a mapping of key id to key"
                )
            for old_id, old_key in old_keys.items():
                name = f"old_keys[{old_id!r}]"
                old_id = _key_id(old_id, f"{name} id")
                if old_id in keyring:
                    raise ConfigError(
                        f"{name} reuses the key id {old_id}; every key needs its own id"
                    )
                keyring[old_id] = _secret(old_key, name)
        prefix = _DOMAIN + _length_prefixed(scope.encode("utf-8", "surrogatepass"), 2)
        contexts: list[hmac.HMAC | None] = [None] * 256
        for identifier, secret in keyring.items():
            context = hmac.HMAC(secret, hashes.SHA256())
            context.update(prefix)
            contexts[identifier] = context
        # The table is keyed by a keyed hash of the session key, so it holds 16 bytes per
        # session whatever the header sizes, and a client cannot aim collisions at it.
        table_key = hashlib.blake2b(
            keyring[key_id], digest_size=32, person=b"lbkit-aff-table"
        ).digest()
        self._config = config
        self._shared = _Shared(contexts, key_id, table_key, max_sessions)

    @classmethod
    def _variant(cls, config: AffinityConfig, shared: _Shared) -> SessionAffinity:
        affinity = cls.__new__(cls)
        affinity._config = config
        affinity._shared = shared
        return affinity

    @property
    def config(self) -> AffinityConfig:
        """The :class:`AffinityConfig` in force."""
        return self._config

    def __repr__(self) -> str:
        return f"SessionAffinity({self._config!r})"

    # -- lookups ---------------------------------------------------------------------------

    def lookup(self, request: Request, *, now: float) -> Pin | None:
        """The request's live session, or ``None`` (the miss is counted; use :meth:`check`
        to learn why).

        Raises:
            ArgumentTypeError: ``request`` is not a :class:`~lbkit.steering.Request`.
            InvalidArgument: ``now`` is not finite or out of range.

        Runtime complexity: O(1) (a cookie costs one HMAC-SHA256 of at most 564 bytes).

        >>> affinity = SessionAffinity(AffinityConfig("cookie"), key=b"k" * 32)
        >>> affinity.lookup(Request(cookies={"__lbkit_affinity": "forged"}), now=0.0) is None
        True
        """
        found = self.check(request, now=now)
        return found if isinstance(found, Pin) else None

    def check(self, request: Request, *, now: float) -> Pin | AffinityMiss:
        """Like :meth:`lookup`, but a miss comes back as an :class:`AffinityMiss` naming its
        reason. Table sessions found live are extended to ``now + ttl``.

        Raises:
            ArgumentTypeError: ``request`` is not a :class:`~lbkit.steering.Request`.
            InvalidArgument: ``now`` is not finite or out of range.

        Runtime complexity: O(1).

        >>> affinity = SessionAffinity(AffinityConfig("cookie"), key=b"k" * 32)
        >>> affinity.check(Request(), now=0.0).reason.value
        'absent'
        """
        _check_request(request)
        now = _check_now(now)
        by = self._config.by
        if by == "none":
            return AffinityMiss(MissReason.DISABLED)
        if by == "cookie":
            value = request.cookies.get(self._config.cookie_name)
            found: Pin | MissReason = MissReason.ABSENT if value is None else self._open(value, now)
        else:
            session = self._session_key(request)
            found = MissReason.ABSENT if session is None else self._table_get(session, now)
        shared = self._shared
        with shared.lock:
            if isinstance(found, Pin):
                shared.hits += 1
                return found
            shared.misses[found] += 1
        return AffinityMiss(found)

    # -- pinning ---------------------------------------------------------------------------

    def pin(
        self,
        request: Request | None,
        pool_id: str | int,
        endpoint_id: str | int,
        *,
        now: float,
    ) -> Pin | None:
        """Pin the request's session to ``(pool_id, endpoint_id)`` from ``now`` on.

        In cookie mode the returned :class:`Pin` carries the sealed ``cookie`` to send (see
        :meth:`set_cookie`); ``request`` may be ``None`` there. In header and client-IP modes
        the pin is recorded in the session table (evicting the least recently used session
        when full). Returns ``None`` when affinity is off or the request carries no session
        key (no header, no client IP): such a request simply has no session.

        Raises:
            ArgumentTypeError: an argument of the wrong type.
            InvalidArgument: an empty id, an id over 255 UTF-8 bytes or with no UTF-8
                encoding, ``now`` not finite or out of range, or a missing ``request`` in a
                table mode.

        Runtime complexity: O(1) (amortised, for the table).

        >>> affinity = SessionAffinity(AffinityConfig("cookie"), key=b"k" * 32)
        >>> pin = affinity.pin(None, "eu", "web-1", now=0.0)
        >>> pin.expires_at, len(pin.cookie) <= MAX_COOKIE_LENGTH
        (82800.0, True)
        """
        now = _check_now(now)
        pool_bytes = _encode_id(pool_id, "pool_id")
        endpoint_bytes = _encode_id(endpoint_id, "endpoint_id")
        by = self._config.by
        if by == "none":
            return None
        ttl = self._config.session_ttl
        if by == "cookie":
            if request is not None:
                _check_request(request)
            issued_ms = math.floor(now * 1000.0)
            expires_ms = issued_ms + math.ceil(ttl * 1000.0)
            cookie = self._seal(issued_ms, expires_ms, pool_bytes, endpoint_bytes)
            return Pin(
                pool_id,
                endpoint_id,
                issued_at=issued_ms / 1000.0,
                expires_at=expires_ms / 1000.0,
                cookie=cookie,
            )
        if request is None:
            raise InvalidArgument(f"request is None; by={by!r} reads the session key from it")
        _check_request(request)
        session = self._session_key(request)
        if session is None:
            return None
        entry = _Entry(pool_id, endpoint_id, now, now + ttl)
        shared = self._shared
        with shared.lock:
            table = shared.table
            table[session] = entry
            table.move_to_end(session)
            while len(table) > shared.max_sessions:
                table.popitem(last=False)
                shared.evictions += 1
        return Pin(pool_id, endpoint_id, issued_at=now, expires_at=entry.expires_at)

    def seal_cookie(self, pool_id: str | int, endpoint_id: str | int, *, now: float) -> str:
        """A sealed cookie value pinning ``(pool_id, endpoint_id)``, issued at ``now`` and
        valid for the configured ttl (whatever the mode: for tools and tests).

        Raises:
            ArgumentTypeError: an id of the wrong type.
            InvalidArgument: a bad id or ``now`` (see :meth:`pin`).

        Runtime complexity: O(1).

        >>> affinity = SessionAffinity(AffinityConfig("cookie"), key=b"k" * 32)
        >>> value = affinity.seal_cookie("eu", "web-1", now=0.0)
        >>> affinity.open_cookie(value, now=1.0).endpoint_id
        'web-1'
        """
        now = _check_now(now)
        pool_bytes = _encode_id(pool_id, "pool_id")
        endpoint_bytes = _encode_id(endpoint_id, "endpoint_id")
        issued_ms = math.floor(now * 1000.0)
        expires_ms = issued_ms + math.ceil(self._config.session_ttl * 1000.0)
        return self._seal(issued_ms, expires_ms, pool_bytes, endpoint_bytes)

    def open_cookie(self, value: str, *, now: float) -> Pin:
        """Open a cookie value as :meth:`lookup` would, but raise instead of returning
        ``None``, for debugging and tools. Nothing is counted.

        Raises:
            InvalidAffinityCookie: the cookie is refused; ``reason`` says why.
            ArgumentTypeError: ``value`` is not a str.
            InvalidArgument: ``now`` is not finite or out of range.

        Runtime complexity: O(1).

        >>> affinity = SessionAffinity(AffinityConfig("cookie"), key=b"k" * 32)
        >>> affinity.open_cookie("AQ", now=0.0)
        Traceback (most recent call last):
        ...
        lbkit.steering.affinity.InvalidAffinityCookie: affinity cookie 'AQ' refused (truncated): the cookie is shorter than any sealed cookie
        """  # noqa: E501
        if not isinstance(value, str):
            raise ArgumentTypeError(f"value is {type(value).__name__}; it must be a str")
        now = _check_now(now)
        found = self._open(value, now)
        if isinstance(found, Pin):
            return found
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidAffinityCookie(
            found, f"affinity cookie {shown!r} refused ({found.value}): {_MISS_TEXT[found]}"
        )

    def set_cookie(self, pin: Pin) -> str:
        """The ``Set-Cookie`` header value that sends ``pin``'s cookie, with the configured
        attributes and ``Max-Age`` (whole seconds, rounded up, at least 1).

        Raises:
            InvalidArgument: ``pin`` carries no cookie (it was not made in cookie mode).
            ArgumentTypeError: ``pin`` is not a :class:`Pin`.

        Runtime complexity: O(1).

        >>> affinity = SessionAffinity(AffinityConfig("cookie", ttl=60), key=b"k" * 32)
        >>> header = affinity.set_cookie(affinity.pin(None, "eu", "web-1", now=0.0))
        >>> header.split("; ", 1)[1]
        'Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax'
        """
        if not isinstance(pin, Pin):
            raise ArgumentTypeError(f"pin is {type(pin).__name__}; it must be a Pin")
        if pin.cookie is None:
            raise InvalidArgument("pin.cookie is None; only cookie-mode pins carry a cookie")
        config = self._config
        max_age = max(1, math.ceil(pin.expires_at - pin.issued_at))
        parts = [f"{config.cookie_name}={pin.cookie}", f"Max-Age={max_age}", f"Path={config.path}"]
        if config.domain is not None:
            parts.append(f"Domain={config.domain}")
        if config.secure:
            parts.append("Secure")
        if config.http_only:
            parts.append("HttpOnly")
        if config.same_site is not None:
            parts.append(f"SameSite={config.same_site}")
        return "; ".join(parts)

    # -- resolving a pin -------------------------------------------------------------------

    def resolve(
        self,
        pin: Pin,
        *,
        status: EndpointStatus | str,
        now: float,
        drain_started: float | None = None,
        failed: bool = False,
    ) -> Resolution:
        """Decide what a pinned session does, given what became of its endpoint.

        Args:
            pin: the session, from :meth:`lookup`.
            status: the pinned endpoint's :class:`EndpointStatus` (or its value).
            now: the current time.
            drain_started: when the endpoint's drain began; required with ``"draining"``.
            failed: this request already failed on the pinned endpoint (a transient error
                the health monitors have not seen; zero-downtime failover).

        Returns:
            A :class:`Resolution`: ``USE`` the pin, ``DETOUR`` (serve elsewhere, keep the
            pin), ``REPIN`` (serve elsewhere and :meth:`pin` the new endpoint) or ``FAIL``.

        Raises:
            ConfigError: an unknown status.
            InvalidArgument: ``"draining"`` without a finite ``drain_started``, or a bad
                ``now``.
            ArgumentTypeError: an argument of the wrong type.

        Runtime complexity: O(1).

        >>> config = AffinityConfig("cookie", failover="temporary", drain_duration=300)
        >>> affinity = SessionAffinity(config, key=b"k" * 32)
        >>> pin = affinity.pin(None, "eu", "web-1", now=0.0)
        >>> affinity.resolve(pin, status="unhealthy", now=5.0).action.value
        'detour'
        >>> affinity.resolve(pin, status="draining", drain_started=0.0, now=299.0).action.value
        'use'
        >>> affinity.resolve(pin, status="draining", drain_started=0.0, now=300.0).action.value
        'repin'
        """
        if not isinstance(pin, Pin):
            raise ArgumentTypeError(f"pin is {type(pin).__name__}; it must be a Pin")
        if isinstance(status, EndpointStatus):
            state = status
        elif isinstance(status, str):
            try:
                state = EndpointStatus(status)
            except ValueError:
                raise ConfigError(
                    f"status is {status!r}; it must be one of "
                    f"{', '.join(member.value for member in EndpointStatus)}"
                ) from None
        else:
            raise ArgumentTypeError(
                f"status is {type(status).__name__}; it must be an EndpointStatus or str"
            )
        if not isinstance(failed, bool):
            raise ArgumentTypeError(f"failed is {type(failed).__name__}; it must be a bool")
        now = _check_now(now)
        where = f"{pin.pool_id!r}/{pin.endpoint_id!r}"
        failover = self._config.failover
        if state is EndpointStatus.DRAINING:
            if drain_started is None:
                raise InvalidArgument("drain_started is None; status 'draining' needs it")
            started = _number(drain_started, "drain_started")
            if not math.isfinite(started):
                raise InvalidArgument(f"drain_started is {drain_started!r}; it must be finite")
            ends = started + self._config.drain_duration
            if now >= ends:
                return Resolution(
                    Action.REPIN,
                    pin,
                    f"affinity: {where} finished draining at {ends:g}; re-pinning",
                )
            if not failed:
                return Resolution(
                    Action.USE,
                    pin,
                    f"affinity: pinned to {where}, draining until {ends:g}",
                )
        elif state is EndpointStatus.GONE:
            return Resolution(Action.REPIN, pin, f"affinity: {where} is out of service; re-pinning")
        elif state is EndpointStatus.UNHEALTHY:
            if failover == "temporary":
                return Resolution(
                    Action.DETOUR,
                    pin,
                    f"affinity: {where} is unhealthy; serving elsewhere until it recovers "
                    "(failover=temporary)",
                )
            return Resolution(
                Action.REPIN,
                pin,
                f"affinity: {where} is unhealthy; re-pinning (failover={failover})",
            )
        elif not failed:
            return Resolution(Action.USE, pin, f"affinity: pinned to {where}")
        # The pinned endpoint is in service but this request failed on it.
        if failover == "none":
            return Resolution(
                Action.FAIL,
                pin,
                f"affinity: {where} failed this request; failover=none does not retry elsewhere",
            )
        if failover == "temporary":
            return Resolution(
                Action.DETOUR,
                pin,
                f"affinity: {where} failed this request; serving elsewhere, keeping the pin "
                "(failover=temporary)",
            )
        return Resolution(
            Action.REPIN,
            pin,
            f"affinity: {where} failed this request; re-pinning (failover=sticky)",
        )

    # -- variants and counters -------------------------------------------------------------

    def with_overrides(self, overrides: Mapping[str, Any]) -> SessionAffinity:
        """A :class:`SessionAffinity` with some config fields changed (a rule's
        ``session_affinity`` override) that shares this one's keys, session table and
        counters. Variants are cached, so calling this per request is cheap.

        Raises:
            ConfigError: an unknown key, a bad value, or a combination the config rejects.
            ArgumentTypeError: a value of the wrong type.

        Runtime complexity: O(number of overrides) once cached.

        >>> affinity = SessionAffinity(AffinityConfig("cookie"), key=b"k" * 32)
        >>> affinity.with_overrides({"ttl": 60}).config.session_ttl
        60.0
        >>> affinity.with_overrides({"ttl": 60}) is affinity.with_overrides({"ttl": 60.0})
        True
        """
        if not overrides:
            return self
        checked = check_affinity_overrides(overrides)
        cache_key = (("", self._config), *sorted(checked.items()))
        shared = self._shared
        with shared.lock:
            variant = shared.variants.get(cache_key)
        if variant is not None:
            return variant
        variant = SessionAffinity._variant(attrs.evolve(self._config, **checked), shared)
        with shared.lock:
            if len(shared.variants) >= _MAX_VARIANTS:
                shared.variants.clear()
            return shared.variants.setdefault(cache_key, variant)

    def stats(self) -> AffinityStats:
        """The hit, miss and eviction counters and the table size (see
        :class:`AffinityStats`).

        Runtime complexity: O(number of miss reasons).

        >>> affinity = SessionAffinity(AffinityConfig("header", headers=["x-sid"]), key=b"k" * 32)
        >>> _ = affinity.lookup(Request(headers={"x-sid": "a"}), now=0.0)
        >>> affinity.stats().misses["unknown-session"]
        1
        """
        shared = self._shared
        with shared.lock:
            return AffinityStats(
                hits=shared.hits,
                misses=MappingProxyType(
                    {reason.value: count for reason, count in shared.misses.items()}
                ),
                evictions=shared.evictions,
                sessions=len(shared.table),
            )

    # -- internals -------------------------------------------------------------------------

    def _seal(self, issued_ms: int, expires_ms: int, pool: bytes, endpoint: bytes) -> str:
        shared = self._shared
        body = _HEADER.pack(_VERSION, shared.primary, issued_ms, expires_ms) + pool + endpoint
        context = shared.contexts[shared.primary]
        assert context is not None
        signer = context.copy()
        signer.update(body)
        raw = body + signer.finalize()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _open(self, value: str, now: float) -> Pin | MissReason:
        if len(value) > MAX_COOKIE_LENGTH:
            return MissReason.OVERSIZED
        tail = len(value) % 4
        if tail == 1 or not _BASE64URL.fullmatch(value):
            return MissReason.MALFORMED
        # Base64 ignores the unused low bits of the last character (4 of them after 2
        # characters, 2 after 3); insisting that they are zero, the one canonical spelling,
        # means any changed character changes the bytes.
        if tail and _BASE64URL_INDEX[value[-1]] & (0x0F if tail == 2 else 0x03):
            return MissReason.MALFORMED
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (4 - tail if tail else 0))
        except (binascii.Error, ValueError):  # pragma: no cover - the checks above rule these out
            return MissReason.MALFORMED
        if len(raw) < _MIN_COOKIE_BYTES:
            return MissReason.TRUNCATED
        version, key_id, issued_ms, expires_ms = _HEADER.unpack_from(raw)
        if version != _VERSION:
            return MissReason.UNSUPPORTED_VERSION
        context = self._shared.contexts[key_id]
        if context is None:
            return MissReason.UNKNOWN_KEY
        body, tag = raw[:-_TAG_SIZE], raw[-_TAG_SIZE:]
        verifier = context.copy()
        verifier.update(body)
        try:
            verifier.verify(tag)
        except InvalidSignature:
            return MissReason.BAD_SIGNATURE
        parsed = _parse_ids(body, _HEADER.size)
        if parsed is None or expires_ms < issued_ms:
            return MissReason.MALFORMED
        # Compare in the seconds the Pin reports, so a session is live exactly while
        # now < pin.expires_at.
        expires_at = expires_ms / 1000.0
        if now >= expires_at:
            return MissReason.EXPIRED
        pool_id, endpoint_id = parsed
        return Pin(pool_id, endpoint_id, issued_at=issued_ms / 1000.0, expires_at=expires_at)

    def _session_key(self, request: Request) -> bytes | None:
        config = self._config
        if config.by == "client_ip":
            if request.client_ip is None:
                return None
            address = ipaddress.ip_address(request.client_ip)
            material = bytes([address.version]) + address.packed
            person = b"client_ip"
        else:
            parts: list[bytes] = []
            present = 0
            for name in config.headers:
                value = request.headers.get(name)
                if value is None:
                    parts.append(b"\x00")
                    continue
                present += 1
                parts.append(b"\x01" + _length_prefixed(value.encode("utf-8", "surrogatepass"), 4))
            if present == 0 or (config.require_all_headers and present < len(config.headers)):
                return None
            material = b"".join(parts)
            person = b"header"
        return hashlib.blake2b(
            material, key=self._shared.table_key, digest_size=16, person=person
        ).digest()

    def _table_get(self, session: bytes, now: float) -> Pin | MissReason:
        shared = self._shared
        with shared.lock:
            entry = shared.table.get(session)
            if entry is None:
                return MissReason.UNKNOWN_SESSION
            if now >= entry.expires_at:
                del shared.table[session]
                return MissReason.EXPIRED
            entry.expires_at = max(entry.expires_at, now + self._config.session_ttl)
            shared.table.move_to_end(session)
            return Pin(
                entry.pool_id,
                entry.endpoint_id,
                issued_at=entry.issued_at,
                expires_at=entry.expires_at,
            )


# --- helpers --------------------------------------------------------------------------------


def _check_request(request: object) -> None:
    if not isinstance(request, Request):
        raise ArgumentTypeError(f"request is {type(request).__name__}; it must be a Request")


def _check_now(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"now is {type(value).__name__}; it must be a number")
    now = float(value)
    if not math.isfinite(now) or not 0.0 <= now <= MAX_NOW:
        raise InvalidArgument(f"now is {value!r}; times must be finite seconds in 0..{MAX_NOW:.0f}")
    return now


def _key_id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; key ids must be int")
    if not 0 <= value <= 255:
        raise ConfigError(f"{name} is {value}; key ids must be in 0..255")
    return value


def _secret(value: object, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; keys must be bytes")
    if len(value) < _MIN_KEY_BYTES:
        raise ConfigError(
            f"{name} has {len(value)} bytes; keys need at least {_MIN_KEY_BYTES} random bytes "
            "(secrets.token_bytes(32))"
        )
    return value


def _length_prefixed(data: bytes, width: int) -> bytes:
    return len(data).to_bytes(width, "big") + data


def _encode_id(value: object, name: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; ids must be str or int")
    if isinstance(value, int):
        tag, text = b"i", str(value).encode("ascii")
    else:
        if not value:
            raise InvalidArgument(f"{name} is ''; ids must not be empty")
        try:
            tag, text = b"s", value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidArgument(
                f"{name} has the unencodable character {error.object[error.start]!r}; "
                "ids are sealed as UTF-8"
            ) from None
    if len(text) > _MAX_ID_BYTES:
        raise InvalidArgument(
            f"{name} takes {len(text)} bytes; sealed ids are at most {_MAX_ID_BYTES} UTF-8 bytes"
        )
    return tag + bytes([len(text)]) + text


def _parse_ids(body: bytes, offset: int) -> tuple[str | int, str | int] | None:
    ids: list[str | int] = []
    for _ in range(2):
        if offset + 2 > len(body):
            return None
        tag, length = body[offset], body[offset + 1]
        text = body[offset + 2 : offset + 2 + length]
        offset += 2 + length
        if len(text) != length or length == 0:
            return None
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if tag == 0x73:  # "s"
            ids.append(decoded)
        elif tag == 0x69 and _INT_TEXT.fullmatch(decoded):  # "i"
            ids.append(int(decoded))
        else:
            return None
    if offset != len(body):
        return None
    return ids[0], ids[1]
