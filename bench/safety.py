"""What the safety checks cost: the second sanitising on the way out, and the
unsafe-link check on the way in, on the benchmark corpus (Markdown, ~3 KB each).

Prints medians of R rounds over N posts, with and without each check, side
by side with their ratio:
- out: ``public_post`` (what every feed entry and digest post goes through),
  with the body sanitised again (today) and without (trusting the store);
- in: ``render_markdown`` with ``refuse_unsafe`` (the import's check) and without.

    python bench/safety.py [--posts N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import corpus  # type: ignore[import-not-found]

from publisher.content import public
from publisher.content.markup import render_markdown
from publisher.urls import Urls


def _median(rounds: int, work: Any) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bodies = [post.body for post in corpus.generate(args.posts)]
    rows = [
        SimpleNamespace(
            uid=f"urn:{i}",
            slug=f"post-{i}",
            title=f"Post {i}",
            summary=None,
            body_html=render_markdown(body),
            published_at=datetime(2026, 1, 1, tzinfo=UTC),
            updated_at=None,
            canonical_url=None,
            image_url="/img/a.png",
            image_alt=None,
        )
        for i, body in enumerate(bodies)
    ]
    urls = Urls("https://news.example.org/", "https://news.example.org/feeds/")

    def out() -> None:
        for row in rows:
            public.public_post(row, (), urls)

    checked_out = _median(args.rounds, out)
    sanitize = public.sanitize_html
    public.sanitize_html = lambda fragment: fragment  # type: ignore[assignment]
    try:
        trusting_out = _median(args.rounds, out)
    finally:
        public.sanitize_html = sanitize

    checked_in = _median(args.rounds, lambda: [render_markdown(b, True) for b in bodies])
    plain_in = _median(args.rounds, lambda: [render_markdown(b) for b in bodies])

    per = 1e6 / args.posts
    print(f"{args.posts} posts, median of {args.rounds} rounds (µs per post)")
    print(f"{'':32} {'checked':>9} {'without':>9} {'ratio':>7}")
    print(
        f"{'out: public_post':32} {checked_out * per:9.1f} {trusting_out * per:9.1f} "
        f"{checked_out / trusting_out:7.2f}"
    )
    print(
        f"{'in: render_markdown':32} {checked_in * per:9.1f} {plain_in * per:9.1f} "
        f"{checked_in / plain_in:7.2f}"
    )


if __name__ == "__main__":
    main()
