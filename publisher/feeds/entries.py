"""A stored post as a feed entry: the one mapping from the store to the feed model.

Pure: rows in, :class:`~publisher.feeds.model.Entry` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..content.html import attachments_html, excerpt
from ..content.public import public_post
from ..urls import Urls
from .model import Category, Entry, Person


def build_entry(
    row: Any,
    attachments: Sequence[Any],
    author: Person | None,
    categories: tuple[Category, ...],
    urls: Urls,
    full_content: bool,
) -> Entry:
    """A stored post (a row of :func:`queries.feed_rows`) as a feed entry.

    Its public values come from :func:`~publisher.content.public.public_post`
    (absolute links, XML-safe text, ``updated`` never before ``published``).
    """
    post = public_post(row, attachments, urls)
    # RSS carries one enclosure and many readers show none: list them in the body too
    body = post.body_html + attachments_html(post.enclosures)
    summary = post.summary
    if not full_content:
        summary = summary or excerpt(body) or None
    return Entry(
        id=post.uid,
        title=post.title,
        link=post.link,
        published=post.published,
        updated=post.updated,
        author=author,
        categories=categories,
        summary=summary,
        content_html=body if full_content else None,
        enclosures=post.enclosures,
        image=post.image,
    )
