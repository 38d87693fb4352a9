"""Generated posts for the benchmarks: the same N posts for publisher and for Hugo.

``write_posts`` writes N Markdown posts of about 3 KB (headings, paragraphs with
emphasis, code and links, lists, a quote, now and then a table or a video),
with 500 tags and 50 authors, in publisher's front matter; ``write_hugo_site``
writes the same posts (same titles, dates, tags, authors and bodies) as a Hugo
site that outputs RSS only (home, section, tag and author feeds), as Hugo is
set up in the speed issue's measurements.

Seeded: the same N give the same bytes on every machine.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

TAGS = 500
AUTHORS = 50
START = datetime(2015, 1, 1, 9, 0, tzinfo=UTC)
WORDS = (
    "civil society partnership inclusive development coalition report network voices "
    "heard count implementation sustainable goals community data policy rights "
    "solidarity accountability participation local national global funding members "
    "research learning digital space action campaign youth climate justice"
).split()
VIDEOS = ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://vimeo.com/76979871")


@dataclass(frozen=True)
class GeneratedPost:
    number: int
    title: str
    date: datetime
    author: str
    tags: tuple[str, ...]
    body: str

    @property
    def file_name(self) -> str:
        return f"post-{self.number:05d}.md"

    def publisher_file(self) -> str:
        return (
            f"---\ntitle: {json.dumps(self.title, ensure_ascii=False)}\n"
            f"date: {self.date.isoformat()}\nstatus: published\n"
            f"author: {json.dumps(self.author)}\n"
            f"tags: {json.dumps(list(self.tags))}\n---\n{self.body}"
        )

    def hugo_file(self) -> str:
        return (
            f"---\ntitle: {json.dumps(self.title, ensure_ascii=False)}\n"
            f"date: {self.date.isoformat()}\n"
            f"authors: {json.dumps([self.author])}\n"
            f"tags: {json.dumps(list(self.tags))}\n---\n{self.body}"
        )


def _sentence(rng: random.Random, words: int) -> str:
    chosen = [rng.choice(WORDS) for _ in range(words)]
    styled = rng.random()
    if styled < 0.25:
        at = rng.randrange(words)
        chosen[at] = f"*{chosen[at]}*"
    elif styled < 0.4:
        at = rng.randrange(words)
        chosen[at] = f"**{chosen[at]}**"
    elif styled < 0.5:
        at = rng.randrange(words)
        chosen[at] = f"`{chosen[at]}`"
    elif styled < 0.6:
        at = rng.randrange(words)
        chosen[at] = f"[{chosen[at]}](https://example.org/{chosen[at]}/{rng.randrange(999)})"
    return " ".join(chosen).capitalize() + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng, rng.randint(8, 16)) for _ in range(sentences))


def _body(rng: random.Random, number: int) -> str:
    parts = [_paragraph(rng, 5), _paragraph(rng, 4), f"## Section {number}", _paragraph(rng, 4)]
    parts.append("\n".join(f"- {_sentence(rng, 8)}" for _ in range(4)))
    parts.append(f"> “{_sentence(rng, 14)}”")
    if number % 7 == 0:
        rows = "\n".join(f"| {rng.choice(WORDS)} | {rng.randrange(1000)} |" for _ in range(3))
        parts.append(f"| Item | Count |\n| --- | ---: |\n{rows}")
    if number % 25 == 0:
        parts.append(f"::: video {VIDEOS[number % 2]}\nThe {rng.choice(WORDS)} video.\n:::")
    parts.append(_paragraph(rng, 4))
    parts.append(f"Read [the report](https://example.org/reports/{number}) (PDF, 2 MB).")
    return "\n\n".join(parts) + "\n"


def generate(count: int, seed: int = 12) -> Iterator[GeneratedPost]:
    """``count`` posts, 7 hours apart, each with an author and three tags."""
    rng = random.Random(seed)
    tags = [f"Topic {i}" for i in range(TAGS)]
    authors = [f"Author {i}" for i in range(AUTHORS)]
    for number in range(count):
        yield GeneratedPost(
            number=number,
            title=f"Post {number} – {_sentence(rng, 5)[:-1]}",
            date=START + timedelta(hours=7 * number),
            author=rng.choice(authors),
            tags=tuple(rng.sample(tags, 3)),
            body=_body(rng, number),
        )


def write_posts(folder: Path, posts: Sequence[GeneratedPost]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for post in posts:
        (folder / post.file_name).write_text(post.publisher_file(), encoding="utf-8")


HUGO_CONFIG = """\
baseURL = "https://bench.example.org/"
title = "Bench"
languageCode = "en"
disableKinds = ["sitemap", "robotsTXT", "404"]

[taxonomies]
tag = "tags"
author = "authors"

[outputs]
home = ["RSS"]
section = ["RSS"]
taxonomy = ["RSS"]
term = ["RSS"]
page = []
"""


def write_hugo_site(site: Path, posts: Sequence[GeneratedPost]) -> Path:
    """A Hugo site holding ``posts`` under content/posts/; its content folder."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "config.toml").write_text(HUGO_CONFIG, encoding="utf-8")
    content = site / "content" / "posts"
    content.mkdir(parents=True, exist_ok=True)
    for post in posts:
        (content / post.file_name).write_text(post.hugo_file(), encoding="utf-8")
    return content


#: CPU seconds (user + system) of the last command :func:`timed` ran, with its children
LAST_CPU: list[float] = [0.0]


def timed(command: Sequence[str], cwd: Path) -> float:
    """Run ``command`` to the end; its wall-clock seconds (it must succeed).

    Its CPU seconds are left in ``LAST_CPU[0]``: on a machine others keep busy,
    wall-clock time measures the queue as much as the work.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU[0] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return seconds


def compile_package() -> None:
    """Write the bytecode of publisher's modules, as ``pip install`` of the wheel does.

    The benchmarks time commands as a user runs an installed publisher. In an
    editable checkout, with PYTHONDONTWRITEBYTECODE set (as in some shells and
    CI images), every command would otherwise compile each of its modules from
    source again: about a tenth of a second a command on this machine.
    """
    import compileall

    import publisher

    compileall.compile_dir(Path(publisher.__file__).parent, quiet=1)


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ", 1)[0]
    except OSError:
        return "?"
