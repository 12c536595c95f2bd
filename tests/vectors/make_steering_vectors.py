"""Writes tests/vectors/steering.json. Run it only to add vectors on purpose; the file is the
contract, and a change to existing entries means seeded runs (simulations, tests, replays) pick
differently from before.

Everything here is computed from the rules in ``lbkit._pure._steering``'s docstrings by a
deliberately naive implementation that shares no code with lbkit: the generator as the closed
form ``splitmix64(seed + k * GOLDEN_GAMMA)``, the alias table built with plain lists used as
stacks, the EDF schedule by scanning every entry for the smallest ``(deadline, index)`` (no
heap), and rendezvous hashing as a ``max`` over scores. ``tests/test_steering_kernels.py``
checks both kernel paths against the draws and picks written here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

M64 = 2**64
GAMMA = 0x9E3779B97F4A7C15

RNG_SEEDS = [0, 1, 42, 2**63, M64 - 1]
BELOW_BOUNDS = [1, 2, 3, 10, 1000, 2**31 + 1, 2**32 - 1, 2**32]
ALIAS_CASES: list[tuple[int, list[float]]] = [
    (7, [1.0, 2.0, 3.0, 4.0]),
    (8, [0.0, 5.0, 0.0, 1.0, 0.25]),
    (9, [0.1, 0.2, 0.3, 0.4, 1e-9, 7.5, 2.0]),
    (10, [3.0]),
]
CHOICE_CASES = ALIAS_CASES
# (seed, weights, latency_weighted, outstanding, latencies)
P2C_CASES: list[tuple[int, list[float], bool, list[int], list[float]]] = [
    (11, [1.0, 1.0, 1.0, 1.0], False, [3, 0, 5, 1], [0.0] * 4),
    (12, [1.0, 2.0, 0.0, 4.0, 0.5], False, [2, 2, 0, 6, 1], [0.0] * 5),
    (13, [1.0, 3.0, 2.0], True, [0, 4, 1], [0.030, 0.010, 0.025]),
]
# (weights, operations): an int is next(), a pair is set_weight(index, weight).
EDF_CASES: list[tuple[list[float], list[Any]]] = [
    ([5.0, 1.0, 1.0], [0] * 21),
    ([3.0, 0.0, 2.0, 1.0], [0] * 18),
    ([0.5, 1.5, 2.25], [0] * 25),
    ([1.0, 1.0, 4.0], [0] * 5 + [[2, 0.0]] + [0] * 4 + [[1, 3.0], [2, 1.0]] + [0] * 12),
]
RENDEZVOUS_IDS = [0x0123456789ABCDEF * (i + 1) % M64 for i in range(6)]
RENDEZVOUS_WEIGHTS = {
    "uniform": [1.0] * 6,
    "uniform with a zero": [2.0, 2.0, 0.0, 2.0, 2.0, 2.0],
    "weighted": [1.0, 2.0, 3.0, 0.0, 0.5, 10.0],
}
RENDEZVOUS_KEYS = [0, 1, 2**63, M64 - 1] + [
    (k * 0x9E3779B97F4A7C15 + 12345) % M64 for k in range(20)
]


def splitmix64(value: int) -> int:
    z = value % M64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 % M64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB % M64
    return z ^ (z >> 31)


def draws(seed: int) -> Iterator[int]:
    """The closed form of the generator: draw k is splitmix64(seed + k * gamma)."""
    k = 0
    while True:
        k += 1
        yield splitmix64(seed + k * GAMMA)


def unit(draw: int) -> float:
    return (draw >> 11) / 2.0**53


def below(stream: Iterator[int], bound: int) -> int:
    # Lemire: multiply the top 32 bits by bound; reject while the low half is under 2**32 % bound.
    while True:
        product = (next(stream) >> 32) * bound
        if product % 2**32 >= (2**32 - bound) % bound:
            return product >> 32


def alias_picks(seed: int, weights: list[float], picks: int) -> list[int]:
    columns = [i for i, w in enumerate(weights) if w > 0.0]
    n = len(columns)
    total = 0.0
    for i in columns:
        total += weights[i]
    scaled = [weights[i] * n / total for i in columns]
    prob, alias = [1.0] * n, list(range(n))
    small = [c for c in range(n) if scaled[c] < 1.0]
    large = [c for c in range(n) if scaled[c] >= 1.0]
    while small and large:
        less, more = small.pop(), large.pop()
        prob[less], alias[less] = scaled[less], more
        scaled[more] = (scaled[more] + scaled[less]) - 1.0
        (small if scaled[more] < 1.0 else large).append(more)
    stream = draws(seed)
    result = []
    for _ in range(picks):
        column = below(stream, n)
        if unit(next(stream)) >= prob[column]:
            column = alias[column]
        result.append(columns[column])
    return result


def choice_picks(seed: int, weights: list[float], picks: int) -> list[int]:
    stream = draws(seed)
    result = []
    for _ in range(picks):
        total = 0.0
        for w in weights:
            total += w
        target = unit(next(stream)) * total
        cumulative, chosen = 0.0, -1
        for i, w in enumerate(weights):
            if w > 0.0:
                cumulative += w
                chosen = i
                if target < cumulative:
                    break
        result.append(chosen)
    return result


def p2c_picks(case: tuple[int, list[float], bool, list[int], list[float]], picks: int) -> list[int]:
    seed, weights, latency_weighted, outstanding, latencies = case
    eligible = [i for i, w in enumerate(weights) if w > 0.0]

    def cost(i: int) -> float:
        if latency_weighted:
            return latencies[i] * (outstanding[i] + 1) / weights[i]
        return outstanding[i] / weights[i]

    stream = draws(seed)
    result = []
    for _ in range(picks):
        first = below(stream, len(eligible))
        second = below(stream, len(eligible) - 1)
        second += second >= first
        a, b = eligible[first], eligible[second]
        result.append(b if cost(b) < cost(a) else a)
    return result


def edf_picks(weights: list[float], operations: list[Any]) -> list[list[Any]]:
    weights = list(weights)
    base = [0.0] * len(weights)
    picks = [0] * len(weights)
    clock = 0.0
    result: list[list[Any]] = []
    for operation in operations:
        if isinstance(operation, list):
            index, weight = operation
            weights[index], base[index], picks[index] = weight, clock, 0
            continue
        live = [
            (base[i] + (picks[i] + 1) / weights[i], i)
            for i in range(len(weights))
            if weights[i] > 0
        ]
        deadline, index = min(live)
        clock = deadline
        picks[index] += 1
        result.append([index, clock])
    return result


def rendezvous(key: int, weights: list[float]) -> int:
    positive = {w for w in weights if w > 0.0}
    scores = []
    for i, w in enumerate(weights):
        if w <= 0.0:
            continue
        h = splitmix64(key ^ RENDEZVOUS_IDS[i])
        score = h if len(positive) == 1 else w / -math.log(((h >> 11) + 0.5) / 2.0**53)
        scores.append((score, -i))
    return -max(scores)[1] if scores else -1


def main() -> None:
    rng = []
    for seed in RNG_SEEDS:
        stream = draws(seed)
        next_u64 = [next(stream) for _ in range(8)]
        stream = draws(seed)
        randoms = [unit(next(stream)) for _ in range(8)]
        stream = draws(seed)
        belows = {str(bound): [below(stream, bound) for _ in range(6)] for bound in BELOW_BOUNDS}
        rng.append({"seed": seed, "next_u64": next_u64, "random": randoms, "below": belows})
    document = {
        "algorithm": (
            "lbkit._pure._steering: SplitMix64 draws splitmix64(seed + k * 0x9E3779B97F4A7C15); "
            "random() = (draw >> 11) * 2**-53; below(n) is Lemire's multiply-shift with rejection "
            "on the top 32 bits (rng[].below: one stream, the bounds in the order written); Vose's alias table (stacks filled in index order, two draws per "
            "pick); weighted_choice scans cumulative weights; P2C draws two distinct eligible "
            "positions (below(n), below(n - 1) shifted past the first); EDF picks the smallest "
            "(base + (picks + 1) / weight, index); rendezvous takes the highest "
            "splitmix64(key ^ id) with equal weights, else weight / -log(((h >> 11) + 0.5) * 2**-53)"
        ),
        "splitmix64": {str(x): splitmix64(x) for x in (0, 1, GAMMA, M64 - 1)},
        "rng": rng,
        "alias": [
            {"seed": seed, "weights": weights, "picks": alias_picks(seed, weights, 40)}
            for seed, weights in ALIAS_CASES
        ],
        "weighted_choice": [
            {"seed": seed, "weights": weights, "picks": choice_picks(seed, weights, 40)}
            for seed, weights in CHOICE_CASES
        ],
        "p2c": [
            {
                "seed": case[0],
                "weights": case[1],
                "latency_weighted": case[2],
                "outstanding": case[3],
                "latencies": case[4],
                "picks": p2c_picks(case, 30),
            }
            for case in P2C_CASES
        ],
        "edf": [
            {"weights": weights, "operations": operations, "picks": edf_picks(weights, operations)}
            for weights, operations in EDF_CASES
        ],
        "rendezvous": {
            "ids": RENDEZVOUS_IDS,
            "keys": RENDEZVOUS_KEYS,
            "cases": [
                {
                    "name": name,
                    "weights": weights,
                    "picks": [rendezvous(key, weights) for key in RENDEZVOUS_KEYS],
                }
                for name, weights in RENDEZVOUS_WEIGHTS.items()
            ],
        },
    }
    path = Path(__file__).with_name("steering.json")
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
