"""The build's memory: which documents the last build wrote, and removing stale files.

The manifest maps each document to the fingerprint of what it was rendered
from, so a build renders only documents whose posts changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..files import write_if_changed

MANIFEST = ".manifest.json"


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
