"""Staff tools on SQLite and PostgreSQL: CSV import (bad rows, all-or-nothing, skip-bad,
never re-activating), CSV export, and the data-protection pair export-person and erase."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, MetaData, String, Text, select
from sqlalchemy.orm import Session, sessionmaker

from publisher import queries
from publisher.audience import signup, staff, subscribers as store
from publisher.audience.choices import Choice
from publisher.audience.consent import ConsentGiven
from publisher.audience.csvimport import import_csv
from publisher.audience.export import write_csv
from publisher.audience.recipients import iter_recipients
from publisher.cli import cli
from publisher.config import DigestSettings, Settings
from publisher.db import transaction
from publisher.errors import ImportFailed, NotFound
from publisher.models import Consent, ConsentMethod, SubscriberStatus, Tag
from tests.conftest import CONFIG_TEXT

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

GOOD_AND_BAD = """\
address,name,newsletters,topics,consent date
ann@example.org,Ann,weekly,sdgs,2024-05-01
not-an-address,Bob,weekly,,2024-05-01
cy@example.org,Cy,daily,,2024-05-01
dee@example.org,Dee,,events,2024-05-01
ANN@example.org,Ann again,,,2024-05-01
eve@example.org,Eve,monthly,,01/05/2024
fay@example.org,Fay,weekly;monthly,monthly:events,2024-05-01T10:30:00+02:00
"""


@pytest.fixture
def two(settings: Settings) -> Settings:
    monthly = DigestSettings(name="monthly", schedule="0 9 1 * *")
    return settings.model_copy(update={"digests": (*settings.digests, monthly)})


@pytest.fixture
def tagged(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with transaction(sessions) as session:
        session.add_all([Tag(slug="sdgs", name="SDGs"), Tag(slug="events", name="Events")])
    return sessions


def emails(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(s.email for s in queries.all_subscribers(session))


# Every bad row is named with its line and reason, and all-or-nothing writes nothing.
def test_bad_rows_are_each_reported_and_nothing_is_written(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    with pytest.raises(ImportFailed) as refused:
        import_csv(tagged, two, GOOD_AND_BAD, "list.csv", NOW)
    found = [(e.line, e.field) for e in refused.value.errors]
    assert found == [
        (3, "address"),
        (4, "newsletters"),
        (6, "address"),
        (7, "consent date"),
    ]
    text = str(refused.value)
    assert "list.csv:3: address:" in text
    assert "no newsletter 'daily'; the newsletters are: weekly, monthly" in text
    assert "ANN@example.org is a duplicate of line 2" in text
    assert "cannot read '01/05/2024' as a date" in text
    assert emails(tagged) == []


# A name the store cannot keep is a bad row like any other, on every database: longer
# than its column, or with a NUL (PostgreSQL refused the whole import with a
# traceback; SQLite kept them).
def test_names_the_store_cannot_keep_are_bad_rows(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    rows = (
        "address,name,consent date\n"
        f"gus@example.org,{'G' * 201},2024-05-01\n"
        "hal@example.org,H\x00al,2024-05-01\n"
        "ivy@example.org,  Ivy   Long  ,2024-05-01\n"
    )
    with pytest.raises(ImportFailed) as refused:
        import_csv(tagged, two, rows, "names.csv", NOW)
    assert [(e.line, e.field) for e in refused.value.errors] == [(2, "name"), (3, "name")]
    assert "at most 200 characters" in str(refused.value)
    assert emails(tagged) == []
    report = import_csv(tagged, two, rows, "names.csv", NOW, all_or_nothing=False)
    assert report.added == 1
    with tagged() as session:
        ivy = queries.subscriber_by_email(session, "ivy@example.org")
        assert ivy is not None and ivy.name == "Ivy Long"


# A column named twice is refused at the header (the last one silently won).
def test_a_column_named_twice_is_refused(tagged: sessionmaker[Session], two: Settings) -> None:
    rows = "address,Address,consent date\nann@example.org,bob@example.org,2024-05-01\n"
    with pytest.raises(ImportFailed, match=r"list\.csv:1: the column 'address' is there twice"):
        import_csv(tagged, two, rows, "list.csv", NOW)
    assert emails(tagged) == []


# A list imported again adds nothing: every row is unchanged, and no second consent
# record or event is written for it; a row that adds a newsletter is an update. The
# address column may be called `email`, as other mailers (and `subscribers list`) call it.
def test_a_list_imported_again_is_unchanged(tagged: sessionmaker[Session], two: Settings) -> None:
    rows = "Email,name,newsletters,consent date\nann@example.org,Ann,weekly,2024-05-01\n"
    assert import_csv(tagged, two, rows, "list.csv", NOW).added == 1
    again = import_csv(tagged, two, rows, "list.csv", NOW)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)
    more = import_csv(tagged, two, rows.replace(",weekly,", ",weekly;monthly,"), "more.csv", NOW)
    assert (more.updated, more.unchanged) == (1, 0)
    with tagged() as session:
        assert len(list(session.scalars(select(Consent)))) == 2


def test_skip_bad_imports_the_good_rows(tagged: sessionmaker[Session], two: Settings) -> None:
    report = import_csv(tagged, two, GOOD_AND_BAD, "list.csv", NOW, all_or_nothing=False)
    assert report.added == 3 and len(report.bad) == 4
    assert emails(tagged) == ["ann@example.org", "dee@example.org", "fay@example.org"]
    weekly = {r.email: r.topics for r in iter_recipients(tagged, newsletter="weekly")}
    monthly = {r.email: r.topics for r in iter_recipients(tagged, newsletter="monthly")}
    assert weekly == {
        "ann@example.org": ("SDGs",),
        "dee@example.org": ("Events",),
        "fay@example.org": (),
    }
    assert monthly == {"dee@example.org": ("Events",), "fay@example.org": ("Events",)}
    with tagged() as session:
        fay = queries.subscriber_by_email(session, "fay@example.org")
        assert fay is not None
        consent = session.scalars(select(Consent).where(Consent.subscriber_id == fay.id)).one()
    assert consent.method is ConsentMethod.IMPORT
    assert consent.at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert consent.choices == {"weekly": [], "monthly": ["events"]}


# An import never brings back someone who left, bounced or complained, nor an erased address;
# it only adds newsletters an active subscriber has not left.
def test_import_never_reactivates(tagged: sessionmaker[Session], two: Settings) -> None:
    for address in ["left", "bounced", "complained", "active"]:
        store.add_subscriber(tagged, two, f"{address}@example.org", newsletters=["weekly"], now=NOW)
    with transaction(tagged) as session:
        for address, status in [
            ("left", SubscriberStatus.UNSUBSCRIBED),
            ("bounced", SubscriberStatus.BOUNCED),
            ("complained", SubscriberStatus.COMPLAINED),
        ]:
            found = queries.subscriber_by_email(session, f"{address}@example.org")
            assert found is not None
            found.status = status
    staff.erase_person(tagged, "erased@example.org", NOW)
    rows = "\n".join(
        f"{a}@example.org,,weekly;monthly,,2024-01-01"
        for a in ["left", "bounced", "complained", "active", "erased"]
    )
    report = import_csv(
        tagged, two, "address,name,newsletters,topics,consent date\n" + rows, "again.csv", NOW
    )
    assert report.added == 0 and report.updated == 1
    assert [(line, status) for line, _, status in report.kept] == [
        (2, "unsubscribed"),
        (3, "bounced"),
        (4, "complained"),
    ]
    assert report.suppressed == [6]
    assert emails(tagged) == [
        f"{a}@example.org" for a in ["active", "bounced", "complained", "left"]
    ]
    assert [r.email for r in iter_recipients(tagged, newsletter="monthly")] == [
        "active@example.org"
    ]


def every_text(engine: Engine) -> str:
    """Every text value in every table, joined: what a search for personal data would read."""
    meta = MetaData()
    meta.reflect(engine)
    found: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            texty = [c for c in table.columns if isinstance(c.type, (String, Text))]
            for row in conn.execute(select(*texty)) if texty else []:
                found.extend(str(v) for v in row if v is not None)
    return "\n".join(found)


# After erase, nothing in any table says who the person was, and no import brings them back.
def test_erase_leaves_no_personal_data(
    engine: Engine, tagged: sessionmaker[Session], two: Settings
) -> None:
    asked = signup.request_subscription(
        tagged,
        two,
        "Zoe.Private@Example.org",
        "Zoë Private",
        [Choice("weekly", ("sdgs",))],
        ConsentGiven(
            ConsentMethod.FORM, "Yes please", NOW, "https://x.example/join", "198.51.100.9"
        ),
        NOW,
    )
    store.confirm(tagged, asked.consent_id, NOW)
    store.add_subscriber(tagged, two, "other@example.org", "Other", now=NOW)
    held = staff.export_person(tagged, "zoe.private@example.org")
    assert held["subscriber"]["name"] == "Zoë Private"
    assert [c["client_address"] for c in held["consents"]] == ["198.51.100.9"]
    assert [e["kind"] for e in held["subscriber_events"]] == ["request", "confirm"]
    json.dumps(held)  # JSON-ready

    assert staff.erase_person(tagged, "zoe.private@example.org", NOW)
    texts = every_text(engine).lower()
    for personal in ["zoe.private", "zoë private", "198.51.100.9", "x.example/join"]:
        assert personal not in texts
    assert "other@example.org" in texts, "only that person is erased"
    with pytest.raises(NotFound, match="it was erased"):
        staff.export_person(tagged, "zoe.private@example.org")

    csv_text = "address,consent date\nzoe.private@EXAMPLE.org,2024-01-01\n"
    assert import_csv(tagged, two, csv_text, "back.csv", NOW).suppressed == [2]
    assert "zoe.private@example.org" not in emails(tagged)


# What export writes, import reads back the same.
def test_export_then_import_round_trip(
    tagged: sessionmaker[Session], two: Settings, engine: Engine
) -> None:
    import_csv(tagged, two, GOOD_AND_BAD, "list.csv", NOW, all_or_nothing=False)
    store.add_subscriber(tagged, two, "gone@example.org", now=NOW)
    with tagged() as session:
        gone = queries.subscriber_by_email(session, "gone@example.org")
        assert gone is not None
    store.unsubscribe(tagged, gone.id)
    out = io.StringIO()
    assert write_csv(tagged, out) == 4
    exported = out.getvalue()
    assert exported.splitlines()[0] == "address,name,newsletters,topics,consent date,status"
    assert (
        "fay@example.org,Fay,monthly;weekly,monthly:events,2024-05-01T08:30:00Z,active" in exported
    )
    assert "gone@example.org,,monthly;weekly,,2026-11-27T12:00:00Z,unsubscribed" in exported

    def state(factory: sessionmaker[Session]) -> list[Any]:
        with factory() as session:
            return [
                (s.email, s.name, s.status, staff.choices_of(s))
                for s in queries.all_subscribers(session)
            ]

    before = state(tagged)
    with transaction(tagged) as session:
        for subscriber in queries.all_subscribers(session):
            session.delete(subscriber)
    import_csv(tagged, two, exported, "export.csv", NOW)
    assert sorted(state(tagged)) == sorted(before)


# The commands staff type: one-line errors naming the line, lists for scripts.
def test_subscriber_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT + '  - name: monthly\n    schedule: "0 9 1 * *"\n')

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    run("init", "--sample")
    run("subscribers", "add", "ann@example.org", "--name", "Ann", "--newsletter", "weekly")
    listed = json.loads(run("subscribers", "list", "--format", "json"))
    assert listed == [
        {
            "email": "ann@example.org",
            "name": "Ann",
            "status": "active",
            "newsletters": "weekly (all topics)",
            "since": listed[0]["since"],
        }
    ]
    bad = tmp_path / "list.csv"
    bad.write_text(GOOD_AND_BAD.replace(",sdgs,", ",SDGs,").replace(",events,", ",Events,"))
    refused = run("subscribers", "import", str(bad), code=1)
    assert f"{bad}:3: address:" in refused and f"{bad}:7: consent date:" in refused
    assert "the database is unchanged" in refused
    skipped = run("subscribers", "import", str(bad), "--skip-bad")
    assert "2 added, 0 updated, 1 unchanged" in skipped and "4 bad rows skipped" in skipped

    run("subscribers", "remove", "ann@example.org")
    assert "reactivate" in run("subscribers", "add", "ann@example.org", code=1)
    run("subscribers", "reactivate", "ann@example.org", "--note", "asked by phone")
    shown = run("subscribers", "show", "ann@example.org")
    for event in ["add", "unsubscribe", "removed by staff", "reactivate", "asked by phone"]:
        assert event in shown

    exported = tmp_path / "out.csv"
    assert "3 subscribers written" in run("subscribers", "export", str(exported))
    person = json.loads(run("subscribers", "export-person", "fay@example.org"))
    assert person["subscriber"]["email"] == "fay@example.org"
    run("subscribers", "erase", "fay@example.org", "--yes")
    again = run("subscribers", "import", str(exported))
    assert "skipped, erased at their request: lines" in again
    assert "fay@example.org" not in run("subscribers", "list", "--format", "csv")


# A consent date is read as posts' dates are: a local time the clocks skipped (in the
# site's zone, Berlin here) is a bad row naming it, not moved an hour on unseen.
def test_a_consent_time_the_clocks_skipped_is_a_bad_row(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    rows = (
        "address,name,newsletters,topics,consent date\n"
        "gus@example.org,Gus,weekly,,2024-03-31 02:30\n"
    )
    with pytest.raises(ImportFailed) as refused:
        import_csv(tagged, two, rows, "list.csv", NOW)
    (error,) = refused.value.errors
    assert (error.line, error.field) == (2, "consent date")
    assert "2024-03-31 02:30 does not exist in Europe/Berlin" in str(error)
