"""What every integration test shares: the ``integration`` marker and a headless Chromium.

Every test in this folder needs a server (PostgreSQL, an SMTP server, a
browser, or a real HTTP server), so each gets the ``integration`` marker here
rather than file by file: ``pytest -m "not integration"`` runs the pure suite
alone, on a machine with none of them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # (a session-wide hook: it sees every test, so it also catches a store test
    # written elsewhere, by the PostgreSQL-backed ``engine`` fixture it asks for)
    for item in items:
        if HERE in item.path.parents or "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven through chromedriver."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install chromium "
            "chromium-driver; .ci/run does)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()
