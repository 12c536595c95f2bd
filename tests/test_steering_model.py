"""lbkit.steering's model and inputs: endpoints, pools, requests, key hashes and the time-aware
EWMA, with every rejected input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbkit import hashing
from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, InvalidKey, UnknownServer
from lbkit.steering import Endpoint, Ewma, Pool, Request, check_weight, id_hash, key_hash

# --- endpoints and pools ------------------------------------------------------------------


def test_endpoint_defaults_and_weight_conversion() -> None:
    """An endpoint's weight defaults to 1.0 and an int weight becomes a float."""
    assert Endpoint("a").weight == 1.0
    assert Endpoint("a", weight=3).weight == 3.0
    assert Endpoint(7, weight=0).weight == 0.0


@pytest.mark.parametrize(
    ("weight", "error", "message"),
    [
        (-1, ConfigError, "weight is -1; weights must be finite and >= 0"),
        (math.nan, ConfigError, "weight is nan; weights must be finite and >= 0"),
        (math.inf, ConfigError, "weight is inf; weights must be finite and >= 0"),
        (True, ArgumentTypeError, "weight is bool; weights must be numbers"),
        ("2", ArgumentTypeError, "weight is str; weights must be numbers"),
    ],
)
def test_bad_weights_are_rejected(weight: Any, error: type[Exception], message: str) -> None:
    """Negative, NaN, infinite and non-numeric weights are errors, for endpoints and pools."""
    with pytest.raises(error) as raised:
        Endpoint("a", weight=weight)
    assert str(raised.value) == message
    with pytest.raises(error):
        Pool("p", [Endpoint("a")], weight=weight)
    with pytest.raises(error):
        check_weight(weight, "weight")


@pytest.mark.parametrize(
    ("endpoint_id", "error", "message"),
    [
        ("", ConfigError, "id is ''; ids must not be empty"),
        (None, ArgumentTypeError, "id is NoneType; ids must be str or int"),
        (True, ArgumentTypeError, "id is bool; ids must be str or int"),
        (1.5, ArgumentTypeError, "id is float; ids must be str or int"),
    ],
)
def test_bad_ids_are_rejected(endpoint_id: Any, error: type[Exception], message: str) -> None:
    """Ids are non-empty str or int, for endpoints and pools alike."""
    with pytest.raises(error) as raised:
        Endpoint(endpoint_id)
    assert str(raised.value) == message
    with pytest.raises(error):
        Pool(endpoint_id, [Endpoint("a")])


def test_address_must_be_text() -> None:
    """An endpoint address is a str or None."""
    assert Endpoint("a", address="10.0.0.1:80").address == "10.0.0.1:80"
    with pytest.raises(ArgumentTypeError, match="address is int; it must be a str or None"):
        Endpoint("a", address=80)  # type: ignore[arg-type]


def test_pool_holds_endpoints_in_order_and_sums_weights() -> None:
    """A pool keeps its endpoints in the given order; total_weight adds their weights."""
    pool = Pool("eu", [Endpoint("b", weight=2), Endpoint("a", weight=0.5)])
    assert [endpoint.id for endpoint in pool.endpoints] == ["b", "a"]
    assert pool.total_weight == 2.5
    assert pool.endpoint("a").weight == 0.5


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: Pool("p", []),
            ConfigError,
            "pool 'p' has no endpoints; a pool needs at least one",
        ),
        (
            lambda: Pool("p", [Endpoint("a"), Endpoint("a")]),
            ConfigError,
            "pool 'p' endpoints[1] repeats the id 'a'; endpoint ids are unique within a pool",
        ),
        (
            lambda: Pool("p", ["a"]),  # type: ignore[list-item]
            ArgumentTypeError,
            "pool 'p' endpoints[0] is str; it must be an Endpoint",
        ),
        (
            lambda: Pool("p", "ab"),  # type: ignore[arg-type]
            ArgumentTypeError,
            "endpoints is str; it must be an iterable of Endpoint",
        ),
        (
            lambda: Pool("p", [Endpoint("a")], minimum_healthy=2),
            ConfigError,
            "pool 'p' minimum_healthy is 2; it must be in 1..1 (the number of endpoints)",
        ),
        (
            lambda: Pool("p", [Endpoint("a")], minimum_healthy=0),
            ConfigError,
            "pool 'p' minimum_healthy is 0; it must be in 1..1 (the number of endpoints)",
        ),
        (
            lambda: Pool("p", [Endpoint("a")], minimum_healthy=1.0),  # type: ignore[arg-type]
            ArgumentTypeError,
            "minimum_healthy is float; it must be an int",
        ),
        (
            lambda: Pool("p", [Endpoint("a")], coordinates=(91, 0)),
            ConfigError,
            "coordinates latitude is 91; it must be finite and within [-90, 90] degrees",
        ),
        (
            lambda: Pool("p", [Endpoint("a")], coordinates=(0, math.nan)),
            ConfigError,
            "coordinates longitude is nan; it must be finite and within [-180, 180] degrees",
        ),
        (
            lambda: Pool("p", [Endpoint("a")], coordinates=(1, 2, 3)),
            ArgumentTypeError,
            "coordinates is (1, 2, 3); it must be a (latitude, longitude) pair or None",
        ),
    ],
)
def test_bad_pools_are_rejected(build: Any, error: type[Exception], message: str) -> None:
    """Empty pools, duplicate endpoint ids, bad thresholds and coordinates are errors."""
    with pytest.raises(error) as raised:
        build()
    assert str(raised.value) == message


def test_unknown_endpoint_lookup_is_an_error() -> None:
    """Pool.endpoint raises UnknownServer for an id the pool does not hold."""
    with pytest.raises(UnknownServer, match="pool 'p' has no endpoint 'z'"):
        Pool("p", [Endpoint("a")]).endpoint("z")


# --- requests -----------------------------------------------------------------------------


def test_request_fields_follow_http_rules() -> None:
    """Header names match case-insensitively; query and cookie names exactly."""
    request = Request(
        headers={"X-Canary": "on"}, query={"V": "2"}, cookies={"sid": "x"}, client_ip="::1"
    )
    assert request.field("header.x-canary") == "on"
    assert request.field("header.X-CANARY") == "on"
    assert request.field("query.V") == "2"
    assert request.field("query.v") is None
    assert request.field("cookie.sid") == "x"
    assert request.field("client_ip") == "::1"
    assert request.field("country") is None


def test_hash_key_defaults_to_the_client_ip() -> None:
    """hash_key is the explicit key when given, else the client IP."""
    assert Request(client_ip="192.0.2.1").hash_key == "192.0.2.1"
    assert Request(client_ip="192.0.2.1", key="user-7").hash_key == "user-7"
    assert Request().hash_key is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"client_ip": "300.1.1.1"}, ConfigError, "client_ip is '300.1.1.1'; it must be an IPv4"),
        ({"client_ip": 7}, ArgumentTypeError, "client_ip is int; it must be a str or None"),
        ({"headers": {"a": 1}}, ArgumentTypeError, "headers['a'] is int; headers map str to str"),
        ({"query": [("a", "b")]}, ArgumentTypeError, "query is list; it must be a mapping"),
        ({"path": None}, ArgumentTypeError, "path is NoneType; it must be a str"),
        ({"country": 49}, ArgumentTypeError, "country is int; it must be a str or None"),
        ({"coordinates": (0, 181)}, ConfigError, "coordinates longitude is 181; it must be"),
        ({"key": 7}, ArgumentTypeError, "key is int; it must be str, bytes or None"),
    ],
)
def test_bad_requests_are_rejected(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Malformed request fields are errors naming the field."""
    with pytest.raises(error) as raised:
        Request(**kwargs)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("name", ["nope", "header", "header.", "body.x"])
def test_unknown_request_fields_are_rejected(name: str) -> None:
    """Request.field names the fields it knows when asked for another."""
    with pytest.raises(ConfigError, match=f"field is {name!r}; it must be one of host, path"):
        Request().field(name)


# --- key hashes ---------------------------------------------------------------------------


def test_key_hash_is_two_murmur3_halves(impl: Any) -> None:
    """key_hash is MurmurHash3 with seed 0 in the high half and seed 1 in the low half."""
    expected = (hashing.hash_key(b"198.51.100.7") << 32) | hashing.hash_key(b"198.51.100.7", seed=1)
    assert key_hash("198.51.100.7") == expected
    assert key_hash(b"198.51.100.7") == expected
    assert key_hash(42) == key_hash("42")


def test_key_hash_golden_value(impl: Any) -> None:
    """key_hash is pinned: other proxies (and other versions) must agree on it."""
    assert key_hash(b"hello") == (613153351 << 32) | hashing.hash_key(b"hello", seed=1)
    assert key_hash(b"hello") == 2633473593120046253  # mmh3 seeds 0 and 1


def test_id_hash_keeps_str_and_int_apart(impl: Any) -> None:
    """The id 1 and the id '1' hash differently; equal ids hash equally."""
    assert id_hash(1) != id_hash("1")
    assert id_hash("web-1") == id_hash("web-1")


@given(st.binary(max_size=64))
def test_key_hash_fits_64_bits(key: bytes) -> None:
    """Every key hash is an unsigned 64-bit integer."""
    assert 0 <= key_hash(key) < 2**64


def test_bad_keys_are_rejected() -> None:
    """Keys are bytes, str or int; a str without UTF-8 form is an InvalidKey."""
    with pytest.raises(ArgumentTypeError, match="key is float; it must be bytes, str or int"):
        key_hash(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        key_hash("\ud800")
    with pytest.raises(ArgumentTypeError, match="id is bytes; ids must be str or int"):
        id_hash(b"x")  # type: ignore[arg-type]


# --- the time-aware EWMA ------------------------------------------------------------------


def test_ewma_weight_is_exp_of_elapsed_time() -> None:
    """After dt seconds the old estimate keeps exp(-dt/tau) of its weight."""
    average = Ewma(tau=4.0)
    assert average.value is None
    assert average.update(10.0, now=1.0) == 10.0
    weight = math.exp(-2.0 / 4.0)
    assert average.update(20.0, now=3.0) == pytest.approx(weight * 10.0 + (1 - weight) * 20.0)
    assert average.updated_at == 3.0


def test_ewma_same_instant_sample_has_no_weight() -> None:
    """A second sample at the same instant leaves a plain EWMA where it was."""
    average = Ewma(tau=4.0)
    average.update(1.0, now=0.0)
    assert average.update(9.0, now=0.0) == 1.0


def test_peak_ewma_takes_a_slower_sample_at_once() -> None:
    """With peak=True a sample above the estimate replaces it; a faster one decays in."""
    average = Ewma(tau=1.0, peak=True)
    average.update(0.1, now=0.0)
    assert average.update(0.5, now=0.001) == 0.5
    assert 0.1 < average.update(0.1, now=1.0) < 0.5


@given(
    st.lists(
        st.tuples(st.floats(0, 1e6), st.floats(0, 100)),
        min_size=1,
        max_size=30,
    )
)
def test_ewma_stays_between_the_samples(steps: list[tuple[float, float]]) -> None:
    """The estimate is always within the range of the samples seen so far."""
    average = Ewma(tau=3.0)
    now = 0.0
    samples = []
    for sample, dt in steps:
        now += dt
        samples.append(sample)
        value = average.update(sample, now=now)
        assert min(samples) - 1e-9 <= value <= max(samples) + 1e-9


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: Ewma(tau=0), ConfigError, "tau is 0.0; it must be finite and > 0 seconds"),
        (lambda: Ewma(tau=math.inf), ConfigError, "tau is inf; it must be finite and > 0"),
        (lambda: Ewma(tau="1"), ArgumentTypeError, "tau is str; it must be a number"),  # type: ignore[arg-type]
        (lambda: Ewma(tau=1, peak=1), ArgumentTypeError, "peak is int; it must be a bool"),  # type: ignore[arg-type]
        (
            lambda: Ewma(tau=1).update(-1.0, now=0),
            InvalidArgument,
            "sample is -1.0; samples must be finite and >= 0",
        ),
        (
            lambda: Ewma(tau=1).update(math.nan, now=0),
            InvalidArgument,
            "sample is nan; samples must be finite and >= 0",
        ),
        (
            lambda: Ewma(tau=1).update(1.0, now=math.inf),
            InvalidArgument,
            "now is inf; times must be finite",
        ),
    ],
)
def test_bad_ewma_input_is_rejected(call: Any, error: type[Exception], message: str) -> None:
    """Bad decay times, samples and times are errors naming the argument."""
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value).startswith(message)


def test_ewma_time_must_not_go_backwards() -> None:
    """A sample older than the previous one is rejected, not folded in."""
    average = Ewma(tau=1.0)
    average.update(1.0, now=5.0)
    with pytest.raises(InvalidArgument, match=r"now is 4\.0, before the previous sample at 5\.0"):
        average.update(1.0, now=4.0)
    assert average.value == 1.0
