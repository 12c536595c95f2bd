"""Time the benchmarks and write the results fragment of the performance page.

Run from anywhere (it changes to the repository root)::

    python benchmarks/report.py

It runs ``python -m pytest benchmarks --benchmark-enable --benchmark-json=<temp file>`` with the
same interpreter, then writes ``docs/generated/benchmarks.rst``: per benchmark group, the median
time per key of each variant and how many times cheaper per key it is than the group's baseline
(the ``mmh3.hash`` loop for the hashing groups), with the machine and the date. ``--from-json
FILE`` formats an earlier ``--benchmark-json`` file instead of timing again; ``--output PATH``
writes elsewhere.

The ratio tables live here so that the table benchmarks/conftest.py prints at the end of a
timed run and the one in the docs are computed by the same code.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "generated" / "benchmarks.rst"
#: The timed run, as typed at the repository root.
TIMED_RUN = "python -m pytest benchmarks --benchmark-enable"
#: This script, as typed at the repository root.
REPORT_COMMAND = "python benchmarks/report.py"
RATIO_HEADING = "x cheaper than baseline"


class Flavour(Protocol):
    """The root conftest's ``impl`` fixture: the kernel flavour the public API calls."""

    name: str
    kernels: dict[str, ModuleType]


def describe(
    benchmark: Any,
    variant: str,
    keys: int,
    *,
    baseline: bool = False,
    operation: str | None = None,
    flavour: str | None = None,
) -> None:
    """Label a benchmark for the ratio tables: what ran, how many keys (or entries) one timed
    call handles, so medians divide into per-key costs, and whether it is its group's
    baseline.

    ``operation`` and ``flavour`` (``"fast"`` or ``"pure"``) name a kernel operation timed on
    both paths in the same group: the tables then add one row per operation with the fast
    path's cost as a multiple of the baseline's and the pure path's as a multiple of the fast
    path's (the steering bars are stated that way)."""
    benchmark.extra_info.update(variant=variant, keys=keys, baseline=baseline)
    if operation is not None:
        benchmark.extra_info.update(operation=operation, flavour=flavour)


@dataclass(frozen=True)
class Result:
    """One benchmark's median time per call, and what the ratio tables need to place it."""

    group: str
    #: What was measured, as the tables label it.
    variant: str
    #: How many keys one timed call hashes.
    keys: int
    #: Median seconds per call.
    median: float
    #: True for the group's reference, the one every ratio divides.
    baseline: bool
    #: The kernel operation this variant times on one path, when the group pairs the paths.
    operation: str | None = None
    #: ``"fast"`` or ``"pure"`` for a paired operation.
    flavour: str | None = None

    @property
    def per_key(self) -> float:
        """Median seconds per key."""
        return self.median / self.keys

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Result:
        """From one benchmark of pytest-benchmark's JSON (or ``Metadata.as_dict()``)."""
        extra = entry.get("extra_info") or {}
        return cls(
            group=entry.get("group") or "(no group)",
            variant=str(extra.get("variant", entry["name"])),
            keys=int(extra.get("keys", 1)),
            median=float(entry["stats"]["median"]),
            baseline=bool(extra.get("baseline", False)),
            operation=extra.get("operation"),
            flavour=extra.get("flavour"),
        )


@dataclass
class GroupTable:
    """The variants of one group, baseline first, each with its ratio to the baseline."""

    group: str
    keys: int
    #: ``(result, baseline.per_key / result.per_key)``; the ratio is None without a baseline.
    rows: list[tuple[Result, float | None]] = field(default_factory=list)
    #: Operations timed on both paths, in the order their fast variant ran.
    pairs: list[PairRow] = field(default_factory=list)


@dataclass(frozen=True)
class PairRow:
    """One operation timed on both kernel paths in the same group."""

    operation: str
    fast: Result
    pure: Result
    #: The fast path's cost per key as a multiple of the baseline's (None without one); the
    #: steering bar is "at most 3".
    fast_over_baseline: float | None

    @property
    def pure_over_fast(self) -> float:
        """How many times the pure path's cost per key is the fast path's."""
        return self.pure.per_key / self.fast.per_key


def pair_rows(members: Sequence[Result], baseline: Result | None) -> list[PairRow]:
    """The operations of one group that ran on both paths, with their cost ratios."""
    by_operation: dict[str, dict[str, Result]] = {}
    for result in members:
        if result.operation is not None and result.flavour in ("fast", "pure"):
            by_operation.setdefault(result.operation, {})[result.flavour] = result
    rows = []
    for operation, flavours in by_operation.items():
        if "fast" in flavours and "pure" in flavours:
            fast = flavours["fast"]
            ratio = None if baseline is None else fast.per_key / baseline.per_key
            rows.append(PairRow(operation, fast, flavours["pure"], ratio))
    return rows


def group_tables(results: Iterable[Result]) -> list[GroupTable]:
    """The results by group, groups in the order they first ran."""
    by_group: dict[str, list[Result]] = {}
    for result in results:
        by_group.setdefault(result.group, []).append(result)
    tables = []
    for group, members in by_group.items():
        members.sort(key=lambda result: not result.baseline)  # stable: run order otherwise
        baseline = members[0] if members[0].baseline else None
        table = GroupTable(group=group, keys=members[0].keys)
        for result in members:
            ratio = None if baseline is None else baseline.per_key / result.per_key
            table.rows.append((result, ratio))
        table.pairs = pair_rows(members, baseline)
        tables.append(table)
    return tables


def format_time(seconds: float) -> str:
    """A duration in ns, us, ms or s with three significant digits (``2.88 ns``, ``56.3 ns``)."""
    value, unit = seconds * 1e9, "ns"
    for larger in ("us", "ms", "s"):
        if value < 999.5:
            break
        value, unit = value / 1e3, larger
    decimals = 0 if value >= 99.95 else 1 if value >= 9.995 else 2
    return f"{value:.{decimals}f} {unit}"


def format_ratio(ratio: float | None) -> str:
    """A ratio with two or three significant digits (``19.4``, ``1.00``, ``0.010``)."""
    if ratio is None:
        return "-"
    if ratio >= 100:
        return f"{ratio:.0f}"
    if ratio >= 0.1:
        return f"{ratio:.{1 if ratio >= 10 else 2}f}"
    return f"{ratio:#.2g}"


PAIR_HEADER = ("fast against pure", "fast cost / baseline", "pure cost / fast")


def _pair_cells(row: PairRow) -> tuple[str, str, str]:
    return (row.operation, format_ratio(row.fast_over_baseline), format_ratio(row.pure_over_fast))


def _label(result: Result) -> str:
    return f"{result.variant} (baseline)" if result.baseline else result.variant


def _keys_per_call(keys: int) -> str:
    return "1 key per timed call" if keys == 1 else f"{keys:,} keys per timed call"


def text_tables(results: Iterable[Result]) -> list[str]:
    """Plain-text tables, one per group, for the terminal."""
    lines: list[str] = []
    for table in group_tables(results):
        cells = [
            (_label(result), format_time(result.per_key), format_ratio(ratio))
            for result, ratio in table.rows
        ]
        header = ("variant", "median per key", RATIO_HEADING)
        widths = [max(len(row[column]) for row in [header, *cells]) for column in range(3)]
        if lines:
            lines.append("")
        lines.append(f"{table.group} ({_keys_per_call(table.keys)})")
        for label, median, ratio in [header, *cells]:
            lines.append(
                f"  {label:<{widths[0]}}  {median:>{widths[1]}}  {ratio:>{widths[2]}}".rstrip()
            )
        if table.pairs:
            pair_cells = [_pair_cells(row) for row in table.pairs]
            widths = [
                max(len(row[column]) for row in [PAIR_HEADER, *pair_cells]) for column in range(3)
            ]
            lines.append("")
            for operation, fast, pure in [PAIR_HEADER, *pair_cells]:
                lines.append(
                    f"  {operation:<{widths[0]}}  {fast:>{widths[1]}}  {pure:>{widths[2]}}".rstrip()
                )
    return lines


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                name, _, value = line.partition(":")
                if name.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _rst_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`").replace("|", "\\|")


def rst_fragment(run: Mapping[str, Any]) -> str:
    """The reST fragment for the docs (no top-level title) from pytest-benchmark's JSON."""
    results = [Result.from_json(entry) for entry in run["benchmarks"]]
    machine = dict(run.get("machine_info", {}).get("lbkit") or {})
    timestamp = str(run.get("datetime", ""))
    date = f"{timestamp[:10]} {timestamp[11:16]} UTC" if len(timestamp) >= 16 else timestamp
    lines = [
        f".. Generated by ``{REPORT_COMMAND}``; do not edit by hand, run it again.",
        "",
        "Medians of one timed run. Each variant's median time per call is divided by the keys",
        "one call hashes; the last column is that median per key of the group's baseline",
        "divided by the variant's, so 10 means ten times cheaper per key than the baseline and",
        "a value below 1 means costlier. The hashing baseline is the cheapest Python loop a user",
        "would write, ``[mmh3.hash(key, 0, signed=False) for key in keys]``, over the same",
        "keys; the ``hash_key`` group makes one ``hash_key`` call per key in that same loop.",
        "Every benchmark also checks that its output equals the baseline's.",
        "",
    ]
    tables = group_tables(results)
    if any(table.pairs for table in tables):
        lines += [
            "Where a group times one kernel operation on both paths, a second table gives the",
            "fast path's median per key as a multiple of the baseline's and the pure path's as a",
            "multiple of the fast path's (ratios of costs: there, lower is cheaper).",
            "",
        ]
    for table in tables:
        lines += [
            f".. list-table:: {_rst_escape(table.group)} ({_keys_per_call(table.keys)})",
            "   :header-rows: 1",
            "",
            "   * - Variant",
            "     - Median per call",
            "     - Median per key",
            "     - Times cheaper per key than baseline",
        ]
        for result, ratio in table.rows:
            lines += [
                f"   * - {_rst_escape(_label(result))}",
                f"     - {format_time(result.median)}",
                f"     - {format_time(result.per_key)}",
                f"     - {format_ratio(ratio)}",
            ]
        lines.append("")
        if table.pairs:
            lines += [
                f".. list-table:: {_rst_escape(table.group)}: fast against pure",
                "   :header-rows: 1",
                "",
                "   * - Operation",
                "     - Fast cost per key / baseline's",
                "     - Pure cost per key / fast's",
            ]
            for row in table.pairs:
                operation, fast, pure = _pair_cells(row)
                lines += [
                    f"   * - {_rst_escape(operation)}",
                    f"     - {fast}",
                    f"     - {pure}",
                ]
            lines.append("")
    implementation = machine.get("lbkit_implementation", "unknown")
    lbkit_line = (
        f'{machine.get("lbkit_version", "?")}, ``lbkit.IMPLEMENTATION`` is ``"{implementation}"``'
    )
    if machine.get("lbkit_fallback_reason"):
        lbkit_line += f" ({_rst_escape(str(machine['lbkit_fallback_reason']))})"
    lines += [
        f":Machine: {_rst_escape(str(machine.get('cpu_model', 'unknown CPU')))}, "
        f"{machine.get('cpu_count', '?')} logical CPUs, "
        f"{_rst_escape(str(machine.get('platform', platform.system())))}",
        f":Python: {machine.get('python', run.get('machine_info', {}).get('python_version'))}",
        f":lbkit: {lbkit_line}",
        f":Date: {date}",
        f":Command: ``{REPORT_COMMAND}``, which runs ``{TIMED_RUN} --benchmark-json=FILE`` at "
        "the repository root",
        "",
    ]
    return "\n".join(lines)


def run_benchmarks(json_path: Path) -> None:
    """Run the timed benchmarks with this interpreter, writing pytest-benchmark's JSON."""
    command = [sys.executable, *TIMED_RUN.split()[1:], f"--benchmark-json={json_path}"]
    print("running:", " ".join(command), flush=True)
    completed = subprocess.run(command, cwd=ROOT, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"the timed benchmark run failed (exit status {completed.returncode})")


def main(argv: Sequence[str] | None = None) -> int:
    """Time the benchmarks (or read ``--from-json``) and write the reST fragment."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the fragment"
    )
    parser.add_argument(
        "--from-json", type=Path, help="format this --benchmark-json file instead of timing"
    )
    options = parser.parse_args(argv)
    if options.from_json is not None:
        run = json.loads(options.from_json.read_text(encoding="utf-8"))
    else:
        with tempfile.TemporaryDirectory() as scratch:
            json_path = Path(scratch) / "benchmarks.json"
            run_benchmarks(json_path)
            run = json.loads(json_path.read_text(encoding="utf-8"))
    if not run.get("benchmarks"):
        raise SystemExit("no benchmark results to report")
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(rst_fragment(run), encoding="utf-8")
    print(f"wrote {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
