"""Writing generated files: atomically, and only when their bytes change.

A reader must never fetch half a file, and a file whose content did not
change keeps its mtime (and so its Last-Modified and ETag), which is what
lets caches and feed readers get ``304 Not Modified``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError


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
