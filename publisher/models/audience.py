"""The audience tables: subscribers, the newsletters and topics they chose,
their consents, what happened to them, and suppressed addresses."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    Column,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime
from .posts import Tag


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
    __table_args__ = (
        # every look-up by address ignores the case of the local part (the domain is
        # stored lower-cased already): the subscribe form's look-up must not scan the
        # table (migration 0008), and one address is one subscriber (0010)
        Index("ix_subscribers_email_lower", func.lower(text("email")), unique=True),
        # a deleted subscriber's id is never another's: their links carry it (0012)
        {"sqlite_autoincrement": True},
    )

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
    # a forgotten request's id is never another's: its confirmation link carries it (0012)
    __table_args__ = {"sqlite_autoincrement": True}

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
    #: the name they gave with the request (set on the subscriber when it is confirmed)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
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
