"""lbkit.waitingroom.estimate: the smoothed let-in rate, the FIFO and random wait estimates
against hand-computed examples and a simulated raffle, the JSON status, and every rejected
input. The module uses no kernel, so only one test takes ``impl`` (to pin that both paths
agree); the rest run once."""

from __future__ import annotations

import json
import math
import pickle
import random
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.waitingroom.estimate import (
    DEFAULT_PERCENTILES,
    FifoEstimate,
    LetInRate,
    RandomEstimate,
    fifo_wait,
    random_wait,
    status,
    whole_minutes,
)

#: The keys every status carries, whatever the method.
STATUS_KEYS = {
    "queueing_method",
    "wait_time_known",
    "estimated_wait_minutes",
    "queue_position",
    "wait_time_percentiles",
    "users_waiting",
    "queue_is_full",
    "refresh_interval_seconds",
    "last_updated",
    "last_updated_epoch",
}

counts = st.integers(min_value=0, max_value=10**9)
rates = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
chances = st.floats(min_value=1e-6, max_value=1.0 - 1e-6, allow_nan=False)


def base_status(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "queueing_method": "fifo",
        "now": 1628034360.0,
        "refresh_interval": 20.0,
        "users_waiting": 500,
        "let_in_per_minute": 10.0,
        "users_ahead": 25,
    }
    arguments.update(overrides)
    return status(**arguments)


# --- the let-in rate ----------------------------------------------------------------------


def test_rate_is_unknown_until_the_first_complete_minute() -> None:
    """A fresh LetInRate has no rate, no last minute and reads None at any minute."""
    rate = LetInRate()
    assert rate.rate is None
    assert rate.last_minute is None
    assert rate.rate_at(100) is None


def test_first_minute_seeds_the_rate_and_later_ones_fold_in_with_alpha() -> None:
    """The first record is taken as is; each next one is alpha * admitted + (1 - alpha) * rate
    (hand-computed with the default alpha 0.3)."""
    rate = LetInRate()
    assert rate.alpha == 0.3
    assert rate.record(0, 100) == 100.0
    assert rate.record(1, 200) == pytest.approx(130.0)  # 0.3 * 200 + 0.7 * 100
    assert rate.record(2, 0) == pytest.approx(91.0)  # 0.7 * 130
    assert rate.rate == pytest.approx(91.0)
    assert rate.last_minute == 2


def test_a_skipped_minute_counts_as_zero_admitted() -> None:
    """Minutes without a record between two records are complete minutes with nobody let in."""
    gapped, explicit = LetInRate(alpha=0.5), LetInRate(alpha=0.5)
    gapped.record(0, 10)
    gapped.record(1, 20)
    assert gapped.record(3, 20) == 13.75  # 15 -> 7.5 (minute 2) -> 0.5 * 20 + 0.5 * 7.5
    for minute, admitted in [(0, 10), (1, 20), (2, 0), (3, 20)]:
        explicit.record(minute, admitted)
    assert gapped.rate == explicit.rate


def test_rate_at_decays_over_quiet_minutes_without_changing_anything() -> None:
    """rate_at(m) counts the complete minutes since the last record as 0 and records nothing,
    so the quiet minute can still be recorded late."""
    rate = LetInRate(alpha=0.5)
    rate.record(10, 16)
    assert rate.rate_at(11) == 16.0  # minute 11 is in progress: nothing quiet has completed
    assert rate.rate_at(13) == 4.0  # minutes 11 and 12 completed with 0
    assert rate.rate == 16.0
    assert rate.last_minute == 10
    assert rate.record(11, 16) == 16.0


def test_rate_at_an_earlier_minute_reads_the_latest_rate() -> None:
    """A worker whose clock is a little behind reads the latest rate rather than failing."""
    rate = LetInRate(alpha=0.5)
    rate.record(10, 8)
    assert rate.rate_at(10) == 8.0
    assert rate.rate_at(-5) == 8.0


def test_a_huge_gap_decays_to_zero_without_error() -> None:
    """After (practically) forever with nobody let in, the rate is 0.0, not an error."""
    rate = LetInRate()
    rate.record(0, 1000)
    assert rate.rate_at(2**62) == 0.0
    assert rate.record(2**62, 0) == 0.0


def test_alpha_one_keeps_only_the_last_minute() -> None:
    """alpha=1.0 makes the rate the last complete minute's count, gaps included."""
    rate = LetInRate(alpha=1.0)
    rate.record(0, 50)
    assert rate.rate_at(2) == 0.0
    assert rate.record(5, 7) == 7.0


@given(
    st.floats(min_value=0.01, max_value=1.0),
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 10**6)), min_size=1, max_size=30),
)
def test_rate_stays_within_the_counts_it_has_seen(
    alpha: float, steps: list[tuple[int, int]]
) -> None:
    """The rate is an average: never below the smallest count (0 if a minute was skipped) nor
    above the largest, and recording the zeros explicitly gives the same rate."""
    gapped, explicit = LetInRate(alpha=alpha), LetInRate(alpha=alpha)
    minute = 0
    seen: list[int] = []
    for step, admitted in steps:
        for quiet in range(minute + 1, minute + step) if seen else ():
            explicit.record(quiet, 0)
            seen.append(0)
        minute += step
        gapped.record(minute, admitted)
        explicit.record(minute, admitted)
        seen.append(admitted)
        assert gapped.rate is not None
        assert min(seen) * (1 - 1e-12) <= gapped.rate <= max(seen) * (1 + 1e-12)
        assert gapped.rate == pytest.approx(explicit.rate, rel=1e-9, abs=1e-9)


def test_rate_pickles_with_its_state() -> None:
    """A LetInRate survives pickling (a process handing it over) and has a readable repr."""
    rate = LetInRate(alpha=0.5)
    rate.record(3, 40)
    copy = pickle.loads(pickle.dumps(rate))
    assert (copy.alpha, copy.rate, copy.last_minute) == (0.5, 40.0, 3)
    assert repr(copy) == "LetInRate(alpha=0.5, rate=40.0, minute=3)"


@pytest.mark.parametrize(
    ("minute", "admitted", "error", "message"),
    [
        (
            5,
            1,
            InvalidArgument,
            "minute is 5, not after the last recorded minute 5; record each complete minute once, in order",
        ),
        (
            4,
            1,
            InvalidArgument,
            "minute is 4, not after the last recorded minute 5; record each complete minute once, in order",
        ),
        (6, -1, InvalidArgument, "admitted is -1; counts must be ints in 0..2**63 - 1"),
        (
            6,
            2**63,
            InvalidArgument,
            "admitted is 9223372036854775808; counts must be ints in 0..2**63 - 1",
        ),
        (6, 1.5, ArgumentTypeError, "admitted is float; it must be an int"),
        (6, None, ArgumentTypeError, "admitted is NoneType; it must be an int"),
        (6, True, ArgumentTypeError, "admitted is bool; it must be an int"),
        ("6", 1, ArgumentTypeError, "minute is str; it must be an int"),
        (6.0, 1, ArgumentTypeError, "minute is float; it must be an int"),
        (
            2**63,
            1,
            InvalidArgument,
            "minute is 9223372036854775808; minutes must be ints in -2**63..2**63 - 1",
        ),
    ],
)
def test_record_rejects_bad_minutes_and_counts_without_changing_anything(
    minute: Any, admitted: Any, error: type[Exception], message: str
) -> None:
    """A duplicate, earlier or malformed minute and a bad count raise and leave the rate as it
    was."""
    rate = LetInRate(alpha=0.5)
    rate.record(5, 10)
    with pytest.raises(error) as raised:
        rate.record(minute, admitted)
    assert str(raised.value) == message
    assert (rate.rate, rate.last_minute) == (10.0, 5)


def test_rate_at_rejects_a_minute_that_is_not_an_int() -> None:
    """rate_at checks its minute like record does."""
    with pytest.raises(ArgumentTypeError, match=r"^minute is float; it must be an int$"):
        LetInRate().rate_at(1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alpha", "error", "message"),
    [
        (0, ConfigError, "alpha is 0.0; it must be in (0, 1]"),
        (-0.1, ConfigError, "alpha is -0.1; it must be in (0, 1]"),
        (1.5, ConfigError, "alpha is 1.5; it must be in (0, 1]"),
        (math.nan, ConfigError, "alpha is nan; it must be in (0, 1]"),
        (math.inf, ConfigError, "alpha is inf; it must be in (0, 1]"),
        ("0.3", ArgumentTypeError, "alpha is str; it must be a number"),
        (True, ArgumentTypeError, "alpha is bool; it must be a number"),
    ],
)
def test_bad_alpha_is_rejected(alpha: Any, error: type[Exception], message: str) -> None:
    """alpha must be a number in (0, 1]."""
    with pytest.raises(error) as raised:
        LetInRate(alpha=alpha)
    assert str(raised.value) == message


# --- FIFO ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("users_ahead", "rate", "minutes", "position"),
    [
        (30, 10.0, 3.0, 31),
        (25, 10.0, 2.5, 26),
        (0, 10.0, 0.0, 1),
        (7, 2, 3.5, 8),
        (1, 0.25, 4.0, 2),
    ],
)
def test_fifo_wait_is_users_ahead_over_the_rate(
    users_ahead: int, rate: float, minutes: float, position: int
) -> None:
    """Hand-computed FIFO waits: users ahead / rate minutes, position users ahead + 1."""
    assert fifo_wait(users_ahead, rate) == FifoEstimate(
        minutes=minutes, wait_time_known=True, position=position
    )


@pytest.mark.parametrize("rate", [None, 0.0, 0])
def test_fifo_wait_is_unknown_without_a_rate(rate: float | None) -> None:
    """No rate yet, or nobody let in: the wait is unknown, the position is still known."""
    assert fifo_wait(12, rate) == FifoEstimate(minutes=None, wait_time_known=False, position=13)
    assert fifo_wait(0, rate).wait_time_known is False


def test_float_noise_does_not_add_a_minute() -> None:
    """21 users ahead at 0.7 a minute is 30.000000000000004 minutes and P = 1/4 with
    p = 1 - 0.75^3 is 3.0000000000000004 minutes: shown as 30 and 3."""
    fifo = fifo_wait(21, 0.7).minutes
    assert fifo is not None
    assert fifo > 30.0
    assert whole_minutes(fifo) == 30
    raffle = random_wait(4, 1.0, percentiles=(0.578125,)).minutes
    assert raffle is not None
    assert raffle[0] > 3.0
    assert whole_minutes(raffle[0]) == 3


def test_fifo_wait_that_overflows_is_unknown() -> None:
    """A rate so small that the quotient is infinite says nothing: the wait is unknown."""
    assert fifo_wait(10, 1e-320) == FifoEstimate(minutes=None, wait_time_known=False, position=11)


@given(counts, counts, rates)
def test_more_users_ahead_never_shortens_the_fifo_wait(a: int, b: int, rate: float) -> None:
    """Being further back in the queue never gives a shorter estimate, exact or rounded."""
    fewer, more = sorted((a, b))
    short, long = fifo_wait(fewer, rate), fifo_wait(more, rate)
    assert short.minutes is not None
    assert long.minutes is not None
    assert short.minutes <= long.minutes
    assert whole_minutes(short.minutes) <= whole_minutes(long.minutes)
    assert short.position <= long.position


@given(counts, rates, rates)
def test_a_higher_rate_never_lengthens_the_fifo_wait(users_ahead: int, a: float, b: float) -> None:
    """Letting more users in per minute never gives a longer estimate, exact or rounded."""
    slow, fast = sorted((a, b))
    long, short = fifo_wait(users_ahead, slow), fifo_wait(users_ahead, fast)
    assert long.minutes is not None
    assert short.minutes is not None
    assert short.minutes <= long.minutes
    assert whole_minutes(short.minutes) <= whole_minutes(long.minutes)


# --- random -------------------------------------------------------------------------------


def test_random_wait_matches_hand_computed_percentiles() -> None:
    """P = 100 / 1000 = 0.1: n(p) = ln(1 - p) / ln(0.9), ln(0.9) = -0.1053605...;
    ln(0.75) = -0.2876820... gives 2.7304543, ln(0.5) 6.5788135, ln(0.25) 13.1576270."""
    estimate = random_wait(1000, 100.0)
    assert estimate.percentiles == DEFAULT_PERCENTILES
    assert estimate.wait_time_known is True
    assert estimate.chance_per_minute == 0.1
    assert estimate.minutes == pytest.approx(
        (2.7304542945297516, 6.578813478960585, 13.15762695792117), rel=1e-12
    )
    assert estimate.minutes is not None
    assert [whole_minutes(minutes) for minutes in estimate.minutes] == [3, 7, 14]


def test_random_wait_with_an_even_chance_per_minute() -> None:
    """P = 1/2: half are in after 1 minute, three quarters after 2, a quarter after
    log2(4/3) = 0.4150375 minutes."""
    estimate = random_wait(20, 10.0)
    assert estimate.chance_per_minute == 0.5
    assert estimate.minutes == pytest.approx((0.4150374992788438, 1.0, 2.0), rel=1e-12)
    assert estimate.minutes is not None
    assert [whole_minutes(minutes) for minutes in estimate.minutes] == [1, 1, 2]


def test_random_wait_keeps_the_order_of_the_chances_asked_for() -> None:
    """Results line up with the percentiles as given, unsorted and repeated."""
    estimate = random_wait(20, 10.0, percentiles=[0.75, 0.5, 0.75])
    assert estimate.percentiles == (0.75, 0.5, 0.75)
    assert estimate.minutes == pytest.approx((2.0, 1.0, 2.0), rel=1e-12)


@pytest.mark.parametrize(("users_waiting", "rate"), [(100, 100.0), (100, 250.0), (1, 1), (0, 5.0)])
def test_everyone_gets_in_at_once_when_p_reaches_one(users_waiting: int, rate: float) -> None:
    """P >= 1 (or nobody waiting): every percentile is 0 minutes, known, P capped at 1."""
    assert random_wait(users_waiting, rate) == RandomEstimate(
        percentiles=DEFAULT_PERCENTILES,
        minutes=(0.0, 0.0, 0.0),
        wait_time_known=True,
        chance_per_minute=1.0,
    )


@pytest.mark.parametrize("users_waiting", [0, 1, 1000])
@pytest.mark.parametrize("rate", [None, 0.0])
def test_random_wait_is_unknown_when_nobody_is_let_in(
    users_waiting: int, rate: float | None
) -> None:
    """No rate or a zero rate: the wait is unknown, whoever is waiting."""
    assert random_wait(users_waiting, rate) == RandomEstimate(
        percentiles=DEFAULT_PERCENTILES, minutes=None, wait_time_known=False, chance_per_minute=None
    )


def test_random_wait_is_unknown_when_p_underflows_or_n_overflows() -> None:
    """A vanishing chance per minute is treated like nobody being let in."""
    underflow = random_wait(2**62, 5e-324)
    assert (underflow.minutes, underflow.wait_time_known, underflow.chance_per_minute) == (
        None,
        False,
        0.0,
    )
    overflow = random_wait(10, 1e-310)
    assert (overflow.minutes, overflow.wait_time_known) == (None, False)


def test_random_wait_keeps_its_precision_for_a_tiny_chance() -> None:
    """P = 1e-12: n(0.5) = ln 2 / -log1p(-P) = 693147180559.5988; the naive log(1 - P) would be
    off by almost 1e-4 relative."""
    estimate = random_wait(10**12, 1.0, percentiles=(0.5,))
    assert estimate.minutes is not None
    expected = math.log(2.0) / (1e-12 + 0.5e-24)
    assert estimate.minutes[0] == pytest.approx(expected, rel=1e-12)


@given(
    st.integers(min_value=2, max_value=10**9),
    st.floats(min_value=1e-3, max_value=1e9),
    st.lists(chances, min_size=2, max_size=6),
)
def test_random_percentiles_increase_with_the_chance(
    users_waiting: int, rate: float, percentiles: list[float]
) -> None:
    """A higher chance of having been let in never takes fewer minutes, exact or rounded."""
    ordered = sorted(percentiles)
    estimate = random_wait(users_waiting, rate, percentiles=ordered)
    assert estimate.minutes is not None
    assert list(estimate.minutes) == sorted(estimate.minutes)
    rounded = [whole_minutes(minutes) for minutes in estimate.minutes]
    assert rounded == sorted(rounded)


@given(counts, counts, rates, chances)
def test_more_users_waiting_never_shortens_the_random_wait(
    a: int, b: int, rate: float, chance: float
) -> None:
    """A bigger crowd means a smaller chance per minute and so no shorter wait."""
    fewer, more = sorted((a, b))
    short = random_wait(fewer, rate, percentiles=(chance,)).minutes
    long = random_wait(more, rate, percentiles=(chance,)).minutes
    assert short is not None
    assert long is not None
    assert short[0] <= long[0]


@given(st.integers(min_value=1, max_value=10**9), rates, rates, chances)
def test_a_higher_rate_never_lengthens_the_random_wait(
    users_waiting: int, a: float, b: float, chance: float
) -> None:
    """Letting more users in per minute never gives a longer random estimate."""
    slow, fast = sorted((a, b))
    long = random_wait(users_waiting, slow, percentiles=(chance,)).minutes
    short = random_wait(users_waiting, fast, percentiles=(chance,)).minutes
    assert long is not None
    assert short is not None
    assert short[0] <= long[0]


@given(st.floats(min_value=0.01, max_value=0.99), st.integers(min_value=1, max_value=40))
def test_the_chance_after_k_whole_minutes_rounds_back_to_k(
    chance_per_minute: float, k: int
) -> None:
    """With p = 1 - (1 - P)^k, n(p) is k minutes: the inverse of the geometric CDF, with float
    noise absorbed by whole_minutes. (p within 1e-6 of 1 is skipped: a float that close to 1
    no longer holds 1 - p precisely enough to invert, whatever the formula.)"""
    still_waiting = (1.0 - chance_per_minute) ** k
    assume(still_waiting >= 1e-6)
    p = 1.0 - still_waiting
    estimate = random_wait(10**6, chance_per_minute * 10**6, percentiles=(p,))
    assert estimate.minutes is not None
    assert estimate.minutes[0] == pytest.approx(k, rel=1e-9)
    assert whole_minutes(estimate.minutes[0]) == k


def minutes_until_admitted(chance_per_minute: float, rng: random.Random) -> int:
    """One user's raffle: each minute they are drawn with the given chance."""
    minutes = 1
    while rng.random() >= chance_per_minute:
        minutes += 1
    return minutes


@given(st.floats(min_value=0.05, max_value=0.95), st.integers(min_value=0, max_value=2**32))
def test_random_percentiles_match_a_simulated_raffle(chance_per_minute: float, seed: int) -> None:
    """In a seeded simulation of geometric trials, the share of users in within
    ceil(n(p)) minutes is at least p and the share within one minute less is below p (within
    0.05, over 6 standard deviations for 4000 users)."""
    rng = random.Random(seed)
    trials = 4000
    waits = [minutes_until_admitted(chance_per_minute, rng) for _ in range(trials)]
    estimate = random_wait(10**6, chance_per_minute * 10**6)
    assert estimate.minutes is not None
    for p, minutes in zip(estimate.percentiles, estimate.minutes, strict=True):
        whole = whole_minutes(minutes)
        assert sum(wait <= whole for wait in waits) / trials >= p - 0.05
        assert sum(wait <= whole - 1 for wait in waits) / trials <= p + 0.05


def test_the_simulated_median_wait_is_the_rounded_estimate() -> None:
    """20,000 seeded raffle entrants at P = 0.1: the median wait is 7 minutes, as shown."""
    rng = random.Random(7)
    waits = sorted(minutes_until_admitted(0.1, rng) for _ in range(20000))
    assert waits[len(waits) // 2] == 7
    shown = random_wait(1000, 100.0, percentiles=(0.5,)).minutes
    assert shown is not None
    assert whole_minutes(shown[0]) == 7


# --- random, in a growing or draining queue -------------------------------------------------

growths = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_growth_zero_is_exactly_the_steady_raffle(impl: Any) -> None:
    """growth_per_minute=0 (or -0.0, or an int 0) gives the discrete n(p) to the bit."""
    steady = random_wait(1000, 100.0, percentiles=(0.1, 0.5, 0.9))
    for zero in (0.0, -0.0, 0):
        assert random_wait(1000, 100.0, percentiles=(0.1, 0.5, 0.9), growth_per_minute=zero) == (
            steady
        )
    assert steady.minutes == tuple(math.log1p(-p) / math.log1p(-0.1) for p in (0.1, 0.5, 0.9))


def test_a_growing_queue_matches_the_closed_form(impl: Any) -> None:
    """t(p) = (W / g) * ((1 - p) ** (-g / (lambda W)) - 1), lambda = -log(1 - P): the raffle
    whose per-user hazard falls as the crowd W + g t grows."""
    users_waiting, rate, growth = 1000, 10.0, 10.0
    hazard = -math.log1p(-rate / users_waiting)
    estimate = random_wait(users_waiting, rate, growth_per_minute=growth)
    assert estimate.minutes is not None
    expected = [
        users_waiting / growth * ((1.0 - p) ** (-growth / (hazard * users_waiting)) - 1.0)
        for p in DEFAULT_PERCENTILES
    ]
    assert list(estimate.minutes) == pytest.approx(expected, rel=1e-12)
    # Arrivals at twice the admission rate (r = g / R = 1): the median is 2 ** r - 1 = 1
    # times W / g = 100 minutes, against ln 2 * W / R = 69 for a crowd that stays 1000.
    assert estimate.minutes[1] == pytest.approx(100.0, rel=0.01)
    assert estimate.chance_per_minute == 0.01


def test_a_draining_queue_waits_less_and_never_past_the_last_user(impl: Any) -> None:
    """While the queue drains by |g| a minute every estimate is shorter than a steady one and
    at most W / |g| (below it but for rounding); with no arrivals (g = -R) a share p is in after about p * W / R."""
    steady = random_wait(1000, 10.0, percentiles=(0.5, 0.99, 0.999999))
    assert steady.minutes is not None
    for growth in (-1.0, -10.0, -100.0, -1e6):
        drained = random_wait(
            1000, 10.0, percentiles=(0.5, 0.99, 0.999999), growth_per_minute=growth
        )
        assert drained.minutes is not None
        for short, long in zip(drained.minutes, steady.minutes, strict=True):
            assert 0.0 < short < long
            assert short <= 1000 / -growth
    no_arrivals = random_wait(1000, 10.0, percentiles=(0.25, 0.5, 0.9), growth_per_minute=-10.0)
    assert no_arrivals.minutes == pytest.approx((25.0, 50.0, 90.0), rel=0.01)


def test_growth_moves_nothing_when_everybody_is_let_in_this_minute(impl: Any) -> None:
    """P >= 1 or nobody waiting: 0 minutes whatever the growth; no rate: unknown."""
    for growth in (-1e6, -5.0, 5.0, 1e6):
        assert random_wait(80, 100.0, growth_per_minute=growth).minutes == (0.0, 0.0, 0.0)
        assert random_wait(0, 100.0, growth_per_minute=growth).chance_per_minute == 1.0
        assert random_wait(80, None, growth_per_minute=growth).minutes is None
        assert random_wait(80, 0.0, growth_per_minute=growth).wait_time_known is False


def test_a_growth_that_overflows_makes_the_wait_unknown(impl: Any) -> None:
    """x = g n(p) / W above ~709.78 overflows expm1 and a huge product overflows the float:
    both are unknown (not infinity, which is not JSON), like an overflowing n(p)."""
    overflowing = random_wait(1000, 1.0, growth_per_minute=1e6)
    assert overflowing == RandomEstimate(
        percentiles=DEFAULT_PERCENTILES,
        minutes=None,
        wait_time_known=False,
        chance_per_minute=0.001,
    )
    assert random_wait(2**62, 1.0, growth_per_minute=1e300).minutes is None
    # Just below the edge the number is huge but finite, and known.
    edge = random_wait(1000, 1.0, percentiles=(0.5,), growth_per_minute=1000.0)
    assert edge.minutes is not None
    assert math.isfinite(edge.minutes[0])
    assert edge.minutes[0] > 1e300


def test_a_tiny_growth_keeps_its_precision() -> None:
    """A growth whose x underflows, or is far below float precision, gives n(p) itself."""
    steady = random_wait(10**9, 1.0, percentiles=(0.5,)).minutes
    assert steady is not None
    for growth in (5e-324, 1e-300, -1e-300, 1e-20):
        grown = random_wait(10**9, 1.0, percentiles=(0.5,), growth_per_minute=growth).minutes
        assert grown is not None
        assert grown[0] == pytest.approx(steady[0], rel=1e-15)


@given(
    st.integers(min_value=1, max_value=10**9),
    rates,
    st.lists(chances, min_size=2, max_size=6),
    growths,
)
def test_growing_percentiles_increase_with_the_chance(
    users_waiting: int, rate: float, percentiles: list[float], growth: float
) -> None:
    """A higher chance never takes fewer minutes, whatever the growth (when known)."""
    estimate = random_wait(
        users_waiting, rate, percentiles=sorted(percentiles), growth_per_minute=growth
    )
    assume(estimate.minutes is not None)
    assert estimate.minutes is not None
    assert list(estimate.minutes) == sorted(estimate.minutes)
    assert all(minutes >= 0.0 and math.isfinite(minutes) for minutes in estimate.minutes)


@given(st.integers(min_value=2, max_value=10**9), rates, chances, growths, growths)
def test_faster_growth_never_shortens_the_random_wait(
    users_waiting: int, rate: float, chance: float, a: float, b: float
) -> None:
    """More arrivals a minute mean more competitors and so no shorter wait; a growth near 0
    is near the steady n(p) (the estimate is continuous in the growth)."""
    slow, fast = sorted((a, b))
    short = random_wait(users_waiting, rate, percentiles=(chance,), growth_per_minute=slow)
    long = random_wait(users_waiting, rate, percentiles=(chance,), growth_per_minute=fast)
    assume(long.minutes is not None)
    assert short.minutes is not None
    assert long.minutes is not None
    assert short.minutes[0] <= long.minutes[0] * (1.0 + 1e-12)
    steady = random_wait(users_waiting, rate, percentiles=(chance,)).minutes
    nudged = random_wait(users_waiting, rate, percentiles=(chance,), growth_per_minute=1e-9)
    assert steady is not None
    assert nudged.minutes is not None
    assert nudged.minutes[0] == pytest.approx(steady[0], rel=1e-6)


def discrete_raffle_quantile(users_waiting: int, rate: float, growth: float, p: float) -> float:
    """The exact per-minute raffle: in minute k the crowd is W + g k and R of them are drawn,
    so the survival is prod(1 - R / (W + g k)); its log is interpolated linearly within a
    minute (as n(p) does for a steady crowd) to give the minutes until it reaches 1 - p."""
    target = math.log1p(-p)
    log_survival = 0.0
    minute = 0
    while True:
        crowd = users_waiting + growth * minute
        if crowd <= rate:
            return float(minute + 1)  # everybody left is drawn in this minute
        step = math.log1p(-rate / crowd)
        if log_survival + step <= target:
            return minute + (target - log_survival) / step
        log_survival += step
        minute += 1


@given(
    users_waiting=st.integers(min_value=20, max_value=5000),
    share=st.floats(min_value=0.001, max_value=0.1),
    ratio=st.floats(min_value=-1.0, max_value=2.0),
    p=st.floats(min_value=0.01, max_value=0.95),
)
def test_growing_percentiles_match_an_exact_per_minute_raffle(
    impl: Any, users_waiting: int, share: float, ratio: float, p: float
) -> None:
    """For P = R / W <= 0.1 and a growth from -R (no arrivals) to 2 R, the continuous
    estimate is within 10 % plus one minute of the exact discrete raffle with a crowd of
    W + g k in minute k."""
    rate = share * users_waiting
    growth = ratio * rate
    estimate = random_wait(users_waiting, rate, percentiles=(p,), growth_per_minute=growth)
    assert estimate.minutes is not None
    exact = discrete_raffle_quantile(users_waiting, rate, growth, p)
    assert abs(estimate.minutes[0] - exact) <= 0.1 * exact + 1.0


def minutes_in_a_growing_raffle(
    users_waiting: int, rate: int, growth: int, rng: random.Random
) -> int:
    """One user's raffle in a crowd of W + g k in minute k: drawn with chance R / crowd."""
    minutes = 1
    while rng.random() * (users_waiting + growth * (minutes - 1)) >= rate:
        minutes += 1
    return minutes


def test_a_simulated_growing_raffle_has_the_estimated_median() -> None:
    """20,000 seeded entrants of a raffle of 1000 growing by 10 a minute with 10 drawn: the
    median wait rounds to the median shown (the steady estimate would be 69, 31 % short)."""
    rng = random.Random(11)
    waits = sorted(minutes_in_a_growing_raffle(1000, 10, 10, rng) for _ in range(20000))
    shown = random_wait(1000, 10.0, percentiles=(0.5,), growth_per_minute=10.0).minutes
    assert shown is not None
    assert waits[len(waits) // 2] == pytest.approx(whole_minutes(shown[0]), abs=2)


@pytest.mark.parametrize(
    ("growth", "error", "message"),
    [
        (
            math.nan,
            InvalidArgument,
            "growth_per_minute is nan; it must be finite users per minute "
            "(negative while the queue drains)",
        ),
        (
            math.inf,
            InvalidArgument,
            "growth_per_minute is inf; it must be finite users per minute "
            "(negative while the queue drains)",
        ),
        (
            -math.inf,
            InvalidArgument,
            "growth_per_minute is -inf; it must be finite users per minute "
            "(negative while the queue drains)",
        ),
        (
            10**400,
            InvalidArgument,
            f"growth_per_minute is {10**400!r}; it must be finite users per minute "
            "(negative while the queue drains)",
        ),
        (None, ArgumentTypeError, "growth_per_minute is NoneType; it must be a number"),
        ("1", ArgumentTypeError, "growth_per_minute is str; it must be a number"),
        (True, ArgumentTypeError, "growth_per_minute is bool; it must be a number"),
    ],
)
def test_random_wait_and_status_reject_a_bad_growth(
    growth: Any, error: type[Exception], message: str
) -> None:
    """The growth must be a finite number, even where the wait is unknown or not random."""
    for call in (
        lambda: random_wait(1000, 10.0, growth_per_minute=growth),
        lambda: random_wait(1000, None, growth_per_minute=growth),
        lambda: base_status(growth_per_minute=growth),
        lambda: base_status(queueing_method="random", growth_per_minute=growth),
    ):
        with pytest.raises(error) as raised:
            call()
        assert str(raised.value) == message


def test_random_status_shows_the_growing_estimate(impl: Any) -> None:
    """A random status with a growth shows the growing raffle's whole minutes; FIFO's is
    unchanged by it (nobody who arrives later is ahead of a FIFO user)."""
    page = base_status(queueing_method="random", users_waiting=1000, let_in_per_minute=10.0)
    grown = base_status(
        queueing_method="random",
        users_waiting=1000,
        let_in_per_minute=10.0,
        growth_per_minute=10.0,
    )
    estimate = random_wait(1000, 10.0, growth_per_minute=10.0)
    assert estimate.minutes is not None
    assert grown["estimated_wait_minutes"] == whole_minutes(estimate.minutes[1]) == 100
    assert page["estimated_wait_minutes"] == 69
    assert grown["wait_time_percentiles"] == {
        "p25": whole_minutes(estimate.minutes[0]),
        "p50": 100,
        "p75": whole_minutes(estimate.minutes[2]),
    }
    assert base_status(growth_per_minute=50.0) == base_status()


# --- rounding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "whole"),
    [
        (0.0, 0),
        (0, 0),
        (1e-300, 0),
        (1e-6, 1),
        (0.2, 1),
        (1.0, 1),
        (2.0000000000000004, 2),
        (2.000001, 3),
        (21 / 0.7, 30),
        (13.15762695792117, 14),
        (1e15 + 0.5, 10**15),
        (1e6 + 0.01, 10**6 + 1),
    ],
)
def test_whole_minutes_rounds_up_ignoring_float_noise(minutes: float, whole: int) -> None:
    """Whole minutes are rounded up, except that float noise next to a whole number (1e-9
    minutes, or a relative 1e-9 above one minute) is not."""
    assert whole_minutes(minutes) == whole


@pytest.mark.parametrize(
    ("minutes", "error", "message"),
    [
        (-1.0, InvalidArgument, "minutes is -1.0; it must be finite and >= 0"),
        (math.nan, InvalidArgument, "minutes is nan; it must be finite and >= 0"),
        (math.inf, InvalidArgument, "minutes is inf; it must be finite and >= 0"),
        ("3", ArgumentTypeError, "minutes is str; it must be a number"),
        (None, ArgumentTypeError, "minutes is NoneType; it must be a number"),
    ],
)
def test_whole_minutes_rejects_what_is_not_a_wait(
    minutes: Any, error: type[Exception], message: str
) -> None:
    """Only finite, non-negative numbers round to minutes."""
    with pytest.raises(error) as raised:
        whole_minutes(minutes)
    assert str(raised.value) == message


# --- status -------------------------------------------------------------------------------


def test_fifo_status_for_a_page() -> None:
    """A FIFO status: position, whole-minute wait, ISO and epoch times, no percentiles."""
    assert base_status() == {
        "queueing_method": "fifo",
        "wait_time_known": True,
        "estimated_wait_minutes": 3,
        "queue_position": 26,
        "wait_time_percentiles": None,
        "users_waiting": 500,
        "queue_is_full": False,
        "refresh_interval_seconds": 20.0,
        "last_updated": "2021-08-03T23:46:00.000Z",
        "last_updated_epoch": 1628034360.0,
    }


def test_fifo_status_without_a_rate_still_shows_the_position() -> None:
    """Before the first complete minute the wait is unknown but the position is not."""
    page = base_status(let_in_per_minute=None, queue_is_full=True)
    assert page["wait_time_known"] is False
    assert page["estimated_wait_minutes"] is None
    assert page["queue_position"] == 26
    assert page["queue_is_full"] is True


def test_random_status_for_a_page() -> None:
    """A random status: the median as the wait, the percentiles in whole minutes, no
    position (a raffle has none) even when users_ahead is given."""
    assert base_status(
        queueing_method="random", users_waiting=1000, let_in_per_minute=100.0, now=0
    ) == {
        "queueing_method": "random",
        "wait_time_known": True,
        "estimated_wait_minutes": 7,
        "queue_position": None,
        "wait_time_percentiles": {"p25": 3, "p50": 7, "p75": 14},
        "users_waiting": 1000,
        "queue_is_full": False,
        "refresh_interval_seconds": 20.0,
        "last_updated": "1970-01-01T00:00:00.000Z",
        "last_updated_epoch": 0.0,
    }


def test_random_status_without_a_rate_shows_no_numbers() -> None:
    """An unknown random wait has neither a median nor percentiles."""
    page = base_status(queueing_method="random", users_ahead=None, let_in_per_minute=0.0)
    assert (page["wait_time_known"], page["estimated_wait_minutes"]) == (False, None)
    assert page["wait_time_percentiles"] is None


def test_random_status_names_custom_percentiles_without_float_noise() -> None:
    """Percentile keys are 100 * p in up to 10 significant digits: 0.29 is p29, not
    p28.999999999999996; the median is computed even when not asked for."""
    page = base_status(
        queueing_method="random",
        users_waiting=1000,
        let_in_per_minute=100.0,
        percentiles=(0.1, 0.29, 0.333, 0.9),
    )
    assert page["wait_time_percentiles"] == {"p10": 1, "p29": 4, "p33.3": 4, "p90": 22}
    assert page["estimated_wait_minutes"] == 7


def test_passthrough_and_reject_statuses() -> None:
    """Passthrough lets everyone in (0 minutes, known); reject lets nobody in (unknown)."""
    through = base_status(queueing_method="passthrough", users_ahead=None)
    assert (through["wait_time_known"], through["estimated_wait_minutes"]) == (True, 0)
    closed = base_status(queueing_method="reject")
    assert (closed["wait_time_known"], closed["estimated_wait_minutes"]) == (False, None)
    assert through["queue_position"] is None
    assert closed["queue_position"] is None


@pytest.mark.parametrize(
    ("now", "shown"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1.2345, "1970-01-01T00:00:01.234Z"),
        (1628034360.5, "2021-08-03T23:46:00.500Z"),
        (253402300799.999, "9999-12-31T23:59:59.998Z"),
    ],
)
def test_last_updated_is_iso_8601_utc_with_milliseconds(now: float, shown: str) -> None:
    """last_updated is now in UTC, milliseconds truncated, with a Z; the epoch is a float."""
    page = base_status(now=now)
    assert page["last_updated"] == shown
    assert page["last_updated_epoch"] == float(now)
    assert isinstance(page["last_updated_epoch"], float)


@given(
    st.sampled_from(["fifo", "random", "passthrough", "reject"]),
    st.floats(min_value=0, max_value=253402300799.999),
    st.floats(min_value=0.001, max_value=1e6),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e300)),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.booleans(),
    st.lists(chances, min_size=1, max_size=4),
)
def test_status_is_always_strict_json_with_stable_keys(
    method: str,
    now: float,
    refresh_interval: float,
    users_waiting: int,
    rate: float | None,
    users_ahead: int,
    queue_is_full: bool,
    percentiles: list[float],
) -> None:
    """Whatever the inputs, the status has the same keys, survives strict json.dumps (no NaN
    or infinity) and round-trips; a known wait is a non-negative int."""
    page = status(
        queueing_method=method,
        now=now,
        refresh_interval=refresh_interval,
        users_waiting=users_waiting,
        let_in_per_minute=rate,
        users_ahead=users_ahead,
        queue_is_full=queue_is_full,
        percentiles=percentiles,
    )
    assert set(page) == STATUS_KEYS
    assert json.loads(json.dumps(page, allow_nan=False)) == page
    if page["wait_time_known"]:
        assert isinstance(page["estimated_wait_minutes"], int)
        assert page["estimated_wait_minutes"] >= 0
    else:
        assert page["estimated_wait_minutes"] is None
        assert page["wait_time_percentiles"] is None


def test_estimates_do_not_depend_on_the_kernel_path(impl: Any) -> None:
    """No kernel is involved: the same numbers on either path."""
    assert fifo_wait(30, 10.0).minutes == 3.0
    assert base_status(queueing_method="random", users_waiting=20, let_in_per_minute=10.0)[
        "wait_time_percentiles"
    ] == {"p25": 1, "p50": 1, "p75": 2}


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("users_ahead", "rate", "error", "message"),
    [
        (-1, 1.0, InvalidArgument, "users_ahead is -1; counts must be ints in 0..2**63 - 1"),
        (
            2**63,
            1.0,
            InvalidArgument,
            "users_ahead is 9223372036854775808; counts must be ints in 0..2**63 - 1",
        ),
        (1.0, 1.0, ArgumentTypeError, "users_ahead is float; it must be an int"),
        (math.nan, 1.0, ArgumentTypeError, "users_ahead is float; it must be an int"),
        (True, 1.0, ArgumentTypeError, "users_ahead is bool; it must be an int"),
        (None, 1.0, ArgumentTypeError, "users_ahead is NoneType; it must be an int"),
        (
            1,
            -1.0,
            InvalidArgument,
            "let_in_per_minute is -1.0; rates must be finite and >= 0 users per minute",
        ),
        (
            1,
            -1,
            InvalidArgument,
            "let_in_per_minute is -1; rates must be finite and >= 0 users per minute",
        ),
        (
            1,
            math.nan,
            InvalidArgument,
            "let_in_per_minute is nan; rates must be finite and >= 0 users per minute",
        ),
        (
            1,
            math.inf,
            InvalidArgument,
            "let_in_per_minute is inf; rates must be finite and >= 0 users per minute",
        ),
        (
            1,
            -math.inf,
            InvalidArgument,
            "let_in_per_minute is -inf; rates must be finite and >= 0 users per minute",
        ),
        (1, "10", ArgumentTypeError, "let_in_per_minute is str; it must be a number or None"),
        (1, False, ArgumentTypeError, "let_in_per_minute is bool; it must be a number or None"),
    ],
)
def test_fifo_wait_rejects_bad_counts_and_rates(
    users_ahead: Any, rate: Any, error: type[Exception], message: str
) -> None:
    """Negative, NaN, infinite or mistyped counts and rates raise with the exact message."""
    with pytest.raises(error) as raised:
        fifo_wait(users_ahead, rate)
    assert str(raised.value) == message


def test_a_rate_too_large_for_a_float_is_rejected() -> None:
    """An int rate beyond the float range is not finite and is refused, not crashed on."""
    with pytest.raises(InvalidArgument, match=r"rates must be finite and >= 0 users per minute$"):
        fifo_wait(1, 10**400)


@pytest.mark.parametrize(
    ("users_waiting", "percentiles", "error", "message"),
    [
        (-5, (0.5,), InvalidArgument, "users_waiting is -5; counts must be ints in 0..2**63 - 1"),
        (5.0, (0.5,), ArgumentTypeError, "users_waiting is float; it must be an int"),
        (5, (), InvalidArgument, "percentiles is empty; give at least one chance in (0, 1)"),
        (5, (0.0,), InvalidArgument, "percentiles[0] is 0.0; it must be in (0, 1)"),
        (5, (0.5, 1.0), InvalidArgument, "percentiles[1] is 1.0; it must be in (0, 1)"),
        (5, (0.5, 1), InvalidArgument, "percentiles[1] is 1; it must be in (0, 1)"),
        (5, (-0.25,), InvalidArgument, "percentiles[0] is -0.25; it must be in (0, 1)"),
        (5, (math.nan,), InvalidArgument, "percentiles[0] is nan; it must be in (0, 1)"),
        (5, ("0.5",), ArgumentTypeError, "percentiles[0] is str; it must be a number"),
        (5, (True,), ArgumentTypeError, "percentiles[0] is bool; it must be a number"),
        (5, 0.5, ArgumentTypeError, "percentiles is float; it must be a sequence of numbers"),
        (5, "0.5", ArgumentTypeError, "percentiles is str; it must be a sequence of numbers"),
        (5, {0.5}, ArgumentTypeError, "percentiles is set; it must be a sequence of numbers"),
    ],
)
def test_random_wait_rejects_bad_counts_and_chances(
    users_waiting: Any, percentiles: Any, error: type[Exception], message: str
) -> None:
    """Chances must be numbers strictly between 0 and 1; counts non-negative ints."""
    with pytest.raises(error) as raised:
        random_wait(users_waiting, 1.0, percentiles=percentiles)
    assert str(raised.value) == message


def test_random_wait_checks_its_chances_even_without_a_rate() -> None:
    """Bad percentiles are an error even when the wait would be unknown anyway."""
    with pytest.raises(InvalidArgument, match=r"^percentiles\[0\] is 2; it must be in \(0, 1\)$"):
        random_wait(5, None, percentiles=(2,))


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"queueing_method": "lifo"},
            InvalidArgument,
            "queueing_method is 'lifo'; it must be one of fifo, random, passthrough, reject",
        ),
        (
            {"queueing_method": None},
            ArgumentTypeError,
            "queueing_method is NoneType; it must be a str",
        ),
        (
            {"now": -1.0},
            InvalidArgument,
            "now is -1.0; it must be seconds since the Unix epoch in 0..253402300799.999 (the year 9999)",
        ),
        (
            {"now": 1e12},
            InvalidArgument,
            "now is 1000000000000.0; it must be seconds since the Unix epoch in 0..253402300799.999 (the year 9999)",
        ),
        (
            {"now": math.nan},
            InvalidArgument,
            "now is nan; it must be seconds since the Unix epoch in 0..253402300799.999 (the year 9999)",
        ),
        (
            {"now": math.inf},
            InvalidArgument,
            "now is inf; it must be seconds since the Unix epoch in 0..253402300799.999 (the year 9999)",
        ),
        ({"now": "now"}, ArgumentTypeError, "now is str; it must be a number"),
        (
            {"refresh_interval": 0},
            InvalidArgument,
            "refresh_interval is 0; it must be finite and > 0 seconds",
        ),
        (
            {"refresh_interval": -20.0},
            InvalidArgument,
            "refresh_interval is -20.0; it must be finite and > 0 seconds",
        ),
        (
            {"refresh_interval": math.nan},
            InvalidArgument,
            "refresh_interval is nan; it must be finite and > 0 seconds",
        ),
        (
            {"refresh_interval": math.inf},
            InvalidArgument,
            "refresh_interval is inf; it must be finite and > 0 seconds",
        ),
        (
            {"refresh_interval": None},
            ArgumentTypeError,
            "refresh_interval is NoneType; it must be a number",
        ),
        (
            {"users_waiting": -1},
            InvalidArgument,
            "users_waiting is -1; counts must be ints in 0..2**63 - 1",
        ),
        (
            {"users_ahead": -1},
            InvalidArgument,
            "users_ahead is -1; counts must be ints in 0..2**63 - 1",
        ),
        (
            {"queueing_method": "random", "users_ahead": -1},
            InvalidArgument,
            "users_ahead is -1; counts must be ints in 0..2**63 - 1",
        ),
        (
            {"users_ahead": None},
            InvalidArgument,
            "users_ahead is None; a fifo status needs the users ahead",
        ),
        (
            {"let_in_per_minute": math.nan},
            InvalidArgument,
            "let_in_per_minute is nan; rates must be finite and >= 0 users per minute",
        ),
        ({"queue_is_full": 1}, ArgumentTypeError, "queue_is_full is int; it must be a bool"),
        (
            {"percentiles": (0.5, 1.5)},
            InvalidArgument,
            "percentiles[1] is 1.5; it must be in (0, 1)",
        ),
        (
            {"queueing_method": "passthrough", "percentiles": ()},
            InvalidArgument,
            "percentiles is empty; give at least one chance in (0, 1)",
        ),
    ],
)
def test_status_rejects_bad_arguments(
    overrides: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every status argument is checked, whatever the method, with the exact message."""
    with pytest.raises(error) as raised:
        base_status(**overrides)
    assert str(raised.value) == message
