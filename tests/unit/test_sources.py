"""Reading what to import: which files a folder holds, in which order, and how much of each."""

from __future__ import annotations

import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from publisher.content import sources
from publisher.content.sources import _post_files, _read, collect_sources


def make_tree(root: Path) -> None:
    for name in (
        "a/b.md",
        "a-c/x.md",
        "a/sub/deeper.md",
        "a.md",
        "B.md",
        ".hidden.md",
        "notes.txt",
        "z/readme.MD",
        "x.md.bak",
    ):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\ntitle: t\n---\n")
    (root / "empty-dir.md").mkdir()
    (root / "linked").symlink_to(root / "a", target_is_directory=True)


# The files and their order are those of sorted(Path.rglob("*.md")), which the
# import used before: problems and duplicates are reported in that order.
def test_a_folder_lists_what_rglob_listed_in_the_same_order(tmp_path: Path) -> None:
    make_tree(tmp_path)
    expected = [str(p) for p in sorted(tmp_path.rglob("*.md")) if p.is_file()]
    assert _post_files(str(tmp_path)) == expected
    assert [s.label for s in collect_sources(str(tmp_path))] == expected


# A file is read up to one byte past the limit, so the parser can say it is too big.
def test_a_file_is_read_to_one_byte_past_the_limit(tmp_path: Path) -> None:
    small, large = tmp_path / "small.md", tmp_path / "large.md"
    small.write_bytes(b"x" * 10)
    large.write_bytes(b"y" * 100)
    assert _read(small, 50) == b"x" * 10
    assert _read(large, 50) == b"y" * 51
    assert _read(large, 100) == b"y" * 100


# An import started from a thread (where a fork could copy a lock another thread
# holds) parses in spawned workers, and gets the same drafts, in source order.
@pytest.mark.parametrize("threaded", [False, True])
def test_a_parallel_import_reads_every_post_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threaded: bool
) -> None:
    for n in range(6):
        (tmp_path / f"post-{n}.md").write_text(
            f"---\ntitle: Post {n}\ndate: 2019-12-0{n + 1}\nstatus: published\n---\nBody {n}.\n"
        )
    monkeypatch.setattr(sources, "PARALLEL_THRESHOLD", 3)
    zone = ZoneInfo("Europe/Berlin")
    found: list[sources.Drafts] = []

    def read() -> None:
        found.append(sources.read_drafts(collect_sources(str(tmp_path)), zone))

    if threaded:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    else:
        read()
    assert [d.title for d in found[0].drafts] == [f"Post {n}" for n in range(6)]
