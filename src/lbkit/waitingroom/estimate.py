"""Estimated waits for queued users: a smoothed let-in rate, the FIFO and the random (raffle)
estimates, and a JSON-ready status for a waiting-room page or a mobile app.

The maths follows Cloudflare Waiting Room ("Waiting Room: Random Queueing and Custom Web/Mobile
Apps", Cloudflare blog, 2021-10-07):

* **Let-in rate.** :class:`LetInRate` is an exponentially weighted moving average of the users
  admitted per *complete* minute: ``rate = alpha * admitted + (1 - alpha) * rate``. The minute
  in progress is never fed in, because its partial count would drag the rate down. A minute with
  no record counts as 0 admitted once a later minute completes (the room's counters hold a
  minute only if somebody was admitted in it), and :meth:`LetInRate.rate_at` applies the same
  rule to the quiet minutes since the last record.
* **FIFO.** A user with ``users_ahead`` people queued in older buckets waits
  ``users_ahead / let_in_per_minute`` minutes (:func:`fifo_wait`).
* **Random.** Every queued user has the same chance ``P = let_in_per_minute / users_waiting``
  of being let in each minute, so with a crowd that stays the same size the number of minutes
  until admission is geometric and the minutes by which a user has a ``p`` chance of being in
  are ``n(p) = log(1 - p) / log(1 - P)`` (:func:`random_wait`; the page shows the 25th, 50th
  and 75th percentiles). Both logarithms use ``math.log1p``, which keeps its precision when
  ``p`` or ``P`` is tiny.
* **Random, in a growing or draining queue.** When the queue changes by ``g`` users a minute
  (``growth_per_minute``: arrivals minus admissions), the crowd a user competes with ``t``
  minutes from now is ``W + g t``, and their chance per minute falls (or rises) in proportion.
  Read as a continuous time, ``n(p)`` is the quantile of a constant hazard
  ``lambda = -log(1 - P)`` per minute; scaling that hazard by ``W / (W + g t)`` gives the
  survival ``S(t) = (1 + g t / W) ** (-lambda W / g)`` and the quantile

  ``t(p) = (W / g) * ((1 - p) ** (-g / (lambda W)) - 1) = n(p) * expm1(x) / x``
  with ``x = g n(p) / W``.

  It is today's ``n(p)`` times a factor that is 1 at ``g = 0``, above 1 while the queue grows
  and below 1 while it drains, where ``t(p)`` stays below ``W / |g|`` (the moment the crowd
  would be gone). With ``lambda W`` close to ``R`` (``P`` small) this is the textbook
  ``(W / g) ((1 - p) ** (-g / R) - 1)``; calibrating the hazard to ``-log(1 - P)`` instead of
  ``P`` keeps ``g = 0`` exactly the discrete formula and the estimate continuous in ``g``. An
  exact per-minute product ``prod(1 - R / (W + g k))`` would need a root search over ratios of
  gamma functions, which loses its precision when ``W / g`` is large (slow growth, the
  common case), and it is no truer: a room draws at every check-in, not once a minute. The
  two agree within 10 % (plus a minute) for ``P <= 0.1`` and ``-R <= g <= 2 R``.

The edge cases, one rule each:

* **No rate** (``None`` before the first complete minute, or ``0.0``: nobody let in): the wait
  is unknown, ``wait_time_known`` is False and the minutes are ``None``. A page says "we cannot
  estimate your wait yet" instead of inventing a number.
* **P >= 1** (the room lets in at least as many users per minute as are waiting), including
  **nobody waiting** (``users_waiting == 0``, P is then taken as infinite): every percentile is
  0 minutes. This is the limit of ``n(p)`` as P rises to 1, and it matches :func:`fifo_wait`,
  where nobody ahead means 0 minutes: "you are next, at your next check-in".
* **An estimate that overflows a float** (a rate so small, say 1e-300 users per minute, that the
  quotient is infinite, or a growth so fast that ``expm1(x)`` is) is reported as unknown,
  like no rate: such a number says nothing useful, and an infinity is not valid JSON.
* **Growth with P >= 1** changes nothing: everybody waiting now is let in this minute.
* Estimates are kept as floats; :func:`whole_minutes` rounds them up for display, so a page
  never promises less than the estimate (a random percentile rounded up is the smallest whole
  number of minutes after which the chance has reached ``p``).

Nothing here needs a compiled kernel: each call is a handful of scalar float operations, which a
Cython mirror could not speed up measurably next to the Python call itself, so this module has
no ``_pure``/``_fast`` pair and behaves identically on both kernel paths.

>>> rate = LetInRate(alpha=0.5)
>>> rate.record(0, 100), rate.record(1, 120)
(100.0, 110.0)
>>> fifo_wait(330, rate.rate)
FifoEstimate(minutes=3.0, wait_time_known=True, position=331)
>>> [whole_minutes(minutes) for minutes in random_wait(1000, 100.0).minutes]
[3, 7, 14]
>>> [whole_minutes(m) for m in random_wait(1000, 100.0, growth_per_minute=100.0).minutes]
[4, 10, 28]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import attrs

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.waitingroom.config import QUEUEING_METHODS

__all__ = [
    "DEFAULT_PERCENTILES",
    "FifoEstimate",
    "LetInRate",
    "RandomEstimate",
    "fifo_wait",
    "random_wait",
    "status",
    "whole_minutes",
]

#: The chances of admission a random-queue page shows (the 25th, 50th and 75th percentiles).
DEFAULT_PERCENTILES: Final = (0.25, 0.5, 0.75)

# Counts are what a store's 64-bit counters can hold; anything larger is a bug upstream.
_MAX_COUNT: Final = 2**63 - 1
# The last instant datetime can show (9999-12-31T23:59:59.999Z), in seconds since the epoch.
_MAX_EPOCH: Final = 253402300799.999
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
# How close a float must be to a whole number (absolutely below one minute, relatively above)
# to be taken as that number when rounding up: 21 / 0.7 is 30.000000000000004, which is 30.
_SNAP: Final = 1e-9


class LetInRate:
    """The smoothed number of users let in per minute: an EWMA over complete minutes.

    Feed it each minute once it is complete, in order, with the number of users admitted in it
    (:meth:`record`). Minutes are integers in any consistent numbering, for example
    ``int(now // 60)``. The first record seeds the rate with its count (no phantom zero history
    that would overstate early waits); each later record folds in with weight ``alpha``.
    Minutes skipped between two records count as complete minutes with 0 admitted: the room
    records a minute only if it admitted somebody in it. A caller who knows better (a store that
    lost a minute) records the minute explicitly.

    Args:
        alpha: the weight of the newest minute, in (0, 1]. The default 0.3 halves an old
            minute's weight in about two minutes; 1.0 keeps only the last minute.

    Raises:
        ConfigError: ``alpha`` is not in (0, 1].
        ArgumentTypeError: ``alpha`` is not a number.

    Runtime complexity: O(1) per record and per read.

    >>> rate = LetInRate(alpha=0.5)
    >>> print(rate.rate)
    None
    >>> rate.record(0, 10), rate.record(1, 20)
    (10.0, 15.0)
    >>> rate.record(3, 20)  # minute 2 counts as 0: 15 * 0.5 = 7.5, then 0.5 * 20 + 0.5 * 7.5
    13.75
    """

    __slots__ = ("_alpha", "_minute", "_rate")

    def __init__(self, *, alpha: float = 0.3) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise ArgumentTypeError(f"alpha is {type(alpha).__name__}; it must be a number")
        alpha = float(alpha)
        if not 0.0 < alpha <= 1.0:
            raise ConfigError(f"alpha is {alpha!r}; it must be in (0, 1]")
        self._alpha = alpha
        self._rate: float | None = None
        self._minute: int | None = None

    @property
    def alpha(self) -> float:
        """The weight of the newest minute.

        Runtime complexity: O(1).

        >>> LetInRate().alpha
        0.3
        """
        return self._alpha

    @property
    def rate(self) -> float | None:
        """Users let in per minute as of the last recorded minute, or ``None`` before the first.

        Runtime complexity: O(1).

        >>> LetInRate().rate is None
        True
        """
        return self._rate

    @property
    def last_minute(self) -> int | None:
        """The last recorded minute, or ``None`` before the first.

        Runtime complexity: O(1).

        >>> rate = LetInRate()
        >>> _ = rate.record(41, 7)
        >>> rate.last_minute
        41
        """
        return self._minute

    def record(self, minute: int, admitted: int) -> float:
        """Fold in a complete minute and the users admitted in it; return the new rate.

        Args:
            minute: the complete minute, after the last recorded one.
            admitted: the users admitted in it, >= 0.

        Raises:
            InvalidArgument: ``minute`` is not after the last recorded minute (each minute is
                recorded once, in order), a count out of range.
            ArgumentTypeError: ``minute`` or ``admitted`` is not an int.

        Runtime complexity: O(1).

        >>> rate = LetInRate(alpha=1.0)
        >>> rate.record(5, 30), rate.record(6, 12)
        (30.0, 12.0)
        """
        minute = _minute_number(minute, "minute")
        admitted = _count(admitted, "admitted")
        if self._minute is not None and minute <= self._minute:
            raise InvalidArgument(
                f"minute is {minute}, not after the last recorded minute {self._minute}; "
                "record each complete minute once, in order"
            )
        if self._rate is None:
            rate = float(admitted)
        else:
            rate = self._decayed(minute)
            rate = self._alpha * admitted + (1.0 - self._alpha) * rate
        self._rate = rate
        self._minute = minute
        return rate

    def rate_at(self, minute: int) -> float | None:
        """The rate as seen during ``minute`` (the minute in progress): every complete minute
        since the last record counts as 0 admitted. ``None`` before the first record.

        A ``minute`` at or before the last recorded one reads the latest rate unchanged:
        workers' clocks may disagree by a little, and a read must not fail a request.
        Nothing is changed, so a late :meth:`record` of a quiet minute is still accepted.

        Raises:
            ArgumentTypeError: ``minute`` is not an int.
            InvalidArgument: ``minute`` is out of range.

        Runtime complexity: O(1).

        >>> rate = LetInRate(alpha=0.5)
        >>> rate.record(0, 16)
        16.0
        >>> rate.rate_at(1), rate.rate_at(3)  # minutes 1 and 2 complete with nobody let in
        (16.0, 4.0)
        """
        minute = _minute_number(minute, "minute")
        if self._rate is None:
            return None
        return self._decayed(minute)

    def _decayed(self, minute: int) -> float:
        # The rate after the complete minutes strictly between the last record and `minute`,
        # each an EWMA step with 0 admitted; a huge gap underflows to 0.0, which is the truth.
        assert self._rate is not None
        assert self._minute is not None
        gap = minute - self._minute - 1
        if gap <= 0:
            return self._rate
        return self._rate * (1.0 - self._alpha) ** gap

    def __repr__(self) -> str:
        return f"LetInRate(alpha={self._alpha!r}, rate={self._rate!r}, minute={self._minute!r})"


@attrs.frozen
class FifoEstimate:
    """A FIFO queue's estimate for one user.

    Attributes:
        minutes: ``users_ahead / let_in_per_minute`` as a float (0.0 with nobody ahead), or
            ``None`` when the wait is unknown. Round it with :func:`whole_minutes` for display.
        wait_time_known: False when there is no rate (``None`` or 0) or the quotient
            overflows.
        position: the user's place in the queue, 1-based: ``users_ahead + 1`` (1 is next).
            Known even when the wait is not.

    Runtime complexity: O(1).

    >>> FifoEstimate(minutes=None, wait_time_known=False, position=5).position
    5
    """

    minutes: float | None
    wait_time_known: bool
    position: int


@attrs.frozen
class RandomEstimate:
    """A random queue's estimate, the same for every queued user.

    Attributes:
        percentiles: the chances ``p`` asked for, in the order given.
        minutes: for each ``p``, the minutes ``n(p)`` after which the user has been let in with
            chance ``p`` (0.0 when P >= 1), or ``None`` when the wait is unknown.
        wait_time_known: False when there is no rate (``None`` or 0), when ``P`` underflows
            to 0, or when some ``n(p)`` overflows.
        chance_per_minute: ``P = let_in_per_minute / users_waiting`` capped at 1.0 (1.0 with
            nobody waiting), or ``None`` without a rate.

    Runtime complexity: O(1).

    >>> RandomEstimate(percentiles=(0.5,), minutes=(1.0,), wait_time_known=True,
    ...                chance_per_minute=0.5).minutes
    (1.0,)
    """

    percentiles: tuple[float, ...]
    minutes: tuple[float, ...] | None
    wait_time_known: bool
    chance_per_minute: float | None


def fifo_wait(users_ahead: int, let_in_per_minute: float | None) -> FifoEstimate:
    """The FIFO wait of a user with ``users_ahead`` people queued before them.

    Args:
        users_ahead: the users queued in older buckets (and ahead in the user's own), >= 0.
        let_in_per_minute: the smoothed let-in rate (:attr:`LetInRate.rate`), finite and >= 0,
            or ``None`` before the first complete minute.

    Returns:
        The minutes as an unrounded float, whether they are known, and the 1-based position.
        Without a rate (``None`` or 0) the wait is unknown and ``minutes`` is ``None``.

    Raises:
        InvalidArgument: a negative or too large count, a negative, NaN or infinite rate.
        ArgumentTypeError: a count that is not an int, a rate that is not a number or None.

    Runtime complexity: O(1).

    >>> fifo_wait(30, 10.0)
    FifoEstimate(minutes=3.0, wait_time_known=True, position=31)
    >>> fifo_wait(30, None)
    FifoEstimate(minutes=None, wait_time_known=False, position=31)
    """
    users_ahead = _count(users_ahead, "users_ahead")
    rate = _rate(let_in_per_minute, "let_in_per_minute")
    minutes = _fifo_minutes(users_ahead, rate)
    return FifoEstimate(
        minutes=minutes, wait_time_known=minutes is not None, position=users_ahead + 1
    )


def _fifo_minutes(users_ahead: int, rate: float | None) -> float | None:
    """``users_ahead / rate`` from checked arguments; ``None`` without a rate or on overflow."""
    if rate is None or rate == 0.0:
        return None
    minutes = users_ahead / rate
    return None if math.isinf(minutes) else minutes


def random_wait(
    users_waiting: int,
    let_in_per_minute: float | None,
    *,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    growth_per_minute: float = 0.0,
) -> RandomEstimate:
    """The random-queue wait: for each chance ``p``, ``n(p) = log(1 - p) / log(1 - P)`` minutes
    with ``P = let_in_per_minute / users_waiting``, or, while the queue grows or drains by
    ``g = growth_per_minute``, ``t(p) = n(p) * expm1(x) / x`` with ``x = g * n(p) /
    users_waiting`` (the module docstring derives it).

    Args:
        users_waiting: the users currently queued, this one included, >= 0.
        let_in_per_minute: the smoothed let-in rate, finite and >= 0, or ``None``.
        percentiles: the chances of admission to estimate, each in the open interval (0, 1);
            at least one. Results keep their order.
        growth_per_minute: how many users a minute the queue grows by (arrivals minus
            admissions), negative while it drains; finite. 0 (the default) gives exactly
            ``n(p)``.

    Returns:
        The minutes per chance as unrounded floats. Without a rate (``None`` or 0) the wait is
        unknown (``minutes`` is ``None``); with ``P >= 1`` or nobody waiting every chance is
        reached in 0 minutes, whatever the growth (see the module docstring for why 0 and not
        1). While the queue drains, no estimate passes ``users_waiting /
        -growth_per_minute``; a growth so fast that an estimate overflows makes it unknown.

    Raises:
        InvalidArgument: a count or rate out of range, an empty ``percentiles``, a chance not
            in (0, 1), a growth that is NaN or infinite.
        ArgumentTypeError: a value of the wrong type.

    Runtime complexity: O(len(percentiles)).

    >>> estimate = random_wait(2, 1.0)  # P = 0.5: in after 1 minute with chance 1/2
    >>> estimate.minutes[1:], estimate.chance_per_minute
    ((1.0, 2.0), 0.5)
    >>> random_wait(10, 20.0).minutes
    (0.0, 0.0, 0.0)
    >>> [round(m, 2) for m in random_wait(1000, 10.0).minutes]  # the crowd stays 1000
    [28.62, 68.97, 137.94]
    >>> [round(m, 2) for m in random_wait(1000, 10.0, growth_per_minute=10.0).minutes]
    [33.14, 99.31, 297.23]
    >>> # Nobody arrives: all 1000 are in after 100 minutes, a share p of them after p * 100.
    >>> [round(m, 2) for m in random_wait(1000, 10.0, growth_per_minute=-10.0).minutes]
    [24.89, 49.83, 74.83]
    >>> random_wait(1000, 1.0, growth_per_minute=1e6).wait_time_known  # expm1 overflows
    False
    """
    users_waiting = _count(users_waiting, "users_waiting")
    rate = _rate(let_in_per_minute, "let_in_per_minute")
    chances = _percentiles(percentiles)
    growth = _growth(growth_per_minute)
    if rate is None or rate == 0.0:
        return RandomEstimate(
            percentiles=chances, minutes=None, wait_time_known=False, chance_per_minute=None
        )
    if users_waiting == 0 or rate >= users_waiting:
        return RandomEstimate(
            percentiles=chances,
            minutes=tuple(0.0 for _ in chances),
            wait_time_known=True,
            chance_per_minute=1.0,
        )
    chance = rate / users_waiting
    if chance == 0.0:
        # A rate so small against the crowd that P underflows: nobody is, in effect, let in.
        return RandomEstimate(
            percentiles=chances, minutes=None, wait_time_known=False, chance_per_minute=0.0
        )
    # 0 < P < 1, so log1p(-P) is finite and < 0, and every n(p) is > 0 (or overflows).
    per_minute = math.log1p(-chance)
    steady = tuple(math.log1p(-p) / per_minute for p in chances)
    minutes: tuple[float, ...] | None
    if any(math.isinf(value) for value in steady):
        minutes = None
    elif growth == 0.0:
        minutes = steady  # exactly the discrete n(p), bit for bit
    else:
        minutes = _growing_raffle(steady, users_waiting, growth)
    return RandomEstimate(
        percentiles=chances,
        minutes=minutes,
        wait_time_known=minutes is not None,
        chance_per_minute=chance,
    )


def _growing_raffle(
    minutes: tuple[float, ...], users_waiting: int, growth: float
) -> tuple[float, ...] | None:
    """``t(p) = n(p) * expm1(x) / x`` with ``x = growth * n(p) / users_waiting`` for each
    finite ``n(p) > 0`` of a steady raffle (``users_waiting > 0``, ``growth != 0``); ``None``
    when one overflows."""
    grown: list[float] = []
    for steady in minutes:
        x = growth * steady / users_waiting
        if x == 0.0:
            # The growth is too slow to matter at this float precision: expm1(x) / x is 1.
            grown.append(steady)
        elif x < -1.0:
            # Draining: W / |g| is below n(p) here, so it is finite, and expm1(x) is far
            # from 0; this form also takes x = -inf (g * n(p) overflowed) to its limit W / |g|.
            grown.append(users_waiting / -growth * -math.expm1(x))
        elif math.isinf(x):  # g * n(p) overflowed: the wait would too
            return None
        else:
            try:
                wait = steady * (math.expm1(x) / x)
            except OverflowError:  # x above ~709.78
                return None
            if math.isinf(wait):
                return None
            grown.append(wait)
    return tuple(grown)


def whole_minutes(minutes: float) -> int:
    """Round an estimate up to whole minutes for display, so a page never promises less than
    the estimate. A value within ``1e-9 * max(1, minutes)`` of a whole number counts as that
    number, so float noise (21 users ahead at 0.7 a minute is ``30.000000000000004``) does not
    add a minute.

    Raises:
        InvalidArgument: ``minutes`` is negative, NaN or infinite.
        ArgumentTypeError: ``minutes`` is not a number.

    Runtime complexity: O(1).

    >>> whole_minutes(0.0), whole_minutes(0.2), whole_minutes(21 / 0.7)
    (0, 1, 30)
    """
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)):
        raise ArgumentTypeError(f"minutes is {type(minutes).__name__}; it must be a number")
    minutes = float(minutes)
    if not math.isfinite(minutes) or minutes < 0.0:
        raise InvalidArgument(f"minutes is {minutes!r}; it must be finite and >= 0")
    return _whole_minutes(minutes)


def _whole_minutes(minutes: float) -> int:
    """:func:`whole_minutes` of a finite float >= 0."""
    nearest = round(minutes)
    if abs(minutes - nearest) <= _SNAP * max(1.0, minutes):
        return nearest
    return math.ceil(minutes)


def status(
    *,
    queueing_method: str,
    now: float,
    refresh_interval: float,
    users_waiting: int,
    let_in_per_minute: float | None,
    users_ahead: int | None = None,
    queue_is_full: bool = False,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    growth_per_minute: float = 0.0,
) -> dict[str, Any]:
    """The status of a queued user as a JSON-ready dict, for a page template or an app.

    Every key is always present (``None`` where it does not apply) and every value is a
    ``str``, ``int``, ``float``, ``bool``, ``None`` or a dict of those, never NaN or infinity:

    * ``"queueing_method"`` (str): ``"fifo"``, ``"random"``, ``"passthrough"`` or ``"reject"``.
    * ``"wait_time_known"`` (bool): whether the wait keys below hold an estimate.
    * ``"estimated_wait_minutes"`` (int or None): whole minutes, rounded up
      (:func:`whole_minutes`). FIFO: ``users_ahead / rate``; random: the median ``n(0.5)``;
      passthrough: 0 (everyone goes in); reject: None (nobody is let in).
    * ``"queue_position"`` (int or None): FIFO only, 1-based (``users_ahead + 1``), shown even
      when the wait is unknown.
    * ``"wait_time_percentiles"`` (dict or None): random only and only when the wait is known;
      whole minutes keyed ``"p" + format(100 * p, ".10g")``, e.g. ``{"p25": 3, "p50": 7,
      "p75": 14}``.
    * ``"users_waiting"`` (int): the users currently queued.
    * ``"queue_is_full"`` (bool): as given (the room decides when its queue is full).
    * ``"refresh_interval_seconds"`` (float): the user's (jittered) refresh interval.
    * ``"last_updated"`` (str): ``now`` in ISO-8601 UTC with milliseconds,
      ``"2021-08-03T23:46:00.000Z"``.
    * ``"last_updated_epoch"`` (float): ``now``, seconds since the Unix epoch.

    Args:
        queueing_method: the room's method.
        now: seconds since the Unix epoch, in 0 .. 253402300799.999 (the year 9999).
        refresh_interval: seconds until the user's next check-in, finite and > 0.
        users_waiting: the users currently queued (for random: this one included), >= 0.
        let_in_per_minute: the smoothed let-in rate, or ``None`` before the first minute.
        users_ahead: the users ahead of this one; required for ``"fifo"``, checked but unused
            otherwise (the room keeps FIFO bookkeeping in every mode). It is not compared with
            ``users_waiting``: the two counts may come from different moments.
        queue_is_full: whether the room takes no more users into the queue.
        percentiles: the chances shown by a random queue (the median is computed besides).
        growth_per_minute: users a minute the queue grows by (negative: drains), finite; the
            random estimate allows for it (:func:`random_wait`), a FIFO one does not need to
            (nobody who arrives later is ahead). Checked but unused otherwise.

    Raises:
        InvalidArgument: an unknown method, ``users_ahead`` missing for FIFO, any value out of
            range (as :func:`fifo_wait` and :func:`random_wait` say).
        ArgumentTypeError: a value of the wrong type.

    Runtime complexity: O(len(percentiles)).

    >>> page = status(queueing_method="fifo", now=1628034360.0, refresh_interval=20.0,
    ...               users_waiting=500, let_in_per_minute=10.0, users_ahead=25)
    >>> page["estimated_wait_minutes"], page["queue_position"], page["last_updated"]
    (3, 26, '2021-08-03T23:46:00.000Z')
    >>> status(queueing_method="random", now=0, refresh_interval=20.0, users_waiting=1000,
    ...        let_in_per_minute=100.0)["wait_time_percentiles"]
    {'p25': 3, 'p50': 7, 'p75': 14}
    >>> status(queueing_method="random", now=0, refresh_interval=20.0, users_waiting=1000,
    ...        let_in_per_minute=100.0, growth_per_minute=100.0)["wait_time_percentiles"]
    {'p25': 4, 'p50': 10, 'p75': 28}
    """
    method = _method(queueing_method)
    now = _epoch_seconds(now)
    refresh_interval = _refresh_interval(refresh_interval)
    users_waiting = _count(users_waiting, "users_waiting")
    rate = _rate(let_in_per_minute, "let_in_per_minute")
    if users_ahead is not None:
        users_ahead = _count(users_ahead, "users_ahead")
    if not isinstance(queue_is_full, bool):
        raise ArgumentTypeError(
            f"queue_is_full is {type(queue_is_full).__name__}; it must be a bool"
        )
    chances = _percentiles(percentiles)
    growth = _growth(growth_per_minute)
    if method == "fifo" and users_ahead is None:
        raise InvalidArgument("users_ahead is None; a fifo status needs the users ahead")
    return _status(
        method,
        now,
        refresh_interval,
        users_waiting,
        _wait(method, users_waiting, rate, users_ahead, chances, growth),
        queue_is_full,
    )


# What the wait keys of a status hold: wait_time_known, estimated_wait_minutes, queue_position,
# wait_time_percentiles.
_Wait = tuple[bool, "int | None", "int | None", "dict[str, int] | None"]


def _wait(
    method: str,
    users_waiting: int,
    rate: float | None,
    users_ahead: int | None,
    chances: tuple[float, ...],
    growth: float = 0.0,
) -> _Wait:
    """The wait keys of :func:`status`, from checked arguments (a fifo status has users_ahead;
    ``growth`` is finite and only moves a random queue's estimate). A waiting room calls it
    directly and keeps a random queue's result for the plan: it is the same for every user."""
    if method == "fifo":
        assert users_ahead is not None
        minutes = _fifo_minutes(users_ahead, rate)
        if minutes is None:
            return False, None, users_ahead + 1, None
        return True, _whole_minutes(minutes), users_ahead + 1, None
    if method == "random":
        # The median rides along in one call, so one overflow rule covers every number shown.
        raffle = random_wait(
            users_waiting, rate, percentiles=(*chances, 0.5), growth_per_minute=growth
        )
        if raffle.minutes is None:
            return False, None, None, None
        shown = {
            _percentile_key(p): whole_minutes(minutes)
            for p, minutes in zip(chances, raffle.minutes[:-1], strict=True)
        }
        return True, whole_minutes(raffle.minutes[-1]), None, shown
    if method == "passthrough":
        return True, 0, None, None
    return False, None, None, None


def _status(
    method: str,
    now: float,
    refresh_interval: float,
    users_waiting: int,
    wait: _Wait,
    queue_is_full: bool,
) -> dict[str, Any]:
    """The status dict from checked arguments and :func:`_wait`'s result."""
    known, minutes, position, shown = wait
    return {
        "queueing_method": method,
        "wait_time_known": known,
        "estimated_wait_minutes": minutes,
        "queue_position": position,
        "wait_time_percentiles": shown,
        "users_waiting": users_waiting,
        "queue_is_full": queue_is_full,
        "refresh_interval_seconds": refresh_interval,
        "last_updated": _iso_utc(now),
        "last_updated_epoch": now,
    }


# --- validation and formatting helpers ----------------------------------------------------


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if not 0 <= value <= _MAX_COUNT:
        raise InvalidArgument(f"{name} is {value}; counts must be ints in 0..2**63 - 1")
    return value


def _minute_number(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if not -_MAX_COUNT - 1 <= value <= _MAX_COUNT:
        raise InvalidArgument(f"{name} is {value}; minutes must be ints in -2**63..2**63 - 1")
    return value


def _rate(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number or None")
    try:
        rate = float(value)
    except OverflowError:
        rate = math.inf
    if not math.isfinite(rate) or rate < 0.0:
        raise InvalidArgument(
            f"{name} is {value!r}; rates must be finite and >= 0 users per minute"
        )
    return rate


def _growth(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"growth_per_minute is {type(value).__name__}; it must be a number")
    try:
        growth = float(value)
    except OverflowError:
        growth = math.inf
    if not math.isfinite(growth):
        raise InvalidArgument(
            f"growth_per_minute is {value!r}; it must be finite users per minute "
            "(negative while the queue drains)"
        )
    return growth


def _percentiles(values: object) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentTypeError(
            f"percentiles is {type(values).__name__}; it must be a sequence of numbers"
        )
    if not values:
        raise InvalidArgument("percentiles is empty; give at least one chance in (0, 1)")
    chances: list[float] = []
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgumentTypeError(
                f"percentiles[{index}] is {type(value).__name__}; it must be a number"
            )
        chance = float(value)
        if not 0.0 < chance < 1.0:  # also refuses NaN
            raise InvalidArgument(f"percentiles[{index}] is {value!r}; it must be in (0, 1)")
        chances.append(chance)
    return tuple(chances)


def _method(value: object) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"queueing_method is {type(value).__name__}; it must be a str")
    if value not in QUEUEING_METHODS:
        raise InvalidArgument(
            f"queueing_method is {value!r}; it must be one of {', '.join(QUEUEING_METHODS)}"
        )
    return value


def _epoch_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"now is {type(value).__name__}; it must be a number")
    try:
        now = float(value)
    except OverflowError:
        now = math.inf
    if not 0.0 <= now <= _MAX_EPOCH:  # also refuses NaN
        raise InvalidArgument(
            f"now is {value!r}; it must be seconds since the Unix epoch in "
            "0..253402300799.999 (the year 9999)"
        )
    return now


def _refresh_interval(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"refresh_interval is {type(value).__name__}; it must be a number")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds <= 0.0:
        raise InvalidArgument(f"refresh_interval is {value!r}; it must be finite and > 0 seconds")
    return seconds


def _percentile_key(chance: float) -> str:
    # ".10g" hides float noise (0.29 * 100 is 28.999999999999996) and keeps real digits.
    return "p" + format(100.0 * chance, ".10g")


def _iso_utc(now: float) -> str:
    # What (epoch + timedelta(seconds=now)).isoformat(timespec="milliseconds") gives, with "Z"
    # for "+00:00" (tests compare the two): the same on every platform (no OSError for far
    # dates on Windows, no local time zone). A room formats this for every queued request, so
    # the text of a whole second is cached and the milliseconds' is looked up.
    # now - floor(now) is exact, and rounding it to microseconds half-to-even is what
    # timedelta does; isoformat then truncates to milliseconds.
    second = math.floor(now)
    micro = round((now - second) * 1e6)
    if micro == 1_000_000:
        second, micro = second + 1, 0
    return _second_text(second) + _MILLISECONDS[micro // 1000]


# ".000Z" to ".999Z": a table lookup instead of formatting the milliseconds per request.
_MILLISECONDS: Final = tuple(f".{millisecond:03d}Z" for millisecond in range(1000))


@functools.lru_cache(maxsize=64)
def _second_text(second: int) -> str:
    return (_EPOCH + timedelta(seconds=second)).isoformat()[:19]
