"""The counts of an in-process waiting-room store, compiled, mirroring
``lbkit._pure._slotcounts`` method for method.

The counters stay Python dicts keyed by Python ints (seconds and minutes are unbounded ints in
the store's contract, so no C type would hold every key), and every comparison between a count,
a second and ``now`` is the reference's Python comparison, exact between ints and floats. What
compiling removes is the interpreter around them: an admission attempt is one C call that
checks its ticket and touches a handful of dicts through the C API, where the reference runs a
few hundred bytecodes across several Python-level calls. That was about a third of a waiting
room's decision on a queued check-in.

The counts' lock is a C lock (the reference's is a ``threading.Lock``): taken without releasing
the GIL when it is free, and waited for with the GIL released when it is not, so a thread
that holds it can always finish.
"""

import heapq

from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.long cimport PyLong_FromDouble
from cpython.object cimport PyObject
from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from libc.math cimport floor

#: :meth:`SlotCounts.admit`: the user was admitted.
ADMITTED = 1
#: :meth:`SlotCounts.admit`: a limit held the user back; their place moved to ``requeue``.
REFUSED = 0
#: An update's arguments were not plain; nothing was changed.
NOT_PLAIN = -1

_heappush = heapq.heappush
_heappop = heapq.heappop


cdef inline object _get(dict counts, object key, object default):
    # dict.get without the method call; the reference's counts.get(key, default).
    cdef PyObject* found = PyDict_GetItem(counts, key)
    if found is NULL:
        return default
    return <object>found


cdef inline bint _plain_place(object place):
    return (
        type(place) is tuple
        and len(<tuple>place) == 2
        and type((<tuple>place)[0]) is int
        and type((<tuple>place)[1]) is int
    )


cdef inline bint _plain_limit(object value) except -1:
    return value is None or (type(value) is int and value >= 0)


cdef bint _plain_shares(object shares) except -1:
    if type(shares) is not tuple:
        return False
    for share in <tuple>shares:
        if not (
            type(share) is tuple
            and len(<tuple>share) == 2
            and type((<tuple>share)[0]) is str
            and (<tuple>share)[0] != ""
            and type((<tuple>share)[1]) is int
            and (<tuple>share)[1] >= 0
        ):
            return False
    return True


cdef inline bint _plain_now(object now):
    # now - now is 0.0 for every finite float and NaN for NaN and the infinities.
    if type(now) is not float:
        return False
    cdef double value = <double>now
    return value - value == 0.0


cdef inline object _floor_minute(double now):
    # math.floor(now / 60) of the reference: the same double division, then the exact int.
    return PyLong_FromDouble(floor(now / 60.0))


def plain_ticket(object ticket):
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
    return _plain_ticket(<tuple>ticket)


cdef bint _plain_ticket(tuple ticket) except -1:
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
        type(minute) is int
        and (group is None or type(group) is int)
        and _plain_limit(cap)
        and _plain_limit(minute_limit)
        and _plain_limit(active_limit)
        and type(session_expires) is int
        and _plain_now(now)
        and _floor_minute(<double>now) == minute
        and _plain_shares(shares)
        and (location is None or (type(location) is str and location != ""))
        and (queued is None or _plain_place(queued))
        and (requeue is None or _plain_place(requeue))
    )


cdef class SlotCounts:
    """Every counter of one in-process store.

    Args:
        history_minutes: how many complete minutes of admission totals :meth:`snapshot`
            reports; counts of older minutes are dropped as minutes pass.
    """

    cdef object _history
    cdef dict _by_group
    cdef dict _totals
    cdef dict _shares
    cdef dict _traffic
    cdef dict _places
    cdef dict _sessions
    cdef object _active
    cdef list _session_seconds
    cdef object _newest_minute
    cdef PyThread_type_lock _lock

    def __cinit__(self):
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError("cannot allocate the counts' lock")

    def __dealloc__(self):
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    cdef inline int _acquire(self) except -1:
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
        return 0

    def __init__(self, history_minutes):
        self._history = history_minutes
        self._by_group = {}
        self._totals = {}
        self._shares = {}
        self._traffic = {}
        self._places = {}
        self._sessions = {}
        self._active = 0
        self._session_seconds = []
        self._newest_minute = None

    def admit(self, object ticket):
        """One admission attempt (the fields of an
        :class:`~lbkit.waitingroom.store.Admission`, in order): :data:`ADMITTED`,
        :data:`REFUSED` or :data:`NOT_PLAIN`."""
        if not isinstance(ticket, tuple):  # an Admission is a tuple subclass
            raise TypeError(f"ticket is {type(ticket).__name__}; it must be a tuple")
        if not _plain_ticket(<tuple>ticket):
            return NOT_PLAIN
        self._acquire()
        try:
            return self._admit(<tuple>ticket)
        finally:
            PyThread_release_lock(self._lock)

    cdef object _admit(self, tuple ticket):
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
        self._advance(minute, now)
        if location is not None:
            seen = _get(self._traffic, minute, None)
            if seen is None:
                seen = {}
                self._traffic[minute] = seen
            PyDict_SetItem(<dict>seen, location, _get(<dict>seen, location, 0) + 1)
        cdef object groups = _get(self._by_group, minute, None)
        admitted = _get(<dict>groups, group, 0) if groups is not None else 0
        cdef bint allowed = (
            (cap is None or admitted < cap)
            and (minute_limit is None or _get(self._totals, minute, 0) < minute_limit)
            and (active_limit is None or self._active < active_limit)
        )
        share_key = None
        if allowed and shares:
            allowed = False
            for name, budget in <tuple>shares:
                key = (minute, group, name)
                if _get(self._shares, key, 0) < budget:
                    share_key = key
                    allowed = True
                    break
        if not allowed:
            if requeue is not None:
                if queued is not None:
                    self._unplace(<tuple>queued)
                self._place(<tuple>requeue, now)
            return REFUSED
        if groups is None:
            groups = {}
            self._by_group[minute] = groups
        PyDict_SetItem(<dict>groups, group, admitted + 1)
        self._totals[minute] = _get(self._totals, minute, 0) + 1
        if share_key is not None:
            self._shares[share_key] = _get(self._shares, share_key, 0) + 1
        if queued is not None:
            self._unplace(<tuple>queued)
        self._add_session(session_expires, now)
        return ADMITTED

    def renew(self, previous, expires, now):
        """Move one session from second ``previous`` to ``expires``: 0, or
        :data:`NOT_PLAIN`. A ``previous`` that holds no live session moves nothing and counts
        the session at ``expires``."""
        if not (type(previous) is int and type(expires) is int and _plain_now(now)):
            return NOT_PLAIN
        self._acquire()
        try:
            self._sweep_sessions(now)
            count = _get(self._sessions, previous, 0)
            # A lapsed second was swept already: there is nothing to move from.
            if count > 0 and previous > now:
                if count == 1:
                    del self._sessions[previous]
                else:
                    self._sessions[previous] = count - 1
                self._active -= 1
            self._add_session(expires, now)
        finally:
            PyThread_release_lock(self._lock)
        return 0

    def snapshot(self, double now):
        """``(minute, active users, {group: admitted} of the minute, [(bucket, {expiry
        second: places})] oldest first, {location: users seen} of the minute before,
        {minute: admitted} of the complete minutes in the history)``, places and sessions
        lapsed at ``now`` (a finite float) left out. Every container is a new one."""
        self._acquire()
        try:
            minute = _floor_minute(now)
            moment = now  # the float object the comparisons below take, as in the reference
            self._advance(minute, moment)
            groups = dict(_get(self._by_group, minute, {}))
            buckets = []
            for bucket in sorted(self._places):
                places = <dict>self._places[bucket]
                live = {second: count for second, count in places.items() if second > moment}
                if live:
                    buckets.append((bucket, live))
                    if len(live) != len(places):
                        self._places[bucket] = dict(live)
                else:
                    del self._places[bucket]
            traffic = dict(_get(self._traffic, minute - 1, {}))
            history = {
                past: self._totals[past]
                for past in sorted(self._totals)
                if minute - self._history <= past < minute
            }
            return minute, self._active, groups, buckets, traffic, history
        finally:
            PyThread_release_lock(self._lock)

    def counters(self):
        """Copies of every counter, by name (``by_group``, ``totals``, ``shares``,
        ``traffic``, ``places``, ``sessions``), nested dicts copied too: for tests and
        debugging."""
        self._acquire()
        try:
            return {
                "by_group": {minute: dict(groups) for minute, groups in self._by_group.items()},
                "totals": dict(self._totals),
                "shares": dict(self._shares),
                "traffic": {minute: dict(seen) for minute, seen in self._traffic.items()},
                "places": {bucket: dict(places) for bucket, places in self._places.items()},
                "sessions": dict(self._sessions),
            }
        finally:
            PyThread_release_lock(self._lock)

    def sizes(self):
        """``(active users, buckets with places, minutes with admissions)``."""
        self._acquire()
        try:
            return self._active, len(self._places), len(self._totals)
        finally:
            PyThread_release_lock(self._lock)

    def check(self):
        """Assert every invariant of the counts (for tests between random steps)."""
        self._acquire()
        try:
            assert self._active == sum(self._sessions.values())
            assert all(count > 0 for count in self._sessions.values())
            assert set(self._sessions) <= set(self._session_seconds)
            for minute, groups in self._by_group.items():
                assert sum(groups.values()) == _get(self._totals, minute, 0)
            for places in self._places.values():
                assert all(count > 0 for count in places.values())
            for (minute, group, _), count in self._shares.items():
                assert count <= _get(_get(self._by_group, minute, {}), group, 0)
        finally:
            PyThread_release_lock(self._lock)

    # --- helpers, called with the lock held -----------------------------------------------

    cdef int _advance(self, object minute, object now) except -1:
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
        return 0

    cdef int _sweep_sessions(self, object now) except -1:
        cdef list seconds = self._session_seconds
        while seconds and seconds[0] <= now:
            second = _heappop(seconds)
            self._active -= self._sessions.pop(second, 0)
        return 0

    cdef int _add_session(self, object expires, object now) except -1:
        if expires <= now:
            return 0  # lapsed before it began: nothing to count
        count = _get(self._sessions, expires, 0)
        if count == 0:
            _heappush(self._session_seconds, expires)
        self._sessions[expires] = count + 1
        self._active += 1
        return 0

    cdef int _place(self, tuple place, object now) except -1:
        bucket, second = place
        if second <= now:
            return 0
        places = _get(self._places, bucket, None)
        if places is None:
            places = {}
            self._places[bucket] = places
        (<dict>places)[second] = _get(<dict>places, second, 0) + 1
        return 0

    cdef int _unplace(self, tuple place) except -1:
        bucket, second = place
        places = _get(self._places, bucket, None)
        if places is not None:
            count = _get(<dict>places, second, 0)
            if count > 1:
                (<dict>places)[second] = count - 1
            elif count == 1:
                del (<dict>places)[second]
        return 0
