"""publisher against Hugo on the same generated posts, side by side in one run.

For each size (default 10,000 and 1,000 posts: 500 tags, 50 authors, ~3 KB of
Markdown each, from bench/corpus.py), round after round, alternating the two:

- full: publisher ``import`` + ``build`` into a fresh database and an empty
  feed folder (and the same as one command, ``import --build``), against
  ``hugo`` into an empty public folder;
- no change: ``publisher build`` again, against ``hugo`` again (Hugo has no
  incremental build outside its server, so this is its full rebuild);
- one new post: ``publisher import`` of the new file + ``publisher build``,
  against ``hugo`` with the file added; and another new post with
  ``publisher import --build`` (the two in one command, one start-up).

Every step is a separate command as a user types it (start-up included).
Prints medians over the rounds and the ratios; the speed issue's goals are
full <= Hugo, one new post <= 0.25 of Hugo's full rebuild and under 1 s, and a
no-change build under 0.5 s at 10,000 posts.

Hugo is set up as in the issue's measurements: RSS only (home, section, tags,
authors), summaries, 554 files at 10,000 posts. publisher writes Atom, RSS and
JSON Feed for the site, every tag and author, with full content and the
site's RFC 5005 archive. Without Hugo the benchmark times publisher alone and
says how to install it (Debian/Ubuntu: ``apt-get install -y hugo``; elsewhere
see https://gohugo.io/installation/); CI does not need it.

Both sites are written in a temporary folder of the checkout, not in /tmp: on
a machine that runs test suites, /tmp is where thousands of files are deleted
every minute, and ext4 passes over recently deleted inodes when it makes a file
(``recently_deleted``), which made a file cost 0.6 ms there against 0.1 ms in a
fresh folder. Earlier rounds' output is moved aside, not deleted, for the same
reason.

    python bench/peers.py [--posts 10000 1000] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import corpus

CONFIG = """\
site: {title: Bench, base_url: "https://bench.example.org/", postal_address: x,
       timezone: Europe/Berlin}
email: {sender: "b@bench.example.org"}
database: {url: "sqlite:///bench.db"}
feeds: {output_dir: feeds}
"""


def folder_size(folder: Path) -> tuple[int, float]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 1e6


def run_size(count: int, rounds: int, hugo: str | None, where: Path) -> None:
    publisher = str(Path(sys.executable).with_name("publisher"))
    corpus.compile_package()
    posts = list(corpus.generate(count + 2 * rounds))
    with tempfile.TemporaryDirectory(prefix=".peers-", dir=where) as tmp:
        root = Path(tmp)
        pub = root / "publisher"
        pub.mkdir()
        (pub / "config.yaml").write_text(CONFIG)
        corpus.write_posts(pub / "posts", posts[:count])
        site = root / "hugo"
        content = corpus.write_hugo_site(site, posts[:count])
        times: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}

        def record(name: str, seconds: float, cpu_seconds: float | None = None) -> None:
            times.setdefault(name, []).append(seconds)
            cpu.setdefault(name, []).append(
                corpus.LAST_CPU[0] if cpu_seconds is None else cpu_seconds
            )

        def two(first: list[str], second: list[str]) -> tuple[float, float]:
            """Wall and CPU seconds of two commands run one after the other."""
            seconds = corpus.timed(first, pub)
            cpu_seconds = corpus.LAST_CPU[0]
            seconds += corpus.timed(second, pub)
            return seconds, cpu_seconds + corpus.LAST_CPU[0]

        trash = root / "trash"
        trash.mkdir()

        def fresh(*targets: Path) -> None:
            """Move what an earlier round wrote out of the way; deleted after timing.

            Not deleted now: ext4 skips inodes deleted in the last minute or so
            when it allocates new ones (``recently_deleted``), so a build into a
            folder emptied just before pays for every file the last round wrote,
            and the more files, the more so.
            """
            for target in targets:
                if target.exists():
                    target.rename(trash / f"{len(list(trash.iterdir()))}-{target.name}")

        def publisher_fresh() -> None:
            fresh(pub / "bench.db", pub / "feeds", pub / "new")
            corpus.timed([publisher, "init"], pub)

        for round_number in range(rounds):
            # publisher: a fresh database and feed folder, then import + build
            publisher_fresh()
            record("publisher full", *two([publisher, "import", "posts"], [publisher, "build"]))
            publisher_fresh()
            record(
                "publisher full, 1 cmd",
                corpus.timed([publisher, "import", "posts", "--build"], pub),
            )
            if hugo:
                for new in content.glob("new-*.md"):
                    new.unlink()
                fresh(site / "public")
                record("hugo full", corpus.timed([hugo, "--quiet", "-s", str(site)], root))

            record("publisher no change", corpus.timed([publisher, "build"], pub))
            if hugo:
                record("hugo no change", corpus.timed([hugo, "--quiet", "-s", str(site)], root))

            new_post = posts[count + round_number]
            (pub / "new").mkdir()
            new_file = pub / "new" / new_post.file_name
            new_file.write_text(new_post.publisher_file(), encoding="utf-8")
            record(
                "publisher one new post",
                *two([publisher, "import", str(new_file)], [publisher, "build"]),
            )
            # the same in one command: import --build (one start-up, not two)
            newer = posts[count + rounds + round_number]
            newer_file = pub / "new" / newer.file_name
            newer_file.write_text(newer.publisher_file(), encoding="utf-8")
            record(
                "publisher one new, 1 cmd",
                corpus.timed([publisher, "import", str(newer_file), "--build"], pub),
            )
            if hugo:
                (content / f"new-{new_post.file_name}").write_text(
                    new_post.hugo_file(), encoding="utf-8"
                )
                record("hugo one new post", corpus.timed([hugo, "--quiet", "-s", str(site)], root))

        files, megabytes = folder_size(pub / "feeds")
        print(
            f"\n{count:,} posts, {rounds} rounds, medians (fastest), CPU seconds "
            "(user + system, Hugo's on all its threads); "
            f"load average {corpus.load_average()}"
        )
        print(f"  publisher writes {files:,} files, {megabytes:,.0f} MB")
        if hugo:
            files, megabytes = folder_size(site / "public")
            print(f"  hugo writes      {files:,} files, {megabytes:,.0f} MB")
        medians = {name: statistics.median(runs) for name, runs in times.items()}
        for name, runs in times.items():
            print(
                f"  {name:<24} {medians[name]:7.2f} s ({min(runs):.2f}); "
                f"CPU {statistics.median(cpu[name]):6.2f} s"
            )
        one = medians["publisher one new post"]
        unchanged = medians["publisher no change"]
        if not hugo:
            print(f"  one new post {one:.2f} s (goal < 1 s); no change {unchanged:.2f} s")
            return
        full = medians["publisher full"] / medians["hugo full"]
        new = one / medians["hugo full"]
        full_one = medians["publisher full, 1 cmd"] / medians["hugo full"]
        print(f"  full import + build / Hugo full:        {full:5.2f}  (goal <= 1.0)")
        print(f"    the same with import --build:          {full_one:5.2f}")
        print(f"  one new post / Hugo full rebuild:        {new:5.2f}  (goal <= 0.25, and < 1 s)")
        one_command = medians["publisher one new, 1 cmd"] / medians["hugo full"]
        print(f"    the same with import --build:          {one_command:5.2f}")
        print(
            f"  no-change build / Hugo rebuild:          "
            f"{unchanged / medians['hugo no change']:5.2f}  "
            f"({unchanged:.2f} s; goal < 0.5 s at 10,000 posts)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, nargs="+", default=[10_000, 1_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="where the two sites are written (default: the checkout, not /tmp: see below)",
    )
    args = parser.parse_args()
    hugo = shutil.which("hugo")
    if hugo is None:
        print(
            "hugo is not installed: timing publisher alone. To compare, install it "
            "(Debian/Ubuntu: apt-get install -y hugo; elsewhere https://gohugo.io/installation/)"
        )
    for count in args.posts:
        run_size(count, args.rounds, hugo, args.dir)


if __name__ == "__main__":
    main()
