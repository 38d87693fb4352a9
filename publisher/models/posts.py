"""The content tables: posts, their authors, tags and attachments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..content.values import PostStatus, SourceFormat
from .base import Base, UTCDateTime

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
    #: HTML rendered from body_source, not sanitised (a feed import's is, and so
    #: are rows of earlier versions): only content.public's sanitised copy leaves
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
    source_path: Mapped[str | None] = mapped_column(Text, index=True)
    source_hash: Mapped[str | None] = mapped_column(String(64))
    #: when the post first reached the store (its import): a post dated inside a digest
    #: period that was sent before it arrived goes out with the next digest
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

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
