"""The waiting room itself: one call per request, :meth:`WaitingRoom.handle`, decides whether the
user enters the origin, waits in the queue, or is turned away, and returns the cookie that
carries their state.

A request goes one of these ways, by the cookie it carries (``None`` when it has none, or
when the cookie is refused: altered, expired, from another room; the reason is kept in
:attr:`Decision.cookie_error`):

1. **An admitted user** (a valid cookie with ``accepted_at``) enters, whatever the method:
   a session, once granted, is kept until it lapses. Unless ``disable_session_renewal``, the
   session is renewed: it now lapses ``session_duration`` after this request, in the cookie
   and in the store (one :meth:`~lbkit.waitingroom.store.SlotStore.renew`). Reason
   ``"session"``.
2. Under ``reject``, everybody else is turned away (``"rejected"``); no cookie is written.
3. **A queued user checking in early** (before their own refresh interval has passed since
   their last check-in, both sealed in their cookie, to the millisecond the cookie holds
   times in) stays queued and gets no extra chance:
   nothing is counted, the store is not called, the cookie is kept as it is, and the page
   is told to refresh when the interval is up (``"early_check_in"``). Refreshing fast
   gains nothing.
4. **Everybody else** makes one admission attempt, one
   :meth:`~lbkit.waitingroom.store.SlotStore.try_admit`: a user with a queued cookie in the
   group of their bucket, a new user in the new users' group, capped by the minute's plan
   (:mod:`lbkit.waitingroom.allocator`) and, inside the store, by ``new_users_per_minute``
   and ``total_active_users``. Admitted (``"admitted"``; ``"passthrough"`` under that
   method): a session cookie that lapses ``session_duration`` after this request. Not
   admitted (``"queued"``, or ``"queue_all"``): a queued cookie in their bucket (the minute
   they first arrived, kept across check-ins), valid ``queued_cookie_lifetime`` after this
   check-in, with a refresh interval drawn once per user (``refresh_interval`` jittered by
   ``refresh_jitter``) and the :func:`~lbkit.waitingroom.estimate.status` for the page.

The plan of the minute comes from a :class:`~lbkit.waitingroom.store.StoreSnapshot`, read once
per ``plan_ttl`` seconds (and at every new minute), not per request; caps are totals for the
minute and the store enforces the room's limits at the moment of each admission, so a plan a
second old never over-admits.

>>> import random
>>> from lbkit.waitingroom import WaitingRoomConfig
>>> config = WaitingRoomConfig(total_active_users=2, new_users_per_minute=2, room_id="shop")
>>> room = WaitingRoom(config, keys={1: bytes(32)}, primary=1, rng=random.Random(7))
>>> first = room.handle(None, now=600.0)
>>> first.action, first.reason, len(first.cookie)
('admit', 'admitted', 71)
>>> room.handle(first.cookie, now=610.0).reason  # the session is renewed
'session'
>>> second, third = room.handle(None, now=611.0), room.handle(None, now=612.0)
>>> second.action, third.action, third.status["queue_position"]
('admit', 'queue', 1)
>>> room.handle(third.cookie, now=615.0).reason  # sooner than its refresh interval
'early_check_in'
"""

from __future__ import annotations

import bisect
import collections
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from lbkit.errors import (
    ArgumentTypeError,
    ConfigError,
    InvalidArgument,
    InvalidCookie,
    StoreUnavailable,
)
from lbkit.waitingroom.allocator import MINUTE, MinutePlan, MinuteState, plan_minute
from lbkit.waitingroom.config import WaitingRoomConfig
from lbkit.waitingroom.cookies import (
    MAX_COOKIE_LIFETIME,
    MAX_REFRESH_INTERVAL,
    CookieSealer,
    Keyring,
    QueueCookie,
    set_cookie_header,
)
from lbkit.waitingroom.distribution import location_budgets, worker_budgets
from lbkit.waitingroom.estimate import (
    _MAX_EPOCH,
    DEFAULT_PERCENTILES,
    LetInRate,
    _epoch_seconds,
    _iso_utc,
    _status,
    _wait,
)
from lbkit.waitingroom.store import ANYWHERE, Admission, MemoryStore, SlotStore

__all__ = ["ACTIONS", "DISTRIBUTIONS", "REASONS", "STORE_FAILURES", "Decision", "WaitingRoom"]

#: What a decision tells the proxy to do.
ACTIONS: Final = ("admit", "queue", "reject")
#: Why, one word per path of :meth:`WaitingRoom.handle`.
REASONS: Final = (
    "session",
    "admitted",
    "passthrough",
    "queued",
    "queue_all",
    "early_check_in",
    "rejected",
)
#: How a minute's slots are spent across locations (see :mod:`lbkit.waitingroom.distribution`):
#: one counter per group for the whole room, one per location, or one per worker.
DISTRIBUTIONS: Final = ("shared", "location", "worker")
#: What a room does when its store cannot be reached (see ``store_failure``).
STORE_FAILURES: Final = ("closed", "open")


class Decision(NamedTuple):
    """What :meth:`WaitingRoom.handle` decided for one request.

    Attributes:
        action: ``"admit"`` (forward to the origin), ``"queue"`` (serve the waiting-room page)
            or ``"reject"`` (serve the static page of a ``reject`` room).
        reason: one of :data:`REASONS` (see the module docstring).
        cookie: the token to send back in ``Set-Cookie``, or ``None`` to leave the browser's
            cookie as it is.
        max_age: seconds the browser should keep ``cookie`` (``None`` with it).
        refresh_interval: for a queued user, seconds until their next check-in counts: what
            the page's automatic refresh waits. ``None`` otherwise.
        status: for a queued or rejected user, the JSON-ready
            :func:`~lbkit.waitingroom.estimate.status`; ``None`` for an admitted one.
        cookie_state: the :class:`~lbkit.waitingroom.cookies.QueueCookie` the user holds after
            this request (``None`` when rejected without one).
        cookie_error: the :class:`~lbkit.errors.InvalidCookie` reason when the request's cookie
            was refused (the user was then handled as a new user), else ``None``.
        store_error: when the store could not be reached
            (:class:`~lbkit.errors.StoreUnavailable`), its message, for the logs: the
            decision was then made by the room's ``store_failure`` policy. ``None`` otherwise.

    A tuple, like :class:`~lbkit.waitingroom.store.Admission`, because a room makes one per
    request and a tuple costs a fraction of a class instance to build; it is immutable (use
    ``_replace`` for a changed copy).

    Runtime complexity: O(1).

    >>> Decision(action="reject", reason="rejected").admitted
    False
    """

    action: str
    reason: str
    cookie: str | None = None
    max_age: float | None = None
    refresh_interval: float | None = None
    status: Mapping[str, Any] | None = None
    cookie_state: QueueCookie | None = None
    cookie_error: str | None = None
    store_error: str | None = None

    @property
    def admitted(self) -> bool:
        """Whether the request goes to the origin."""
        return self.action == "admit"


class _Minute:
    """One plan and what the decisions under it need, shared read-only by threads."""

    __slots__ = (
        "ahead",
        "buckets",
        "budgets",
        "caps",
        "growth",
        "made_at",
        "minute",
        "plan",
        "rate",
        "shared_wait",
        "statuses",
        "store_error",
        "traffic",
        "until",
        "waiting",
    )

    def __init__(
        self,
        plan: MinutePlan,
        *,
        made_at: float,
        until: float,
        rate: float | None,
        traffic: Mapping[str, int],
        store_error: str | None = None,
        growth: float = 0.0,
    ) -> None:
        self.plan = plan
        # Set when the plan was made without the store (it could not be reached).
        self.store_error = store_error
        self.minute = plan.minute
        self.made_at = made_at
        # Reused until plan_ttl has passed or the minute ends, whichever is first: moment // 60
        # is the minute exactly when minute * 60 <= moment < (minute + 1) * 60.
        self.until = min(until, (plan.minute + 1) * MINUTE)
        self.rate = rate
        # Users a minute the queue grows by (negative: drains), for the random estimate.
        self.growth = growth
        self.traffic = traffic
        self.buckets = list(plan.queued)  # oldest first
        self.ahead = [0]
        for count in plan.queued.values():
            self.ahead.append(self.ahead[-1] + count)
        self.waiting = self.ahead[-1]
        self.budgets: dict[tuple[int | None, str, int | None], tuple[tuple[str, int], ...]] = {}
        # Per bucket (None: new users): the plan's (group, cap), and the status its queued
        # users are shown, the same for everyone of a bucket under one plan but for the
        # refresh interval and the time. Filled as requests come; two threads filling one
        # entry write equal values.
        self.caps: dict[int | None, tuple[int | None, int | None]] = {}
        self.statuses: dict[int | None, dict[str, Any]] = {}
        # Every queued user but a FIFO one sees the same wait for the whole plan.
        self.shared_wait = (
            None
            if plan.method == "fifo"
            else _wait(plan.method, max(self.waiting, 1), rate, None, DEFAULT_PERCENTILES, growth)
        )

    def users_ahead(self, bucket: int) -> int:
        """The users queued in older buckets, and half of the user's own: within a bucket,
        order is whoever checks in first once slots open, so half is the median."""
        index = bisect.bisect_left(self.buckets, bucket)
        own = self.plan.queued.get(bucket, 0)
        return self.ahead[index] + own // 2


class WaitingRoom:
    """A waiting room: decides per request, keeps shared counts in a
    :class:`~lbkit.waitingroom.store.SlotStore` and each user's state in their cookie.

    Args:
        config: the room's :class:`~lbkit.waitingroom.config.WaitingRoomConfig`.
        keys: the cookie keys: a :class:`~lbkit.waitingroom.cookies.Keyring`, or a mapping of
            key id to key with ``primary``.
        primary: the key id new cookies are sealed with (required with a mapping).
        store: the shared counts; a new :class:`~lbkit.waitingroom.store.MemoryStore` by
            default (one process). Every process of a room must use the same store.
        clock: returns the time in seconds when ``handle`` is called without ``now``.
        rng: draws each new user's jittered refresh interval; a fresh ``random.Random()`` by
            default. Pass a seeded one for reproducible runs.
        plan_ttl: seconds a plan is reused before the store is read again, > 0 (a new minute
            always reads it). Lower follows the store more closely; each read costs
            O(buckets + places) in the store.
        distribution: ``"shared"`` (one counter per group: exact, for one store), or
            ``"location"`` / ``"worker"``: each group's cap is split by last minute's traffic
            across locations, or across locations and then their workers, and each share is
            counted on its own (:mod:`lbkit.waitingroom.distribution`).
        anywhere: the fraction of each cap kept as a pool any location may draw from once its
            share is used, in [0, 1] (``"location"`` and ``"worker"`` only).
        workers: ``{location: number of workers}``, required for ``"worker"`` (and then the
            complete list of locations).
        let_in_alpha: the EWMA weight of the let-in rate the estimates divide by.
        nonce_source: the cookie nonces' source (see
            :class:`~lbkit.waitingroom.cookies.CookieSealer`); only for test vectors.
        store_failure: what a request gets when the store cannot be reached
            (:class:`~lbkit.errors.StoreUnavailable`, from a networked store such as
            :class:`~lbkit.waitingroom.redis_store.RedisStore`): ``"closed"`` (the default)
            queues everybody who is not admitted already; ``"open"`` also lets in up to
            ``emergency_budget`` users a minute, counted by this room alone. Admitted users
            keep their sessions either way, and the decision's ``store_error`` says what
            happened. A plan that cannot be read is made from no counts, for ``plan_ttl``.
        emergency_budget: under ``"open"``, the users this room (this process) may let in a
            minute while the store is unavailable, an int >= 0.

    Raises:
        ConfigError: durations the cookie cannot hold (``session_duration`` or
            ``queued_cookie_lifetime`` over 49.7 days, a jittered refresh interval over 4.66
            hours), an unknown distribution, a bad key, ``workers`` missing for ``"worker"``.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: :meth:`handle` is O(1) when the plan is reused (one cookie open, at
    most one seal and one store call), plus a store snapshot and an
    O(buckets + places) plan once per ``plan_ttl``.

    >>> from lbkit.waitingroom import WaitingRoomConfig
    >>> config = WaitingRoomConfig(total_active_users=100, new_users_per_minute=10)
    >>> WaitingRoom(config, keys={7: bytes(16)}, primary=7)
    WaitingRoom(room_id='room', queueing_method='fifo', distribution='shared')
    """

    def __init__(
        self,
        config: WaitingRoomConfig,
        *,
        keys: Keyring | Mapping[int, bytes],
        primary: int | None = None,
        store: SlotStore | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        plan_ttl: float = 1.0,
        distribution: str = "shared",
        anywhere: float = 0.0,
        workers: Mapping[str, int] | None = None,
        let_in_alpha: float = 0.3,
        nonce_source: Callable[[int], bytes] | None = None,
        store_failure: str = "closed",
        emergency_budget: int = 0,
    ) -> None:
        if not isinstance(config, WaitingRoomConfig):
            raise ArgumentTypeError(
                f"config is {type(config).__name__}; it must be a WaitingRoomConfig"
            )
        _check_cookie_ranges(config)
        if store is None:
            store = MemoryStore()
        elif not isinstance(store, SlotStore):
            raise ArgumentTypeError(
                f"store is {type(store).__name__}; it must implement SlotStore "
                "(snapshot, try_admit, renew)"
            )
        if not callable(clock):
            raise ArgumentTypeError(f"clock is {type(clock).__name__}; it must be callable")
        if rng is None:
            rng = random.Random()
        elif not isinstance(rng, random.Random):
            raise ArgumentTypeError(f"rng is {type(rng).__name__}; it must be a random.Random")
        ttl = _seconds(plan_ttl, "plan_ttl")
        if ttl <= 0.0:
            raise ConfigError(f"plan_ttl is {plan_ttl!r}; it must be finite and > 0 seconds")
        if not isinstance(distribution, str):
            raise ArgumentTypeError(
                f"distribution is {type(distribution).__name__}; it must be a str"
            )
        if distribution not in DISTRIBUTIONS:
            raise ConfigError(
                f"distribution is {distribution!r}; it must be one of {', '.join(DISTRIBUTIONS)}"
            )
        pool = _seconds(anywhere, "anywhere")
        if not 0.0 <= pool <= 1.0:
            raise ConfigError(f"anywhere is {anywhere!r}; it must be in [0, 1]")
        if pool and distribution == "shared":
            raise ConfigError(
                "anywhere is set but distribution is 'shared'; the pool only applies to "
                "'location' and 'worker'"
            )
        self._workers: dict[str, int] | None = None
        if distribution == "worker":
            if not isinstance(workers, Mapping) or not workers:
                raise ConfigError(
                    "workers is missing; distribution 'worker' needs {location: worker count}"
                )
            # Checked once here, in full, by a split of one slot.
            worker_budgets(1, dict.fromkeys(workers, 0.0), dict(workers))
            self._workers = dict(workers)
        elif workers is not None:
            raise ConfigError(f"workers is set but distribution is {distribution!r}, not 'worker'")
        if not isinstance(store_failure, str):
            raise ArgumentTypeError(
                f"store_failure is {type(store_failure).__name__}; it must be a str"
            )
        if store_failure not in STORE_FAILURES:
            raise ConfigError(
                f"store_failure is {store_failure!r}; it must be one of {', '.join(STORE_FAILURES)}"
            )
        if isinstance(emergency_budget, bool) or not isinstance(emergency_budget, int):
            raise ArgumentTypeError(
                f"emergency_budget is {type(emergency_budget).__name__}; it must be an int"
            )
        if emergency_budget < 0:
            raise ConfigError(f"emergency_budget is {emergency_budget}; it must be >= 0")
        if emergency_budget and store_failure != "open":
            raise ConfigError(
                f"emergency_budget is {emergency_budget} but store_failure is "
                f"{store_failure!r}; only 'open' lets anybody in without the store"
            )
        self._store_failure = store_failure
        self._emergency_budget = emergency_budget
        # minute -> users let in under "open" while the store was unavailable
        self._emergency: dict[int, int] = {}
        self._config = config
        self._sealer = CookieSealer.from_config(
            config, keys, primary=primary, nonce_source=nonce_source
        )
        self._store = store
        self._clock = clock
        self._rng = rng
        self._plan_ttl = ttl
        self._distribution = distribution
        self._anywhere = pool
        self._let_in = LetInRate(alpha=let_in_alpha)
        self._growth = _QueueGrowth()
        self._lock = threading.Lock()
        self._current: _Minute | None = None
        # Cached per configuration: the limits every admission attempt carries.
        self._session_ms = round(config.session_duration * 1000.0)
        self._lifetime_ms = round(config.queued_cookie_lifetime * 1000.0)
        passthrough = config.queueing_method == "passthrough"
        self._minute_limit = None if passthrough else config.new_users_per_minute
        self._active_limit = None if passthrough else config.total_active_users

    # --- public --------------------------------------------------------------------------

    @property
    def config(self) -> WaitingRoomConfig:
        """The room's configuration.

        Runtime complexity: O(1).
        """
        return self._config

    @property
    def store(self) -> SlotStore:
        """The store holding the room's shared counts.

        Runtime complexity: O(1).
        """
        return self._store

    @property
    def sealer(self) -> CookieSealer:
        """The sealer of the room's cookies (its room id, cookie name and keys).

        Runtime complexity: O(1).
        """
        return self._sealer

    def handle(
        self,
        cookie: str | None,
        *,
        now: float | None = None,
        location: str | None = None,
        worker: int | None = None,
    ) -> Decision:
        """Decide one request (see the module docstring for the paths).

        Args:
            cookie: the value of the request's queue cookie (see
                :func:`~lbkit.waitingroom.cookies.read_cookie`), or ``None``.
            now: the time, seconds since the Unix epoch, from 0 to the end of the year 9999
                (what a status can show); the room's clock when ``None``.
            location: the location serving the request (counted in its traffic); required
                for the ``"location"`` and ``"worker"`` distributions.
            worker: the worker's index in its location; required for ``"worker"``.

        Raises:
            ArgumentTypeError: an argument of the wrong type.
            InvalidArgument: ``now`` outside 0 .. the year 9999, ``location`` or ``worker``
                missing or unknown where the distribution needs them.

        Runtime complexity: O(1) with the plan reused.

        >>> from lbkit.waitingroom import WaitingRoomConfig
        >>> config = WaitingRoomConfig(total_active_users=10, new_users_per_minute=5,
        ...                            queueing_method="reject")
        >>> room = WaitingRoom(config, keys={1: bytes(16)}, primary=1)
        >>> decision = room.handle("not a token", now=60.0)
        >>> decision.action, decision.cookie, decision.cookie_error
        ('reject', None, 'malformed')
        """
        moment = self._clock() if now is None else now
        if moment.__class__ is not float or not 0.0 <= moment <= _MAX_EPOCH:
            moment = _epoch_seconds(moment)
        if location is not None or worker is not None or self._distribution != "shared":
            self._check_place(location, worker)
        opened: QueueCookie | None = None
        error: str | None = None
        if cookie is not None:
            try:
                opened = self._sealer.open(cookie, now=moment)
            except InvalidCookie as refused:
                error = refused.reason
        if opened is not None and opened.accepted_at is not None:
            return self._session(cookie, opened, moment, error)
        config = self._config
        current = self._current
        if current is None or not current.made_at <= moment < current.until:
            current = self._minute_at(moment)
        if config.queueing_method == "reject":
            return Decision(
                action="reject",
                reason="rejected",
                status=self._status(current, None, config.refresh_interval, moment),
                cookie_state=opened,
                cookie_error=error,
                store_error=current.store_error,
            )
        if opened is not None:
            due = opened.last_check_in + opened.refresh_interval
            # Cookie times are held to the millisecond, so a client that waits exactly the
            # interval it was told may arrive a fraction of one early: that still counts.
            if moment < due - _RESOLUTION:
                wait = due - moment
                return _new_tuple(
                    Decision,
                    (
                        "queue",  # action
                        "early_check_in",  # reason
                        None,  # cookie
                        None,  # max_age
                        wait,  # refresh_interval
                        self._status(current, opened.bucket_id, wait, moment),  # status
                        opened,  # cookie_state
                        error,  # cookie_error
                        current.store_error,  # store_error
                    ),
                )
            bucket = opened.bucket_id
            interval = round(opened.refresh_interval * 1000.0)
            holds: tuple[int, int] | None = (bucket, math.ceil(opened.expires_at))
            group_of: int | None = bucket
        else:
            bucket = current.minute
            interval = self._draw_interval()
            holds = None
            group_of = None
        limits = current.caps.get(group_of)
        if limits is None:
            plan = current.plan
            limits = current.caps[group_of] = (plan.group(group_of), plan.cap(group_of))
        group, cap = limits
        # The room works in the cookie's whole milliseconds, so the seconds the store counts
        # a session or a place until are exactly those the cookie names, rounded up.
        moment_ms = round(moment * 1000.0)
        session_ends = moment_ms + self._session_ms
        place_ends = moment_ms + self._lifetime_ms
        # The per-request tuples are built by tuple.__new__, in field order: a NamedTuple's
        # keyword constructor costs about a microsecond more, per tuple, per request.
        ticket = _new_tuple(
            Admission,
            (
                current.minute,  # minute
                group,  # group
                cap,  # cap
                self._minute_limit,  # minute_limit
                self._active_limit,  # active_limit
                -(-session_ends // 1000),  # session_expires
                moment,  # now
                ()
                if cap is None or self._distribution == "shared"
                else self._shares(current, group, cap, location, worker),
                location,  # location
                holds,  # queued
                (bucket, -(-place_ends // 1000)),  # requeue
            ),
        )
        store_error = current.store_error
        try:
            let_in = self._store.try_admit(ticket)
        except StoreUnavailable as failure:
            store_error = str(failure)
            let_in = self._let_in_without_store(current.minute)
        if let_in:
            token, admitted = self._sealer.seal_milliseconds(
                bucket, moment_ms, interval, session_ends, moment_ms
            )
            return _new_tuple(
                Decision,
                (
                    "admit",  # action
                    "passthrough" if config.queueing_method == "passthrough" else "admitted",
                    token,  # cookie
                    config.session_duration,  # max_age
                    None,  # refresh_interval
                    None,  # status
                    admitted,  # cookie_state
                    error,  # cookie_error
                    store_error,  # store_error
                ),
            )
        token, queued = self._sealer.seal_milliseconds(
            bucket, moment_ms, interval, place_ends, None
        )
        # Until the next check-in counts: the interval, from this check-in's millisecond.
        wait = interval / 1000
        return _new_tuple(
            Decision,
            (
                "queue",  # action
                "queue_all" if config.queue_all else "queued",  # reason
                token,  # cookie
                config.queued_cookie_lifetime,  # max_age
                wait,  # refresh_interval
                self._status(current, bucket, wait, moment),  # status
                queued,  # cookie_state
                error,  # cookie_error
                store_error,  # store_error
            ),
        )

    def set_cookie_header(self, decision: Decision, *, https: bool) -> str | None:
        """The ``Set-Cookie`` header value for a decision (see
        :func:`~lbkit.waitingroom.cookies.set_cookie_header`), or ``None`` when the decision
        writes no cookie.

        Raises:
            ArgumentTypeError: ``decision`` is not a :class:`Decision`, ``https`` not a bool.

        Runtime complexity: O(1).

        >>> from lbkit.waitingroom import WaitingRoomConfig
        >>> config = WaitingRoomConfig(total_active_users=10, new_users_per_minute=5)
        >>> room = WaitingRoom(config, keys={1: bytes(16)}, primary=1)
        >>> header = room.set_cookie_header(room.handle(None, now=60.0), https=True)
        >>> print(header[:18], "...", header[90:])
        __Host-__lbkit_wr= ... Path=/; Max-Age=300; HttpOnly; Secure; SameSite=None
        """
        if not isinstance(decision, Decision):
            raise ArgumentTypeError(f"decision is {type(decision).__name__}; it must be a Decision")
        if decision.cookie is None or decision.max_age is None:
            return None
        return set_cookie_header(
            decision.cookie, self._config.cookie, https=https, max_age=decision.max_age
        )

    def __repr__(self) -> str:
        return (
            f"WaitingRoom(room_id={self._config.room_id!r}, "
            f"queueing_method={self._config.queueing_method!r}, "
            f"distribution={self._distribution!r})"
        )

    # --- the paths ---------------------------------------------------------------------

    def _session(
        self, token: str | None, opened: QueueCookie, moment: float, error: str | None
    ) -> Decision:
        config = self._config
        if config.disable_session_renewal:
            return Decision(
                action="admit",
                reason="session",
                cookie=token,
                max_age=opened.expires_at - moment,
                cookie_state=opened,
                cookie_error=error,
            )
        moment_ms = round(moment * 1000.0)
        last_ms = round(opened.last_check_in * 1000.0)
        if moment_ms <= last_ms:
            # Not after the last request (a proxy whose clock is behind another's): the
            # session already runs past this moment, and a renewal could only shorten it.
            return Decision(
                action="admit",
                reason="session",
                max_age=None,
                cookie_state=opened,
                cookie_error=error,
            )
        ends = moment_ms + self._session_ms
        store_error = None
        try:
            self._store.renew(math.ceil(opened.expires_at), -(-ends // 1000), now=moment)
        except StoreUnavailable as failure:
            # The session is honoured all the same: an admitted user is never turned away
            # because the store is down (it counts them again at their next renewal).
            store_error = str(failure)
        sealed, renewed = self._sealer.reseal_milliseconds(opened, moment_ms, ends)
        return _new_tuple(
            Decision,
            (
                "admit",  # action
                "session",  # reason
                sealed,  # cookie
                config.session_duration,  # max_age
                None,  # refresh_interval
                None,  # status
                renewed,  # cookie_state
                error,  # cookie_error
                store_error,  # store_error
            ),
        )

    def _minute_at(self, moment: float) -> _Minute:
        """A plan for ``moment``: made from a store snapshot (handle reuses the current one
        while ``made_at <= moment < until``)."""
        with self._lock:
            store_error = None
            try:
                snapshot = self._store.snapshot(now=moment)
            except StoreUnavailable as failure:
                # A plan from no counts: the store still enforces every limit on each
                # admission once it answers again, and until then store_failure decides.
                store_error = str(failure)
                state = MinuteState(math.floor(moment / MINUTE))
                traffic: Mapping[str, int] = {}
            else:
                state = snapshot.state
                traffic = snapshot.traffic
            plan = plan_minute(self._config, state, now=moment)
            let_in = self._let_in
            if store_error is None:
                for minute, admitted in snapshot.admitted_by_minute.items():
                    last = let_in.last_minute
                    if minute < plan.minute and (last is None or minute > last):
                        let_in.record(minute, admitted)
            if store_error is None:
                growth = self._growth.observe(moment, sum(plan.queued.values()))
            else:
                # A plan from no counts says nothing about the queue: it is not a sample.
                growth = self._growth.growth
            current = _Minute(
                plan,
                made_at=moment,
                until=moment + self._plan_ttl,
                rate=let_in.rate_at(plan.minute),
                traffic=traffic,
                store_error=store_error,
                growth=growth,
            )
            self._current = current
        return current

    def _let_in_without_store(self, minute: int) -> bool:
        """Under ``store_failure="open"``, whether this room may still let a user in this
        minute without the store (and count them); under ``"closed"``, never."""
        if self._store_failure != "open":
            return False
        with self._lock:
            used = self._emergency.get(minute, 0)
            if used >= self._emergency_budget:
                return False
            # Only this minute's count matters: the older ones are dropped.
            self._emergency = {minute: used + 1}
            return True

    def _shares(
        self,
        current: _Minute,
        group: int | None,
        cap: int,
        location: str | None,
        worker: int | None,
    ) -> tuple[tuple[str, int], ...]:
        """The shares of a cap under ``"location"`` or ``"worker"`` distribution."""
        assert location is not None
        key = (group, location, worker)
        shares = current.budgets.get(key)
        if shares is not None:
            return shares
        # A cap above the kernels' range is a cap no share can reach: split the range.
        total = min(cap, 2**32 - 1)
        if self._workers is not None:
            assert worker is not None
            traffic = {name: float(current.traffic.get(name, 0)) for name in self._workers}
            split = worker_budgets(total, traffic, self._workers, anywhere=self._anywhere)
            own: tuple[str, int] = (f"{location}#{worker}", split.budget(location, worker))
            pool = split.anywhere
        else:
            traffic = {name: float(count) for name, count in current.traffic.items()}
            traffic.setdefault(location, 0.0)
            budgets = location_budgets(total, traffic, anywhere=self._anywhere)
            own = (location, budgets.budget(location))
            pool = budgets.anywhere
        shares = (own, (ANYWHERE, pool)) if pool else (own,)
        current.budgets[key] = shares
        return shares

    def _status(
        self, current: _Minute, bucket: int | None, refresh: float, moment: float
    ) -> dict[str, Any]:
        # Under one plan, everything in a user's status but the refresh interval and the time
        # is the same for their whole bucket: it is built once (with the unchecked builder of
        # estimate.status, from the room's own checked values) and copied per request.
        shown = current.statuses.get(bucket)
        if shown is None:
            plan = current.plan
            waiting = current.waiting
            if bucket is not None and bucket not in plan.queued:
                waiting += 1  # a user who just joined is not in the plan yet
            wait = current.shared_wait
            if wait is None:
                ahead = current.users_ahead(bucket) if bucket is not None else current.waiting
                wait = _wait("fifo", waiting, current.rate, ahead, DEFAULT_PERCENTILES)
            shown = current.statuses[bucket] = _status(
                plan.method, current.made_at, refresh, waiting, wait, False
            )
        status = shown.copy()
        status["refresh_interval_seconds"] = refresh
        status["last_updated"] = _iso_utc(moment)
        status["last_updated_epoch"] = moment
        return status

    def _draw_interval(self) -> int:
        """A new user's refresh interval, whole milliseconds (>= 1)."""
        config = self._config
        spread = config.refresh_jitter * (2.0 * self._rng.random() - 1.0)
        return max(1, round(config.refresh_interval * 1000.0 * (1.0 + spread)))

    def _check_place(self, location: object, worker: object) -> None:
        if location is not None and not isinstance(location, str):
            raise ArgumentTypeError(f"location is {type(location).__name__}; it must be a str")
        if location == "" or location == ANYWHERE:
            raise InvalidArgument(
                f"location is {location!r}; it must be a non-empty name other than {ANYWHERE!r}"
            )
        if worker is not None and (isinstance(worker, bool) or not isinstance(worker, int)):
            raise ArgumentTypeError(f"worker is {type(worker).__name__}; it must be an int")
        if self._distribution == "shared":
            return
        if location is None:
            raise InvalidArgument(
                f"location is None; distribution {self._distribution!r} needs the request's "
                "location"
            )
        if self._workers is not None:
            if location not in self._workers:
                raise InvalidArgument(
                    f"location is {location!r}, which workers does not list "
                    f"({', '.join(sorted(self._workers))})"
                )
            if worker is None or not 0 <= worker < self._workers[location]:
                raise InvalidArgument(
                    f"worker is {worker!r}; location {location!r} has workers "
                    f"0..{self._workers[location] - 1}"
                )


# --- helpers -------------------------------------------------------------------------------


class _QueueGrowth:
    """The users a minute the queue grows by (arrivals minus admissions; negative while it
    drains), as the random estimate needs it: the median of the queue's last five slopes.

    A sample is the waiting count of a plan (the places of every bucket in the store's
    snapshot) taken at least a minute after the previous sample, and its slope is the change
    since that sample divided by the minutes between them, so a plan made late in a minute,
    or after a quiet spell, gives the true rate. The growth is the median of the last
    :data:`_GROWTH_SAMPLES` slopes, the slots not yet filled counting as 0 (no evidence of
    growth: the steady estimate). A median, not an EWMA like
    :class:`~lbkit.waitingroom.estimate.LetInRate`'s, because a burst (a hundred users
    arriving in one minute) is a step, not a rate: the queue is longer, which the estimate
    already sees, but it does not keep growing. An EWMA with the let-in rate's weight 0.3
    read such a step as growth for minutes on end (in the simulator's steady state it made
    the median estimate 37 % long), while a median of five ignores one or two odd minutes
    and follows a growth that lasts three. Only the snapshots' counts and moments go in, so
    a room given the same snapshots computes the same growth, in whatever process.

    The store counts admissions per minute but not arrivals; the waiting count is arrivals
    minus admissions minus places that lapsed, which is just how the raffle's crowd moves.

    Runtime complexity: O(1) per sample (a sort of five).

    >>> growth = _QueueGrowth()
    >>> growth.observe(0.0, 100), growth.observe(30.0, 500)  # under a minute: not a sample
    (0.0, 0.0)
    >>> [growth.observe(60.0 * minute, waiting)
    ...  for minute, waiting in enumerate([110, 310, 320, 330, 340, 350], start=1)]
    [0.0, 0.0, 10.0, 10.0, 10.0, 10.0]
    """

    __slots__ = ("_at", "_growth", "_slopes", "_waiting")

    def __init__(self) -> None:
        self._at: float | None = None
        self._waiting = 0
        self._slopes = collections.deque([0.0] * _GROWTH_SAMPLES, maxlen=_GROWTH_SAMPLES)
        self._growth = 0.0

    @property
    def growth(self) -> float:
        """The growth as of the last sample, users a minute."""
        return self._growth

    def observe(self, moment: float, waiting: int) -> float:
        """Take the waiting count at ``moment`` (seconds) as a sample when a minute or more has
        passed since the last one; return the growth."""
        if self._at is None:
            self._at, self._waiting = moment, waiting
            return self._growth
        elapsed = moment - self._at
        if not elapsed >= MINUTE:  # also a clock that went back
            return self._growth
        self._slopes.append((waiting - self._waiting) / (elapsed / MINUTE))
        self._growth = sorted(self._slopes)[_GROWTH_SAMPLES // 2]
        self._at, self._waiting = moment, waiting
        return self._growth


_new_tuple = tuple.__new__
# The resolution of the times a cookie holds, seconds.
_RESOLUTION: Final = 0.001
# How many of the queue's latest slopes the growth is the median of (odd).
_GROWTH_SAMPLES: Final = 5


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ConfigError(f"{name} is {value!r}; it must be finite")
    return seconds


def _check_cookie_ranges(config: WaitingRoomConfig) -> None:
    """The durations a cookie must hold, checked before the first request needs one."""
    for name in ("session_duration", "queued_cookie_lifetime"):
        value = getattr(config, name)
        if value > MAX_COOKIE_LIFETIME:
            raise ConfigError(
                f"{name} is {value!r}; a cookie holds at most {MAX_COOKIE_LIFETIME!r} seconds "
                "(49.7 days)"
            )
    longest = config.refresh_interval * (1.0 + config.refresh_jitter)
    if longest > MAX_REFRESH_INTERVAL:
        raise ConfigError(
            f"refresh_interval is {config.refresh_interval!r}; with refresh_jitter "
            f"{config.refresh_jitter!r} an interval reaches {longest:g} s, and a cookie holds "
            f"at most {MAX_REFRESH_INTERVAL!r} s (4.66 hours)"
        )
