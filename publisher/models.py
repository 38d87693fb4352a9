"""The store: SQLAlchemy 2 typed models.

The schema itself is owned by the Alembic migrations in ``migrations/``;
these classes must match them (``tests/test_migrations.py`` checks that).
ORM objects do not leave ``queries``/``jobs``: other modules get frozen values.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
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
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"


subscriber_tags = Table(
    "subscriber_tags",
    Base.metadata,
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Subscriber(Base):
    """Someone who gets the digest; ``topics`` are the tags they follow (none: all)."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SubscriberStatus] = mapped_column(
        Enum(
            SubscriberStatus,
            name="subscriber_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=SubscriberStatus.ACTIVE,
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    topics: Mapped[list[Tag]] = relationship(
        secondary=subscriber_tags, order_by="Tag.name", lazy="selectin"
    )


class DigestRun(Base):
    """One send of a digest: the window it covers, and whether it finished.

    A run that has not finished is resumed by the next send, with the same
    window, the same messages and the same Message-IDs.
    """

    __tablename__ = "digest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"
    #: the server refused it for good (5xx): not retried
    FAILED = "failed"
    #: the subscriber follows topics this digest has no post about
    SKIPPED = "skipped"


class Delivery(Base):
    """What became of one subscriber's message in one run; at most one per pair."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("run_id", "subscriber_id"),)

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
