"""publisher: news posts → Atom, RSS and JSON feeds, and an email digest."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("publisher")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
