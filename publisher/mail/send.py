"""The send loop: the digest to every active subscriber, resumable.

Reads and writes deliveries in the store and hands messages to a
:class:`~publisher.mail.smtp.Mailer`; the messages come from
:mod:`~publisher.mail.compose`, the one compose path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..addresses import normalise_address
from ..audience.recipients import Recipient, iter_recipients, recipient_for
from ..config import Settings
from ..db import transaction
from ..errors import DeliveryError
from ..models import Delivery, DeliveryStatus, DigestRun
from .compose import Composed, Editions, compose, digest_posts, publish_web_version, secret_key
from .digest import make_digest
from .smtp import Mailer
from .window import digest_settings, digest_window


def send_test(
    factory: sessionmaker[Session],
    settings: Settings,
    mailer: Mailer,
    to: str,
    now: datetime,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Composed:
    """Send the digest as it stands to one address; nothing is recorded."""
    address = normalise_address(to)
    config = digest_settings(settings, name)
    key = secret_key(settings, required=True)
    with factory() as session:
        recipient = recipient_for(session, address, config.name)
        editions, composed = compose(session, settings, config, recipient, now, since, until, key)
    everyone = editions.template(())
    assert everyone is not None
    publish_web_version(settings, everyone.rendered)
    mailer.send(settings.email.sender_address, address, composed.message)
    return composed


@dataclass
class SendReport:
    """What a send did. ``finished`` is False when it stopped early (resume it by sending again)."""

    name: str
    subject: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: subscribers an earlier, interrupted attempt of this run already dealt with
    earlier: int = 0
    #: temporary failures (left for the next attempt)
    errors: list[str] = field(default_factory=list)
    finished: bool = False
    resumed: bool = False


def send_digest(
    factory: sessionmaker[Session],
    settings: Settings,
    mailer: Mailer,
    now: datetime,
    name: str | None = None,
    batch: int = 200,
) -> SendReport:
    """Send the digest to every active subscriber; resume one that stopped part way.

    Each subscriber's delivery is recorded after the server accepted (or
    refused for good) the message, a batch at a time, and a subscriber with a
    delivery in the run is never sent to again: an interrupted send is resumed
    by sending again, with the same window, messages and Message-IDs. A
    message refused for good (5xx) is recorded as failed; temporary failures
    are left for the next attempt, and after ``email.max_send_errors`` of them
    the send stops. A run with temporary failures stays open until a later
    attempt reaches everyone.

    :raises EmptyDigest: when no post was published in a new run's window.
    """
    config = digest_settings(settings, name)
    key = secret_key(settings, required=True)
    report = SendReport(config.name)
    with transaction(factory) as session:
        run = queries.unfinished_run(session, config.name)
        report.resumed = run is not None
        if run is None:
            start, end = digest_window(session, config, settings, now)
            posts = digest_posts(session, settings, start, end, now)
            make_digest(config.name, posts, start, end)  # raises EmptyDigest: no run is made
            run = DigestRun(name=config.name, period_start=start, period_end=end, started_at=now)
            session.add(run)
            session.flush()
        else:
            posts = digest_posts(session, settings, run.period_start, run.period_end, now)
        run_id, started_at = run.id, run.started_at
        report.period_start, report.period_end = run.period_start, run.period_end
    if not posts:  # every post of a resumed run was unpublished meanwhile
        _finish(factory, run_id, now)
        report.finished = True
        return report
    full = make_digest(config.name, posts, report.period_start, report.period_end, config.order)
    editions = Editions(full, config, settings, started_at, key)
    everyone = editions.template(())
    assert everyone is not None  # the full digest has posts
    report.subject = everyone.rendered.subject
    publish_web_version(settings, everyone.rendered)
    sender = settings.email.sender_address

    for recipients in _batched(iter_recipients(factory, batch, newsletter=config.name), batch):
        with factory() as session:
            settled = queries.settled_subscriber_ids(session, run_id, [r.id for r in recipients])
        done: list[Delivery] = []
        try:
            for recipient in recipients:
                if recipient.id in settled:
                    report.earlier += 1
                    continue
                delivery = _deliver(mailer, editions, sender, recipient, run_id, report)
                if delivery is not None:  # None: a temporary failure, for the next attempt
                    done.append(delivery)
        except _TooManyErrors:
            _record(factory, done)
            return report
        _record(factory, done)

    if not report.errors:  # temporary failures keep the run open, for the next attempt
        _finish(factory, run_id, datetime.now(UTC))
        report.finished = True
    return report


class _TooManyErrors(Exception):
    pass


def _deliver(
    mailer: Mailer,
    editions: Editions,
    sender: str,
    recipient: Recipient,
    run_id: int,
    report: SendReport,
) -> Delivery | None:
    """Send one message; the delivery to record, or None to try again next time."""
    template = editions.template(recipient.topics)
    at = datetime.now(UTC)
    if template is None:
        report.skipped += 1
        return Delivery(
            run_id=run_id, subscriber_id=recipient.id, status=DeliveryStatus.SKIPPED, at=at
        )
    message_id = template.message_id(recipient)
    try:
        mailer.send(sender, recipient.email, template.render(recipient))
    except DeliveryError as e:
        if not e.permanent:
            report.errors.append(str(e))
            if len(report.errors) >= editions.settings.email.max_send_errors:
                raise _TooManyErrors from e
            return None
        report.failed += 1
        return Delivery(
            run_id=run_id,
            subscriber_id=recipient.id,
            status=DeliveryStatus.FAILED,
            message_id=message_id,
            error=str(e),
            at=at,
        )
    report.sent += 1
    return Delivery(
        run_id=run_id,
        subscriber_id=recipient.id,
        status=DeliveryStatus.SENT,
        message_id=message_id,
        at=at,
    )


def _record(factory: sessionmaker[Session], deliveries: list[Delivery]) -> None:
    """The checkpoint: written only after the server answered for each message."""
    if deliveries:
        with transaction(factory) as session:
            session.add_all(deliveries)


def _finish(factory: sessionmaker[Session], run_id: int, when: datetime) -> None:
    with transaction(factory) as session:
        run = session.get(DigestRun, run_id)
        assert run is not None
        run.finished_at = when


def _batched(items: Iterable[Recipient], size: int) -> Iterator[list[Recipient]]:
    batch: list[Recipient] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
