"""CSV import of subscribers: every row checked first (:mod:`.csvrows`), then written in bulk.

Every bad row is reported with its line number and reason, all at once
(:class:`~publisher.errors.ImportFailed`). ``all_or_nothing`` writes
nothing when any row is bad; otherwise the good rows are written and the
bad ones reported. An import never re-activates anyone: a known address
that unsubscribed, bounced or complained is kept as it is, and an erased
address (its hash on the suppression list) is skipped. A known active
subscriber only gains the newsletters listed that they have not left.

Rows are written as plain tuples with executemany
(:func:`~publisher.audience.bulk.bulk_insert`), a few thousand at a time, in
one transaction: ``bench/subscribers.py`` measures the rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings
from ..db import transaction
from ..errors import ContentError, ImportFailed
from ..models import (
    Base,
    ConsentMethod,
    EventKind,
    Subscriber,
    SubscriberStatus,
    Subscription,
    subscription_topics,
)
from . import suppression
from .bulk import bulk_insert
from .choices import Catalogue
from .csvrows import Choices, Row, read_csv

STOPPED = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
CHUNK = 20_000


@dataclass
class ImportReport:
    """What an import did. ``bad``: the rows not imported, each with line and reason."""

    source: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    #: known subscribers the row adds nothing to (an import made again): no new
    #: consent record, no event
    unchanged: int = 0
    #: (line, address, status): known people left as they were
    kept: list[tuple[int, str, str]] = field(default_factory=list)
    #: lines whose address is on the suppression list (erased)
    suppressed: list[int] = field(default_factory=list)
    bad: list[ContentError] = field(default_factory=list)


def import_csv(
    factory: sessionmaker[Session],
    settings: Settings,
    text: str,
    source: str,
    now: datetime,
    all_or_nothing: bool = True,
    consent_text: str | None = None,
    default_consent: datetime | None = None,
) -> ImportReport:
    """Import subscribers from CSV ``text`` (read from ``source``, named in errors).

    :raises ImportFailed: with every bad row, when ``all_or_nothing`` and any
        row is bad (nothing is written), or when the header is unusable.
    """
    wording = consent_text or f"Consent held by the list's owner; imported from {source}."
    report = ImportReport(source)
    with transaction(factory) as session:
        catalogue = Catalogue.read(session, settings)
        rows, bad = read_csv(text, source, catalogue, settings.site.zone, now, default_consent)
        report.rows = len(rows) + len(bad)
        if bad and all_or_nothing:
            raise ImportFailed(bad)
        report.bad = bad
        salt = suppression.load_salt(session)
        erased = suppression.suppressed(session, salt, [r.email for r in rows])
        known = {
            email.lower(): (sid, status)
            for sid, email, status in session.execute(
                select(Subscriber.id, Subscriber.email, Subscriber.status)
            )
        }
        fresh: list[Row] = []
        existing: list[tuple[Row, int, SubscriberStatus]] = []
        for row in rows:
            if row.email in erased:
                report.suppressed.append(row.line)
            elif row.email.lower() in known:
                existing.append((row, *known[row.email.lower()]))
            else:
                fresh.append(row)
        slugs = {t.id: t.slug for t in catalogue.tags.values()}
        writer = _Writer(session, now, wording, source, slugs)
        for start in range(0, len(fresh), CHUNK):
            writer.add(fresh[start : start + CHUNK])
        report.added = len(fresh)
        for start in range(0, len(existing), CHUNK):
            report.updated += writer.update(existing[start : start + CHUNK], report)
    return report


class _Writer:
    """Bulk inserts (:func:`~publisher.audience.bulk.bulk_insert`) of checked rows, inside
    the caller's transaction."""

    def __init__(
        self, session: Session, now: datetime, wording: str, source: str, slugs: dict[int, str]
    ) -> None:
        self.connection = session.connection()
        self.now = now
        self.wording = wording
        self.source = source
        self.slugs = slugs
        #: the consent record's choices for each distinct choice of the rows (one object each)
        self._json: dict[Choices, dict[str, list[str]]] = {}

    def add(self, rows: list[Row]) -> None:
        """New subscribers, with their subscriptions, topics, consent and event."""
        before = self.connection.scalar(select(func.max(Subscriber.id))) or 0
        bulk_insert(
            self.connection,
            _table("subscribers"),
            ("email", "name", "status", "created_at"),
            [(r.email, r.name, r.status, self.now) for r in rows],
        )
        # the new ids: every row after the largest id before (a concurrent sign-up's row
        # may be among them; its address is not in this chunk, so it is never matched)
        made = select(Subscriber.email, Subscriber.id).where(Subscriber.id > before)
        ids: dict[str, int] = {email: sid for email, sid in self.connection.execute(made)}
        self._children([(ids[r.email], r) for r in rows], {}, events=False)

    def update(self, rows: list[tuple[Row, int, SubscriberStatus]], report: ImportReport) -> int:
        """Known subscribers: never re-activated; the active gain newsletters they did not leave."""
        had: dict[int, set[str]] = {}
        ids = [sid for _, sid, _ in rows]
        for sid, newsletter in self.connection.execute(
            select(Subscription.subscriber_id, Subscription.newsletter).where(
                Subscription.subscriber_id.in_(ids)
            )
        ):
            had.setdefault(sid, set()).add(newsletter)
        changed: list[tuple[int, Row]] = []
        for row, sid, status in rows:
            if status in STOPPED:
                report.kept.append((row.line, row.email, status.value))
                continue
            before = had.get(sid, set())
            if row.status is status and all(n in before for n, _ in row.choices):
                report.unchanged += 1  # nothing to add: no second consent record
                continue
            changed.append((sid, row))
            if row.status is not status:
                self.connection.execute(
                    update(Subscriber).where(Subscriber.id == sid).values(status=row.status)
                )
        self._children(changed, had)
        return len(changed)

    def _consent_choices(self, choices: Choices) -> dict[str, list[str]]:
        found = self._json.get(choices)
        if found is None:
            found = {n: [self.slugs[t] for t in ids] for n, ids in choices}
            self._json[choices] = found
        return found

    def _children(
        self, rows: list[tuple[int, Row]], had: dict[int, set[str]], events: bool = True
    ) -> None:
        """Subscriptions, topics and the consent record of each row; and an import event
        for known subscribers (a new one's consent record says it came by import)."""
        subscriptions: list[tuple[object, ...]] = []
        topics: list[tuple[object, ...]] = []
        happened: list[tuple[object, ...]] = []
        now, method, kind, wording = self.now, ConsentMethod.IMPORT, EventKind.IMPORT, self.wording
        prefix = f"imported from {self.source}, line "
        unsubscribed, active = SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.ACTIVE
        chosen = {c: self._consent_choices(c) for c in {row.choices for _, row in rows}}
        consents = [
            (sid, method, row.consent_at, wording, chosen[row.choices], row.consent_at)
            for sid, row in rows
        ]
        if not had:  # new subscribers: every newsletter of every row, in comprehensions
            # someone who unsubscribed left each newsletter, as `unsubscribe` records it
            subscriptions = [
                (sid, newsletter, now, now if row.status is unsubscribed else None)
                for sid, row in rows
                for newsletter, _ in row.choices
            ]
            topics = [
                (sid, newsletter, tag)
                for sid, row in rows
                for newsletter, tags in row.choices
                for tag in tags
            ]
        for sid, row in rows if had else ():
            before = had.get(sid, ())
            left = now if row.status is unsubscribed else None
            for newsletter, tag_ids in row.choices:
                if newsletter in before:
                    continue  # received already, or left: the import changes neither
                subscriptions.append((sid, newsletter, now, left))
                topics += [(sid, newsletter, t) for t in tag_ids]
        if events:
            happened = [
                (
                    sid,
                    kind,
                    now,
                    f"{prefix}{row.line}"
                    + ("" if row.status is active else f", {row.status.value}"),
                )
                for sid, row in rows
            ]
        connection = self.connection
        bulk_insert(
            connection,
            _table("subscriptions"),
            ("subscriber_id", "newsletter", "created_at", "unsubscribed_at"),
            subscriptions,
        )
        bulk_insert(
            connection, subscription_topics, ("subscriber_id", "newsletter", "tag_id"), topics
        )
        bulk_insert(
            connection,
            _table("consents"),
            ("subscriber_id", "method", "at", "text", "choices", "confirmed_at"),
            consents,
        )
        bulk_insert(
            connection,
            _table("subscriber_events"),
            ("subscriber_id", "kind", "at", "detail"),
            happened,
        )


def _table(name: str) -> Table:
    return Base.metadata.tables[name]
