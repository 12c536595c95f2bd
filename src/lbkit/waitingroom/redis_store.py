"""A waiting room's shared counts in Redis: :class:`RedisStore`, the
:class:`~lbkit.waitingroom.store.SlotStore` for a room served by many proxy processes on many
machines.

Each of the protocol's three calls is **one Lua script**, run atomically by the Redis server
(no read-modify-write from Python, one round trip per call): the script does exactly what
:class:`~lbkit.waitingroom.store.MemoryStore` does under its lock (the ``slotcounts`` kernel,
``lbkit._pure._slotcounts``, is the specification), so every limit of an
:class:`~lbkit.waitingroom.store.Admission` holds across the whole fleet, and a test runs both
stores through the same random programs and compares every answer.

**Keys.** Every key of a room starts with ``lbkit:wr:{<room id>}:``; the braces make the room
one Redis Cluster hash slot, so the scripts may touch all of its keys:

=================================  ========  ===================================================
key                                type      holds
=================================  ========  ===================================================
``…:room``                         hash      ``newest``: the newest minute seen (older minutes
                                             are dropped); ``active``: the live sessions, the
                                             active users; ``lapse``: a second before which no
                                             session lapses (sessions are swept from then on)
``…:minute:<minute>``              hash      ``total``: the minute's admissions; ``g:<group>``:
                                             by group (a bucket, or ``n`` for new users);
                                             ``s:<group>|<share>``: by share; ``t:<location>``:
                                             users seen by location
``…:places:<bucket>``              hash      queued places by the second they lapse
``…:buckets``                      zset      the buckets with places, scored by bucket
``…:sessions``                     hash      sessions by the second they lapse
``…:session_seconds``              zset      those seconds, for sweeping in order
=================================  ========  ===================================================

Each script reads the room hash with one ``HMGET`` and a minute's counts with another: inside
a script, every ``redis.call`` costs the server about as much again as the command's own
work, so an admission makes six of them (two reads, four increments).

Counts of a minute more than :data:`~lbkit.waitingroom.store.HISTORY_MINUTES` behind the
newest are deleted as minutes pass, and lapsed sessions and places as time passes, by the
scripts, on the callers' clock (``now``), as in the memory store. Besides, every key a
script writes is given a time to live of ``keep_for`` seconds (a day by default) of the
Redis server's clock, so the keys of a room nobody uses any more disappear on their own; a
live room rewrites its keys long before. Restarting a proxy loses nothing: the counts are in
Redis, and each user's state in their cookie.

**Numbers.** Lua holds numbers as doubles, so the store takes the ints of a ticket (minutes,
buckets, seconds, caps) only within +-2**53 and raises
:class:`~lbkit.errors.InvalidArgument` beyond; times since the epoch are far inside.

**Failures.** A Redis that cannot be reached, or answers later than the client's socket
timeout, makes a call raise :class:`~lbkit.errors.StoreUnavailable`, with nothing counted
that the caller could not know about: a script runs whole or not at all.

>>> RedisStore.key_prefix("tickets")
'lbkit:wr:{tickets}:'
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, StoreUnavailable
from lbkit.waitingroom.allocator import MINUTE, BucketCounts, MinuteState
from lbkit.waitingroom.store import (
    HISTORY_MINUTES,
    Admission,
    StoreSnapshot,
    _int,
    _made_plain,
    _now,
    check_admission,
)

if TYPE_CHECKING:
    import redis

__all__ = ["DEFAULT_KEEP_FOR", "RedisStore"]

#: Seconds of the Redis server's clock a room's keys live after their last write.
DEFAULT_KEEP_FOR: Final = 86_400
# Lua numbers are doubles: ints beyond this would not be exact.
_EXACT: Final = 2**53

# --- the scripts --------------------------------------------------------------------------
#
# ARGV[1] is the key prefix; the call's values follow, one argument each, ints as decimal
# strings. Ints are used as such in key and field names (so "12" and "12.0" never name two
# fields) and turned into numbers only to be compared. HISTORY and KEEP are written into the
# text of each store's scripts. The functions below are the slotcounts kernel's helpers, in
# fewer commands: inside a script each redis.call costs about as much as the work it does, so
# the room's scalars share one hash read with one HMGET, and a minute's counts another.

_PRELUDE: Final = r"""
local P = ARGV[1]
local ROOM, SESSIONS, SECONDS = P .. "room", P .. "sessions", P .. "session_seconds"
local CHUNK = 1000

-- A key gets its time to live when it is made; the snapshot, which every room reads at least
-- once a minute, renews all of them.
local function keep(key)
  redis.call("EXPIRE", key, KEEP)
end

-- The room hash: the newest minute seen, the active users, and "lapse", a second before
-- which no session lapses (a lower bound: sessions are swept only once now reaches it).
local function room_state()
  local fields = redis.call("HMGET", ROOM, "newest", "active", "lapse")
  return fields[1], tonumber(fields[2] or "0"), fields[3], not (fields[1] or fields[2])
end

-- Drops lapsed sessions; the active users left, and the new lower bound.
local function sweep(now, active)
  while true do
    local lapsed = redis.call("ZRANGEBYSCORE", SECONDS, "-inf", now, "LIMIT", 0, CHUNK)
    if #lapsed == 0 then break end
    for _, count in ipairs(redis.call("HMGET", SESSIONS, unpack(lapsed))) do
      if count then active = active - tonumber(count) end
    end
    redis.call("HDEL", SESSIONS, unpack(lapsed))
    redis.call("ZREM", SECONDS, unpack(lapsed))
  end
  local first = redis.call("ZRANGE", SECONDS, 0, 0)[1]
  if first then
    redis.call("HSET", ROOM, "active", string.format("%d", active), "lapse", first)
  else
    redis.call("HSET", ROOM, "active", string.format("%d", active))
    redis.call("HDEL", ROOM, "lapse")
  end
  return active, first
end

-- Moves to minute m (dropping minutes more than HISTORY behind the newest) and sweeps:
-- the active users and the lapse bound.
local function advance(minute, now)
  local newest, active, lapse = room_state()
  local m = tonumber(minute)
  if not newest then
    redis.call("HSET", ROOM, "newest", minute)
    keep(ROOM)
  elseif m > tonumber(newest) then
    redis.call("HSET", ROOM, "newest", minute)
    -- Only minutes from newest - HISTORY to newest can still have keys.
    for old = tonumber(newest) - HISTORY, math.min(tonumber(newest), m - HISTORY - 1) do
      redis.call("DEL", P .. "minute:" .. string.format("%d", old))
    end
  end
  if lapse and tonumber(lapse) <= now then active, lapse = sweep(now, active) end
  return active, lapse
end

-- One session more, lapsing at second expires; the change to the active users (0 or 1).
local function add_session(expires, now, lapse)
  local second = tonumber(expires)
  if second <= now then return 0 end
  if redis.call("HINCRBY", SESSIONS, expires, 1) == 1 then
    redis.call("ZADD", SECONDS, expires, expires)
    -- The room hash must outlive the sessions: its "lapse" bounds them.
    keep(SESSIONS)
    keep(SECONDS)
    keep(ROOM)
    if not lapse or second < tonumber(lapse) then redis.call("HSET", ROOM, "lapse", expires) end
  end
  return 1
end

local function place(bucket, second, now)
  if tonumber(second) <= now then return end
  local key = P .. "places:" .. bucket
  if redis.call("HINCRBY", key, second, 1) == 1 then
    keep(key)
    if redis.call("ZADD", P .. "buckets", bucket, bucket) == 1 then keep(P .. "buckets") end
  end
end

local function unplace(bucket, second)
  local key = P .. "places:" .. bucket
  local count = tonumber(redis.call("HGET", key, second) or "0")
  if count > 1 then
    redis.call("HINCRBY", key, second, -1)
  elseif count == 1 then
    redis.call("HDEL", key, second)
  end
end

-- Adds one to a field of a minute's hash; the hash is given its time to live when the field
-- is made.
local function count(key, field)
  if redis.call("HINCRBY", key, field, 1) == 1 then keep(key) end
end
"""

# ARGV[2..]: minute, group ("n" for new users), cap, minute_limit, active_limit ("" for
# none), session_expires, now, queued bucket and second, requeue bucket and second ("" for
# none), location (""), the number of shares, then each share's name and budget. Returns 1
# or 0.
_ADMIT: Final = (
    _PRELUDE
    + r"""
local minute, group = ARGV[2], ARGV[3]
local cap, minute_limit, active_limit = ARGV[4], ARGV[5], ARGV[6]
local session_expires, now = ARGV[7], tonumber(ARGV[8])
local queued_bucket, queued_second = ARGV[9], ARGV[10]
local requeue_bucket, requeue_second = ARGV[11], ARGV[12]
local location, shares = ARGV[13], tonumber(ARGV[14])

local active, lapse = advance(minute, now)
local counts = P .. "minute:" .. minute
if location ~= "" then count(counts, "t:" .. location) end
-- The group's admissions, the minute's, and each share's, in one read.
local fields = {"g:" .. group, "total"}
for index = 1, shares do fields[2 + index] = "s:" .. group .. "|" .. ARGV[13 + 2 * index] end
local used = redis.call("HMGET", counts, unpack(fields))
local allowed = (cap == "" or tonumber(used[1] or "0") < tonumber(cap))
  and (minute_limit == "" or tonumber(used[2] or "0") < tonumber(minute_limit))
  and (active_limit == "" or active < tonumber(active_limit))
local share = nil
if allowed and shares > 0 then
  allowed = false
  for index = 1, shares do
    if tonumber(used[2 + index] or "0") < tonumber(ARGV[14 + 2 * index]) then
      share = fields[2 + index]
      allowed = true
      break
    end
  end
end
if not allowed then
  if requeue_bucket ~= "" then
    if queued_bucket ~= "" then unplace(queued_bucket, queued_second) end
    place(requeue_bucket, requeue_second, now)
  end
  return 0
end
count(counts, fields[1])
count(counts, "total")
if share then count(counts, share) end
if queued_bucket ~= "" then unplace(queued_bucket, queued_second) end
if add_session(session_expires, now, lapse) == 1 then
  redis.call("HINCRBY", ROOM, "active", 1)
end
return 1
"""
)

# ARGV[2..]: previous, expires, now.
_RENEW: Final = (
    _PRELUDE
    + r"""
local previous, expires, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local newest, active, lapse, fresh = room_state()
if lapse and tonumber(lapse) <= now then active, lapse = sweep(now, active) end
local count = tonumber(redis.call("HGET", SESSIONS, previous) or "0")
-- A lapsed second was swept already: there is nothing to move from.
local moved = count > 0 and tonumber(previous) > now
if moved and previous == expires then return 0 end
local change = 0
if moved then
  if count == 1 then
    redis.call("HDEL", SESSIONS, previous)
    redis.call("ZREM", SECONDS, previous)
  else
    redis.call("HINCRBY", SESSIONS, previous, -1)
  end
  change = -1
end
change = change + add_session(expires, now, lapse)
if change ~= 0 then
  redis.call("HINCRBY", ROOM, "active", change)
  if fresh then keep(ROOM) end
end
return 0
"""
)

# ARGV[2..]: minute, now. Returns {active, groups, buckets, traffic, history}: groups and
# traffic as flat field/value lists (without their "g:" and "t:"), buckets as {bucket, flat
# list} pairs, oldest first, history as minute/total pairs. Renews the time to live of every
# key of the room it reads.
_SNAPSHOT: Final = (
    _PRELUDE
    + r"""
local minute, now = ARGV[2], tonumber(ARGV[3])
local active = advance(minute, now)
local counts = P .. "minute:" .. minute
for _, key in ipairs({ROOM, counts, P .. "buckets", SESSIONS, SECONDS}) do keep(key) end

-- The fields of a minute's hash that start with tag, without it.
local function tagged(key, tag)
  local found = {}
  local entries = redis.call("HGETALL", key)
  for index = 1, #entries, 2 do
    if string.sub(entries[index], 1, 2) == tag then
      found[#found + 1] = string.sub(entries[index], 3)
      found[#found + 1] = entries[index + 1]
    end
  end
  return found
end

local groups = tagged(counts, "g:")
local buckets = {}
for _, bucket in ipairs(redis.call("ZRANGE", P .. "buckets", 0, -1)) do
  local key = P .. "places:" .. bucket
  local entries = redis.call("HGETALL", key)
  local live, lapsed = {}, {}
  for index = 1, #entries, 2 do
    if tonumber(entries[index]) > now then
      live[#live + 1] = entries[index]
      live[#live + 1] = entries[index + 1]
    else
      lapsed[#lapsed + 1] = entries[index]
    end
  end
  if #live > 0 then
    keep(key)
    buckets[#buckets + 1] = {bucket, live}
    for start = 1, #lapsed, CHUNK do
      redis.call("HDEL", key, unpack(lapsed, start, math.min(start + CHUNK - 1, #lapsed)))
    end
  else
    redis.call("DEL", key)
    redis.call("ZREM", P .. "buckets", bucket)
  end
end
local m = tonumber(minute)
local traffic = tagged(P .. "minute:" .. string.format("%d", m - 1), "t:")
local history = {}
for past = m - HISTORY, m - 1 do
  local name = string.format("%d", past)
  local total = redis.call("HGET", P .. "minute:" .. name, "total")
  if total then
    history[#history + 1] = name
    history[#history + 1] = total
  end
end
return {string.format("%d", active), groups, buckets, traffic, history}
"""
)


class RedisStore:
    """A :class:`~lbkit.waitingroom.store.SlotStore` in Redis, for a room that many processes
    on many machines serve: each call is one atomic Lua script and one round trip.

    The store talks to Redis on connections of its own, one per thread (and per process,
    after a fork), taken from the client's connection pool and kept (closing the client closes
    them): a call is one ``EVALSHA`` written and one reply read on that connection.
    redis-py's command layer (pool checkout, retry wrapper, response callbacks) costs about
    twice a loopback round trip, and a decision makes one such call. A connection that fails
    is closed, and the next call connects again; a Redis that has forgotten the scripts (a
    restart, ``SCRIPT FLUSH``) is sent them again.

    Args:
        client: a ``redis.Redis`` client (redis-py, the ``redis`` extra). Its
            ``socket_timeout`` bounds every call: set it (say to 0.05 s) so that a slow Redis
            makes a call fail fast instead of holding the request. :meth:`from_url` builds a
            client with it bounded. Calls are never retried.
        room_id: the room's id (``WaitingRoomConfig.room_id``): a non-empty str; the rooms of
            one Redis are kept apart by it.
        keep_for: seconds (of the Redis server's clock) a key lives after its last write;
            at least an hour, and longer than the room's ``session_duration`` and
            ``queued_cookie_lifetime``.

    Raises:
        ConfigError: an empty room id or ``keep_for`` under an hour.
        ArgumentTypeError: a client without a connection pool, a room id that is not a str.

    Runtime complexity: :meth:`try_admit` and :meth:`renew` O(len(shares) + log s) on the
    server (s distinct session seconds), plus sessions lapsed since the last call;
    :meth:`snapshot` O(b + p) for b buckets and p place seconds. One round trip each.

    >>> RedisStore.key_prefix("shop")
    'lbkit:wr:{shop}:'
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        room_id: str,
        keep_for: int = DEFAULT_KEEP_FOR,
    ) -> None:
        pool = getattr(client, "connection_pool", None)
        if not callable(getattr(pool, "get_connection", None)):
            raise ArgumentTypeError(
                f"client is {type(client).__name__}; it must be a redis.Redis client"
            )
        if not isinstance(room_id, str):
            raise ArgumentTypeError(f"room_id is {type(room_id).__name__}; it must be a str")
        if not room_id:
            raise ConfigError("room_id is ''; it must be a non-empty str")
        if isinstance(keep_for, bool) or not isinstance(keep_for, int):
            raise ArgumentTypeError(f"keep_for is {type(keep_for).__name__}; it must be an int")
        if keep_for < 3600:
            raise ConfigError(f"keep_for is {keep_for}; it must be at least 3600 seconds")
        import redis.exceptions  # the redis extra; a client exists, so it is installed

        self._client = client
        self._pool: Any = pool
        self._room_id = room_id
        prefix = self.key_prefix(room_id)
        self._admit = _Script(_ADMIT, prefix=prefix, keep_for=keep_for)
        self._renew = _Script(_RENEW, prefix=prefix, keep_for=keep_for)
        self._snapshot = _Script(_SNAPSHOT, prefix=prefix, keep_for=keep_for)
        self._local = threading.local()
        self._unavailable = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._forgotten = redis.exceptions.NoScriptError
        self._refused = redis.exceptions.ResponseError

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        room_id: str,
        timeout: float = 0.05,
        keep_for: int = DEFAULT_KEEP_FOR,
    ) -> RedisStore:
        """A store on a new client for ``url`` (``redis://host:port/db``) whose every call is
        bounded by ``timeout`` seconds, connecting included, with no retries: a Redis that is
        down costs a request at most ``timeout`` before the room's ``store_failure`` policy
        decides.

        Raises:
            ConfigError: ``timeout`` not finite and > 0, and as the constructor.

        Runtime complexity: O(1); no connection is made until the first call.

        >>> RedisStore.from_url("redis://127.0.0.1:6379/0", room_id="shop", timeout=0.02)
        RedisStore(room_id='shop')
        """
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ArgumentTypeError(f"timeout is {type(timeout).__name__}; it must be a number")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigError(f"timeout is {timeout!r}; it must be finite and > 0 seconds")
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, room_id=room_id, keep_for=keep_for)

    @staticmethod
    def key_prefix(room_id: str) -> str:
        """The prefix of every key of room ``room_id``; the braces make the room one Redis
        Cluster hash slot.

        Runtime complexity: O(len(room_id)).

        >>> RedisStore.key_prefix("a")
        'lbkit:wr:{a}:'
        """
        return f"lbkit:wr:{{{room_id}}}:"

    def snapshot(self, *, now: float) -> StoreSnapshot:
        """The counts of the minute ``now`` falls in (see
        :meth:`~lbkit.waitingroom.store.SlotStore.snapshot`).

        Raises:
            StoreUnavailable: Redis could not be reached or did not answer in time.
            InvalidArgument: ``now`` is not finite, or beyond +-2**53.
            ArgumentTypeError: ``now`` is not a number.

        Runtime complexity: O(b + p) for b buckets and p place seconds.
        """
        moment = _exact_now(now)
        minute = math.floor(moment / MINUTE)
        active, groups, buckets, traffic, history = self._run(self._snapshot, (minute, moment))
        counts = _pairs(groups)
        state = MinuteState(
            minute,
            active_users=int(active),
            admitted_new=counts.pop("n", 0),
            admitted_by_bucket={int(group): count for group, count in counts.items()},
            buckets=[
                BucketCounts(
                    int(_text(bucket)),
                    expiring={int(second): count for second, count in _pairs(live).items()},
                )
                for bucket, live in buckets
            ],
        )
        return StoreSnapshot(
            state=state,
            traffic=MappingProxyType(_pairs(traffic)),
            admitted_by_minute=MappingProxyType(
                {int(past): count for past, count in _pairs(history).items()}
            ),
        )

    def try_admit(self, ticket: Admission) -> bool:
        """Admit if every limit of ``ticket`` holds (see
        :meth:`~lbkit.waitingroom.store.SlotStore.try_admit`), in one script.

        Raises:
            StoreUnavailable: Redis could not be reached, did not answer in time, or refused
                the call (out of memory, a read-only replica); then nothing was counted.
            ArgumentTypeError, InvalidArgument: a malformed ticket
                (:func:`~lbkit.waitingroom.store.check_admission`), or an int beyond +-2**53.

        Runtime complexity: O(len(shares) + log s) on the server.
        """
        if ticket.__class__ is not Admission or not _kernels.slotcounts.plain_ticket(ticket):
            ticket = _made_plain(check_admission(ticket))
        # Plain now: ints are ints, None is None, now is a float.
        (
            minute,
            group,
            cap,
            minute_limit,
            active_limit,
            expires,
            now,
            shares,
            location,
            queued,
            requeue,
        ) = ticket
        if not _exact_numbers(ticket):
            _name_inexact(ticket)
        # The script's values, framed by the resp kernel: None is "" (no limit, no place).
        values = (
            minute,
            "n" if group is None else group,
            cap,
            minute_limit,
            active_limit,
            expires,
            now,
            *(queued or _NO_PLACE),
            *(requeue or _NO_PLACE),
            location,
            len(shares),
            *[part for share in shares for part in share],
        )
        return int(self._run(self._admit, values)) == 1

    def renew(self, previous: int, expires: int, *, now: float) -> None:
        """Move one session from second ``previous`` to ``expires`` (see
        :meth:`~lbkit.waitingroom.store.SlotStore.renew`), in one script.

        Raises:
            StoreUnavailable: Redis could not be reached or did not answer in time.
            ArgumentTypeError: a second that is not an int, ``now`` not a number.
            InvalidArgument: ``now`` not finite, a value beyond +-2**53.

        Runtime complexity: O(log s) on the server.
        """
        values = (
            _exact(_int(previous, "previous"), "previous"),
            _exact(_int(expires, "expires"), "expires"),
            _exact_now(now),
        )
        self._run(self._renew, values)

    def __repr__(self) -> str:
        return f"RedisStore(room_id={self._room_id!r})"

    def _run(self, script: _Script, values: tuple[object, ...]) -> Any:
        """One call of ``script`` with ``values`` after the key prefix: one command written,
        one reply read."""
        connection = self._connection()
        command = _kernels.resp.frame_command(script.head, 4, values)
        try:
            try:
                connection.send_packed_command([command], False)
                return connection.read_response()
            except self._forgotten:
                # A restarted or flushed Redis has forgotten the script: teach it, once.
                connection.send_packed_command([script.load()], False)
                connection.read_response()
                connection.send_packed_command([command], False)
                return connection.read_response()
        except self._unavailable as error:
            connection.disconnect()  # a late reply must not be read as the next call's
            raise StoreUnavailable(
                f"Redis did not answer for room {self._room_id!r}: {error}"
            ) from error
        except self._refused as error:
            # Out of memory, a read-only replica after a failover: Redis refuses a script's
            # first write (a script that has written may go on writing), so nothing was
            # counted, and the room's store_failure policy decides as when Redis is down.
            raise StoreUnavailable(
                f"Redis refused the call for room {self._room_id!r}: {error}"
            ) from error

    def _connection(self) -> Any:
        """This thread's connection: made on first use (and again in a forked child, whose
        parent's socket is not its own), and checked when it has been idle a while."""
        local = self._local
        now = time.monotonic()
        try:
            forks, connection, used = local.connection
        except AttributeError:
            forks = -1
        if forks != _forks[0]:
            # Taken from the client's pool and kept: closing the client closes it too.
            try:
                connection = self._pool.get_connection()
            except self._unavailable as error:
                raise StoreUnavailable(
                    f"Redis did not answer for room {self._room_id!r}: {error}"
                ) from error
        elif now - used > _IDLE_SECONDS:
            # The server may have closed an idle connection (a restart, its idle timeout, a
            # NAT): a command sent on it would fail, or worse, leave it unknown whether it
            # ran. An unsolicited byte or an end of file means: connect again.
            try:
                if connection.can_read(0):
                    connection.disconnect()
            except self._unavailable:
                connection.disconnect()
        local.connection = (_forks[0], connection, now)
        return connection


class _Script:
    """One of a store's scripts: its text, with the store's constants, and the framed start of
    every call of it (``EVALSHA``, the text's SHA1, no keys, the key prefix: four arguments)."""

    __slots__ = ("head", "source")

    def __init__(self, body: str, *, prefix: str, keep_for: int) -> None:
        self.source = f"local HISTORY, KEEP = {HISTORY_MINUTES}, {keep_for}\n{body}"
        sha = hashlib.sha1(self.source.encode()).hexdigest()
        self.head = b"$7\r\nEVALSHA\r\n$40\r\n" + sha.encode() + b"\r\n$1\r\n0\r\n" + _bulk(prefix)

    def load(self) -> bytes:
        """The command that gives Redis the script's text."""
        return b"*3\r\n" + _bulk("SCRIPT") + _bulk("LOAD") + _bulk(self.source)


def _bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


# The values of a ticket without a place: the script reads "" as none.
_NO_PLACE: Final = (None, None)

# A connection idle longer than this is checked for an end of file before it is used; under
# load the check would cost more than the call's share of the rare restart it catches.
_IDLE_SECONDS = 1.0

# Bumped in a forked child: a connection made before the fork is the parent's.
_forks = [0]


def _forked() -> None:
    _forks[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


# --- conversions ---------------------------------------------------------------------------


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[object]) -> dict[Any, int]:
    """A Redis field/value list as {field: int}, fields as str (``n``) or int."""
    pairs: dict[Any, int] = {}
    for index in range(0, len(flat), 2):
        field = _text(flat[index])
        pairs[field] = int(_text(flat[index + 1]))
    return pairs


def _exact(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    number = int(value)
    if not -_EXACT <= number <= _EXACT:
        raise InvalidArgument(
            f"{name} is {number}; a RedisStore takes ints within +-2**53 (Lua's exact range)"
        )
    return number


def _exact_now(now: object) -> float:
    moment = _now(now)
    if not -_EXACT <= moment <= _EXACT:
        raise InvalidArgument(f"now is {now!r}; a RedisStore takes times within +-2**53 seconds")
    return moment


def _exact_numbers(ticket: Admission) -> bool:
    """Whether every number of a plain ``ticket`` fits Lua's doubles exactly."""
    _, group, cap, minute_limit, active_limit, expires, now, shares, _, queued, requeue = ticket
    return (
        -_EXACT <= expires <= _EXACT
        and -_EXACT <= now <= _EXACT  # so minute, floor(now / 60), is exact too
        and (group is None or -_EXACT <= group <= _EXACT)
        and (cap is None or cap <= _EXACT)
        and (minute_limit is None or minute_limit <= _EXACT)
        and (active_limit is None or active_limit <= _EXACT)
        and (queued is None or -_EXACT <= min(queued) <= max(queued) <= _EXACT)
        and (requeue is None or -_EXACT <= min(requeue) <= max(requeue) <= _EXACT)
        and (not shares or all(budget <= _EXACT for _, budget in shares))
    )


def _name_inexact(ticket: Admission) -> None:
    """Raise :class:`~lbkit.errors.InvalidArgument` naming the first number of a plain
    ``ticket`` that Lua's doubles would not hold exactly."""
    minute, group, cap, minute_limit, active_limit, expires, now, shares, _, queued, requeue = (
        ticket
    )
    named: list[tuple[str, int | None]] = [
        ("minute", minute),
        ("group", group),
        ("cap", cap),
        ("minute_limit", minute_limit),
        ("active_limit", active_limit),
        ("session_expires", expires),
    ]
    for which, place in (("queued", queued), ("requeue", requeue)):
        if place is not None:
            named += [(f"the bucket of {which}", place[0]), (f"the second of {which}", place[1])]
    named += [(f"the budget of share {name!r}", budget) for name, budget in shares]
    for name, value in named:
        _exact(value, name)
    _exact_now(now)
