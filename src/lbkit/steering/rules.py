"""Rules: ordered ``(condition, overrides)`` pairs that adjust steering per request.

Modelled on Cloudflare Load Balancing's custom rules, with conditions written as plain data
(JSON-compatible dicts and lists) instead of an expression language; nothing is ever
``eval``-ed. Every rule is validated and compiled when it is built or loaded, so a mistake
(an unknown field or operator, a bad regular expression or CIDR block, a value of the wrong
type, an unknown key) is a :class:`~lbkit.errors.ConfigError` at load time naming the rule and
the place inside it, never a surprise mid-request.

**Conditions.** A condition is one of:

* a test: ``{"field": F, "op": OP, "value": V}``, with an optional ``"ignore_case": true``
  for the text operators. ``F`` is a :class:`~lbkit.steering.Request` field (``host``,
  ``path``, ``method``, ``scheme``, ``client_ip``, ``country``, ``region``, ``pop``) or
  ``header.<name>``, ``query.<name>``, ``cookie.<name>``. The operators:

  ============  ====================================  ==========================================
  op            value                                 matches when the field's value ...
  ============  ====================================  ==========================================
  ``equals``    a str                                 is equal to it
  ``in``        a non-empty list of str               is one of them
  ``prefix``    a str                                 starts with it
  ``suffix``    a str                                 ends with it
  ``contains``  a str                                 contains it
  ``regex``     a pattern (<= 1,024 characters)       contains a match (``re.search``; anchor
                                                      with ``^`` and ``$`` for a whole match)
  ``cidr``      a CIDR block or a non-empty list      is an IP address inside one of them
                of them (IPv4 or IPv6)                (an IPv4-mapped IPv6 address also
                                                      matches IPv4 blocks)
  ``exists``    (no value)                            is present
  ============  ====================================  ==========================================

  A field the request does not carry never matches a test, whatever the operator (so
  ``{"not": test}`` matches it). A value that is not an IP address never matches ``cidr``.
* ``{"all": [c, ...]}`` (every one matches), ``{"any": [c, ...]}`` (at least one), each with
  at least one condition, or ``{"not": c}``;
* ``true`` or ``false``, a condition that always or never matches (Cloudflare's empty
  condition is ``true``).

Conditions nest at most :data:`MAX_DEPTH` levels. Python's :mod:`re` backtracks, so a
pathological pattern can take time exponential in the length of the value it scans; rules are
operator configuration, so lbkit caps the pattern length but does not try to prove patterns
safe. Prefer ``prefix``, ``suffix`` and ``in`` where they say the same thing.

**Overrides** change what the load balancer does for a matching request: ``pools`` (the
ordered pool ids to steer over), ``fallback_pool``, ``policy`` (the pool steering policy),
``endpoint_policy`` (the endpoint picker), ``session_affinity`` (some
:class:`~lbkit.steering.affinity.AffinityConfig` fields), and the geo maps ``pop_pools``,
``country_pools`` and ``region_pools`` (a name to ordered pool ids each).

**Evaluation** runs the enabled rules in order. Each matching rule's overrides are applied on
top of the earlier ones: a later rule's key replaces an earlier rule's, except
``session_affinity``, whose fields merge one by one. A matching rule with ``terminates``
stops the evaluation after its overrides are applied; a matching rule with a
``fixed_response`` stops it at once, and the load balancer answers with that response
instead of steering.

>>> rules = load_rules([
...     {"name": "api", "condition": {"field": "path", "op": "prefix", "value": "/api"},
...      "overrides": {"pools": ["api-eu", "api-us"]}},
...     {"name": "canary", "condition": {"field": "header.x-canary", "op": "exists"},
...      "overrides": {"pools": ["canary"]}, "terminates": True},
...     {"name": "maintenance", "condition": {"field": "path", "op": "prefix", "value": "/old"},
...      "fixed_response": {"status": 503, "body": "down for maintenance"}},
... ])
>>> outcome = rules.evaluate(Request(path="/api/v1", headers={"X-Canary": "1"}))
>>> outcome.matched, outcome.overrides["pools"]
(('api', 'canary'), ('canary',))
>>> rules.evaluate(Request(path="/old/page")).fixed_response.status
503
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError
from lbkit.steering.affinity import AffinityConfig, check_affinity_overrides
from lbkit.steering.request import FIELDS, PREFIXED_FIELDS, Request

__all__ = [
    "MAX_BODY_LENGTH",
    "MAX_DEPTH",
    "MAX_PATTERN_LENGTH",
    "OPS",
    "OVERRIDE_KEYS",
    "Condition",
    "FixedResponse",
    "Rule",
    "RuleOutcome",
    "RuleSet",
    "load_rules",
]

#: The test operators a condition may use.
OPS: Final = ("equals", "in", "prefix", "suffix", "contains", "regex", "cidr", "exists")
#: The keys an override mapping may set.
OVERRIDE_KEYS: Final = (
    "pools",
    "fallback_pool",
    "policy",
    "endpoint_policy",
    "session_affinity",
    "pop_pools",
    "country_pools",
    "region_pools",
)
#: The longest regular expression accepted, in characters.
MAX_PATTERN_LENGTH: Final = 1024
#: The deepest nesting of ``all``/``any``/``not`` accepted.
MAX_DEPTH: Final = 32
#: The longest fixed-response body accepted, in characters.
MAX_BODY_LENGTH: Final = 65_536

_TEXT_OPS: Final = frozenset({"equals", "in", "prefix", "suffix", "contains", "regex"})
_TEST_KEYS: Final = frozenset({"field", "op", "value", "ignore_case"})
_COMBINATORS: Final = ("all", "any", "not")
_RULE_KEYS: Final = (
    "name",
    "condition",
    "overrides",
    "terminates",
    "fixed_response",
    "disabled",
)
_RESPONSE_KEYS: Final = ("status", "body", "content_type", "location")
_FIELD_RULE: Final = f"fields are {', '.join(FIELDS)} or " + ", ".join(
    f"{prefix}.<name>" for prefix in PREFIXED_FIELDS
)

_Getter = Callable[[Request], "str | None"]
_Test = Callable[[str], bool]


# --- conditions -----------------------------------------------------------------------------


class _Node:
    __slots__ = ()

    def matches(self, request: Request) -> bool:  # pragma: no cover - every node overrides it
        raise NotImplementedError


class _Constant(_Node):
    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def matches(self, request: Request) -> bool:
        return self.value


class _FieldTest(_Node):
    __slots__ = ("getter", "test")

    def __init__(self, getter: _Getter, test: _Test) -> None:
        self.getter = getter
        self.test = test

    def matches(self, request: Request) -> bool:
        value = self.getter(request)
        return value is not None and self.test(value)


class _All(_Node):
    __slots__ = ("children",)

    def __init__(self, children: tuple[_Node, ...]) -> None:
        self.children = children

    def matches(self, request: Request) -> bool:
        return all(child.matches(request) for child in self.children)


class _Any(_Node):
    __slots__ = ("children",)

    def __init__(self, children: tuple[_Node, ...]) -> None:
        self.children = children

    def matches(self, request: Request) -> bool:
        return any(child.matches(request) for child in self.children)


class _Not(_Node):
    __slots__ = ("child",)

    def __init__(self, child: _Node) -> None:
        self.child = child

    def matches(self, request: Request) -> bool:
        return not self.child.matches(request)


def _getter(field: object, where: str) -> _Getter:
    if not isinstance(field, str):
        raise ConfigError(f"{where}.field is {field!r}; it must be a str ({_FIELD_RULE})")
    if field in FIELDS:
        name = field

        def plain(request: Request) -> str | None:
            value: str | None = getattr(request, name)
            return value

        return plain
    prefix, dot, rest = field.partition(".")
    if dot and rest and prefix in PREFIXED_FIELDS:
        if prefix == "header":
            header = rest.lower()
            return lambda request: request.headers.get(header)
        if prefix == "query":
            return lambda request: request.query.get(rest)
        return lambda request: request.cookies.get(rest)
    raise ConfigError(f"{where}.field is {field!r}; {_FIELD_RULE}")


def _text(value: object, where: str, op: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}.value is {value!r}; {op} needs a str")
    return value


def _text_list(value: object, where: str, op: str, what: str = "str") -> list[str]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}.value is {value!r}; {op} needs a non-empty list of {what}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{where}.value[{index}] is {item!r}; {op} needs a list of {what}")
    return value


def _network(text: str, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        raise ConfigError(
            f"{where} is {text!r}; it is not a CIDR block such as '192.0.2.0/24' or "
            f"'2001:db8::/32' ({error})"
        ) from None


def _test(op: str, value: object, ignore_case: bool, where: str) -> _Test:
    fold: Callable[[str], str] = str.casefold if ignore_case else (lambda text: text)
    if op == "equals":
        expected = fold(_text(value, where, op))
        return lambda text: fold(text) == expected
    if op == "in":
        choices = frozenset(fold(item) for item in _text_list(value, where, op))
        return lambda text: fold(text) in choices
    if op == "prefix":
        start = fold(_text(value, where, op))
        return lambda text: fold(text).startswith(start)
    if op == "suffix":
        end = fold(_text(value, where, op))
        return lambda text: fold(text).endswith(end)
    if op == "contains":
        part = fold(_text(value, where, op))
        return lambda text: part in fold(text)
    if op == "regex":
        source = _text(value, where, op)
        if len(source) > MAX_PATTERN_LENGTH:
            raise ConfigError(
                f"{where}.value has {len(source)} characters; patterns are at most "
                f"{MAX_PATTERN_LENGTH}"
            )
        try:
            pattern = re.compile(source, re.IGNORECASE if ignore_case else 0)
        except re.error as error:
            raise ConfigError(
                f"{where}.value is {source!r}; it is not a valid regular expression ({error})"
            ) from None
        search = pattern.search
        return lambda text: search(text) is not None
    if op == "cidr":
        if isinstance(value, str):
            blocks = [_network(value, f"{where}.value")]
        else:
            texts = _text_list(value, where, op, "CIDR blocks")
            blocks = [_network(text, f"{where}.value[{i}]") for i, text in enumerate(texts)]
        networks = tuple(blocks)

        def inside(text: str) -> bool:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                return False
            mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            for network in networks:
                if address in network or (mapped is not None and mapped in network):
                    return True
            return False

        return inside
    # exists: the caller already checked the field is present.
    return lambda text: True


def _compile(data: object, where: str, depth: int) -> _Node:
    if isinstance(data, bool):
        return _Constant(data)
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where} is {data!r}; a condition is a mapping (a test, or all/any/not) or a bool"
        )
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where} nests deeper than {MAX_DEPTH} levels of all/any/not")
    combinators = [key for key in _COMBINATORS if key in data]
    if combinators:
        key = combinators[0]
        if len(data) != 1:
            extra = sorted(repr(other) for other in data if other != key)
            raise ConfigError(
                f"{where} has {key!r} and {', '.join(extra)}; a condition with all, any or "
                "not has nothing else"
            )
        inner = data[key]
        if key == "not":
            return _Not(_compile(inner, f"{where}.not", depth + 1))
        if not isinstance(inner, list):
            raise ConfigError(f"{where}.{key} is {inner!r}; {key} needs a list of conditions")
        if not inner:
            raise ConfigError(f"{where}.{key} is []; {key} needs at least one condition")
        children = tuple(
            _compile(child, f"{where}.{key}[{index}]", depth + 1)
            for index, child in enumerate(inner)
        )
        return _All(children) if key == "all" else _Any(children)
    for key in data:
        if key not in _TEST_KEYS:
            raise ConfigError(
                f"{where} has the unknown key {key!r}; a test has field, op, value and "
                "ignore_case, a combination exactly one of all, any, not"
            )
    if "field" not in data:
        raise ConfigError(f"{where} has no 'field'; a test names the request field it reads")
    getter = _getter(data["field"], where)
    if "op" not in data:
        raise ConfigError(f"{where} has no 'op'; ops are {', '.join(OPS)}")
    op = data["op"]
    if not isinstance(op, str) or op not in OPS:
        raise ConfigError(f"{where}.op is {op!r}; ops are {', '.join(OPS)}")
    ignore_case = data.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise ConfigError(f"{where}.ignore_case is {ignore_case!r}; it must be true or false")
    if ignore_case and op not in _TEXT_OPS:
        raise ConfigError(f"{where}.ignore_case is true; {op} does not compare text")
    if op == "exists":
        if "value" in data:
            raise ConfigError(f"{where} has a 'value'; exists takes none")
    elif "value" not in data:
        raise ConfigError(f"{where} has no 'value'; {op} needs one")
    return _FieldTest(getter, _test(op, data.get("value"), ignore_case, where))


class Condition:
    """A validated, compiled condition (see the module docstring for the language).

    Args:
        data: the condition as plain data. It is copied, so later changes to ``data`` do not
            change the condition.

    Raises:
        ConfigError: anything the language does not allow, with the path to it
            (``condition.all[1].op``).

    Runtime complexity: O(size of the condition) to compile (plus the regex compiler);
    :meth:`matches` is O(size of the condition) tests.

    >>> condition = Condition({"any": [{"field": "country", "op": "in", "value": ["DE", "FR"]},
    ...                               {"field": "client_ip", "op": "cidr", "value": "10.0.0.0/8"}]})
    >>> condition.matches(Request(country="FR")), condition.matches(Request(client_ip="10.1.2.3"))
    (True, True)
    >>> condition.matches(Request(country="US"))
    False
    """

    __slots__ = ("_data", "_node")

    def __init__(self, data: object) -> None:
        self._node = _compile(data, "condition", 1)
        self._data = copy.deepcopy(data)

    @property
    def data(self) -> Any:
        """A copy of the condition as plain data."""
        return copy.deepcopy(self._data)

    def matches(self, request: Request) -> bool:
        """True when ``request`` satisfies the condition.

        Raises:
            ArgumentTypeError: ``request`` is not a :class:`~lbkit.steering.Request`.

        Runtime complexity: O(size of the condition), each test O(length of the value) (a
        regex may backtrack; see the module docstring).

        >>> Condition({"field": "method", "op": "equals", "value": "get", "ignore_case": True}
        ...           ).matches(Request(method="GET"))
        True
        """
        if not isinstance(request, Request):
            raise ArgumentTypeError(f"request is {type(request).__name__}; it must be a Request")
        return self._node.matches(request)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return bool(self._data == other._data)

    __hash__ = None  # type: ignore[assignment]  # holds plain (mutable) data

    def __repr__(self) -> str:
        return f"Condition({self._data!r})"


# --- fixed responses and overrides ----------------------------------------------------------


def _header_value(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"fixed_response.{name} is {value!r}; it must be a str")
    if not value or not value.isprintable():
        raise ConfigError(
            f"fixed_response.{name} is {value!r}; it becomes a header, so it must be "
            "non-empty and printable (no CR, LF or other control characters)"
        )
    return value


@attrs.frozen
class FixedResponse:
    """A response the load balancer sends itself instead of steering the request.

    Args:
        status: the HTTP status code, an int in 100..599.
        body: the response body (at most 65,536 characters).
        content_type: the ``Content-Type`` header.
        location: the ``Location`` header (for redirects), or ``None``.

    Raises:
        ConfigError: a status out of range, a value of the wrong type, a body too long, or a
            header value that is empty or holds control characters.

    Runtime complexity: O(length of the body).

    >>> FixedResponse(301, location="https://example.com/new").location
    'https://example.com/new'
    """

    status: int = attrs.field()
    body: str = attrs.field(default="", kw_only=True)
    content_type: str = attrs.field(default="text/plain; charset=utf-8", kw_only=True)
    location: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        status = self.status
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ConfigError(
                f"fixed_response.status is {status!r}; it must be an int HTTP status in 100..599"
            )
        if not isinstance(self.body, str):
            raise ConfigError(f"fixed_response.body is {self.body!r}; it must be a str")
        if len(self.body) > MAX_BODY_LENGTH:
            raise ConfigError(
                f"fixed_response.body has {len(self.body)} characters; it may have at most "
                f"{MAX_BODY_LENGTH}"
            )
        _header_value(self.content_type, "content_type")
        if self.location is not None:
            _header_value(self.location, "location")

    @classmethod
    def from_data(cls, data: object) -> FixedResponse:
        """Build one from plain data with the keys ``status`` (required), ``body``,
        ``content_type`` and ``location``.

        Raises:
            ConfigError: not a mapping, an unknown or missing key, or a bad value.

        Runtime complexity: O(length of the body).

        >>> FixedResponse.from_data({"status": 404, "body": "nothing here"}).body
        'nothing here'
        """
        if isinstance(data, FixedResponse):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(f"fixed_response is {data!r}; it must be a mapping")
        for key in data:
            if key not in _RESPONSE_KEYS:
                raise ConfigError(
                    f"fixed_response has the unknown key {key!r}; it may have "
                    f"{', '.join(_RESPONSE_KEYS)}"
                )
        if "status" not in data:
            raise ConfigError("fixed_response has no 'status'; it needs an HTTP status code")
        options = {key: data[key] for key in _RESPONSE_KEYS[1:] if key in data}
        return cls(data["status"], **options)


def _pool_id(value: object, where: str, pool_ids: Collection[str | int] | None) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ConfigError(f"{where} is {value!r}; pool ids are non-empty str or int")
    if pool_ids is not None and value not in pool_ids:
        raise ConfigError(f"{where} is {value!r}; no pool has that id")
    return value


def _pool_list(
    value: object, where: str, pool_ids: Collection[str | int] | None
) -> tuple[str | int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where} is {value!r}; it must be a non-empty list of pool ids")
    result: list[str | int] = []
    for index, item in enumerate(value):
        pool = _pool_id(item, f"{where}[{index}]", pool_ids)
        if pool in result:
            raise ConfigError(f"{where}[{index}] repeats the pool {pool!r}; list each pool once")
        result.append(pool)
    return tuple(result)


def _name_choice(value: object, where: str, allowed: Collection[str] | None) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} is {value!r}; it must be a non-empty str")
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{where} is {value!r}; it must be one of {', '.join(sorted(allowed))}")
    return value


def _check_overrides(
    overrides: object,
    *,
    pool_ids: Collection[str | int] | None,
    policies: Collection[str] | None,
    endpoint_policies: Collection[str] | None,
    affinity: AffinityConfig | None,
) -> Mapping[str, Any]:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"overrides is {overrides!r}; it must be a mapping")
    checked: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"overrides.{key}"
        if key == "pools":
            checked[key] = _pool_list(value, where, pool_ids)
        elif key == "fallback_pool":
            checked[key] = _pool_id(value, where, pool_ids)
        elif key == "policy":
            checked[key] = _name_choice(value, where, policies)
        elif key == "endpoint_policy":
            checked[key] = _name_choice(value, where, endpoint_policies)
        elif key == "session_affinity":
            try:
                partial = check_affinity_overrides(value)
                if affinity is not None:
                    attrs.evolve(affinity, **partial)
            except (ConfigError, ArgumentTypeError) as error:
                raise ConfigError(f"{where}: {error}") from None
            checked[key] = MappingProxyType(partial)
        elif key in ("pop_pools", "country_pools", "region_pools"):
            if not isinstance(value, Mapping) or not value:
                raise ConfigError(
                    f"{where} is {value!r}; it must be a non-empty mapping of name to pool ids"
                )
            pools: dict[str, tuple[str | int, ...]] = {}
            for name, listed in value.items():
                if not isinstance(name, str) or not name:
                    raise ConfigError(f"{where} has the key {name!r}; keys are non-empty str")
                pools[name] = _pool_list(listed, f"{where}[{name!r}]", pool_ids)
            checked[key] = MappingProxyType(pools)
        else:
            raise ConfigError(
                f"overrides has the unknown key {key!r}; overrides may set "
                f"{', '.join(OVERRIDE_KEYS)}"
            )
    return MappingProxyType(checked)


# --- rules ----------------------------------------------------------------------------------


class Rule:
    """One rule: when ``condition`` matches, apply ``overrides`` (or answer with
    ``fixed_response``).

    Args:
        condition: a :class:`Condition` or its plain data.
        overrides: a mapping with keys from :data:`OVERRIDE_KEYS` (validated; lists become
            tuples); ``None`` for none.
        name: the rule's name, for logs and :attr:`RuleOutcome.matched`; a non-empty str.
        terminates: stop evaluating later rules when this one matches.
        fixed_response: a :class:`FixedResponse` (or its plain data) to answer with; it
            stops the evaluation, and such a rule has no overrides.
        disabled: skip this rule when evaluating.
        pool_ids, policies, endpoint_policies, affinity: when given, also check the
            overrides' references against them (see :func:`load_rules`).

    Raises:
        ConfigError: a malformed condition, an unknown override key or a bad override value,
            a bad fixed response, overrides beside a fixed response, a bad name or flag. The
            message starts with ``rule 'NAME':``.

    Runtime complexity: O(size of the condition and the overrides).

    >>> rule = Rule({"field": "host", "op": "suffix", "value": ".example"},
    ...             {"policy": "random"}, name="example-hosts")
    >>> rule.matches(Request(host="shop.example")), rule.overrides["policy"]
    (True, 'random')
    """

    __slots__ = ("_condition", "_disabled", "_fixed_response", "_name", "_overrides", "_stops")

    def __init__(
        self,
        condition: Condition | object,
        overrides: Mapping[str, Any] | None = None,
        *,
        name: str,
        terminates: bool = False,
        fixed_response: FixedResponse | Mapping[str, Any] | None = None,
        disabled: bool = False,
        pool_ids: Collection[str | int] | None = None,
        policies: Collection[str] | None = None,
        endpoint_policies: Collection[str] | None = None,
        affinity: AffinityConfig | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"name is {name!r}; a rule's name is a non-empty str")
        try:
            self._condition = (
                condition if isinstance(condition, Condition) else Condition(condition)
            )
            for flag, value in (("terminates", terminates), ("disabled", disabled)):
                if not isinstance(value, bool):
                    raise ConfigError(f"{flag} is {value!r}; it must be true or false")
            self._overrides = _check_overrides(
                {} if overrides is None else overrides,
                pool_ids=pool_ids,
                policies=policies,
                endpoint_policies=endpoint_policies,
                affinity=affinity,
            )
            self._fixed_response = (
                None if fixed_response is None else FixedResponse.from_data(fixed_response)
            )
            if self._fixed_response is not None and self._overrides:
                raise ConfigError(
                    "a rule with a fixed_response has no overrides; the response replaces steering"
                )
        except ConfigError as error:
            raise ConfigError(f"rule {name!r}: {error}") from None
        self._name = name
        self._stops = terminates
        self._disabled = disabled

    @property
    def name(self) -> str:
        """The rule's name."""
        return self._name

    @property
    def condition(self) -> Condition:
        """The compiled :class:`Condition`."""
        return self._condition

    @property
    def overrides(self) -> Mapping[str, Any]:
        """The validated overrides (read-only)."""
        return self._overrides

    @property
    def terminates(self) -> bool:
        """Whether a match stops the evaluation (always true with a fixed response)."""
        return self._stops or self._fixed_response is not None

    @property
    def fixed_response(self) -> FixedResponse | None:
        """The :class:`FixedResponse`, or ``None``."""
        return self._fixed_response

    @property
    def disabled(self) -> bool:
        """Whether evaluation skips this rule."""
        return self._disabled

    def matches(self, request: Request) -> bool:
        """True when the rule is enabled and its condition matches ``request``.

        Raises:
            ArgumentTypeError: ``request`` is not a :class:`~lbkit.steering.Request`.

        Runtime complexity: O(size of the condition).

        >>> Rule(True, name="all", disabled=True).matches(Request())
        False
        """
        return not self._disabled and self._condition.matches(request)

    def __repr__(self) -> str:
        return (
            f"Rule({self._condition.data!r}, {dict(self._overrides)!r}, name={self._name!r}, "
            f"terminates={self._stops!r}, fixed_response={self._fixed_response!r}, "
            f"disabled={self._disabled!r})"
        )


@attrs.frozen
class RuleOutcome:
    """What the rules decided for one request.

    Attributes:
        overrides: the merged overrides of every matching rule, in order (read-only).
        matched: the names of the matching rules, in order.
        fixed_response: the response to send instead of steering, or ``None``.
        terminated_by: the name of the rule that stopped the evaluation, or ``None``.

    Runtime complexity: O(1).

    >>> RuleSet([]).evaluate(Request())
    RuleOutcome(overrides=mappingproxy({}), matched=(), fixed_response=None, terminated_by=None)
    """

    overrides: Mapping[str, Any]
    matched: tuple[str, ...]
    fixed_response: FixedResponse | None = None
    terminated_by: str | None = None


_NO_MATCH: Final = RuleOutcome(MappingProxyType({}), ())


class RuleSet:
    """An ordered list of :class:`Rule` s, evaluated against requests.

    Args:
        rules: the rules, in evaluation order; names must be unique.

    Raises:
        ArgumentTypeError: an element that is not a :class:`Rule`.
        ConfigError: two rules with the same name.

    Runtime complexity: O(number of rules) to build; :meth:`evaluate` is O(total size of
    the conditions).

    >>> rules = RuleSet([Rule({"field": "country", "op": "equals", "value": "DE"},
    ...                       {"pools": ["eu"]}, name="germany")])
    >>> rules.evaluate(Request(country="DE")).overrides["pools"], len(rules)
    (('eu',), 1)
    """

    __slots__ = ("_rules",)

    def __init__(self, rules: Iterable[Rule]) -> None:
        if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Iterable):
            raise ArgumentTypeError(
                f"rules is {type(rules).__name__}; it must be an iterable of Rule"
            )
        checked: list[Rule] = []
        names: set[str] = set()
        for index, rule in enumerate(rules):
            if not isinstance(rule, Rule):
                raise ArgumentTypeError(
                    f"rules[{index}] is {type(rule).__name__}; it must be a Rule"
                )
            if rule.name in names:
                raise ConfigError(
                    f"rules[{index}] repeats the name {rule.name!r}; rule names are unique"
                )
            names.add(rule.name)
            checked.append(rule)
        self._rules = tuple(checked)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in evaluation order."""
        return self._rules

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __repr__(self) -> str:
        return f"RuleSet({list(self._rules)!r})"

    def evaluate(self, request: Request) -> RuleOutcome:
        """Run the rules against ``request`` (see the module docstring for the order,
        merging and stopping rules).

        Raises:
            ArgumentTypeError: ``request`` is not a :class:`~lbkit.steering.Request`.

        Runtime complexity: O(total size of the conditions + size of the applied overrides).

        >>> rules = load_rules([
        ...     {"name": "a", "condition": True, "overrides": {"policy": "random"}},
        ...     {"name": "b", "condition": True, "overrides": {"policy": "failover"}}])
        >>> rules.evaluate(Request()).overrides["policy"]
        'failover'
        """
        if not isinstance(request, Request):
            raise ArgumentTypeError(f"request is {type(request).__name__}; it must be a Request")
        merged: dict[str, Any] | None = None
        matched: list[str] = []
        for rule in self._rules:
            if rule._disabled or not rule._condition._node.matches(request):
                continue
            matched.append(rule._name)
            if merged is None:
                merged = {}
            if rule._fixed_response is not None:
                return RuleOutcome(
                    MappingProxyType(merged), tuple(matched), rule._fixed_response, rule._name
                )
            for key, value in rule._overrides.items():
                if key == "session_affinity" and key in merged:
                    value = MappingProxyType({**merged[key], **value})
                merged[key] = value
            if rule._stops:
                return RuleOutcome(MappingProxyType(merged), tuple(matched), None, rule._name)
        if merged is None:
            return _NO_MATCH
        return RuleOutcome(MappingProxyType(merged), tuple(matched))


def load_rules(
    data: object,
    *,
    pool_ids: Collection[str | int] | None = None,
    policies: Collection[str] | None = None,
    endpoint_policies: Collection[str] | None = None,
    affinity: AffinityConfig | None = None,
) -> RuleSet:
    """Build a :class:`RuleSet` from plain data (parsed JSON, say), validating everything.

    Each rule is a mapping with ``condition`` (required) and optionally ``name`` (default
    ``"rules[i]"``), ``overrides``, ``terminates``, ``fixed_response`` and ``disabled``.
    The keyword arguments, when given, also check references: pool ids in ``pools``,
    ``fallback_pool`` and the geo maps; the ``policy`` and ``endpoint_policy`` names; and
    that each rule's ``session_affinity`` applies cleanly to the base ``affinity`` config.

    Raises:
        ArgumentTypeError: ``data`` is not a list.
        ConfigError: a rule that is not a mapping, has an unknown or missing key, a repeated
            name, or anything :class:`Rule` rejects; the message starts with ``rules[i]:``.

    Runtime complexity: O(total size of the data) (plus the regex compiler).

    >>> load_rules([{"condition": {"field": "path", "op": "regex", "value": "("}}])
    Traceback (most recent call last):
    ...
    lbkit.errors.ConfigError: rules[0]: condition.value is '('; it is not a valid regular expression (missing ), unterminated subpattern at position 0)
    """  # noqa: E501
    if not isinstance(data, (list, tuple)):
        raise ArgumentTypeError(f"rules is {type(data).__name__}; it must be a list of rules")
    rules: list[Rule] = []
    names: set[str] = set()
    for index, item in enumerate(data):
        label = f"rules[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{label} is {item!r}; a rule is a mapping")
        for key in item:
            if key not in _RULE_KEYS:
                raise ConfigError(
                    f"{label} has the unknown key {key!r}; a rule may have {', '.join(_RULE_KEYS)}"
                )
        if "condition" not in item:
            raise ConfigError(f"{label} has no 'condition'; use true to match every request")
        name = item.get("name", label)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{label}.name is {name!r}; a rule's name is a non-empty str")
        if name in names:
            raise ConfigError(f"{label} repeats the name {name!r}; rule names are unique")
        try:
            rule = Rule(
                item["condition"],
                item.get("overrides"),
                name=name,
                terminates=item.get("terminates", False),
                fixed_response=item.get("fixed_response"),
                disabled=item.get("disabled", False),
                pool_ids=pool_ids,
                policies=policies,
                endpoint_policies=endpoint_policies,
                affinity=affinity,
            )
        except ConfigError as error:
            message = str(error)
            prefix = f"rule {name!r}: "
            if message.startswith(prefix):
                message = message[len(prefix) :]
            where = label if name == label else f"{label} ({name!r})"
            raise ConfigError(f"{where}: {message}") from None
        names.add(name)
        rules.append(rule)
    return RuleSet(rules)
