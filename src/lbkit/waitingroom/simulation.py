"""A seeded simulation of a waiting room under a crowd: who gets in when, how long each user
waits, and how good the waits shown on the queue page were.

:func:`simulate` drives a real :class:`~lbkit.waitingroom.room.WaitingRoom` (on a
:class:`~lbkit.waitingroom.store.MemoryStore`, with a virtual clock) with simulated browsers.
Nothing of the room's logic is re-implemented here: every request is one
:meth:`~lbkit.waitingroom.room.WaitingRoom.handle` call with the cookie the browser holds, so
the simulation shows what a deployed room does. Each simulated user:

1. arrives at their arrival time with no cookie;
2. while queued, keeps the cookie the room returned and checks in again exactly when the
   room's ``refresh_interval`` says (the user's own jittered interval, sealed in the cookie),
   as the waiting page's automatic refresh does; users never give up;
3. once admitted, browses for ``browse_time`` seconds, making a request every
   ``page_interval`` seconds (each renews the session, as a browser's page views do), and then
   leaves: their session lapses ``session_duration`` after their last request, by the room's
   own session rules, and until then they count as active.

Events are kept in a heap ordered by time (ties in the order they were scheduled), so a run is
deterministic: the same arguments and seed give the same :class:`SimulationResult`, and the
same :meth:`~SimulationResult.to_json` bytes, on the compiled and on the pure kernels.

What a run reports (:class:`SimulationResult`):

* per minute, the arrivals, the admissions (never above ``new_users_per_minute``), the users
  queued at the minute's end and the most active users (never above ``total_active_users``);
* the wait of each user (admission time minus arrival time) summarised by arrival minute, and
  as a heatmap of arrival minute against wait minute;
* the **rank correlation** (Spearman's rho) between arrival time and wait: near 1 when the
  queue is first come, first served, near 0 for a raffle;
* the **estimate errors**: every queued check-in shows the user an estimate (FIFO: the
  minutes; random: the 25th, 50th and 75th percentiles), and the simulation knows when that
  user was in fact admitted. For each percentile ``p`` shown, the median estimate shown over
  the check-ins of a window is compared with the ``p``-quantile of those check-ins' realised
  remaining waits (for FIFO, whose estimate is a point, with the median). The window is, by
  default, the time users arrive (the steady state of a constant arrival rate); errors per
  minute of showing are reported too.

>>> from lbkit.waitingroom import WaitingRoomConfig, simulate, uniform_arrivals
>>> config = WaitingRoomConfig(total_active_users=200, new_users_per_minute=20)
>>> result = simulate(config, uniform_arrivals(90, 3.0), browse_time=30.0, seed=1)
>>> [(row.minute, row.arrived, row.admitted) for row in result.minutes][:5]
[(0, 30, 20), (1, 30, 20), (2, 30, 20), (3, 0, 20), (4, 0, 10)]
>>> result.max_admitted_per_minute, round(result.rank_correlation, 2)
(20, 0.73)
"""

from __future__ import annotations

import heapq
import json
import math
import random
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError
from lbkit.waitingroom.allocator import MINUTE
from lbkit.waitingroom.config import WaitingRoomConfig
from lbkit.waitingroom.estimate import DEFAULT_PERCENTILES, _percentile_key
from lbkit.waitingroom.room import WaitingRoom
from lbkit.waitingroom.store import MemoryStore

__all__ = [
    "MAX_ARRIVAL",
    "MAX_USERS",
    "METHODS",
    "EstimateError",
    "MinuteCounts",
    "SimulationResult",
    "WaitSummary",
    "plot_heatmap",
    "simulate",
    "spearman",
    "uniform_arrivals",
]

#: The queueing methods a simulation compares (passthrough has no queue, reject admits nobody).
METHODS: Final = ("fifo", "random")
#: The most users one simulation takes (about 1 GB of events at the top, hours of run time).
MAX_USERS: Final = 5_000_000
#: The latest arrival time in seconds. Arrivals are on the room's clock, which shows dates up
#: to the year 9999, and a year is left for the queue to drain.
MAX_ARRIVAL: Final = 253_370_764_800.0
# The longest browse_time and page_interval, seconds (a day): longer is a mistake in units.
_MAX_BROWSE: Final = 86_400.0
# The simulated browser's key and key id: a simulation keeps no secret, and a fixed key keeps
# runs reproducible (the cookies are still sealed and opened for real).
_KEY_ID: Final = 1
_KEY: Final = bytes(range(32))


@attrs.frozen
class MinuteCounts:
    """One minute of a simulation.

    Attributes:
        minute: the minute id, ``floor(seconds / 60)`` on the room's clock.
        arrived: users whose first request fell in this minute.
        admitted: users admitted in this minute (never above ``new_users_per_minute``).
        queued: users arrived but not yet admitted at the minute's end.
        active: the most users with a live session at any moment of the minute (never above
            ``total_active_users``).

    Runtime complexity: O(1).

    >>> MinuteCounts(minute=3, arrived=10, admitted=5, queued=5, active=5).queued
    5
    """

    minute: int
    arrived: int
    admitted: int
    queued: int
    active: int


@attrs.frozen
class WaitSummary:
    """The waits of the users who arrived in one minute, seconds (quantiles interpolate
    linearly between the sorted waits).

    Runtime complexity: O(1).

    >>> WaitSummary(minute=0, users=1, mean=0.0, median=0.0, p90=0.0, maximum=0.0).users
    1
    """

    minute: int
    users: int
    mean: float
    median: float
    p90: float
    maximum: float


@attrs.frozen
class EstimateError:
    """How the estimates shown at one percentile compare with the waits that followed.

    Attributes:
        percentile: the chance ``p`` the estimate is for (0.5 for FIFO's single estimate).
        samples: the queued check-ins that showed a known estimate.
        estimated_minutes: the median of the whole minutes shown for ``p``.
        realised_minutes: the ``p``-quantile of those check-ins' realised remaining waits
            (admission time minus check-in time), minutes.
        relative_error: ``estimated_minutes / realised_minutes - 1``: positive when the page
            promised longer than it took; ``None`` when the realised quantile is 0.
        median_absolute_error_minutes: the median over the check-ins of ``|shown - realised|``
            minutes: how far one user's number was from their own wait (for a random queue
            that spread is the raffle's, not the estimate's fault).

    Runtime complexity: O(1).

    >>> EstimateError(percentile=0.5, samples=3, estimated_minutes=4.0, realised_minutes=4.0,
    ...               relative_error=0.0, median_absolute_error_minutes=0.5).relative_error
    0.0
    """

    percentile: float
    samples: int
    estimated_minutes: float
    realised_minutes: float
    relative_error: float | None
    median_absolute_error_minutes: float


@attrs.frozen
class SimulationResult:
    """What :func:`simulate` saw. Waits are seconds, estimates minutes (as the page shows).

    Attributes:
        method: ``"fifo"`` or ``"random"``.
        seed: the seed of the run.
        config: the room's configuration (with ``method`` as its queueing method).
        browse_time: seconds each admitted user browsed.
        page_interval: seconds between an admitted user's requests.
        requests: the room decisions made (:meth:`~lbkit.waitingroom.room.WaitingRoom.handle`
            calls).
        reasons: the decisions by :data:`~lbkit.waitingroom.room.REASONS` (only those seen).
        duration: seconds from the first arrival to the last request.
        minutes: one :class:`MinuteCounts` per minute, from the first arrival's to the last
            request's.
        max_admitted_per_minute: the most admissions of any minute.
        peak_active_users: the most users with a live session at any moment.
        waits: each user's wait, seconds, in the order of ``arrivals``.
        arrivals: the arrival times given, seconds.
        wait_by_arrival_minute: one :class:`WaitSummary` per arrival minute with arrivals.
        heatmap: ``{(arrival minute, wait minute): users}`` with the wait minute
            ``floor(wait / 60)``, in key order.
        rank_correlation: Spearman's rho between arrival time and wait, ties ranked by their
            mean rank; ``None`` when either is constant (for instance nobody waited).
        estimate_window: ``(start, end)`` seconds: the check-ins whose estimates count in
            ``estimate_errors``.
        estimate_errors: one :class:`EstimateError` per percentile shown, over the window
            (empty when no check-in in it showed a known estimate).
        estimate_errors_by_minute: ``{minute shown: (EstimateError, ...)}`` over the whole
            run.

    Runtime complexity: O(1) per attribute; :meth:`as_dict` and :meth:`to_json` O(minutes +
    heatmap cells).

    >>> from lbkit.waitingroom import WaitingRoomConfig, simulate, uniform_arrivals
    >>> config = WaitingRoomConfig(total_active_users=10, new_users_per_minute=10)
    >>> result = simulate(config, [0.0, 1.0], browse_time=0.0)
    >>> result.waits, result.rank_correlation, dict(result.reasons)
    ((0.0, 0.0), None, {'admitted': 2})
    """

    method: str
    seed: int
    config: WaitingRoomConfig
    browse_time: float
    page_interval: float
    requests: int
    reasons: Mapping[str, int]
    duration: float
    minutes: tuple[MinuteCounts, ...] = attrs.field(repr=False)
    max_admitted_per_minute: int
    peak_active_users: int
    waits: tuple[float, ...] = attrs.field(repr=False)
    arrivals: tuple[float, ...] = attrs.field(repr=False)
    wait_by_arrival_minute: tuple[WaitSummary, ...] = attrs.field(repr=False)
    heatmap: Mapping[tuple[int, int], int] = attrs.field(repr=False)
    rank_correlation: float | None
    estimate_window: tuple[float, float]
    estimate_errors: tuple[EstimateError, ...]
    estimate_errors_by_minute: Mapping[int, tuple[EstimateError, ...]] = attrs.field(repr=False)

    @property
    def users(self) -> int:
        """How many users the run simulated.

        Runtime complexity: O(1).
        """
        return len(self.arrivals)

    def estimate_error(self, percentile: float = 0.5) -> EstimateError | None:
        """The windowed :class:`EstimateError` of ``percentile``, or ``None`` when it was
        not shown (or no estimate in the window was known).

        Runtime complexity: O(percentiles shown).

        >>> from lbkit.waitingroom import WaitingRoomConfig, simulate, uniform_arrivals
        >>> config = WaitingRoomConfig(total_active_users=10, new_users_per_minute=10)
        >>> simulate(config, [0.0]).estimate_error(0.5) is None  # nobody queued
        True
        """
        for error in self.estimate_errors:
            if error.percentile == percentile:
                return error
        return None

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready plain data: everything but the per-user ``waits`` and
        ``arrivals`` (summarised by ``wait_by_arrival_minute`` and ``heatmap``, a list of
        ``[arrival minute, wait minute, users]``).

        Runtime complexity: O(minutes + heatmap cells).

        >>> from lbkit.waitingroom import WaitingRoomConfig, simulate, uniform_arrivals
        >>> config = WaitingRoomConfig(total_active_users=10, new_users_per_minute=10)
        >>> simulate(config, [0.0, 1.0]).as_dict()["heatmap"]
        [[0, 0, 2]]
        """
        config = self.config
        return {
            "method": self.method,
            "seed": self.seed,
            "users": self.users,
            "config": {
                "total_active_users": config.total_active_users,
                "new_users_per_minute": config.new_users_per_minute,
                "session_duration": config.session_duration,
                "refresh_interval": config.refresh_interval,
                "refresh_jitter": config.refresh_jitter,
                "queued_cookie_lifetime": config.queued_cookie_lifetime,
            },
            "browse_time": self.browse_time,
            "page_interval": self.page_interval,
            "requests": self.requests,
            "reasons": dict(self.reasons),
            "duration_seconds": self.duration,
            "max_admitted_per_minute": self.max_admitted_per_minute,
            "peak_active_users": self.peak_active_users,
            "rank_correlation": self.rank_correlation,
            "minutes": [attrs.asdict(row) for row in self.minutes],
            "wait_by_arrival_minute": [
                {
                    "minute": row.minute,
                    "users": row.users,
                    "mean_seconds": row.mean,
                    "median_seconds": row.median,
                    "p90_seconds": row.p90,
                    "max_seconds": row.maximum,
                }
                for row in self.wait_by_arrival_minute
            ],
            "heatmap": [[arrival, wait, users] for (arrival, wait), users in self.heatmap.items()],
            "estimate_window": list(self.estimate_window),
            "estimate_errors": [attrs.asdict(error) for error in self.estimate_errors],
            "estimate_errors_by_minute": [
                {"minute": minute, "errors": [attrs.asdict(error) for error in errors]}
                for minute, errors in self.estimate_errors_by_minute.items()
            ],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`as_dict` as JSON text, keys sorted: the same run gives the same bytes.

        Runtime complexity: O(minutes + heatmap cells).

        >>> from lbkit.waitingroom import WaitingRoomConfig, simulate, uniform_arrivals
        >>> config = WaitingRoomConfig(total_active_users=10, new_users_per_minute=10)
        >>> text = simulate(config, [0.0]).to_json()
        >>> text[:50]
        '{"browse_time": 60.0, "config": {"new_users_per_mi'
        >>> text == simulate(config, [0.0]).to_json()
        True
        """
        return json.dumps(self.as_dict(), sort_keys=True, indent=indent, allow_nan=False)


def uniform_arrivals(
    users: int, minutes: float, *, start: float = 0.0, seed: int | None = None
) -> tuple[float, ...]:
    """Arrival times, seconds, of ``users`` users arriving at a constant rate over
    ``minutes`` minutes from ``start``: evenly spaced (``start + i * span / users``), or with
    ``seed`` drawn uniformly at random and sorted (what independent users do). A constant
    rate above the room's admission rate is the steady state of a spike.

    Raises:
        ConfigError: ``users`` not in 1..:data:`MAX_USERS`, ``minutes`` not finite and > 0,
            ``start`` not finite and >= 0, a seed out of 0..2**64 - 1.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(users), O(users log users) with a seed.

    >>> uniform_arrivals(4, 1.0)
    (0.0, 15.0, 30.0, 45.0)
    >>> len(uniform_arrivals(10_000, 30.0, seed=7))
    10000
    """
    count = _int(users, "users", 1, MAX_USERS)
    span = _number(minutes, "minutes") * MINUTE
    if not math.isfinite(span) or span <= 0.0:
        raise ConfigError(f"minutes is {minutes!r}; it must be finite and > 0")
    origin = _number(start, "start")
    if not 0.0 <= origin <= MAX_ARRIVAL - span:
        raise ConfigError(f"start is {start!r}; it must be in 0..{MAX_ARRIVAL - span:g} seconds")
    if seed is None:
        return tuple(origin + index * span / count for index in range(count))
    draw = random.Random(_int(seed, "seed", 0, 2**64 - 1)).random
    return tuple(sorted(origin + draw() * span for _ in range(count)))


def simulate(
    config: WaitingRoomConfig,
    arrivals: Iterable[float],
    *,
    browse_time: float = 60.0,
    method: str | None = None,
    seed: int = 0,
    page_interval: float = 15.0,
    window: tuple[float, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Run a waiting room with users arriving at ``arrivals`` (see the module docstring).

    Args:
        config: the room's configuration. ``queue_all`` must be off (nobody would get in).
        arrivals: each user's arrival time, seconds on the room's clock (minute ``m`` is
            seconds ``60 m`` to ``60 m + 60``), in any order, finite and in
            0..:data:`MAX_ARRIVAL`; at least one and at most :data:`MAX_USERS`.
        browse_time: seconds an admitted user browses before leaving, finite, in 0..86400.
        method: ``"fifo"`` or ``"random"``; ``None`` takes ``config.queueing_method``.
        seed: seeds the room's draws (the users' jittered refresh intervals) and the cookie
            nonces, an int in 0..2**64 - 1.
        page_interval: seconds between an admitted user's requests while browsing, finite, in
            (0, 86400].
        window: ``(start, end)`` seconds: the check-ins whose estimates count in
            :attr:`SimulationResult.estimate_errors`; by default from the first to the last
            arrival.
        progress: called now and then as ``progress(admitted users, users)`` (a progress bar),
            and once at the end.

    Raises:
        ConfigError: a value out of range, a method the simulator does not compare, a room
            that queues everybody, an empty ``arrivals``, a window that is empty or reversed.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(R log U) for R requests (each a room decision) and U users; R is
    about U * (mean wait / refresh interval + browse_time / page_interval).

    >>> from lbkit.waitingroom import WaitingRoomConfig, simulate, uniform_arrivals
    >>> config = WaitingRoomConfig(total_active_users=100, new_users_per_minute=10)
    >>> result = simulate(config, uniform_arrivals(30, 1.0), method="random", seed=3)
    >>> sum(row.admitted for row in result.minutes), result.max_admitted_per_minute
    (30, 10)
    """
    room_config, chosen = _checked_config(config, method)
    times = _arrivals(arrivals)
    browse = _seconds(browse_time, "browse_time", allow_zero=True)
    pause = _seconds(page_interval, "page_interval", allow_zero=False)
    run_seed = _int(seed, "seed", 0, 2**64 - 1)
    span = _window(window, times)
    if progress is not None and not callable(progress):
        raise ArgumentTypeError(f"progress is {type(progress).__name__}; it must be callable")
    return _Run(room_config, times, browse, pause, run_seed, progress).result(chosen, span)


def plot_heatmap(result: SimulationResult, path: str | Path, *, title: str | None = None) -> None:
    """Write ``result``'s heatmap as a PNG: arrival minute across, wait minute up, the colour
    the number of users. Needs matplotlib (``pip install 'lbkit[plot]'``); it draws with the
    ``Agg`` backend and writes no date, so the same result gives the same file.

    Raises:
        ImportError: matplotlib is not installed (the message says how to install it).
        ArgumentTypeError: ``result`` is not a :class:`SimulationResult`.
        OSError: ``path`` cannot be written.

    Runtime complexity: O(arrival minutes x wait minutes).

    >>> import os, tempfile
    >>> from pathlib import Path
    >>> from lbkit.waitingroom import WaitingRoomConfig, simulate, uniform_arrivals
    >>> config = WaitingRoomConfig(total_active_users=100, new_users_per_minute=10)
    >>> result = simulate(config, uniform_arrivals(30, 2.0))
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     png = os.path.join(directory, "fifo.png")
    ...     plot_heatmap(result, png)
    ...     Path(png).read_bytes()[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    if not isinstance(result, SimulationResult):
        raise ArgumentTypeError(f"result is {type(result).__name__}; it must be a SimulationResult")
    try:
        import matplotlib
    except ImportError as missing:
        raise ImportError(
            "plotting needs matplotlib, which is not installed: pip install 'lbkit[plot]'"
        ) from missing
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    arrival_minutes = [row.minute for row in result.wait_by_arrival_minute]
    first, last = arrival_minutes[0], arrival_minutes[-1]
    tallest = max(wait for _, wait in result.heatmap)
    grid = [[0] * (last - first + 1) for _ in range(tallest + 1)]
    for (arrival, wait), users in result.heatmap.items():
        grid[wait][arrival - first] = users
    figure = Figure(figsize=(8.0, 4.5), dpi=100)
    axes = figure.add_subplot()
    image = axes.imshow(
        grid,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        # Minutes counted from the first arrival's: epoch minute numbers mean nothing to a
        # reader (and matplotlib would print them as an offset).
        extent=(-0.5, last - first + 0.5, -0.5, tallest + 0.5),
    )
    figure.colorbar(image, ax=axes, label="users")
    axes.set_xlabel("arrival minute (from the first arrival's)")
    axes.set_ylabel("wait (whole minutes)")
    rho = "-" if result.rank_correlation is None else f"{result.rank_correlation:.2f}"
    axes.set_title(
        title
        or f"{result.method}: {result.users:,} users, "
        f"{result.config.new_users_per_minute:,} let in a minute, rank correlation {rho}"
    )
    figure.tight_layout()
    # No date or software version in the file: the same result gives the same bytes.
    figure.savefig(path, format="png", metadata={"Software": None})


# --- the run ---------------------------------------------------------------------------------


class _Run:
    """One simulation: the room, the event heap and each user's ledger."""

    def __init__(
        self,
        config: WaitingRoomConfig,
        arrivals: tuple[float, ...],
        browse_time: float,
        page_interval: float,
        seed: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.config = config
        self.arrivals = arrivals
        self.browse_time = browse_time
        self.page_interval = page_interval
        self.seed = seed
        self.progress = progress
        self.now = 0.0
        nonces = random.Random(f"lbkit waiting-room simulation nonces {seed}")
        self.room = WaitingRoom(
            config,
            keys={_KEY_ID: _KEY},
            primary=_KEY_ID,
            store=MemoryStore(),
            clock=self._clock,
            rng=random.Random(seed),
            nonce_source=nonces.randbytes,
        )
        users = len(arrivals)
        self.admitted_at = array("d", [math.nan]) * users
        self.session_ends = array("d", [0.0]) * users
        self.reasons: dict[str, int] = {}
        self.requests = 0
        self.last_request = 0.0
        # One row per queued check-in that showed a known estimate: who, when, and the
        # minutes shown per percentile (a column per percentile).
        self.shown_user = array("q")
        self.shown_at = array("d")
        self.percentiles: tuple[float, ...] = (
            (0.5,) if config.queueing_method == "fifo" else tuple(DEFAULT_PERCENTILES)
        )
        self.shown: list[array[float]] = [array("d") for _ in self.percentiles]
        self._run()

    def _clock(self) -> float:
        return self.now

    def _run(self) -> None:
        heap: list[tuple[float, int, int, str | None]] = [
            (moment, user, user, None) for user, moment in enumerate(self.arrivals)
        ]
        heapq.heapify(heap)
        sequence = len(heap)
        handle = self.room.handle
        push, pop = heapq.heappush, heapq.heappop
        reasons = self.reasons
        admitted_at, session_ends = self.admitted_at, self.session_ends
        browse, pause = self.browse_time, self.page_interval
        keys = [_percentile_key(p) for p in self.percentiles]
        fifo = self.config.queueing_method == "fifo"
        shown_user, shown_at, shown = self.shown_user, self.shown_at, self.shown
        users = len(self.arrivals)
        admitted = 0
        step = max(1, users // 200)
        progress = self.progress
        requests = 0
        moment = 0.0
        while heap:
            moment, _, user, token = pop(heap)
            self.now = moment
            decision = handle(token, now=moment)
            requests += 1
            reason = decision.reason
            reasons[reason] = reasons.get(reason, 0) + 1
            cookie = decision.cookie or token
            if decision.action == "admit":
                state = decision.cookie_state
                assert state is not None
                session_ends[user] = state.expires_at
                started = admitted_at[user]
                if started != started:  # NaN: this request admitted the user
                    admitted_at[user] = started = moment
                    admitted += 1
                    if progress is not None and admitted % step == 0:
                        progress(admitted, users)
                following = moment + pause
                if following <= started + browse:
                    push(heap, (following, sequence, user, cookie))
                    sequence += 1
            elif decision.action == "queue":
                interval = decision.refresh_interval
                status = decision.status
                assert interval is not None
                assert status is not None
                if status["wait_time_known"]:
                    shown_user.append(user)
                    shown_at.append(moment)
                    if fifo:
                        shown[0].append(status["estimated_wait_minutes"])
                    else:
                        percentiles = status["wait_time_percentiles"]
                        for column, key in zip(shown, keys, strict=True):
                            column.append(percentiles[key])
                push(heap, (moment + interval, sequence, user, cookie))
                sequence += 1
            else:  # pragma: no cover - fifo and random rooms never reject
                raise AssertionError(f"a {self.config.queueing_method} room rejected: {decision}")
        self.requests = requests
        self.last_request = moment
        if progress is not None:
            progress(admitted, users)

    # --- the report ------------------------------------------------------------------------

    def result(self, method: str, window: tuple[float, float]) -> SimulationResult:
        arrivals = self.arrivals
        admitted_at = self.admitted_at
        waits = tuple(admitted_at[user] - arrivals[user] for user in range(len(arrivals)))
        minutes, peak = self._minutes()
        config = self.config
        busiest = max(row.admitted for row in minutes)
        # The room's two limits, checked by the store at every admission: broken here would
        # be a bug in lbkit, never a matter of the arguments.
        assert busiest <= config.new_users_per_minute, (busiest, config)
        assert peak <= config.total_active_users, (peak, config)
        return SimulationResult(
            method=method,
            seed=self.seed,
            config=config,
            browse_time=self.browse_time,
            page_interval=self.page_interval,
            requests=self.requests,
            reasons=MappingProxyType(dict(sorted(self.reasons.items()))),
            duration=self.last_request - min(arrivals),
            minutes=minutes,
            max_admitted_per_minute=busiest,
            peak_active_users=peak,
            waits=waits,
            arrivals=arrivals,
            wait_by_arrival_minute=_wait_summaries(arrivals, waits),
            heatmap=_heatmap(arrivals, waits),
            rank_correlation=spearman(arrivals, waits),
            estimate_window=window,
            estimate_errors=self._errors(lambda moment: window[0] <= moment <= window[1]),
            estimate_errors_by_minute=self._errors_by_minute(),
        )

    def _minutes(self) -> tuple[tuple[MinuteCounts, ...], int]:
        """The per-minute counts and the peak of active users, by a sweep over the sessions:
        a session counts from its admission until the whole second its cookie lapses at
        (rounded up, as the store counts it); a lapse at a second comes before an admission
        at the same second, as in the store."""
        arrivals, admitted_at = self.arrivals, self.admitted_at
        first = math.floor(min(arrivals) / MINUTE)
        last = math.floor(self.last_request / MINUTE)
        span = last - first + 1
        arrived = [0] * span
        admitted = [0] * span
        for user, moment in enumerate(arrivals):
            arrived[math.floor(moment / MINUTE) - first] += 1
            admitted[math.floor(admitted_at[user] / MINUTE) - first] += 1
        changes = [(float(math.ceil(end)), -1) for end in self.session_ends]
        changes.extend((moment, 1) for moment in admitted_at)
        changes.sort()
        active = [0] * span
        current = peak = position = 0
        for index in range(span):
            begin = (first + index) * MINUTE
            while position < len(changes) and changes[position][0] <= begin:
                current += changes[position][1]
                position += 1
            busiest = current  # the sessions running into the minute
            while position < len(changes) and changes[position][0] < begin + MINUTE:
                current += changes[position][1]
                position += 1
                busiest = max(busiest, current)
            active[index] = busiest
            peak = max(peak, busiest)
        rows: list[MinuteCounts] = []
        waiting = 0
        for index in range(span):
            waiting += arrived[index] - admitted[index]
            rows.append(
                MinuteCounts(
                    minute=first + index,
                    arrived=arrived[index],
                    admitted=admitted[index],
                    queued=waiting,
                    active=active[index],
                )
            )
        return tuple(rows), peak

    def _errors(self, keep: Callable[[float], bool]) -> tuple[EstimateError, ...]:
        rows = [row for row, moment in enumerate(self.shown_at) if keep(moment)]
        return self._errors_of(rows)

    def _errors_by_minute(self) -> Mapping[int, tuple[EstimateError, ...]]:
        by_minute: dict[int, list[int]] = {}
        for row, moment in enumerate(self.shown_at):
            by_minute.setdefault(math.floor(moment / MINUTE), []).append(row)
        return MappingProxyType(
            {minute: self._errors_of(rows) for minute, rows in sorted(by_minute.items())}
        )

    def _errors_of(self, rows: list[int]) -> tuple[EstimateError, ...]:
        if not rows:
            return ()
        admitted_at, shown_user, shown_at = self.admitted_at, self.shown_user, self.shown_at
        realised = [(admitted_at[shown_user[row]] - shown_at[row]) / MINUTE for row in rows]
        ordered = sorted(realised)
        errors: list[EstimateError] = []
        for percentile, column in zip(self.percentiles, self.shown, strict=True):
            estimates = [column[row] for row in rows]
            # The realised waits in units of what each check-in was shown: calibrated, their
            # p-quantile is 1 at every moment, so pooling moments with different estimates
            # keeps the measure honest. A shown 0 ("in at your next check-in") has no scale.
            ratios = sorted(
                real / shown for shown, real in zip(estimates, realised, strict=True) if shown > 0.0
            )
            scale = _quantile(ratios, percentile) if ratios else 0.0
            misses = sorted(
                abs(shown - real) for shown, real in zip(estimates, realised, strict=True)
            )
            errors.append(
                EstimateError(
                    percentile=percentile,
                    samples=len(rows),
                    estimated_minutes=_quantile(sorted(estimates), 0.5),
                    realised_minutes=_quantile(ordered, percentile),
                    relative_error=None if scale == 0.0 else 1.0 / scale - 1.0,
                    median_absolute_error_minutes=_quantile(misses, 0.5),
                )
            )
        return tuple(errors)


# --- statistics --------------------------------------------------------------------------------


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation of two equally long sequences: the Pearson correlation of
    their ranks, ties given the mean of the ranks they span. ``None`` when there are fewer
    than two values or either sequence is constant (the correlation is undefined).

    Raises:
        ConfigError: the sequences differ in length.

    Runtime complexity: O(n log n).

    >>> from lbkit.waitingroom.simulation import spearman
    >>> spearman([1, 2, 3, 4], [10, 20, 30, 40]), spearman([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    >>> spearman([1, 2, 3], [5, 5, 5]) is None
    True
    """
    if len(xs) != len(ys):
        raise ConfigError(f"xs has {len(xs)} values and ys {len(ys)}; they must be equally long")
    if len(xs) < 2:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mean = (len(xs) + 1) / 2.0
    covariance = math.fsum((a - mean) * (b - mean) for a, b in zip(rx, ry, strict=True))
    spread_x = math.fsum((a - mean) ** 2 for a in rx)
    spread_y = math.fsum((b - mean) ** 2 for b in ry)
    if spread_x == 0.0 or spread_y == 0.0:
        return None
    return covariance / math.sqrt(spread_x * spread_y)


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        rank = (start + end) / 2.0 + 1.0
        for position in range(start, end + 1):
            ranks[order[position]] = rank
        start = end + 1
    return ranks


def _quantile(ordered: Sequence[float], chance: float) -> float:
    """The ``chance``-quantile of sorted values, interpolated linearly between neighbours
    (the "inclusive" method: the 0- and 1-quantiles are the extremes)."""
    position = chance * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def _wait_summaries(arrivals: Sequence[float], waits: Sequence[float]) -> tuple[WaitSummary, ...]:
    by_minute: dict[int, list[float]] = {}
    for moment, wait in zip(arrivals, waits, strict=True):
        by_minute.setdefault(math.floor(moment / MINUTE), []).append(wait)
    summaries: list[WaitSummary] = []
    for minute, group in sorted(by_minute.items()):
        group.sort()
        summaries.append(
            WaitSummary(
                minute=minute,
                users=len(group),
                mean=math.fsum(group) / len(group),
                median=_quantile(group, 0.5),
                p90=_quantile(group, 0.9),
                maximum=group[-1],
            )
        )
    return tuple(summaries)


def _heatmap(arrivals: Sequence[float], waits: Sequence[float]) -> Mapping[tuple[int, int], int]:
    cells: dict[tuple[int, int], int] = {}
    for moment, wait in zip(arrivals, waits, strict=True):
        key = (math.floor(moment / MINUTE), math.floor(wait / MINUTE))
        cells[key] = cells.get(key, 0) + 1
    return MappingProxyType(dict(sorted(cells.items())))


# --- validation --------------------------------------------------------------------------------


def _checked_config(config: object, method: object) -> tuple[WaitingRoomConfig, str]:
    if not isinstance(config, WaitingRoomConfig):
        raise ArgumentTypeError(
            f"config is {type(config).__name__}; it must be a WaitingRoomConfig"
        )
    if method is None:
        chosen = config.queueing_method
        if chosen not in METHODS:
            raise ConfigError(
                f"config.queueing_method is {chosen!r}; the simulator compares queues: give "
                f"method= one of {', '.join(METHODS)}"
            )
    elif not isinstance(method, str):
        raise ArgumentTypeError(f"method is {type(method).__name__}; it must be a str or None")
    elif method not in METHODS:
        raise ConfigError(f"method is {method!r}; it must be one of {', '.join(METHODS)}")
    else:
        chosen = method
    if config.queue_all:
        raise ConfigError(
            "config.queue_all is True; a room that queues everybody admits nobody, so the "
            "simulation would never end"
        )
    return attrs.evolve(config, queueing_method=chosen), chosen


def _arrivals(values: object) -> tuple[float, ...]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ArgumentTypeError(
            f"arrivals is {type(values).__name__}; it must be a sequence of numbers (seconds)"
        )
    times: list[float] = []
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgumentTypeError(
                f"arrivals[{index}] is {type(value).__name__}; it must be a number (seconds)"
            )
        moment = float(value)
        if not 0.0 <= moment <= MAX_ARRIVAL:  # also refuses NaN
            raise ConfigError(
                f"arrivals[{index}] is {value!r}; arrival times must be finite seconds in "
                f"0..{MAX_ARRIVAL:g}"
            )
        times.append(moment)
        if len(times) > MAX_USERS:
            raise ConfigError(f"arrivals has more than {MAX_USERS:,} users; simulate fewer")
    if not times:
        raise ConfigError("arrivals is empty; give at least one arrival time")
    return tuple(times)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _seconds(value: object, name: str, *, allow_zero: bool) -> float:
    seconds = _number(value, name)
    low = 0.0 if allow_zero else math.nextafter(0.0, 1.0)
    if not low <= seconds <= _MAX_BROWSE:  # also refuses NaN
        rule = ">= 0" if allow_zero else "> 0"
        raise ConfigError(
            f"{name} is {value!r}; it must be finite seconds {rule} and at most {_MAX_BROWSE:g}"
        )
    return seconds


def _int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if not low <= value <= high:
        raise ConfigError(f"{name} is {value}; it must be in {low}..{high}")
    return int(value)


def _window(value: object, arrivals: tuple[float, ...]) -> tuple[float, float]:
    if value is None:
        return (min(arrivals), max(arrivals))
    if not isinstance(value, tuple) or len(value) != 2:
        raise ArgumentTypeError(
            f"window is {type(value).__name__}; it must be a (start, end) tuple of seconds"
        )
    start, end = _number(value[0], "window[0]"), _number(value[1], "window[1]")
    if not (math.isfinite(start) and math.isfinite(end) and start < end):
        raise ConfigError(f"window is {value!r}; it must be finite seconds with start < end")
    return (start, end)
