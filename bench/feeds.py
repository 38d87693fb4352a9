"""Feed build benchmark: 100,000 posts, 500 tags, 50 authors, ~3 KB of HTML each (SQLite).

Prints, as the feeds issue asks:
- the full build time and its peak memory (a fresh process, so the figure is the build's own);
- the incremental build time after adding one post;
- the time feedgen alone takes to serialise the same entries into the same documents
  (Atom and RSS; JSON Feed is ours and has no feedgen floor): the floor.
Goals: full build within 2x of the floor; peak memory under 500 MB; one new post < 1 s.

    python bench/feeds.py [--posts N]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from publisher import db
from publisher.config import Settings, parse_settings
from publisher.models import Attachment, Author, Post, PostStatus, Tag, post_tags

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CONFIG = """\
site: {{title: Bench Centre, base_url: "https://bench.example.org/", postal_address: x}}
email: {{sender: "b@bench.example.org"}}
database: {{url: "sqlite:///{db}"}}
feeds: {{output_dir: "{out}"}}
"""
WORDS = (
    "civil society partnership inclusive development coalition report network voices heard "
    "count implementation sustainable goals community data policy rights solidarity"
).split()


def paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def body(rng: random.Random, i: int) -> str:
    """About 3 KB of HTML: paragraphs, a heading, a list, a link, a quote."""
    parts = [f"<p>{paragraph(rng, 80)}</p>" for _ in range(3)]
    parts.append(f"<h2>Section {i}</h2>")
    parts.append("<ul>" + "".join(f"<li>{paragraph(rng, 10)}</li>" for _ in range(4)) + "</ul>")
    parts.append(f'<p>Read <a href="https://example.org/reports/{i}">the report</a>.</p>')
    parts.append(f"<blockquote><p>“{paragraph(rng, 30)}”</p></blockquote>")
    return "\n".join(parts) + "\n"


def generate(settings: Settings, count: int) -> None:
    engine = db.make_engine(settings.database.url or "")
    db.upgrade(engine)
    rng = random.Random(7)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Author),
            [{"id": i + 1, "slug": f"author-{i}", "name": f"Author {i}"} for i in range(50)],
        )
        conn.execute(
            insert(Tag),
            [{"id": i + 1, "slug": f"topic-{i}", "name": f"Topic {i}"} for i in range(500)],
        )
        for lo in range(0, count, 5000):
            posts, links, files = [], [], []
            for i in range(lo, min(lo + 5000, count)):
                when = start + timedelta(minutes=137 * i)
                posts.append(
                    {
                        "id": i + 1,
                        "uid": f"tag:bench.example.org,2000:{i}",
                        "slug": f"post-{i}",
                        "title": f"Post {i}: {paragraph(rng, 6)}",
                        "summary": None,
                        "source_format": "html",
                        "body_source": "",
                        "body_html": body(rng, i),
                        "status": PostStatus.PUBLISHED,
                        "published_at": when,
                        "updated_at": when,
                        "author_id": rng.randrange(50) + 1,
                        "source_hash": f"h{i}",
                    }
                )
                links += [{"post_id": i + 1, "tag_id": t + 1} for t in rng.sample(range(500), 3)]
                if i % 10 == 0:
                    files.append(
                        {
                            "post_id": i + 1,
                            "position": 0,
                            "media_type": "application/pdf",
                            "url": f"https://bench.example.org/files/{i}.pdf",
                            "title": "Report (PDF)",
                            "length": 100_000 + i,
                        }
                    )
            conn.execute(insert(Post), posts)
            conn.execute(insert(post_tags), links)
            if files:
                conn.execute(insert(Attachment), files)
    engine.dispose()


def build(config: Path) -> None:
    """Child process: one build, its time and its own peak memory, as JSON."""
    from publisher.config import load_settings
    from publisher.feeds.build import publish_feeds

    settings = load_settings(config)
    factory = db.make_sessionmaker(db.make_engine(settings.database.url or ""))
    t0 = time.perf_counter()
    report = publish_feeds(factory, settings, NOW, ping=lambda hub, topics: [])
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak,
                "worker_peak_mb": workers,
                "documents": report.documents,
                "rendered": report.rendered,
                "written": len(report.written),
            }
        )
    )


def floor(config: Path) -> None:
    """Child process: feedgen alone, on the same entries grouped into the same documents."""
    from feedgen.entry import FeedEntry
    from feedgen.feed import FeedGenerator

    from publisher import queries
    from publisher.config import load_settings
    from publisher.feeds.build import feed_specs
    from publisher.feeds.names import Names
    from publisher.feeds.plan import plan_documents
    from publisher.urls import Urls

    settings = load_settings(config)
    factory = db.make_sessionmaker(db.make_engine(settings.database.url or ""))
    urls = Urls.from_settings(settings)
    with factory() as session:  # loading is not timed: the floor is feedgen's work only
        names = Names.load(session)
        stubs = names.stubs(queries.feed_stubs(session, NOW), queries.tag_ids_by_post(session))
        rows = queries.feed_rows(session, [s.id for s in stubs])
    site, tag_specs, author_specs = feed_specs(
        settings, urls, names.authors.values(), names.tags.values()
    )
    plans = plan_documents(site, tag_specs, author_specs, stubs, settings.feeds.items, urls)
    tags_of = {s.id: names.categories(s.tags) for s in stubs}

    t0 = time.perf_counter()
    entries = {}
    for post_id, r in rows.items():
        fe = FeedEntry()
        fe.id(r.uid)
        fe.guid(r.uid, permalink=False)
        fe.title(r.title)
        fe.link(href=urls.post(r.slug), rel="alternate")
        fe.published(r.published_at)
        fe.updated(r.updated_at)
        fe.author({"name": names.authors[r.author_id].name})
        fe.category([{"term": c.name, "label": c.name} for c in tags_of[post_id]])
        fe.content(r.body_html, type="html")
        entries[post_id] = fe
    for plan in plans:
        fg = FeedGenerator()
        fg.id(plan.spec.meta.id)
        fg.title(plan.spec.meta.title)
        fg.description(plan.spec.meta.title)
        fg.link(href=plan.spec.meta.home, rel="alternate")
        fg.updated(NOW)
        for post_id in plan.post_ids:
            fg.add_entry(entries[post_id], order="append")
        fg.atom_str(pretty=True)
        fg.rss_str(pretty=True)
    print(json.dumps({"seconds": time.perf_counter() - t0, "documents": len(plans)}))


def child(mode: str, config: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, f"--{mode}", str(config)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def add_one_post(settings: Settings, count: int) -> None:
    engine = db.make_engine(settings.database.url or "")
    with engine.begin() as conn:
        when = NOW - timedelta(minutes=5)
        conn.execute(
            insert(Post),
            [
                {
                    "id": count + 1,
                    "uid": "tag:bench.example.org,2026:new",
                    "slug": "brand-new",
                    "title": "A brand new post",
                    "source_format": "html",
                    "body_source": "",
                    "body_html": "<p>New.</p>",
                    "status": PostStatus.PUBLISHED,
                    "published_at": when,
                    "updated_at": when,
                    "author_id": 1,
                    "source_hash": "new",
                }
            ],
        )
        conn.execute(insert(post_tags), [{"post_id": count + 1, "tag_id": 1}])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        return build(args.build)
    if args.floor:
        return floor(args.floor)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "config.yaml"
        config.write_text(CONFIG.format(db=root / "bench.db", out=root / "feeds"))
        settings = parse_settings(config.read_text(), str(config), root)
        t0 = time.perf_counter()
        generate(settings, args.posts)
        print(
            f"generated {args.posts:,} posts, 500 tags, 50 authors in "
            f"{time.perf_counter() - t0:.1f} s (SQLite)"
        )

        full = child("build", config)
        size = sum(p.stat().st_size for p in (root / "feeds").rglob("*") if p.is_file())
        print(
            f"full build:        {full['seconds']:7.2f} s, {full['documents']:,.0f} documents, "
            f"{full['written']:,.0f} files, {size / 1e6:,.0f} MB; peak memory "
            f"{full['peak_mb']:,.0f} MB (main process) + {full['worker_peak_mb']:,.0f} MB "
            f"(render worker) = {full['peak_mb'] + full['worker_peak_mb']:,.0f} MB "
            "(goal < 500 MB)"
        )
        again = child("build", config)
        print(
            f"rebuild, no change:{again['seconds']:7.2f} s, {again['written']:,.0f} files written"
        )
        add_one_post(settings, args.posts)
        one = child("build", config)
        print(
            f"after one new post:{one['seconds']:7.2f} s, {one['rendered']:,.0f} documents "
            f"rendered, {one['written']:,.0f} files written (goal < 1 s)"
        )
        base = child("floor", config)
        ratio = full["seconds"] / base["seconds"]
        print(
            f"feedgen alone:     {base['seconds']:7.2f} s for the same entries and documents "
            f"(Atom + RSS): the floor"
        )
        print(f"full build / floor: {ratio:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
