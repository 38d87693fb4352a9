"""The sample digest as mail clients show it: Outlook's image sizes, dark mode,
images off, text-only readers. Each test names the client behaviour it guards.

The digest is the shipped sample, loaded into a real database; the dark-mode
check runs in headless Chromium (the ``browser`` fixture in ``conftest.py``).
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher.audience.recipients import Recipient
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.content.sanitize import html_to_text
from publisher.mail.compose import Editions, build_digest

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SINCE = datetime(2019, 1, 1, tzinfo=UTC)
LOGO = "https://news.example.org/logo.png"


@pytest.fixture
def sample(sessions: sessionmaker[Session], settings: Settings, sample_dir: Path) -> EmailMessage:
    """The sample digest, with a logo, as Zoë gets it, parsed back strictly."""
    settings = settings.model_copy(update={"site": settings.site.model_copy(update={"logo": LOGO})})
    import_target(sessions, str(sample_dir), settings, NOW)
    config = settings.digests[0]
    with sessions() as session:
        built = build_digest(session, config, settings, NOW, since=SINCE)
    template = Editions(built, config, settings, NOW, "secret").template(())
    assert template is not None
    raw = template.render(Recipient("zoe@example.org", "Zoë Reader", 42))
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    return message


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


# Outlook for Windows sizes images by their HTML attributes: each <img> keeps
# numeric width and height (premailer used to write height="auto").
def test_every_image_keeps_its_numeric_size(sample: EmailMessage) -> None:
    images = lxml.html.fromstring(html_of(sample)).iter("img")
    sizes = {img.get("src"): (img.get("width"), img.get("height")) for img in images}
    assert sizes[LOGO] == ("200", "50")
    assert sizes["https://i.ytimg.com/vi/ICSCinnov19/hqdefault.jpg"] == ("480", "360")
    for src, (width, height) in sizes.items():
        assert width and width.isdigit() and height and height.isdigit(), src


# Outlook, Yahoo and AOL do not support <figure>/<figcaption>: the video thumbnail
# is table markup; with images off, its label shows once, not twice.
def test_the_video_is_table_markup_labelled_once_with_images_off(sample: EmailMessage) -> None:
    html = html_of(sample)
    assert "<figure" not in html and "<figcaption" not in html
    page = lxml.html.fromstring(html)
    (thumbnail,) = page.xpath('//img[contains(@src, "ytimg.com")]')
    assert thumbnail.xpath("ancestor::table[contains(@class, 'video')]")
    for img in list(page.iter("img")):  # images off: a client shows the alt text instead
        img.tail = (img.get("alt") or "") + (img.tail or "")
        img.drop_tree()
    images_off = html_to_text(lxml.html.tostring(page, encoding="unicode"))
    assert images_off.count("Watch the video") == 1


# The preheader (the grey line after the subject in an inbox) ends at a word.
def test_the_preheader_is_cut_at_a_word_with_an_ellipsis(sample: EmailMessage) -> None:
    page = lxml.html.fromstring(html_of(sample))
    hidden = page.xpath('//body/div[contains(@style, "display:none")]')[0]
    preheader = hidden.text_content().split("\u034f")[0].strip()
    assert preheader.endswith("…") and len(preheader) <= 150
    full = (
        "10 new: Leave No One Behind news round-up, Innovation Report, get involved!, "
        "A new playbook for international civil society to put into action solidarity"
    )
    kept = preheader.removesuffix("…")
    assert full.startswith(kept)
    assert full[len(kept)] in " ,;:.", f"cut inside a word: {preheader!r}"


# Text-only readers: every line at most 78 characters (RFC 5322 §2.1.1), the
# greeting and footer wrapped like the rest; only a URL too long for a line
# stands alone on its own, whole, so it still works. The signature separator
# is "-- " with its space (RFC 3676 §4.3), which readers use to dim the footer.
def test_the_text_part_is_wrapped_and_signed_off(sample: EmailMessage) -> None:
    text = text_of(sample)
    for line in text.splitlines():
        assert len(line) <= 78 or re.fullmatch(r"https://\S+", line), line
    assert text.startswith("Hello Zoë Reader, here is what Test Centre published between")
    assert text.splitlines()[0] != text.split("\n\n")[0], "the greeting is wrapped"
    assert text.splitlines().count("-- ") == 1 and "\n--\n" not in text
    footer = text.split("\n-- \n")[1]
    assert "You receive this email because zoe@example.org subscribed" in " ".join(footer.split())
    assert "Unsubscribe:\nhttps://news.example.org/unsubscribe/" in footer


def relative_luminance(rgb: tuple[float, ...]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour (0-255 channels)."""

    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two computed CSS colours (``rgb(…)``/``rgba(…)``)."""
    fg, bg = (tuple(float(x) for x in re.findall(r"[\d.]+", c)) for c in (foreground, background))
    light, dark = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


BUTTON_COLOURS = """
const link = [...document.querySelectorAll('a')].find(a => a.textContent.trim() === 'Read more');
let box = link;
while (box && ['rgba(0, 0, 0, 0)', 'transparent'].includes(getComputedStyle(box).backgroundColor))
  box = box.parentElement;
return [getComputedStyle(link).color, getComputedStyle(box).backgroundColor];
"""


# WCAG AA asks 4.5:1 for text. In dark mode a rule for links used to turn the
# button's text light blue on its blue (3.4:1); computed here by Chromium itself.
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_read_more_button_is_readable(
    sample: EmailMessage, browser: Any, tmp_path: Path, scheme: str
) -> None:
    page = tmp_path / "digest.html"
    page.write_text(html_of(sample), encoding="utf-8")
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    browser.get(page.as_uri())
    assert browser.execute_script(f"return matchMedia('(prefers-color-scheme: {scheme})').matches")
    colour, background = browser.execute_script(BUTTON_COLOURS)
    assert contrast(colour, background) >= 4.5, (scheme, colour, background)
