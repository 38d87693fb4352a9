"""The staff preview in a real browser (Debian's chromium, headless, through chromedriver).

Screenshots land in the test's tmp folder (and in $PUBLISHER_SCREENSHOTS, if set).
The ``browser`` fixture is in ``conftest.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher.audience.recipients import Recipient
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.web.app import create_app
from publisher.web.preview import PreviewSource
from publisher.web.server import ServerThread


@pytest.fixture
def preview_url(
    sessions: sessionmaker[Session],
    settings: Settings,
    sample_dir: Path,
    tmp_path: Path,
    engine: Any,
) -> Iterator[str]:
    if engine.dialect.name != "sqlite":
        pytest.skip("the preview reads its database from config.yaml: SQLite is enough here")
    import_target(sessions, str(sample_dir), settings, datetime(2026, 1, 1, tzinfo=UTC))
    config = tmp_path / "config.yaml"
    from tests.conftest import CONFIG_TEXT

    config.write_text(CONFIG_TEXT + f"database:\n  url: {engine.url}\n")
    source = PreviewSource(
        config,
        None,
        datetime(2019, 1, 1, tzinfo=UTC),
        None,
        Recipient("reader@example.org", "Alex Reader"),
    )
    with ServerThread(create_app(settings, feeds=False, preview=source), settings.web) as server:
        yield server.url


def screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if os.environ.get("PUBLISHER_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["PUBLISHER_SCREENSHOTS"]) / name)
    assert path.stat().st_size > 10_000, "a blank page makes a tiny PNG"
    return path


def show_at(driver: Any, url: str, width: int) -> None:
    # device metrics, not the window: a headless window cannot be narrower than ~500 px
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.get(url)


@pytest.mark.parametrize("width", [375, 600])
def test_the_email_fits_phone_and_desktop(
    browser: Any, preview_url: str, tmp_path: Path, width: int
) -> None:
    show_at(browser, f"{preview_url}/email.html", width)
    screenshot(browser, tmp_path, f"digest-{width}.png")
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    inner_width = browser.execute_script("return window.innerWidth")
    assert inner_width == width
    assert scroll_width <= width, f"horizontal scrolling at {width} px: {scroll_width} px wide"
    assert "Leave No One Behind news round-up" in browser.page_source


# Gmail's mobile web client (and others) drops the <style> block with its media
# queries: the email, whose styles are inlined, still fits a phone without them.
def test_the_email_fits_a_phone_without_its_media_queries(
    browser: Any, preview_url: str, tmp_path: Path
) -> None:
    show_at(browser, f"{preview_url}/email.html", 375)
    browser.execute_script("document.querySelectorAll('style').forEach(s => s.remove())")
    screenshot(browser, tmp_path, "digest-375-no-style.png")
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll_width <= 375, f"horizontal scrolling at 375 px: {scroll_width} px wide"


# The preview page itself, on a phone: the frames keep the widths they show and
# scroll inside the page, which does not scroll sideways.
def test_the_preview_page_fits_a_phone(browser: Any, preview_url: str, tmp_path: Path) -> None:
    show_at(browser, preview_url + "/", 375)
    screenshot(browser, tmp_path, "preview-375.png")
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll_width <= 375, f"horizontal scrolling at 375 px: {scroll_width} px wide"
    frames = browser.execute_script(
        "return [...document.querySelectorAll('iframe')].map(f => f.clientWidth)"
    )
    assert frames == [640, 375]


def test_the_preview_page_shows_both_widths_text_headers_and_size(
    browser: Any, preview_url: str, tmp_path: Path
) -> None:
    show_at(browser, preview_url + "/", 1280)
    screenshot(browser, tmp_path, "preview.png")
    page = browser.page_source
    assert 'id="desktop"' in page and 'id="phone"' in page
    assert "List-Unsubscribe-Post" in page and "of Gmail's 102 KB" in page
    assert "Read more: https://news.example.org/news/" in page
    frames = browser.execute_script(
        "return [...document.querySelectorAll('iframe')].map(f => f.clientWidth)"
    )
    assert frames == [640, 375]
