"""Health kernel, reference implementation: :func:`fold` turns a batch of per-member result codes
into per-location and per-endpoint verdicts in one pass.

The rules are those of Cloudflare Load Balancing's Monitor Groups (a failing critical member
marks a location down; otherwise more than half of the voting members must report down), with
the "health monitor regions" fold on top (a majority of data centres per region, then the
regions). :mod:`lbkit.health.group` documents them for users; arguments arrive validated.
"""

from __future__ import annotations

from array import array

#: Result and verdict codes (the values of :class:`lbkit.health.Verdict`).
UNKNOWN = 0
UP = 1
DOWN = 2

#: Location rules: why a location got its verdict.
RULE_NO_VOTES = 0
RULE_CRITICAL_DOWN = 1
RULE_MAJORITY_DOWN = 2
RULE_MAJORITY_UP = 3
RULE_CRITICAL_UP = 4


def fold(
    states: bytes,
    critical: bytes,
    voting: bytes,
    unknown_vote: int,
    endpoint_count: int,
    location_count: int,
    region_of: array[int],
    region_count: int,
    threshold: float,
) -> tuple[array[int], ...]:
    """Per-location and per-endpoint verdicts of a batch of result codes.

    ``states[(endpoint * location_count + location) * members + member]`` is a result code
    (``UNKNOWN``, ``UP``, ``DOWN``), with ``members = len(critical) == len(voting)``. A member
    with ``critical[m]`` set marks the location down when it reports down; ``voting[m]`` members
    count in the majority. An ``UNKNOWN`` code counts as ``unknown_vote`` (``UNKNOWN`` abstains).

    A location is DOWN when a critical member reports down (the lowest such member is the
    culprit); else UNKNOWN when no voting member has a result and no critical member reports up;
    else DOWN when more than half of the voting results are down; else UP. With
    ``region_count == 0`` an endpoint is UP when more than ``threshold`` of its locations with a
    verdict are UP, DOWN when not, UNKNOWN when none has a verdict. With regions
    (``region_of[location]``), a region is UP when more than half of its locations with a
    verdict are UP, and the endpoint folds the regions with the same ``threshold`` rule.

    Returns ``(location_verdicts, location_rules, culprits, down_votes, votes,
    endpoint_verdicts, endpoints_up, endpoints_counted)``: per (endpoint, location) the verdict,
    the rule, the culprit member (-1 when none), the down and all voting results; per endpoint
    the verdict, and how many locations (or regions) were UP of how many had a verdict.
    """
    members = len(critical)
    cells = endpoint_count * location_count
    location_verdicts = array("B", bytes(cells))
    location_rules = array("B", bytes(cells))
    culprits = array("i", [-1]) * cells
    down_votes = array("I", bytes(4 * cells))
    votes = array("I", bytes(4 * cells))
    endpoint_verdicts = array("B", bytes(endpoint_count))
    endpoints_up = array("I", bytes(4 * endpoint_count))
    endpoints_counted = array("I", bytes(4 * endpoint_count))
    region_up = [0] * region_count
    region_counted = [0] * region_count
    for endpoint in range(endpoint_count):
        for region in range(region_count):
            region_up[region] = 0
            region_counted[region] = 0
        up = 0
        counted = 0
        for location in range(location_count):
            cell = endpoint * location_count + location
            base = cell * members
            down = 0
            voted = 0
            culprit = -1
            critical_up = 0
            for member in range(members):
                state = states[base + member]
                if state == UNKNOWN:
                    state = unknown_vote
                if critical[member]:
                    if state == DOWN and culprit < 0:
                        culprit = member
                    elif state == UP:
                        critical_up = 1
                if voting[member] and state != UNKNOWN:
                    voted += 1
                    if state == DOWN:
                        down += 1
            if culprit >= 0:
                verdict = DOWN
                rule = RULE_CRITICAL_DOWN
            elif voted == 0:
                verdict = UP if critical_up else UNKNOWN
                rule = RULE_CRITICAL_UP if critical_up else RULE_NO_VOTES
            elif 2 * down > voted:
                verdict = DOWN
                rule = RULE_MAJORITY_DOWN
            else:
                verdict = UP
                rule = RULE_MAJORITY_UP
            location_verdicts[cell] = verdict
            location_rules[cell] = rule
            culprits[cell] = culprit
            down_votes[cell] = down
            votes[cell] = voted
            if verdict != UNKNOWN:
                if region_count:
                    region = region_of[location]
                    region_counted[region] += 1
                    if verdict == UP:
                        region_up[region] += 1
                else:
                    counted += 1
                    if verdict == UP:
                        up += 1
        for region in range(region_count):
            if region_counted[region]:
                counted += 1
                if 2 * region_up[region] > region_counted[region]:
                    up += 1
        if counted == 0:
            endpoint_verdicts[endpoint] = UNKNOWN
        elif up > threshold * counted:
            endpoint_verdicts[endpoint] = UP
        else:
            endpoint_verdicts[endpoint] = DOWN
        endpoints_up[endpoint] = up
        endpoints_counted[endpoint] = counted
    return (
        location_verdicts,
        location_rules,
        culprits,
        down_votes,
        votes,
        endpoint_verdicts,
        endpoints_up,
        endpoints_counted,
    )
