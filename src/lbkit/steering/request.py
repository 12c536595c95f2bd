"""What steering knows about one request: its HTTP surface and where the client is.

A :class:`Request` is what rules match on and what the pool policies read (the requesting PoP
for ``dynamic`` and ``geo``, the country and region for ``geo``, coordinates for
``proximity``, the hash key for ``hash``). Header, query and cookie names are matched the way
HTTP defines them: header names case-insensitively (stored lower-cased), query and cookie names
exactly.

>>> request = Request(host="shop.example", path="/cart", headers={"X-Canary": "1"},
...                   client_ip="198.51.100.7", country="DE")
>>> request.field("header.x-canary"), request.field("country"), request.hash_key
('1', 'DE', '198.51.100.7')
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Any

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError

__all__ = ["FIELDS", "PREFIXED_FIELDS", "Request"]

#: The plain fields a rule may name.
FIELDS: tuple[str, ...] = (
    "host",
    "path",
    "method",
    "scheme",
    "client_ip",
    "country",
    "region",
    "pop",
)
#: Fields with a name after a dot (``header.<name>``, ``query.<name>``, ``cookie.<name>``).
PREFIXED_FIELDS: tuple[str, ...] = ("header", "query", "cookie")


def _text_map(value: object, name: str, *, lower: bool) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a mapping")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ArgumentTypeError(
                f"{name}[{key!r}] is {type(item).__name__}; {name} map str to str"
            )
        result[key.lower() if lower else key] = item
    return result


def _headers(value: object) -> Mapping[str, str]:
    return _text_map(value, "headers", lower=True)


def _query(value: object) -> Mapping[str, str]:
    return _text_map(value, "query", lower=False)


def _cookies(value: object) -> Mapping[str, str]:
    return _text_map(value, "cookies", lower=False)


def _optional_text(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ArgumentTypeError(
            f"{attribute.name} is {type(value).__name__}; it must be a str or None"
        )


def _text(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{attribute.name} is {type(value).__name__}; it must be a str")


def _client_ip(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ArgumentTypeError(f"client_ip is {type(value).__name__}; it must be a str or None")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"client_ip is {value!r}; it must be an IPv4 or IPv6 address") from None


def _coordinates(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ArgumentTypeError(
            f"coordinates is {value!r}; it must be a (latitude, longitude) pair or None"
        )
    latitude, longitude = value
    for number, name, limit in ((latitude, "latitude", 90.0), (longitude, "longitude", 180.0)):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ArgumentTypeError(f"coordinates {name} is {type(number).__name__}; not a number")
        if not math.isfinite(number) or abs(number) > limit:
            raise ConfigError(
                f"coordinates {name} is {number!r}; it must be within [-{limit:g}, {limit:g}]"
            )
    return (float(latitude), float(longitude))


@attrs.frozen
class Request:
    """One request, as steering sees it. Every field is optional.

    Args:
        host, path, method, scheme: the HTTP request line (``method`` upper case by custom).
        headers: header name to value; names are stored lower-cased.
        query: query parameter name to value.
        cookies: cookie name to value (the affinity cookie is read from here).
        client_ip: the client's IPv4 or IPv6 address.
        country: the client's country (ISO 3166 alpha-2, as the edge geolocates it).
        region: the client's region code (for example Cloudflare's ``"WEU"``).
        pop: the point of presence (data centre) that received the request; ``dynamic``
            steering keeps RTTs per PoP.
        coordinates: the client's (latitude, longitude), for ``proximity``.
        key: the hash-steering key; ``None`` means the client IP.

    Raises:
        ArgumentTypeError: a field of the wrong type.
        ConfigError: a malformed client IP or coordinates out of range.

    Runtime complexity: O(number of headers, query parameters and cookies).

    >>> Request(path="/api", method="POST").field("method")
    'POST'
    """

    host: str = attrs.field(default="", kw_only=True, validator=_text)
    path: str = attrs.field(default="/", kw_only=True, validator=_text)
    method: str = attrs.field(default="GET", kw_only=True, validator=_text)
    scheme: str = attrs.field(default="https", kw_only=True, validator=_text)
    headers: Mapping[str, str] = attrs.field(factory=dict, kw_only=True, converter=_headers)
    query: Mapping[str, str] = attrs.field(factory=dict, kw_only=True, converter=_query)
    cookies: Mapping[str, str] = attrs.field(factory=dict, kw_only=True, converter=_cookies)
    client_ip: str | None = attrs.field(default=None, kw_only=True, validator=_client_ip)
    country: str | None = attrs.field(default=None, kw_only=True, validator=_optional_text)
    region: str | None = attrs.field(default=None, kw_only=True, validator=_optional_text)
    pop: str | None = attrs.field(default=None, kw_only=True, validator=_optional_text)
    coordinates: tuple[float, float] | None = attrs.field(
        default=None, kw_only=True, converter=_coordinates
    )
    key: str | bytes | None = attrs.field(default=None, kw_only=True)

    @key.validator
    def _check_key(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, (str, bytes)):
            raise ArgumentTypeError(f"key is {type(value).__name__}; it must be str, bytes or None")

    @property
    def hash_key(self) -> str | bytes | None:
        """The key hash steering uses (``key``, else the client IP, else ``None``)."""
        return self.key if self.key is not None else self.client_ip

    def field(self, name: str) -> str | None:
        """The value of a rule field: one of :data:`~lbkit.steering.request.FIELDS`, or
        ``header.<name>``, ``query.<name>``, ``cookie.<name>``; ``None`` when the request does
        not carry it.

        Raises:
            ConfigError: an unknown field name.

        Runtime complexity: O(1).

        >>> Request(query={"v": "2"}).field("query.v"), Request().field("cookie.sid")
        ('2', None)
        """
        if name in FIELDS:
            value: str | None = getattr(self, name)
            return value
        prefix, dot, rest = name.partition(".")
        if dot and rest and prefix in PREFIXED_FIELDS:
            if prefix == "header":
                return self.headers.get(rest.lower())
            if prefix == "query":
                return self.query.get(rest)
            return self.cookies.get(rest)
        raise ConfigError(
            f"field is {name!r}; it must be one of {', '.join(FIELDS)} or header.<name>, "
            "query.<name>, cookie.<name>"
        )
