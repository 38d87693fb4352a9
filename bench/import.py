"""Import 10,000 generated Markdown posts into a fresh SQLite database.

The posts are bench/corpus.py's (500 tags, 50 authors, ~3 KB of Markdown with
tables and videos), as in bench/peers.py. Prints posts imported per second
(goal: at least 3,000/s), the CPU time a post costs (the main process and its
parse workers together), peak memory, for a first import and for a re-import
of the unchanged files, with the load average (the machine is shared).

Each run is a child process of its own, on a fresh database; the figures are
medians of ``--runs`` runs.

    python bench/import.py [--posts N] [--runs 3] [--baseline DIR]

``--baseline DIR``: a checkout of another version (``git archive REV | tar -x
-C DIR``); each run is made with its code as well, in turn with ours on the
same files (who goes first alternates), and printed beside it: before and
after from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import corpus

CONFIG = """\
site: {title: Bench, base_url: "https://bench.example.org/", postal_address: x,
       timezone: Europe/Berlin}
email: {sender: "b@bench.example.org"}
"""


def cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def timed(run: Any) -> tuple[Any, float, float, float]:
    """``run()``'s result, wall seconds, CPU seconds of this process and of its workers."""
    own0, workers0 = cpu()
    t0 = time.perf_counter()
    result = run()
    wall = time.perf_counter() - t0
    own1, workers1 = cpu()
    return result, wall, own1 - own0, workers1 - workers0


def child(posts: Path, folder: Path) -> dict[str, float]:
    """One run, with whichever ``publisher`` is first on the path; figures as a dict.

    The collector's thresholds are the command line's (``publisher import``)."""
    import gc

    from publisher.cli import GC_THRESHOLDS

    gc.set_threshold(*GC_THRESHOLDS)
    from publisher import db
    from publisher.config import parse_settings
    from publisher.content.importer import import_target
    from publisher.content.sources import collect_sources, read_drafts

    count = sum(1 for _ in posts.iterdir())
    settings = parse_settings(CONFIG, "bench-config.yaml", folder)
    engine = db.make_engine(f"sqlite:///{folder / 'bench.db'}")
    db.upgrade(engine)
    factory = db.make_sessionmaker(engine)
    now = datetime.now(UTC)
    zone = settings.site.zone

    found, read, _, _ = timed(lambda: read_drafts(collect_sources(str(posts)), zone))
    del found
    report, first, first_main, first_workers = timed(
        lambda: import_target(factory, str(posts), settings, now)
    )
    assert len(report.created) == count, report
    again, second, _, _ = timed(lambda: import_target(factory, str(posts), settings, now))
    assert len(again.unchanged) == count
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "read": read,
        "first": first,
        "first_main_cpu": first_main,
        "first_workers_cpu": first_workers,
        "second": second,
        "peak_main": own,
        "peak_worker": workers,
        "load": os.getloadavg()[0],
    }


def run_child(posts: Path, folder: Path, code: Path | None) -> dict[str, float]:
    """One run in a child process; ``code``: a checkout whose ``publisher`` it runs."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    args = [sys.executable, __file__, "--child", str(posts), str(folder)]
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(name: str, runs: list[dict[str, float]], posts: int) -> list[str]:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    cpu_us = statistics.median(
        (r["first_main_cpu"] + r["first_workers_cpu"]) / posts * 1e6 for r in runs
    )
    main_us = med("first_main_cpu") / posts * 1e6
    return [
        f"{name}: read + validate + render only: {med('read'):.2f} s "
        f"({posts / med('read'):,.0f} posts/s)",
        f"{name}: first import (new database):   {med('first'):.2f} s -> "
        f"{posts / med('first'):,.0f} posts/s  (goal: >= 3,000 posts/s)",
        f"{name}: CPU a post, first import:      {cpu_us:,.0f} us "
        f"({main_us:,.0f} us in the main process, the rest in the parse workers)",
        f"{name}: re-import, nothing changed:    {med('second'):.2f} s -> "
        f"{posts / med('second'):,.0f} posts/s",
        f"{name}: peak memory: {med('peak_main'):,.0f} MB (main process), "
        f"{med('peak_worker'):,.0f} MB (largest worker)",
        f"{name}: first-import rates of the runs: "
        + ", ".join(f"{posts / r['first']:,.0f}" for r in runs),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another version (git archive REV | tar -x -C DIR): each run "
        "is made with its code too, side by side",
    )
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    codes: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline is not None:
        codes.append(("baseline", args.baseline.resolve()))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in codes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        posts = root / "posts"
        posts.mkdir()
        corpus.write_posts(posts, list(corpus.generate(args.posts)))
        size = sum(p.stat().st_size for p in posts.iterdir()) / args.posts
        loads = [os.getloadavg()[0]]
        for number in range(args.runs):
            order = codes if number % 2 == 0 else codes[::-1]
            for name, code in order:
                folder = root / f"{name}-{number}"
                folder.mkdir()
                results[name].append(run_child(posts, folder, code))
                loads.append(results[name][-1]["load"])
    print(
        f"posts: {args.posts:,} generated Markdown files, {size:,.0f} bytes each on average; "
        f"{args.runs} runs each, medians; load average {min(loads):.1f}-{max(loads):.1f}"
    )
    for name, _ in codes:
        print("\n".join(report(name, results[name], args.posts)))
    if args.baseline is not None:
        ratio = statistics.median(r["first"] for r in results["baseline"]) / statistics.median(
            r["first"] for r in results["this"]
        )
        print(f"first import, this / baseline posts/s: {ratio:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
