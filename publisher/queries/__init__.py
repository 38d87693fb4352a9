"""Every query the publisher runs, each a named function of a session.

Posts, feeds and tags here; subscribers (look-ups, lists, a send's recipients)
in :mod:`.audience`; the send pipeline's runs, deliveries and scheduled sends in
:mod:`.sends` (both re-exported below, so every query is ``queries.<name>``).
Named for what they return. Callers pass the session in and own the
transaction; nothing here commits.

May import ``models`` and ``content.values`` (the post states); nothing else of
the publisher: the families call the store, never the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    String,
    and_,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from ..content.values import PostStatus
from ..models import (
    Attachment,
    Author,
    DigestRun,
    Post,
    Tag,
    post_tags,
)
from .audience import (  # the subscribers' queries, re-exported: one name space
    all_subscribers as all_subscribers,
    confirmed_later as confirmed_later,
    iter_subscribers as iter_subscribers,
    recipient_rows as recipient_rows,
    subscriber_by_email as subscriber_by_email,
    subscription_topic_rows as subscription_topic_rows,
)
from .deliveries import (  # the send loop's statements, re-exported: one name space
    Claimed as Claimed,
    claim_deliveries as claim_deliveries,
    record_deliveries as record_deliveries,
    record_sent as record_sent,
    record_sent_and_claim as record_sent_and_claim,
    release_deliveries as release_deliveries,
    reset_sending as reset_sending,
)
from .sends import (  # the send pipeline's queries, re-exported: one name space
    add_run_edition as add_run_edition,
    analyze_deliveries as analyze_deliveries,
    delivered as delivered,
    deliveries_in as deliveries_in,
    delivery_counts as delivery_counts,
    fill_message_ids as fill_message_ids,
    finish_run as finish_run,
    first_scheduled_due as first_scheduled_due,
    has_unsettled as has_unsettled,
    insert_pending_deliveries as insert_pending_deliveries,
    last_run as last_run,
    last_scheduled_send as last_scheduled_send,
    mark_bounced as mark_bounced,
    next_retry_at as next_retry_at,
    run_at_work as run_at_work,
    run_by_period as run_by_period,
    run_edition as run_edition,
    run_ending_at as run_ending_at,
    runs_of as runs_of,
    scheduled_send as scheduled_send,
    scheduled_sends_of as scheduled_sends_of,
    settled_subscriber_ids as settled_subscriber_ids,
    topic_sets as topic_sets,
    unfinished_runs as unfinished_runs,
    unsettled_scheduled_sends as unsettled_scheduled_sends,
)


class PostKey(NamedTuple):
    """The identity columns of a post, enough to decide create/update/skip."""

    id: int
    uid: str
    slug: str
    source_hash: str | None
    source_path: str | None


def post_keys(session: Session) -> list[PostKey]:
    """Identity columns of every post (cheap: no bodies are loaded; plain rows,
    since an import of one file reads them for every stored post)."""
    query = select(Post.id, Post.uid, Post.slug, Post.source_hash, Post.source_path)
    return list(map(PostKey._make, _plain_rows(session, query)))


def post_keys_matching(
    session: Session, uid: str | None, slug: str, source_path: str | None = None
) -> list[PostKey]:
    """Identity columns of the posts with this uid (if any), this slug, or from this
    file (if any): a few (each an index look-up)."""
    terms = [Post.slug == slug]
    if uid:
        terms.append(Post.uid == uid)
    if source_path:
        terms.append(Post.source_path == source_path)
    match = or_(*terms) if len(terms) > 1 else terms[0]
    query = select(Post.id, Post.uid, Post.slug, Post.source_hash, Post.source_path).where(match)
    return list(map(PostKey._make, _plain_rows(session, query)))


def posts_from_files(session: Session) -> list[tuple[PostKey, str, datetime | None]]:
    """Every post made from a file: its identity columns, title and date (a renamed
    file is matched to its post by these, once its old file is gone)."""
    query = select(
        Post.id, Post.uid, Post.slug, Post.source_hash, Post.source_path, Post.title,
        Post.published_at,
    ).where(Post.source_path.is_not(None))  # fmt: skip
    return [(PostKey(*row[:5]), row[5], row[6]) for row in session.execute(query)]


def post_ids_by_uid(session: Session, uids: Sequence[str]) -> dict[str, int]:
    """Ids of the posts with these uids (after a bulk insert, which returns none)."""
    found: dict[str, int] = {}
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        rows = session.execute(select(Post.uid, Post.id).where(Post.uid.in_(chunk)))
        found.update((uid, post_id) for uid, post_id in rows)
    return found


def source_hashes(session: Session) -> set[str]:
    """Fingerprints of every imported source, to skip files seen before."""
    query = select(Post.source_hash).where(Post.source_hash.is_not(None))
    return {h for (h,) in _plain_rows(session, query)}


def posts_by_id(session: Session, ids: Sequence[int]) -> dict[int, Post]:
    """Full posts (with tags and attachments) for the given ids."""
    found: dict[int, Post] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update((p.id, p) for p in session.scalars(select(Post).where(Post.id.in_(chunk))))
    return found


def authors_by_slug(session: Session) -> dict[str, Author]:
    return {a.slug: a for a in session.scalars(select(Author))}


def tags_by_slug(session: Session) -> dict[str, Tag]:
    return {t.slug: t for t in session.scalars(select(Tag))}


def post_by_slug(session: Session, slug: str) -> Post | None:
    return session.scalars(select(Post).where(Post.slug == slug)).one_or_none()


def is_visible(now: datetime) -> Select[Post]:
    """Posts a reader may see at ``now``: published or scheduled, and due.

    A scheduled post, and a published one dated in the future, appear only
    once their time has come; drafts never do.
    """
    return select(Post).where(_visible(now))


def published_posts(session: Session, now: datetime, limit: int | None = None) -> list[Post]:
    """Visible posts, newest first (ties broken by id, for a stable order)."""
    query = is_visible(now).order_by(Post.published_at.desc(), Post.id.desc()).limit(limit)
    return list(session.scalars(query))


def listed_posts(
    session: Session,
    status: PostStatus | None = None,
    tag: str | None = None,
    author: str | None = None,
) -> list[Any]:
    """Posts for the staff listing, newest first; drafts without a date come first.

    Rows of ``status``, ``published_at``, ``slug``, ``title`` and ``author``
    (the author's name, or None): no bodies, and one query however many authors.
    """
    query = (
        select(
            Post.status,
            Post.published_at,
            Post.slug,
            Post.title,
            Author.name.label("author"),
        )
        .outerjoin(Post.author)
        .order_by(Post.published_at.is_(None).desc(), Post.published_at.desc(), Post.id.desc())
    )
    if status is not None:
        query = query.where(Post.status == status)
    if tag is not None:
        query = query.where(Post.tags.any(or_(Tag.slug == tag, Tag.name == tag)))
    if author is not None:
        query = query.where(or_(Author.slug == author, Author.name == author))
    return list(session.execute(query))


def _visible(now: datetime) -> ColumnElement[bool]:
    return and_(
        Post.status.in_([PostStatus.PUBLISHED, PostStatus.SCHEDULED]),
        Post.published_at.is_not(None),
        Post.published_at <= now,
    )


def _plain_rows(session: Session, query: Executable) -> list[tuple[Any, ...]]:
    """Rows as the driver returns them: for the queries that read every post, where
    even Core's per-row work shows. Only for columns that need no type conversion."""
    result = session.connection().execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def feed_stubs(session: Session, now: datetime) -> list[Any]:
    """Light facts of every visible post, oldest first, cheap to fetch.

    Columns: ``id``, ``author_id`` and ``version``, a string that changes
    whenever the post's source, slug, status, dates or author change. The
    index ``ix_posts_feed`` covers the query, so the bodies are never read.
    """

    def text(column: Any) -> ColumnElement[str]:
        return func.coalesce(cast(column, String), "")

    version = (
        text(Post.id)
        + "|"
        + Post.slug
        + "|"
        + text(Post.status)
        + "|"
        + text(Post.published_at)
        + "|"
        + text(Post.updated_at)
        + "|"
        + text(Post.source_hash)
        + "|"
        + text(Post.author_id)
    )
    query = (
        select(Post.id, Post.author_id, version.label("version"))
        .where(_visible(now))
        .order_by(Post.published_at, Post.id)
    )
    return _plain_rows(session, query)


def next_due(session: Session, now: datetime) -> datetime | None:
    """When the earliest post hidden only by its date comes due (None: no such post)."""
    query = select(func.min(Post.published_at)).where(
        Post.status.in_([PostStatus.PUBLISHED, PostStatus.SCHEDULED]), Post.published_at > now
    )
    return session.scalar(query)


def tag_ids_by_post(session: Session) -> dict[int, str]:
    """The tag ids of every tagged post, as a comma-separated string."""
    query = select(
        post_tags.c.post_id, func.aggregate_strings(cast(post_tags.c.tag_id, String), ",")
    ).group_by(post_tags.c.post_id)
    return dict(_plain_rows(session, query))


def all_authors(session: Session) -> list[Author]:
    return list(session.scalars(select(Author).order_by(Author.id)))


def all_tags(session: Session) -> list[Tag]:
    """Every tag, by name as readers look for it (the forms' topics): case aside."""
    return list(session.scalars(select(Tag).order_by(func.lower(Tag.name), Tag.id)))


#: the tags' columns as a plain SQL statement (an ORM one costs more to run than this)
_TAGS = Tag.__table__.c
_TAG_VALUES = select(_TAGS.id, _TAGS.slug, _TAGS.name).order_by(_TAGS.id)


def tag_values(session: Session) -> list[tuple[int, str, str]]:
    """Every tag's id, slug and name (no ORM objects: for the subscribe form)."""
    rows = session.connection().execute(_TAG_VALUES)
    return [(int(i), str(slug), str(name)) for i, slug, name in rows]


def feed_rows(session: Session, ids: Sequence[int]) -> dict[int, Any]:
    """What a feed entry shows of each post (bodies included), by id.

    Columns: id, uid, slug, title, summary, body_html, published_at,
    updated_at, author_id, image_url, image_alt, canonical_url.
    """
    query = select(
        Post.id,
        Post.uid,
        Post.slug,
        Post.title,
        Post.summary,
        Post.body_html,
        Post.published_at,
        Post.updated_at,
        Post.author_id,
        Post.image_url,
        Post.image_alt,
        Post.canonical_url,
    ).where(Post.id.in_(ids))
    return {row.id: row for row in session.execute(query)}


def attachments_of(session: Session, ids: Sequence[int]) -> dict[int, list[Any]]:
    """Attachments of the given posts, in their order. Columns: post_id, url, title,
    media_type, length."""
    query = (
        select(
            Attachment.post_id,
            Attachment.url,
            Attachment.title,
            Attachment.media_type,
            Attachment.length,
        )
        .where(Attachment.post_id.in_(ids))
        .order_by(Attachment.post_id, Attachment.position)
    )
    result: dict[int, list[Any]] = {}
    for row in session.execute(query):
        result.setdefault(row.post_id, []).append(row)
    return result


def posts_between(
    session: Session,
    start: datetime,
    end: datetime,
    now: datetime,
    after: DigestRun | None = None,
) -> list[Post]:
    """Visible posts published in ``[start, end)``, newest first; and with ``after``
    (the run before), those it could not take: published in its period but stored
    since it was made, and not among its posts (they came late)."""
    in_window = and_(Post.published_at >= start, Post.published_at < end)
    if after is not None:
        taken = json.loads(after.post_ids) if after.post_ids else []
        came_late = and_(
            Post.published_at >= after.period_start,
            Post.published_at < after.period_end,
            Post.first_seen_at >= after.started_at,
            Post.id.not_in(taken),
        )
        in_window = or_(in_window, came_late)
    query = is_visible(now).where(in_window).order_by(Post.published_at.desc(), Post.id.desc())
    return list(session.scalars(query))


def upcoming_publication_times(session: Session, now: datetime, limit: int) -> list[datetime]:
    """When posts that are not visible yet become visible (scheduled, or dated later), soonest
    first: the moments the feeds must be rebuilt."""
    query = (
        select(Post.published_at)
        .where(
            Post.status.in_([PostStatus.PUBLISHED, PostStatus.SCHEDULED]),
            Post.published_at > now,
        )
        .distinct()
        .order_by(Post.published_at)
        .limit(limit)
    )
    return [when for when in session.scalars(query) if when is not None]
