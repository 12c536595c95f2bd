"""Fixtures of the benchmark suite, and the ratio tables printed at the end of a timed run.

The suite runs in two modes (benchmarks/README.md):

* **smoke** (the default, ``--benchmark-disable`` is in the project's addopts): each benchmark
  calls its function once, on a small batch, and checks the output. The whole suite takes a few
  seconds and runs with the tests.
* **timed** (``--benchmark-enable``): batches of a million keys, timed by pytest-benchmark, and
  at the end one table per group with the median per key of each variant and how many times
  cheaper per key it is than the group's baseline, all from this run's medians.

The ``impl`` fixture (repository-root conftest.py) runs each lbkit benchmark once per kernel
flavour and drops the compiled one under ``--no-fast`` or ``LBKIT_NO_EXTENSIONS=1``.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import pytest

import lbkit
from benchmarks.data import FlowSet, KeySet, make_flow_set, make_key_set
from benchmarks.report import Result, cpu_model, text_tables

#: Keys per batch when timing: large enough that per-call overhead vanishes from per-key costs.
TIMED_KEY_COUNT = 1_000_000
#: Keys per batch in a smoke run: enough to exercise the loops, quick enough for every test run.
SMOKE_KEY_COUNT = 20_000
#: Flows per batch for the flow-encoding benchmarks, which cost microseconds per flow.
TIMED_FLOW_COUNT = 20_000
SMOKE_FLOW_COUNT = 1_000


def timing(config: pytest.Config) -> bool:
    """True when this run times the benchmarks, False when it runs them as smoke tests."""
    # The flag the benchmark fixture itself obeys: --benchmark-disable unless --benchmark-enable,
    # and also forced on under xdist.
    return not config._benchmarksession.disabled  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def key_set(pytestconfig: pytest.Config) -> KeySet:
    """The IPv4 flow keys every batch benchmark hashes, packed and as a list."""
    return make_key_set(TIMED_KEY_COUNT if timing(pytestconfig) else SMOKE_KEY_COUNT)


@pytest.fixture(scope="session")
def flow_set(pytestconfig: pytest.Config, key_set: KeySet) -> FlowSet:
    """The first flows of ``key_set`` as 4-tuples, for the flow-encoding benchmarks."""
    return make_flow_set(key_set, TIMED_FLOW_COUNT if timing(pytestconfig) else SMOKE_FLOW_COUNT)


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Record what the medians depend on besides the code, for benchmarks/report.py."""
    machine_info["lbkit"] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "lbkit_version": lbkit.__version__,
        "lbkit_implementation": lbkit.IMPLEMENTATION,
        "lbkit_fallback_reason": lbkit.FALLBACK_REASON,
    }


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print, per group, the median per key of each variant and its ratio to the baseline."""
    if not timing(config):
        return
    session = config._benchmarksession  # type: ignore[attr-defined]
    results = [
        Result.from_json(bench.as_dict(include_data=False))
        for bench in session.benchmarks
        if bench and not bench.has_error
    ]
    if not results:
        return
    terminalreporter.section("lbkit: median per key, and how many times cheaper than baseline")
    for line in text_tables(results):
        terminalreporter.write_line(line)
