"""Golden file: the sample digest's text part, byte for byte, as a reader gets it
(as Pelican checks its own output). The sample's feeds have theirs in
``tests/integration/test_golden_feeds.py`` (every document, archive pages too).

A change shows up as a diff to review. When the change is meant, rewrite the
golden files and commit them with the change that made them::

    make golden   # pytest tests/test_golden.py tests/integration/test_golden_feeds.py \
                  #   --regen-golden

The sample is loaded into a SQLite file (no server needed), at a fixed time,
for a fixed reader, so the output is the same on every machine.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher import db
from publisher.audience.recipients import Recipient
from publisher.config import parse_settings
from publisher.content.importer import import_target
from publisher.mail.compose import compose
from tests.conftest import CONFIG_TEXT

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SINCE = datetime(2019, 1, 1, tzinfo=UTC)
READER = Recipient("reader@example.org", "Alex Reader", 42, ())


@pytest.fixture(scope="module")
def output(
    tmp_path_factory: pytest.TempPathFactory, sample_dir: Path
) -> Iterator[dict[str, bytes]]:
    """The golden files' bytes, made from the sample today."""
    folder = tmp_path_factory.mktemp("golden")
    settings = parse_settings(CONFIG_TEXT, source="test-config.yaml", base_dir=folder)
    engine = db.make_engine(f"sqlite:///{folder / 'sample.db'}")
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    import_target(sessions, str(sample_dir), settings, NOW)
    made = {}
    with sessions() as session:
        _, composed = compose(session, settings, settings.digests[0], READER, NOW, since=SINCE)
    message = email.message_from_bytes(composed.message, policy=email.policy.strict)
    text = message.get_body(("plain",))
    assert text is not None
    made["digest.txt"] = text.get_content().replace("\r\n", "\n").encode()
    engine.dispose()
    yield made


@pytest.mark.parametrize("name", ["digest.txt"])
def test_output_matches_the_golden_file(
    output: dict[str, bytes], name: str, request: pytest.FixtureRequest
) -> None:
    golden = GOLDEN / name
    if request.config.getoption("--regen-golden"):
        golden.write_bytes(output[name])
    assert golden.exists(), f"{golden} is missing: run `make golden` and commit it"
    assert output[name].decode() == golden.read_text(encoding="utf-8"), (
        f"{name} differs from {golden}; if the change is meant, run `make golden` "
        "and commit the new file"
    )
