"""Where a waiting room keeps the counts its proxies share: the :class:`SlotStore` protocol and
the in-process :class:`MemoryStore`.

A :class:`~lbkit.waitingroom.room.WaitingRoom` keeps no per-user state (that travels in the
user's cookie) and only a few shared counts, all of them counters keyed by whole numbers, as
:mod:`lbkit.waitingroom.allocator` specifies:

* **minute counters**: the admissions of each minute by group (a bucket under ``fifo``, or
  the new users' group ``None``), and their total;
* **share counters**: the admissions of each minute and group by a named share (a location,
  a worker, or the anywhere pool ``"*"``; see :mod:`lbkit.waitingroom.distribution`);
* **traffic**: the users each location saw in each minute, for next minute's shares;
* **queued places**: per bucket, the places counted by the whole second at which they lapse
  (:class:`~lbkit.waitingroom.allocator.BucketCounts`);
* **active users**: sessions counted by the whole second at which they lapse, the same way,
  so a user who stops browsing stops counting on their own, ``session_duration`` after their
  last request, without anyone having to notice.

The protocol has three calls. Every update that must be atomic is **one** call, so a networked
store can run each as one server-side operation (one Lua script in Redis) and a proxy makes at
most one store call per request:

* :meth:`SlotStore.try_admit` takes an :class:`Admission` and, atomically, either admits
  (every limit the ticket names holds: the group's cap for the minute, the minute's total, the
  active users, a share's budget) and counts the admission, the new session and the end of the
  user's queued place, or refuses and moves the user's queued place to its new expiry second;
* :meth:`SlotStore.renew` moves an admitted user's session to a later expiry second;
* :meth:`SlotStore.snapshot` reads the counts a plan is made from (a :class:`StoreSnapshot`);
  a room reads it about once a second, not per request.

The limits are checked inside :meth:`~SlotStore.try_admit`, against the store's counts at that
instant, so they hold however stale the caller's plan is and however many proxies share the
store: a minute never admits more than ``minute_limit``, and an admission never takes the
active users past ``active_limit``.

>>> store = MemoryStore()
>>> ticket = Admission(minute=10, group=None, cap=1, minute_limit=1, active_limit=5,
...                    session_expires=900, now=600.0, requeue=(10, 900))
>>> store.try_admit(ticket), store.try_admit(ticket)  # the cap of 1 is used by the first
(True, False)
>>> snapshot = store.snapshot(now=610.0)
>>> snapshot.state.active_users, snapshot.state.admitted_new, snapshot.state.queued(610.0)
(1, 1, {10: 1})
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NamedTuple, Protocol, runtime_checkable

import attrs

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, InvalidArgument
from lbkit.waitingroom.allocator import MINUTE, BucketCounts, MinuteState

__all__ = [
    "ANYWHERE",
    "HISTORY_MINUTES",
    "Admission",
    "MemoryStore",
    "SlotStore",
    "StoreSnapshot",
    "check_admission",
]

#: The share name of the anywhere pool.
ANYWHERE: Final = "*"
#: How many complete minutes of admissions a snapshot reports (for the let-in rate).
HISTORY_MINUTES: Final = 16


class Admission(NamedTuple):
    """One atomic admission attempt: what :meth:`SlotStore.try_admit` checks and counts.

    A tuple, so that a room builds one per request for the price of a tuple and a networked
    store can send its fields as the arguments of one script.

    Attributes:
        minute: the minute of the attempt (:func:`~lbkit.waitingroom.allocator.minute_of`).
        group: the minute counter the admission counts in: a bucket id, or ``None`` for new
            users (:meth:`~lbkit.waitingroom.allocator.MinutePlan.group`).
        cap: admit only while the group's counter for the minute is below this; ``None``: no
            cap (:meth:`~lbkit.waitingroom.allocator.MinutePlan.cap`).
        minute_limit: admit only while the minute's total is below this
            (``new_users_per_minute``); ``None``: no limit (``passthrough``).
        active_limit: admit only while the active users are below this
            (``total_active_users``); ``None``: no limit.
        session_expires: the whole second at which the new session lapses.
        now: the time of the attempt, seconds; sessions and places lapsed at ``now`` are not
            counted.
        shares: ``((name, budget), ...)``: admit only if one of these share counters for
            ``(minute, group, name)`` is below its budget; the first that is gets the
            admission. Empty: no share applies.
        location: the location that saw the user, counted in its traffic for the minute
            whatever the outcome; ``None`` counts nothing.
        queued: ``(bucket, expiry second)`` of the place the user holds now, or ``None``:
            removed when admitted, moved to ``requeue`` when not.
        requeue: ``(bucket, expiry second)`` of the place the user holds if not admitted, or
            ``None`` (nothing is queued).

    Runtime complexity: O(1).

    >>> Admission(minute=1, group=None, cap=None, minute_limit=None, active_limit=None,
    ...           session_expires=400, now=60.0).shares
    ()
    """

    minute: int
    group: int | None
    cap: int | None
    minute_limit: int | None
    active_limit: int | None
    session_expires: int
    now: float
    shares: tuple[tuple[str, int], ...] = ()
    location: str | None = None
    queued: tuple[int, int] | None = None
    requeue: tuple[int, int] | None = None


@attrs.frozen
class StoreSnapshot:
    """The counts a room plans from, read at one instant (:meth:`SlotStore.snapshot`).

    Attributes:
        state: the minute's :class:`~lbkit.waitingroom.allocator.MinuteState` (active users,
            admissions by group, queued places by bucket).
        traffic: ``{location: users seen}`` in the minute before: the traffic shares of
            :func:`~lbkit.waitingroom.distribution.location_budgets`.
        admitted_by_minute: ``{minute: admitted}`` for the complete minutes among the last
            :data:`HISTORY_MINUTES` in which anybody was admitted, oldest first (the input of
            :class:`~lbkit.waitingroom.estimate.LetInRate`).

    Runtime complexity: O(1).

    >>> MemoryStore().snapshot(now=60.0).state.minute
    1
    """

    state: MinuteState
    traffic: Mapping[str, int]
    admitted_by_minute: Mapping[int, int]


@runtime_checkable
class SlotStore(Protocol):
    """The shared counts of a waiting room. Each method is one atomic operation.

    Implementations: :class:`MemoryStore` (one process, thread-safe); a networked store
    (Redis) implements each method as one server-side script over the same keys.

    Runtime complexity: see each implementation.

    >>> isinstance(MemoryStore(), SlotStore)
    True
    """

    def snapshot(self, *, now: float) -> StoreSnapshot:
        """The counts of the minute ``now`` falls in, places and sessions lapsed at ``now``
        left out."""
        ...

    def try_admit(self, ticket: Admission) -> bool:
        """Admit if every limit of ``ticket`` holds, counting the admission (the group's and
        the minute's counters, the share, the session at ``session_expires``) and removing
        the ``queued`` place; otherwise move the place to ``requeue``. Traffic is counted
        either way. Returns whether the user was admitted."""
        ...

    def renew(self, previous: int, expires: int, *, now: float) -> None:
        """Move one session from expiry second ``previous`` to ``expires`` (an admitted user
        made a request). A ``previous`` that holds no session (lapsed, or never counted here)
        moves nothing and counts the session at ``expires``."""
        ...


def check_admission(ticket: object) -> Admission:
    """``ticket`` if it is a well-formed :class:`Admission`, else a clear error: what a store
    runs at its boundary before counting anything.

    Raises:
        ArgumentTypeError: not an Admission, or a field of the wrong type.
        InvalidArgument: a negative cap, limit or budget, a non-finite ``now`` or one
            outside ``minute``, an empty share or location name.

    Runtime complexity: O(len(shares)).

    >>> check_admission(Admission(minute=1, group=None, cap=-1, minute_limit=None,
    ...                           active_limit=None, session_expires=400, now=60.0))
    Traceback (most recent call last):
    ...
    lbkit.errors.InvalidArgument: cap is -1; it must be an int >= 0 or None
    """
    if ticket.__class__ is not Admission:
        raise ArgumentTypeError(f"ticket is {type(ticket).__name__}; it must be an Admission")
    assert isinstance(ticket, Admission)
    # A store checks every ticket, so the common one (the room's) is recognised by the
    # slotcounts kernel's plain_ticket; anything else takes the path that names the fault.
    if _kernels.slotcounts.plain_ticket(ticket):
        return ticket
    _int(ticket.minute, "minute")
    if ticket.group is not None:
        _int(ticket.group, "group")
    _limit(ticket.cap, "cap")
    _limit(ticket.minute_limit, "minute_limit")
    _limit(ticket.active_limit, "active_limit")
    _int(ticket.session_expires, "session_expires")
    if math.floor(_now(ticket.now) / MINUTE) != ticket.minute:
        raise InvalidArgument(
            f"minute is {ticket.minute} but now ({ticket.now!r}) is in minute "
            f"{math.floor(ticket.now / MINUTE)}; they must agree"
        )
    if ticket.shares.__class__ is not tuple:
        raise ArgumentTypeError(
            f"shares is {type(ticket.shares).__name__}; it must be a tuple of (name, budget)"
        )
    for share in ticket.shares:
        if share.__class__ is not tuple or len(share) != 2:
            raise ArgumentTypeError(f"shares holds {share!r}; each must be a (name, budget) tuple")
        _name(share[0], "a share name")
        _limit(share[1], f"the budget of share {share[0]!r}")
    if ticket.location is not None:
        _name(ticket.location, "location")
    for name in ("queued", "requeue"):
        place = getattr(ticket, name)
        if place is not None:
            if place.__class__ is not tuple or len(place) != 2:
                raise ArgumentTypeError(
                    f"{name} is {place!r}; it must be a (bucket, expiry second) tuple or None"
                )
            _int(place[0], f"the bucket of {name}")
            _int(place[1], f"the expiry second of {name}")
    return ticket


class MemoryStore:
    """A :class:`SlotStore` in this process's memory: for one proxy process (any number of
    threads), tests, and simulations.

    One lock makes every method atomic. Counts of old minutes (older than
    :data:`HISTORY_MINUTES` before the newest minute seen) are dropped as minutes pass, and
    lapsed places and sessions as time passes, so memory stays bounded by the room's users.
    The counters and the lock are kept by the ``slotcounts`` kernel (``lbkit._pure._slotcounts``
    is the specification): compiled, an admission attempt or a renewal is one C call, lock
    included, where in Python it was about a third of a room's decision on a queued check-in. The
    validation and the errors stay here: the kernel counts only plain tickets (exact ints,
    floats, strs and tuples, what a room sends) and hands any other back untouched, to be
    checked with :func:`check_admission` and converted.

    Runtime complexity: :meth:`try_admit` and :meth:`renew` O(len(shares) + log s) for s
    distinct session seconds; :meth:`snapshot` O(b + p) for b buckets and p place seconds.

    >>> store = MemoryStore()
    >>> store.renew(0, 360, now=60.0)  # a session the store did not know: counted at 360
    >>> store.snapshot(now=60.0).state.active_users, store.snapshot(now=360.0).state.active_users
    (1, 0)
    """

    def __init__(self) -> None:
        # Every counter lives in the slotcounts kernel (lbkit._pure._slotcounts is the
        # specification), whose one lock makes each of its calls atomic; this class adds the
        # validation and the public types.
        self._counts = _kernels.slotcounts.SlotCounts(HISTORY_MINUTES)

    # --- the protocol -------------------------------------------------------------------

    def snapshot(self, *, now: float) -> StoreSnapshot:
        """The counts of the minute ``now`` falls in (see :meth:`SlotStore.snapshot`).

        Raises:
            InvalidArgument: ``now`` is not finite.
            ArgumentTypeError: ``now`` is not a number.

        Runtime complexity: O(b + p) for b buckets and p place seconds.

        >>> MemoryStore().snapshot(now=125.0).state.minute
        2
        """
        moment = _now(now)
        minute, active, groups, buckets, traffic, history = self._counts.snapshot(moment)
        state = MinuteState(
            minute,
            active_users=active,
            admitted_new=groups.get(None, 0),
            admitted_by_bucket={
                group: count for group, count in groups.items() if group is not None
            },
            buckets=[BucketCounts(bucket, expiring=live) for bucket, live in buckets],
        )
        return StoreSnapshot(
            state=state,
            traffic=MappingProxyType(traffic),
            admitted_by_minute=MappingProxyType(history),
        )

    def try_admit(self, ticket: Admission) -> bool:
        """Admit if every limit of ``ticket`` holds (see :meth:`SlotStore.try_admit`).

        Raises:
            ArgumentTypeError, InvalidArgument: a malformed ticket (:func:`check_admission`).

        Runtime complexity: O(len(shares) + log s) for s distinct session seconds.

        >>> store = MemoryStore()
        >>> full = Admission(minute=0, group=None, cap=None, minute_limit=None, active_limit=0,
        ...                  session_expires=300, now=1.0, requeue=(0, 301))
        >>> store.try_admit(full)  # no room for another active user: queued instead
        False
        >>> dict(store.snapshot(now=2.0).state.buckets[0].expiring)
        {301: 1}
        """
        if ticket.__class__ is not Admission:
            check_admission(ticket)  # raises
        # The kernel checks that the ticket is plain (a room's always is) before it counts
        # anything; any other ticket is validated here, then made plain. A ticket made plain
        # is counted by a second call: atomic on its own, like the first would have been.
        outcome = self._counts.admit(ticket)
        if outcome == _NOT_PLAIN:
            plain = _made_plain(check_admission(ticket))
            outcome = self._counts.admit(plain)
            assert outcome != _NOT_PLAIN, plain
        return outcome == _ADMITTED

    def renew(self, previous: int, expires: int, *, now: float) -> None:
        """Move one session from second ``previous`` to ``expires`` (see
        :meth:`SlotStore.renew`).

        Raises:
            ArgumentTypeError: a second that is not an int, ``now`` not a number.
            InvalidArgument: ``now`` is not finite.

        Runtime complexity: O(log s) for s distinct session seconds.

        >>> store = MemoryStore()
        >>> store.renew(0, 400, now=100.0); store.renew(400, 460, now=160.0)
        >>> store.snapshot(now=420.0).state.active_users
        1
        """
        if self._counts.renew(previous, expires, now) == _NOT_PLAIN:
            plain = (int(_int(previous, "previous")), int(_int(expires, "expires")), _now(now))
            outcome = self._counts.renew(*plain)
            assert outcome != _NOT_PLAIN, plain

    def _check(self) -> None:
        """Assert every invariant of the counts (for tests between random steps)."""
        self._counts.check()

    def __repr__(self) -> str:
        active, buckets, minutes = self._counts.sizes()
        return f"MemoryStore(active_users={active}, buckets={buckets}, minutes={minutes})"


# --- validation ------------------------------------------------------------------------------

_LARGEST: Final = 2.0**1023
# The slotcounts kernel's outcomes (equal on both paths: a parity test compares constants).
_ADMITTED: Final = _kernels.slotcounts.ADMITTED
_NOT_PLAIN: Final = _kernels.slotcounts.NOT_PLAIN
_new_tuple = tuple.__new__


def _made_plain(ticket: Admission) -> Admission:
    """A checked ticket with every field of its exact plain type (int subclasses as ints, an
    int ``now`` as a float, str subclasses as str): what the slotcounts kernel counts."""

    def place(value: tuple[int, int] | None) -> tuple[int, int] | None:
        return None if value is None else (int(value[0]), int(value[1]))

    def limit(value: int | None) -> int | None:
        return None if value is None else int(value)

    return _new_tuple(
        Admission,
        (
            int(ticket.minute),
            limit(ticket.group),
            limit(ticket.cap),
            limit(ticket.minute_limit),
            limit(ticket.active_limit),
            int(ticket.session_expires),
            _now(ticket.now),
            tuple((str(name), int(budget)) for name, budget in ticket.shares),
            None if ticket.location is None else str(ticket.location),
            place(ticket.queued),
            place(ticket.requeue),
        ),
    )


def _int(value: object, name: str) -> int:
    if value.__class__ is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    return value


def _limit(value: object, name: str) -> None:
    if value is not None and (_int(value, name) < 0):
        raise InvalidArgument(f"{name} is {value}; it must be an int >= 0 or None")


def _now(value: object) -> float:
    if value.__class__ is float and -_LARGEST < value < _LARGEST:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"now is {type(value).__name__}; it must be a number")
    try:
        moment = float(value)
    except OverflowError:  # an int past the largest float
        moment = math.inf
    if not math.isfinite(moment):
        raise InvalidArgument(f"now is {value!r}; it must be finite")
    return moment


def _name(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a str")
    if not value:
        raise InvalidArgument(f"{name} is ''; it must be a non-empty str")
