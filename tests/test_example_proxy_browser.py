"""examples/proxy in a real browser: headless Debian Chromium, driven by Selenium through the
system chromedriver, waits in the waiting room, sees its place, refreshes on its own, and ends
up on the origin.

Skipped, saying why, when Selenium, ``chromium`` or ``chromedriver`` is missing here (``apt-get
install chromium chromium-driver``); with ``LBKIT_REQUIRE_BROWSER=1`` (set by ``.ci/run``) that
is a failure instead. The room runs on a clock the test moves; the browser refreshes on real
time, every 2 seconds, so the test takes a few seconds, and every wait is bounded.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from example_proxy_support import COOKIE, NOON, ManualClock, example, load_example
from lbkit.waitingroom import WaitingRoom, WaitingRoomConfig

#: Flags that work for a headless Chromium run as root in a container, with no network and
#: nothing of a previous profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Seconds any one wait on the browser may take before the test fails, saying what it waited for.
PATIENCE = 30.0
#: Reads an element's text in one step (a refresh between finding and reading is harmless).
TEXT_OF = "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';"


toy_backend = load_example("lbkit_example_backend", "backend.py")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium under Selenium, on the system's chromedriver (Selenium Manager is
    never asked to download one), with a fresh profile."""
    required = os.environ.get("LBKIT_REQUIRE_BROWSER", "") not in ("", "0")
    give_up = pytest.fail if required else pytest.skip
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        give_up("selenium is not installed (pip install '.[test]'); browser test skipped")
    chromium = os.environ.get("LBKIT_CHROMIUM") or shutil.which("chromium")
    driver_path = os.environ.get("LBKIT_CHROMEDRIVER") or shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        give_up(
            "chromium or chromedriver is not on PATH (apt-get install chromium "
            "chromium-driver); browser test skipped"
        )
    options = Options()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(PATIENCE)
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def origin() -> Iterator[int]:
    """The toy backend in a thread of this process, on a free port."""
    server = toy_backend.make_server("origin-1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_browser_waits_refreshes_and_reaches_the_origin(browser: Any, origin: int) -> None:
    """The minute's one slot is taken; Chromium loads the waiting-room page, shows its queue
    position, refreshes on its own (a check-in that counts once the room's clock has moved),
    and when the next minute opens, the next automatic refresh lands on the origin."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    clock = ManualClock(NOON + 1.0)
    config = WaitingRoomConfig(
        total_active_users=10,
        new_users_per_minute=1,
        refresh_interval=2.0,
        refresh_jitter=0.0,
        room_id="browser",
    )
    room = WaitingRoom(
        config, keys={1: bytes(range(32))}, primary=1, clock=clock, rng=random.Random(3)
    )
    proxy = example.Proxy(
        [example.Backend("origin-1", "127.0.0.1", origin)],
        room,
        settings=example.ProxySettings(health_interval=0.5, health_timeout=5.0, seed=5),
    )
    with example.BackgroundProxy(proxy) as (host, port):
        first = http.client.HTTPConnection(host, port, timeout=PATIENCE)
        first.request("GET", "/")
        taken = first.getresponse()
        assert taken.status == 200
        assert taken.getheader("X-Backend") == "origin-1"  # the minute's one slot is gone
        first.close()

        def text_of(element_id: str) -> str:
            """The element's text, "" when there is none; read in one script call, and again
            when the page was being replaced by its own refresh at that moment."""
            for _ in range(50):
                try:
                    return str(browser.execute_script(TEXT_OF, element_id))
                except WebDriverException:
                    time.sleep(0.05)
            pytest.fail(f"could not read #{element_id} from the page")

        def wait_for(what: str, condition: Any) -> None:
            WebDriverWait(browser, PATIENCE, poll_frequency=0.05).until(
                lambda _: condition(), message=f"waiting for {what}"
            )

        browser.get(f"http://{host}:{port}/tickets")
        assert text_of("waiting-room").startswith("You are in the waiting room")
        assert text_of("position") == "You are number 1 in the queue."
        assert text_of("estimate") == "Estimated wait: not known yet."
        assert "refreshes itself in 2 s" in text_of("refresh")
        cookie = browser.get_cookie(COOKIE)
        assert cookie is not None
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        assert room.sealer.open(cookie["value"], now=clock()).accepted_at is None
        first_update = text_of("updated")

        # Still the full minute, but past the refresh interval: the page's own refresh is a
        # check-in that counts, and the page shows the new time.
        clock.now = NOON + 4.0
        wait_for(
            "the page to refresh itself while queued",
            lambda: text_of("updated") not in ("", first_update),
        )
        assert text_of("position") == "You are number 1 in the queue."

        # The next minute: the slot reserved for this user's bucket is theirs at the next
        # automatic refresh.
        clock.now = NOON + 61.0
        wait_for("the refresh to land on the origin", lambda: bool(text_of("origin")))
        assert text_of("origin") == "Welcome to the origin, served by origin-1"
        admitted = browser.get_cookie(COOKIE)
        assert admitted is not None
        assert room.sealer.open(admitted["value"], now=clock()).accepted_at == NOON + 61.0
