"""The subscribe page in a real browser (headless Chromium) at a phone's 375 px:
no sideways scrolling, every field labelled, Tab goes through the form in reading order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_messages import smtp_server  # noqa: F401
from tests.integration.test_preview_browser import screenshot, show_at
from tests.integration.test_subscriptions import Site, make_site  # noqa: F401

pytestmark = pytest.mark.integration


def test_the_subscribe_form_fits_a_phone_and_works_by_keyboard(
    browser: Any,  # noqa: F811
    make_site: Callable[..., Site],  # noqa: F811
    tmp_path: Path,
    engine: Any,
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the page is the same on every database: SQLite is enough here")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    site = make_site()
    show_at(browser, f"{site.url}/subscribe", 375)
    screenshot(browser, tmp_path, "subscribe-375.png")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 375, f"sideways scrolling at 375 px: the page is {width} px wide"
    unlabelled = browser.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden])')]"
        ".filter(i => i.labels.length === 0 || !i.labels[0].textContent.trim())"
        ".map(i => i.name)"
    )
    assert unlabelled == []
    expected = browser.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden]), button')]"
        ".filter(e => e.tabIndex >= 0).map(e => e.id || e.tagName)"
    )
    assert expected[:2] == ["address", "name"] and expected[-1] == "BUTTON"
    assert "website" not in expected, "the honeypot is out of the Tab order"
    browser.find_element(By.ID, "address").click()
    order = []
    for _ in expected:
        order.append(
            browser.execute_script(
                "return document.activeElement.id || document.activeElement.tagName"
            )
        )
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert order == expected
    # and it works without JavaScript: a plain form post, answered with a page
    form = browser.find_element(By.TAG_NAME, "form")
    assert form.get_attribute("method") == "post" and not browser.find_elements(
        By.TAG_NAME, "script"
    )
