"""An existing RSS or Atom feed → :class:`PostDraft` values (migration).

Pure: the feed's bytes in, drafts out. feedparser does the parsing (it copes
with every RSS dialect and broken real-world feeds); we keep each entry's own
id as the permanent id, so readers that already saw an entry under the old
publisher do not see it again as new.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

from ..errors import ContentError
from .drafts import AttachmentDraft, AuthorDraft, PostDraft
from .markup import RENDER_VERSION, html_to_text, sanitize_html, slugify, xml_safe
from .values import PostStatus, SourceFormat


def looks_like_feed(raw: bytes) -> bool:
    """True for XML that is an RSS or Atom document (sniffed, not trusted)."""
    head = raw[:2048].lstrip().lower()
    return head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<rdf"))


def parse_feed(raw: bytes, source: str) -> list[PostDraft]:
    """Read every entry of a feed document.

    :raises ContentError: when it is not a feed, or an entry lacks a title or date.
    """
    try:
        parsed = feedparser.parse(raw, sanitize_html=False, resolve_relative_uris=True)
    except ValueError as e:  # e.g. feedparser's own UnicodeEncodeError on &#xD800;
        raise ContentError(source, f"is not a readable RSS or Atom feed: {e}") from e
    # character references like &#xD800; survive XML parsing; nothing downstream can hold them
    parsed = _clean(parsed)
    if not parsed.entries and (parsed.bozo or not parsed.version):
        reason = parsed.get("bozo_exception") or "no RSS or Atom entries found"
        raise ContentError(source, f"is not a readable RSS or Atom feed: {reason}")
    return [_entry(entry, index, source) for index, entry in enumerate(parsed.entries, start=1)]


def _clean(value: Any) -> Any:
    """Every string in feedparser's result, without characters XML 1.0 forbids."""
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, dict):
        for key in list(value):
            value[key] = _clean(value[key])
        return value
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _when(struct: time.struct_time | None) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time
    return None if struct is None else datetime.fromtimestamp(calendar.timegm(struct), UTC)


def _entry(entry: Any, index: int, source: str) -> PostDraft:
    title = " ".join(html_to_text(entry.get("title", "")).split())
    label = f"{source}#entry-{index}"
    if not title:
        raise ContentError(label, "the entry has no title", "title")
    # dict.get: feedparser's own .get("updated_parsed") silently falls back to published
    updated = _when(dict.get(entry, "updated_parsed"))
    published = _when(dict.get(entry, "published_parsed")) or updated
    if published is None:
        raise ContentError(label, f"the entry {title!r} has no published or updated date", "date")
    link = entry.get("link")

    content = entry.get("content") or []
    summary_html = entry.get("summary", "")
    if content:
        body = content[0].get("value", "")
        if content[0].get("type") == "text/plain":
            body = f"<p>{html.escape(body)}</p>"
        summary = html_to_text(summary_html) or None
    else:
        body, summary = summary_html, None

    author = None
    if entry.get("author_detail", {}).get("name") or entry.get("author"):
        detail = entry.get("author_detail", {})
        author = AuthorDraft(name=detail.get("name") or entry["author"], email=detail.get("email"))

    attachments = tuple(
        AttachmentDraft(
            url=e["href"],
            media_type=e.get("type") or "application/octet-stream",
            length=int(e["length"]) if str(e.get("length", "")).isdigit() else None,
        )
        for e in entry.get("enclosures", [])
        if e.get("href")
    )
    tags = tuple(dict.fromkeys(t.get("label") or t["term"] for t in entry.get("tags", [])))
    thumbnails = entry.get("media_thumbnail") or []
    fields = {
        "uid": entry.get("id") or link,
        "title": title,
        "body": body,
        "summary": summary,
        "published": published.isoformat(),
        "updated": updated.isoformat() if updated else None,
        "link": link,
        "tags": tags,
        "attachments": [a.__dict__ for a in attachments],
        "author": author.__dict__ if author else None,
    }
    digest = hashlib.sha256(
        (RENDER_VERSION + json.dumps(fields, sort_keys=True)).encode()
    ).hexdigest()
    return PostDraft(
        source=label,
        uid=fields["uid"],
        slug=_slug(link, title),
        title=title,
        summary=summary,
        source_format=SourceFormat.HTML,
        body_source=body,
        body_html=sanitize_html(body),
        source_hash=digest,
        status=PostStatus.PUBLISHED,
        published_at=published,
        updated_at=updated if updated and updated > published else None,
        author=author,
        tags=tuple(t for t in tags if slugify(t)),
        attachments=attachments,
        image_url=thumbnails[0].get("url") if thumbnails else None,
        canonical_url=link,
    )


def _slug(link: str | None, title: str) -> str:
    """The last path segment of the entry's link, else the title."""
    if link:
        segment = urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]
        segment = segment.rsplit(".", 1)[0] if segment.endswith((".html", ".htm")) else segment
        if slugify(segment):
            return slugify(segment)
    return slugify(title) or "post"
