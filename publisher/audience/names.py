"""A subscriber's name as given (the subscribe form, a CSV row, the command line).

One line of text that every database keeps as given: PostgreSQL refuses a NUL
and a name longer than the column (SQLite would keep both), so a name is
checked before any store sees it, the same way on every path.
"""

from __future__ import annotations

import unicodedata

from ..errors import NameRefused

#: longest name kept (the store's column)
MAX_NAME = 200


def tidy_name(raw: str | None) -> str | None:
    """``raw`` with its runs of white space made one space; None when empty.

    :raises NameRefused: a name too long for the store (its ``length`` set), or
        with a control character in it; for the caller to name the field.
    """
    name = " ".join(raw.split()) if raw else ""
    if any(unicodedata.category(c) == "Cc" for c in name):  # NUL, escape sequences…
        raise NameRefused("a name cannot hold control characters")
    if len(name) > MAX_NAME:
        raise NameRefused(f"a name is at most {MAX_NAME} characters ({len(name)} given)", len(name))
    return name or None
