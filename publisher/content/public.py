"""A stored post as the public sees it: the one mapping from the store to public values.

Pure. The feeds and the digest both start here, so a post's links, image and
downloads are made absolute the same way (and text loses the characters XML
forbids) wherever it goes out.

It is also the check of what leaves: the importer refuses unsafe links, but
a row written by another tool was never imported, so here every link is
checked again (:func:`~publisher.links.safe_url`) and the body is sanitised
(the store keeps a Markdown post's body as rendered: this is where it is
sanitised). A bad link is dropped (a bad canonical URL falls back to the
post's own page), never passed on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..links import WEB_SCHEMES, safe_url
from ..urls import Urls
from .html import absolutize_html
from .sanitize import sanitize_html
from .text import xml_safe
from .values import Enclosure


@dataclass(frozen=True)
class PublicPost:
    """A published post with absolute URLs and XML-safe text."""

    uid: str
    slug: str
    title: str
    #: the post's page (its canonical URL when it has one)
    link: str
    published: datetime
    #: never before ``published``
    updated: datetime
    summary: str | None
    #: sanitised HTML with absolute links
    body_html: str
    image: str | None
    image_alt: str | None
    enclosures: tuple[Enclosure, ...]


def public_post(row: Any, attachments: Sequence[Any], urls: Urls) -> PublicPost:
    """``row`` is a stored post (an ORM ``Post`` or a row with its columns),
    ``attachments`` its attachments in order; it must be published."""
    base = urls.base
    published = row.published_at
    assert published is not None, "only published posts have public values"
    own_page = urls.post(row.slug)
    link = _web_url(row.canonical_url, base) or own_page
    image = _web_url(row.image_url, base)
    enclosures = []
    for attachment in attachments:
        url = _web_url(attachment.url, base)
        if url is not None:
            title = xml_safe(attachment.title) if attachment.title else None
            enclosures.append(Enclosure(url, attachment.media_type, attachment.length, title))
    return PublicPost(
        uid=xml_safe(row.uid),
        slug=row.slug,
        title=xml_safe(row.title),
        link=link,
        published=published,
        updated=max(row.updated_at or published, published),
        summary=xml_safe(row.summary) if row.summary else None,
        body_html=absolutize_html(sanitize_html(xml_safe(row.body_html)), base),
        image=image,
        image_alt=xml_safe(row.image_alt) if row.image_alt else None,
        enclosures=tuple(enclosures),
    )


def _web_url(url: str | None, base: str) -> str | None:
    """An absolute http(s) URL, or None when ``url`` is missing or not safe."""
    checked = safe_url(url, base)
    if checked is None or not checked.startswith(tuple(f"{s}:" for s in WEB_SCHEMES)):
        return None
    return checked
