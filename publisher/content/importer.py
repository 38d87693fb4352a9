"""Import posts: Markdown files, folders of them, or an RSS/Atom feed.

Two phases, like a compiler: first every source is read and validated
(pure, :mod:`postfile` / :mod:`feedimport`), and all problems are reported
together; only when there are none does the second phase write, in one
transaction. A failed import therefore leaves the database as it was, and a
repeated import of unchanged sources writes nothing (each post remembers a
hash of its source).
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Set
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..config import Settings
from ..db import transaction
from ..errors import ContentError, ImportFailed, PublisherError
from ..models import Attachment, Author, Post, Tag
from .drafts import AuthorDraft, PostDraft
from .feedimport import looks_like_feed, parse_feed
from .limits import MAX_FEED_BYTES, MAX_POST_BYTES, check_draft
from .postfile import parse_post_file, source_hash
from .slugs import slugify, unique_slug

#: below this many files, a process pool costs more than it saves
PARALLEL_THRESHOLD = 200


@dataclass
class ImportReport:
    """What an import did: slugs created and updated, sources found unchanged."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)


@dataclass(frozen=True)
class Source:
    """One thing to import: a label for messages and its bytes."""

    label: str
    raw: bytes
    is_feed: bool


def collect_sources(target: str) -> list[Source]:
    """Read a file, every ``*.md`` below a folder (sorted), or a feed URL.

    :raises PublisherError: when the target cannot be read.
    """
    if target.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(target, timeout=30) as response:  # noqa: S310
                raw = response.read(MAX_FEED_BYTES + 1)
                return [Source(target, raw, is_feed=True)]
        except OSError as e:
            raise PublisherError(f"{target}: cannot fetch the feed: {e}") from e
    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.md") if p.is_file())
        if not files:
            raise PublisherError(f"{target}: no *.md post files in this folder")
        return [Source(str(p), _read(p, MAX_POST_BYTES), is_feed=False) for p in files]
    try:
        raw = _read(path, MAX_FEED_BYTES)
    except FileNotFoundError:
        raise PublisherError(f"{target}: no such file or folder") from None
    except OSError as e:
        raise PublisherError(f"{target}: cannot be read: {e.strerror}") from e
    return [Source(str(path), raw, is_feed=path.suffix != ".md" and looks_like_feed(raw))]


def _read(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes: enough for the parser to say the file is too big."""
    with path.open("rb") as handle:
        return handle.read(limit + 1)


def _read_one(source: Source, zone_key: str) -> list[PostDraft] | ContentError:
    try:
        if source.is_feed:
            return parse_feed(source.raw, source.label)
        return [parse_post_file(source.raw, source.label, ZoneInfo(zone_key))]
    except ContentError as e:
        return e


@dataclass(frozen=True)
class Drafts:
    """What the first phase found: drafts to save, and files seen before."""

    drafts: list[PostDraft]
    #: labels of the files whose fingerprint is already stored (not parsed again)
    unchanged: list[str]


def read_drafts(
    sources: list[Source], zone: ZoneInfo, known_hashes: Set[str] = frozenset()
) -> Drafts:
    """Validate and render every new or changed source.

    Files whose fingerprint is in ``known_hashes`` were imported as they are
    before, so they are skipped unread. Large imports use a pool of processes.

    :raises ImportFailed: listing every problem found, in source order.
    """
    unchanged = [
        s.label
        for s in sources
        if not s.is_feed and source_hash(s.raw, s.label, zone) in known_hashes
    ]
    skip = set(unchanged)
    todo = [s for s in sources if s.label not in skip]
    results: Iterable[list[PostDraft] | ContentError]
    if len(todo) >= PARALLEL_THRESHOLD and (os.cpu_count() or 1) > 1:
        with ProcessPoolExecutor() as pool:
            results = list(pool.map(_read_one, todo, [zone.key] * len(todo), chunksize=64))
    else:
        results = [_read_one(source, zone.key) for source in todo]
    drafts: list[PostDraft] = []
    errors: list[ContentError] = []
    for result in results:
        if isinstance(result, ContentError):
            errors.append(result)
        else:
            drafts.extend(result)
            for draft in result:
                errors.extend(check_draft(draft))
    errors.extend(_duplicates(drafts))
    if errors:
        raise ImportFailed(errors)
    return Drafts(drafts, unchanged)


def _duplicates(drafts: list[PostDraft]) -> Iterator[ContentError]:
    """Two sources in one import claiming the same slug or id."""
    seen_slug: dict[str, str] = {}
    seen_uid: dict[str, str] = {}
    for draft in drafts:
        if draft.slug in seen_slug:
            yield ContentError(
                draft.source,
                f"slug {draft.slug!r} is already used by {seen_slug[draft.slug]}; "
                "give one of them another slug",
                "slug",
            )
        seen_slug.setdefault(draft.slug, draft.source)
        if draft.uid is not None:
            if draft.uid in seen_uid:
                yield ContentError(
                    draft.source, f"id {draft.uid!r} is already used by {seen_uid[draft.uid]}", "id"
                )
            seen_uid.setdefault(draft.uid, draft.source)


def tag_uri(domain: str, when: datetime, slug: str) -> str:
    """A permanent id per RFC 4151: ``tag:example.org,2019-12-05:my-post``.

    Made once, when the post is created; later renames do not change it.
    """
    return f"tag:{domain},{when.date().isoformat()}:{slug}"


class _Writer:
    """Second phase: apply drafts to the store inside the caller's transaction.

    Tags and authors are the same when their names are, ignoring case
    ("SDGs" and "sdgs"). Their slugs are only names for URLs: when two names
    make the same slug ("Li Ming" and 李明), the later one gets a numbered
    suffix instead of being merged into the other.
    """

    def __init__(self, session: Session, domain: str, now: datetime) -> None:
        self.session = session
        self.domain = domain
        self.now = now
        authors = queries.authors_by_slug(session)
        tags = queries.tags_by_slug(session)
        self.author_slugs = set(authors)
        self.tag_slugs = set(tags)
        self.authors: dict[str, Author] = {}
        for author in authors.values():
            self.authors.setdefault(author.name.casefold(), author)
        self.tags: dict[str, Tag] = {}
        for tag in tags.values():
            self.tags.setdefault(tag.name.casefold(), tag)

    def author(self, draft: AuthorDraft) -> Author:
        author = self.authors.get(draft.name.casefold())
        if author is None:
            slug = unique_slug(draft.slug, self.author_slugs)
            author = Author(slug=slug, name=draft.name)
            self.session.add(author)
            self.authors[draft.name.casefold()] = author
            self.author_slugs.add(slug)
        # only what a source states overwrites: a post that names just the
        # author keeps the bio another post gave
        for name in ("name", "role", "organisation", "bio", "email"):
            value = getattr(draft, name)
            if value is not None and getattr(author, name) != value:
                setattr(author, name, value)
        return author

    def tag_list(self, names: tuple[str, ...]) -> list[Tag]:
        result: list[Tag] = []
        for name in names:
            tag = self.tags.get(name.casefold())
            if tag is None:
                slug = unique_slug(slugify(name) or "tag", self.tag_slugs)
                tag = Tag(slug=slug, name=name)
                self.session.add(tag)
                self.tags[name.casefold()] = tag
                self.tag_slugs.add(slug)
            if tag not in result:
                result.append(tag)
        return result

    def fill(self, post: Post, draft: PostDraft, is_new: bool) -> None:
        content_changed = not is_new and (
            post.title != draft.title
            or post.body_html != draft.body_html
            or post.summary != draft.summary
        )
        post.slug = draft.slug
        post.title = draft.title
        post.summary = draft.summary
        post.source_format = draft.source_format
        post.body_source = draft.body_source
        post.body_html = draft.body_html
        post.status = draft.status
        post.published_at = draft.published_at
        if draft.updated_at is not None:
            post.updated_at = draft.updated_at
        elif is_new or post.updated_at is None:
            post.updated_at = draft.published_at
        elif content_changed and draft.published_at is not None:
            post.updated_at = max(self.now, draft.published_at)
        post.author = self.author(draft.author) if draft.author else None
        post.tags = self.tag_list(draft.tags)
        stored = [(a.url, a.title, a.media_type, a.length) for a in post.attachments]
        wanted = [(a.url, a.title, a.media_type, a.length) for a in draft.attachments]
        if stored != wanted:  # keep rows (and their ids) when nothing changed
            post.attachments = [
                Attachment(position=i, url=url, title=title, media_type=media_type, length=length)
                for i, (url, title, media_type, length) in enumerate(wanted)
            ]
        post.image_url = draft.image_url
        post.image_alt = draft.image_alt
        post.canonical_url = draft.canonical_url
        post.source_path = draft.source
        post.source_hash = draft.source_hash


def save_drafts(
    session: Session,
    drafts: list[PostDraft],
    domain: str,
    now: datetime,
    force: bool = False,
    is_file: Callable[[str], bool] = os.path.isfile,
) -> ImportReport:
    """Create or update a post per draft, matching by id, else by slug.

    :param is_file: whether a post's recorded source file still exists (a file
        that claims the ``id:`` of another file's post takes it over only when
        that other file is gone, i.e. was renamed).
    :raises ImportFailed: when a draft would take the slug or id of another post.
    """
    keys = queries.post_keys(session)
    by_uid = {k.uid: k for k in keys}
    by_slug = {k.slug: k for k in keys}
    report = ImportReport()
    errors: list[ContentError] = []
    plan: list[tuple[PostDraft, int | None]] = []
    for draft in drafts:
        key = by_uid.get(draft.uid) if draft.uid else by_slug.get(draft.slug)
        if draft.uid and key is not None and _belongs_elsewhere(key, draft, is_file):
            errors.append(
                ContentError(
                    draft.source,
                    f"id {draft.uid!r} belongs to the post from {key.source_path}; "
                    "each post file needs an id of its own (remove id: to get one)",
                    "id",
                )
            )
            continue
        holder = by_slug.get(draft.slug)
        if holder is not None and (key is None or holder.id != key.id):
            errors.append(
                ContentError(
                    draft.source,
                    f"slug {draft.slug!r} is already used by the post {holder.uid!r} "
                    f"(from {holder.source_path or 'the database'}); choose another slug",
                    "slug",
                )
            )
            continue
        if key is not None and key.source_hash == draft.source_hash and not force:
            report.unchanged.append(draft.source)
            continue
        plan.append((draft, key.id if key else None))
    if errors:
        raise ImportFailed(errors)

    writer = _Writer(session, domain, now)
    existing = queries.posts_by_id(session, [pid for _, pid in plan if pid is not None])
    for draft, post_id in plan:
        if post_id is None:
            when = draft.published_at or now
            post = Post(uid=draft.uid or tag_uri(domain, when, draft.slug))
            writer.fill(post, draft, is_new=True)
            session.add(post)
            report.created.append(draft.slug)
        else:
            writer.fill(existing[post_id], draft, is_new=False)
            report.updated.append(draft.slug)
    session.flush()
    return report


def _is_post_file(source: str | None) -> bool:
    """A Markdown file's path (not a feed entry, whose label changes when the feed grows)."""
    return bool(source) and "#entry-" not in str(source)


def _belongs_elsewhere(
    key: queries.PostKey, draft: PostDraft, is_file: Callable[[str], bool]
) -> bool:
    """The post with the draft's id came from another post file, which is still there."""
    other = key.source_path
    return (
        other is not None
        and other != draft.source
        and _is_post_file(other)
        and _is_post_file(draft.source)
        and is_file(other)
    )


def import_target(
    factory: sessionmaker[Session],
    target: str,
    settings: Settings,
    now: datetime,
    force: bool = False,
) -> ImportReport:
    """Import a file, folder or feed URL: validate everything, then write it all.

    :raises ImportFailed: listing every problem; the database is unchanged.
    :raises PublisherError: when the target cannot be read.
    """
    sources = collect_sources(target)
    known: set[str] = set()
    if not force:
        with factory() as session:
            known = queries.source_hashes(session)
    found = read_drafts(sources, settings.site.zone, known)
    with transaction(factory) as session:
        report = save_drafts(session, found.drafts, settings.site.domain, now, force=force)
    report.unchanged[:0] = found.unchanged
    return report
