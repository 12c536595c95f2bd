"""Test-only fixtures (the shared ``impl`` fixture is in the repository-root conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Callable[[str], Any]:
    """Load a golden-vector file from tests/vectors by name."""

    def load(name: str) -> Any:
        return json.loads((VECTORS / name).read_text(encoding="utf-8"))

    return load


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run Python code in a fresh interpreter with some environment variables set or unset
    (value None), so import-time behaviour is tested from scratch."""

    def run(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in ("LBKIT_NO_EXTENSIONS", "LBKIT_REQUIRE_EXTENSIONS")
        }
        for key, value in env.items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        return subprocess.run(
            [sys.executable, "-c", code],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can, so races show up."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


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
