"""CSV import of subscribers: every row checked first, then written in bulk.

Columns (a header row names them; case, spaces and underscores do not matter):

- ``address`` (required): checked and normalised like every address.
- ``name``.
- ``newsletters``: digests of config.yaml, separated by ``;`` (empty: all).
- ``topics``: tags (slug or name) separated by ``;``, followed in every
  listed newsletter; ``newsletter:topic`` follows a topic in one only.
- ``consent date``: when they agreed (``2024-05-01`` or
  ``2024-05-01T10:30:00+02:00``; a time without offset is in the site's
  time zone). Required, unless the import gives a default.
- ``status``: ``active`` (or empty), ``unsubscribed``, ``bounced`` or
  ``complained``: a list brought over from another mailer keeps those who
  left, so they are never mailed.

Every bad row is reported with its line number and reason, all at once
(:class:`~publisher.errors.ImportFailed`). ``all_or_nothing`` writes
nothing when any row is bad; otherwise the good rows are written and the
bad ones reported. An import never re-activates anyone: a known address
that unsubscribed, bounced or complained is kept as it is, and an erased
address (its hash on the suppression list) is skipped. A known active
subscriber only gains the newsletters listed that they have not left.

Rows are written with executemany, a few thousand at a time, in one
transaction: ``bench/subscribers.py`` measures the rate.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..addresses import normalise_address
from ..config import Settings
from ..db import transaction
from ..errors import AddressError, ContentError, ImportFailed, NotFound
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
from .choices import Catalogue, TagRef

COLUMNS = ("address", "name", "newsletters", "topics", "consent date", "status")
#: statuses a row may give; ``pending`` needs the person's own click, so no import sets it
ROW_STATUSES = {
    "": SubscriberStatus.ACTIVE,
    "active": SubscriberStatus.ACTIVE,
    "unsubscribed": SubscriberStatus.UNSUBSCRIBED,
    "bounced": SubscriberStatus.BOUNCED,
    "complained": SubscriberStatus.COMPLAINED,
}
STOPPED = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
CHUNK = 20_000


#: (newsletter, tag ids) pairs: hashable, so rows that chose alike share their records
Choices = tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class _Row:
    line: int
    email: str
    name: str | None
    choices: Choices
    consent_at: datetime
    status: SubscriberStatus


@dataclass(frozen=True)
class _Fault:
    """What is wrong with a cell, before it has a line number."""

    column: str
    message: str


@dataclass
class ImportReport:
    """What an import did. ``bad``: the rows not imported, each with line and reason."""

    source: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    #: (line, address, status): known people left as they were
    kept: list[tuple[int, str, str]] = field(default_factory=list)
    #: lines whose address is on the suppression list (erased)
    suppressed: list[int] = field(default_factory=list)
    bad: list[ContentError] = field(default_factory=list)


def _column(header: str) -> str:
    return " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())


def _parse_date(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"cannot read {text.strip()!r} as a date; write 2024-05-01 or 2024-05-01T10:30:00+02:00"
        ) from None
    when = when if when.tzinfo is not None else when.replace(tzinfo=zone)
    if when > now:
        raise ValueError(f"{text.strip()} is in the future")
    return when


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


class _Reader:
    """Turns CSV records into checked rows, collecting every bad one."""

    def __init__(
        self,
        source: str,
        catalogue: Catalogue[TagRef],
        zone: ZoneInfo,
        now: datetime,
        default_consent: datetime | None,
    ) -> None:
        self.source = source
        self.catalogue = catalogue
        self.zone = zone
        self.now = now
        self.default_consent = default_consent
        self.bad: list[ContentError] = []
        self.seen: dict[str, int] = {}
        self._dates: dict[str, datetime | str] = {}
        self._choices: dict[tuple[str, str], Choices | _Fault] = {}

    def fail(self, line: int, column: str | None, message: str) -> None:
        self.bad.append(ContentError(self.source, message, column, line))

    def header(self, names: Sequence[str]) -> list[str]:
        columns = [_column(n) for n in names]
        unknown = [n for n, c in zip(names, columns, strict=True) if c not in COLUMNS]
        if unknown or "address" not in columns:
            what = (
                f"unknown column {', '.join(repr(u) for u in unknown)}"
                if unknown
                else "no address column"
            )
            raise ImportFailed(
                [
                    ContentError(
                        self.source, f"{what}; the columns are: {', '.join(COLUMNS)}", None, 1
                    )
                ]
            )
        return columns

    def row(self, line: int, record: dict[str, str]) -> _Row | None:
        """A checked row, or None (each fault reported) if the row is bad."""
        errors = len(self.bad)
        email = ""
        try:
            email = normalise_address(record.get("address", ""))
        except AddressError as e:
            self.fail(line, "address", e.why)
        key = email.lower()
        if email and key in self.seen:
            self.fail(line, "address", f"{email} is a duplicate of line {self.seen[key]}")
        elif email:
            self.seen[key] = line
        choices = self._cached_choices(record.get("newsletters", ""), record.get("topics", ""))
        if isinstance(choices, _Fault):
            self.fail(line, choices.column, choices.message)
        consent_at = self._consent_date(line, record.get("consent date") or "")
        status = ROW_STATUSES.get((record.get("status") or "").strip().lower())
        if status is None:
            self.fail(
                line,
                "status",
                f"{record['status'].strip()!r} is not one of active, unsubscribed, bounced, "
                "complained",
            )
        if len(self.bad) > errors:
            return None
        assert consent_at is not None and status is not None and isinstance(choices, tuple)
        name = " ".join((record.get("name") or "").split()) or None
        return _Row(line, email, name, choices, consent_at, status)

    def _consent_date(self, line: int, text: str) -> datetime | None:
        if not text.strip():
            if self.default_consent is None:
                self.fail(
                    line,
                    "consent date",
                    "missing: say when this person agreed (or give the import a default date)",
                )
            return self.default_consent
        found = self._dates.get(text)
        if found is None:  # rows share dates: each distinct one is read once
            try:
                found = _parse_date(text, self.zone, self.now)
            except ValueError as e:
                found = str(e)
            self._dates[text] = found
        if isinstance(found, str):
            self.fail(line, "consent date", found)
            return None
        return found

    def _cached_choices(self, newsletters: str, topics: str) -> Choices | _Fault:
        """Rows share their choices: each distinct pair of cells is checked once."""
        key = (newsletters, topics)
        found = self._choices.get(key)
        if found is None:
            found = self._choices[key] = self._check_choices(newsletters, topics)
        return found

    def _check_choices(self, newsletters: str, topics: str) -> Choices | _Fault:
        catalogue = self.catalogue
        try:
            names = [catalogue.newsletter(n) for n in _split(newsletters)]
        except NotFound as e:
            return _Fault("newsletters", str(e))
        names = names or list(catalogue.newsletters)
        chosen: dict[str, list[int]] = {n: [] for n in names}
        try:
            for item in _split(topics):
                where, _, topic = item.rpartition(":")
                tag = catalogue.tag(topic)
                targets = [catalogue.newsletter(where)] if where else names
                for target in targets:
                    if target not in chosen:
                        raise NotFound(f"topic {item!r} is for a newsletter this row does not list")
                    chosen[target].append(tag.id)
        except NotFound as e:
            return _Fault("topics", str(e))
        return tuple((n, tuple(sorted(set(ids)))) for n, ids in chosen.items())


def read_csv(
    text: str,
    source: str,
    catalogue: Catalogue[TagRef],
    zone: ZoneInfo,
    now: datetime,
    default_consent: datetime | None = None,
) -> tuple[list[_Row], list[ContentError]]:
    """The good rows of a CSV text, and every bad one (line and reason)."""
    reader = _Reader(source, catalogue, zone, now, default_consent)
    records = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(records)
    except StopIteration:
        raise ImportFailed(
            [ContentError(source, "is empty: expected a header row", None, 1)]
        ) from None
    columns = reader.header(header)
    rows: list[_Row] = []
    line = records.line_num + 1
    try:
        for values in records:
            if "".join(values).strip():
                if len(values) != len(columns):
                    reader.fail(
                        line, None, f"has {len(values)} fields; the header has {len(columns)}"
                    )
                else:
                    row = reader.row(line, dict(zip(columns, values, strict=True)))
                    if row is not None:
                        rows.append(row)
            line = records.line_num + 1
    except csv.Error as e:
        reader.fail(records.line_num, None, f"not valid CSV: {e}")
    return rows, reader.bad


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
        fresh: list[_Row] = []
        existing: list[tuple[_Row, int, SubscriberStatus]] = []
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

    def add(self, rows: list[_Row]) -> None:
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

    def update(self, rows: list[tuple[_Row, int, SubscriberStatus]], report: ImportReport) -> int:
        """Known subscribers: never re-activated; the active gain newsletters they did not leave."""
        had: dict[int, set[str]] = {}
        ids = [sid for _, sid, _ in rows]
        for sid, newsletter in self.connection.execute(
            select(Subscription.subscriber_id, Subscription.newsletter).where(
                Subscription.subscriber_id.in_(ids)
            )
        ):
            had.setdefault(sid, set()).add(newsletter)
        changed: list[tuple[int, _Row]] = []
        for row, sid, status in rows:
            if status in STOPPED:
                report.kept.append((row.line, row.email, status.value))
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
        self, rows: list[tuple[int, _Row]], had: dict[int, set[str]], events: bool = True
    ) -> None:
        """Subscriptions, topics and the consent record of each row; and an import event
        for known subscribers (a new one's consent record says it came by import)."""
        subscriptions: list[tuple[object, ...]] = []
        topics: list[tuple[object, ...]] = []
        consents: list[tuple[object, ...]] = []
        happened: list[tuple[object, ...]] = []
        now, method, kind, wording = self.now, ConsentMethod.IMPORT, EventKind.IMPORT, self.wording
        prefix = f"imported from {self.source}, line "
        for sid, row in rows:
            before = had.get(sid, ())
            # someone who unsubscribed left each newsletter, as `unsubscribe` records it
            left = now if row.status is SubscriberStatus.UNSUBSCRIBED else None
            for newsletter, tag_ids in row.choices:
                if newsletter in before:
                    continue  # received already, or left: the import changes neither
                subscriptions.append((sid, newsletter, now, left))
                topics.extend((sid, newsletter, t) for t in tag_ids)
            chosen = self._consent_choices(row.choices)
            consents.append((sid, method, row.consent_at, wording, chosen, row.consent_at))
            stopped = "" if row.status is SubscriberStatus.ACTIVE else f", {row.status.value}"
            if events:
                happened.append((sid, kind, now, f"{prefix}{row.line}{stopped}"))
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
