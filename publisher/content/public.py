"""A stored post as the public sees it: the one mapping from the store to public values.

Pure. The feeds and the digest both start here, so a post's links, image and
downloads are made absolute the same way (and text loses the characters XML
forbids) wherever it goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..urls import Urls
from .html import absolute_url, absolutize_html
from .markup import xml_safe
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
    return PublicPost(
        uid=xml_safe(row.uid),
        slug=row.slug,
        title=xml_safe(row.title),
        link=absolute_url(row.canonical_url, base) if row.canonical_url else urls.post(row.slug),
        published=published,
        updated=max(row.updated_at or published, published),
        summary=xml_safe(row.summary) if row.summary else None,
        body_html=absolutize_html(xml_safe(row.body_html), base),
        image=absolute_url(row.image_url, base) if row.image_url else None,
        image_alt=row.image_alt,
        enclosures=tuple(
            Enclosure(
                url=absolute_url(a.url, base),
                media_type=a.media_type,
                length=a.length,
                title=xml_safe(a.title) if a.title else None,
            )
            for a in attachments
        ),
    )
