"""Subscribers benchmark: the CSV import rate and the subscribe endpoint's requests/s.

Prints, as the audience issue asks:
- CSV import of N rows (default 100,000) into a fresh SQLite database: the median
  of several runs, in rows/s, against the goal of 20,000 rows/s; beside it the
  rate by CPU time and the seconds the import waited for a core (``run_delay``
  in /proc/self/schedstat: on a machine shared with other work, wall time is
  CPU time plus that wait); and, side by side, the one-at-a-time way
  (``add_subscriber`` per row, one transaction each) timed on a sample.

The rows look like a real list: a few hundred domains, names with accents,
one or two newsletters, some topics, consent dates over five years.

- the subscribe endpoint: ``publisher serve`` started as its own process (one
  process, waitress), confirmation emails going to postfix's smtp-sink, and a
  local load generator (``--clients`` processes, keep-alive connections) sending
  the form with a new address each time; the median requests/s of several runs
  against the goal of 300/s, the server's CPU time per request (the load
  generator shares the two cores), and side by side the form page (GET).

With ``--baseline DIR`` (another version's source tree, e.g.
``git archive main | tar -x -C DIR``), every run is made for both versions in
turn, each import and each server in its own process with that tree first on
PYTHONPATH, and the medians are printed side by side with their ratio.

Each benchmark is a function in ``BENCHES``, so one command prints both.

    python bench/subscribers.py [--rows N] [--runs K] [--only import|subscribe]
                                [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from subscribe_load import Version, bench_subscribe

from publisher import db
from publisher.audience.csvimport import import_csv
from publisher.audience.subscribers import add_subscriber
from publisher.config import Settings, parse_settings
from publisher.content.importer import import_target

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
GOAL = 20_000
CONFIG = """\
site: {{title: International Civil Society Centre, base_url: "https://icscentre.org/",
       timezone: Europe/Berlin, postal_address: "Agricolastraße 26, 10555 Berlin, Germany"}}
email: {{sender: "International Civil Society Centre <news@icscentre.org>"}}
database: {{url: "sqlite:///{db}"}}
digests:
  - {{name: weekly, schedule: "0 9 * * MON"}}
  - {{name: monthly, schedule: "0 9 1 * *"}}
"""
TOPICS = ["sdgs", "innovation", "events", "blockchain", "Leave No One Behind"]
NAMES = ["Zoë", "Anna", "José", "Miriam", "Thomas", "Ngozi", "Björn", "Li", "Amélie", "Omar"]


def make_csv(rows: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    domains = [f"org{n}.example" if n % 3 else f"mail{n}.example.org" for n in range(300)]
    lines = ["address,name,newsletters,topics,consent date"]
    start = NOW - timedelta(days=5 * 365)
    for i in range(rows):
        name = f"{rng.choice(NAMES)} {rng.choice(NAMES)}son"
        newsletters = rng.choice(["weekly", "monthly", "weekly;monthly", ""])
        topics = ";".join(rng.sample(TOPICS, rng.choice([0, 0, 1, 2])))
        when = start + timedelta(minutes=rng.randrange(5 * 365 * 24 * 60))
        lines.append(
            f"reader.{i}@{rng.choice(domains)},{name},{newsletters},{topics},{when:%Y-%m-%d}"
        )
    return "\n".join(lines) + "\n"


def fresh(root: Path, label: str) -> tuple[Settings, sessionmaker[Session]]:
    path = root / f"{label}.db"
    settings = parse_settings(CONFIG.format(db=path), "bench.yaml", root)
    engine = db.make_engine(settings.database.url or "")
    db.upgrade(engine)
    factory = db.make_sessionmaker(engine)
    with resources.as_file(resources.files("publisher") / "sample") as sample:
        import_target(factory, str(sample), settings, NOW)
    return settings, factory


def waited() -> float:
    """Seconds this process has waited for a core so far (Linux schedstat run_delay)."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def import_once(rows: int, root: Path) -> dict[str, float]:
    """One timed import into a fresh database (run in a child process, per version)."""
    text = make_csv(rows)
    settings, factory = fresh(root, "import")
    started, cpu, wait = time.perf_counter(), time.process_time(), waited()
    report = import_csv(factory, settings, text, "bench.csv", NOW)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    assert report.added == rows and not report.bad, report
    return {"seconds": seconds, "cpu": cpu_seconds, "waited": waited() - wait}


def bench_import(args: argparse.Namespace, root: Path, versions: list[Version]) -> None:
    runs: dict[str, list[dict[str, float]]] = {v.label: [] for v in versions}
    for run in range(args.runs):  # the versions take turns, so both see the same load
        for version in versions:
            folder = root / f"import-{version.label}-{run}"
            folder.mkdir()
            child = subprocess.run(
                [sys.executable, __file__, "--child-import", str(folder), "--rows", str(args.rows)],
                env=version.env(),
                cwd=folder,
                check=True,
                capture_output=True,
                text=True,
            )
            got = json.loads(child.stdout.splitlines()[-1])
            runs[version.label].append(got)
            print(
                f"  run {run + 1}, {version.label}: {args.rows:,} rows in {got['seconds']:.2f} s"
                f" wall, {got['cpu']:.2f} s CPU, {got['waited']:.2f} s waiting for a core"
                f" = {args.rows / got['seconds']:,.0f} rows/s"
            )

    def rate(label: str, key: str) -> float:
        return statistics.median(args.rows / r[key] for r in runs[label])

    this = versions[0].label
    median, cpu_median = rate(this, "seconds"), rate(this, "cpu")
    wait = statistics.median(r["waited"] for r in runs[this])
    print(f"CSV import, {args.rows:,} rows on SQLite (median of {args.runs}): {median:,.0f} rows/s")
    print(f"  goal {GOAL:,} rows/s: {median / GOAL:.2f}x the goal")
    print(
        f"  by CPU time (what a busy machine's wall clock hides): {cpu_median:,.0f} rows/s, "
        f"{cpu_median / GOAL:.2f}x the goal; the import waited {wait:.2f} s for a core"
    )
    for version in versions[1:]:
        base, base_cpu = rate(version.label, "seconds"), rate(version.label, "cpu")
        print(
            f"  {version.label} ({version.tree}): {base:,.0f} rows/s, {base_cpu:,.0f} by CPU; "
            f"this / {version.label}: {median / base:.2f}x wall, {cpu_median / base_cpu:.2f}x CPU"
        )

    settings, factory = fresh(root, "one-by-one")
    sample = min(args.sample, args.rows)
    started = time.perf_counter()
    for i in range(sample):
        add_subscriber(factory, settings, f"one.{i}@example.org", "Reader", ["sdgs"], now=NOW)
    single = sample / (time.perf_counter() - started)
    print(f"  one at a time (add_subscriber, {sample:,} rows): {single:,.0f} rows/s")
    print(f"  bulk import / one at a time: {median / single:.1f}x")


#: name → benchmark
BENCHES: dict[str, Callable[[argparse.Namespace, Path, list[Version]], None]] = {
    "import": bench_import,
    "subscribe": bench_subscribe,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=500, help="rows added one at a time")
    parser.add_argument("--only", choices=sorted(BENCHES), help="run one benchmark")
    parser.add_argument("--requests", type=int, default=3000, help="subscribe requests per run")
    parser.add_argument("--clients", type=int, default=4, help="load generator processes")
    parser.add_argument("--baseline", type=Path, help="another version's source tree")
    parser.add_argument(
        "--baseline-requests", type=int, default=600, help="subscribe requests per baseline run"
    )
    parser.add_argument("--child-import", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        print(json.dumps(import_once(args.rows, args.child_import)))
        return
    versions = [Version("this", Path(__file__).resolve().parents[1])]
    if args.baseline:
        versions.append(Version("baseline", args.baseline.resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        for name, bench in BENCHES.items():
            if args.only in (None, name):
                bench(args, Path(tmp), versions)


if __name__ == "__main__":
    main()
