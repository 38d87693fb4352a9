"""Bounces, complaints and mailto: unsubscribes, from a mailbox into the store.

``publisher bounces ingest PATH`` reads a single message file, a Maildir
(or a folder of message files) or an mbox, understands each message
(:mod:`~publisher.audience.reports`), finds the subscriber and:

- a hard bounce makes an active (or pending) subscriber ``bounced``;
- a soft bounce is counted; the ``bounces.soft_limit``-th within
  ``bounces.soft_days`` makes them ``bounced``;
- a complaint makes them ``complained`` (whatever they were);
- a ``mailto:`` unsubscribe with a valid token unsubscribes them.

Every report is kept as an event with the report itself; the same report
ingested again (the mailbox is read every few minutes and keeps its mail)
is recognised by its Message-ID and counted once. Nothing is deleted from
the mailbox.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..config import Settings
from ..db import transaction
from ..errors import BadToken, NotFound
from ..models import EventKind, Subscriber, SubscriberStatus
from .events import count_since, record_event
from .links import read_unsubscribe_token
from .reports import Kind, Report, read_report
from .subscribers import unsubscribe


@dataclass
class IngestReport:
    """What an ingest did; ``unmatched``: (where, why) for reports no subscriber fits."""

    messages: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    #: subscribers whose status changed to bounced or complained
    suppressed: list[str] = field(default_factory=list)
    #: reports seen before (the same Message-ID for the same subscriber)
    repeated: int = 0
    #: messages that are neither bounces nor complaints (auto-replies …)
    other: int = 0
    unmatched: list[tuple[str, str]] = field(default_factory=list)


def iter_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every message at ``path``: a file, a Maildir, a folder or an mbox.

    :raises NotFound: nothing is at ``path``.
    """
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            box = mailbox.Maildir(str(path), factory=None, create=False)
            for key in sorted(box.keys()):
                yield f"{path}/{key}", box.get_bytes(key)
            return
        for file in sorted(p for p in path.iterdir() if p.is_file()):
            yield str(file), file.read_bytes()
        return
    if not path.is_file():
        raise NotFound(f"{path}: no such file, Maildir or mbox")
    with path.open("rb") as f:
        head = f.read(5)
    if head == b"From ":
        mbox = mailbox.mbox(str(path), factory=None, create=False)
        for number, key in enumerate(mbox.keys(), 1):
            yield f"{path}#{number}", mbox.get_bytes(key)
        return
    yield str(path), path.read_bytes()


def ingest(
    factory: sessionmaker[Session], settings: Settings, path: Path, now: datetime
) -> IngestReport:
    """Read every message at ``path`` into the store (one transaction per message)."""
    outcome = IngestReport()
    for where, data in iter_messages(path):
        outcome.messages += 1
        report = read_report(data)
        if report.kind is Kind.OTHER:
            outcome.other += 1
            continue
        if report.kind is Kind.UNSUBSCRIBE:
            _unsubscribe(factory, settings, report, where, now, outcome)
            continue
        with transaction(factory) as session:
            subscriber, why = _match(session, report)
            if subscriber is None:
                outcome.unmatched.append((where, why))
                continue
            _apply(session, settings, subscriber, report, now, outcome)
    return outcome


def _match(session: Session, report: Report) -> tuple[Subscriber | None, str]:
    """The subscriber a report is about, or None and why not."""
    if report.subscriber_id is not None:
        found = session.get(Subscriber, report.subscriber_id)
        if found is not None and _was_sent(session, found, report):
            return found, ""
    if report.verp_id is not None:
        found = session.get(Subscriber, report.verp_id)
        if found is not None:
            return found, ""
    for address in report.addresses:
        found = queries.subscriber_by_email(session, address)
        if found is not None:
            return found, ""
    if report.subscriber_id is not None or report.verp_id is not None:
        return None, "its subscriber is gone (erased)"
    named = ", ".join(report.addresses) or "no address"
    return None, f"{report.kind.value}: no digest Message-ID and no subscriber at {named}"


def _was_sent(session: Session, subscriber: Subscriber, report: Report) -> bool:
    """Whether the digest a report names went to ``subscriber``: a delivery of theirs
    has its Message-ID, or the report names their address. (A Message-ID made up, or
    one of a subscriber since erased, names an id that may be someone else's.)"""
    if subscriber.email.casefold() in {a.strip().casefold() for a in report.addresses}:
        return True
    return report.message_id is not None and queries.delivered(
        session, subscriber.id, report.message_id
    )


def _apply(
    session: Session,
    settings: Settings,
    subscriber: Subscriber,
    report: Report,
    now: datetime,
    outcome: IngestReport,
) -> None:
    at = report.at or now
    kind = {
        Kind.HARD: EventKind.BOUNCE,
        Kind.SOFT: EventKind.SOFT_BOUNCE,
        Kind.COMPLAINT: EventKind.COMPLAINT,
    }[report.kind]
    kept = record_event(
        session,
        subscriber.id,
        kind,
        at,
        report.newsletter,
        report.detail,
        report.report_id,
        report.raw,
    )
    if not kept:
        outcome.repeated += 1
        return
    before = subscriber.status
    if report.kind is Kind.COMPLAINT:
        outcome.complaints += 1
        subscriber.status = SubscriberStatus.COMPLAINED
    elif report.kind is Kind.HARD:
        outcome.hard += 1
        if before in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING):
            subscriber.status = SubscriberStatus.BOUNCED
    else:
        outcome.soft += 1
        limits = settings.bounces
        session.flush()
        since = at - timedelta(days=limits.soft_days)
        count = count_since(session, subscriber.id, EventKind.SOFT_BOUNCE, since)
        if count >= limits.soft_limit and before is SubscriberStatus.ACTIVE:
            subscriber.status = SubscriberStatus.BOUNCED
            record_event(
                session,
                subscriber.id,
                EventKind.BOUNCE,
                at,
                detail=f"{count} soft bounces within {limits.soft_days} days",
            )
    if subscriber.status is not before:
        outcome.suppressed.append(f"{subscriber.email}: {subscriber.status.value}")


def _unsubscribe(
    factory: sessionmaker[Session],
    settings: Settings,
    report: Report,
    where: str,
    now: datetime,
    outcome: IngestReport,
) -> None:
    """A ``mailto:`` unsubscribe: the token of the digest's link names the subscriber (and
    the newsletter, for links made with :func:`~publisher.audience.links.unsubscribe_token`)."""
    secret = settings.web.secret_key
    token = report.token or ""
    if not secret:
        outcome.unmatched.append(
            (where, f"an unsubscribe request, but {settings.web.secret_key_env} is not set")
        )
        return
    try:
        link = read_unsubscribe_token(secret, token)
    except BadToken as e:
        outcome.unmatched.append((where, f"an unsubscribe request: {e}"))
        return
    if unsubscribe(factory, link.subscriber_id, link.newsletter, now, detail="mailto") is None:
        outcome.unmatched.append((where, "an unsubscribe request for no subscriber"))
        return
    outcome.unsubscribes += 1
