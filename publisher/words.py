"""Words for people: a count with its noun."""

from __future__ import annotations


def counted(number: int, noun: str) -> str:
    """``1 post``, ``2 posts``, ``10,000 posts``.

    >>> counted(1, "subscriber"), counted(1200, "post")
    ('1 subscriber', '1,200 posts')
    """
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
