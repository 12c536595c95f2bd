"""The counts of an in-process waiting-room store, reference implementation: what
:class:`~lbkit.waitingroom.store.MemoryStore` does under its lock.

:class:`SlotCounts` holds every counter of :mod:`lbkit.waitingroom.store` (admissions by
minute and group, their totals, share counters, traffic by minute and location, queued places
and sessions by the whole second at which they lapse) and applies one admission attempt or one
session renewal per call. Every method is atomic: each holds the counts' one lock while it
reads or changes them (a store adds no lock of its own).

Arguments are the store's, but each update call first checks that its arguments are **plain**
(exact ``int``, ``float``, ``str`` and ``tuple`` values in range, the form a room's tickets
take) and returns :data:`NOT_PLAIN` without changing anything when they are not. The store then
runs its full validation, which either raises the error that names the fault or converts the
arguments to plain ones for a second call. That keeps the per-request check in the kernel
while the error messages live once, in the public module.
"""

from __future__ import annotations

import heapq
import math
import threading
from typing import Any

#: :meth:`SlotCounts.admit`: the user was admitted.
ADMITTED = 1
#: :meth:`SlotCounts.admit`: a limit held the user back; their place moved to ``requeue``.
REFUSED = 0
#: An update's arguments were not plain; nothing was changed.
NOT_PLAIN = -1

_MINUTE = 60

Place = tuple[int, int]
Snapshot = tuple[
    int, int, dict[Any, int], list[tuple[int, dict[int, int]]], dict[str, int], dict[int, int]
]


def _plain_place(place: object) -> bool:
    return (
        place.__class__ is tuple
        and len(place) == 2
        and place[0].__class__ is int
        and place[1].__class__ is int
    )


def _plain_limit(value: object) -> bool:
    return value is None or (value.__class__ is int and value >= 0)


def _plain_shares(shares: object) -> bool:
    if shares.__class__ is not tuple:
        return False
    for share in shares:
        if not (
            share.__class__ is tuple
            and len(share) == 2
            and share[0].__class__ is str
            and share[0] != ""
            and share[1].__class__ is int
            and share[1] >= 0
        ):
            return False
    return True


def _plain_now(now: object) -> bool:
    # now - now is 0.0 for every finite float and NaN for NaN and the infinities.
    return now.__class__ is float and now - now == 0.0


def plain_ticket(ticket: tuple[Any, ...]) -> bool:
    """Whether the 11 fields of an :class:`~lbkit.waitingroom.store.Admission` are plain, so
    that :meth:`SlotCounts.admit` counts it as it is: exact ints for the minute, the group and
    the seconds, ints >= 0 or None for the cap and limits, a finite float ``now`` in
    ``minute`` (``floor(now / 60)``), a tuple of ``(non-empty str, int >= 0)`` shares, a
    non-empty str or None for the location, ``(int, int)`` or None for the places.

    Raises:
        TypeError: ``ticket`` is not a tuple.
    """
    if not isinstance(ticket, tuple):
        raise TypeError(f"ticket is {type(ticket).__name__}; it must be a tuple")
    (
        minute,
        group,
        cap,
        minute_limit,
        active_limit,
        session_expires,
        now,
        shares,
        location,
        queued,
        requeue,
    ) = ticket
    return (
        minute.__class__ is int
        and (group is None or group.__class__ is int)
        and _plain_limit(cap)
        and _plain_limit(minute_limit)
        and _plain_limit(active_limit)
        and session_expires.__class__ is int
        and _plain_now(now)
        and math.floor(now / _MINUTE) == minute
        and _plain_shares(shares)
        and (location is None or (location.__class__ is str and location != ""))
        and (queued is None or _plain_place(queued))
        and (requeue is None or _plain_place(requeue))
    )


class SlotCounts:
    """Every counter of one in-process store.

    Args:
        history_minutes: how many complete minutes of admission totals :meth:`snapshot`
            reports; counts of older minutes are dropped as minutes pass.
    """

    def __init__(self, history_minutes: int) -> None:
        self._lock = threading.Lock()
        self._history = history_minutes
        # minute -> {group: admitted}; minute -> total admitted; (minute, group, share) -> n
        self._by_group: dict[int, dict[Any, int]] = {}
        self._totals: dict[int, int] = {}
        self._shares: dict[tuple[int, Any, str], int] = {}
        # minute -> {location: users seen}
        self._traffic: dict[int, dict[str, int]] = {}
        # bucket -> {expiry second: places}
        self._places: dict[int, dict[int, int]] = {}
        # expiry second -> sessions; their sum; the seconds as a heap, for sweeping in order
        self._sessions: dict[int, int] = {}
        self._active = 0
        self._session_seconds: list[int] = []
        self._newest_minute: int | None = None

    def admit(self, ticket: tuple[Any, ...]) -> int:
        """One admission attempt (the fields of an
        :class:`~lbkit.waitingroom.store.Admission`, in order): :data:`ADMITTED`,
        :data:`REFUSED` or :data:`NOT_PLAIN`."""
        if not plain_ticket(ticket):
            return NOT_PLAIN
        with self._lock:
            return self._admit(*ticket)

    def renew(self, previous: int, expires: int, now: float) -> int:
        """Move one session from second ``previous`` to ``expires``: 0, or
        :data:`NOT_PLAIN`. A ``previous`` that holds no live session moves nothing and counts
        the session at ``expires``."""
        if not (previous.__class__ is int and expires.__class__ is int and _plain_now(now)):
            return NOT_PLAIN
        with self._lock:
            self._sweep_sessions(now)
            count = self._sessions.get(previous, 0)
            # A lapsed second was swept already: there is nothing to move from.
            if count > 0 and previous > now:
                if count == 1:
                    del self._sessions[previous]
                else:
                    self._sessions[previous] = count - 1
                self._active -= 1
            self._add_session(expires, now)
        return 0

    def snapshot(self, now: float) -> Snapshot:
        """``(minute, active users, {group: admitted} of the minute, [(bucket, {expiry
        second: places})] oldest first, {location: users seen} of the minute before,
        {minute: admitted} of the complete minutes in the history)``, places and sessions
        lapsed at ``now`` (a finite float) left out. Every container is a new one."""
        minute = math.floor(now / _MINUTE)
        with self._lock:
            self._advance(minute, now)
            groups = dict(self._by_group.get(minute, {}))
            buckets = []
            for bucket in sorted(self._places):
                places = self._places[bucket]
                live = {second: count for second, count in places.items() if second > now}
                if live:
                    buckets.append((bucket, live))
                    if len(live) != len(places):
                        self._places[bucket] = dict(live)
                else:
                    del self._places[bucket]
            traffic = dict(self._traffic.get(minute - 1, {}))
            history = {
                past: self._totals[past]
                for past in sorted(self._totals)
                if minute - self._history <= past < minute
            }
            return minute, self._active, groups, buckets, traffic, history

    def counters(self) -> dict[str, dict[Any, Any]]:
        """Copies of every counter, by name (``by_group``, ``totals``, ``shares``,
        ``traffic``, ``places``, ``sessions``), nested dicts copied too: for tests and
        debugging."""
        with self._lock:
            return {
                "by_group": {minute: dict(groups) for minute, groups in self._by_group.items()},
                "totals": dict(self._totals),
                "shares": dict(self._shares),
                "traffic": {minute: dict(seen) for minute, seen in self._traffic.items()},
                "places": {bucket: dict(places) for bucket, places in self._places.items()},
                "sessions": dict(self._sessions),
            }

    def sizes(self) -> tuple[int, int, int]:
        """``(active users, buckets with places, minutes with admissions)``."""
        with self._lock:
            return self._active, len(self._places), len(self._totals)

    def check(self) -> None:
        """Assert every invariant of the counts (for tests between random steps)."""
        with self._lock:
            assert self._active == sum(self._sessions.values())
            assert all(count > 0 for count in self._sessions.values())
            assert set(self._sessions) <= set(self._session_seconds)
            for minute, groups in self._by_group.items():
                assert sum(groups.values()) == self._totals.get(minute, 0)
            for places in self._places.values():
                assert all(count > 0 for count in places.values())
            for (minute, group, _), count in self._shares.items():
                assert count <= self._by_group.get(minute, {}).get(group, 0)

    # --- helpers, called with the lock held -----------------------------------------------

    def _admit(
        self,
        minute: int,
        group: int | None,
        cap: int | None,
        minute_limit: int | None,
        active_limit: int | None,
        session_expires: int,
        now: float,
        shares: tuple[tuple[str, int], ...],
        location: str | None,
        queued: Place | None,
        requeue: Place | None,
    ) -> int:
        self._advance(minute, now)
        if location is not None:
            seen = self._traffic.get(minute)
            if seen is None:
                seen = self._traffic[minute] = {}
            seen[location] = seen.get(location, 0) + 1
        groups = self._by_group.get(minute)
        admitted = groups.get(group, 0) if groups is not None else 0
        allowed = (
            (cap is None or admitted < cap)
            and (minute_limit is None or self._totals.get(minute, 0) < minute_limit)
            and (active_limit is None or self._active < active_limit)
        )
        share_key: tuple[int, Any, str] | None = None
        if allowed and shares:
            allowed = False
            for name, budget in shares:
                key = (minute, group, name)
                if self._shares.get(key, 0) < budget:
                    share_key = key
                    allowed = True
                    break
        if not allowed:
            if requeue is not None:
                if queued is not None:
                    self._unplace(queued)
                self._place(requeue, now)
            return REFUSED
        if groups is None:
            groups = self._by_group[minute] = {}
        groups[group] = admitted + 1
        self._totals[minute] = self._totals.get(minute, 0) + 1
        if share_key is not None:
            self._shares[share_key] = self._shares.get(share_key, 0) + 1
        if queued is not None:
            self._unplace(queued)
        self._add_session(session_expires, now)
        return ADMITTED

    def _advance(self, minute: int, now: float) -> None:
        """Drop minutes too old to matter, once per new minute, and lapsed sessions."""
        newest = self._newest_minute
        if newest is None or minute > newest:
            self._newest_minute = minute
            oldest = minute - self._history
            for counts in (self._by_group, self._totals, self._traffic):
                for old in [past for past in counts if past < oldest]:
                    del counts[old]
            for key in [key for key in self._shares if key[0] < oldest]:
                del self._shares[key]
        self._sweep_sessions(now)

    def _sweep_sessions(self, now: float) -> None:
        seconds = self._session_seconds
        while seconds and seconds[0] <= now:
            second = heapq.heappop(seconds)
            self._active -= self._sessions.pop(second, 0)

    def _add_session(self, expires: int, now: float) -> None:
        if expires <= now:
            return  # lapsed before it began: nothing to count
        count = self._sessions.get(expires, 0)
        if count == 0:
            heapq.heappush(self._session_seconds, expires)
        self._sessions[expires] = count + 1
        self._active += 1

    def _place(self, place: Place, now: float) -> None:
        bucket, second = place
        if second <= now:
            return
        places = self._places.get(bucket)
        if places is None:
            places = self._places[bucket] = {}
        places[second] = places.get(second, 0) + 1

    def _unplace(self, place: Place) -> None:
        bucket, second = place
        places = self._places.get(bucket)
        if places is not None:
            count = places.get(second, 0)
            if count > 1:
                places[second] = count - 1
            elif count == 1:
                del places[second]
