"""Feed build benchmark: 100,000 posts, 500 tags, 50 authors, ~3 KB of HTML each (SQLite).

Prints, as the feeds and speed issues ask:
- full builds on one process and on two, side by side, with CPU time: whether the
  worker pool pays on this machine (the build chooses by itself; its choice is printed);
- for each, the floor on as many processes: feedgen serialising each entry once per
  format (Atom, RSS) and json.dumps once (JSON Feed), and each document assembled,
  without reading the store or writing files; and build / floor;
- the full build's peak memory (fresh processes, so the figures are the build's own);
- a rebuild with nothing changed, and one after adding a post, with the number of
  entries it serialised (what keeping entries across builds could save).
Goals: build <= 1.5x the floor; peak memory under 500 MB; one new post < 1 s.

    python bench/feeds.py [--posts N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


def build(config: Path, workers: int) -> None:
    """Child process: one build (on ``workers`` processes; 0: as the build chooses),
    its time, CPU time and its own peak memory, as JSON."""
    from publisher.config import load_settings
    from publisher.feeds import build as build_module

    if workers:
        build_module.choose_workers = lambda entries: workers  # type: ignore[assignment]
    settings = load_settings(config)
    factory = db.make_sessionmaker(db.make_engine(settings.database.url or ""))
    t0, c0 = time.perf_counter(), cpu_seconds()
    report = build_module.publish_feeds(factory, settings, NOW, ping=lambda hub, topics: [])
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "peak_mb": peak,
                "worker_peak_mb": worker_peak,
                "documents": report.documents,
                "rendered": report.rendered,
                "entries": report.entries,
                "processes": report.processes,
                "written": len(report.written),
            }
        )
    )


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


#: the floor's entries and documents, made before its timer starts (forked workers share them)
FLOOR: dict[str, Any] = {}


def floor_share(share: list[Any]) -> int:
    """The floor's work on one share of the documents: every entry serialised once
    per format, every document in the three formats; bytes written nowhere."""
    from publisher.feeds.formats import RENDERERS, serialise_entry
    from publisher.feeds.model import Document

    entries = FLOOR["entries"]
    parts = {i: serialise_entry(entries[i]) for plan in share for i in plan.post_ids}
    size = 0
    for plan in share:
        document = Document(
            plan.spec.meta, [parts[i] for i in plan.post_ids], plan.is_archive, plan.links
        )
        size += sum(len(render(document)) for render in RENDERERS.values())
    return size


def floor(config: Path, processes: int) -> None:
    """Child process: the least serialisation the same output needs, on as many processes.

    feedgen writes each entry once per format (Atom, RSS) and json.dumps it once
    (JSON Feed), and each document's head; the documents are assembled from
    those parts. Not timed: reading the store and making the entries; not done:
    writing files. So the build's time over this is what reading, planning and
    writing cost on top of serialising.
    """
    from publisher import queries
    from publisher.config import load_settings
    from publisher.feeds.build import feed_specs
    from publisher.feeds.entries import build_entry
    from publisher.feeds.names import Names
    from publisher.feeds.plan import plan_documents
    from publisher.urls import Urls

    settings = load_settings(config)
    factory = db.make_sessionmaker(db.make_engine(settings.database.url or ""))
    urls = Urls.from_settings(settings)
    with factory() as session:
        names = Names.load(session)
        stubs = names.stubs(queries.feed_stubs(session, NOW), queries.tag_ids_by_post(session))
        ids = [s.id for s in stubs]
        rows = queries.feed_rows(session, ids)
        files = queries.attachments_of(session, ids)
    FLOOR["entries"] = {
        s.id: build_entry(
            rows[s.id],
            files.get(s.id, []),
            names.person(rows[s.id].author_id),
            names.categories(s.tags),
            urls,
            True,
        )
        for s in stubs
    }
    del rows
    site, tag_specs, author_specs = feed_specs(
        settings, urls, names.authors.values(), names.tags.values()
    )
    plans = plan_documents(site, tag_specs, author_specs, stubs, settings.feeds.items, urls)
    # the build's shares: runs of consecutive posts of about equal size
    position = {stub.id: index for index, stub in enumerate(stubs)}
    ordered = sorted(plans, key=lambda p: min((position[i] for i in p.post_ids), default=0))
    total = sum(len(p.post_ids) for p in ordered) or 1
    shares: list[list[Any]] = [[] for _ in range(processes)]
    done = 0
    for plan in ordered:
        shares[min(done * processes // total, processes - 1)].append(plan)
        done += len(plan.post_ids)

    t0, c0 = time.perf_counter(), cpu_seconds()
    if processes == 1:
        floor_share(shares[0])
    else:
        with multiprocessing.get_context("fork").Pool(processes - 1) as pool:
            pending = pool.map_async(floor_share, shares[1:])
            floor_share(shares[0])
            pending.get()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(json.dumps({"seconds": seconds, "cpu": cpu, "documents": len(plans)}))


def child(mode: str, config: Path, number: int = 0) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, f"--{mode}", str(config), "--processes", str(number)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


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
    parser.add_argument("--rounds", type=int, default=1, help="full builds per process count")
    parser.add_argument(
        "--no-compare",
        action="store_true",
        help="skip the one-process / two-process comparison (one full build, as chosen)",
    )
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        return build(args.build, args.processes)
    if args.floor:
        return floor(args.floor, args.processes or 1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "feeds"
        config = root / "config.yaml"
        config.write_text(CONFIG.format(db=root / "bench.db", out=out))
        settings = parse_settings(config.read_text(), str(config), root)
        t0 = time.perf_counter()
        generate(settings, args.posts)
        print(
            f"generated {args.posts:,} posts, 500 tags, 50 authors in "
            f"{time.perf_counter() - t0:.1f} s (SQLite); load average {os.getloadavg()[0]:.1f}"
        )

        # full builds on one process and on two, side by side, each with its floor
        runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        floors: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(0 if args.no_compare else args.rounds):
            for processes in (1, 2):
                clear(out)
                runs[processes].append(child("build", config, processes))
                floors[processes].append(child("floor", config, processes)["seconds"])
        clear(out)
        full = child("build", config)  # as the build chooses
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(
            f"full build:        {full['seconds']:7.2f} s on {full['processes']:.0f} process(es), "
            f"{full['documents']:,.0f} documents, {full['written']:,.0f} files, "
            f"{size / 1e6:,.0f} MB, {full['entries']:,.0f} entries serialised once each; "
            f"peak memory {full['peak_mb']:,.0f} MB (main process) + "
            f"{full['worker_peak_mb']:,.0f} MB (render worker) = "
            f"{full['peak_mb'] + full['worker_peak_mb']:,.0f} MB (goal < 500 MB)"
        )
        if args.no_compare:
            base = child("floor", config, int(full["processes"]))
            print(
                f"  build {full['seconds']:.2f} s ({full['cpu']:.2f} s CPU), floor on as many "
                f"processes {base['seconds']:.2f} s ({base['cpu']:.2f} s CPU); build / floor "
                f"{full['seconds'] / base['seconds']:.2f}, in CPU {full['cpu'] / base['cpu']:.2f} "
                "(goal <= 1.5)"
            )
        for processes in () if args.no_compare else (1, 2):
            build_s = statistics.median(r["seconds"] for r in runs[processes])
            cpu_s = statistics.median(r["cpu"] for r in runs[processes])
            floor_s = statistics.median(floors[processes])
            print(
                f"  on {processes} process(es): build {build_s:6.2f} s ({cpu_s:6.2f} s CPU), "
                f"floor {floor_s:6.2f} s, build / floor {build_s / floor_s:.2f} (goal <= 1.5)"
            )
        if not args.no_compare:
            one_s = statistics.median(r["seconds"] for r in runs[1])
            two_s = statistics.median(r["seconds"] for r in runs[2])
            print(f"  two processes / one: {two_s / one_s:.2f} (below 1: the pool pays here)")
        again = child("build", config)
        print(
            f"rebuild, no change:{again['seconds']:7.2f} s, {again['written']:,.0f} files written"
        )
        add_one_post(settings, args.posts)
        one = child("build", config)
        print(
            f"after one new post:{one['seconds']:7.2f} s, {one['rendered']:,.0f} documents "
            f"rendered, {one['entries']:,.0f} entries serialised, {one['written']:,.0f} files "
            "written (goal < 1 s)"
        )


if __name__ == "__main__":
    main()
