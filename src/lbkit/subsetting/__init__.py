"""Deterministic subsetting: which few backends each frontend connects to.

* :class:`Ringsteady`: Google's Ringsteady subsetting (Van der Corput positions on a ring):
  balanced connections, and almost no churn when either side resizes.
* :class:`StableIndices`: the dense, stable backend indices that keep the ring steady.
* :func:`van_der_corput`, :func:`bit_reverse`, :func:`vdc_order`: the sequence underneath.
* :class:`ClassicSubsetting` and :class:`RendezvousSubsetting`: the baselines (the SRE book's
  deterministic subsetting, and highest-random-weight subsetting).
* :mod:`lbkit.subsetting.metrics`: balance, churn, diversity, and
  :func:`~lbkit.subsetting.compare`.
* :class:`EventLoopSubsets`: Netflix Zuul's per-event-loop mode: a few disjoint subsets of the
  origins, each served by several event loops, planned by
  :func:`~lbkit.subsetting.plan_event_loops`.

>>> ring = Ringsteady([f"backend-{i}" for i in range(100)], subset_size=10, frontends=300)
>>> len(ring.subset_for(7))
10
"""

from lbkit.subsetting.baselines import ClassicSubsetting, RendezvousSubsetting
from lbkit.subsetting.indices import StableIndices
from lbkit.subsetting.loops import (
    EventLoopChange,
    EventLoopPlan,
    EventLoopSubsets,
    plan_event_loops,
)
from lbkit.subsetting.metrics import (
    ALGORITHMS,
    Balance,
    Churn,
    Comparison,
    ComparisonRow,
    Diversity,
    Subsetter,
    balance,
    churn,
    compare,
    connection_counts,
    diversity,
)
from lbkit.subsetting.ring import MAX_BACKENDS, MAX_FRONTENDS, SCALINGS, Ringsteady, Scaling
from lbkit.subsetting.vdc import (
    MAX_BITS,
    MAX_ORDER,
    MAX_VDC_INDEX,
    bit_reverse,
    van_der_corput,
    vdc_order,
)

__all__ = [
    "ALGORITHMS",
    "MAX_BACKENDS",
    "MAX_BITS",
    "MAX_FRONTENDS",
    "MAX_ORDER",
    "MAX_VDC_INDEX",
    "SCALINGS",
    "Balance",
    "Churn",
    "ClassicSubsetting",
    "Comparison",
    "ComparisonRow",
    "Diversity",
    "EventLoopChange",
    "EventLoopPlan",
    "EventLoopSubsets",
    "RendezvousSubsetting",
    "Ringsteady",
    "Scaling",
    "StableIndices",
    "Subsetter",
    "balance",
    "bit_reverse",
    "churn",
    "compare",
    "connection_counts",
    "diversity",
    "plan_event_loops",
    "van_der_corput",
    "vdc_order",
]
