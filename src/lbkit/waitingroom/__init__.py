"""Waiting rooms in the style of Cloudflare Waiting Room.

Available so far: the room's configuration
(:class:`~lbkit.waitingroom.config.WaitingRoomConfig`,
:class:`~lbkit.waitingroom.config.CookieSettings`) and the wait estimates a queued user is shown
(:mod:`lbkit.waitingroom.estimate`: FIFO position over a smoothed let-in rate, random-queue
percentiles, a JSON-ready status). Slot allocation,
queue cookies and the room itself follow.

>>> from lbkit.waitingroom import fifo_wait
>>> fifo_wait(5000, 200.0).minutes
25.0
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

__all__ = [
    "DEFAULT_PERCENTILES",
    "MINUTE",
    "QUEUEING_METHODS",
    "SAME_SITE",
    "SECURE",
    "BucketCounts",
    "CookieSealer",
    "CookieSettings",
    "FifoEstimate",
    "Keyring",
    "LetInRate",
    "LocationBudgets",
    "MinutePlan",
    "MinuteState",
    "QueueCookie",
    "RandomEstimate",
    "Release",
    "WaitingRoomConfig",
    "WorkerBudgets",
    "apportion",
    "available_slots",
    "decode_key",
    "encode_key",
    "expiry_second",
    "fifo_wait",
    "location_budgets",
    "may_admit",
    "minute_of",
    "new_key",
    "plan_minute",
    "random_wait",
    "read_cookie",
    "release_abandoned",
    "set_cookie_header",
    "status",
    "whole_minutes",
    "worker_budgets",
]
