"""The digest's shell: build it from the store, send it, manage subscribers.

Reads and writes the store and talks to the mailer; everything in between is
pure (:mod:`digest`, :mod:`render`, :mod:`mail`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.orm import Session, sessionmaker

from . import queries
from .config import DigestSettings, Settings
from .db import transaction
from .digest import (
    Digest,
    DigestPost,
    EmptyDigest,
    edition,
    make_digest,
    make_post,
)
from .entries import absolute_url, absolutize_html
from .errors import ConfigError, DeliveryError, NotFound, PublisherError
from .feeds import Enclosure
from .mail import MessageTemplate, Recipient, check_address, make_signer
from .models import Delivery, DeliveryStatus, DigestRun, Subscriber, SubscriberStatus
from .output import write_if_changed
from .render import RenderedDigest, render_digest, render_web_page
from .smtp import Mailer
from .urls import Urls, digest_page_path


def digest_settings(settings: Settings, name: str | None) -> DigestSettings:
    """The digest schedule called ``name`` (the first one when None)."""
    if not settings.digests:
        raise ConfigError(
            "config.yaml", "digests", "no digest is configured; add one under digests:"
        )
    if name is None:
        return settings.digests[0]
    for config in settings.digests:
        if config.name == name:
            return config
    names = ", ".join(d.name for d in settings.digests)
    raise NotFound(f"no digest called {name!r} in config.yaml; the digests are: {names}")


def previous_fire_time(schedule: str, zone: ZoneInfo, before: datetime) -> datetime:
    """When the crontab ``schedule`` last fired before ``before`` (at most a year back)."""
    trigger = CronTrigger.from_crontab(schedule, timezone=zone)
    # look back a little first: walking a year of an hourly schedule costs thousands of steps
    for days in (2, 35, 366):
        start = before - timedelta(days=days)
        last: datetime | None = None
        fire = trigger.get_next_fire_time(None, start)
        while fire is not None and fire < before:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if last is not None:
            return last.astimezone(UTC)
    return start.astimezone(UTC)


def digest_window(
    session: Session,
    config: DigestSettings,
    settings: Settings,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The period a digest covers: since the last one of its schedule went out
    (else since the schedule's previous run), until now; or what is given."""
    end = until or now
    if since is None:
        last = queries.last_finished_run(session, config.name)
        since = (
            last.period_end
            if last
            else previous_fire_time(config.schedule, settings.site.zone, end)
        )
    if since >= end:
        raise PublisherError(
            f"the digest window is empty: --since {since:%Y-%m-%d %H:%M} is not before "
            f"--until {end:%Y-%m-%d %H:%M}"
        )
    return since, end


def digest_posts(
    session: Session, settings: Settings, start: datetime, end: datetime, now: datetime
) -> list[DigestPost]:
    """The posts published in ``[start, end)``, as the digest shows them."""
    urls = Urls.from_settings(settings)
    base = urls.base
    posts = []
    for post in queries.posts_between(session, start, end, now):
        assert post.published_at is not None
        enclosures = tuple(
            Enclosure(absolute_url(a.url, base), a.media_type, a.length, a.title)
            for a in post.attachments
        )
        link = (
            absolute_url(post.canonical_url, base) if post.canonical_url else urls.post(post.slug)
        )
        posts.append(
            make_post(
                title=post.title,
                link=link,
                published=post.published_at,
                body_html=absolutize_html(post.body_html, base),
                summary=post.summary,
                author=post.author.name if post.author else None,
                image=absolute_url(post.image_url, base) if post.image_url else None,
                image_alt=post.image_alt,
                attachments=enclosures,
                tags=tuple(t.name for t in post.tags),
            )
        )
    return posts


def build_digest(
    session: Session,
    config: DigestSettings,
    settings: Settings,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Digest:
    """The digest of the posts in its window, from the store.

    :raises EmptyDigest: when no post was published in the window.
    """
    start, end = digest_window(session, config, settings, now, since, until)
    posts = digest_posts(session, settings, start, end, now)
    return make_digest(config.name, posts, start, end, config.order)


def edition_for(digest: Digest, config: DigestSettings, recipient: Recipient) -> Digest:
    """The digest as ``recipient`` gets it (only the posts about their topics, if any).

    :raises EmptyDigest: when none of its posts is about their topics.
    """
    mine = edition(digest, recipient.topics, config.order)
    if mine is None:
        raise EmptyDigest(
            f"{recipient.email} follows {', '.join(recipient.topics)}, and no post of this "
            "digest is about them: they would get no message"
        )
    return mine


def message_template(
    rendered: RenderedDigest, settings: Settings, date: datetime, secret: str
) -> MessageTemplate:
    """Compile a rendered digest into the per-recipient message maker."""
    return MessageTemplate(
        rendered,
        sender=settings.email.sender,
        reply_to=settings.email.reply_to,
        urls=Urls.from_settings(settings),
        signer=make_signer(secret),
        domain=settings.site.domain,
        date=date,
        list_title=f"{settings.site.title} {rendered.digest.name}",
    )


def secret_key(settings: Settings, required: bool) -> str:
    """The key that signs unsubscribe links.

    Rendering for a look (preview, render) may use a stand-in; anything that
    sends must have the real one, or its links could be forged.
    """
    key = settings.web.secret_key
    if key:
        return key
    if required:
        raise ConfigError(
            "config.yaml",
            "web.secret_key_env",
            f"the environment variable {settings.web.secret_key_env} is not set; set it to a "
            "long random string (it signs the unsubscribe links), e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`",
        )
    return "preview-only-key: links in this rendering are not for sending"


def send_test(
    factory: sessionmaker[Session],
    settings: Settings,
    mailer: Mailer,
    to: str,
    now: datetime,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[str, RenderedDigest]:
    """Send the digest as it stands to one address; nothing is recorded.

    :returns: the Message-ID sent and the rendering.
    """
    address = check_address(to)
    config = digest_settings(settings, name)
    with factory() as session:
        subscriber = queries.subscriber_by_email(session, address)
        recipient = (
            Recipient(
                address, subscriber.name, subscriber.id, tuple(t.name for t in subscriber.topics)
            )
            if subscriber
            else Recipient(address)
        )
        full = build_digest(session, config, settings, now, since, until)
    mine = edition_for(full, config, recipient)
    key = secret_key(settings, required=True)
    publish_web_version(settings, render_digest(full, config, settings))
    rendered = render_digest(mine, config, settings)
    template = message_template(rendered, settings, now, key)
    sender = parseaddr(settings.email.sender)[1]
    mailer.send(sender, address, template.render(recipient))
    return template.message_id(recipient), rendered


def publish_web_version(settings: Settings, rendered: RenderedDigest) -> Path:
    """Write the digest's web version where its "View in browser" link points."""
    digest = rendered.digest
    path = settings.feeds.output_dir / digest_page_path(digest.name, digest.period_end)
    write_if_changed(path, render_web_page(rendered, settings).encode("utf-8"))
    return path


def add_subscriber(
    factory: sessionmaker[Session],
    address: str,
    name: str | None,
    topics: Iterable[str],
    now: datetime,
) -> str:
    """Subscribe an address (or update an existing subscriber's name and topics).

    :raises DeliveryError: for an address no server would take.
    :raises NotFound: for a topic that is not a tag.
    """
    email_address = check_address(address)
    with transaction(factory) as session:
        tags = {t.slug: t for t in queries.all_tags(session)}
        by_name = {t.name.lower(): t for t in tags.values()}
        chosen = []
        for topic in topics:
            tag = tags.get(topic) or by_name.get(topic.lower())
            if tag is None:
                known = ", ".join(sorted(t.name for t in tags.values())) or "none yet"
                raise NotFound(f"no tag {topic!r} to follow; the tags are: {known}")
            chosen.append(tag)
        subscriber = queries.subscriber_by_email(session, email_address)
        if subscriber is None:
            subscriber = Subscriber(email=email_address, created_at=now)
            session.add(subscriber)
        subscriber.name = " ".join(name.split()) if name else subscriber.name
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.topics = chosen
    return email_address


def iter_recipients(factory: sessionmaker[Session], batch: int = 1000) -> Iterator[Recipient]:
    """Every active subscriber, a batch at a time (keyset paging), so memory stays flat."""
    after = 0
    while True:
        with factory() as session:
            rows = queries.active_subscriber_rows(session, after, batch)
        if not rows:
            return
        for row in rows:
            topics = tuple(row.topics.split(queries.TOPIC_SEPARATOR)) if row.topics else ()
            yield Recipient(row.email, row.name, row.id, topics)
        after = rows[-1].id


def unsubscribe(factory: sessionmaker[Session], subscriber_id: int) -> str | None:
    """Stop a subscriber's emails (idempotent). Their address, or None if unknown."""
    with transaction(factory) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        return subscriber.email


def set_topics(
    factory: sessionmaker[Session], subscriber_id: int, slugs: Iterable[str]
) -> str | None:
    """Set the tags a subscriber follows (unknown slugs are ignored). None if unknown."""
    with transaction(factory) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        wanted = set(slugs)
        subscriber.topics = [t for t in queries.all_tags(session) if t.slug in wanted]
        return subscriber.email


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


class _Editions:
    """One compiled message template per set of topics: compile once per edition."""

    def __init__(
        self, digest: Digest, config: DigestSettings, settings: Settings, date: datetime, key: str
    ) -> None:
        self.digest, self.config, self.settings, self.date, self.key = (
            digest,
            config,
            settings,
            date,
            key,
        )
        self._cache: dict[frozenset[str], MessageTemplate | None] = {}

    def template(self, topics: tuple[str, ...]) -> MessageTemplate | None:
        wanted = frozenset(topics)
        if wanted not in self._cache:
            mine = edition(self.digest, sorted(wanted), self.config.order)
            self._cache[wanted] = (
                None
                if mine is None
                else message_template(
                    render_digest(mine, self.config, self.settings),
                    self.settings,
                    self.date,
                    self.key,
                )
            )
        return self._cache[wanted]


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
    rendered = render_digest(full, config, settings)
    report.subject = rendered.subject
    publish_web_version(settings, rendered)
    editions = _Editions(full, config, settings, started_at, key)
    sender = parseaddr(settings.email.sender)[1]

    for recipients in _batched(iter_recipients(factory, batch), batch):
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
    editions: _Editions,
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
