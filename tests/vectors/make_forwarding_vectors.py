"""Writes tests/vectors/forwarding.json: the SHA-256 of builder-made table blobs.

Run it only to add cases on purpose. A changed digest for an existing case means tables built
by this version differ from those built before, on some machine: every balancer must agree.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lbkit.forwarding import TableBuilder

CASES: list[dict[str, Any]] = [
    {
        "weights": [["a", 1], ["b", 1], ["c", 2]],
        "buckets": 16,
        "protocol": "tcp",
        "seed": 0,
        "operations": [],
    },
    {
        "weights": [["web-1", 3], ["web-2", 1.5], ["web-3", 0.25], [7, 2]],
        "buckets": 1024,
        "protocol": "tcp",
        "seed": 12345,
        "operations": [
            ["drain", "web-2", None],
            ["add", "web-4", 2.0],
            ["set_weight", 7, 0.5],
            ["remove", "web-1", None],
        ],
    },
    {
        "weights": [["dns-a", 1], ["dns-b", 1], ["dns-c", 1]],
        "buckets": 256,
        "protocol": "udp",
        "seed": 7,
        "operations": [["add", "dns-d", 1], ["drain", "dns-a", None]],
    },
    {
        "weights": [["r1", 1], ["r2", 2]],
        "buckets": 64,
        "protocol": "udp-rr",
        "seed": 4294967295,
        "operations": [["add", "r3", 3]],
    },
]


def main() -> None:
    tables = []
    for case in CASES:
        builder = TableBuilder(
            [tuple(pair) for pair in case["weights"]],
            buckets=case["buckets"],
            protocol=case["protocol"],
            seed=case["seed"],
        )
        for operation, server, value in case["operations"]:
            if operation == "drain":
                builder.drain(server)
            elif operation == "remove":
                builder.remove(server)
            elif operation == "add":
                builder.add(server, value)
            else:
                builder.set_weight(server, value)
        builder._check()
        blob = builder.table.to_bytes()
        tables.append(
            {
                **case,
                "sha256": hashlib.sha256(blob).hexdigest(),
                "first_16": builder.table.first_hops.tolist()[:16],
            }
        )
    path = Path(__file__).with_name("forwarding.json")
    path.write_text(json.dumps({"tables": tables}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
