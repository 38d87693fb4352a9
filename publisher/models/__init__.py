"""The store's schema: SQLAlchemy 2 typed models, a module per part.

``posts`` (posts, authors, tags, attachments), ``audience`` (subscribers,
subscriptions, consents, events, suppressions) and ``sends`` (digest runs,
deliveries, scheduled sends), on the shared ``base`` (:class:`Base`, constraint
names, :class:`UTCDateTime`). Every name is re-exported here, and loading this
package loads every table into ``Base.metadata`` (which Alembic compares with
the migrations).

The schema itself is owned by the Alembic migrations in ``migrations/``;
these classes must match them (``tests/integration/test_migrations.py`` checks
that). ORM objects do not leave ``queries`` and the shells that call it: other
modules get frozen values.

May import ``content.values`` (the post enums) and nothing else of the publisher.
"""

from __future__ import annotations

from ..content.values import PostStatus, SourceFormat
from .audience import (
    Consent,
    ConsentMethod,
    EventKind,
    Subscriber,
    SubscriberEvent,
    SubscriberStatus,
    Subscription,
    Suppression,
    SuppressionSalt,
    subscription_topics,
)
from .base import NAMING, Base, UTCDateTime
from .posts import Attachment, Author, Post, Tag, post_tags
from .sends import Delivery, DeliveryStatus, DigestRun, RunEdition, ScheduledSend

__all__ = [
    "NAMING",
    "Attachment",
    "Author",
    "Base",
    "Consent",
    "ConsentMethod",
    "Delivery",
    "DeliveryStatus",
    "DigestRun",
    "EventKind",
    "Post",
    "PostStatus",
    "RunEdition",
    "ScheduledSend",
    "SourceFormat",
    "Subscriber",
    "SubscriberEvent",
    "SubscriberStatus",
    "Subscription",
    "Suppression",
    "SuppressionSalt",
    "Tag",
    "UTCDateTime",
    "post_tags",
    "subscription_topics",
]
