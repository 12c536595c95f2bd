"""Steering: choose a pool and an endpoint for every request, the way Cloudflare Load Balancing
and Envoy do, fed by :mod:`lbkit.health` verdicts and latencies.

* The model: :class:`Endpoint`, :class:`Pool`, and the :class:`Request` that rules and
  policies read.
* Pool policies (:mod:`lbkit.steering.policies`): failover, weighted random, hash, geo,
  dynamic (RTT), proximity, least outstanding requests and least connections.
* Endpoint pickers (:mod:`lbkit.steering.pickers`): weighted random (alias method), hash
  (rendezvous), least outstanding requests (power of two choices, EDF with an active-request
  bias, weighted random), peak-EWMA power of two choices, smooth weighted round robin, with
  slow start.
* Session affinity by cookie, header or client IP with authenticated cookies
  (:mod:`lbkit.steering.affinity`), and rules as plain data (:mod:`lbkit.steering.rules`).
* :class:`LoadBalancer` composes them and returns a :class:`Decision` with its reasons;
  :class:`RequestStats` keeps thread-safe request accounting.

The hot picks run in kernels (``lbkit._kernels.steering``) with their own seeded SplitMix64
generator, implemented identically in Python and Cython: a seeded run makes the same choices
on either path.

>>> lb = LoadBalancer([Pool("eu", [Endpoint("web-1"), Endpoint("web-2", weight=3)]),
...                    Pool("us", [Endpoint("web-3")])],
...                   policy="failover", fallback_pool="us", seed=42)
>>> lb.set_health("eu", "web-2", False, now=0.0)
>>> decision = lb.decide(Request(client_ip="198.51.100.7"), now=1.0)
>>> decision.pool.id, decision.endpoint.id
('eu', 'web-1')
"""

from lbkit.steering.accounting import KeyStats, RequestStats
from lbkit.steering.affinity import (
    AffinityConfig,
    AffinityMiss,
    InvalidAffinityCookie,
    MissReason,
    Pin,
    SessionAffinity,
)
from lbkit.steering.balancer import Decision, LoadBalancer
from lbkit.steering.ewma import Ewma
from lbkit.steering.keys import id_hash, key_hash
from lbkit.steering.model import Coordinates, Endpoint, Pool, check_weight
from lbkit.steering.pickers import (
    KINDS,
    EndpointPicker,
    HashPicker,
    LeastOutstandingPicker,
    PeakEwmaPicker,
    RoundRobinPicker,
    SlowStart,
    WeightedRandomPicker,
    make_picker,
)
from lbkit.steering.policies import (
    POLICIES,
    DynamicPolicy,
    FailoverPolicy,
    GeoPolicy,
    HashPolicy,
    LeastConnectionsPolicy,
    LeastOutstandingPolicy,
    PoolChoice,
    PoolPolicy,
    ProximityPolicy,
    RandomPolicy,
    SteeringContext,
    great_circle_km,
    make_policy,
)
from lbkit.steering.request import Request
from lbkit.steering.rules import FixedResponse, Rule, RuleOutcome, RuleSet, load_rules

__all__ = [
    "KINDS",
    "POLICIES",
    "AffinityConfig",
    "AffinityMiss",
    "Coordinates",
    "Decision",
    "DynamicPolicy",
    "Endpoint",
    "EndpointPicker",
    "Ewma",
    "FailoverPolicy",
    "FixedResponse",
    "GeoPolicy",
    "HashPicker",
    "HashPolicy",
    "InvalidAffinityCookie",
    "KeyStats",
    "LeastConnectionsPolicy",
    "LeastOutstandingPicker",
    "LeastOutstandingPolicy",
    "LoadBalancer",
    "MissReason",
    "PeakEwmaPicker",
    "Pin",
    "Pool",
    "PoolChoice",
    "PoolPolicy",
    "ProximityPolicy",
    "RandomPolicy",
    "Request",
    "RequestStats",
    "RoundRobinPicker",
    "Rule",
    "RuleOutcome",
    "RuleSet",
    "SessionAffinity",
    "SlowStart",
    "SteeringContext",
    "WeightedRandomPicker",
    "check_weight",
    "great_circle_km",
    "id_hash",
    "key_hash",
    "load_rules",
    "make_picker",
    "make_policy",
]
