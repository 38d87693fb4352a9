"""CSV export of the list, in the columns :mod:`~publisher.audience.csvrows` reads.

Every subscriber is written, whatever their status, so that importing the
file elsewhere keeps those who left as having left. ``newsletters`` lists
the newsletters received (for someone who stopped: the ones they had);
``topics`` lists tag slugs followed in every listed newsletter, and
``newsletter:slug`` for a topic followed in one only; ``consent date`` is
their latest confirmed consent. The list streams in id order, a batch at a
time, so its size does not matter.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import Consent, Subscriber
from .csvrows import COLUMNS

BATCH = 2000


def _cells(subscriber: Subscriber, consent_at: str) -> list[str]:
    current = [s for s in subscriber.subscriptions if s.unsubscribed_at is None]
    rows = current or list(subscriber.subscriptions)
    topics = [frozenset(t.slug for t in s.topics) for s in rows]
    common = frozenset.intersection(*topics) if topics else frozenset()
    cells = sorted(common)
    for row, chosen in zip(rows, topics, strict=True):
        cells += [f"{row.newsletter}:{slug}" for slug in sorted(chosen - common)]
    return [
        subscriber.email,
        subscriber.name or "",
        ";".join(s.newsletter for s in rows),
        ";".join(cells),
        consent_at,
        subscriber.status.value,
    ]


def iter_export_rows(factory: sessionmaker[Session]) -> Iterator[list[str]]:
    """The header, then one row per subscriber (a batch at a time)."""
    yield list(COLUMNS)
    after = 0
    while True:
        with factory() as session:
            batch = list(
                session.scalars(
                    select(Subscriber)
                    .where(Subscriber.id > after)
                    .order_by(Subscriber.id)
                    .limit(BATCH)
                )
            )
            if not batch:
                return
            ids = [s.id for s in batch]
            consented = dict(
                session.execute(
                    select(Consent.subscriber_id, func.max(Consent.at))
                    .where(Consent.subscriber_id.in_(ids), Consent.confirmed_at.is_not(None))
                    .group_by(Consent.subscriber_id)
                ).all()
            )
            for subscriber in batch:
                when = consented.get(subscriber.id)
                yield _cells(
                    subscriber, f"{when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}" if when else ""
                )
        after = batch[-1].id


def write_csv(factory: sessionmaker[Session], out: TextIO) -> int:
    """Write the list to ``out``; the number of subscribers written."""
    writer = csv.writer(out, lineterminator="\n")
    rows = iter_export_rows(factory)
    writer.writerow(next(rows))
    written = 0
    for row in rows:
        writer.writerow(row)
        written += 1
    return written
