"""Bounces and complaints, from the samples in tests/data/bounces, on SQLite and PostgreSQL.

The invariant: once a hard bounce or a complaint about an address is ingested, no
later digest goes to it; soft bounces only count, until enough of them fall within
the window; and the same report ingested twice counts once.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from publisher import queries
from publisher.audience.bounces import ingest
from publisher.audience.links import unsubscribe_token
from publisher.audience.reports import Kind, read_report, verp_address
from publisher.audience.subscribers import add_subscriber
from publisher.audience.tokens import make_signer
from publisher.cli import cli
from publisher.config import BounceSettings, Settings
from publisher.content.importer import import_target
from publisher.mail.send import send_digest
from publisher.models import SubscriberStatus
from tests.conftest import CONFIG_TEXT
from tests.integration.smtp_recorder import Recorder, RecordingServer
from tests.integration.test_send import FakeClock, with_smtp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

DATA = Path(__file__).parents[1] / "data" / "bounces"
#: reports made by real mail software (see the README there)
REAL = Path(__file__).parents[1] / "data" / "real-bounces"
NOW = datetime(2019, 12, 6, 9, 0, tzinfo=UTC)
#: in this order, so their ids are those the samples name (1, 2, 3, 4)
PEOPLE = [
    "reader@example.org",
    "gone.away@example.net",
    "full.box@example.com",
    "no.thanks@example.com",
]


@pytest.fixture
def audience(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> sessionmaker[Session]:
    import_target(sessions, str(sample_dir), settings, NOW)
    for address in PEOPLE:
        add_subscriber(sessions, settings, address, now=NOW)
    with sessions() as session:
        ids = [queries.subscriber_by_email(session, a) for a in PEOPLE]
    assert [s.id for s in ids if s] == [1, 2, 3, 4], "the samples name these ids"
    return sessions


def status(sessions: sessionmaker[Session], address: str) -> SubscriberStatus:
    with sessions() as session:
        found = queries.subscriber_by_email(session, address)
        assert found is not None
        return found.status


@pytest.fixture
def server() -> Iterator[Recorder]:
    with RecordingServer(Recorder()) as recorder:
        yield recorder


# A hard bounce (matched by the digest's Message-ID) and a complaint (ARF) stop the
# address for good: the next send skips both; a soft bounce only counts.
def test_hard_bounce_and_complaint_suppress_and_the_next_send_skips_them(
    audience: sessionmaker[Session],
    settings: Settings,
    server: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done = ingest(audience, settings, DATA, NOW)
    assert (done.messages, done.hard, done.soft, done.complaints, done.other) == (5, 1, 1, 1, 1)
    assert done.unmatched == [
        (
            str(DATA / "exim-no-such-user.eml"),
            "hard: no digest Message-ID and no subscriber at left.years.ago@example.co.uk",
        )
    ]
    assert status(audience, "gone.away@example.net") is SubscriberStatus.BOUNCED
    assert status(audience, "no.thanks@example.com") is SubscriberStatus.COMPLAINED
    assert status(audience, "full.box@example.com") is SubscriberStatus.ACTIVE

    again = ingest(audience, settings, DATA, NOW)
    assert (again.hard, again.soft, again.complaints, again.repeated) == (0, 0, 0, 3)

    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    (report,) = send_digest(audience, with_smtp(settings, server.port), NOW, clock=FakeClock(NOW))
    assert report.finished
    assert sorted(server.by_recipient()) == ["full.box@example.com", "reader@example.org"]


# A DSN as a real server sent it (Microsoft Exchange, wrapped by a scanning gateway
# in multipart/mixed; from flufl.bounce's test data) is read as a hard bounce of the
# address it names: that address is suppressed and the next send skips it.
def test_a_real_hard_bounce_suppresses_and_the_next_send_skips_it(
    audience: sessionmaker[Session],
    settings: Settings,
    server: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_subscriber(audience, settings, "userx@example.com", now=NOW)
    report = read_report((REAL / "dsn-exchange-user-unknown.eml").read_bytes())
    assert (report.kind, report.detail, report.addresses) == (
        Kind.HARD,
        "5.1.1",
        ("userx@example.com",),
    )
    done = ingest(audience, settings, REAL / "dsn-exchange-user-unknown.eml", NOW)
    assert (done.messages, done.hard, done.unmatched) == (1, 1, [])
    assert status(audience, "userx@example.com") is SubscriberStatus.BOUNCED

    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    (sent,) = send_digest(audience, with_smtp(settings, server.port), NOW, clock=FakeClock(NOW))
    assert sent.finished
    assert sorted(server.by_recipient()) == sorted(PEOPLE)


# A complaint as a real feedback-loop generator writes it (Dovecot's Pigeonhole,
# whose Sieve ``report`` action is what a Dovecot provider's "report spam" button
# runs) is read as a complaint about the recipient it names: that address is
# suppressed and the next send skips it.
def test_a_real_complaint_suppresses_and_the_next_send_skips_it(
    audience: sessionmaker[Session],
    settings: Settings,
    server: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample = REAL / "arf-dovecot-pigeonhole-abuse.eml"
    report = read_report(sample.read_bytes())
    assert (report.kind, report.addresses) == (Kind.COMPLAINT, ("no.thanks@example.com",))
    done = ingest(audience, settings, sample, NOW)
    assert (done.messages, done.complaints, done.unmatched) == (1, 1, [])
    assert status(audience, "no.thanks@example.com") is SubscriberStatus.COMPLAINED

    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    (sent,) = send_digest(audience, with_smtp(settings, server.port), NOW, clock=FakeClock(NOW))
    assert sent.finished
    assert sorted(server.by_recipient()) == sorted(set(PEOPLE) - {"no.thanks@example.com"})


def renamed(path: Path, number: int) -> bytes:
    """The sample, as a later report of the same kind (its own Message-ID)."""
    return path.read_bytes().replace(b"4N3LwQ1kqXz9sRv@", f"4N3LwQ1kqXz9s{number:02d}@".encode())


# Soft bounces count within the window: the limit-th makes the subscriber bounced.
def test_soft_bounces_suppress_after_the_limit(
    audience: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    strict = settings.model_copy(update={"bounces": BounceSettings(soft_limit=3, soft_days=30)})
    sample = DATA / "dsn-postfix-mailbox-full-delayed.eml"
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    for n in range(2):
        box.add(renamed(sample, n))
    assert ingest(audience, strict, tmp_path / "Maildir", NOW).soft == 2
    assert status(audience, "full.box@example.com") is SubscriberStatus.ACTIVE
    box.add(renamed(sample, 2))
    done = ingest(audience, strict, tmp_path / "Maildir", NOW)
    assert (done.soft, done.repeated) == (1, 2)
    assert done.suppressed == ["full.box@example.com: bounced"]


# The mailto: half of List-Unsubscribe: a mail with "unsubscribe TOKEN" unsubscribes;
# an mbox is read like a Maildir.
def test_mailto_unsubscribe_from_an_mbox(
    audience: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    box = mailbox.mbox(str(tmp_path / "bounces.mbox"))
    tokens = [make_signer("test-secret").dumps("1"), "forged.token"]
    tokens.append(unsubscribe_token("test-secret", "2", "weekly"))
    for token in tokens:
        request = EmailMessage()
        request["From"] = "reader@example.org"
        request["To"] = "news@example.org"
        request["Subject"] = f"unsubscribe {token}"
        request["Message-ID"] = f"<{len(token)}@example.org>"
        box.add(request)
    box.flush()
    done = ingest(audience, settings, tmp_path / "bounces.mbox", NOW)
    assert done.unsubscribes == 2 and len(done.unmatched) == 1
    assert "not valid" in done.unmatched[0][1]
    assert status(audience, "reader@example.org") is SubscriberStatus.UNSUBSCRIBED
    # a link of one newsletter leaves that one (here the only one: so, everything)
    assert status(audience, "gone.away@example.net") is SubscriberStatus.UNSUBSCRIBED


def test_reports_are_read_as_their_kind() -> None:
    kinds = {f.name: read_report(f.read_bytes()) for f in DATA.glob("*.eml")}
    assert kinds["dsn-postfix-user-unknown.eml"].kind is Kind.HARD
    assert kinds["dsn-postfix-user-unknown.eml"].detail.startswith("5.1.1 smtp; 550 5.1.1")
    assert kinds["dsn-postfix-mailbox-full-delayed.eml"].verp_id == 3
    assert kinds["arf-abuse-complaint.eml"].subscriber_id == 4
    assert kinds["out-of-office.eml"].kind is Kind.OTHER
    assert verp_address("news@example.org", 3) == "news+bounce-3@example.org"


# Staff see every event: `subscribers show` lists the bounce with its diagnostic.
def test_ingest_command_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT + "bounces:\n  soft_limit: 2\n  soft_days: 7\n")

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("init")
    for address in PEOPLE:
        run("subscribers", "add", address)
    out = run("bounces", "ingest", str(DATA / "dsn-postfix-user-unknown.eml"))
    assert "1 hard bounces" in out and "gone.away@example.net: bounced" in out
    shown = run("subscribers", "show", "gone.away@example.net")
    assert "status: bounced" in shown and "bounce" in shown and "5.1.1" in shown


# A message the bounce detectors trip on (no From: at all) is other mail, said in the
# report's one line: the detectors' tracebacks (logged by flufl.bounce) stay out of it.
def test_a_message_the_detectors_trip_on_is_other_mail_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    with caplog.at_level(logging.DEBUG):
        report = read_report(b"Subject: x\n\nbody\n")
    assert report.kind is Kind.OTHER
    assert not [r for r in caplog.records if r.exc_info]


# Invariant: a bounce is charged to the subscriber its Message-ID names only if that
# digest went to them (a delivery of theirs carries it) or the report names their
# address: a Message-ID made up, or an erased subscriber's whose id someone else holds,
# charges the address the report names instead. A forwarded address that bounced is
# charged by the digest it returns.
def test_a_bounce_is_charged_to_whom_the_digest_went(
    audience: sessionmaker[Session],
    settings: Settings,
    server: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    dsn = (DATA / "dsn-postfix-user-unknown.eml").read_bytes()
    # names subscriber 2 (gone.away) in its Message-ID, with no such delivery, and
    # reader@example.org (subscriber 1) as the address that failed
    forged = tmp_path / "forged.eml"
    forged.write_bytes(dsn.replace(b"gone.away@example.net", b"reader@example.org"))
    assert ingest(audience, settings, forged, NOW).hard == 1
    assert status(audience, "reader@example.org") is SubscriberStatus.BOUNCED
    assert status(audience, "gone.away@example.net") is SubscriberStatus.ACTIVE

    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    send_digest(audience, with_smtp(settings, server.port), NOW, clock=FakeClock(NOW))
    (sent,) = server.by_recipient()["full.box@example.com"]
    forwarded = tmp_path / "forwarded.eml"
    forwarded.write_bytes(
        dsn.replace(b"gone.away@example.net", b"full.box@forwarded.example")
        .replace(b"<digest.weekly.201912060800.2@news.example.org>", sent.message_id.encode())
        .replace(b"Message-Id: <2019", b"Message-Id: <forwarded-2019")
    )
    assert ingest(audience, settings, forwarded, NOW).hard == 1
    assert status(audience, "full.box@example.com") is SubscriberStatus.BOUNCED
