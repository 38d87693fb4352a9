"""HTML of a post made fit to leave the site: absolute links, excerpts, sizes.

Pure. Shared by the feeds and the digest, which both put a post's HTML
where relative links no longer resolve.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from .sanitize import html_to_text
from .values import Enclosure

#: attributes that hold a URL, per element
_URL_ATTRIBUTES = {"a": ("href",), "img": ("src",), "q": ("cite",), "blockquote": ("cite",)}


def _has_relative_url(fragment: str) -> bool:
    """Cheap test for a relative href/src/cite (stored HTML is nh3's: double quotes)."""
    for marker in ('href="', 'src="', 'cite="'):
        start = fragment.find(marker)
        while start != -1:
            value = start + len(marker)
            if not fragment.startswith(("https:", "http:", "mailto:", "//"), value):
                return True
            start = fragment.find(marker, value)
    return False


def absolutize_html(fragment: str, base: str) -> str:
    """Make every link and image source in ``fragment`` absolute against ``base``.

    Already absolute URLs (and ``mailto:``) are left as they are.
    """
    if not _has_relative_url(fragment):  # the common case: nothing to do, no parsing
        return fragment
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    changed = False
    for element in root.iter(*_URL_ATTRIBUTES):
        for attribute in _URL_ATTRIBUTES[str(element.tag)]:
            value = element.get(attribute)
            if value is not None and not _is_absolute(value):
                element.set(attribute, urljoin(base, value.strip()))
                changed = True
    if not changed:
        return fragment
    inner = (root.text or "") + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )
    return inner


def _is_absolute(url: str) -> bool:
    return url.startswith(("http://", "https://", "mailto:", "//"))


def excerpt(fragment: str, limit: int = 300) -> str:
    """Plain-text start of an HTML fragment, cut at a word, with an ellipsis."""
    text = html_to_text(fragment)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.–- ")
    return cut + "…"


def attachments_html(enclosures: Sequence[Enclosure]) -> str:
    """A list of download links: ``Download Strategy (PDF, 1.2 MB)``."""
    if not enclosures:
        return ""
    items = []
    for enclosure in enclosures:
        label = enclosure.title or enclosure.url.rsplit("/", 1)[-1]
        facts = [enclosure.media_type.split("/")[-1].upper()]
        if enclosure.length:
            facts.append(human_size(enclosure.length))
        if facts[0] not in label:
            label = f"{label} ({', '.join(facts)})"
        elif len(facts) > 1:
            label = f"{label}, {facts[1]}"
        items.append(f'<li><a href="{html.escape(enclosure.url)}">{html.escape(label)}</a></li>')
    return '<ul class="attachments">' + "".join(items) + "</ul>\n"


def human_size(length: int) -> str:
    """``1.2 MB``: decimal units, as file managers show them."""
    size = float(length)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("bytes", "KB") else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def truncate_html(fragment: str, limit: int) -> str:
    """The start of an HTML fragment with at most ``limit`` characters of text.

    Cuts at a word, adds an ellipsis, and drops everything after the cut, so
    no tag is left open (lxml writes the tree back well-formed). Images and
    other empty elements cost nothing.
    """
    if len(html_to_text(fragment)) <= limit:
        return fragment
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    budget = [limit]

    def cut(text: str) -> str:
        kept = text[: budget[0]].rsplit(" ", 1)[0] if " " in text[: budget[0]] else ""
        return kept.rstrip(",;:.–- ") + "…"

    def walk(element: Any) -> bool:
        """Spend the budget on ``element``; True once it is spent (and the rest dropped)."""
        if element.text:
            if len(element.text) > budget[0]:
                element.text = cut(element.text)
                for child in list(element):
                    element.remove(child)
                return True
            budget[0] -= len(element.text)
        children = list(element)
        for index, child in enumerate(children):
            spent = walk(child)
            if not spent and child.tail:
                if len(child.tail) > budget[0]:
                    child.tail = cut(child.tail)
                    spent = True
                else:
                    budget[0] -= len(child.tail)
            elif spent:
                child.tail = None
            if spent:
                for later in children[index + 1 :]:
                    element.remove(later)
                return True
        return False

    walk(root)
    # a heading with nothing after it ("India…") says nothing: drop it
    while len(root) and str(root[-1].tag) in ("h1", "h2", "h3", "h4", "h5", "h6"):
        root.remove(root[-1])
    return (root.text or "") + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )
