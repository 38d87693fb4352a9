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
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser

from ..errors import ContentError
from ..links import WEB_SCHEMES, UnsafeUrl, check_url, revealed_scheme
from .drafts import AttachmentDraft, AuthorDraft, PostDraft
from .limits import MAX_FEED_BYTES, MAX_POST_BYTES
from .markup import RENDER_VERSION
from .sanitize import (
    describe_unsafe_link,
    dropped_elements,
    html_to_text,
    sanitize_html,
    unsafe_links,
)
from .slugs import dated_slugs, slugify
from .text import xml_safe
from .values import PostStatus, SourceFormat

#: entries dated outside these years are refused (feedparser reads year 1 and 9999 too)
YEARS = (1900, 2200)
#: stands in for the old site when checking a relative link
_SOME_SITE = "https://site.invalid/"
#: a page's file name that names no post (``…/my-post/index.html``): its folder does
_GENERIC_PAGES = frozenset({"index", "default", "home", "main"})


def looks_like_feed(raw: bytes) -> bool:
    """True for XML that is an RSS or Atom document (sniffed, not trusted)."""
    head = raw[:2048].lstrip().lower()
    return head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<rdf"))


def parse_feed(raw: bytes, source: str) -> list[PostDraft]:
    """Read every entry of a feed document.

    :raises ContentError: when it is not a feed, or an entry lacks a title or
        date, or has a link that is not http(s) (the first such entry).
    """
    drafts, problems = read_feed(raw, source)
    if problems:
        raise problems[0]
    return drafts


def read_feed(raw: bytes, source: str) -> tuple[list[PostDraft], list[ContentError]]:
    """Every entry of a feed document that can be a post, and what is wrong with each
    of the others (every one of them, for one import to name them all).

    :raises ContentError: when it is not a feed at all.
    """
    if len(raw) > MAX_FEED_BYTES:
        raise ContentError(source, f"is larger than {MAX_FEED_BYTES // 1_000_000} MB")
    try:
        parsed = feedparser.parse(raw, sanitize_html=False, resolve_relative_uris=True)
    except ValueError as e:  # e.g. feedparser's own UnicodeEncodeError on &#xD800;
        raise ContentError(source, f"is not a readable RSS or Atom feed: {e}") from e
    # character references like &#xD800; survive XML parsing; nothing downstream can hold them
    parsed = _clean(parsed)
    if not parsed.entries and (parsed.bozo or not parsed.version):
        reason = parsed.get("bozo_exception") or "no RSS or Atom entries found"
        raise ContentError(source, f"is not a readable RSS or Atom feed: {reason}")
    drafts: list[PostDraft] = []
    problems: list[ContentError] = []
    for index, entry in enumerate(parsed.entries, start=1):
        try:
            drafts.append(_entry(entry, index, source))
        except ContentError as e:
            problems.append(e)
    return _distinct_slugs(drafts), problems


def _distinct_slugs(drafts: list[PostDraft]) -> list[PostDraft]:
    """The drafts, no two with one slug: a feed's entries cannot be renamed by hand,
    so of the entries whose links or titles make the same slug ("Weekly update"),
    the oldest keeps it and each later one takes the first of its
    :func:`~.slugs.dated_slugs` that is free. The same feed always gives the same
    slugs (and an import keeps a stored entry's own: :class:`~.matching.StoredPosts`)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, draft in enumerate(drafts):
        groups[draft.slug].append(index)
    taken = set(groups)
    for slug, members in groups.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: (drafts[i].published_at or _EPOCH, drafts[i].uid or ""))
        for index in members[1:]:
            draft = drafts[index]
            day = (draft.published_at or _EPOCH).date()
            variants = dated_slugs(slug, day, draft.uid or draft.title)
            candidate = next((v for v in variants if v not in taken), variants[-1])
            taken.add(candidate)
            drafts[index] = replace(draft, slug=candidate)
    return drafts


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def _when(struct: time.struct_time | None, label: str, field: str) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time
    if struct is None:
        return None
    if not YEARS[0] <= struct.tm_year <= YEARS[1]:
        raise ContentError(label, f"year {struct.tm_year} is outside {YEARS[0]}–{YEARS[1]}", field)
    return datetime.fromtimestamp(calendar.timegm(struct), UTC)


def _link(value: str | None, label: str, field: str, title: str) -> str | None:
    """A link of the entry, checked: http(s) or relative, nothing else."""
    if not value:
        return None
    try:
        checked = check_url(value, base=_SOME_SITE, schemes=WEB_SCHEMES)
    except UnsafeUrl as e:
        raise ContentError(label, f"the entry {title!r}: {value[:80]!r} {e.why}", field) from None
    return checked if revealed_scheme(value) else value.strip()


def _alternate(entry: Any) -> str | None:
    """The entry's page: its alternate link, or an RSS guid that is a permalink.

    Not ``entry.link`` alone: feedparser fills that from the id too
    (``urn:uuid:…``), which is no page.
    """
    for link in entry.get("links", []):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    guid = entry.get("link") if entry.get("guidislink") else None
    # an id that is not a web address (urn:…, tag:…) is only an id
    return guid if guid and revealed_scheme(guid) in WEB_SCHEMES else None


def _entry(entry: Any, index: int, source: str) -> PostDraft:
    title = " ".join(html_to_text(entry.get("title", "")).split())
    label = f"{source}#entry-{index}"
    if not title:
        raise ContentError(label, "the entry has no title", "title")
    # dict.get: feedparser's own .get("updated_parsed") silently falls back to published
    updated = _when(dict.get(entry, "updated_parsed"), label, "updated")
    published = _when(dict.get(entry, "published_parsed"), label, "published") or updated
    if published is None:
        raise ContentError(label, f"the entry {title!r} has no published or updated date", "date")
    link = _link(_alternate(entry), label, "link", title)

    content = entry.get("content") or []
    summary_html = entry.get("summary", "")
    if content:
        body = content[0].get("value", "")
        if content[0].get("type") == "text/plain":
            body = f"<p>{html.escape(body)}</p>"
        summary = html_to_text(summary_html) or None
    else:
        body, summary = summary_html, None
    if len(body.encode("utf-8")) > MAX_POST_BYTES:
        raise ContentError(label, f"is larger than {MAX_POST_BYTES // 1000} kB", "content")
    bad = unsafe_links(body)
    if bad:
        raise ContentError(label, f"the entry {title!r}: {describe_unsafe_link(bad[0])}", "content")

    author: AuthorDraft | None = None
    if entry.get("author_detail", {}).get("name") or entry.get("author"):
        detail = entry.get("author_detail", {})
        name = " ".join((detail.get("name") or entry["author"]).split())
        author = AuthorDraft(name=name, email=detail.get("email")) if name else None

    attachments = tuple(
        AttachmentDraft(
            url=_link(e["href"], label, "enclosure", title) or "",
            media_type=e.get("type") or "application/octet-stream",
            length=int(e["length"]) if str(e.get("length", "")).isdigit() else None,
        )
        for e in entry.get("enclosures", [])
        if e.get("href")
    )
    # tags ignore case ("SDGs" and "sdgs" are one tag): the first spelling wins
    spellings: dict[str, str] = {}
    for category in entry.get("tags", []):
        name = " ".join((category.get("label") or category.get("term") or "").split())
        if slugify(name):
            spellings.setdefault(name.casefold(), name)
    tags = tuple(spellings.values())
    thumbnails = entry.get("media_thumbnail") or []
    image = _link(thumbnails[0].get("url"), label, "media:thumbnail", title) if thumbnails else None
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
        slug=_slug(link, title, fields["uid"]),
        title=title,
        summary=summary,
        source_format=SourceFormat.HTML,
        body_source=body,
        body_html=sanitize_html(body),
        notes=_dropped_notes(body),
        source_hash=digest,
        status=PostStatus.PUBLISHED,
        published_at=published,
        updated_at=updated if updated and updated > published else None,
        author=author,
        tags=tags,
        attachments=attachments,
        image_url=image,
        canonical_url=link,
        slug_chosen=False,
    )


def _dropped_notes(body: str) -> tuple[str, ...]:
    """What sanitising removed from an entry's HTML with what it held (an embedded
    player, a script): a migrated site is imported all the same, and told."""
    return tuple(
        f"<{name}> removed, with what it held: feeds and email cannot carry it"
        for name in dropped_elements(body)
    )


def _slug(link: str | None, title: str, uid: str | None) -> str:
    """The last path segment of the entry's link (its folder's, for ``…/index.html``),
    else the title, else its id."""
    if link:
        segments = urlsplit(link).path.rstrip("/").rsplit("/", 2)
        segment = segments[-1]
        segment = segment.rsplit(".", 1)[0] if segment.endswith((".html", ".htm")) else segment
        if segment.lower() in _GENERIC_PAGES and len(segments) > 1:
            segment = segments[-2]
        if slugify(segment):
            return slugify(segment)
    fallback = "post-" + hashlib.sha256((uid or title).encode()).hexdigest()[:10]
    return slugify(title) or fallback
