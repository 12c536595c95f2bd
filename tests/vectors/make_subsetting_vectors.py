"""Writes tests/vectors/subsetting.json. Run it only to add vectors on purpose; the file is the
contract, and a change to existing entries means every deployed frontend would move.

Everything here is computed from the rules in ``lbkit.subsetting``'s module docs by a
deliberately naive implementation that shares no code with lbkit: Van der Corput positions as
exact :class:`fractions.Fraction` values built from the binary digits as text, the ring as a
plain sort, and the walk with explicit modular arithmetic. ``tests/test_subsetting.py`` checks
lbkit (both kernel paths) against the orders and subsets written here.
"""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction
from pathlib import Path
from typing import Any

ORDER_SIZES = [0, 1, 2, 3, 5, 8, 13, 100, 1000]

# (name, backends, subset_size, frontends, seed, scaling, removed backends, added backends)
CONFIGURATIONS: list[tuple[str, list[Any], int, int, int | None, str, list[Any], list[Any]]] = [
    ("equal counts", list(range(8)), 3, 8, None, "backend", [], []),
    ("more frontends", [f"backend-{i}" for i in range(10)], 4, 30, None, "backend", [], []),
    ("rank scaling", [f"backend-{i}" for i in range(10)], 4, 30, None, "rank", [], []),
    ("seeded shuffle", [f"10.0.0.{i}" for i in range(12)], 5, 20, 42, "backend", [], []),
    (
        "after churn",
        list(range(20)),
        6,
        25,
        None,
        "backend",
        [3, 17, 0],
        ["new-a", "new-b"],
    ),
    ("fewer frontends", list(range(100)), 10, 7, 7, "rank", [], []),
    (
        "rank scaling after churn",
        [f"backend-{i}" for i in range(13)],
        3,
        45,
        None,
        "rank",
        ["backend-4", "backend-12"],
        ["new-a"],
    ),
]


def radical_inverse(i: int) -> Fraction:
    digits = bin(i)[2:][::-1] if i else "0"
    return Fraction(int(digits, 2), 2 ** len(digits))


def subsets(config: tuple[Any, ...]) -> list[list[str | int]]:
    _, backends, k, frontends, seed, scaling, removed, added = config
    ids = list(backends)
    if seed is not None:
        random.Random(seed).shuffle(ids)
    slots: list[str | int | None] = list(ids)
    for backend in removed:
        slots[slots.index(backend)] = None
    for backend in added:
        free = [i for i, slot in enumerate(slots) if slot is None]
        if free:
            slots[free[0]] = backend
        else:
            slots.append(backend)
    ring = sorted((radical_inverse(i), slot) for i, slot in enumerate(slots) if slot is not None)
    count = len(ring)
    # Rank scaling: frontend f is the j-th of 0 .. frontends - 1 by position, at j / frontends.
    by_position = sorted(range(frontends), key=radical_inverse)
    frontend_rank = {frontend: j for j, frontend in enumerate(by_position)}
    result = []
    for frontend in range(frontends):
        position = radical_inverse(frontend)
        if scaling == "rank":
            start = math.ceil(Fraction(frontend_rank[frontend] * count, frontends)) % count
        else:
            at_or_after = [r for r, (p, _) in enumerate(ring) if p >= position]
            start = at_or_after[0] if at_or_after else 0
        result.append([ring[(start + step) % count][1] for step in range(k)])
    return result


def main() -> None:
    orders = {str(n): sorted(range(n), key=radical_inverse) for n in ORDER_SIZES}
    configurations = []
    for config in CONFIGURATIONS:
        name, backends, k, frontends, seed, scaling, removed, added = config
        configurations.append(
            {
                "name": name,
                "backends": backends,
                "subset_size": k,
                "frontends": frontends,
                "seed": seed,
                "scaling": scaling,
                "removed": removed,
                "added": added,
                "subsets": subsets(config),
            }
        )
    document = {
        "algorithm": (
            "Ringsteady subsetting as documented in lbkit.subsetting.ring: Van der Corput "
            "positions of stable indices (lowest free index reused), frontend f at the radical "
            "inverse of f, walk from the first backend at or after it (backend scaling) or, "
            "with f the j-th frontend in radical-inverse order, from rank "
            "ceil(j * n / frontends) (rank scaling)"
        ),
        "vdc_order": orders,
        "configurations": configurations,
    }
    path = Path(__file__).with_name("subsetting.json")
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
