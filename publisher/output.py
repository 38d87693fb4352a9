"""Writing generated files: atomically, and only when their bytes change.

A reader must never fetch half a feed, and a file whose content did not
change keeps its mtime (and so its Last-Modified and ETag), which is what
lets caches and feed readers get ``304 Not Modified``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import PublisherError

MANIFEST = ".manifest.json"


class OutputError(PublisherError):
    """A generated file cannot be written."""


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly that.

    The new content goes to a temporary file in the same folder, then
    replaces the old one in a single rename.

    :returns: True when the file was written.
    :raises OutputError: naming the file and the reason.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as e:
        raise OutputError(f"{path}: cannot be read: {e.strerror}") from e
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise OutputError(
            f"{path}: cannot be written: {e.strerror}; check that the folder exists and is "
            "writable (feeds.output_dir in config.yaml)"
        ) from e
    return True


def load_manifest(folder: Path) -> dict[str, str]:
    """Fingerprint of each document of the last build (empty if unknown)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    documents = data.get("documents", {}) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in documents.items()}


def save_manifest(folder: Path, documents: dict[str, str]) -> None:
    text = json.dumps({"documents": dict(sorted(documents.items()))}, indent=0)
    write_if_changed(folder / MANIFEST, text.encode("utf-8"))


def remove_files(folder: Path, paths: Iterable[str]) -> list[str]:
    """Delete generated files that no document produces any more."""
    removed = []
    for relative in sorted(paths):
        target = folder / relative
        if target.is_file():
            target.unlink()
            removed.append(relative)
            parent = target.parent
            while parent != folder and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return removed
