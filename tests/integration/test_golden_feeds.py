"""The sample's feeds, byte for byte: every document the build writes for the
shipped sample posts is compared with tests/golden/feeds/.

A change to the output shows here as a diff to review. When it is meant,
regenerate the files and commit them with the change that explains it:

    make golden   # or: pytest tests/integration/test_golden_feeds.py --regen-golden
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.feeds.build import publish_feeds
from tests.integration.test_build import NOW, small_pages

GOLDEN = Path(__file__).parent.parent / "golden" / "feeds"

pytestmark = pytest.mark.integration


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


# Full content, three entries a page (so the archive pages and their links are
# there too), tag and author feeds: on SQLite and on PostgreSQL alike.
def test_sample_feeds_are_byte_for_byte_the_golden_files(
    sessions: sessionmaker[Session],
    settings: Settings,
    sample_dir: Path,
    request: pytest.FixtureRequest,
) -> None:
    settings = small_pages(settings)
    import_target(sessions, str(sample_dir), settings, NOW)
    publish_feeds(sessions, settings, NOW, ping=lambda hub, topics: [])
    written = files_under(settings.feeds.output_dir)
    if os.environ.get("PUBLISHER_REGENERATE_GOLDEN") or request.config.getoption("--regen-golden"):
        for name, data in written.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_bytes(data)
    golden = files_under(GOLDEN)
    assert sorted(written) == sorted(golden)
    for name, data in written.items():
        assert data == golden[name], f"{name} differs from tests/golden/feeds/{name}"
