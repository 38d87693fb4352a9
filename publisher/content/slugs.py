"""Slugs: the URL-safe names of posts, tags and authors, for every script.

python-slugify transliterates (李明 → ``li-ming``, Иван Петров →
``ivan-petrov``), so a name in any script gets a readable ASCII slug. Two
different names can still share one (``C`` and ``C++`` without help, ``Li
Ming`` and 李明); :func:`unique_slug` gives the later one a numbered suffix,
so two tags or authors are never merged because their slugs collide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container
from datetime import date
from functools import lru_cache

from slugify import slugify as _transliterate

#: the longest slug the store takes (``String(200)`` columns)
MAX_SLUG = 200

# "C++" and "C#" are names, not "c": spell the signs after a letter out
_SIGNS = ((re.compile(r"(?<=[\w+])\+"), " plus "), (re.compile(r"(?<=\w)#"), " sharp "))


# already a slug: python-slugify would give it back as it is
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


# Cached: an import slugs every post's tags and author, the same few hundred
# names over and over, and python-slugify takes ~60 µs a call.
@lru_cache(maxsize=4096)
def slugify(text: str, max_length: int = MAX_SLUG) -> str:
    """A URL slug: lower-case ASCII letters, digits and hyphens (may be empty).

    Curly quotes and dashes vanish, accented letters lose their accents,
    other scripts are transliterated.
    """
    if len(text) <= max_length and _SLUG.fullmatch(text):
        return text
    for pattern, word in _SIGNS:
        text = pattern.sub(word, text)
    # an apostrophe joins a word ("what's" → "whats"), as it did before transliteration
    text = text.replace("'", "").replace("\u2019", "")
    return _transliterate(text, max_length=max_length, word_boundary=True, save_order=True)


def unique_slug(wanted: str, taken: Container[str], max_length: int = MAX_SLUG) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``… : the first not in ``taken``."""
    if wanted not in taken:
        return wanted
    number = 2
    while True:
        candidate = _suffixed(wanted, f"-{number}", max_length)
        if candidate not in taken:
            return candidate
        number += 1


def dated_slugs(slug: str, day: date, key: str) -> list[str]:
    """The slugs, in order, for a post whose ``slug`` another holds and that no one can
    rename (a feed entry): ``slug`` with its day after it, then with a part of
    ``key``'s hash too (its id: two on one day). The same post always gets the same."""
    stamp = day.isoformat()
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return [_suffixed(slug, f"-{stamp}", MAX_SLUG), _suffixed(slug, f"-{stamp}-{digest}", MAX_SLUG)]


def _suffixed(slug: str, suffix: str, max_length: int) -> str:
    return slug[: max_length - len(suffix)].rstrip("-") + suffix
