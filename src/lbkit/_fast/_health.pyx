"""Health kernel, compiled, mirroring ``lbkit._pure._health``: :func:`fold` turns a batch of
per-member result codes into per-location and per-endpoint verdicts in one pass."""

from cpython.array cimport array, clone
from libc.stdint cimport int32_t, uint8_t, uint32_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

cimport cython

UNKNOWN = 0
UP = 1
DOWN = 2

RULE_NO_VOTES = 0
RULE_CRITICAL_DOWN = 1
RULE_MAJORITY_DOWN = 2
RULE_MAJORITY_UP = 3
RULE_CRITICAL_UP = 4

cdef uint8_t _UNKNOWN = 0
cdef uint8_t _UP = 1
cdef uint8_t _DOWN = 2

cdef array _UINT8_TEMPLATE = array("B")
cdef array _INT32_TEMPLATE = array("i")
cdef array _UINT32_TEMPLATE = array("I")


# states has endpoint_count * location_count * members codes, critical and voting have members
# flags, region_of has location_count entries below region_count (or none when region_count is
# 0), and every output has the length it was allocated with: lbkit.health.group validates all
# of it, so no index below leaves its buffer.
@cython.boundscheck(False)
@cython.wraparound(False)
def fold(
    const uint8_t[::1] states,
    const uint8_t[::1] critical,
    const uint8_t[::1] voting,
    int unknown_vote,
    Py_ssize_t endpoint_count,
    Py_ssize_t location_count,
    const uint32_t[::1] region_of,
    Py_ssize_t region_count,
    double threshold,
):
    """Per-location and per-endpoint verdicts of a batch of result codes."""
    cdef Py_ssize_t members = critical.shape[0]
    cdef Py_ssize_t cells = endpoint_count * location_count
    cdef array location_verdicts = clone(_UINT8_TEMPLATE, cells, True)
    cdef array location_rules = clone(_UINT8_TEMPLATE, cells, True)
    cdef array culprits = clone(_INT32_TEMPLATE, cells, False)
    cdef array down_votes = clone(_UINT32_TEMPLATE, cells, True)
    cdef array votes = clone(_UINT32_TEMPLATE, cells, True)
    cdef array endpoint_verdicts = clone(_UINT8_TEMPLATE, endpoint_count, True)
    cdef array endpoints_up = clone(_UINT32_TEMPLATE, endpoint_count, True)
    cdef array endpoints_counted = clone(_UINT32_TEMPLATE, endpoint_count, True)
    cdef uint8_t* out_verdicts = location_verdicts.data.as_uchars
    cdef uint8_t* out_rules = location_rules.data.as_uchars
    cdef int32_t* out_culprits = <int32_t*>culprits.data.as_ints
    cdef uint32_t* out_down = down_votes.data.as_uints
    cdef uint32_t* out_votes = votes.data.as_uints
    cdef uint8_t* out_endpoint = endpoint_verdicts.data.as_uchars
    cdef uint32_t* out_up = endpoints_up.data.as_uints
    cdef uint32_t* out_counted = endpoints_counted.data.as_uints
    cdef Py_ssize_t allocated = region_count if region_count > 0 else 1
    cdef uint32_t* region_up = <uint32_t*>calloc(allocated, sizeof(uint32_t))
    cdef uint32_t* region_counted = <uint32_t*>calloc(allocated, sizeof(uint32_t))
    cdef Py_ssize_t endpoint, location, member, region, cell, base
    cdef uint32_t up, counted, down, voted
    cdef int32_t culprit
    cdef int critical_up
    cdef uint8_t state, verdict, rule
    cdef uint8_t unknown_as = <uint8_t>unknown_vote
    if region_up == NULL or region_counted == NULL:
        free(region_up)
        free(region_counted)
        raise MemoryError()
    try:
        with nogil:
            for endpoint in range(endpoint_count):
                if region_count > 0:
                    memset(region_up, 0, region_count * sizeof(uint32_t))
                    memset(region_counted, 0, region_count * sizeof(uint32_t))
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
                        if state == _UNKNOWN:
                            state = unknown_as
                        if critical[member]:
                            if state == _DOWN and culprit < 0:
                                culprit = <int32_t>member
                            elif state == _UP:
                                critical_up = 1
                        if voting[member] and state != _UNKNOWN:
                            voted += 1
                            if state == _DOWN:
                                down += 1
                    if culprit >= 0:
                        verdict = _DOWN
                        rule = 1  # RULE_CRITICAL_DOWN
                    elif voted == 0:
                        if critical_up:
                            verdict = _UP
                            rule = 4  # RULE_CRITICAL_UP
                        else:
                            verdict = _UNKNOWN
                            rule = 0  # RULE_NO_VOTES
                    elif 2 * down > voted:
                        verdict = _DOWN
                        rule = 2  # RULE_MAJORITY_DOWN
                    else:
                        verdict = _UP
                        rule = 3  # RULE_MAJORITY_UP
                    out_verdicts[cell] = verdict
                    out_rules[cell] = rule
                    out_culprits[cell] = culprit
                    out_down[cell] = down
                    out_votes[cell] = voted
                    if verdict != _UNKNOWN:
                        if region_count > 0:
                            region = region_of[location]
                            region_counted[region] += 1
                            if verdict == _UP:
                                region_up[region] += 1
                        else:
                            counted += 1
                            if verdict == _UP:
                                up += 1
                for region in range(region_count):
                    if region_counted[region]:
                        counted += 1
                        if 2 * region_up[region] > region_counted[region]:
                            up += 1
                if counted == 0:
                    out_endpoint[endpoint] = _UNKNOWN
                elif <double>up > threshold * <double>counted:
                    out_endpoint[endpoint] = _UP
                else:
                    out_endpoint[endpoint] = _DOWN
                out_up[endpoint] = up
                out_counted[endpoint] = counted
    finally:
        free(region_up)
        free(region_counted)
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
