"""lbkit.steering.pickers: weighted random, hash, least outstanding (p2c, edf, weighted random),
peak EWMA, round robin and slow start, on both kernel paths: shares, weight 0 and health,
seeded reproducibility across paths, exact EDF periods, distinct P2C draws, minimal hash
disruption, and every rejected input."""

from __future__ import annotations

import contextlib
import math
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lbkit import _kernels
from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    InvalidArgument,
    NoHealthyEndpoint,
    UnknownServer,
)
from lbkit.steering import Endpoint, Request
from lbkit.steering.pickers import (
    KINDS,
    MODES,
    EndpointPicker,
    HashPicker,
    LeastOutstandingPicker,
    PeakEwmaPicker,
    RoundRobinPicker,
    SlowStart,
    WeightedRandomPicker,
    accepted_options,
    make_picker,
)


def endpoints(weights: list[float]) -> list[Endpoint]:
    return [Endpoint(f"e{index}", weight=weight) for index, weight in enumerate(weights)]


@contextmanager
def using(kernels: dict[str, ModuleType]) -> Iterator[None]:
    """Run the public API on one kernel flavour (for lockstep comparisons in one test)."""
    saved = {name: getattr(_kernels, name) for name in kernels}
    for name, module in kernels.items():
        setattr(_kernels, name, module)
    try:
        yield
    finally:
        for name, module in saved.items():
            setattr(_kernels, name, module)


#: Every kind with the options that exercise it; hash needs requests with keys.
CONFIGURATIONS: list[tuple[str, dict[str, Any]]] = [
    ("random", {}),
    ("hash", {}),
    ("least_outstanding", {"mode": "p2c"}),
    ("least_outstanding", {"mode": "edf"}),
    ("least_outstanding", {"mode": "weighted_random"}),
    ("least_outstanding", {"mode": "edf", "active_request_bias": 2.5}),
    ("peak_ewma", {}),
    ("round_robin", {}),
]


def request_for(number: int) -> Request:
    return Request(key=f"client-{number}")


def trace(picker: EndpointPicker, steps: int) -> list[str | int]:
    """Picks interleaved with begin/end and latencies, so that state feeds back into picks."""
    ids: list[str | int] = []
    in_flight: list[str | int] = []
    for step in range(steps):
        endpoint = picker.pick(request_for(step), now=float(step))
        ids.append(endpoint.id)
        picker.begin(endpoint.id)
        in_flight.append(endpoint.id)
        if step % 3 == 2:
            done = in_flight.pop(step % len(in_flight))
            picker.end(done, latency=0.01 * (1 + step % 7), now=float(step))
    return ids


# --- weighted random ------------------------------------------------------------------------


def test_weighted_random_shares_follow_weights(impl: Any) -> None:
    """Over 200,000 seeded picks each endpoint's share is within 1 point of its weight share
    (weight 0 gets none)."""
    weights = [1.0, 2.0, 3.0, 4.0, 0.0, 0.5]
    picker = WeightedRandomPicker(endpoints(weights), seed=2024)
    draws = 200_000
    counts = Counter(picker.pick_index() for _ in range(draws))
    total = sum(weights)
    for index, weight in enumerate(weights):
        assert abs(counts[index] / draws - weight / total) < 0.01
    assert counts[4] == 0


@given(
    st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 7.5]), min_size=1, max_size=8).filter(
        lambda weights: sum(weights) > 0
    ),
    st.integers(0, 2**64 - 1),
)
def test_weighted_random_shares_property(impl: Any, weights: list[float], seed: int) -> None:
    """For any weights and seed, 8,000 picks give each endpoint its weight share within 6
    standard deviations, and weight 0 none."""
    picker = WeightedRandomPicker(endpoints(weights), seed=seed)
    draws = 8000
    counts = Counter(picker.pick_index() for _ in range(draws))
    total = sum(weights)
    for index, weight in enumerate(weights):
        share = weight / total
        spread = 6 * math.sqrt(share * (1 - share) / draws) + 1e-9
        assert abs(counts[index] / draws - share) <= spread
        if weight == 0:
            assert counts[index] == 0


def test_pick_index_is_the_pick_path(impl: Any) -> None:
    """pick_index() and pick() on twins with one seed give the same indices."""
    weights = [1.0, 0.0, 3.0, 2.0]
    one = WeightedRandomPicker(endpoints(weights), seed=5)
    two = WeightedRandomPicker(endpoints(weights), seed=5)
    assert [one.pick_index() for _ in range(300)] == [
        two.endpoints.index(two.pick()) for _ in range(300)
    ]


def test_weighted_random_rebuilds_on_health_changes(impl: Any) -> None:
    """After an endpoint goes down the alias table excludes it; when it returns it is picked
    again."""
    picker = WeightedRandomPicker(endpoints([1.0, 1.0, 1.0]), seed=11)
    picker.set_eligible("e1", False, now=0.0)
    assert {picker.pick().id for _ in range(300)} == {"e0", "e2"}
    picker.set_eligible("e1", True, now=1.0)
    assert {picker.pick().id for _ in range(300)} == {"e0", "e1", "e2"}


# --- weight 0 and health, every kind ----------------------------------------------------------


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
@given(
    weights=st.lists(st.sampled_from([0.0, 1.0, 2.0, 5.0]), min_size=1, max_size=7),
    down=st.sets(st.integers(0, 6)),
    seed=st.integers(0, 2**64 - 1),
)
def test_weight_zero_and_ineligible_are_never_picked(
    impl: Any,
    kind: str,
    options: dict[str, Any],
    weights: list[float],
    down: set[int],
    seed: int,
) -> None:
    """Whatever the kind, weights, health and traffic, a pick is an eligible endpoint with a
    positive weight; when there is none, NoHealthyEndpoint."""
    picker = make_picker(kind, endpoints(weights), seed=seed, **options)
    for index in sorted(down):
        if index < len(weights):
            picker.set_eligible(f"e{index}", False, now=0.0)
    allowed = {
        f"e{index}" for index, weight in enumerate(weights) if weight > 0 and index not in down
    }
    for step in range(60):
        if not allowed:
            with pytest.raises(NoHealthyEndpoint):
                picker.pick(request_for(step))
            return
        chosen = picker.pick(request_for(step)).id
        assert chosen in allowed
        picker.begin(chosen)
        if step % 2:
            picker.end(chosen, latency=0.02 * (step % 5), now=float(step))


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
def test_no_healthy_endpoint_names_each_endpoint(
    impl: Any, kind: str, options: dict[str, Any]
) -> None:
    """With nothing eligible, every kind raises NoHealthyEndpoint with the same message and one
    reason per endpoint."""
    picker = make_picker(kind, endpoints([1.0, 0.0, 2.0]), seed=1, **options)
    picker.set_eligible("e0", False, now=0.0)
    picker.set_eligible("e2", False, now=0.0)
    with pytest.raises(NoHealthyEndpoint) as caught:
        picker.pick(request_for(1))
    assert str(caught.value) == (
        "no endpoint can be picked: 2 of 3 endpoints ineligible, 1 of 3 weighted 0"
    )
    assert caught.value.reasons == (
        "endpoint 'e0' is ineligible",
        "endpoint 'e1' has weight 0",
        "endpoint 'e2' is ineligible",
    )


@pytest.mark.parametrize("kind", ["random", "least_outstanding", "peak_ewma", "round_robin"])
def test_pick_index_raises_when_nothing_is_eligible(impl: Any, kind: str) -> None:
    """The raw pick_index fast path raises NoHealthyEndpoint too (never returns -1), and works
    again once an endpoint returns."""
    picker: Any = make_picker(kind, endpoints([1.0, 1.0]), seed=3)
    picker.set_eligible("e0", False, now=0.0)
    picker.set_eligible("e1", False, now=0.0)
    with pytest.raises(NoHealthyEndpoint, match=r"^no endpoint can be picked: 2 of 2 endpoints"):
        picker.pick_index()
    picker.set_eligible("e1", True, now=1.0)
    assert picker.pick_index() == 1


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
def test_every_kind_is_an_endpoint_picker(impl: Any, kind: str, options: dict[str, Any]) -> None:
    """make_picker builds every kind, and each satisfies the EndpointPicker protocol."""
    picker = make_picker(kind, endpoints([1.0, 2.0]), seed=0, **options)
    assert isinstance(picker, EndpointPicker)
    assert [endpoint.id for endpoint in picker.endpoints] == ["e0", "e1"]
    assert picker.eligible() == picker.endpoints


def test_eligible_lists_healthy_endpoints_including_weight_zero(impl: Any) -> None:
    """eligible() lists the healthy endpoints in order, weight 0 included; is_eligible agrees."""
    picker = RoundRobinPicker(endpoints([1.0, 0.0, 1.0]), seed=0)
    picker.set_eligible("e2", False, now=0.0)
    assert [endpoint.id for endpoint in picker.eligible()] == ["e0", "e1"]
    assert (picker.is_eligible("e1"), picker.is_eligible("e2")) == (True, False)
    picker.set_eligible("e2", False, now=1.0)  # the same state again changes nothing
    assert [endpoint.id for endpoint in picker.eligible()] == ["e0", "e1"]


# --- reproducibility ------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
def test_seeded_runs_reproduce(impl: Any, kind: str, options: dict[str, Any]) -> None:
    """Two pickers with one seed fed the same calls pick the same endpoints."""
    weights = [1.0, 2.0, 0.0, 3.0, 1.5]
    one = make_picker(kind, endpoints(weights), seed=77, **options)
    two = make_picker(kind, endpoints(weights), seed=77, **options)
    assert trace(one, 400) == trace(two, 400)


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
def test_different_seeds_differ(impl: Any, kind: str, options: dict[str, Any]) -> None:
    """Random kinds depend on the seed (hash does not: every proxy must agree)."""
    weights = [1.0, 2.0, 3.0, 1.5]
    runs = {
        tuple(trace(make_picker(kind, endpoints(weights), seed=s, **options), 60)) for s in range(8)
    }
    assert (len(runs) == 1) == (kind == "hash")


#: The first picks of each configuration with seed 7 (pins the kernels: both paths must
#: produce exactly these).
GOLDEN: dict[str, str] = {
    "random": "1311033331313033113011013301",
    "hash": "3333001133013113300333010131",
    "least_outstanding:p2c": "1300131331003133130130131301",
    "least_outstanding:edf": "1303103130131303103101301301",
    "least_outstanding:weighted_random": "1033113103033331311330113301",
    "least_outstanding:edf:2.5": "1300311030131031031030131030",
    "peak_ewma": "1311033331311003133130133001",
    "round_robin": "1301331301331301331301331301",
}


def golden_key(kind: str, options: dict[str, Any]) -> str:
    parts = [kind, *(str(value) for value in options.values())]
    return ":".join(parts)


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
def test_golden_pick_sequences(impl: Any, kind: str, options: dict[str, Any]) -> None:
    """Seed 7 picks a pinned sequence on either path (a kernel change that moves picks fails)."""
    picker = make_picker(kind, endpoints([1.0, 2.0, 0.0, 3.0]), seed=7, **options)
    picks = "".join(str(identifier)[1:] for identifier in trace(picker, 28))
    assert picks == GOLDEN[golden_key(kind, options)]


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
def test_fast_and_pure_paths_pick_alike(
    fast_kernels: dict[str, ModuleType],
    pure_kernels: dict[str, ModuleType],
    kind: str,
    options: dict[str, Any],
) -> None:
    """A picker built on the compiled kernels and one built on the pure kernels, with one seed
    and the same calls (health changes and slow start included), pick identically."""

    def run() -> list[str | int]:
        ramp = {"slow_start": SlowStart(20.0, aggression=1.5)} if kind != "hash" else {}
        picker = make_picker(
            kind, endpoints([1.0, 2.0, 0.0, 3.0, 0.25]), seed=99, **ramp, **options
        )
        picks = trace(picker, 150)
        picker.set_eligible("e3", False, now=150.0)
        picks += trace(picker, 100)
        picker.set_eligible("e3", True, now=160.0)
        picks += trace(picker, 200)
        return picks

    with using(pure_kernels):
        pure = run()
    with using(fast_kernels):
        fast = run()
    assert fast == pure


# --- round robin (EDF) ----------------------------------------------------------------------


@given(
    weights=st.lists(st.integers(0, 6), min_size=1, max_size=6).filter(lambda w: sum(w) > 0),
    seed=st.integers(0, 2**64 - 1),
)
def test_round_robin_gives_exact_weights_in_every_period(
    impl: Any, weights: list[int], seed: int
) -> None:
    """With integer weights every run of sum(weights) consecutive picks, from any start,
    gives each endpoint exactly its weight."""
    picker = RoundRobinPicker(endpoints([float(weight) for weight in weights]), seed=seed)
    period = sum(weights)
    picks = [picker.pick_index() for _ in range(3 * period)]
    for start in range(2 * period + 1):
        counts = Counter(picks[start : start + period])
        assert [counts[index] for index in range(len(weights))] == weights


@given(
    weights=st.lists(st.integers(1, 5), min_size=2, max_size=6),
    down=st.integers(0, 5),
    seed=st.integers(0, 2**64 - 1),
)
def test_round_robin_periods_stay_exact_after_a_health_change(
    impl: Any, weights: list[int], down: int, seed: int
) -> None:
    """After an endpoint goes down the schedule is rebuilt: every period of the remaining
    weights' sum is exact again."""
    down %= len(weights)
    picker = RoundRobinPicker(endpoints([float(weight) for weight in weights]), seed=seed)
    for _ in range(7):
        picker.pick()
    picker.set_eligible(f"e{down}", False, now=0.0)
    remaining = [0 if index == down else weight for index, weight in enumerate(weights)]
    period = sum(remaining)
    picks = [picker.pick_index() for _ in range(2 * period)]
    for start in range(period + 1):
        counts = Counter(picks[start : start + period])
        assert [counts[index] for index in range(len(weights))] == remaining


def test_round_robin_interleaves_smoothly(impl: Any) -> None:
    """Weights 3 and 1 never give two b's in a row nor more than three a's in a row."""
    picker = RoundRobinPicker([Endpoint("a", weight=3), Endpoint("b")], seed=0)
    sequence = "".join(str(picker.pick().id) for _ in range(40))
    assert "bb" not in sequence
    assert "aaaa" not in sequence


def test_round_robin_starts_at_a_random_offset(impl: Any) -> None:
    """Seeds spread the first pick over the endpoints (equal weights: every endpoint starts
    some picker)."""
    first = Counter(
        RoundRobinPicker(endpoints([1.0] * 4), seed=seed).pick().id for seed in range(64)
    )
    assert set(first) == {"e0", "e1", "e2", "e3"}


# --- least outstanding ----------------------------------------------------------------------


@given(loads=st.lists(st.integers(0, 5), min_size=2, max_size=2), seed=st.integers(0, 2**64 - 1))
def test_p2c_with_two_endpoints_picks_the_less_loaded(
    impl: Any, loads: list[int], seed: int
) -> None:
    """Two distinct draws: with two eligible endpoints the lower outstanding / weight always
    wins (a tie may go either way)."""
    picker = LeastOutstandingPicker([Endpoint("a"), Endpoint("b", weight=2)], seed=seed)
    for name, load in zip("ab", loads, strict=True):
        for _ in range(load):
            picker.begin(name)
    costs = {"a": loads[0] / 1.0, "b": loads[1] / 2.0}
    chosen = {picker.pick().id for _ in range(30)}
    if costs["a"] != costs["b"]:
        assert chosen == {min(costs, key=costs.__getitem__)}


@given(
    loads=st.lists(st.integers(0, 9), min_size=3, max_size=8, unique=True),
    seed=st.integers(0, 2**64 - 1),
)
def test_p2c_never_picks_the_most_loaded(impl: Any, loads: list[int], seed: int) -> None:
    """Because the two draws are distinct, the endpoint with the strictly highest load loses
    every comparison it enters and is never picked."""
    picker = LeastOutstandingPicker(endpoints([1.0] * len(loads)), seed=seed)
    for index, load in enumerate(loads):
        for _ in range(load):
            picker.begin(f"e{index}")
    worst = f"e{loads.index(max(loads))}"
    assert worst not in {picker.pick().id for _ in range(200)}


def test_p2c_picks_spread_over_all_but_the_most_loaded(impl: Any) -> None:
    """With equal load every endpoint is drawn; the counts live in one place (outstanding)."""
    picker = LeastOutstandingPicker(endpoints([1.0, 1.0, 1.0]), seed=8)
    assert {picker.pick().id for _ in range(200)} == {"e0", "e1", "e2"}
    picker.begin("e1")
    picker.begin("e1")
    picker.end("e1", now=0.0)
    assert picker.outstanding("e1") == 1
    assert {picker.pick().id for _ in range(200)} == {"e0", "e2"}


@given(
    weights=st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=1, max_size=6).filter(
        lambda w: sum(w) > 0
    ),
    seed=st.integers(0, 2**64 - 1),
)
def test_weighted_random_mode_is_weighted_random_when_idle(
    impl: Any, weights: list[float], seed: int
) -> None:
    """With nothing outstanding the weighted_random mode draws exactly what one weighted draw
    per pick over the plain weights draws."""
    picker = LeastOutstandingPicker(endpoints(weights), mode="weighted_random", seed=seed)
    rng = _kernels.steering.Rng(seed)
    expected = [_kernels.steering.weighted_choice(rng, array("d", weights)) for _ in range(50)]
    assert [picker.pick_index() for _ in range(50)] == expected


@given(
    loads=st.lists(st.integers(0, 4), min_size=3, max_size=3),
    bias=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    seed=st.integers(0, 2**64 - 1),
)
def test_weighted_random_mode_divides_by_outstanding_plus_one(
    impl: Any, loads: list[int], bias: float, seed: int
) -> None:
    """With outstanding requests the draw is weighted by weight / (outstanding + 1) ** bias."""
    weights = [1.0, 2.0, 4.0]
    picker = LeastOutstandingPicker(
        endpoints(weights), mode="weighted_random", active_request_bias=bias, seed=seed
    )
    for index, load in enumerate(loads):
        for _ in range(load):
            picker.begin(f"e{index}")
    scores = [w / (load + 1.0) ** bias for w, load in zip(weights, loads, strict=True)]
    rng = _kernels.steering.Rng(seed)
    expected = [_kernels.steering.weighted_choice(rng, array("d", scores)) for _ in range(40)]
    assert [picker.pick_index() for _ in range(40)] == expected


def test_edf_mode_uses_weight_over_active_plus_one_to_the_bias(impl: Any) -> None:
    """In edf mode an endpoint with one outstanding request (bias 1) gets half the share of an
    idle one of the same weight; with bias 2, a third... of the share as (1+1)**2 = 4."""
    for bias, share in ((1.0, 1 / 3), (2.0, 1 / 5)):
        picker = LeastOutstandingPicker(
            [Endpoint("a"), Endpoint("b")], mode="edf", active_request_bias=bias, seed=0
        )
        picker.begin("a")
        counts = Counter(picker.pick().id for _ in range(600))
        assert abs(counts["a"] / 600 - share) < 0.01


def test_edf_mode_idle_is_exact_round_robin(impl: Any) -> None:
    """In edf mode with nothing outstanding, integer weights give exact periods."""
    picker = LeastOutstandingPicker(endpoints([3.0, 1.0, 2.0]), mode="edf", seed=4)
    picks = [picker.pick_index() for _ in range(60)]
    for start in range(0, 60, 6):
        assert Counter(picks[start : start + 6]) == {0: 3, 1: 1, 2: 2}


def test_bias_zero_ignores_outstanding(impl: Any) -> None:
    """active_request_bias 0 makes edf mode plain weighted round robin whatever the load."""
    picker = LeastOutstandingPicker(
        [Endpoint("a"), Endpoint("b")], mode="edf", active_request_bias=0.0, seed=0
    )
    for _ in range(5):
        picker.begin("a")
    assert Counter(picker.pick().id for _ in range(100)) == {"a": 50, "b": 50}


def test_huge_load_never_makes_an_endpoint_ineligible(impl: Any) -> None:
    """A load-adjusted weight that would underflow stays positive: the endpoint can still be
    picked when it is the only one."""
    picker = LeastOutstandingPicker(
        [Endpoint("a", weight=1e-300)], mode="edf", active_request_bias=50.0, seed=0
    )
    for _ in range(100):
        picker.begin("a")
    assert picker.pick().id == "a"
    picker._check()


# --- peak EWMA -------------------------------------------------------------------------------


def test_peak_ewma_slower_sample_replaces_and_faster_decays(impl: Any) -> None:
    """A slower latency replaces the estimate at once; a faster one decays in with
    exp(-dt / tau); before any sample the default latency stands."""
    picker = PeakEwmaPicker([Endpoint("a"), Endpoint("b")], tau=10.0, default_latency=0.05, seed=1)
    assert picker.latency("a") == 0.05
    picker.begin("a")
    picker.end("a", latency=0.1, now=0.0)
    assert picker.latency("a") == 0.1
    picker.begin("a")
    picker.end("a", latency=0.9, now=1.0)
    assert picker.latency("a") == 0.9
    picker.begin("a")
    picker.end("a", latency=0.1, now=11.0)
    weight = math.exp(-1.0)
    assert picker.latency("a") == pytest.approx(weight * 0.9 + (1 - weight) * 0.1, rel=1e-12)


def test_peak_ewma_avoids_the_slow_endpoint(impl: Any) -> None:
    """With two endpoints, the one with the lower latency * (pending + 1) / weight wins."""
    picker = PeakEwmaPicker([Endpoint("fast"), Endpoint("slow")], seed=3)
    picker.begin("slow")
    picker.end("slow", latency=1.0, now=0.0)
    picker.begin("fast")
    picker.end("fast", latency=0.1, now=0.0)
    assert {picker.pick().id for _ in range(30)} == {"fast"}
    # 0.1 * (pending + 1) overtakes 1.0 * 1 from 10 pending requests on.
    for _ in range(10):
        picker.begin("fast")
    assert {picker.pick().id for _ in range(30)} == {"slow"}


def test_peak_ewma_accepts_a_slightly_earlier_now(impl: Any) -> None:
    """An end whose now is before the latest sample (a clock read before a lock) counts at the
    latest sample's time instead of failing."""
    picker = PeakEwmaPicker([Endpoint("a")], seed=1)
    picker.begin("a")
    picker.begin("a")
    picker.end("a", latency=0.2, now=5.0)
    picker.end("a", latency=0.5, now=4.9)
    assert picker.latency("a") == 0.5
    assert picker.outstanding("a") == 0


# --- slow start ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aggression", "floor", "expected"),
    [
        (1.0, 0.1, [0.1, 0.1, 0.25, 0.5, 0.75, 1.0, 1.0]),
        (2.0, 0.1, [0.1, 0.1, 0.5, math.sqrt(0.5), math.sqrt(0.75), 1.0, 1.0]),
        (0.5, 0.1, [0.1, 0.1, 0.1, 0.25, 0.5625, 1.0, 1.0]),
        (1.0, 0.6, [0.6, 0.6, 0.6, 0.6, 0.75, 1.0, 1.0]),
    ],
)
def test_slow_start_factor(aggression: float, floor: float, expected: list[float]) -> None:
    """factor(t) = max(floor, (t / window) ** (1 / aggression)), 1 from the window on, floor at
    and before 0."""
    ramp = SlowStart(40.0, aggression=aggression, floor=floor)
    times = [-5.0, 0.0, 10.0, 20.0, 30.0, 40.0, 100.0]
    assert [ramp.factor(t) for t in times] == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("kind", ["random", "least_outstanding", "peak_ewma", "round_robin"])
def test_slow_start_ramps_a_returning_endpoint(impl: Any, kind: str) -> None:
    """An endpoint back from ineligible gets weight x factor(t) at each refresh and its full
    weight from the window on; the others keep their weights."""
    ramp = SlowStart(10.0, aggression=2.0, floor=0.05)
    picker: Any = make_picker(kind, endpoints([2.0, 4.0]), seed=1, slow_start=ramp)
    picker.set_eligible("e1", False, now=100.0)
    assert picker.effective_weights() == (2.0, 0.0)
    picker.set_eligible("e1", True, now=100.0)
    assert picker.effective_weights() == (2.0, 4.0 * 0.05)
    for t in (100.1, 102.5, 106.4, 109.9):
        picker.refresh(t)
        assert picker.effective_weights() == (2.0, 4.0 * ramp.factor(t - 100.0))
        picker._check()
    picker.refresh(110.0)
    assert picker.effective_weights() == (2.0, 4.0)
    picker.refresh(120.0)
    assert picker.effective_weights() == (2.0, 4.0)
    picker._check()


def test_slow_start_pick_refreshes_every_interval(impl: Any) -> None:
    """pick(now=...) recomputes the ramp once refresh_interval has passed since the last
    recomputation; pick() without now leaves it alone."""
    ramp = SlowStart(10.0, interval=1.0)
    picker = WeightedRandomPicker(endpoints([1.0, 1.0]), seed=1, slow_start=ramp)
    picker.set_eligible("e0", False, now=0.0)
    picker.set_eligible("e0", True, now=0.0)
    picker.pick(now=5.0)
    assert picker.effective_weights() == (0.5, 1.0)
    picker.pick(now=5.5)  # within the interval
    assert picker.effective_weights() == (0.5, 1.0)
    picker.pick()
    picker.pick(now=6.0)
    assert picker.effective_weights() == (0.6, 1.0)
    assert SlowStart(10.0).refresh_interval == 0.1


def test_slow_start_shifts_the_shares(impl: Any) -> None:
    """During the ramp a returning endpoint gets its reduced share of weighted random picks."""
    ramp = SlowStart(100.0, floor=0.1)
    picker = WeightedRandomPicker(endpoints([1.0, 1.0]), seed=21, slow_start=ramp)
    picker.set_eligible("e0", False, now=0.0)
    picker.set_eligible("e0", True, now=0.0)
    picker.refresh(25.0)  # factor 0.25: e0 gets 0.25 / 1.25 = 20%
    counts = Counter(picker.pick().id for _ in range(20_000))
    assert abs(counts["e0"] / 20_000 - 0.2) < 0.015


def test_eligible_since_ramps_added_endpoints(impl: Any) -> None:
    """Endpoints listed in eligible_since start at the floor and ramp from their time."""
    picker = RoundRobinPicker(
        endpoints([1.0, 2.0]),
        seed=0,
        slow_start=SlowStart(4.0, floor=0.25),
        eligible_since={"e1": 10.0},
    )
    assert picker.effective_weights() == (1.0, 0.5)
    picker.refresh(12.0)
    assert picker.effective_weights() == (1.0, 1.0)
    picker.refresh(14.0)
    assert picker.effective_weights() == (1.0, 2.0)


def test_round_robin_ramp_applies_when_picked(impl: Any) -> None:
    """A ramping endpoint still gets picked (no starvation) and its share grows to its weight."""
    picker = RoundRobinPicker(
        endpoints([1.0, 1.0]), seed=0, slow_start=SlowStart(10.0, interval=0.0)
    )
    picker.set_eligible("e1", False, now=0.0)
    picker.set_eligible("e1", True, now=0.0)
    early = Counter(picker.pick(now=0.01 * step).id for step in range(100))
    assert 0 < early["e1"] < 50
    # The full weight applies from e1's next pick on; from then on the two alternate.
    for step in range(20):
        picker.pick(now=20.0 + step)
    late = Counter(picker.pick(now=40.0 + step).id for step in range(100))
    assert late["e1"] == 50
    picker._check()


# --- hash ---------------------------------------------------------------------------------


@given(
    weights=st.lists(st.sampled_from([1.0, 2.0, 3.0]), min_size=2, max_size=8),
    down=st.integers(0, 7),
    keys=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40),
)
def test_hash_remaps_only_the_downed_endpoints_keys(
    impl: Any, weights: list[float], down: int, keys: list[str]
) -> None:
    """An endpoint going down moves only the keys it held; when it returns they come back."""
    down %= len(weights)
    picker = HashPicker(endpoints(weights))
    before = {key: picker.pick(Request(key=key)).id for key in keys}
    picker.set_eligible(f"e{down}", False, now=0.0)
    during = {key: picker.pick(Request(key=key)).id for key in keys}
    for key in keys:
        if before[key] != f"e{down}":
            assert during[key] == before[key]
        else:
            assert during[key] != f"e{down}"
    picker.set_eligible(f"e{down}", True, now=1.0)
    assert {key: picker.pick(Request(key=key)).id for key in keys} == before


def test_hash_shares_follow_weights(impl: Any) -> None:
    """Weighted rendezvous gives each endpoint a key share close to its weight share."""
    picker = HashPicker(endpoints([1.0, 3.0]))
    counts = Counter(picker.pick_key(f"user-{n}").id for n in range(20_000))
    assert abs(counts["e1"] / 20_000 - 0.75) < 0.015


def test_hash_uses_key_then_client_ip(impl: Any) -> None:
    """The request's key wins over its client IP; without a key the client IP is hashed; every
    picker (whatever its seed) agrees."""
    one = HashPicker(endpoints([1.0] * 5), seed=1)
    two = HashPicker(endpoints([1.0] * 5), seed=2)
    for n in range(50):
        by_ip = Request(client_ip=f"198.51.100.{n}")
        assert one.pick(by_ip) == two.pick(by_ip) == one.pick_key(f"198.51.100.{n}")
        keyed = Request(client_ip="198.51.100.1", key=f"session-{n}")
        assert one.pick(keyed) == one.pick_key(f"session-{n}")


def test_hash_rejects_a_request_without_key(impl: Any) -> None:
    """No request, or one with neither key nor client IP, raises InvalidArgument saying so."""
    picker = HashPicker(endpoints([1.0]))
    with pytest.raises(
        InvalidArgument,
        match=r"^request has no hash key \(neither key nor client_ip is set\); HashPicker needs one to pick an endpoint$",
    ):
        picker.pick(Request(path="/"))
    with pytest.raises(
        InvalidArgument,
        match=r"^request is None; HashPicker hashes the request's key or client_ip$",
    ):
        picker.pick()
    with pytest.raises(ArgumentTypeError, match=r"^request is dict; it must be a Request or None$"):
        picker.pick({"key": "x"})  # type: ignore[arg-type]


# --- request accounting in pickers ------------------------------------------------------------


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
def test_begin_end_and_set_eligible_reject_unknown_ids(
    impl: Any, kind: str, options: dict[str, Any]
) -> None:
    """An id that is not an endpoint's raises UnknownServer in begin, end and set_eligible."""
    picker = make_picker(kind, endpoints([1.0]), seed=1, **options)
    message = r"^endpoint_id is 'nope'; no endpoint of this picker has that id$"
    with pytest.raises(UnknownServer, match=message):
        picker.begin("nope")
    with pytest.raises(UnknownServer, match=message):
        picker.end("nope", now=0.0)
    with pytest.raises(UnknownServer, match=message):
        picker.set_eligible("nope", False, now=0.0)
    with pytest.raises(UnknownServer, match=r"^endpoint_id is 0; no endpoint"):
        picker.begin(0)  # int 0 is not the id "e0"
    with pytest.raises(ArgumentTypeError, match=r"^endpoint_id is list; ids are str or int$"):
        picker.begin([1])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("least_outstanding", {"mode": "p2c"}),
        ("least_outstanding", {"mode": "edf"}),
        ("least_outstanding", {"mode": "weighted_random"}),
        ("peak_ewma", {}),
    ],
)
def test_end_without_begin_is_an_error(impl: Any, kind: str, options: dict[str, Any]) -> None:
    """Counting pickers reject an end without a matching begin and leave the count at 0."""
    picker: Any = make_picker(kind, endpoints([1.0, 1.0]), seed=1, **options)
    picker.begin("e0")
    picker.end("e0", now=0.0)
    with pytest.raises(
        InvalidArgument,
        match=r"^end\('e0'\) has no matching begin\('e0'\); 'e0' has no outstanding requests$",
    ):
        picker.end("e0", now=1.0)
    assert picker.outstanding("e0") == 0
    picker._check()


@pytest.mark.parametrize(("kind", "options"), CONFIGURATIONS)
def test_end_validates_its_arguments(impl: Any, kind: str, options: dict[str, Any]) -> None:
    """end rejects a negative or NaN latency, a non-bool ok and a non-finite now, before
    changing anything."""
    picker = make_picker(kind, endpoints([1.0]), seed=1, **options)
    picker.begin("e0")
    with pytest.raises(
        InvalidArgument, match=r"^latency is -1\.0; latencies must be finite and >= 0 seconds$"
    ):
        picker.end("e0", latency=-1.0, now=0.0)
    with pytest.raises(InvalidArgument, match=r"^latency is nan; latencies must be finite"):
        picker.end("e0", latency=math.nan, now=0.0)
    with pytest.raises(ArgumentTypeError, match=r"^ok is int; it must be a bool$"):
        picker.end("e0", ok=1, now=0.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^now is inf; times must be finite$"):
        picker.end("e0", now=math.inf)
    picker.end("e0", latency=0.1, ok=False, now=0.0)


# --- construction errors ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_endpoint_lists_are_validated(impl: Any, kind: str) -> None:
    """Empty lists, duplicate ids, non-Endpoint items and non-iterables are rejected."""
    with pytest.raises(
        ConfigError, match=r"^endpoints is empty; a picker needs at least one endpoint$"
    ):
        make_picker(kind, [])
    with pytest.raises(
        ConfigError, match=r"^endpoints\[2\] repeats the id 'a'; endpoint ids must be unique$"
    ):
        make_picker(kind, [Endpoint("a"), Endpoint("b"), Endpoint("a")])
    with pytest.raises(ArgumentTypeError, match=r"^endpoints\[1\] is str; it must be an Endpoint$"):
        make_picker(kind, [Endpoint("a"), "b"])  # type: ignore[list-item]
    with pytest.raises(
        ArgumentTypeError, match=r"^endpoints is str; it must be an iterable of Endpoint$"
    ):
        make_picker(kind, "ab")  # type: ignore[arg-type]


def test_weights_whose_sum_overflows_are_rejected(impl: Any) -> None:
    """Finite weights whose sum (times the count) overflows are a ConfigError, not a broken
    table."""
    with pytest.raises(
        ConfigError,
        match=r"^the endpoint weights sum to 1\.5e\+308; the sum times the number of endpoints \(2\) must be finite$",
    ):
        WeightedRandomPicker([Endpoint("a", weight=1e308), Endpoint("b", weight=5e307)])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("seed", "error", "message"),
    [
        (
            -1,
            ConfigError,
            r"^seed is -1; it must be in 0\.\.18446744073709551615 \(an unsigned 64-bit int\)$",
        ),
        (2**64, ConfigError, r"^seed is 18446744073709551616; it must be in 0\.\."),
        (1.5, ArgumentTypeError, r"^seed is float; it must be an int or None$"),
        (True, ArgumentTypeError, r"^seed is bool; it must be an int or None$"),
    ],
)
def test_bad_seeds_are_rejected(
    impl: Any, kind: str, seed: object, error: type[Exception], message: str
) -> None:
    """Seeds are unsigned 64-bit ints or None, for every kind."""
    with pytest.raises(error, match=message):
        make_picker(kind, [Endpoint("a")], seed=seed)


def test_seed_none_draws_a_seed(impl: Any) -> None:
    """Without a seed a random 64-bit seed is drawn and reported."""
    seeds = {WeightedRandomPicker([Endpoint("a")]).seed for _ in range(5)}
    assert len(seeds) > 1
    assert all(0 <= seed < 2**64 for seed in seeds)


def test_make_picker_rejects_unknown_kinds_and_options(impl: Any) -> None:
    """An unknown kind names the allowed kinds; an option of another kind names the kind's
    options."""
    with pytest.raises(
        ConfigError,
        match=r"^kind is 'fastest'; it must be one of 'random', 'hash', 'least_outstanding', 'peak_ewma', 'round_robin'$",
    ):
        make_picker("fastest", [Endpoint("a")])
    with pytest.raises(
        ConfigError,
        match=r"^option 'mode' does not apply to kind 'random'; its options are seed, slow_start, eligible_since$",
    ):
        make_picker("random", [Endpoint("a")], mode="p2c")
    with pytest.raises(
        ConfigError,
        match=r"^option 'slow_start' does not apply to kind 'hash'; its options are seed$",
    ):
        make_picker("hash", [Endpoint("a")], slow_start=SlowStart(1.0))
    with pytest.raises(ArgumentTypeError, match=r"^kind is int; it must be a str$"):
        make_picker(3, [Endpoint("a")])  # type: ignore[arg-type]
    assert accepted_options("hash") == ("seed",)
    assert accepted_options("peak_ewma") == (
        "tau",
        "default_latency",
        "seed",
        "slow_start",
        "eligible_since",
    )
    with pytest.raises(ConfigError, match=r"^kind is 'x'; it must be one of 'random', "):
        accepted_options("x")


def test_least_outstanding_options_are_validated(impl: Any) -> None:
    """Unknown modes and negative, NaN or infinite biases are rejected."""
    with pytest.raises(
        ConfigError, match=r"^mode is 'p3c'; it must be one of 'p2c', 'weighted_random', 'edf'$"
    ):
        LeastOutstandingPicker([Endpoint("a")], mode="p3c")
    assert MODES == ("p2c", "weighted_random", "edf")
    for bias in (-0.5, math.nan, math.inf):
        with pytest.raises(
            ConfigError, match=r"^active_request_bias is .*; it must be finite and >= 0$"
        ):
            LeastOutstandingPicker([Endpoint("a")], mode="edf", active_request_bias=bias)
    with pytest.raises(
        ArgumentTypeError, match=r"^active_request_bias is str; it must be a number$"
    ):
        LeastOutstandingPicker([Endpoint("a")], active_request_bias="1")  # type: ignore[arg-type]


def test_peak_ewma_options_are_validated(impl: Any) -> None:
    """tau and default_latency must be finite and > 0."""
    with pytest.raises(ConfigError, match=r"^tau is 0\.0; it must be finite and > 0 seconds$"):
        PeakEwmaPicker([Endpoint("a")], tau=0.0)
    with pytest.raises(
        ConfigError, match=r"^default_latency is -0\.1; it must be finite and > 0 seconds$"
    ):
        PeakEwmaPicker([Endpoint("a")], default_latency=-0.1)


@pytest.mark.parametrize(
    ("arguments", "options", "error", "message"),
    [
        ((0.0,), {}, ConfigError, r"^window is 0\.0; it must be finite and > 0 seconds$"),
        ((math.inf,), {}, ConfigError, r"^window is inf; it must be finite and > 0 seconds$"),
        ((math.nan,), {}, ConfigError, r"^window is nan; it must be finite and > 0 seconds$"),
        (("5",), {}, ArgumentTypeError, r"^window is str; it must be a number$"),
        (
            (5.0,),
            {"aggression": 0.0},
            ConfigError,
            r"^aggression is 0\.0; it must be finite and > 0$",
        ),
        ((5.0,), {"aggression": math.inf}, ConfigError, r"^aggression is inf; it must be finite"),
        ((5.0,), {"floor": 0.0}, ConfigError, r"^floor is 0\.0; it must be in \(0, 1\]$"),
        ((5.0,), {"floor": 1.5}, ConfigError, r"^floor is 1\.5; it must be in \(0, 1\]$"),
        ((5.0,), {"floor": math.nan}, ConfigError, r"^floor is nan; it must be in \(0, 1\]$"),
        (
            (5.0,),
            {"interval": -1.0},
            ConfigError,
            r"^interval is -1\.0; it must be finite and >= 0 seconds, or None$",
        ),
    ],
)
def test_slow_start_config_is_validated(
    arguments: tuple[Any, ...], options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """window > 0 and finite, aggression > 0 and finite, floor in (0, 1], interval >= 0."""
    with pytest.raises(error, match=message):
        SlowStart(*arguments, **options)


def test_slow_start_arguments_of_pickers_are_validated(impl: Any) -> None:
    """slow_start must be a SlowStart; eligible_since needs slow_start and known ids."""
    with pytest.raises(
        ArgumentTypeError, match=r"^slow_start is float; it must be a SlowStart or None$"
    ):
        WeightedRandomPicker([Endpoint("a")], slow_start=30.0)  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"^eligible_since is given without slow_start; it sets ramp starts$"
    ):
        RoundRobinPicker([Endpoint("a")], eligible_since={"a": 0.0})
    with pytest.raises(UnknownServer, match=r"^endpoint_id is 'b'; no endpoint"):
        RoundRobinPicker([Endpoint("a")], slow_start=SlowStart(1.0), eligible_since={"b": 0.0})
    with pytest.raises(InvalidArgument, match=r"^now is nan; times must be finite$"):
        RoundRobinPicker([Endpoint("a")], slow_start=SlowStart(1.0), eligible_since={"a": math.nan})


def test_set_eligible_and_refresh_validate_arguments(impl: Any) -> None:
    """eligible must be a bool and now finite."""
    picker = RoundRobinPicker([Endpoint("a")], seed=1, slow_start=SlowStart(1.0))
    with pytest.raises(ArgumentTypeError, match=r"^eligible is int; it must be a bool$"):
        picker.set_eligible("a", 0, now=0.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^now is nan; times must be finite$"):
        picker.set_eligible("a", False, now=math.nan)
    with pytest.raises(ArgumentTypeError, match=r"^now is str; it must be a number$"):
        picker.refresh("1")  # type: ignore[arg-type]
    assert picker.is_eligible("a")


def test_repr_is_informative(impl: Any) -> None:
    """repr names the class, the endpoint and eligible counts and the seed."""
    picker = RoundRobinPicker(endpoints([1.0, 1.0]), seed=12)
    picker.set_eligible("e1", False, now=0.0)
    assert repr(picker) == "RoundRobinPicker(2 endpoints, 1 eligible, seed=12)"


# --- stateful ------------------------------------------------------------------------------


class PickerMachine(RuleBasedStateMachine):
    """Random health changes, picks, begins, ends and ramps applied to one picker of each
    configuration per kernel path (with slow start where it applies), in lockstep, against a
    model of eligibility and outstanding counts: every pick is allowed and the same on every
    path, and every step checks the pickers' invariants."""

    flavours: ClassVar[dict[str, dict[str, ModuleType]]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.weights = [1.0, 0.0, 2.0, 3.0, 0.5]
        self.ids = [f"e{index}" for index in range(len(self.weights))]
        ramp = SlowStart(10.0, aggression=1.5, floor=0.2, interval=0.5)
        # One row per configuration, one picker per flavour in each row.
        self.rows: list[list[Any]] = []
        for kind, options in CONFIGURATIONS:
            extra = {} if kind == "hash" else {"slow_start": ramp}
            row = []
            for kernels in self.flavours.values():
                with using(kernels):
                    row.append(
                        make_picker(kind, endpoints(self.weights), seed=5, **extra, **options)
                    )
            self.rows.append(row)
        self.eligible = [True] * len(self.weights)
        self.outstanding = [0] * len(self.weights)
        self.now = 0.0
        self.key = 0

    def pickers(self) -> Iterator[Any]:
        for row in self.rows:
            yield from row

    @rule(index=st.integers(0, 4), eligible=st.booleans(), dt=st.floats(0.0, 3.0))
    def set_eligible(self, index: int, eligible: bool, dt: float) -> None:
        self.now += dt
        for picker in self.pickers():
            picker.set_eligible(self.ids[index], eligible, now=self.now)
        self.eligible[index] = eligible

    @rule(dt=st.floats(0.0, 3.0), count=st.integers(1, 5))
    def pick(self, dt: float, count: int) -> None:
        self.now += dt
        allowed = {
            self.ids[i]
            for i in range(len(self.weights))
            if self.eligible[i] and self.weights[i] > 0
        }
        for _ in range(count):
            self.key += 1
            for row in self.rows:
                if not allowed:
                    for picker in row:
                        with pytest.raises(NoHealthyEndpoint):
                            picker.pick(request_for(self.key), now=self.now)
                    continue
                chosen = {picker.pick(request_for(self.key), now=self.now).id for picker in row}
                assert len(chosen) == 1
                assert chosen <= allowed

    @rule(index=st.integers(0, 4))
    def begin(self, index: int) -> None:
        for picker in self.pickers():
            picker.begin(self.ids[index])
        self.outstanding[index] += 1

    @precondition(lambda self: any(self.outstanding))
    @rule(data=st.data(), latency=st.floats(0.0, 2.0), ok=st.booleans())
    def end(self, data: st.DataObject, latency: float, ok: bool) -> None:
        busy = [i for i in range(len(self.weights)) if self.outstanding[i]]
        index = data.draw(st.sampled_from(busy))
        for picker in self.pickers():
            picker.end(self.ids[index], latency=latency, ok=ok, now=self.now)
        self.outstanding[index] -= 1

    @rule(dt=st.floats(0.0, 12.0))
    def refresh(self, dt: float) -> None:
        self.now += dt
        for picker in self.pickers():
            if picker.slow_start is not None:
                picker.refresh(self.now)

    @invariant()
    def consistent(self) -> None:
        expected = [self.ids[i] for i in range(len(self.ids)) if self.eligible[i]]
        for row in self.rows:
            weights = {picker.effective_weights() for picker in row}
            assert len(weights) == 1
            for picker in row:
                picker._check()
                assert [endpoint.id for endpoint in picker.eligible()] == expected
                if hasattr(picker, "outstanding"):
                    assert [picker.outstanding(i) for i in self.ids] == self.outstanding


def test_pickers_track_a_model_in_lockstep(request: pytest.FixtureRequest) -> None:
    """Stateful: every configuration on both kernel paths in lockstep with the model (the
    compiled path is left out only in a pure-only run)."""
    chosen = {"pure": request.getfixturevalue("pure_kernels")}
    with contextlib.suppress(pytest.skip.Exception):
        chosen["fast"] = request.getfixturevalue("fast_kernels")

    class Lockstep(PickerMachine):
        flavours = chosen

    run_state_machine_as_test(
        Lockstep, settings=settings(settings.default, max_examples=30, stateful_step_count=30)
    )
