"""Writing drafts to the store, inside the caller's transaction.

Each draft is matched to a stored post (:mod:`.matching`). Changed posts
are updated through the ORM; each batch of new posts goes in with three
multi-row INSERTs (posts, their tags, their attachments) instead of one ORM
object at a time. Conflicts with stored posts (a draft taking another
post's slug or id) are problems, reported like the sources' own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from .. import queries
from ..db import insert_many
from ..errors import ContentError, ImportFailed
from ..models import Attachment, Author, Post, Tag, post_tags
from .drafts import AuthorDraft, PostDraft
from .matching import StoredPosts
from .sanitize import sanitize_html
from .slugs import slugify, unique_slug

#: new posts written at a time (three INSERT statements a batch)
BATCH = 500


@dataclass
class ImportReport:
    """What an import did: slugs created and updated, sources found unchanged."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: what the editor should know of the posts written ("source: what happened")
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)


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
            or _shown_differently(post.body_html, draft.body_html)
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


def _shown_differently(stored: str, drafted: str) -> bool:
    """Whether readers would see another body: bodies are stored as rendered and
    sanitised on their way out, and a row of an earlier version holds its body
    sanitised, which a re-render changes without changing what is shown."""
    return stored != drafted and sanitize_html(stored) != sanitize_html(drafted)


class Saver:
    """Writes drafts into the caller's transaction as they arrive, each matched to
    the stored post it is a new version of (:class:`~.matching.StoredPosts`).

    Conflicts with stored posts (a draft taking another post's slug or id)
    are problems too; they are reported only when the sources themselves
    had none, as before any write.
    """

    def __init__(
        self,
        session: Session,
        domain: str,
        now: datetime,
        force: bool,
        is_file: Callable[[str], bool],
    ) -> None:
        self.session, self.domain, self.now, self.force = session, domain, now, force
        self.stored = StoredPosts(session, now, is_file)
        self.writer = _Writer(session, domain, now)
        self.report = ImportReport()
        self.conflicts: list[ContentError] = []
        self.pending: list[tuple[PostDraft, int | None]] = []

    def add(self, draft: PostDraft, write: bool) -> None:
        """Note ``draft``; write the pending ones when a batch is full and ``write``."""
        stored = self.stored
        stored.learn(draft)
        if not draft.slug_chosen:
            draft = stored.entry_slug(draft)
        conflict = stored.conflict(draft)
        if conflict is not None:
            self.conflicts.append(conflict)
            return
        stored.take(draft)
        key = stored.of(draft)
        if key is not None and key.source_hash == draft.source_hash and not self.force:
            self.report.unchanged.append(draft.source)
            return
        self.pending.append((draft, key.id if key else None))
        self.report.notes += [f"{draft.source}: {note}" for note in draft.notes]
        if key is not None and stored.renamed.get(draft.source) is key:
            self.report.notes.append(
                f"{draft.source}: the post of {key.source_path}, which is gone (renamed): "
                f"the same post, its slug now {draft.slug!r}"
            )
        if write and not self.conflicts and len(self.pending) >= BATCH:
            stored.learn_all()
            self.flush()

    def flush(self) -> None:
        """Write the pending drafts: changed posts through the ORM, new ones in bulk."""
        batch, self.pending = self.pending, []
        existing = queries.posts_by_id(self.session, [pid for _, pid in batch if pid is not None])
        new: list[PostDraft] = []
        for draft, post_id in batch:
            if post_id is None:
                new.append(draft)
            else:
                post = existing[post_id]
                if post.status is not draft.status:  # (set by `posts publish`, say)
                    self.report.notes.append(
                        f"{draft.source}: {draft.status.value}, as the file says "
                        f"(the post was {post.status.value})"
                    )
                self.writer.fill(post, draft, is_new=False)
                self.report.updated.append(draft.slug)
        if new:
            self._insert(new)

    def _insert(self, drafts: list[PostDraft]) -> None:
        """New posts with three multi-row INSERTs (their authors and tags first, by the ORM)."""
        writer, now = self.writer, self.now
        authors = [writer.author(d.author) if d.author else None for d in drafts]
        tags = [writer.tag_list(d.tags) for d in drafts]
        self.session.flush()  # ids for new authors and tags
        uids = [d.uid or tag_uri(self.domain, d.published_at or now, d.slug) for d in drafts]
        rows = [
            {
                "uid": uid,
                "slug": draft.slug,
                "title": draft.title,
                "summary": draft.summary,
                "source_format": draft.source_format,
                "body_source": draft.body_source,
                "body_html": draft.body_html,
                "status": draft.status,
                "published_at": draft.published_at,
                "updated_at": draft.updated_at or draft.published_at,
                "author_id": author.id if author is not None else None,
                "image_url": draft.image_url,
                "image_alt": draft.image_alt,
                "canonical_url": draft.canonical_url,
                "source_path": draft.source,
                "source_hash": draft.source_hash,
                "first_seen_at": now,
            }
            for draft, author, uid in zip(drafts, authors, uids, strict=True)
        ]
        # one executemany: RETURNING the ids in order would cost SQLite a statement a row
        insert_many(self.session, cast(Table, Post.__table__), rows)
        by_uid = queries.post_ids_by_uid(self.session, uids)
        ids = [by_uid[uid] for uid in uids]
        links = [
            {"post_id": post_id, "tag_id": tag.id}
            for post_id, post_tag_list in zip(ids, tags, strict=True)
            for tag in post_tag_list
        ]
        files = [
            {
                "post_id": post_id,
                "position": position,
                "url": a.url,
                "title": a.title,
                "media_type": a.media_type,
                "length": a.length,
            }
            for post_id, draft in zip(ids, drafts, strict=True)
            for position, a in enumerate(draft.attachments)
        ]
        insert_many(self.session, post_tags, links)
        insert_many(self.session, cast(Table, Attachment.__table__), files)
        self.report.created += [draft.slug for draft in drafts]


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
    saver = Saver(session, domain, now, force, is_file)
    for draft in drafts:
        saver.add(draft, write=False)
    if saver.conflicts:
        raise ImportFailed(saver.conflicts)
    saver.flush()
    session.flush()
    return saver.report
