"""Subscribers benchmark: the CSV import rate and the subscribe endpoint's requests/s.

Prints, as the audience issue asks:
- CSV import of N rows (default 100,000) into a fresh SQLite database: the median
  of several runs, in rows/s, against the goal of 20,000 rows/s;
- side by side, the one-at-a-time way (``add_subscriber`` per row, one
  transaction each) timed on a sample, and the ratio.

The rows look like a real list: a few hundred domains, names with accents,
one or two newsletters, some topics, consent dates over five years.

- the subscribe endpoint: ``publisher serve`` started as its own process (one
  process, waitress), confirmation emails going to postfix's smtp-sink, and a
  local load generator (``--clients`` processes, keep-alive connections) sending
  the form with a new address each time; the median requests/s of several runs
  against the goal of 300/s, the rate by the server's CPU time (the load
  generator shares the two cores), and side by side the form page (GET).

Each benchmark is a function in ``BENCHES``, so one command prints both.

    python bench/subscribers.py [--rows N] [--runs K] [--only import|subscribe]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from subscribe_load import bench_subscribe

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


def bench_import(args: argparse.Namespace, root: Path) -> None:
    text = make_csv(args.rows)
    rates, cpu_rates = [], []
    for run in range(args.runs):
        settings, factory = fresh(root, f"import{run}")
        started, cpu = time.perf_counter(), time.process_time()
        report = import_csv(factory, settings, text, "bench.csv", NOW)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        assert report.added == args.rows and not report.bad, report
        rates.append(args.rows / seconds)
        cpu_rates.append(args.rows / cpu_seconds)
        print(
            f"  run {run + 1}: {args.rows:,} rows in {seconds:.2f} s wall, {cpu_seconds:.2f} s CPU"
            f" = {rates[-1]:,.0f} rows/s"
        )
    median = statistics.median(rates)
    cpu_median = statistics.median(cpu_rates)

    settings, factory = fresh(root, "one-by-one")
    sample = min(args.sample, args.rows)
    started = time.perf_counter()
    for i in range(sample):
        add_subscriber(factory, settings, f"one.{i}@example.org", "Reader", ["sdgs"], now=NOW)
    single = sample / (time.perf_counter() - started)

    print(f"CSV import, {args.rows:,} rows on SQLite (median of {args.runs}): {median:,.0f} rows/s")
    print(f"  goal {GOAL:,} rows/s: {median / GOAL:.2f}x the goal")
    print(
        f"  by CPU time (what a busy machine's wall clock hides): {cpu_median:,.0f} rows/s, "
        f"{cpu_median / GOAL:.2f}x the goal"
    )
    print(f"  one at a time (add_subscriber, {sample:,} rows): {single:,.0f} rows/s")
    print(f"  bulk import / one at a time: {median / single:.1f}x")


#: name → benchmark
BENCHES: dict[str, Callable[[argparse.Namespace, Path], None]] = {
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, bench in BENCHES.items():
            if args.only in (None, name):
                bench(args, Path(tmp))


if __name__ == "__main__":
    main()
