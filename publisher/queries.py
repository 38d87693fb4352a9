"""Every query the publisher runs, each a named function of a session.

Named for what they return. Callers pass the session in and own the
transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from .content.values import PostStatus
from .models import (
    Attachment,
    Author,
    Delivery,
    DeliveryStatus,
    DigestRun,
    Post,
    ScheduledSend,
    Subscriber,
    SubscriberStatus,
    Subscription,
    Tag,
    post_tags,
    subscription_topics,
)


@dataclass(frozen=True)
class PostKey:
    """The identity columns of a post, enough to decide create/update/skip."""

    id: int
    uid: str
    slug: str
    source_hash: str | None
    source_path: str | None


def post_keys(session: Session) -> list[PostKey]:
    """Identity columns of every post (cheap: no bodies are loaded)."""
    rows = session.execute(select(Post.id, Post.uid, Post.slug, Post.source_hash, Post.source_path))
    return [PostKey(*row) for row in rows]


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
    hashes = session.scalars(select(Post.source_hash).where(Post.source_hash.is_not(None)))
    return {h for h in hashes if h is not None}


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
) -> list[Post]:
    """Posts for the staff listing, newest first; drafts without a date come first."""
    query = select(Post).order_by(
        Post.published_at.is_(None).desc(), Post.published_at.desc(), Post.id.desc()
    )
    if status is not None:
        query = query.where(Post.status == status)
    if tag is not None:
        query = query.where(Post.tags.any(or_(Tag.slug == tag, Tag.name == tag)))
    if author is not None:
        query = query.join(Post.author).where(or_(Author.slug == author, Author.name == author))
    return list(session.scalars(query))


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


def tag_ids_by_post(session: Session) -> dict[int, str]:
    """The tag ids of every tagged post, as a comma-separated string."""
    query = select(
        post_tags.c.post_id, func.aggregate_strings(cast(post_tags.c.tag_id, String), ",")
    ).group_by(post_tags.c.post_id)
    return dict(_plain_rows(session, query))


def all_authors(session: Session) -> list[Author]:
    return list(session.scalars(select(Author).order_by(Author.id)))


def all_tags(session: Session) -> list[Tag]:
    return list(session.scalars(select(Tag).order_by(Tag.id)))


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


def posts_between(session: Session, start: datetime, end: datetime, now: datetime) -> list[Post]:
    """Visible posts published in ``[start, end)``, newest first."""
    query = (
        is_visible(now)
        .where(Post.published_at >= start, Post.published_at < end)
        .order_by(Post.published_at.desc(), Post.id.desc())
    )
    return list(session.scalars(query))


def last_finished_run(session: Session, name: str) -> DigestRun | None:
    """The most recent digest of this schedule that went out to everyone."""
    query = (
        select(DigestRun)
        .where(DigestRun.name == name, DigestRun.finished_at.is_not(None))
        .order_by(DigestRun.period_end.desc())
    )
    return session.scalars(query.limit(1)).first()


def unfinished_run(session: Session, name: str) -> DigestRun | None:
    """A send of this schedule that stopped part way, to resume."""
    query = (
        select(DigestRun)
        .where(DigestRun.name == name, DigestRun.finished_at.is_(None))
        .order_by(DigestRun.id.desc())
    )
    return session.scalars(query.limit(1)).first()


def settled_subscriber_ids(session: Session, run_id: int, ids: Sequence[int]) -> set[int]:
    """Which of ``ids`` already have a delivery (sent, failed for good, skipped) in the run."""
    query = select(Delivery.subscriber_id).where(
        Delivery.run_id == run_id, Delivery.subscriber_id.in_(ids)
    )
    return set(session.scalars(query))


def subscriber_by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalars(
        select(Subscriber).where(func.lower(Subscriber.email) == email.lower())
    ).one_or_none()


def all_subscribers(session: Session) -> list[Subscriber]:
    return list(session.scalars(select(Subscriber).order_by(Subscriber.id)))


def recipient_rows(
    session: Session, after_id: int, limit: int, newsletter: str | None
) -> list[Any]:
    """A batch of active subscribers after ``after_id`` who receive ``newsletter`` (any
    newsletter, if None): keyset paging, so any number streams. Columns: id, email, name.
    """
    receives = select(Subscription.subscriber_id).where(
        Subscription.subscriber_id == Subscriber.id, Subscription.unsubscribed_at.is_(None)
    )
    if newsletter is not None:
        receives = receives.where(Subscription.newsletter == newsletter)
    query = (
        select(Subscriber.id, Subscriber.email, Subscriber.name)
        .where(
            Subscriber.status == SubscriberStatus.ACTIVE,
            Subscriber.id > after_id,
            receives.exists(),
        )
        .order_by(Subscriber.id)
        .limit(limit)
    )
    return list(session.connection().execute(query).all())


def subscription_topic_rows(
    session: Session, ids: Sequence[int], newsletter: str | None
) -> list[Any]:
    """The newsletters the subscribers ``ids`` receive, with the tags followed in each.

    Columns: subscriber_id, newsletter, topic (a tag name; None where a
    subscription follows no tag: all topics). One row per tag.
    """
    query = (
        select(Subscription.subscriber_id, Subscription.newsletter, Tag.name.label("topic"))
        .outerjoin(
            subscription_topics,
            and_(
                subscription_topics.c.subscriber_id == Subscription.subscriber_id,
                subscription_topics.c.newsletter == Subscription.newsletter,
            ),
        )
        .outerjoin(Tag, Tag.id == subscription_topics.c.tag_id)
        .where(Subscription.subscriber_id.in_(ids), Subscription.unsubscribed_at.is_(None))
        .order_by(Subscription.subscriber_id, Subscription.newsletter, Tag.name)
    )
    if newsletter is not None:
        query = query.where(Subscription.newsletter == newsletter)
    return list(session.connection().execute(query).all())


# -- the send pipeline: runs and their deliveries ------------------------------------------

_deliveries = Delivery.metadata.tables["deliveries"]
_status_type = _deliveries.c.status.type


def run_by_period(session: Session, name: str, period_start: datetime) -> DigestRun | None:
    """The run of digest ``name`` for the period starting at ``period_start`` (unique)."""
    query = select(DigestRun).where(DigestRun.name == name, DigestRun.period_start == period_start)
    return session.scalars(query).one_or_none()


def runs_of(session: Session, name: str | None, limit: int) -> list[DigestRun]:
    """The latest runs (of digest ``name``, or of every digest), newest first."""
    query = select(DigestRun).order_by(DigestRun.id.desc()).limit(limit)
    if name is not None:
        query = query.where(DigestRun.name == name)
    return list(session.scalars(query))


def insert_pending_deliveries(session: Session, run_id: int, newsletter: str, now: datetime) -> int:
    """One ``pending`` delivery per active subscriber who receives ``newsletter``, in one
    statement; the number of rows made. (The suppression list, kept as salted hashes,
    is checked as each batch is sent.)"""
    receives = select(Subscription.subscriber_id).where(
        Subscription.subscriber_id == Subscriber.id,
        Subscription.unsubscribed_at.is_(None),
        Subscription.newsletter == newsletter,
    )
    rows = select(
        literal(run_id),
        Subscriber.id,
        literal(DeliveryStatus.PENDING, _status_type),
        literal(now, Delivery.at.type),
        literal(0),
    ).where(Subscriber.status == SubscriberStatus.ACTIVE, receives.exists())
    statement = _deliveries.insert().from_select(
        ["run_id", "subscriber_id", "status", "at", "attempts"], rows
    )
    return session.connection().execute(statement).rowcount


def claim_deliveries(
    session: Session,
    run_id: int,
    now: datetime,
    limit: int,
    stale_before: datetime | None = None,
    after_id: int = 0,
) -> list[Any]:
    """Mark up to ``limit`` due deliveries of the run ``sending`` and return them.

    Due: ``pending`` and past their ``next_attempt_at``; or, with
    ``stale_before``, left ``sending`` before then by a sender that died. On
    PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so concurrent
    senders never claim the same row. ``after_id``: only rows past it (a sender's
    cursor). An index scan from the start of the run would step over the entries of
    every row already sent (an update leaves its old index entry until VACUUM, longer
    while any transaction is open), so a send would slow as it goes; the cursor keeps
    each claim reading only the rows it takes (``ix_deliveries_claim``).
    Columns: id, subscriber_id, attempts, retry_until.
    """
    d = _deliveries
    if stale_before is None:
        due = and_(
            d.c.status == DeliveryStatus.PENDING,
            or_(d.c.next_attempt_at.is_(None), d.c.next_attempt_at <= now),
        )
    else:
        due = and_(d.c.status == DeliveryStatus.SENDING, d.c.at < stale_before)
    pick = (
        select(d.c.id)
        .where(d.c.run_id == run_id, due, d.c.id > after_id)
        .order_by(d.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # a MATERIALIZED CTE: the pick runs once. With IN (…) the planner may rerun it per
        # row (and with SKIP LOCKED each run picks anew): a claim of 100 took minutes at 20k.
        cte = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        which = d.c.id == cte.c.id
    else:
        which = d.c.id.in_(pick.scalar_subquery())
    statement = (
        update(d)
        .where(which)
        .values(status=DeliveryStatus.SENDING, at=now)
        .returning(d.c.id, d.c.subscriber_id, d.c.attempts, d.c.retry_until)
    )
    return sorted(session.execute(statement).all(), key=lambda row: row.id)


def delivery_recipients(session: Session, ids: Sequence[int], newsletter: str) -> list[Any]:
    """The subscribers ``ids`` as a send of ``newsletter`` needs them, in one query.

    Columns: id, email, name, status, receives (the newsletter's name if they still
    receive it, else None), topic (a tag they follow in it; one row per tag, None
    where they follow all).
    """
    sub, topic = Subscription, subscription_topics.c
    query = (
        select(
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.status,
            sub.newsletter.label("receives"),
            Tag.name.label("topic"),
        )
        .outerjoin(
            sub,
            and_(
                sub.subscriber_id == Subscriber.id,
                sub.newsletter == newsletter,
                sub.unsubscribed_at.is_(None),
            ),
        )
        .outerjoin(
            subscription_topics,
            and_(topic.subscriber_id == sub.subscriber_id, topic.newsletter == sub.newsletter),
        )
        .outerjoin(Tag, Tag.id == topic.tag_id)
        .where(Subscriber.id.in_(ids))
    )
    return list(session.execute(query).all())


def record_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write what became of deliveries, as one executemany of plain rows.

    Each row: ``b_id``, ``b_status``, ``b_message_id``, ``b_error``, ``b_at``,
    ``b_attempts``, ``b_next``, ``b_until``.
    """
    if not rows:
        return
    d = _deliveries
    statement = (
        update(d)
        .where(d.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status", type_=_status_type),
            message_id=bindparam("b_message_id"),
            error=bindparam("b_error"),
            at=bindparam("b_at", type_=Delivery.at.type),
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next", type_=Delivery.at.type),
            retry_until=bindparam("b_until", type_=Delivery.at.type),
        )
    )
    session.connection().execute(statement, list(rows))


def release_deliveries(session: Session, ids: Sequence[int]) -> None:
    """Put claimed deliveries that were never handed to SMTP back to ``pending``."""
    if ids:
        d = _deliveries
        session.execute(
            update(d)
            .where(d.c.id.in_(ids), d.c.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.PENDING)
        )


def reset_sending(session: Session, run_id: int) -> int:
    """Every ``sending`` delivery of the run back to ``pending`` (only for a sender that
    knows it is the only one: on SQLite, under the send lock)."""
    d = _deliveries
    statement = (
        update(d)
        .where(d.c.run_id == run_id, d.c.status == DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.PENDING)
    )
    return session.connection().execute(statement).rowcount


def next_retry_at(session: Session, run_id: int) -> datetime | None:
    """When the earliest deferred (4xx) delivery of the run is due again."""
    d = Delivery
    query = select(func.min(d.next_attempt_at)).where(
        d.run_id == run_id, d.status == DeliveryStatus.PENDING
    )
    return session.scalars(query).one()


def has_unsettled(session: Session, run_id: int) -> bool:
    """Is any delivery of the run still ``pending`` or ``sending``? (Reads one row.)"""
    query = select(Delivery.id).where(
        Delivery.run_id == run_id,
        Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
    )
    return session.scalars(query.limit(1)).first() is not None


def finish_run(session: Session, run_id: int, now: datetime) -> bool:
    """Mark the run finished if no delivery is left unsettled; whether it is finished."""
    if has_unsettled(session, run_id):
        return False
    session.execute(
        update(DigestRun)
        .where(DigestRun.id == run_id, DigestRun.finished_at.is_(None))
        .values(finished_at=now)
    )
    return True


def delivery_counts(session: Session, run_id: int) -> dict[str, int]:
    """How many deliveries of the run are in each state (reads the whole run: for
    reports, never per batch)."""
    query = (
        select(Delivery.status, func.count())
        .where(Delivery.run_id == run_id)
        .group_by(Delivery.status)
    )
    return {DeliveryStatus(status).value: count for status, count in session.execute(query)}


def deliveries_in(
    session: Session, run_id: int, statuses: Sequence[DeliveryStatus], limit: int
) -> list[Any]:
    """Deliveries of the run in ``statuses``, the latest first, with the address.

    Columns: id, email, status, message_id, error, at, attempts.
    """
    query = (
        select(
            Delivery.id,
            Subscriber.email,
            Delivery.status,
            Delivery.message_id,
            Delivery.error,
            Delivery.at,
            Delivery.attempts,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.run_id == run_id, Delivery.status.in_(statuses))
        .order_by(Delivery.at.desc(), Delivery.id.desc())
        .limit(limit)
    )
    return list(session.execute(query).all())


def mark_bounced(session: Session, ids: Sequence[int]) -> list[int]:
    """Make the active subscribers among ``ids`` ``bounced`` (their mailbox does not
    exist); the ids that changed."""
    if not ids:
        return []
    statement = (
        update(Subscriber)
        .where(Subscriber.id.in_(ids), Subscriber.status == SubscriberStatus.ACTIVE)
        .values(status=SubscriberStatus.BOUNCED)
        .returning(Subscriber.id)
    )
    return list(session.scalars(statement))


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


def last_scheduled_send(session: Session, name: str) -> ScheduledSend | None:
    """The newest record of the scheduler for this newsletter (its ``due_at`` is the
    baseline: no send due before it can be missed)."""
    query = (
        select(ScheduledSend)
        .where(ScheduledSend.name == name)
        .order_by(ScheduledSend.due_at.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def scheduled_send(session: Session, name: str, due_at: datetime) -> ScheduledSend | None:
    """The record of this newsletter's send due at ``due_at``."""
    query = select(ScheduledSend).where(ScheduledSend.name == name, ScheduledSend.due_at == due_at)
    return session.scalars(query).one_or_none()


def unsettled_scheduled_sends(session: Session, name: str) -> list[ScheduledSend]:
    """Sends of this newsletter claimed but not finished (``sending`` or ``open``), oldest
    first: what a new leader resumes."""
    query = (
        select(ScheduledSend)
        .where(ScheduledSend.name == name, ScheduledSend.outcome.in_(["sending", "open"]))
        .order_by(ScheduledSend.due_at)
    )
    return list(session.scalars(query))


def scheduled_sends_of(session: Session, name: str, limit: int) -> list[ScheduledSend]:
    """The newest records of this newsletter's sends, newest first."""
    query = (
        select(ScheduledSend)
        .where(ScheduledSend.name == name)
        .order_by(ScheduledSend.due_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
