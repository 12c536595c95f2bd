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
``…:groups:<minute>``              hash      admissions by group (a bucket, or ``n`` for new)
``…:total:<minute>``               string    admissions of the minute
``…:shares:<minute>``              hash      admissions by ``<group>|<share name>``
``…:traffic:<minute>``             hash      users seen by location
``…:newest``                       string    the newest minute seen (older minutes are dropped)
``…:places:<bucket>``              hash      queued places by the second they lapse
``…:buckets``                      zset      the buckets with places, scored by bucket
``…:sessions``                     hash      sessions by the second they lapse
``…:session_seconds``              zset      those seconds, for sweeping in order
``…:active``                       string    the live sessions: the active users
=================================  ========  ===================================================

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

import math
from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument, StoreUnavailable
from lbkit.waitingroom.allocator import MINUTE, BucketCounts, MinuteState
from lbkit.waitingroom.store import (
    HISTORY_MINUTES,
    Admission,
    StoreSnapshot,
    _int,
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
# ARGV[1] is the key prefix; ARGV[2] the call's numbers, comma-separated, HISTORY_MINUTES and
# keep_for first; strings (a location, share names) follow as arguments of their own.
# Ints travel as decimal strings and are used as such in key and field names (so "12" and
# "12.0" never name two fields); they are turned into numbers only to be compared. The
# functions below are the slotcounts kernel's helpers, line for line.

_PRELUDE: Final = r"""
local P = ARGV[1]
-- The call's numbers, comma-separated in ARGV[2] (one argument instead of a dozen: each
-- argument costs the client more to encode than the script costs the server to read).
local N = {}
for field in string.gmatch(ARGV[2] .. ",", "([^,]*),") do N[#N + 1] = field end
local HISTORY = tonumber(N[1])
local KEEP = tonumber(N[2])
local CHUNK = 1000

-- A key gets its time to live when it is made (the first increment); the snapshot, which
-- every room reads at least once a minute, renews all of them.
local function keep(key)
  redis.call("EXPIRE", key, KEEP)
end

local function keep_new(key, count)
  if count == 1 then keep(key) end
end

local function sweep_sessions(now)
  while true do
    local lapsed = redis.call("ZRANGEBYSCORE", P .. "session_seconds", "-inf", now,
                              "LIMIT", 0, CHUNK)
    if #lapsed == 0 then return end
    local counts = redis.call("HMGET", P .. "sessions", unpack(lapsed))
    local total = 0
    for _, count in ipairs(counts) do
      if count then total = total + tonumber(count) end
    end
    redis.call("HDEL", P .. "sessions", unpack(lapsed))
    redis.call("ZREM", P .. "session_seconds", unpack(lapsed))
    if total > 0 then redis.call("DECRBY", P .. "active", total) end
  end
end

local function advance(minute, now)
  local m = tonumber(minute)
  local newest = redis.call("GET", P .. "newest")
  if not newest or m > tonumber(newest) then
    redis.call("SET", P .. "newest", minute, "EX", KEEP)
    if newest then
      -- Only minutes from newest - HISTORY to newest can still have keys.
      local last = math.min(tonumber(newest), m - HISTORY - 1)
      for old = tonumber(newest) - HISTORY, last do
        local name = string.format("%d", old)
        redis.call("DEL", P .. "groups:" .. name, P .. "total:" .. name,
                   P .. "shares:" .. name, P .. "traffic:" .. name)
      end
    end
  end
  sweep_sessions(now)
end

local function add_session(expires, now)
  if tonumber(expires) <= now then return end
  if redis.call("HINCRBY", P .. "sessions", expires, 1) == 1 then
    redis.call("ZADD", P .. "session_seconds", expires, expires)
    keep(P .. "sessions")
    keep(P .. "session_seconds")
  end
  keep_new(P .. "active", redis.call("INCR", P .. "active"))
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
"""

# Numbers (ARGV[2], after HISTORY and KEEP): minute, group ("n" for new users), cap,
# minute_limit, active_limit ("" for none), session_expires, now, queued bucket and second,
# requeue bucket and second ("" for none), then each share's budget. ARGV[3]: the location
# ("" for none); ARGV[4..]: the shares' names. Returns 1 or 0.
_ADMIT: Final = (
    _PRELUDE
    + r"""
local minute, group = N[3], N[4]
local cap, minute_limit, active_limit = N[5], N[6], N[7]
local session_expires, now = N[8], tonumber(N[9])
local queued_bucket, queued_second = N[10], N[11]
local requeue_bucket, requeue_second = N[12], N[13]
local location = ARGV[3]
local shares = #ARGV - 3

advance(minute, now)
if location ~= "" then
  keep_new(P .. "traffic:" .. minute,
           redis.call("HINCRBY", P .. "traffic:" .. minute, location, 1))
end
local groups = P .. "groups:" .. minute
local admitted = tonumber(redis.call("HGET", groups, group) or "0")
local allowed = (cap == "" or admitted < tonumber(cap))
  and (minute_limit == ""
       or tonumber(redis.call("GET", P .. "total:" .. minute) or "0") < tonumber(minute_limit))
  and (active_limit == ""
       or tonumber(redis.call("GET", P .. "active") or "0") < tonumber(active_limit))
local share = nil
if allowed and shares > 0 then
  allowed = false
  for index = 1, shares do
    local field = group .. "|" .. ARGV[3 + index]
    local used = tonumber(redis.call("HGET", P .. "shares:" .. minute, field) or "0")
    if used < tonumber(N[13 + index]) then
      share = field
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
keep_new(groups, redis.call("HINCRBY", groups, group, 1))
keep_new(P .. "total:" .. minute, redis.call("INCR", P .. "total:" .. minute))
if share then
  keep_new(P .. "shares:" .. minute, redis.call("HINCRBY", P .. "shares:" .. minute, share, 1))
end
if queued_bucket ~= "" then unplace(queued_bucket, queued_second) end
add_session(session_expires, now)
return 1
"""
)

# Numbers: previous, expires, now.
_RENEW: Final = (
    _PRELUDE
    + r"""
local previous, expires, now = N[3], N[4], tonumber(N[5])
sweep_sessions(now)
local count = tonumber(redis.call("HGET", P .. "sessions", previous) or "0")
-- A lapsed second was swept already: there is nothing to move from.
if count > 0 and tonumber(previous) > now then
  if count == 1 then
    redis.call("HDEL", P .. "sessions", previous)
    redis.call("ZREM", P .. "session_seconds", previous)
  else
    redis.call("HINCRBY", P .. "sessions", previous, -1)
  end
  redis.call("DECR", P .. "active")
end
add_session(expires, now)
return 0
"""
)

# Numbers: minute, now. Returns {active, groups, buckets, traffic, history}, the dicts as flat
# field/value lists and buckets as {bucket, flat list} pairs, oldest first. Renews the time
# to live of every key of the room it reads.
_SNAPSHOT: Final = (
    _PRELUDE
    + r"""
local minute, now = N[3], tonumber(N[4])
advance(minute, now)
for _, name in ipairs({"groups:" .. minute, "total:" .. minute, "shares:" .. minute,
                       "traffic:" .. minute, "buckets", "sessions", "session_seconds",
                       "active", "newest"}) do
  keep(P .. name)
end
local groups = redis.call("HGETALL", P .. "groups:" .. minute)
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
local traffic = redis.call("HGETALL", P .. "traffic:" .. string.format("%d", m - 1))
local history = {}
for past = m - HISTORY, m - 1 do
  local name = string.format("%d", past)
  local total = redis.call("GET", P .. "total:" .. name)
  if total then
    history[#history + 1] = name
    history[#history + 1] = total
  end
end
local active = tonumber(redis.call("GET", P .. "active") or "0")
return {active, groups, buckets, traffic, history}
"""
)


class RedisStore:
    """A :class:`~lbkit.waitingroom.store.SlotStore` in Redis, for a room that many processes
    on many machines serve: each call is one atomic Lua script and one round trip.

    Args:
        client: a ``redis.Redis`` client (redis-py, the ``redis`` extra). Its
            ``socket_timeout`` bounds every call: set it (say to 0.05 s) so that a slow Redis
            makes a call fail fast instead of holding the request; and mind that redis-py
            retries a failed call 10 times with backoff by default (seconds, not
            milliseconds): :meth:`from_url` builds a client with both bounded.
        room_id: the room's id (``WaitingRoomConfig.room_id``): a non-empty str; the rooms of
            one Redis are kept apart by it.
        keep_for: seconds (of the Redis server's clock) a key lives after its last write;
            at least an hour, and longer than the room's ``session_duration`` and
            ``queued_cookie_lifetime``.

    Raises:
        ConfigError: an empty room id or ``keep_for`` under an hour.
        ArgumentTypeError: a client without ``register_script``, a room id that is not a str.

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
        if not callable(getattr(client, "register_script", None)):
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
        self._client = client
        self._room_id = room_id
        self._prefix = self.key_prefix(room_id)
        self._common = f"{HISTORY_MINUTES},{keep_for}"
        self._admit = client.register_script(_ADMIT)
        self._renew = client.register_script(_RENEW)
        self._snapshot = client.register_script(_SNAPSHOT)

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
        active, groups, buckets, traffic, history = self._run(
            self._snapshot, (minute, repr(moment))
        )
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
            StoreUnavailable: Redis could not be reached or did not answer in time; then
                nothing was counted.
            ArgumentTypeError, InvalidArgument: a malformed ticket
                (:func:`~lbkit.waitingroom.store.check_admission`), or an int beyond +-2**53.

        Runtime complexity: O(len(shares) + log s) on the server.
        """
        check_admission(ticket)
        for name, value in (
            ("minute", ticket.minute),
            ("group", ticket.group),
            ("cap", ticket.cap),
            ("minute_limit", ticket.minute_limit),
            ("active_limit", ticket.active_limit),
            ("session_expires", ticket.session_expires),
        ):
            _exact(value, name)
        queued_bucket, queued_second = _place(ticket.queued, "queued")
        requeue_bucket, requeue_second = _place(ticket.requeue, "requeue")
        numbers: list[object] = [
            ticket.minute,
            "n" if ticket.group is None else int(ticket.group),
            _optional(ticket.cap),
            _optional(ticket.minute_limit),
            _optional(ticket.active_limit),
            int(ticket.session_expires),
            repr(_exact_now(ticket.now)),
            queued_bucket,
            queued_second,
            requeue_bucket,
            requeue_second,
        ]
        names = ["" if ticket.location is None else str(ticket.location)]
        for name, budget in ticket.shares:
            numbers.append(_exact(budget, f"the budget of share {name!r}"))
            names.append(str(name))
        return int(self._run(self._admit, numbers, names)) == 1

    def renew(self, previous: int, expires: int, *, now: float) -> None:
        """Move one session from second ``previous`` to ``expires`` (see
        :meth:`~lbkit.waitingroom.store.SlotStore.renew`), in one script.

        Raises:
            StoreUnavailable: Redis could not be reached or did not answer in time.
            ArgumentTypeError: a second that is not an int, ``now`` not a number.
            InvalidArgument: ``now`` not finite, a value beyond +-2**53.

        Runtime complexity: O(log s) on the server.
        """
        seconds = (
            _exact(_int(previous, "previous"), "previous"),
            _exact(_int(expires, "expires"), "expires"),
        )
        self._run(self._renew, (*seconds, repr(_exact_now(now))))

    def __repr__(self) -> str:
        return f"RedisStore(room_id={self._room_id!r})"

    def _run(self, script: Any, numbers: Sequence[object], strings: Sequence[str] = ()) -> Any:
        import redis.exceptions  # the redis extra; a client exists, so it is installed

        # One argument for every number of the call (see _PRELUDE), the strings after it.
        packed = ",".join([self._common, *map(str, numbers)])
        try:
            return script(args=[self._prefix, packed, *strings])
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise StoreUnavailable(
                f"Redis did not answer for room {self._room_id!r}: {error}"
            ) from error


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


def _optional(value: int | None) -> object:
    return "" if value is None else int(value)


def _place(place: tuple[int, int] | None, name: str) -> tuple[object, object]:
    if place is None:
        return "", ""
    return _exact(place[0], f"the bucket of {name}"), _exact(place[1], f"the second of {name}")
