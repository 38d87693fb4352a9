"""Reading what to import: which files a folder holds, in which order, and how much of each."""

from __future__ import annotations

import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from publisher.content import sources
from publisher.content.postfile import source_hash
from publisher.content.sources import _post_files, _read, collect_sources
from publisher.errors import ContentError, ImportFailed


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


def write_posts(folder: Path, count: int) -> list[Path]:
    paths = []
    for n in range(count):
        path = folder / f"post-{n}.md"
        path.write_text(
            f"---\ntitle: Post {n}\ndate: 2019-12-0{n + 1}\nstatus: published\n---\nBody {n}.\n"
        )
        paths.append(path)
    return paths


def read_folder(
    folder: Path, zone: ZoneInfo, known: frozenset[str] = frozenset(), threaded: bool = False
) -> sources.Drafts:
    """``read_drafts`` of every post in ``folder``, here or from a thread of its own
    (where the pool's workers are spawned, not forked)."""
    found: list[sources.Drafts] = []

    def read() -> None:
        found.append(sources.read_drafts(collect_sources(str(folder)), zone, known))

    if threaded:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    else:
        read()
    return found[0]


# An import started from a thread (where a fork could copy a lock another thread
# holds) parses in spawned workers, and gets the same drafts, in source order.
@pytest.mark.parametrize("threaded", [False, True])
def test_a_parallel_import_reads_every_post_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threaded: bool
) -> None:
    write_posts(tmp_path, 6)
    monkeypatch.setattr(sources, "PARALLEL_THRESHOLD", 3)
    found = read_folder(tmp_path, ZoneInfo("Europe/Berlin"), threaded=threaded)
    assert [d.title for d in found.drafts] == [f"Post {n}" for n in range(6)]


# Files whose fingerprint is stored are not parsed again, whether this process
# reads them or the pool's workers do (forked, or spawned from a thread: the
# fingerprints reach them either way); the rest are parsed, in source order.
@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("threshold", [3, 1000])
def test_files_imported_before_as_they_are_are_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threaded: bool, threshold: int
) -> None:
    paths = write_posts(tmp_path, 6)
    zone = ZoneInfo("Europe/Berlin")
    known = frozenset(source_hash(paths[n].read_bytes(), str(paths[n]), zone) for n in (0, 2, 3))
    monkeypatch.setattr(sources, "PARALLEL_THRESHOLD", threshold)
    found = read_folder(tmp_path, zone, known, threaded)
    assert found.unchanged == [str(paths[n]) for n in (0, 2, 3)]
    assert [d.title for d in found.drafts] == ["Post 1", "Post 4", "Post 5"]


# A file listed and then gone (or unreadable) before its turn is a problem named
# after it, like a bad post: nothing is imported, and no traceback.
@pytest.mark.parametrize("threshold", [3, 1000])
def test_a_file_gone_before_it_is_read_is_a_problem_named_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    paths = write_posts(tmp_path, 5)
    monkeypatch.setattr(sources, "PARALLEL_THRESHOLD", threshold)
    listed = collect_sources(str(tmp_path))
    paths[3].unlink()
    with pytest.raises(ImportFailed) as failed:
        sources.read_drafts(listed, ZoneInfo("Europe/Berlin"))
    [problem] = failed.value.errors
    assert problem.source == str(paths[3])
    assert "cannot be read" in problem.message


# A post file that is a link to nothing (the file it named moved away) is not
# passed over in silence: the import names it and where it pointed, whether the
# folder or the file itself is imported.
def test_a_link_to_a_post_file_that_is_gone_is_named(tmp_path: Path) -> None:
    write_posts(tmp_path, 2)
    link = tmp_path / "moved.md"
    link.symlink_to(tmp_path / "elsewhere" / "moved.md")
    with pytest.raises(ImportFailed) as failed:
        sources.read_drafts(collect_sources(str(tmp_path)), ZoneInfo("Europe/Berlin"))
    [problem] = failed.value.errors
    assert problem.source == str(link)
    assert problem.message == f"is a link to {tmp_path}/elsewhere/moved.md, which does not exist"

    with pytest.raises(ContentError) as alone:
        collect_sources(str(link))
    assert alone.value.source == str(link) and alone.value.message == problem.message
