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
#: bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069):
#: no one's name needs them, and one left open in a name runs on into the text
#: around it wherever it is shown (a page reads backwards from there)
BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def tidy_name(raw: str | None) -> str | None:
    """``raw`` with its runs of white space made one space and its bidirectional
    controls (:data:`BIDI_CONTROLS`) dropped; None when empty.

    :raises NameRefused: a name too long for the store (its ``length`` set), or
        with a control character in it; for the caller to name the field.
    """
    name = " ".join(raw.translate(BIDI_CONTROLS).split()) if raw else ""
    if any(unicodedata.category(c) == "Cc" for c in name):  # NUL, escape sequences…
        raise NameRefused("a name cannot hold control characters")
    if len(name) > MAX_NAME:
        raise NameRefused(f"a name is at most {MAX_NAME} characters ({len(name)} given)", len(name))
    return name or None
