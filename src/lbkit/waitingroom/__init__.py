"""Waiting rooms in the style of Cloudflare Waiting Room.

:class:`~lbkit.waitingroom.room.WaitingRoom` decides each request (admit, queue or reject) and
returns the user's sealed cookie and the page's status; it is built on:

* :mod:`~lbkit.waitingroom.config`: the room's settings;
* :mod:`~lbkit.waitingroom.allocator`: the minute accounting (slots per minute, FIFO
  reservations, abandoned places);
* :mod:`~lbkit.waitingroom.distribution`: slots split across locations and workers;
* :mod:`~lbkit.waitingroom.estimate`: the wait a queued user is shown;
* :mod:`~lbkit.waitingroom.cookies`: the sealed queue cookie;
* :mod:`~lbkit.waitingroom.store`: the counts the room's proxies share (``SlotStore``,
  ``MemoryStore``);
* :mod:`~lbkit.waitingroom.redis_store`: those counts in Redis, for many proxies
  (``RedisStore``, the ``redis`` extra);
* :mod:`~lbkit.waitingroom.simulation`: a seeded crowd through a real room (``simulate``).

>>> from lbkit.waitingroom import WaitingRoom, WaitingRoomConfig
>>> config = WaitingRoomConfig(total_active_users=1000, new_users_per_minute=200)
>>> room = WaitingRoom(config, keys={1: bytes(32)}, primary=1)
>>> room.handle(None, now=1_700_000_000.0).action
'admit'
"""

from lbkit.waitingroom.allocator import (
    MINUTE,
    BucketCounts,
    MinutePlan,
    MinuteState,
    Release,
    available_slots,
    expiry_second,
    may_admit,
    minute_of,
    plan_minute,
    release_abandoned,
)
from lbkit.waitingroom.config import (
    QUEUEING_METHODS,
    SAME_SITE,
    SECURE,
    CookieSettings,
    WaitingRoomConfig,
)
from lbkit.waitingroom.cookies import (
    CookieSealer,
    Keyring,
    QueueCookie,
    decode_key,
    encode_key,
    new_key,
    parse_cookie_header,
    read_cookie,
    set_cookie_header,
)
from lbkit.waitingroom.distribution import (
    LocationBudgets,
    WorkerBudgets,
    apportion,
    location_budgets,
    worker_budgets,
)
from lbkit.waitingroom.estimate import (
    DEFAULT_PERCENTILES,
    FifoEstimate,
    LetInRate,
    RandomEstimate,
    fifo_wait,
    random_wait,
    status,
    whole_minutes,
)
from lbkit.waitingroom.redis_store import RedisStore
from lbkit.waitingroom.room import (
    ACTIONS,
    DISTRIBUTIONS,
    REASONS,
    STORE_FAILURES,
    Decision,
    WaitingRoom,
)
from lbkit.waitingroom.simulation import (
    EstimateError,
    MinuteCounts,
    SimulationResult,
    WaitSummary,
    plot_heatmap,
    simulate,
    uniform_arrivals,
)
from lbkit.waitingroom.store import (
    ANYWHERE,
    HISTORY_MINUTES,
    Admission,
    MemoryStore,
    SlotStore,
    StoreSnapshot,
    check_admission,
)

__all__ = [
    "ACTIONS",
    "ANYWHERE",
    "DEFAULT_PERCENTILES",
    "DISTRIBUTIONS",
    "HISTORY_MINUTES",
    "MINUTE",
    "QUEUEING_METHODS",
    "REASONS",
    "SAME_SITE",
    "SECURE",
    "STORE_FAILURES",
    "Admission",
    "BucketCounts",
    "CookieSealer",
    "CookieSettings",
    "Decision",
    "EstimateError",
    "FifoEstimate",
    "Keyring",
    "LetInRate",
    "LocationBudgets",
    "MemoryStore",
    "MinuteCounts",
    "MinutePlan",
    "MinuteState",
    "QueueCookie",
    "RandomEstimate",
    "RedisStore",
    "Release",
    "SimulationResult",
    "SlotStore",
    "StoreSnapshot",
    "WaitSummary",
    "WaitingRoom",
    "WaitingRoomConfig",
    "WorkerBudgets",
    "apportion",
    "available_slots",
    "check_admission",
    "decode_key",
    "encode_key",
    "expiry_second",
    "fifo_wait",
    "location_budgets",
    "may_admit",
    "minute_of",
    "new_key",
    "parse_cookie_header",
    "plan_minute",
    "plot_heatmap",
    "random_wait",
    "read_cookie",
    "release_abandoned",
    "set_cookie_header",
    "simulate",
    "status",
    "uniform_arrivals",
    "whole_minutes",
    "worker_budgets",
]
