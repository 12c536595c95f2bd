"""Maglev population: lbkit's kernels beside a plain C implementation of the same algorithm.

The baseline is ``benchmarks/maglev_reference.c``, a plain C transcription of the weighted
population rule documented in :mod:`lbkit.forwarding.maglev`. It is compiled once per session
with the system C compiler (``sysconfig.get_config_var("CC")``, else ``cc``) at ``-O3``, the
level Python builds extensions with, into a shared library in a temporary directory, and
called through ctypes with the offsets, skips and quotas lbkit computes for the same servers.
Without a working compiler that variant is skipped (with the reason in the skip message) and
the group has no baseline; the other variants still run and check their output.

lbkit variants take the ``impl`` fixture, so each runs once with the compiled kernels
(``fast``) and once with the pure-Python ones (``pure``): the ``populate`` kernel alone on
the same inputs as the C code, and a whole ``MaglevTable(weights, size=M)`` construction
(validation, permutations and quotas included). Every variant asserts that its table is the
reference kernel's, entry for entry, the C one included. Times are per table entry.

Timed, the group builds M = 65,537 entries for N = 1,000 servers weighted 1 to 4; a smoke run
builds M = 251 for N = 10. The bars to read off the ratio table: the fast kernel within 2x of
the C reference (ratio at least 0.5), and at least 20x cheaper than pure. Nothing here asserts
a time.
"""

from __future__ import annotations

import ctypes
import shlex
import shutil
import subprocess
import sysconfig
from array import array
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.conftest import timing
from benchmarks.report import Flavour, describe
from lbkit import _kernels
from lbkit.forwarding.maglev import MaglevTable, _apportion, _permutations

POPULATION = pytest.mark.benchmark(group="Maglev population, M=65537, N=1000")

#: Entries and servers when timing: the paper's and Envoy's default table size.
TIMED_SIZE, TIMED_SERVERS = 65537, 1000
#: Entries and servers in a smoke run: enough to exercise the loops, quick enough for every run.
SMOKE_SIZE, SMOKE_SERVERS = 251, 10

REFERENCE_SOURCE = Path(__file__).with_name("maglev_reference.c")
#: What the C reference is compiled with, besides the compiler and the output.
REFERENCE_FLAGS = ["-O3", "-fPIC", "-shared"]

UInt32Pointer = ctypes.POINTER(ctypes.c_uint32)


@dataclass(frozen=True)
class Population:
    """One population problem: the servers, and the kernel inputs lbkit derives from them."""

    weights: dict[str, float]
    size: int
    offsets: array[int]
    skips: array[int]
    quotas: array[int]
    #: The table the reference (pure) kernel fills: what every variant must produce.
    table: array[int]


@pytest.fixture(scope="module")
def population(pytestconfig: pytest.Config) -> Population:
    """N servers weighted 1, 2, 3, 4, 1, ... and their kernel inputs for a table of M entries."""
    size, servers = (
        (TIMED_SIZE, TIMED_SERVERS) if timing(pytestconfig) else (SMOKE_SIZE, SMOKE_SERVERS)
    )
    weights = {f"backend-{i:04d}": float(1 + i % 4) for i in range(servers)}
    offsets, skips = _permutations(tuple(weights), size, 0)
    quotas = _apportion(list(weights.values()), size)
    table = _kernels.load("pure")["maglev"].populate(offsets, skips, quotas, size)
    return Population(weights, size, offsets, skips, quotas, table)


@pytest.fixture(scope="module")
def reference_library(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """benchmarks/maglev_reference.c as a shared library, or a skip saying why not."""
    configured = sysconfig.get_config_var("CC") or ""
    compiler = shlex.split(configured) if configured else []
    if not compiler or shutil.which(compiler[0]) is None:
        compiler = ["cc"]
    if shutil.which(compiler[0]) is None:
        pytest.skip(
            f"no C compiler found (sysconfig CC is {configured!r}, and no cc on PATH): "
            "the C reference baseline of the Maglev group is skipped"
        )
    library = tmp_path_factory.mktemp("maglev-reference") / "maglev_reference.so"
    command = [*compiler, *REFERENCE_FLAGS, "-o", str(library), str(REFERENCE_SOURCE)]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"the C compiler could not run ({error}): the C reference baseline is skipped")
    if completed.returncode != 0:
        pytest.skip(
            f"compiling the C reference failed ({' '.join(command)}): "
            f"{completed.stderr.strip()[:500]}; the C reference baseline is skipped"
        )
    loaded = ctypes.CDLL(str(library))
    loaded.maglev_populate.argtypes = [
        UInt32Pointer,
        UInt32Pointer,
        UInt32Pointer,
        ctypes.c_size_t,
        ctypes.c_uint32,
        UInt32Pointer,
    ]
    loaded.maglev_populate.restype = ctypes.c_int
    return loaded


def _pointer(values: array[int]) -> ctypes._Pointer[ctypes.c_uint32]:
    return ctypes.cast((ctypes.c_uint32 * len(values)).from_buffer(values), UInt32Pointer)


@POPULATION
def test_population_c_reference(
    benchmark: BenchmarkFixture, population: Population, reference_library: ctypes.CDLL
) -> None:
    """The plain C implementation, called through ctypes on the same inputs; it must fill the
    same table (a check on the C code and on the documented rule both follow)."""
    describe(
        benchmark,
        "C reference: maglev_reference.c (-O3) through ctypes",
        population.size,
        baseline=True,
    )
    table = array("I", bytes(4 * population.size))
    arguments = (
        _pointer(population.offsets),
        _pointer(population.skips),
        _pointer(population.quotas),
        len(population.offsets),
        population.size,
        _pointer(table),
    )

    def populate() -> array[int]:
        if reference_library.maglev_populate(*arguments) != 0:
            raise MemoryError("maglev_populate could not allocate its work arrays")
        return table

    assert benchmark(populate) == population.table


@POPULATION
def test_population_kernel(
    benchmark: BenchmarkFixture, impl: Flavour, population: Population
) -> None:
    """The populate kernel alone, on the inputs the C reference gets."""
    describe(benchmark, f"lbkit {impl.name}: populate kernel", population.size)
    populate = impl.kernels["maglev"].populate
    table = benchmark(
        populate, population.offsets, population.skips, population.quotas, population.size
    )
    assert table == population.table


@POPULATION
def test_population_table(
    benchmark: BenchmarkFixture, impl: Flavour, population: Population
) -> None:
    """A whole MaglevTable construction: weight and size validation, two murmur3 hashes per
    server, the quotas, and the populate kernel."""
    describe(benchmark, f"lbkit {impl.name}: MaglevTable(weights, size=M)", population.size)
    table = benchmark(MaglevTable, population.weights, size=population.size)
    assert table.first_hops == population.table
