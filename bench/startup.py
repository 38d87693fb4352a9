"""Start-up benchmark: how long the commands people type most take, end to end.

On 1,000 generated posts (bench/corpus.py) in a fresh SQLite database, after one
import and one build, times as separate processes, interleaved round after round:

- ``publisher --help``                      (goal <= 0.3 s)
- ``publisher posts list`` (CSV to a pipe)   (goal <= 0.5 s)
- ``publisher build`` with nothing changed   (goal <= 0.6 s)
- ``python -c pass``: the interpreter's own start, the floor under all of them.

Prints the median of each (and the fastest run), and its ratio to the goal.
With ``--baseline PATH`` (another checkout's ``publisher`` script, e.g. main's),
runs it on the same database in the same rounds and prints the ratio too.

    python bench/startup.py [--posts N] [--rounds R] [--baseline PATH]
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
#: the baseline's bytecode, written with its own interpreter (see corpus.compile_package)
COMPILE = (
    "import compileall, os, publisher; "
    "compileall.compile_dir(os.path.dirname(publisher.__file__), quiet=1)"
)
GOALS = {"--help": 0.3, "posts list": 0.5, "build (no change)": 0.6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--baseline", type=Path, help="another publisher script to compare")
    args = parser.parse_args()
    publisher = str(Path(sys.executable).with_name("publisher"))
    corpus.compile_package()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "this"
        root.mkdir()
        (root / "config.yaml").write_text(CONFIG)
        corpus.write_posts(root / "posts", list(corpus.generate(args.posts)))
        for step in (["init"], ["import", "posts"], ["build"]):
            corpus.timed([publisher, *step], root)
        folders = {"this": root}
        if args.baseline:  # its own copy of the site: its feeds differ, so must its manifest
            corpus.timed([str(args.baseline.with_name("python")), "-c", COMPILE], root)
            folders["baseline"] = Path(tmp) / "baseline"
            shutil.copytree(root, folders["baseline"])
            corpus.timed([str(args.baseline), "build"], folders["baseline"])

        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--help": ["--help"],
            "posts list": ["posts", "list"],
            "build (no change)": ["build"],
        }
        scripts = {"this": publisher}
        if args.baseline:
            scripts["baseline"] = str(args.baseline)
        times: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name, command in commands.items():
                for label, script in scripts.items():
                    if name.startswith("python") and label != "this":
                        continue
                    full = command if name.startswith("python") else [script, *command]
                    times.setdefault((name, label), []).append(corpus.timed(full, folders[label]))
                    cpu.setdefault((name, label), []).append(corpus.LAST_CPU[0])

        print(
            f"start-up at {args.posts:,} posts, {args.rounds} interleaved rounds, "
            f"median (fastest); load average {corpus.load_average()}"
        )
        for name in commands:
            runs = times[(name, "this")]
            median = statistics.median(runs)
            line = (
                f"  {name:<20} {median:6.3f} s ({min(runs):.3f}), "
                f"CPU {statistics.median(cpu[(name, 'this')]):.3f} s"
            )
            if name in GOALS:
                goal = GOALS[name]
                verdict = "ok" if median <= goal else "MISSED"
                line += f"  goal <= {goal} s: {median / goal:4.2f} of it, {verdict}"
            if ("build (no change)", "baseline") in times and name in GOALS:
                base = statistics.median(times[(name, "baseline")])
                line += f"; baseline {base:.3f} s, this/baseline {median / base:.2f}"
            print(line)


if __name__ == "__main__":
    main()
