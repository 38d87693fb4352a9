"""publisher: news posts → Atom, RSS and JSON feeds, and an email digest."""

# The one place the version is written: the wheel reads it from here
# (pyproject.toml, [tool.hatch.version]), so no command pays for
# importlib.metadata at start-up.
__version__ = "0.1.0"
