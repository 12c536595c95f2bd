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

from lbkit.waitingroom.config import (
    QUEUEING_METHODS,
    SAME_SITE,
    SECURE,
    CookieSettings,
    WaitingRoomConfig,
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
    "QUEUEING_METHODS",
    "SAME_SITE",
    "SECURE",
    "CookieSettings",
    "FifoEstimate",
    "LetInRate",
    "RandomEstimate",
    "WaitingRoomConfig",
    "fifo_wait",
    "random_wait",
    "status",
    "whole_minutes",
]
