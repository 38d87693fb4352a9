"""Writing generated files: atomically, and only when their bytes change.

A reader must never fetch half a file, and a file whose content did not
change keeps its mtime (and so its Last-Modified and ETag), which is what
lets caches and feed readers get ``304 Not Modified``.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError

# ".atom.xml.4711.k3j2h1.tmp": the writer's process id is in the name, so a
# later build can tell the leftovers of a killed process from a live write
_TEMPORARY = re.compile(r"^\..+?(?:\.(\d+))?\.[A-Za-z0-9_]+\.tmp$")
#: a temporary file without a process id (from an older version) is stale after this
_OLD_TEMPORARY_SECONDS = 600


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
        fd, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
        )
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


def existing_files(root: Path) -> set[str]:
    """Paths of the files under ``root``, relative to it, ``/``-separated (one walk,
    not a stat per file; as ``os.walk`` lists them: links to folders are neither
    files nor followed)."""
    found: set[str] = set()
    pending = [(str(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if not entry.is_dir():
                    found.add(prefix + entry.name)
                elif not entry.is_symlink():
                    pending.append((entry.path, f"{prefix}{entry.name}/"))
    return found


def remove_stale_temporaries(root: Path, files: Iterable[str] | None = None) -> list[str]:
    """Delete the temporary files that writers killed mid-write left under ``root``.

    A file whose writer process still runs is left alone; so is anything
    that is not one of :func:`write_if_changed`'s temporary files.

    :param files: what :func:`existing_files` lists under ``root``, when the
        caller has it already (one walk of a large folder, not two).
    :returns: the removed files, relative to ``root``.
    """
    removed = []
    for relative in existing_files(root) if files is None else files:
        match = _TEMPORARY.match(relative.rsplit("/", 1)[-1])
        if match is None:
            continue
        path = root / relative
        if match[1] is not None:
            stale = not _is_running(int(match[1]))
        else:
            try:
                stale = time.time() - path.lstat().st_mtime > _OLD_TEMPORARY_SECONDS
            except FileNotFoundError:
                continue
        if stale:
            path.unlink(missing_ok=True)
            removed.append(relative)
    return removed


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    except OverflowError:
        return False
    return True


@contextmanager
def exclusive_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs.

    A second holder waits; ``on_wait`` is called once first, so it can say so.
    The lock is the kernel's (``flock``): it is released when the process
    ends, however it ends, so a killed build never leaves a stale lock.

    :raises OutputError: when the lock file cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+b")
    except OSError as e:
        raise OutputError(f"{path}: cannot create the lock file: {e.strerror}") from e
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
