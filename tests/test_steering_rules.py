"""lbkit.steering.rules: every operator and combinator, evaluation order, overwriting,
terminates and fixed responses, properties of the condition language, and every rejected
input with its message. Nothing here touches a kernel, so no test takes ``impl``."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, ConfigError
from lbkit.steering.affinity import AffinityConfig
from lbkit.steering.request import Request
from lbkit.steering.rules import (
    MAX_DEPTH,
    MAX_PATTERN_LENGTH,
    Condition,
    FixedResponse,
    Rule,
    RuleOutcome,
    RuleSet,
    load_rules,
)


def field_test(field: Any, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    """A test condition as plain data (no value for ``exists``)."""
    data: dict[str, Any] = {"field": field, "op": op, **extra}
    if op != "exists":
        data["value"] = value
    return data


REQUEST = Request(
    host="shop.example",
    path="/api/v1/cart",
    method="POST",
    headers={"X-Canary": "yes", "User-Agent": "curl/8.5"},
    query={"v": "2"},
    cookies={"sid": "abc"},
    client_ip="198.51.100.7",
    country="DE",
    region="WEU",
    pop="FRA",
)

# --- operators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (field_test("host", "equals", "shop.example"), True),
        (field_test("host", "equals", "Shop.example"), False),
        (field_test("host", "equals", "Shop.EXAMPLE", ignore_case=True), True),
        (field_test("method", "in", ["GET", "POST"]), True),
        (field_test("method", "in", ["GET", "PUT"]), False),
        (field_test("method", "in", ["post"], ignore_case=True), True),
        (field_test("path", "prefix", "/api"), True),
        (field_test("path", "prefix", "/API", ignore_case=True), True),
        (field_test("path", "prefix", "/cart"), False),
        (field_test("path", "suffix", "/cart"), True),
        (field_test("path", "suffix", "/CART", ignore_case=True), True),
        (field_test("path", "suffix", "/api"), False),
        (field_test("path", "contains", "/v1/"), True),
        (field_test("path", "contains", "/V1/", ignore_case=True), True),
        (field_test("path", "contains", "/v2/"), False),
        (field_test("path", "regex", r"/v[0-9]+/"), True),  # search: matches inside the value
        (field_test("path", "regex", r"^/v[0-9]+/"), False),
        (field_test("path", "regex", r"/API/V\d", ignore_case=True), True),
        (field_test("header.user-agent", "regex", r"^curl/"), True),
        (field_test("client_ip", "cidr", "198.51.100.0/24"), True),
        (field_test("client_ip", "cidr", ["10.0.0.0/8", "198.51.0.0/16"]), True),
        (field_test("client_ip", "cidr", ["10.0.0.0/8", "2001:db8::/32"]), False),
        (field_test("client_ip", "cidr", "198.51.100.7/32"), True),
        (field_test("header.x-canary", "exists"), True),
        (field_test("header.x-missing", "exists"), False),
        (field_test("query.v", "equals", "2"), True),
        (field_test("cookie.sid", "equals", "abc"), True),
        (field_test("country", "in", ["DE", "FR"]), True),
        (field_test("region", "equals", "WEU"), True),
        (field_test("pop", "equals", "FRA"), True),
        (field_test("scheme", "equals", "https"), True),
    ],
)
def test_each_operator_matches_as_documented(condition: dict[str, Any], expected: bool) -> None:
    """Every operator, with and without ignore_case, against a request that has every field."""
    assert Condition(condition).matches(REQUEST) is expected


def test_header_field_names_are_case_insensitive() -> None:
    """header.<name> matches whatever the case of the name in the rule or the request."""
    assert Condition(field_test("header.X-CANARY", "equals", "yes")).matches(REQUEST)


def test_query_and_cookie_names_are_exact() -> None:
    """query.<name> and cookie.<name> compare names exactly."""
    assert not Condition(field_test("query.V", "exists")).matches(REQUEST)
    assert not Condition(field_test("cookie.SID", "exists")).matches(REQUEST)


@pytest.mark.parametrize(
    ("address", "blocks", "expected"),
    [
        ("2001:db8::1", "2001:db8::/32", True),
        ("2001:db9::1", "2001:db8::/32", False),
        ("::ffff:192.0.2.9", "192.0.2.0/24", True),  # IPv4-mapped IPv6 matches IPv4 blocks
        ("192.0.2.9", "::ffff:192.0.2.0/120", False),
        ("192.0.2.9", "0.0.0.0/0", True),
        ("2001:db8::1", "0.0.0.0/0", False),
        ("2001:db8::1", "::/0", True),
    ],
)
def test_cidr_matches_across_families(address: str, blocks: str, expected: bool) -> None:
    """cidr handles IPv4 and IPv6, and IPv4-mapped IPv6 addresses against IPv4 blocks."""
    condition = Condition(field_test("client_ip", "cidr", blocks))
    assert condition.matches(Request(client_ip=address)) is expected


def test_cidr_on_a_value_that_is_not_an_address_never_matches() -> None:
    """A header that does not hold an IP address does not match any block."""
    condition = Condition(field_test("header.x-forwarded-for", "cidr", "0.0.0.0/0"))
    assert not condition.matches(Request(headers={"x-forwarded-for": "unknown"}))
    assert condition.matches(Request(headers={"x-forwarded-for": "192.0.2.1"}))


@pytest.mark.parametrize(
    "condition",
    [
        field_test("header.x-none", "equals", ""),
        field_test("header.x-none", "in", [""]),
        field_test("header.x-none", "prefix", ""),
        field_test("header.x-none", "suffix", ""),
        field_test("header.x-none", "contains", ""),
        field_test("header.x-none", "regex", ".*"),
        field_test("client_ip", "cidr", "::/0"),
        field_test("country", "exists"),
    ],
)
def test_a_missing_field_never_matches_but_its_negation_does(condition: dict[str, Any]) -> None:
    """A field the request does not carry fails every test, even one that accepts anything,
    so the negated test matches."""
    empty = Request()
    assert not Condition(condition).matches(empty)
    assert Condition({"not": condition}).matches(empty)


def test_empty_string_values_match_present_fields() -> None:
    """An empty prefix, suffix or substring matches any present value, even an empty one."""
    request = Request(headers={"x-empty": ""})
    for op in ("prefix", "suffix", "contains", "equals"):
        assert Condition(field_test("header.x-empty", op, "")).matches(request)


# --- combinators ----------------------------------------------------------------------------


def test_all_any_not_and_constants() -> None:
    """all needs every child, any at least one, not inverts; true and false are constants."""
    yes, no = field_test("country", "equals", "DE"), field_test("country", "equals", "US")
    assert Condition({"all": [yes, yes]}).matches(REQUEST)
    assert not Condition({"all": [yes, no]}).matches(REQUEST)
    assert Condition({"any": [no, yes]}).matches(REQUEST)
    assert not Condition({"any": [no, no]}).matches(REQUEST)
    assert Condition({"not": no}).matches(REQUEST)
    assert Condition(True).matches(REQUEST)
    assert not Condition(False).matches(REQUEST)
    nested = {"all": [{"any": [no, {"not": no}]}, {"not": {"all": [yes, no]}}]}
    assert Condition(nested).matches(REQUEST)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    """Conditions may nest MAX_DEPTH levels."""
    condition: Any = field_test("country", "equals", "DE")
    for _ in range(MAX_DEPTH - 1):
        condition = {"not": condition}
    assert Condition(condition).matches(REQUEST) is (MAX_DEPTH % 2 == 1)


def test_condition_keeps_its_own_copy_of_the_data() -> None:
    """Changing the data after building a condition does not change the condition."""
    data = {"field": "country", "op": "in", "value": ["DE"]}
    condition = Condition(data)
    data["value"].append("US")  # type: ignore[attr-defined]
    assert not condition.matches(Request(country="US"))
    assert condition.data == {"field": "country", "op": "in", "value": ["DE"]}
    assert condition == Condition({"field": "country", "op": "in", "value": ["DE"]})
    assert repr(condition) == "Condition({'field': 'country', 'op': 'in', 'value': ['DE']})"


# --- properties -----------------------------------------------------------------------------

values = st.sampled_from(["", "a", "ab", "DE", "/api", "10.0.0.1", "2001:db8::1"])
fields = st.sampled_from(["host", "path", "country", "client_ip", "header.x-a", "query.q"])


def leaf() -> st.SearchStrategy[Any]:
    text_op = st.sampled_from(["equals", "prefix", "suffix", "contains"])
    return st.one_of(
        st.builds(
            lambda f, o, v, i: field_test(f, o, v, ignore_case=i),
            fields,
            text_op,
            values,
            st.booleans(),
        ),
        st.builds(
            lambda f, v: field_test(f, "in", v), fields, st.lists(values, min_size=1, max_size=3)
        ),
        st.builds(
            lambda f, v: field_test(f, "regex", v),
            fields,
            st.sampled_from(["a", "^/", "b$", "[0-9]+"]),
        ),
        st.builds(
            lambda f, v: field_test(f, "cidr", v), fields, st.sampled_from(["10.0.0.0/8", "::/0"])
        ),
        st.builds(lambda f: field_test(f, "exists"), fields),
        st.booleans(),
    )


conditions = st.recursive(
    leaf(),
    lambda children: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, children),
    ),
    max_leaves=8,
)
maybe = st.one_of(st.none(), values)
addresses = st.sampled_from([None, "10.0.0.1", "192.0.2.1", "2001:db8::1"])
requests = st.builds(
    lambda host, path, country, ip, header, query: Request(
        host=host or "",
        path=path or "/",
        country=country,
        client_ip=ip,
        headers={} if header is None else {"x-a": header},
        query={} if query is None else {"q": query},
    ),
    maybe,
    maybe,
    maybe,
    addresses,
    maybe,
    maybe,
)


@given(conditions, requests)
def test_not_inverts_any_condition(condition: Any, request: Request) -> None:
    """{'not': c} matches exactly the requests c does not."""
    assert Condition({"not": condition}).matches(request) is not Condition(condition).matches(
        request
    )


@given(st.lists(conditions, min_size=1, max_size=4), requests)
def test_all_and_any_agree_with_their_children(children: list[Any], request: Request) -> None:
    """all is the conjunction and any the disjunction of the children's results."""
    results = [Condition(child).matches(request) for child in children]
    assert Condition({"all": children}).matches(request) is all(results)
    assert Condition({"any": children}).matches(request) is any(results)


@given(st.lists(st.tuples(conditions, st.booleans()), max_size=5), requests)
def test_evaluation_is_deterministic(items: list[tuple[Any, bool]], request: Request) -> None:
    """The same rules give the same outcome for the same request, every time, and a copy of
    the data gives an equal rule set."""
    data = [
        {"name": f"r{i}", "condition": c, "overrides": {"policy": f"p{i}"}, "terminates": t}
        for i, (c, t) in enumerate(items)
    ]
    first = load_rules(data).evaluate(request)
    assert load_rules(copy.deepcopy(data)).evaluate(request) == first
    assert load_rules(data).evaluate(request) == first
    matched = [f"r{i}" for i, (c, _) in enumerate(items) if Condition(c).matches(request)]
    stop = next((i for i, name in enumerate(matched) if items[int(name[1:])][1]), None)
    expected = matched if stop is None else matched[: stop + 1]
    assert first.matched == tuple(expected)


# --- evaluation -----------------------------------------------------------------------------


def test_later_matches_overwrite_earlier_keys() -> None:
    """Overrides apply in order: a later rule's key replaces an earlier one's, other keys stay."""
    rules = load_rules(
        [
            {
                "name": "a",
                "condition": True,
                "overrides": {"pools": ["x", "y"], "policy": "random"},
            },
            {"name": "b", "condition": False, "overrides": {"policy": "geo"}},
            {"name": "c", "condition": True, "overrides": {"pools": ["z"]}},
        ]
    )
    outcome = rules.evaluate(Request())
    assert outcome.matched == ("a", "c")
    assert dict(outcome.overrides) == {"pools": ("z",), "policy": "random"}
    assert outcome.terminated_by is None
    assert outcome.fixed_response is None


def test_session_affinity_overrides_merge_field_by_field() -> None:
    """session_affinity settings from several rules combine; later fields win."""
    rules = load_rules(
        [
            {
                "name": "a",
                "condition": True,
                "overrides": {"session_affinity": {"ttl": 60, "failover": "sticky"}},
            },
            {"name": "b", "condition": True, "overrides": {"session_affinity": {"ttl": 30}}},
        ]
    )
    outcome = rules.evaluate(Request())
    assert dict(outcome.overrides["session_affinity"]) == {"ttl": 30.0, "failover": "sticky"}
    # The rules' own overrides are untouched by the merge.
    assert dict(rules.rules[0].overrides["session_affinity"]) == {"ttl": 60.0, "failover": "sticky"}


def test_terminates_stops_after_applying_its_overrides() -> None:
    """A matching terminating rule applies its overrides and later rules are not evaluated."""
    rules = load_rules(
        [
            {"name": "a", "condition": True, "overrides": {"policy": "random"}},
            {"name": "stop", "condition": True, "overrides": {"pools": ["p"]}, "terminates": True},
            {"name": "late", "condition": True, "overrides": {"policy": "geo"}},
        ]
    )
    outcome = rules.evaluate(Request())
    assert outcome == RuleOutcome(
        {"policy": "random", "pools": ("p",)}, ("a", "stop"), None, "stop"
    )


def test_terminating_rule_that_does_not_match_does_not_stop() -> None:
    """terminates only acts when its rule matches."""
    rules = load_rules(
        [
            {"name": "stop", "condition": False, "terminates": True},
            {"name": "late", "condition": True, "overrides": {"policy": "geo"}},
        ]
    )
    assert rules.evaluate(Request()).matched == ("late",)


def test_fixed_response_stops_evaluation_at_once() -> None:
    """A matching fixed-response rule ends evaluation; earlier overrides are kept for logs."""
    rules = load_rules(
        [
            {"name": "a", "condition": True, "overrides": {"policy": "random"}},
            {
                "name": "moved",
                "condition": field_test("path", "prefix", "/old"),
                "fixed_response": {"status": 301, "location": "https://shop.example/new"},
            },
            {"name": "late", "condition": True, "overrides": {"policy": "geo"}},
        ]
    )
    outcome = rules.evaluate(Request(path="/old/x"))
    assert outcome.fixed_response == FixedResponse(301, location="https://shop.example/new")
    assert outcome.matched == ("a", "moved")
    assert outcome.terminated_by == "moved"
    assert dict(outcome.overrides) == {"policy": "random"}
    assert rules.evaluate(Request(path="/new")).matched == ("a", "late")
    assert rules.rules[1].terminates


def test_disabled_rules_are_skipped() -> None:
    """A disabled rule never matches and never stops evaluation."""
    rules = load_rules(
        [
            {"name": "off", "condition": True, "fixed_response": {"status": 503}, "disabled": True},
            {"name": "on", "condition": True, "overrides": {"policy": "random"}},
        ]
    )
    assert rules.evaluate(Request()).matched == ("on",)


def test_no_match_gives_an_empty_outcome() -> None:
    """Without a matching rule the outcome is empty and read-only."""
    outcome = load_rules([{"condition": False, "overrides": {"policy": "x"}}]).evaluate(Request())
    assert outcome == RuleOutcome({}, ())
    with pytest.raises(TypeError):
        outcome.overrides["policy"] = "y"  # type: ignore[index]


def test_outcome_overrides_are_read_only() -> None:
    """The merged overrides and nested maps cannot be changed by the caller."""
    rules = load_rules(
        [
            {
                "condition": True,
                "overrides": {"pop_pools": {"FRA": ["eu"]}, "session_affinity": {"ttl": 5}},
            }
        ]
    )
    outcome = rules.evaluate(Request())
    with pytest.raises(TypeError):
        outcome.overrides["pop_pools"]["FRA"] = ("us",)
    with pytest.raises(TypeError):
        outcome.overrides["session_affinity"]["ttl"] = 1


def test_every_override_key_is_accepted_and_normalised() -> None:
    """Each documented override key is accepted; pool lists become tuples."""
    rule = Rule(
        True,
        {
            "pools": ["eu", 2],
            "fallback_pool": "us",
            "policy": "dynamic",
            "endpoint_policy": "p2c",
            "session_affinity": {"by": "header", "headers": ["X-Sid"]},
            "pop_pools": {"FRA": ["eu"]},
            "country_pools": {"DE": ["eu", "us"]},
            "region_pools": {"WEU": ["eu"]},
        },
        name="all-keys",
    )
    overrides = rule.overrides
    assert overrides["pools"] == ("eu", 2)
    assert dict(overrides["country_pools"]) == {"DE": ("eu", "us")}
    assert dict(overrides["session_affinity"]) == {"by": "header", "headers": ("x-sid",)}


def test_rule_set_and_rule_basics() -> None:
    """RuleSet is sized and iterable in order; Rule exposes its parts and a repr."""
    rule = Rule(field_test("country", "equals", "DE"), {"policy": "geo"}, name="de")
    rules = RuleSet([rule])
    assert len(rules) == 1
    assert list(rules) == [rule]
    assert rules.rules == (rule,)
    assert (rule.name, rule.terminates, rule.disabled, rule.fixed_response) == (
        "de",
        False,
        False,
        None,
    )
    assert rule.condition == Condition(field_test("country", "equals", "DE"))
    assert repr(rule) == (
        "Rule({'field': 'country', 'op': 'equals', 'value': 'DE'}, {'policy': 'geo'}, "
        "name='de', terminates=False, fixed_response=None, disabled=False)"
    )
    assert load_rules([{"condition": True}]).rules[0].name == "rules[0]"


def test_fixed_response_defaults_and_data() -> None:
    """A fixed response defaults to an empty text/plain body without Location."""
    response = FixedResponse.from_data({"status": 200})
    assert response == FixedResponse(200, body="", content_type="text/plain; charset=utf-8")
    assert FixedResponse.from_data(response) is response


def test_evaluate_and_matches_need_a_request() -> None:
    """Conditions and rule sets only evaluate Request objects."""
    with pytest.raises(ArgumentTypeError, match=r"^request is dict; it must be a Request$"):
        RuleSet([]).evaluate({})  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=r"^request is dict; it must be a Request$"):
        Condition(True).matches({})  # type: ignore[arg-type]


# --- rejected conditions --------------------------------------------------------------------

FIELD_RULE = (
    "fields are host, path, method, scheme, client_ip, country, region, pop or header.<name>, "
    "query.<name>, cookie.<name>"
)
OP_RULE = "ops are equals, in, prefix, suffix, contains, regex, cidr, exists"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (field_test("user", "equals", "x"), f"condition.field is 'user'; {FIELD_RULE}"),
        (field_test("header.", "exists"), f"condition.field is 'header.'; {FIELD_RULE}"),
        (field_test("body.x", "exists"), f"condition.field is 'body.x'; {FIELD_RULE}"),
        (field_test(3, "exists"), f"condition.field is 3; it must be a str ({FIELD_RULE})"),
        (field_test("path", "startswith", "/"), f"condition.op is 'startswith'; {OP_RULE}"),
        ({"field": "path", "value": "/"}, f"condition has no 'op'; {OP_RULE}"),
        (
            {"op": "equals", "value": "/"},
            "condition has no 'field'; a test names the request field it reads",
        ),
        ({"field": "path", "op": "equals"}, "condition has no 'value'; equals needs one"),
        (
            {"field": "path", "op": "exists", "value": True},
            "condition has a 'value'; exists takes none",
        ),
        (field_test("path", "equals", 1), "condition.value is 1; equals needs a str"),
        (field_test("path", "prefix", None), "condition.value is None; prefix needs a str"),
        (field_test("path", "in", []), "condition.value is []; in needs a non-empty list of str"),
        (
            field_test("path", "in", "/a"),
            "condition.value is '/a'; in needs a non-empty list of str",
        ),
        (field_test("path", "in", ["/a", 2]), "condition.value[1] is 2; in needs a list of str"),
        (
            field_test("path", "regex", "("),
            "condition.value is '('; it is not a valid regular expression (missing ), unterminated subpattern at position 0)",
        ),
        (
            field_test("path", "regex", "a" * (MAX_PATTERN_LENGTH + 1)),
            f"condition.value has {MAX_PATTERN_LENGTH + 1} characters; patterns are at most {MAX_PATTERN_LENGTH}",
        ),
        (
            field_test("client_ip", "cidr", "10.0.0.1/8"),
            "condition.value is '10.0.0.1/8'; it is not a CIDR block such as '192.0.2.0/24' or '2001:db8::/32' (10.0.0.1/8 has host bits set)",
        ),
        (
            field_test("client_ip", "cidr", ["10.0.0.0/8", "nope"]),
            "condition.value[1] is 'nope'; it is not a CIDR block such as '192.0.2.0/24' or '2001:db8::/32' ('nope' does not appear to be an IPv4 or IPv6 network)",
        ),
        (
            field_test("client_ip", "cidr", []),
            "condition.value is []; cidr needs a non-empty list of CIDR blocks",
        ),
        (
            field_test("client_ip", "cidr", 10),
            "condition.value is 10; cidr needs a non-empty list of CIDR blocks",
        ),
        (
            field_test("path", "equals", "/", ignore_case="yes"),
            "condition.ignore_case is 'yes'; it must be true or false",
        ),
        (
            field_test("client_ip", "cidr", "::/0", ignore_case=True),
            "condition.ignore_case is true; cidr does not compare text",
        ),
        (
            field_test("path", "exists", ignore_case=True),
            "condition.ignore_case is true; exists does not compare text",
        ),
        (
            {"field": "path", "op": "exists", "negate": True},
            "condition has the unknown key 'negate'; a test has field, op, value and ignore_case, a combination exactly one of all, any, not",
        ),
        ({"all": []}, "condition.all is []; all needs at least one condition"),
        ({"any": []}, "condition.any is []; any needs at least one condition"),
        (
            {"all": field_test("path", "exists")},
            "condition.all is {'field': 'path', 'op': 'exists'}; all needs a list of conditions",
        ),
        (
            {"any": [True], "not": True},
            "condition has 'any' and 'not'; a condition with all, any or not has nothing else",
        ),
        (
            {"not": True, "field": "path"},
            "condition has 'not' and 'field'; a condition with all, any or not has nothing else",
        ),
        (
            {"all": [True, {"not": {"any": [{"op": "equals"}]}}]},
            "condition.all[1].not.any[0] has no 'field'; a test names the request field it reads",
        ),
        (
            {"any": [True, [field_test("path", "exists")]]},
            "condition.any[1] is [{'field': 'path', 'op': 'exists'}]; a condition is a mapping (a test, or all/any/not) or a bool",
        ),
        (
            "path == '/'",
            "condition is \"path == '/'\"; a condition is a mapping (a test, or all/any/not) or a bool",
        ),
        (None, "condition is None; a condition is a mapping (a test, or all/any/not) or a bool"),
    ],
)
def test_malformed_conditions_are_rejected(data: Any, message: str) -> None:
    """Each malformed condition raises ConfigError with the path to the mistake."""
    with pytest.raises(ConfigError) as caught:
        Condition(data)
    assert str(caught.value) == message


def test_nesting_beyond_the_limit_is_rejected() -> None:
    """Conditions deeper than MAX_DEPTH are refused before they can exhaust the stack."""
    condition: Any = field_test("path", "exists")
    for _ in range(MAX_DEPTH):
        condition = {"not": condition}
    with pytest.raises(ConfigError) as caught:
        Condition(condition)
    assert str(caught.value) == (
        "condition" + ".not" * MAX_DEPTH + f" nests deeper than {MAX_DEPTH} levels of all/any/not"
    )


# --- rejected rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"pool": ["a"]},
            "overrides has the unknown key 'pool'; overrides may set pools, fallback_pool, policy, endpoint_policy, session_affinity, pop_pools, country_pools, region_pools",
        ),
        ({"pools": []}, "overrides.pools is []; it must be a non-empty list of pool ids"),
        ({"pools": "eu"}, "overrides.pools is 'eu'; it must be a non-empty list of pool ids"),
        ({"pools": ["eu", "eu"]}, "overrides.pools[1] repeats the pool 'eu'; list each pool once"),
        ({"pools": ["eu", True]}, "overrides.pools[1] is True; pool ids are non-empty str or int"),
        ({"fallback_pool": ""}, "overrides.fallback_pool is ''; pool ids are non-empty str or int"),
        ({"policy": ""}, "overrides.policy is ''; it must be a non-empty str"),
        ({"endpoint_policy": 3}, "overrides.endpoint_policy is 3; it must be a non-empty str"),
        (
            {"session_affinity": {"ttl": -1}},
            "overrides.session_affinity: ttl is -1; it must be finite, > 0 and <= 1e+09 seconds",
        ),
        (
            {"session_affinity": {"ttl": "1"}},
            "overrides.session_affinity: ttl is str; it must be a number",
        ),
        (
            {"session_affinity": {"sticky": True}},
            "overrides.session_affinity: session_affinity has the unknown key 'sticky'; it may set by, ttl, failover, drain_duration, headers, require_all_headers, cookie_name, secure, http_only, same_site, path, domain",
        ),
        (
            {"session_affinity": "cookie"},
            "overrides.session_affinity: session_affinity is str; it must be a mapping",
        ),
        (
            {"pop_pools": {}},
            "overrides.pop_pools is {}; it must be a non-empty mapping of name to pool ids",
        ),
        (
            {"country_pools": {"": ["eu"]}},
            "overrides.country_pools has the key ''; keys are non-empty str",
        ),
        (
            {"region_pools": {"WEU": []}},
            "overrides.region_pools['WEU'] is []; it must be a non-empty list of pool ids",
        ),
        (["pools"], "overrides is ['pools']; it must be a mapping"),
    ],
)
def test_bad_overrides_are_rejected(overrides: Any, message: str) -> None:
    """Each bad override raises ConfigError naming the rule, the key and the rule broken."""
    with pytest.raises(ConfigError) as caught:
        Rule(True, overrides, name="r")
    assert str(caught.value) == f"rule 'r': {message}"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            {"status": 600},
            "fixed_response.status is 600; it must be an int HTTP status in 100..599",
        ),
        ({"status": 99}, "fixed_response.status is 99; it must be an int HTTP status in 100..599"),
        (
            {"status": "200"},
            "fixed_response.status is '200'; it must be an int HTTP status in 100..599",
        ),
        (
            {"status": True},
            "fixed_response.status is True; it must be an int HTTP status in 100..599",
        ),
        ({"body": "x"}, "fixed_response has no 'status'; it needs an HTTP status code"),
        (
            {"status": 200, "message_body": "x"},
            "fixed_response has the unknown key 'message_body'; it may have status, body, content_type, location",
        ),
        ({"status": 200, "body": 5}, "fixed_response.body is 5; it must be a str"),
        (
            {"status": 200, "body": "x" * 65_537},
            "fixed_response.body has 65537 characters; it may have at most 65536",
        ),
        (
            {"status": 302, "location": "https://a\r\nSet-Cookie: x=y"},
            "fixed_response.location is 'https://a\\r\\nSet-Cookie: x=y'; it becomes a header, so it must be non-empty and printable (no CR, LF or other control characters)",
        ),
        (
            {"status": 200, "content_type": ""},
            "fixed_response.content_type is ''; it becomes a header, so it must be non-empty and printable (no CR, LF or other control characters)",
        ),
        (
            {"status": 200, "content_type": None},
            "fixed_response.content_type is None; it must be a str",
        ),
        ("503", "fixed_response is '503'; it must be a mapping"),
    ],
)
def test_bad_fixed_responses_are_rejected(response: Any, message: str) -> None:
    """A fixed response needs a status in 100..599 and safe header values."""
    with pytest.raises(ConfigError) as caught:
        Rule(True, name="r", fixed_response=response)
    assert str(caught.value) == f"rule 'r': {message}"


def test_rule_level_mistakes_are_rejected() -> None:
    """Names, flags, and overrides beside a fixed response are checked."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name is ''; a rule's name is a non-empty str"),
        (
            {"name": "r", "terminates": "yes"},
            "rule 'r': terminates is 'yes'; it must be true or false",
        ),
        ({"name": "r", "disabled": 0}, "rule 'r': disabled is 0; it must be true or false"),
        (
            {"name": "r", "fixed_response": {"status": 503}, "overrides": {"policy": "x"}},
            "rule 'r': a rule with a fixed_response has no overrides; the response replaces steering",
        ),
    ]
    for options, message in cases:
        options = dict(options)
        overrides = options.pop("overrides", None)
        with pytest.raises(ConfigError) as caught:
            Rule(True, overrides, **options)
        assert str(caught.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [{"condition": True, "priority": 1}],
            "rules[0] has the unknown key 'priority'; a rule may have name, condition, overrides, terminates, fixed_response, disabled",
        ),
        ([{"overrides": {}}], "rules[0] has no 'condition'; use true to match every request"),
        ([{"condition": True}, "rule"], "rules[1] is 'rule'; a rule is a mapping"),
        (
            [{"name": "a", "condition": True}, {"name": "a", "condition": True}],
            "rules[1] repeats the name 'a'; rule names are unique",
        ),
        (
            [{"name": ["a"], "condition": True}],
            "rules[0].name is ['a']; a rule's name is a non-empty str",
        ),
        (
            [{"condition": {"all": []}}],
            "rules[0]: condition.all is []; all needs at least one condition",
        ),
        (
            [{"condition": True}, {"name": "api", "condition": field_test("path", "regex", "[")}],
            "rules[1] ('api'): condition.value is '['; it is not a valid regular expression (unterminated character set at position 0)",
        ),
        (
            [{"name": "x", "condition": True, "overrides": {"weights": {}}}],
            "rules[0] ('x'): overrides has the unknown key 'weights'; overrides may set pools, fallback_pool, policy, endpoint_policy, session_affinity, pop_pools, country_pools, region_pools",
        ),
        (
            [{"condition": True, "fixed_response": {"status": 1000}}],
            "rules[0]: fixed_response.status is 1000; it must be an int HTTP status in 100..599",
        ),
    ],
)
def test_load_rules_names_the_broken_rule(data: Any, message: str) -> None:
    """load_rules prefixes every error with the rule's index (and name, when it has one)."""
    with pytest.raises(ConfigError) as caught:
        load_rules(data)
    assert str(caught.value) == message


def test_load_rules_checks_references_when_given() -> None:
    """Pool ids, policy names and affinity settings are checked against what the load
    balancer knows, when it passes them."""
    known = {"pool_ids": {"eu", "us"}, "policies": {"random", "geo"}, "endpoint_policies": {"p2c"}}
    base = AffinityConfig("cookie")
    good = [
        {
            "condition": True,
            "overrides": {"pools": ["eu"], "policy": "geo", "endpoint_policy": "p2c"},
        }
    ]
    assert len(load_rules(good, **known, affinity=base)) == 1
    cases: list[tuple[dict[str, Any], str]] = [
        ({"pools": ["eu", "asia"]}, "rules[0]: overrides.pools[1] is 'asia'; no pool has that id"),
        (
            {"fallback_pool": "asia"},
            "rules[0]: overrides.fallback_pool is 'asia'; no pool has that id",
        ),
        (
            {"country_pools": {"JP": ["asia"]}},
            "rules[0]: overrides.country_pools['JP'][0] is 'asia'; no pool has that id",
        ),
        (
            {"policy": "fastest"},
            "rules[0]: overrides.policy is 'fastest'; it must be one of geo, random",
        ),
        (
            {"endpoint_policy": "rr"},
            "rules[0]: overrides.endpoint_policy is 'rr'; it must be one of p2c",
        ),
        (
            {"session_affinity": {"by": "header"}},
            "rules[0]: overrides.session_affinity: headers is (); by='header' needs at least one header name",
        ),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError) as caught:
            load_rules([{"condition": True, "overrides": overrides}], **known, affinity=base)
        assert str(caught.value) == message


def test_rule_set_rejects_non_rules_and_duplicate_names() -> None:
    """RuleSet takes Rule objects with unique names; load_rules takes a list."""
    with pytest.raises(ArgumentTypeError, match=r"^rules\[0\] is dict; it must be a Rule$"):
        RuleSet([{"condition": True}])  # type: ignore[list-item]
    with pytest.raises(ArgumentTypeError, match=r"^rules is str; it must be an iterable of Rule$"):
        RuleSet("rules")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"^rules\[1\] repeats the name 'a'; rule names are unique$"
    ):
        RuleSet([Rule(True, name="a"), Rule(False, name="a")])
    with pytest.raises(ArgumentTypeError, match=r"^rules is dict; it must be a list of rules$"):
        load_rules({"condition": True})
