"""The store: SQLAlchemy 2 typed models.

The schema itself is owned by the Alembic migrations in ``migrations/``;
these classes must match them (``tests/test_migrations.py`` checks that).
ORM objects do not leave ``queries``/``jobs``: other modules get frozen values.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .content.values import PostStatus, SourceFormat

# Stable constraint names, so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones: it stores naive text. We refuse naive values on
    the way in (a naive time is a bug upstream) and mark values UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: convert to UTC before storing")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(200))
    organisation: Mapped[str | None] = mapped_column(String(200))
    bio: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))

    posts: Mapped[list[Post]] = relationship(back_populates="author")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        # covers queries.feed_stubs: planning a build never touches the bodies
        Index(
            "ix_posts_feed",
            "published_at",
            "id",
            "status",
            "author_id",
            "updated_at",
            "source_hash",
            "slug",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: permanent id (feed entry id, RSS guid): set once at creation, never changed
    uid: Mapped[str] = mapped_column(String(300), unique=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    source_format: Mapped[SourceFormat] = mapped_column(
        Enum(SourceFormat, name="source_format", values_callable=lambda e: [m.value for m in e]),
        default=SourceFormat.MARKDOWN,
    )
    #: what the author wrote (Markdown, or HTML for posts migrated from a feed)
    body_source: Mapped[str] = mapped_column(Text)
    #: sanitised HTML rendered from body_source; safe to embed anywhere
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[PostStatus] = mapped_column(
        Enum(PostStatus, name="post_status", values_callable=lambda e: [m.value for m in e]),
        default=PostStatus.DRAFT,
    )
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id", ondelete="SET NULL"))
    image_url: Mapped[str | None] = mapped_column(Text)
    image_alt: Mapped[str | None] = mapped_column(Text)
    canonical_url: Mapped[str | None] = mapped_column(Text)
    #: where the post was imported from, and a hash of that source (skips no-op re-imports)
    source_path: Mapped[str | None] = mapped_column(Text)
    source_hash: Mapped[str | None] = mapped_column(String(64))

    author: Mapped[Author | None] = relationship(back_populates="posts", lazy="joined")
    tags: Mapped[list[Tag]] = relationship(
        secondary=post_tags, order_by="Tag.name", lazy="selectin"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="post",
        cascade="all, delete-orphan",
        order_by="Attachment.position",
        lazy="selectin",
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(200))
    #: size in bytes; None when unknown (RSS enclosures then say 0, as the RSS profile allows)
    length: Mapped[int | None] = mapped_column(BigInteger)

    post: Mapped[Post] = relationship(back_populates="attachments")


class SubscriberStatus(enum.StrEnum):
    #: asked to subscribe, has not clicked the confirmation link yet: gets nothing
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    #: a hard bounce (the mailbox does not exist), or too many soft ones
    BOUNCED = "bounced"
    #: marked a digest as spam (an ARF report): never mailed again unless they opt in anew
    COMPLAINED = "complained"


class ConsentMethod(enum.StrEnum):
    FORM = "form"
    IMPORT = "import"
    STAFF = "staff"


class EventKind(enum.StrEnum):
    """What happened to a subscriber; every event is kept (``subscriber_events``)."""

    REQUEST = "request"
    CONFIRM = "confirm"
    ADD = "add"
    IMPORT = "import"
    PREFERENCES = "preferences"
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    REACTIVATE = "reactivate"


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(kind, name=name, values_callable=lambda e: [m.value for m in e])


class Subscriber(Base):
    """Someone who gets (or asked for, or once got) newsletters.

    What they receive is :attr:`subscriptions`: one row per newsletter (a
    digest of config.yaml, by name), each with the topics followed in it.
    Only an ``active`` subscriber's active subscriptions are mailed.
    """

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus, "subscriber_status"), default=SubscriberStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber",
        cascade="all, delete-orphan",
        order_by="Subscription.newsletter",
        lazy="selectin",
        passive_deletes=True,
    )

    @property
    def topics(self) -> list[Tag]:
        """The tags followed in any newsletter received (a summary for old callers)."""
        seen: dict[int, Tag] = {}
        for subscription in self.subscriptions:
            if subscription.unsubscribed_at is None:
                seen.update((t.id, t) for t in subscription.topics)
        return sorted(seen.values(), key=lambda t: t.name)


subscription_topics = Table(
    "subscription_topics",
    Base.metadata,
    Column("subscriber_id", Integer, primary_key=True),
    Column("newsletter", String(100), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
    ForeignKeyConstraint(
        ["subscriber_id", "newsletter"],
        ["subscriptions.subscriber_id", "subscriptions.newsletter"],
        ondelete="CASCADE",
    ),
)


class Subscription(Base):
    """One newsletter a subscriber chose, and the topics they follow in it (none: all).

    Leaving a newsletter sets ``unsubscribed_at`` and keeps the row, so an
    import cannot quietly put them back on it.
    """

    __tablename__ = "subscriptions"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    #: the ``name`` of a digest in config.yaml
    newsletter: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    topics: Mapped[list[Tag]] = relationship(
        secondary=subscription_topics, order_by="Tag.name", lazy="selectin"
    )


class Consent(Base):
    """What a subscriber agreed to, when and how: the proof of their opt-in.

    A form consent counts from ``confirmed_at`` (the click on the emailed
    link: double opt-in); imported and staff consents are confirmed as made.
    """

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[ConsentMethod] = mapped_column(_enum(ConsentMethod, "consent_method"))
    #: when they agreed (for an import: the consent date of the CSV)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the page the form was on, and the client's IP address
    page: Mapped[str | None] = mapped_column(Text)
    client_address: Mapped[str | None] = mapped_column(String(100))
    #: the words they agreed to
    text: Mapped[str] = mapped_column(Text)
    #: what they asked for: {"newsletter": ["tag-slug", …]} (an empty list: all topics)
    choices: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SubscriberEvent(Base):
    """Something that happened to a subscriber: kept for the record and for staff."""

    __tablename__ = "subscriber_events"
    __table_args__ = (
        # the same report ingested twice counts once
        UniqueConstraint("subscriber_id", "report_id"),
        Index("ix_subscriber_events_when", "subscriber_id", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind, "event_kind"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the newsletter it concerns, if only one
    newsletter: Mapped[str | None] = mapped_column(String(100))
    #: one line for people: "550 5.1.1 mailbox unknown", "via the one-click link"
    detail: Mapped[str | None] = mapped_column(Text)
    #: the Message-ID of the report (bounce, complaint) that told us
    report_id: Mapped[str | None] = mapped_column(String(300))
    #: the report itself, as received
    report: Mapped[str | None] = mapped_column(Text)


class Suppression(Base):
    """An address that must never be mailed or imported again, kept only as a salted hash."""

    __tablename__ = "suppressions"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(50))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class SuppressionSalt(Base):
    """The installation's random salt for :class:`Suppression` hashes (one row)."""

    __tablename__ = "suppression_salt"

    id: Mapped[int] = mapped_column(primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))


class DigestRun(Base):
    """One send of a digest: the window it covers, and whether it finished.

    Claimed once per digest and period (the unique ``name, period_start``): a
    second sender joins it. A run that has not finished is resumed by the next
    send, with the same window, posts, messages and Message-IDs.
    """

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("name", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the ids of the run's posts (JSON), fixed when it is claimed, so a resend is the same digest
    post_ids: Mapped[str | None] = mapped_column(Text)


class DeliveryStatus(enum.StrEnum):
    #: created with the run; not yet handed to SMTP (a 4xx puts it back, with next_attempt_at)
    PENDING = "pending"
    #: committed just before the message goes to SMTP: after a crash, the uncertain ones
    SENDING = "sending"
    SENT = "sent"
    #: the server refused it for good (5xx): not retried
    FAILED = "failed"
    #: the subscriber follows topics this digest has no post about
    SKIPPED = "skipped"


class Delivery(Base):
    """What became of one subscriber's message in one run; at most one per pair."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "subscriber_id"),
        # a worker's claim reads the next pending rows of a run, never the whole run
        Index("ix_deliveries_claim", "run_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("digest_runs.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, name="delivery_status", values_callable=lambda e: [m.value for m in e])
    )
    message_id: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: times a server answered 4xx for this message
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: a 4xx was answered: not before this time again
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: after the first 4xx: give up (failed) when still refused at this time
    retry_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScheduledSend(Base):
    """What the scheduler did about one due send of a newsletter (one row per due time).

    ``outcome``: ``watching`` (a scheduler took the newsletter on at ``due_at``;
    nothing due before is "missed"), ``sending`` (claimed; a leader that dies
    leaves it so, and the next one resumes it), ``sent``, ``open`` (the run
    stopped with messages left, resumed later), ``empty`` (no post in the
    window), ``skipped`` (missed past its grace: ``reason`` says why; its posts
    go into the next window) or ``failed`` (``reason`` says why).
    """

    __tablename__ = "scheduled_sends"
    __table_args__ = (UniqueConstraint("name", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("digest_runs.id", ondelete="SET NULL"))
    sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
