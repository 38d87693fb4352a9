"""The build's memory: which documents the last build wrote, and removing stale files.

The manifest maps each document to the fingerprint of what it was rendered
from, so a build renders only documents whose posts changed. It is build
state, not output: it lives beside the feed folder (``feeds/`` →
``.feeds.build/``), where ``publisher serve`` and a web server do not
publish it, together with the build lock. Whatever it says, a build deletes
only regular files inside the feed folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..files import write_if_changed

MANIFEST = "manifest.json"
#: where builds before this version kept the manifest: inside the served folder
OLD_MANIFEST = ".manifest.json"


def state_dir(folder: Path) -> Path:
    """The build state of the feed folder ``folder``: a hidden sibling of it."""
    return folder.parent / f".{folder.name}.build"


def load_manifest(folder: Path) -> dict[str, str]:
    """Fingerprint of each document of the last build (empty if unknown)."""
    # the old manifest was public and could be written by anyone who could
    # write the feed folder: it is never read, only removed
    (folder / OLD_MANIFEST).unlink(missing_ok=True)
    try:
        data = json.loads((state_dir(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    documents = data.get("documents", {}) if isinstance(data, dict) else {}
    if not isinstance(documents, dict):
        return {}
    return {str(k): str(v) for k, v in documents.items()}


def save_manifest(folder: Path, documents: dict[str, str]) -> None:
    # one line: json's C encoder (indent would take the pure-Python one, 10x slower)
    text = json.dumps({"documents": dict(sorted(documents.items()))}, separators=(",", ":"))
    write_if_changed(state_dir(folder) / MANIFEST, text.encode("utf-8"))


def is_inside(folder: Path, relative: str) -> bool:
    """True when ``relative`` names a regular file inside ``folder``, reached without
    leaving it (no ``..``, no absolute path, no symbolic link on the way)."""
    if not relative or relative.startswith(("/", "\\")) or "\\" in relative or "\0" in relative:
        return False
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return False
    current = folder
    for part in parts:
        current = current / part
        if current.is_symlink():
            return False
    try:
        current.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return current.is_file()


def remove_files(folder: Path, paths: Iterable[str]) -> list[str]:
    """Delete generated files that no document produces any more.

    Only regular files inside ``folder``; a path that points anywhere else
    (``../``, absolute, through a symbolic link) is left alone.
    """
    removed = []
    for relative in sorted(paths):
        if not is_inside(folder, relative):
            continue
        target = folder / relative
        target.unlink()
        removed.append(relative)
        parent = target.parent
        while parent != folder and parent.is_dir() and not any(parent.iterdir()):
            os.rmdir(parent)
            parent = parent.parent
    return removed
