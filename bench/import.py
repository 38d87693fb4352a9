"""Import 10,000 generated Markdown posts into a fresh SQLite database.

Prints posts imported per second (goal: at least 1,000/s) and peak memory,
for a first import and for a re-import of the unchanged files.

    python bench/import.py [--posts N]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher import db
from publisher.config import parse_settings
from publisher.content.importer import collect_sources, import_target, read_drafts

CONFIG = """\
site: {title: Bench, base_url: "https://bench.example.org/", postal_address: x,
       timezone: Europe/Berlin}
email: {sender: "b@bench.example.org"}
"""
WORDS = (
    "civil society partnership inclusive development coalition report network voices "
    "heard count implementation sustainable goals community data policy rights"
).split()


def sentence(rng: random.Random, n: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def generate(folder: Path, count: int) -> None:
    """Posts of about 2–3 KB: headings, paragraphs, a list, a quote, a link."""
    rng = random.Random(42)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    authors = [f"Author {i}" for i in range(50)]
    tags = [f"Topic {i}" for i in range(200)]
    for i in range(count):
        when = (start + timedelta(hours=7 * i)).isoformat()
        paragraphs = "\n\n".join(" ".join(sentence(rng) for _ in range(4)) for _ in range(4))
        body = (
            f"{paragraphs}\n\n## Section {i}\n\n"
            + "\n".join(f"- {sentence(rng, 8)}" for _ in range(4))
            + f"\n\n> “{sentence(rng)}”\n\nRead [the report](https://example.org/r/{i}).\n"
        )
        (folder / f"post-{i:05d}.md").write_text(
            f"---\ntitle: Post {i} – {sentence(rng, 5)}\ndate: {when}\nstatus: published\n"
            f"author: {rng.choice(authors)}\ntags: [{', '.join(rng.sample(tags, 3))}]\n"
            f"---\n{body}",
            encoding="utf-8",
        )


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
        generate(posts, args.posts)
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
        print(f"posts: {args.posts:,} generated Markdown files, {size:,.0f} bytes each on average")
        print(f"read + validate + render only: {t_read:.2f} s ({args.posts / t_read:,.0f} posts/s)")
        print(
            f"first import (new database):   {first:.2f} s -> {args.posts / first:,.0f} posts/s"
            "  (goal: >= 1,000 posts/s)"
        )
        print(
            f"re-import, nothing changed:    {second:.2f} s -> {args.posts / second:,.0f} posts/s"
        )
        print(f"peak memory: {own:,.0f} MB (main process), {workers:,.0f} MB (largest worker)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
