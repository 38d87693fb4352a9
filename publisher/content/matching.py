"""Which stored post each draft of an import is a new version of.

A draft names its post by its id; without one (a post file with no ``id:``), by
its slug, else by the file it came from (the file's ``slug:`` changed: a rename,
not a second post), else by its title and date, as the post of a file that is
gone (the file was renamed, and its slug, made from its name, with it). A draft
may not take another post's id or slug while that post's file is still there:
those are conflicts, reported like the sources' own problems. A feed entry's
slug, which no one chose, is kept unique here (:meth:`StoredPosts.entry_slug`).

The first drafts of an import look up the stored posts they name (one query
each); after :data:`LOOKUPS` of them, or before the first batch is written, the
keys of every stored post are read at once (one query in all).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from .. import queries
from ..errors import ContentError
from .drafts import PostDraft
from .slugs import dated_slugs

#: drafts looked up one by one before every stored post's keys are read at once
LOOKUPS = 50


class StoredPosts:
    """The stored posts an import's drafts name, as they were when it began.

    :param is_file: whether a post's recorded source file still exists (a file
        that claims the ``id:`` or slug of another file's post takes it over only
        when that other file is gone, i.e. was renamed).
    """

    def __init__(self, session: Session, now: datetime, is_file: Callable[[str], bool]) -> None:
        self.session, self.now, self.is_file = session, now, is_file
        #: by uid, slug and source file: those the drafts named so far, or
        #: (``complete``) all of them
        self.by_uid: dict[str, queries.PostKey] = {}
        self.by_slug: dict[str, queries.PostKey] = {}
        self.by_file: dict[str, queries.PostKey] = {}
        self.complete = False
        self.lookups = 0
        #: the slugs this import's drafts took so far, and whose (a feed entry's may
        #: have been changed here, after the sources were checked against each other)
        self.taken: dict[str, str] = {}
        #: posts whose file is gone, and by title and date (read when first needed)
        self.gone_posts: list[tuple[queries.PostKey, str, datetime | None]] = []
        self.gone: dict[tuple[str, datetime | None], queries.PostKey] | None = None
        #: the post of a gone file each renamed file took, by the file
        self.renamed: dict[str, queries.PostKey | None] = {}

    def learn(self, draft: PostDraft) -> None:
        """Know the stored posts with the draft's uid or slug (an import of one file
        at 10,000 posts need not read 10,000 keys)."""
        if self.complete:
            return
        self.lookups += 1
        if self.lookups > LOOKUPS:
            self.learn_all()
        else:
            source = draft.source if is_post_file(draft.source) else None
            self._know(queries.post_keys_matching(self.session, draft.uid, draft.slug, source))

    def learn_all(self) -> None:
        """Know every stored post: before the import writes its first batch, so that
        later drafts are matched against the store as it was when the import began."""
        if not self.complete:
            self._know(queries.post_keys(self.session))
            self.complete = True

    def _know(self, keys: list[queries.PostKey]) -> None:
        for key in keys:
            self.by_uid.setdefault(key.uid, key)
            self.by_slug.setdefault(key.slug, key)
            if key.source_path:
                self.by_file.setdefault(key.source_path, key)

    def entry_slug(self, draft: PostDraft) -> PostDraft:
        """A feed entry's slug, made from its link or title, not chosen: a post stored
        for the entry keeps the one it has (so a feed imported again renames nothing),
        and a new one whose slug another post holds takes its first free
        :func:`~.slugs.dated_slugs` (a feed of "Weekly update" entries, imported week
        after week)."""
        stored = self.by_uid.get(draft.uid) if draft.uid else None
        if stored is not None:
            return draft if stored.slug == draft.slug else replace(draft, slug=stored.slug)
        if draft.slug not in self.by_slug:
            return draft
        day = (draft.published_at or self.now).date()
        for candidate in dated_slugs(draft.slug, day, draft.uid or draft.title):
            if not self.complete:
                self._know(queries.post_keys_matching(self.session, None, candidate))
            if candidate not in self.by_slug and candidate not in self.taken:
                return replace(draft, slug=candidate)
        return draft  # both held too: refused as any other conflict

    def of(self, draft: PostDraft) -> queries.PostKey | None:
        """The stored post the draft is a new version of: the one with its id; without
        one, the one with its slug, else the one its file made before (a file whose
        ``slug:`` changed: renamed, not a second post)."""
        if draft.uid:
            return self.by_uid.get(draft.uid)
        holder = self.by_slug.get(draft.slug)
        if holder is None and is_post_file(draft.source):
            return self.by_file.get(draft.source) or self._renamed(draft)
        return holder

    def _gone(self) -> dict[tuple[str, datetime | None], queries.PostKey]:
        """The posts whose file is gone, by title and date (read once)."""
        if self.gone is None:
            self.gone_posts = [
                (key, title, published)
                for key, title, published in queries.posts_from_files(self.session)
                if key.source_path is not None
                and is_post_file(key.source_path)
                and not self.is_file(key.source_path)
            ]
            index: dict[tuple[str, datetime | None], queries.PostKey] = {}
            twins = set()  # two gone posts with one title and date: neither is guessed at
            for key, title, when in self.gone_posts:
                found = (title, _utc(when))
                if found in index:
                    twins.add(found)
                index[found] = key
            self.gone = {found: key for found, key in index.items() if found not in twins}
        return self.gone

    def gone_under(self, folder: str) -> list[tuple[str, str]]:
        """(file, slug) of the posts made from files in ``folder`` that are gone, and
        that no file of this import took over (renamed)."""
        self._gone()
        inside = os.path.join(os.path.normpath(folder), "")
        taken = {key.id for key in self.renamed.values() if key is not None}
        return sorted(
            (key.source_path, key.slug)
            for key, _, _ in self.gone_posts
            if key.source_path is not None
            and key.id not in taken
            and os.path.normpath(key.source_path).startswith(inside)
        )

    def _renamed(self, draft: PostDraft) -> queries.PostKey | None:
        """The post whose file is gone and which has the draft's title and date: the
        file was renamed (each such post is taken by one file at most)."""
        if draft.source not in self.renamed:
            # (a draft with no date is no one's rename: "Notes" is not every "Notes")
            when = _utc(draft.published_at)
            found = self._gone().pop((draft.title, when), None) if when else None
            self.renamed[draft.source] = found
        return self.renamed[draft.source]

    def conflict(self, draft: PostDraft) -> ContentError | None:
        key = self.of(draft)
        if not draft.uid and key is not None and _belongs_elsewhere(key, draft, self.is_file):
            # another file's post, that file still there: not this file's to overwrite
            return ContentError(
                draft.source,
                f"slug {draft.slug!r} is already used by the post from {key.source_path}; "
                "give one of them another slug (slug: or the file's name)",
                "slug",
            )
        if draft.uid and key is not None and _belongs_elsewhere(key, draft, self.is_file):
            return ContentError(
                draft.source,
                f"id {draft.uid!r} belongs to the post from {key.source_path}; "
                "each post file needs an id of its own (remove id: to get one)",
                "id",
            )
        if draft.slug in self.taken:
            return ContentError(
                draft.source,
                f"slug {draft.slug!r} is already used by {self.taken[draft.slug]}; "
                "give one of them another slug",
                "slug",
            )
        holder = self.by_slug.get(draft.slug)
        if holder is not None and (key is None or holder.id != key.id):
            return ContentError(
                draft.source,
                f"slug {draft.slug!r} is already used by the post {holder.uid!r} "
                f"(from {holder.source_path or 'the database'}); choose another slug",
                "slug",
            )
        return None

    def take(self, draft: PostDraft) -> None:
        """The draft will be written: its slug is taken."""
        self.taken[draft.slug] = draft.source


def _utc(when: datetime | None) -> datetime | None:
    """``when`` in UTC (an hour the clocks repeat compares equal to nothing in
    another zone: PEP 495)."""
    return when.astimezone(UTC) if when is not None else None


def is_post_file(source: str | None) -> bool:
    """A Markdown file's path (not a feed entry, whose label changes when the feed grows)."""
    return bool(source) and "#entry-" not in str(source)


def _belongs_elsewhere(
    key: queries.PostKey, draft: PostDraft, is_file: Callable[[str], bool]
) -> bool:
    """The post with the draft's id (or slug) came from another post file, which is
    still there."""
    other = key.source_path
    return (
        other is not None
        and other != draft.source
        and is_post_file(other)
        and is_post_file(draft.source)
        and is_file(other)
    )
