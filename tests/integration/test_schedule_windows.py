"""A newsletter's windows, with a controlled clock and a real SMTP server (aiosmtpd): an
empty one skipped (nothing sent) or sent as the "nothing new" note (``empty: note``)
through the same pipeline as a digest, and the first window before any digest went out."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from publisher.audience.subscribers import add_subscriber
from publisher.config import DigestSettings, Settings
from publisher.content.importer import import_target
from publisher.errors import EmptyDigest
from publisher.mail.send import send_digest
from publisher.models import DigestRun
from publisher.schedule.service import Service
from tests.integration.smtp_recorder import Recorder, RecordingServer
from tests.integration.test_schedule import SUNDAY, Clock, Outbox, monday, records, write_post


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every send here signs its readers' links."""
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")


@pytest.fixture
def smtp() -> Iterator[Recorder]:
    with RecordingServer(Recorder()) as recorder:
        yield recorder


def sending_to(settings: Settings, smtp: Recorder, empty: str) -> Settings:
    """The test settings, sending to the recording server; the weekly newsletter's
    empty windows ``skip``ped or sent as a ``note``."""
    server = settings.email.smtp.model_copy(
        update={"host": "127.0.0.1", "port": smtp.port, "security": "none"}
    )
    weekly = settings.digests[0].model_copy(update={"empty": empty})
    return settings.model_copy(
        update={
            "email": settings.email.model_copy(update={"smtp": server}),
            "digests": (weekly,),
        }
    )


def windows(sessions: sessionmaker[Session]) -> list[tuple[datetime, datetime, str]]:
    """Every run: its window and its post ids, oldest first."""
    with sessions() as session:
        runs = session.scalars(select(DigestRun).order_by(DigestRun.period_start))
        return [(r.period_start, r.period_end, r.post_ids or "") for r in runs]


def watched(
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp: Recorder,
    folder: Path,
    readers: tuple[str, ...] = ("reader@example.org",),
) -> tuple[Service, Outbox, DigestSettings, Clock, Path, Settings]:
    """A weekly newsletter (empty windows skipped) sending to ``smtp``, ``readers``
    subscribed, the scheduler watching it from Sunday, and "Alpha news" imported for
    its first digest (due ``monday(0)``): the scheduler, what the server received, the
    newsletter, the clock, the posts' folder and the settings."""
    settings = sending_to(settings, smtp, "skip")
    for address in readers:
        add_subscriber(sessions, settings, address, "Reader", [], now=SUNDAY)
    clock = Clock(SUNDAY)
    run, config = Service(settings, sessions, clock), settings.digests[0]
    posts = folder / "posts"
    run.check(config)
    write_post(posts, "Alpha news", SUNDAY + timedelta(hours=2))
    import_target(sessions, str(posts), settings, SUNDAY)
    return run, Outbox(smtp), config, clock, posts, settings


def strict(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    return message


def write_tagged_post(folder: Path, title: str, when: datetime, tag: str) -> None:
    slug = title.lower().replace(" ", "-")
    folder.mkdir(exist_ok=True)
    (folder / f"{slug}.md").write_text(
        f"---\ntitle: {title}\ndate: {when.isoformat()}\nstatus: published\ntags: [{tag}]\n"
        f"---\nWhat happened: {title}.\n"
    )


# `empty: skip` (the default): an empty window sends nothing and makes no run, so the
# window stays where the last digest ended. That is the right choice: a post that reaches
# the store after the empty send with a date inside that window (a late import, a
# back-dated file) still goes out with the next digest; had the skip closed the window,
# it would be lost. Every post is in exactly one digest, and the windows are contiguous.
def test_an_empty_window_skipped_sends_nothing_and_loses_no_post(
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp: Recorder,
    tmp_path: Path,
) -> None:
    run, outbox, config, clock, posts, settings = watched(sessions, settings, smtp, tmp_path)
    clock.now = monday(0)
    run.check(config)
    assert len(outbox.delivered) == 1 and outbox.titles(0) == {"Alpha news"}

    clock.now = monday(1)  # a week without posts
    run.check(config)
    clock.now += timedelta(minutes=5)
    run.check(config)
    assert len(outbox.delivered) == 1, "an empty window sends nothing"
    assert records(sessions)[-1] == (monday(1), "empty")
    assert [w[1] for w in windows(sessions)] == [monday(0)], "no run: the window stays"

    # imported after the empty send: one dated inside the skipped week, one after it
    write_post(posts, "Beta news", monday(1) - timedelta(days=1))
    write_post(posts, "Gamma news", monday(1) + timedelta(days=1))
    import_target(sessions, str(posts), settings, monday(1) + timedelta(days=2))
    clock.now = monday(2)
    run.check(config)
    assert len(outbox.delivered) == 2
    assert outbox.titles(1) == {"Beta news", "Gamma news"}, "the skipped week's post is sent"
    (first, second) = windows(sessions)
    assert first[1] == second[0] == monday(0) and second[1] == monday(2)
    assert [outcome for _, outcome in records(sessions)] == ["watching", "sent", "empty", "sent"]


# `empty: note`: the empty window's send is the "nothing new" note, claimed once like any
# digest (a second check or scheduler sends nothing more), sent to the whole audience
# (a reader who follows one topic too) with the digest's List-Id and one-click
# unsubscribe headers, strict-parsing; its run closes the window, so the next digest
# starts where the note's window ended: nothing skipped, nothing repeated. A staff
# member's `digest send` of an empty window still sends nothing.
def test_an_empty_window_sends_the_nothing_new_note_once_and_closes_the_window(
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp: Recorder,
    tmp_path: Path,
) -> None:
    settings = sending_to(settings, smtp, "note")
    posts = tmp_path / "posts"
    write_tagged_post(posts, "Alpha news", SUNDAY - timedelta(days=10), "Events")
    import_target(sessions, str(posts), settings, SUNDAY)
    add_subscriber(sessions, settings, "reader@example.org", "Reader", [], now=SUNDAY)
    add_subscriber(sessions, settings, "fan@example.org", "Fan", ["Events"], now=SUNDAY)
    clock = Clock(SUNDAY)
    run, outbox, config = Service(settings, sessions, clock), Outbox(smtp), settings.digests[0]
    run.check(config)
    write_tagged_post(posts, "Beta news", SUNDAY + timedelta(hours=2), "Events")
    import_target(sessions, str(posts), settings, SUNDAY + timedelta(hours=3))
    clock.now = monday(0)
    run.check(config)
    assert len(outbox.delivered) == 1 and outbox.titles(0) == {"Beta news"}
    digest = strict(outbox.delivered[0]["reader@example.org"])

    clock.now = monday(1)  # a week without posts: the note
    run.check(config)
    clock.now += timedelta(minutes=5)
    run.check(config)
    Service(settings, sessions, clock).check(config)  # a second scheduler
    assert len(outbox.delivered) == 2, "the note is sent once"
    notes = outbox.delivered[1]
    assert sorted(notes) == ["fan@example.org", "reader@example.org"]
    note = strict(notes["reader@example.org"])
    assert note["Subject"] == "Test Centre: nothing new since 5 January 2026"
    for header in ("From", "List-Id", "List-Unsubscribe-Post"):
        assert note[header] == digest[header]
    assert "https://" in note["List-Unsubscribe"] and "mailto:" in note["List-Unsubscribe"]
    assert note["Message-ID"].startswith("<digest.weekly.202601120800.")
    text = " ".join(note.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert "Hello Reader, nothing new was published on Test Centre since 5 January 2026" in text
    assert "Unsubscribe: https://" in text and "Alpha news" not in text
    html = note.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "nothing new was published" in html and 'style="' in html
    assert "Beta news" not in html
    assert records(sessions)[-1] == (monday(1), "note")
    assert windows(sessions)[-1] == (monday(0), monday(1), "[]"), "the note closes its window"

    with pytest.raises(EmptyDigest):  # staff: nothing new since the note, nothing sent
        send_digest(sessions, settings, monday(1) + timedelta(hours=2))

    write_tagged_post(posts, "Gamma news", monday(1) + timedelta(days=1), "Events")
    import_target(sessions, str(posts), settings, monday(1) + timedelta(days=2))
    clock.now = monday(2)
    run.check(config)
    assert len(outbox.delivered) == 3 and outbox.titles(2) == {"Gamma news"}
    spans = [(start, end) for start, end, _ in windows(sessions)]
    assert [end for _, end in spans] == [monday(0), monday(1), monday(2)]
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False)), "contiguous"
    assert [outcome for _, outcome in records(sessions)] == ["watching", "sent", "note", "sent"]


# Before any digest went out, a send skipped past its grace (or found empty) leaves its
# posts for the next send, as every later one does: the first window starts at the fire
# time before the first send the scheduler dealt with, not one period before its own end.
def test_the_first_send_skipped_carries_its_posts_into_the_next(
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp: Recorder,
    tmp_path: Path,
) -> None:
    run, outbox, config, clock, posts, settings = watched(sessions, settings, smtp, tmp_path)
    clock.now = monday(0) + timedelta(hours=10)  # down over the first send, past its grace
    run.check(config)
    assert records(sessions)[-1] == (monday(0), "skipped") and not outbox.delivered
    write_post(posts, "Beta news", monday(0) + timedelta(days=1))
    import_target(sessions, str(posts), settings, clock.now)
    clock.now = monday(1)
    run.check(config)
    assert outbox.titles(0) == {"Alpha news", "Beta news"}, "the skipped send's post is carried"
    assert [(start, end) for start, end, _ in windows(sessions)] == [(monday(-1), monday(1))]


# An address that answers 4xx to every try (greylisting gone wrong, a full mailbox)
# keeps its delivery waiting for a retry, up to email.retry_hours; that run waits, and
# does not hold up the next period's digest: the next week's goes out to everyone on
# time, and the scheduler does not resume the waiting run at every check meanwhile.
def test_a_deferred_address_does_not_hold_up_the_next_digest(
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp: Recorder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp.script = lambda step, address, n: (
        "451 4.2.2 mailbox full, try later" if address == "full@example.org" else None
    )
    readers = ("reader@example.org", "full@example.org")
    run, outbox, config, clock, posts, settings = watched(
        sessions, settings, smtp, tmp_path, readers
    )
    clock.now = monday(0)
    run.check(config)
    assert outbox.titles(0) == {"Alpha news"}
    assert records(sessions)[-1] == (monday(0), "open"), "one delivery waits for a retry"
    tries = smtp.seen[("RCPT", "full@example.org")]
    clock.now += timedelta(minutes=5)
    caplog.clear()
    run.check(config)
    assert smtp.seen[("RCPT", "full@example.org")] == tries, "nothing was due to retry"
    assert not caplog.records, "a waiting run is left alone, in silence"

    write_post(posts, "Beta news", monday(1) - timedelta(days=1))
    import_target(sessions, str(posts), settings, monday(1) - timedelta(hours=1))
    clock.now = monday(1)
    run.check(config)
    assert len(outbox.delivered) == 2 and outbox.titles(1) == {"Beta news"}
    (first, second) = windows(sessions)
    assert first[1] == second[0] == monday(0) and second[1] == monday(1)


# A post dated inside a digest's period but imported after that digest went out
# (written in the morning, imported after the 9 o'clock send) was in no digest: it
# goes out with the next one, once; a post dated further back (an archive brought in)
# does not, and no post is in two digests.
def test_a_post_imported_after_its_period_was_sent_goes_out_with_the_next(
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp: Recorder,
    tmp_path: Path,
) -> None:
    run, outbox, config, clock, posts, settings = watched(sessions, settings, smtp, tmp_path)
    clock.now = monday(0)
    run.check(config)
    assert outbox.titles(0) == {"Alpha news"}

    # imported after the send: one dated in the period it closed, one long before it
    write_post(posts, "Beta news", monday(0) - timedelta(hours=1))
    write_post(posts, "Gamma news", SUNDAY - timedelta(weeks=5))
    write_post(posts, "Delta news", monday(0) + timedelta(days=2))
    import_target(sessions, str(posts), settings, monday(0) + timedelta(hours=2))
    clock.now = monday(1)
    run.check(config)
    assert outbox.titles(1) == {"Beta news", "Delta news"}

    clock.now = monday(2)  # nothing new: nothing sent, Beta news not again
    run.check(config)
    assert len(outbox.delivered) == 2 and records(sessions)[-1] == (monday(2), "empty")
