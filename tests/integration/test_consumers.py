"""What we emit, read by the programs that consume it: a terminal feed reader
(Debian's newsboat) on the feeds served by ``publisher serve``, and a spam
filter (SpamAssassin) on the sample digest.

Each test is skipped, with the package to install, when its program is missing;
``.ci/run`` installs them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.smtp_recorder import free_port
from tests.webclient import wait_until_served

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PUBLISHER = [sys.executable, "-m", "publisher"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployment folder: the repository's config.yaml, the sample posts, built feeds."""
    folder = tmp_path_factory.mktemp("site")
    shutil.copy(ROOT / "config.yaml", folder / "config.yaml")
    env = {**os.environ, "PUBLISHER_CONFIG": str(folder / "config.yaml")}
    env.pop("PUBLISHER_DATABASE_URL", None)
    for command in (["init", "--sample"], ["build"]):
        subprocess.run([*PUBLISHER, *command], cwd=folder, env=env, check=True, capture_output=True)
    return folder


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """``publisher serve`` as an operator starts it, in its own process."""
    port = free_port()
    env = {**os.environ, "PUBLISHER_CONFIG": str(site / "config.yaml")}
    server = subprocess.Popen(
        [*PUBLISHER, "serve", "--port", str(port)],
        cwd=site,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_served(f"{base}/feeds/atom.xml"):
            pytest.fail("publisher serve did not answer within 10 s")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def _sample_posts(site: Path) -> list[tuple[str, str, str]]:
    """(title, author, link) of the sample's published posts, newest first."""
    rows = sqlite3.connect(site / "publisher.db").execute(
        "SELECT p.title, a.name, p.slug FROM posts p JOIN authors a ON a.id = p.author_id "
        "WHERE p.status = 'published' ORDER BY p.published_at DESC"
    )
    return [(t, a, f"https://icscentre.org/news/{s}/") for t, a, s in rows]


# A reader who subscribes to either feed in newsboat sees every post of the
# sample with its own title, author and link, newest first. (newsboat 2.21,
# Debian 12's, reads Atom and RSS; it has no JSON Feed support.)
@pytest.mark.parametrize("feed", ["atom.xml", "rss.xml"])
def test_newsboat_shows_every_post(served: str, site: Path, tmp_path: Path, feed: str) -> None:
    newsboat = shutil.which("newsboat")
    if newsboat is None:
        pytest.skip("newsboat is not installed (apt-get install newsboat; .ci/run does)")
    urls = tmp_path / "urls"
    urls.write_text(f"{served}/feeds/{feed}\n")
    cache = tmp_path / "cache.db"
    subprocess.run(
        [newsboat, "-u", str(urls), "-c", str(cache), "-C", "/dev/null", "-x", "reload"],
        env={**os.environ, "HOME": str(tmp_path)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    seen = sqlite3.connect(cache).execute(
        "SELECT title, author, url FROM rss_item ORDER BY pubDate DESC, id"
    )
    assert [tuple(row) for row in seen] == _sample_posts(site)


# The sample digest, as a mail server's spam filter scores it, stays far from
# SpamAssassin's default threshold of 5 (it scores 0.8 without DNS or DKIM here).
def test_spamassassin_scores_the_digest_low(site: Path) -> None:
    spamassassin = shutil.which("spamassassin")
    if spamassassin is None:
        pytest.skip("spamassassin is not installed (apt-get install spamassassin; .ci/run does)")
    env = {**os.environ, "PUBLISHER_CONFIG": str(site / "config.yaml")}
    subprocess.run(
        [*PUBLISHER, "digest", "render", "--since", "2019-01-01", "--out", "out"],
        cwd=site,
        env=env,
        check=True,
        capture_output=True,
    )
    report = subprocess.run(
        [spamassassin, "-L", "-t"],
        input=(site / "out" / "digest.eml").read_bytes(),
        capture_output=True,
        timeout=120,
    ).stdout.decode("utf-8", "replace")
    status = next(line for line in report.splitlines() if line.startswith("X-Spam-Status:"))
    score = float(status.split("score=")[1].split()[0])
    assert score < 2.5, report[report.find("Content analysis details") :]
