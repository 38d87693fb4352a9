"""Import 10,000 generated Markdown posts into a fresh SQLite database.

The posts are bench/corpus.py's (500 tags, 50 authors, ~3 KB of Markdown with
tables and videos), as in bench/peers.py. Prints posts imported per second
(goal: at least 3,000/s) and peak memory, for a first import and for a
re-import of the unchanged files, with the load average (the machine is shared).

    python bench/import.py [--posts N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import corpus

from publisher import db
from publisher.config import parse_settings
from publisher.content.importer import import_target
from publisher.content.sources import collect_sources, read_drafts

CONFIG = """\
site: {title: Bench, base_url: "https://bench.example.org/", postal_address: x,
       timezone: Europe/Berlin}
email: {sender: "b@bench.example.org"}
"""


def peak_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest worker, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        posts = root / "posts"
        posts.mkdir()
        corpus.write_posts(posts, list(corpus.generate(args.posts)))
        size = sum(p.stat().st_size for p in posts.iterdir()) / args.posts
        settings = parse_settings(CONFIG, "bench-config.yaml", root)
        engine = db.make_engine(f"sqlite:///{root / 'bench.db'}")
        db.upgrade(engine)
        factory = db.make_sessionmaker(engine)
        now = datetime.now(UTC)

        t0 = time.perf_counter()
        found = read_drafts(collect_sources(str(posts)), settings.site.zone)
        t_read = time.perf_counter() - t0
        del found

        t0 = time.perf_counter()
        report = import_target(factory, str(posts), settings, now)
        first = time.perf_counter() - t0
        assert len(report.created) == args.posts, report

        t0 = time.perf_counter()
        again = import_target(factory, str(posts), settings, now)
        second = time.perf_counter() - t0
        assert len(again.unchanged) == args.posts

        own, workers = peak_mb()
        print(
            f"posts: {args.posts:,} generated Markdown files, {size:,.0f} bytes each on average; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"read + validate + render only: {t_read:.2f} s ({args.posts / t_read:,.0f} posts/s)")
        print(
            f"first import (new database):   {first:.2f} s -> {args.posts / first:,.0f} posts/s"
            "  (goal: >= 3,000 posts/s)"
        )
        print(
            f"re-import, nothing changed:    {second:.2f} s -> {args.posts / second:,.0f} posts/s"
        )
        print(f"peak memory: {own:,.0f} MB (main process), {workers:,.0f} MB (largest worker)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
