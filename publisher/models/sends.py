"""The send tables: digest runs, each subscriber's delivery in a run, and what
the scheduler did about each due send."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime


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


class RunEdition(Base):
    """One edition of a run (a set of topics), rendered once and kept: every sender of
    the run, and every resend, compiles these bytes rather than rendering again.

    ``topics``: the sorted tag names as JSON (``[]``: everything). ``subject`` None:
    no post of the run is about those topics.
    """

    __tablename__ = "run_editions"
    __table_args__ = (UniqueConstraint("run_id", "topics"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("digest_runs.id", ondelete="CASCADE"))
    topics: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    #: with the placeholders of render.Placeholders(nonce) where each reader's values go
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(64))
    posts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


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
        # a worker's claim reads the run's next rows from its cursor, never the whole
        # run; status is not in it, so changing a row's status touches no index
        Index("ix_deliveries_claim", "run_id", "id"),
        # room in each page for a row's two new versions: updates stay in place (HOT)
        {"postgresql_with": {"fillfactor": 50}},
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
    #: PostgreSQL: the sender that claimed it (``sending``), while it holds its lock
    #: (mail/senders); another takes the row back only once that sender is gone
    sender: Mapped[int | None] = mapped_column(BigInteger)


class ScheduledSend(Base):
    """What the scheduler did about one due send of a newsletter (one row per due time).

    ``outcome``: ``watching`` (a scheduler took the newsletter on at ``due_at``;
    nothing due before is "missed"), ``sending`` (claimed; a leader that dies
    leaves it so, and the next one resumes it), ``sent``, ``open`` (the run
    stopped with messages left, resumed later), ``empty`` (no post in the
    window, nothing sent), ``note`` (no post in the window: the "nothing new"
    note went out, ``empty: note``), ``skipped`` (missed past its grace:
    ``reason`` says why; its posts go into the next window) or ``failed``
    (``reason`` says why).
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
