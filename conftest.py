"""Shared by ``tests/`` and ``benchmarks/``: the ``impl`` fixture, ``--no-fast``, and the
hypothesis profiles.

It sits at the repository root because pytest reads command-line options only from the
conftest files of the paths it starts from; test-only fixtures live in ``tests/conftest.py``.

* ``impl`` runs a test once per kernel flavour, ``fast`` (Cython) and ``pure``, by pointing
  :mod:`lbkit._kernels` at that flavour for the duration of the test, so the public API is
  exercised on both paths. A missing compiled kernel makes the ``fast`` run fail, not skip: a
  build that silently lost its extension must not pass.
* ``--no-fast`` (or ``LBKIT_NO_EXTENSIONS=1`` in the environment) runs the pure flavour only.
* ``redis_url`` starts a redis-server of its own for the session (the RedisStore tests and
  benchmarks), skipped when none can be started, a failure under ``LBKIT_REQUIRE_REDIS=1``.
* ``HYPOTHESIS_PROFILE=thorough`` runs many more examples; the default profile is quick and
  derandomized, so a run is reproducible.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from lbkit import _kernels

# `impl` is function-scoped (it must be undone after each test) but holds no state that one
# generated example could leave behind for the next, so hypothesis' warning about
# function-scoped fixtures does not apply to it.
_HEALTH_CHECKS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "quick",
    max_examples=60,
    deadline=None,  # a shared, noisy machine: time limits per example would be flaky
    derandomize=True,
    suppress_health_check=_HEALTH_CHECKS,
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=_HEALTH_CHECKS,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


class Implementation:
    """One kernel flavour: ``name`` is ``"fast"`` or ``"pure"``; kernels are attributes."""

    def __init__(self, name: str, kernels: dict[str, ModuleType]) -> None:
        self.name = name
        self.kernels = kernels

    def __getattr__(self, kernel: str) -> ModuleType:
        try:
            return self.kernels[kernel]
        except KeyError:
            raise AttributeError(kernel) from None

    def __repr__(self) -> str:
        return f"Implementation({self.name!r})"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-fast",
        action="store_true",
        default=False,
        help="run only the pure-Python kernels (also implied by LBKIT_NO_EXTENSIONS=1)",
    )


def fast_disabled(config: pytest.Config) -> bool:
    """True when this run tests the pure kernels only."""
    return bool(config.getoption("--no-fast")) or os.environ.get("LBKIT_NO_EXTENSIONS", "") not in (
        "",
        "0",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        flavours = ["pure"] if fast_disabled(metafunc.config) else ["fast", "pure"]
        metafunc.parametrize("impl", flavours, indirect=True)


@pytest.fixture
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Implementation:
    """The kernel flavour under test, installed as the one the public API calls."""
    flavour = request.param
    kernels = _kernels.load(flavour)
    for name, module in kernels.items():
        monkeypatch.setattr(_kernels, name, module)
    return Implementation(flavour, kernels)


@pytest.fixture
def requires_fast(request: pytest.FixtureRequest) -> None:
    """Skip the test in a pure-only run, where the compiled kernels are deliberately unused."""
    if fast_disabled(request.config):
        pytest.skip("pure-only run (--no-fast or LBKIT_NO_EXTENSIONS=1)")


@pytest.fixture(scope="session")
def fast_kernels(request: pytest.FixtureRequest) -> dict[str, ModuleType]:
    """The compiled kernels by name, for differential tests: skipped in a pure-only run, an
    error (not a skip) when they should be there and are not."""
    if fast_disabled(request.config):
        pytest.skip("pure-only run (--no-fast or LBKIT_NO_EXTENSIONS=1)")
    return _kernels.load("fast")


@pytest.fixture(scope="session")
def pure_kernels() -> dict[str, ModuleType]:
    """The reference kernels by name."""
    return _kernels.load("pure")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis-server of its own on a free loopback port, for the session, as a URL. Skipped,
    saying why, only when none can be started here: no redis-server (``.ci/run`` installs
    Debian's) or no redis-py (the ``redis`` extra); with ``LBKIT_REQUIRE_REDIS=1`` (set by
    ``.ci/run``) that is a failure instead."""
    required = os.environ.get("LBKIT_REQUIRE_REDIS", "") not in ("", "0")
    give_up = pytest.fail if required else pytest.skip
    try:
        import redis
    except ImportError:
        give_up("redis-py is not installed (pip install '.[redis]'); Redis tests skipped")
    binary = os.environ.get("LBKIT_REDIS_SERVER") or shutil.which("redis-server")
    if binary is None:
        give_up("no redis-server on PATH (apt-get install redis-server); Redis tests skipped")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10.0
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    give_up(f"{binary} did not start on port {port}; Redis tests skipped")
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
