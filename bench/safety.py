"""What the safety checks cost: sanitising on the way out, and the checks on the
way in, on the benchmark corpus (Markdown, ~3 KB each).

Prints medians of R rounds over N posts, with and without each, side by side
with their ratio:
- out: ``public_post`` (what every feed entry and digest post goes through),
  with the body sanitised (today: the one pass) and without (trusting the store);
- in: the import's rendering, which refuses unsafe links and dropped embeds by
  name and stores the HTML as rendered (today), against the same and a
  sanitising pass as well (earlier versions, which stored it sanitised).

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
from publisher.content.markup import refuse_unsafe_html, render_markdown_html
from publisher.content.sanitize import sanitize_html
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
            body_html=render_markdown_html(body),
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

    def rendered(body: str) -> str:
        html = render_markdown_html(body)
        refuse_unsafe_html(body, html)
        return html

    checked_in = _median(args.rounds, lambda: [rendered(b) for b in bodies])
    sanitised_in = _median(args.rounds, lambda: [sanitize_html(rendered(b)) for b in bodies])

    per = 1e6 / args.posts
    print(f"{args.posts} posts, median of {args.rounds} rounds (µs per post)")
    print(f"{'out: public_post':44} {'sanitised':>9} {'trusting':>9} {'ratio':>7}")
    print(
        f"{'':44} {checked_out * per:9.1f} {trusting_out * per:9.1f} "
        f"{checked_out / trusting_out:7.2f}"
    )
    print(f"{'in: render, refuse unsafe links and embeds':44} {'today':>9} {'+ sanitise':>9}")
    print(
        f"{'':44} {checked_in * per:9.1f} {sanitised_in * per:9.1f} "
        f"{sanitised_in / checked_in:7.2f}"
    )


if __name__ == "__main__":
    main()
