"""Minute accounting: how many users may enter a waiting room's origin this minute, and who.

The rules follow Cloudflare Waiting Room. Time is cut into minutes (minute id
``floor(now / 60)``). A user who has to wait gets a cookie naming their **bucket**: the id of the
minute they started queueing in. At any moment of a minute the slots still open are

    ``available = min(total_active_users - active users,
    new_users_per_minute - users admitted so far this minute)``, never below 0,

and :func:`plan_minute` hands them out by the queueing method:

* ``fifo``: slots are reserved for the queued buckets oldest first, each up to the number of
  its users still queued; the first bucket that does not fit gets what is left (a partial
  reservation) and younger buckets get nothing. Slots left after every queued user has a
  reservation go to **new users** (no cookie yet), so nobody overtakes the queue.
* ``random``: every user is treated as new: whoever checks in while slots remain may enter,
  queued or not. The FIFO reservations are still computed and kept in the plan, and the users'
  buckets are kept in their cookies and in the store, so switching back to ``fifo`` (at any
  minute) serves the buckets in arrival order again.
* ``passthrough``: everyone enters (and is still counted). ``reject``: nobody new enters.
  ``queue_all`` (any method): nobody enters; the queue builds up in arrival order for an event.

A plan is a snapshot. A proxy admits a user when :func:`may_admit` says so, counting the
admission in the minute's counter of the user's group (:meth:`MinutePlan.group`: the user's
bucket under ``fifo``, ``None`` for new users and for everybody under ``random``). Caps are
totals for the minute, admissions made before the plan included, so a plan recomputed in
mid-minute (as sessions lapse, for instance) stays consistent with the counters. Per request,
a proxy in front of a store does:

1. ``minute = minute_of(now)``; the plan of this minute (made from the store's
   :class:`MinuteState` with :func:`plan_minute`, kept for a few seconds or the minute);
2. for a user whose refresh interval has passed, ``group = plan.group(bucket)`` (``bucket``
   from the cookie, ``None`` without one) and one atomic store call: "if the ``(minute,
   group)`` counter is below ``plan.cap(bucket)``, increment it (and the active users)";
   without a limit (``cap`` is ``None``) the increment alone;
3. admitted from the queue: remove the user's place (:meth:`BucketCounts.left`); still
   queued: move it to the new expiry second (:meth:`BucketCounts.checked_in`), or, for a user
   without a cookie, add one in bucket ``minute`` (:meth:`BucketCounts.joined`).

**Queued places and abandonment.** A queued user keeps their place while they check in; if
they stop, the place lapses ``queued_cookie_lifetime`` seconds after their last check-in, and a
bucket whose users have all stopped is released, so abandoned users never block the queue. The
state that tracks this, :class:`BucketCounts`, counts each bucket's places by the whole second
at which they lapse, :func:`expiry_second` (``ceil(last_check_in + lifetime)``: a place is
released at the lifetime exactly when check-ins fall on whole seconds, at most one second
later otherwise, never early). Every change is one counter increment or a pair of them, which
a networked store keeps with atomic operations (one Redis hash per bucket, ``HINCRBY``; a
script for the pair):

* a user starts queueing: ``+1`` at their expiry second;
* a queued user checks in: ``-1`` at the old expiry second (carried in their cookie), ``+1``
  at the new one;
* a queued user is admitted (or leaves): ``-1`` at their expiry second;
* lapsed seconds (``<= now``) are deleted whenever convenient (:func:`release_abandoned`).
  Only seconds after ``now`` are ever summed, so a decrement that races with a deletion and
  leaves a stray entry on a lapsed second changes no result.

Counting by expiry second rather than keeping one "last check-in" time per bucket releases
each abandoned user on their own, so a bucket that is mostly abandoned does not hold slots for
its missing users until its last user goes, and costs at most ``lifetime + 1`` counters per
bucket. The minute counters (``admitted_new``, ``admitted_by_bucket``) are plain increments
keyed by minute; active users are the store's business.

Worked example: an origin for 1000 users with 200 new users a minute. At 12:05 (minute 12)
900 users are active and 150 were admitted this minute, so 50 slots remain; 30 users queue
since minute 10, 40 since minute 11 and 25 since minute 12:

>>> from lbkit.waitingroom import WaitingRoomConfig
>>> config = WaitingRoomConfig(total_active_users=1000, new_users_per_minute=200)
>>> available_slots(config, active_users=900, admitted=150)
50
>>> state = MinuteState(
...     12, active_users=900, admitted_new=150,
...     buckets=[BucketCounts(10, expiring={900: 30}), BucketCounts(11, expiring={910: 40}),
...              BucketCounts(12, expiring={1020: 25})])
>>> plan = plan_minute(config, state, now=725.0)
>>> plan.available, dict(plan.reservations), plan.new_user_slots
(50, {10: 30, 11: 20, 12: 0}, 0)
>>> may_admit(plan, 11, admitted=19), may_admit(plan, 11, admitted=20)
(True, False)
>>> may_admit(plan, None, admitted=150)  # new users wait until every queued user has a slot
False

Under ``random`` the same reservations are kept, but all 50 slots are open to anyone:

>>> import attrs
>>> plan = plan_minute(attrs.evolve(config, queueing_method="random"), state, now=725.0)
>>> dict(plan.reservations), plan.new_user_slots, plan.group(11), plan.cap(11)
({10: 30, 11: 20, 12: 0}, 50, None, 200)

If the 30 users of minute 10 stop checking in, their places lapse at second 900:

>>> state.buckets[0].queued(899.0), state.buckets[0].queued(900.0)
(30, 0)
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, InvalidArgument
from lbkit.waitingroom.config import WaitingRoomConfig

__all__ = [
    "MINUTE",
    "BucketCounts",
    "MinutePlan",
    "MinuteState",
    "Release",
    "available_slots",
    "expiry_second",
    "may_admit",
    "minute_of",
    "plan_minute",
    "release_abandoned",
]

#: Seconds in one accounting minute.
MINUTE: Final = 60.0

# Counts above this are passed to the int64 kernel as this: slots never exceed it either, so a
# reservation is the same whether a bucket holds 2**62 users or more.
_KERNEL_CEILING: Final = 2**62


# --- validation helpers ------------------------------------------------------------------------


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    return int(value)


def _count(value: object, name: str) -> int:
    count = _int(value, name)
    if count < 0:
        raise InvalidArgument(f"{name} is {count}; it must be an int >= 0")
    return count


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise InvalidArgument(f"{name} is {value!r}; it must be a finite number of seconds")
    return seconds


def _counts(value: object, name: str) -> Mapping[int, int]:
    """A read-only ``{int: count}`` in key order, zero counts dropped."""
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a mapping")
    checked: dict[int, int] = {}
    for key in sorted(value, key=lambda key: _int(key, f"a key of {name}")):
        count = _count(value[key], f"{name}[{key}]")
        if count:
            checked[int(key)] = count
    return MappingProxyType(checked)


def _int_field(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    _int(value, attribute.name)


def _count_field(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    _count(value, attribute.name)


def _expiring(value: object) -> Mapping[int, int]:
    return _counts(value, "expiring")


def _admitted_by_bucket(value: object) -> Mapping[int, int]:
    return _counts(value, "admitted_by_bucket")


def _room_config(value: object) -> WaitingRoomConfig:
    if not isinstance(value, WaitingRoomConfig):
        raise ArgumentTypeError(f"config is {type(value).__name__}; it must be a WaitingRoomConfig")
    return value


# --- time ----------------------------------------------------------------------------------------


def minute_of(now: float) -> int:
    """The id of the minute that ``now`` (seconds) falls in: ``floor(now / 60)``; a user who
    starts queueing at ``now`` gets this bucket.

    Raises:
        InvalidArgument: ``now`` is not finite.
        ArgumentTypeError: ``now`` is not a number.

    Runtime complexity: O(1).

    >>> minute_of(0.0), minute_of(59.999), minute_of(60.0), minute_of(-0.5)
    (0, 0, 1, -1)
    """
    return math.floor(_seconds(now, "now") / MINUTE)


def expiry_second(last_check_in: float, lifetime: float) -> int:
    """The whole second at which a queued place lapses: ``ceil(last_check_in + lifetime)``.

    The place counts while ``now`` is before this second; rounding up means a place never
    lapses early and at most one second late.

    Args:
        last_check_in: when the user last checked in, seconds.
        lifetime: the queued-cookie lifetime, seconds (finite, > 0).

    Raises:
        InvalidArgument: a time that is not finite, a lifetime that is not > 0.
        ArgumentTypeError: an argument that is not a number.

    Runtime complexity: O(1).

    >>> expiry_second(600.0, 300.0), expiry_second(600.25, 300.0)
    (900, 901)
    """
    start = _seconds(last_check_in, "last_check_in")
    span = _seconds(lifetime, "lifetime")
    if span <= 0.0:
        raise InvalidArgument(f"lifetime is {lifetime!r}; it must be > 0 seconds")
    return math.ceil(start + span)


# --- state -----------------------------------------------------------------------------------


@attrs.frozen
class BucketCounts:
    """The queued places of one bucket, counted by the whole second at which they lapse.

    Args:
        bucket: the bucket id (the minute its users started queueing in).
        expiring: ``{expiry second: places}``; see :func:`expiry_second`. Zero counts are
            dropped; the mapping is kept read-only, in second order.

    Raises:
        InvalidArgument: a negative count.
        ArgumentTypeError: a bucket, second or count that is not an int, ``expiring`` not a
            mapping.

    The methods return new snapshots; they are the store's updates, written once here as the
    specification (see the module docstring for the atomic form).

    Runtime complexity: O(k log k) to build, for k distinct seconds.

    >>> BucketCounts(7, expiring={480: 2, 470: 1, 500: 0})
    BucketCounts(bucket=7, expiring=mappingproxy({470: 1, 480: 2}))
    """

    bucket: int = attrs.field(validator=_int_field)
    expiring: Mapping[int, int] = attrs.field(factory=dict, kw_only=True, converter=_expiring)

    def queued(self, now: float) -> int:
        """The places that have not lapsed at ``now``: the counts of seconds after ``now``.

        Runtime complexity: O(k) for k distinct seconds.

        >>> BucketCounts(7, expiring={480: 2, 500: 1}).queued(480.0)
        1
        """
        return self._queued_at(_seconds(now, "now"))

    def _queued_at(self, moment: float) -> int:
        return sum(count for second, count in self.expiring.items() if second > moment)

    def joined(self, expires: int, *, count: int = 1) -> BucketCounts:
        """Add ``count`` places lapsing at second ``expires`` (users who start queueing).

        Runtime complexity: O(k log k).

        >>> BucketCounts(7).joined(480).expiring[480]
        1
        """
        second = _int(expires, "expires")
        added = _count(count, "count")
        counts = dict(self.expiring)
        counts[second] = counts.get(second, 0) + added
        return BucketCounts(self.bucket, expiring=counts)

    def checked_in(self, previous: int, expires: int) -> BucketCounts:
        """Move one place from second ``previous`` to second ``expires`` (a queued user checks
        in). If no place is counted at ``previous`` (it lapsed and was released, or the store
        lost it), the user is counted again at ``expires``: counts never go negative.

        Runtime complexity: O(k log k).

        >>> dict(BucketCounts(7, expiring={480: 2}).checked_in(480, 500).expiring)
        {480: 1, 500: 1}
        """
        return self.left(previous).joined(expires)

    def left(self, previous: int) -> BucketCounts:
        """Remove one place at second ``previous`` (a queued user is admitted or gives up);
        nothing changes when no place is counted there.

        Runtime complexity: O(k log k).

        >>> BucketCounts(7, expiring={480: 1}).left(480).queued(0.0)
        0
        """
        second = _int(previous, "previous")
        counts = dict(self.expiring)
        if counts.get(second, 0) > 0:
            counts[second] -= 1
        return BucketCounts(self.bucket, expiring=counts)

    def released(self, now: float) -> BucketCounts:
        """Drop the places that have lapsed at ``now`` (seconds ``<= now``).

        Runtime complexity: O(k log k).

        >>> dict(BucketCounts(7, expiring={480: 2, 500: 1}).released(480.0).expiring)
        {500: 1}
        """
        moment = _seconds(now, "now")
        return BucketCounts(
            self.bucket,
            expiring={second: count for second, count in self.expiring.items() if second > moment},
        )


def _buckets(value: object) -> tuple[BucketCounts, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(
            f"buckets is {type(value).__name__}; it must be an iterable of BucketCounts"
        )
    buckets: list[BucketCounts] = []
    for item in value:
        if not isinstance(item, BucketCounts):
            raise ArgumentTypeError(
                f"buckets holds a {type(item).__name__}; it must hold BucketCounts"
            )
        buckets.append(item)
    buckets.sort(key=lambda item: item.bucket)
    for before, after in itertools.pairwise(buckets):
        if before.bucket == after.bucket:
            raise InvalidArgument(
                f"buckets holds bucket {after.bucket} twice; each bucket must appear once"
            )
    return tuple(buckets)


@attrs.frozen
class MinuteState:
    """What the store knows at one moment of one minute: the input of :func:`plan_minute`.

    Args:
        minute: the minute id (:func:`minute_of`) the counters below belong to.
        active_users: users with a live session now, those admitted this minute included.
        admitted_new: users admitted this minute as new users (no bucket, or everybody under
            ``random``); counted in the minute's ``None`` group.
        admitted_by_bucket: users admitted this minute from each bucket under ``fifo``.
        buckets: the queued places of each bucket (any order; kept oldest first).

    Raises:
        InvalidArgument: a negative count, a bucket listed twice.
        ArgumentTypeError: a value of the wrong type.

    Runtime complexity: O(b log b + entries) to build, for b buckets.

    >>> MinuteState(3, active_users=10, admitted_by_bucket={1: 4, 2: 0}).admitted
    4
    """

    minute: int = attrs.field(validator=_int_field)
    active_users: int = attrs.field(default=0, kw_only=True, validator=_count_field)
    admitted_new: int = attrs.field(default=0, kw_only=True, validator=_count_field)
    admitted_by_bucket: Mapping[int, int] = attrs.field(
        factory=dict, kw_only=True, converter=_admitted_by_bucket
    )
    buckets: tuple[BucketCounts, ...] = attrs.field(default=(), kw_only=True, converter=_buckets)

    @property
    def admitted(self) -> int:
        """Users admitted this minute, all groups together."""
        return self.admitted_new + sum(self.admitted_by_bucket.values())

    def queued(self, now: float) -> dict[int, int]:
        """``{bucket: places not lapsed at now}``, oldest first, buckets with none left out.

        Runtime complexity: O(total entries).

        >>> MinuteState(9, buckets=[BucketCounts(8, expiring={600: 2})]).queued(590.0)
        {8: 2}
        """
        moment = _seconds(now, "now")
        queued: dict[int, int] = {}
        for bucket in self.buckets:
            count = bucket._queued_at(moment)
            if count:
                queued[bucket.bucket] = count
        return queued


# --- the plan ------------------------------------------------------------------------------


def available_slots(config: WaitingRoomConfig, *, active_users: int, admitted: int) -> int:
    """Slots still open this minute: ``min(total_active_users - active_users,
    new_users_per_minute - admitted)``, never below 0.

    Args:
        config: the room's configuration.
        active_users: users with a live session now (those admitted this minute included).
        admitted: users admitted so far this minute.

    Raises:
        InvalidArgument: a negative count.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(1).

    >>> from lbkit.waitingroom import WaitingRoomConfig
    >>> config = WaitingRoomConfig(total_active_users=100, new_users_per_minute=30)
    >>> available_slots(config, active_users=90, admitted=5)  # the active users limit binds
    10
    >>> available_slots(config, active_users=10, admitted=5)  # the per-minute limit binds
    25
    >>> available_slots(config, active_users=120, admitted=0)  # never below 0
    0
    """
    room = _room_config(config)
    active = _count(active_users, "active_users")
    entered = _count(admitted, "admitted")
    return max(0, min(room.total_active_users - active, room.new_users_per_minute - entered))


@attrs.frozen
class MinutePlan:
    """Who may enter for the rest of one minute: the result of :func:`plan_minute`.

    Attributes:
        method: the queueing method the plan was made for.
        minute: the minute id.
        admitting: ``False`` under ``reject`` or ``queue_all``: nobody more enters.
        available: the slots that were open when the plan was made (:func:`available_slots`).
        reservations: ``{bucket: slots}`` for every bucket with queued users, oldest first:
            the FIFO reservations, computed (and kept) under every method.
        new_user_slots: the slots open to the ``None`` group: under ``fifo`` what is left
            after the reservations, under ``random`` and ``passthrough`` all of ``available``,
            0 when not admitting.
        queued: ``{bucket: queued users}`` the reservations were made for.
        admitted_new: the ``None`` group's admissions this minute before the plan.
        admitted_by_bucket: each bucket's admissions this minute before the plan.

    Runtime complexity: O(1) per method call.

    >>> from lbkit.waitingroom import WaitingRoomConfig
    >>> config = WaitingRoomConfig(total_active_users=5, new_users_per_minute=5)
    >>> plan_minute(config, MinuteState(0), now=0.0).new_user_slots
    5
    """

    method: str
    minute: int
    admitting: bool
    available: int
    reservations: Mapping[int, int]
    new_user_slots: int
    queued: Mapping[int, int]
    admitted_new: int
    admitted_by_bucket: Mapping[int, int]

    @property
    def reserved(self) -> int:
        """The slots reserved for queued buckets, in total."""
        return sum(self.reservations.values())

    def group(self, bucket: int | None) -> int | None:
        """The minute counter an admission of a user from ``bucket`` (``None``: no cookie)
        counts in: the bucket itself under ``fifo`` when it has queued users, else ``None``
        (the new users' group, which under ``fifo`` only opens once every queued user has a
        reservation).

        Runtime complexity: O(1).

        >>> from lbkit.waitingroom import WaitingRoomConfig
        >>> config = WaitingRoomConfig(total_active_users=5, new_users_per_minute=5)
        >>> state = MinuteState(0, buckets=[BucketCounts(-1, expiring={300: 1})])
        >>> plan = plan_minute(config, state, now=0.0)
        >>> plan.group(-1), plan.group(-2), plan.group(None)
        (-1, None, None)
        """
        if bucket is not None:
            _int(bucket, "bucket")
        if self.method == "fifo" and bucket is not None and bucket in self.reservations:
            return bucket
        return None

    def cap(self, bucket: int | None) -> int | None:
        """The most admissions :meth:`group` ``(bucket)`` may count this minute, those made
        before the plan included; ``None`` means no limit (``passthrough``).

        Runtime complexity: O(1).

        >>> from lbkit.waitingroom import WaitingRoomConfig
        >>> config = WaitingRoomConfig(total_active_users=5, new_users_per_minute=5)
        >>> state = MinuteState(0, admitted_new=1, buckets=[BucketCounts(-1, expiring={300: 3})])
        >>> plan = plan_minute(config, state, now=0.0)
        >>> plan.cap(-1), plan.cap(None)
        (3, 2)
        """
        group = self.group(bucket)
        before = self.admitted_new if group is None else self.admitted_by_bucket.get(group, 0)
        if not self.admitting:
            return before
        if self.method == "passthrough":
            return None
        if group is None:
            return before + self.new_user_slots
        return before + self.reservations[group]


def plan_minute(config: WaitingRoomConfig, state: MinuteState, *, now: float) -> MinutePlan:
    """Hand out the slots still open this minute by the room's queueing method.

    Places that have lapsed at ``now`` do not count (see :class:`BucketCounts`). The FIFO
    reservations come from the ``reserve_fifo`` kernel over the buckets, oldest first.

    Args:
        config: the room's configuration.
        state: the store's counters for the minute ``now`` falls in.
        now: the time of the plan, seconds.

    Raises:
        InvalidArgument: ``now`` is not finite or not in ``state.minute``.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(entries) over the buckets' expiry seconds.

    >>> from lbkit.waitingroom import WaitingRoomConfig
    >>> config = WaitingRoomConfig(total_active_users=100, new_users_per_minute=10)
    >>> state = MinuteState(1, buckets=[BucketCounts(0, expiring={400: 4}),
    ...                                 BucketCounts(1, expiring={400: 9})])
    >>> plan = plan_minute(config, state, now=61.0)
    >>> dict(plan.reservations), plan.new_user_slots
    ({0: 4, 1: 6}, 0)
    """
    room = _room_config(config)
    if not isinstance(state, MinuteState):
        raise ArgumentTypeError(f"state is {type(state).__name__}; it must be a MinuteState")
    moment = _seconds(now, "now")
    minute = minute_of(moment)
    if minute != state.minute:
        raise InvalidArgument(
            f"state is for minute {state.minute} but now ({moment!r}) is in minute {minute}; "
            "plan with the counters of the current minute"
        )
    available = available_slots(room, active_users=state.active_users, admitted=state.admitted)
    queued = state.queued(moment)
    counts = array("q", [min(count, _KERNEL_CEILING) for count in queued.values()])
    slots, _ = _kernels.waitingroom.reserve_fifo(min(available, _KERNEL_CEILING), counts)
    reservations = dict(zip(queued, slots, strict=True))
    admitting = room.queueing_method != "reject" and not room.queue_all
    if not admitting:
        new_user_slots = 0
    elif room.queueing_method == "fifo":
        new_user_slots = available - sum(reservations.values())
    else:
        new_user_slots = available
    return MinutePlan(
        method=room.queueing_method,
        minute=minute,
        admitting=admitting,
        available=available,
        reservations=MappingProxyType(reservations),
        new_user_slots=new_user_slots,
        queued=MappingProxyType(queued),
        admitted_new=state.admitted_new,
        admitted_by_bucket=state.admitted_by_bucket,
    )


def may_admit(plan: MinutePlan, bucket: int | None, *, admitted: int) -> bool:
    """Whether one more user from ``bucket`` (``None``: no cookie) may enter now.

    Args:
        plan: the current minute's plan.
        bucket: the user's bucket, from their cookie, or ``None``.
        admitted: the admissions counted so far this minute in ``plan.group(bucket)``.

    Returns:
        ``admitted < plan.cap(bucket)`` (always ``True`` under ``passthrough``). A proxy that
        gets ``True`` counts the admission in that group (with a networked store, the check
        and the increment are one atomic "increment if below" call).

    Raises:
        InvalidArgument: ``admitted`` is negative.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(1).

    >>> from lbkit.waitingroom import WaitingRoomConfig
    >>> config = WaitingRoomConfig(total_active_users=5, new_users_per_minute=2)
    >>> plan = plan_minute(config, MinuteState(0), now=0.0)
    >>> may_admit(plan, None, admitted=1), may_admit(plan, None, admitted=2)
    (True, False)
    """
    if not isinstance(plan, MinutePlan):
        raise ArgumentTypeError(f"plan is {type(plan).__name__}; it must be a MinutePlan")
    count = _count(admitted, "admitted")
    cap = plan.cap(bucket)
    return cap is None or count < cap


@attrs.frozen
class Release:
    """The result of :func:`release_abandoned`.

    Attributes:
        buckets: the buckets that still hold places, with lapsed seconds dropped, oldest first.
        released_users: how many places lapsed.
        released_buckets: the ids of buckets left with no place (released whole).

    >>> release_abandoned([BucketCounts(1, expiring={60: 2})], now=60.0).released_buckets
    (1,)
    """

    buckets: tuple[BucketCounts, ...]
    released_users: int
    released_buckets: tuple[int, ...]


def release_abandoned(buckets: Iterable[BucketCounts], *, now: float) -> Release:
    """Drop the places that have lapsed at ``now`` and the buckets left empty.

    A place lapses at its expiry second (:func:`expiry_second` of the user's last check-in
    and the queued-cookie lifetime), so a bucket whose users all stopped checking in is
    released one lifetime after the last check-in among them.

    Raises:
        InvalidArgument: ``now`` is not finite, a bucket listed twice.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(b log b + entries).

    >>> kept = BucketCounts(1, expiring={900: 3, 930: 1})
    >>> release = release_abandoned([kept, BucketCounts(2, expiring={899: 5})], now=900.0)
    >>> [dict(bucket.expiring) for bucket in release.buckets], release.released_users
    ([{930: 1}], 8)
    """
    moment = _seconds(now, "now")
    kept: list[BucketCounts] = []
    emptied: list[int] = []
    released = 0
    for bucket in _buckets(buckets):
        remaining = bucket.released(moment)
        released += sum(bucket.expiring.values()) - sum(remaining.expiring.values())
        if remaining.expiring:
            kept.append(remaining)
        else:
            emptied.append(bucket.bucket)
    return Release(buckets=tuple(kept), released_users=released, released_buckets=tuple(emptied))
