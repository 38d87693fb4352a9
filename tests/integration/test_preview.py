"""The preview reloads by itself: its version changes with templates, config and posts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from publisher import db
from publisher.audience.recipients import Recipient
from publisher.config import load_settings
from publisher.content.importer import import_target
from publisher.models import DigestRun
from publisher.web.app import create_app
from publisher.web.preview import PreviewSource
from tests.conftest import CONFIG_TEXT

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def test_version_follows_config_templates_and_posts(tmp_path: Path, sample_dir: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG_TEXT.replace("email:\n", f"email:\n  templates: {templates}\n")
        + f"database:\n  url: sqlite:///{tmp_path / 'p.db'}\n"
    )
    settings = load_settings(config)
    engine = db.make_engine(settings.database.url or "")
    db.upgrade(engine)
    factory = db.make_sessionmaker(engine)
    import_target(factory, str(sample_dir), settings, NOW)
    source = PreviewSource(
        config, None, datetime(2019, 1, 1, tzinfo=UTC), None, Recipient("a@example.org", "A")
    )
    client = create_app(settings, feeds=False, preview=source).test_client()

    def version() -> str:
        return client.get("/version").get_data(as_text=True)

    first = version()
    assert version() == first, "nothing changed, nothing to reload"
    (templates / "digest.txt").write_text("{{ personal.greeting }} custom text\n")
    after_template = version()
    assert after_template != first
    assert client.get("/email.txt").get_data(as_text=True).strip() == "Hello A, custom text"
    config.write_text(config.read_text() + "# edited\n")
    after_config = version()
    assert after_config != after_template
    post = tmp_path / "new.md"
    post.write_text("---\ntitle: Brand new\ndate: 2026-11-20\nstatus: published\n---\nHi\n")
    import_target(factory, str(post), settings, NOW)
    assert version() != after_config
    page = client.get("/").get_data(as_text=True)
    assert "Brand new" in client.get("/email.html").get_data(as_text=True)
    assert "/static/reload.js" in page
    assert "/version" in client.get("/static/reload.js").get_data(as_text=True)


def test_past_digests_can_be_previewed(tmp_path: Path, sample_dir: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT + f"database:\n  url: sqlite:///{tmp_path / 'p.db'}\n")
    settings = load_settings(config)
    engine = db.make_engine(settings.database.url or "")
    db.upgrade(engine)
    factory = db.make_sessionmaker(engine)
    import_target(factory, str(sample_dir), settings, NOW)
    with db.transaction(factory) as session:
        session.add(
            DigestRun(
                name="weekly",
                period_start=datetime(2019, 7, 1, tzinfo=UTC),
                period_end=datetime(2019, 8, 1, tzinfo=UTC),
                started_at=NOW,
                finished_at=NOW,
            )
        )
    source = PreviewSource(
        config, None, datetime(2019, 1, 1, tzinfo=UTC), None, Recipient("a@example.org")
    )
    client = create_app(settings, feeds=False, preview=source).test_client()
    page = client.get("/").get_data(as_text=True)
    assert '<a href="/?run=1">2019-07-01 – 2019-08-01</a>' in page
    past = client.get("/email.html?run=1").get_data(as_text=True)
    assert "Leave No One Behind buzzing ahead" in past  # 25 July 2019
    assert "Leave No One Behind news round-up" not in past  # December
    assert client.get("/?run=99").status_code == 404
    refused = client.get('/?run="><svg onload=alert(1)>')
    assert refused.status_code == 400 and "<svg" not in refused.get_data(as_text=True)
    # a digit that is not 0-9, and a number no row id reaches: refused, not a 500
    for raw in ("%C2%B2", "99999999999999999999999"):
        assert client.get(f"/?run={raw}").status_code == 400
