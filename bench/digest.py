"""Digest benchmark: render + inline once, then personalised messages for 100,000 subscribers.

Prints, as the digest issue asks:
- the time to render and inline one digest (the sample posts);
- personalised, ready-to-send messages per second for 100,000 subscribers streamed
  from SQLite, on one core, with peak memory (at 10,000 and at 100,000, to show
  it does not grow with the number of subscribers);
- side by side, the naive way (render and inline per subscriber), timed on a sample
  of subscribers, and the ratio.
Goal: at least 10,000 messages/s.

    python bench/digest.py [--subscribers N]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from sqlalchemy import insert

from publisher import db
from publisher.audience.recipients import iter_recipients
from publisher.config import parse_settings
from publisher.content.importer import import_target
from publisher.mail.compose import Editions, build_digest
from publisher.mail.render import render_digest
from publisher.models import Subscriber, SubscriberStatus, Subscription, subscription_topics

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SINCE = datetime(2019, 1, 1, tzinfo=UTC)
CONFIG = """\
site: {{title: International Civil Society Centre, base_url: "https://icscentre.org/",
       timezone: Europe/Berlin, postal_address: "Agricolastraße 26, 10555 Berlin, Germany"}}
email: {{sender: "International Civil Society Centre <news@icscentre.org>"}}
database: {{url: "sqlite:///{db}"}}
digests: [{{name: weekly, schedule: "0 9 * * MON"}}]
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = parse_settings(CONFIG.format(db=root / "bench.db"), "bench.yaml", root)
        engine = db.make_engine(settings.database.url or "")
        db.upgrade(engine, newsletters=["weekly"])
        factory = db.make_sessionmaker(engine)
        with resources.as_file(resources.files("publisher") / "sample") as sample:
            import_target(factory, str(sample), settings, NOW)
        with engine.begin() as conn:
            for lo in range(0, args.subscribers, 10_000):
                rows = [
                    {
                        "id": i + 1,
                        "email": f"reader{i}@example.org",
                        "name": f"Reader {i}" if i % 3 else None,
                        "status": SubscriberStatus.ACTIVE,
                        "created_at": NOW,
                    }
                    for i in range(lo, min(lo + 10_000, args.subscribers))
                ]
                conn.execute(insert(Subscriber), rows)
                conn.execute(
                    insert(Subscription),
                    [
                        {"subscriber_id": r["id"], "newsletter": "weekly", "created_at": NOW}
                        for r in rows
                    ],
                )
                conn.execute(
                    insert(subscription_topics),
                    [
                        {
                            "subscriber_id": r["id"],
                            "newsletter": "weekly",
                            "tag_id": 1 + r["id"] % 8,
                        }
                        for r in rows
                        if r["id"] % 4 == 0
                    ],
                )

        config = settings.digests[0]
        with factory() as session:
            digest = build_digest(session, config, settings, NOW, since=SINCE)
        timings = []
        for _ in range(10):
            t0 = time.perf_counter()
            rendered = render_digest(digest, config, settings)
            timings.append(time.perf_counter() - t0)
        print(f"digest: {len(digest.posts)} posts, HTML part {rendered.html_bytes / 1024:.1f} KB")
        print(
            f"render + inline once: {statistics.median(timings) * 1000:.1f} ms "
            f"(median of 10; premailer included)"
        )

        editions = Editions(digest, config, settings, NOW, "bench-secret")
        t0 = time.perf_counter()
        count = size = 0
        memory_at_10k = 0.0
        for recipient in iter_recipients(factory, newsletter="weekly"):
            message = editions.compose(recipient).message
            count += 1
            size += len(message)
            if count == 10_000:
                memory_at_10k = rss_mb()
        seconds = time.perf_counter() - t0
        print(
            f"personalised messages: {count:,} in {seconds:.2f} s -> "
            f"{count / seconds:,.0f} messages/s on one core (goal >= 10,000/s), "
            f"{size / count / 1024:.1f} KB each, streamed from SQLite"
        )
        print(
            f"peak memory: {memory_at_10k:,.0f} MB after 10,000 messages, "
            f"{rss_mb():,.0f} MB after {count:,} (flat: subscribers are streamed)"
        )

        sample = list(iter_recipients(factory, batch=args.naive_sample, newsletter="weekly"))[
            : args.naive_sample
        ]
        t0 = time.perf_counter()
        for recipient in sample:
            # a fresh Editions per subscriber: render, inline and compile every time
            Editions(digest, config, settings, NOW, "bench-secret").compose(recipient)
        naive_rate = len(sample) / (time.perf_counter() - t0)
        print(
            f"naive (render + inline per subscriber): {naive_rate:,.0f} messages/s "
            f"(timed on {len(sample)}), {count / naive_rate / 60:,.1f} min for {count:,}"
        )
        print(f"compiled once vs naive: {count / seconds / naive_rate:,.0f}x faster")


if __name__ == "__main__":
    main()
