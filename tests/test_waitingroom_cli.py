"""``lbkit waitingroom estimate``: the FIFO and random estimates from the command line, as
text and JSON, and its usage errors."""

from __future__ import annotations

import io
import json
import math

import pytest

from lbkit.cli import main
from lbkit.waitingroom.estimate import random_wait, whole_minutes


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def test_fifo_estimate_is_users_ahead_over_the_rate() -> None:
    """5,000 users ahead at 200 a minute: position 5,001, a 25-minute wait."""
    status, text = run_cli("waitingroom", "estimate", "--waiting", "5000", "--let-in", "200")
    assert status == 0
    assert text.splitlines() == [
        "position  5,001 (5,000 ahead, 200 let in per minute)",
        "wait      25 minutes",
    ]


def test_random_estimate_shows_the_quartiles() -> None:
    """With P = 200 / 5,000 the quartiles are log(1 - p) / log(1 - P), rounded up."""
    status, text = run_cli(
        "waitingroom", "estimate", "--waiting", "5000", "--let-in", "200", "--method", "random"
    )
    assert status == 0
    expected = [math.ceil(math.log(1 - p) / math.log(1 - 0.04)) for p in (0.25, 0.5, 0.75)]
    assert expected == [8, 17, 34]
    assert text.splitlines() == [
        "waiting   5,000 users, 200 let in per minute",
        "chance    4 % per minute for each waiting user",
        "wait      25 %: 8 minutes, 50 %: 17 minutes, 75 %: 34 minutes",
    ]


def test_random_estimate_allows_for_a_growing_queue() -> None:
    """--growth G gives random_wait's growth-aware quartiles: longer while the queue grows,
    shorter while it drains, and --growth 0 is the plain estimate."""
    argv = ["waitingroom", "estimate", "--waiting", "5000", "--let-in", "200", "--method", "random"]
    for growth in (200.0, -100.0):
        _, text = run_cli(*argv, "--growth", f"{growth:g}")
        estimate = random_wait(5000, 200.0, growth_per_minute=growth)
        assert estimate.minutes is not None
        shown = [whole_minutes(minutes) for minutes in estimate.minutes]
        assert text.splitlines() == [
            f"waiting   5,000 users, 200 let in per minute, the queue growing by {growth:g} a minute",
            "chance    4 % per minute for each waiting user",
            f"wait      25 %: {shown[0]} minutes, 50 %: {shown[1]} minutes, 75 %: {shown[2]} minutes",
        ]
        plain = [8, 17, 34]
        assert shown > plain if growth > 0 else shown < plain
    assert run_cli(*argv, "--growth", "0") == run_cli(*argv)


def test_json_output() -> None:
    """--json prints the same numbers as one JSON object."""
    _, fifo = run_cli("waitingroom", "estimate", "--waiting", "10", "--let-in", "4", "--json")
    assert json.loads(fifo) == {
        "queueing_method": "fifo",
        "queue_position": 11,
        "wait_time_known": True,
        "estimated_wait_minutes": 3,
    }
    _, chance = run_cli(
        "waitingroom",
        "estimate",
        "--waiting",
        "100",
        "--let-in",
        "50",
        "--method",
        "random",
        "--json",
    )
    assert json.loads(chance) == {
        "queueing_method": "random",
        "wait_time_known": True,
        "chance_per_minute": 0.5,
        "wait_time_percentiles": {"p25": 1, "p50": 1, "p75": 2},
    }


def test_nobody_let_in_means_unknown() -> None:
    """With a let-in rate of 0 the wait is unknown, for both methods."""
    _, fifo = run_cli("waitingroom", "estimate", "--waiting", "10", "--let-in", "0")
    assert fifo.splitlines()[-1] == "wait      unknown (nobody is being let in)"
    _, chance = run_cli(
        "waitingroom",
        "estimate",
        "--waiting",
        "10",
        "--let-in",
        "0",
        "--method",
        "random",
        "--json",
    )
    assert json.loads(chance)["wait_time_known"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--waiting", "-1", "--let-in", "2"], "--waiting is -1; it must be >= 0"),
        (["--waiting", "1", "--let-in", "-2"], "--let-in is -2; it must be finite and >= 0"),
        (["--waiting", "1", "--let-in", "nan"], "--let-in is nan; it must be finite and >= 0"),
        (["--waiting", "1", "--let-in", "2", "--method", "lifo"], "invalid choice: 'lifo'"),
        (
            ["--waiting", "1", "--let-in", "2", "--method", "random", "--growth", "inf"],
            "--growth is inf; it must be finite",
        ),
        (
            ["--waiting", "1", "--let-in", "2", "--growth", "5"],
            "--growth applies to --method random",
        ),
    ],
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Negative counts, bad rates and unknown methods are usage errors (exit 2)."""
    with pytest.raises(SystemExit) as raised:
        run_cli("waitingroom", "estimate", *argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
