"""Plain text fit for XML, a database and a header. Pure, and light (a regex):
the feed planner uses it without loading the Markdown and HTML stack."""

from __future__ import annotations

import re

# XML 1.0 §2.2 Char: everything else (NUL, most C0 controls, lone surrogates,
# U+FFFE/U+FFFF) makes a document that no parser accepts, and a database
# may refuse it too (PostgreSQL text holds no NUL; UTF-8 has no surrogates).
_NOT_XML_CHAR = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids."""
    return _NOT_XML_CHAR.sub("", text)
