"""Quorum health aggregation in the style of Cloudflare Load Balancing's Monitor Groups.

* :class:`MonitorGroup` with its :class:`Member` list folds :class:`MonitorResult` s into a
  verdict per location and per endpoint, each with a :class:`Reason`, and the latency dynamic
  steering uses; :meth:`MonitorGroup.evaluate_many` folds a whole batch in one kernel call.
* :class:`Hysteresis` debounces member states (consecutive up/down), holds endpoint verdicts
  for a minimum dwell and a failback delay, and suppresses bursts of flips from one location.
* :class:`PoolHealth` keeps a pool healthy while enough endpoints are, with a panic guard
  that fails open or closed, and tells isolated failures from a data-centre-wide degradation.
* :class:`EventLog` records every transition (member, endpoint, pool, panic, burst) and
  passes it to subscribers.

>>> from lbkit.health import Member, MonitorGroup, MonitorResult
>>> group = MonitorGroup([Member("http"), Member("tcp")])
>>> result = MonitorResult("http", "web-1", "ams", True, observed_at=0.0)
>>> print(group.evaluate([result], now=1.0)["web-1"].reason)
quorum-up: 1 of 1 locations are up (more than 0.5)
"""

from lbkit.health.events import (
    EVENT_KINDS,
    EventKind,
    EventLog,
    HealthEvent,
    Subscriber,
    SubscriberError,
)
from lbkit.health.group import UNKNOWN_VOTES, MonitorGroup, UnknownVotes
from lbkit.health.hysteresis import BurstReport, Hysteresis, MemberKey
from lbkit.health.pools import FailureScope, PoolHealth, PoolReport
from lbkit.health.results import (
    BatchVerdicts,
    EndpointHealth,
    LocationHealth,
    Member,
    MonitorResult,
    Reason,
    Rule,
    Verdict,
)

__all__ = [
    "EVENT_KINDS",
    "UNKNOWN_VOTES",
    "BatchVerdicts",
    "BurstReport",
    "EndpointHealth",
    "EventKind",
    "EventLog",
    "FailureScope",
    "HealthEvent",
    "Hysteresis",
    "LocationHealth",
    "Member",
    "MemberKey",
    "MonitorGroup",
    "MonitorResult",
    "PoolHealth",
    "PoolReport",
    "Reason",
    "Rule",
    "Subscriber",
    "SubscriberError",
    "UnknownVotes",
    "Verdict",
]
