"""YAML made of one-line ``key: value`` pairs, read without building a node tree.

Most front matter is a handful of such lines (``title: …``, ``date: …``,
``status: …``, ``author: …``, ``tags: [a, b]``). Reading them with a few
regular expressions costs a fraction of libyaml's node tree (with a line mark
for every node) and the located construction and checks in :mod:`.yamlsource`.

Only a narrow subset is read here: at the top level, a key (letters, digits,
``_`` and ``-``) and, on the same line, nothing, a plain scalar, a quoted
string with the simplest escapes, or a flow list of those; blank lines and
whole-line comments between them. Anything else (nesting, block scalars,
anchors, tags, a comment after a value, a key written twice, tabs, a
character YAML reads as a line break) gives ``None``, and the caller reads the
text the long way, which also reports every problem with its line. A plain
scalar is typed by PyYAML's own resolver and made by its own constructor
(``yes``, ``1.5``, ``2019-12-05`` mean what they mean to PyYAML).
``tests/unit/test_plainyaml.py`` holds the two ways to the same data.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

_STR = "tag:yaml.org,2002:str"
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()

#: the text as a whole: printable, no tab, and no line break but "\n" (YAML also
#: breaks lines at \r, NEL, U+2028 and U+2029); no byte order mark
_SAFE_TEXT = re.compile(
    "[\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)
_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,200}):(?: +(.*))?")
# where a plain scalar may start: not an indicator (- ? : , [ ] { } # & * ! | > ' " % @ `)
_START = "A-Za-z0-9_(.+~\u00a1-\U0010ffff"
#: a plain scalar in block context: no comment, no ": " (and not ending in a space)
_PLAIN = re.compile(f"[{_START}](?:[^#:]|:(?! |$))*(?<! )")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_DOUBLE = re.compile(r'"((?:[^"\\]|\\["\\ntrbf]|\\u[0-9A-Fa-f]{4})*)"')
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)")
_SINGLE = re.compile(r"'((?:[^']|'')*)'")
#: one item of a flow list and what follows it (a comma or the closing bracket)
_ITEM = re.compile(
    r' *(?:"((?:[^"\\]|\\["\\ntrbf]|\\u[0-9A-Fa-f]{4})*)"'
    r"|'((?:[^']|'')*)'"
    f"|([{_START}](?:[^,\\[\\]{{}}#:?\"' ]| +[^,\\[\\]{{}}#:?\"' ])*))"
    r" *([,\]])"
)
_EMPTY_LIST = re.compile(r"\[ *\]")


class _NotPlain(Exception):
    """The text is outside the subset read here."""


def plain_mapping(text: str) -> dict[str, Any] | None:
    """The data of ``text`` if it is one-line ``key: value`` pairs, else None."""
    if not _SAFE_TEXT.fullmatch(text):
        return None
    data: dict[str, Any] = {}
    try:
        for line in text.split("\n"):
            if not line or line[0] == "#":
                continue
            match = _LINE.fullmatch(line)
            if match is None:
                return None
            key, value = match.groups()
            if key in data or not _is_string_key(key):
                return None
            data[key] = None if value is None else _value(value)
    except (_NotPlain, ValueError, OverflowError, yaml.YAMLError):
        # e.g. a date YAML recognises that does not exist: the long way says where
        return None
    return data or None


def _value(text: str) -> Any:
    if not text:  # "key: " (a trailing space)
        raise _NotPlain
    first = text[0]
    if first == '"':
        match = _DOUBLE.fullmatch(text)
        if match is None:
            raise _NotPlain
        return _unescape(match[1])
    if first == "'":
        match = _SINGLE.fullmatch(text)
        if match is None:
            raise _NotPlain
        return match[1].replace("''", "'")
    if first == "[":
        return _list(text)
    if _PLAIN.fullmatch(text) is None:
        raise _NotPlain
    return _scalar(text)


def _list(text: str) -> list[Any]:
    if _EMPTY_LIST.fullmatch(text):
        return []
    items: list[Any] = []
    position = 1
    while True:
        match = _ITEM.match(text, position)
        if match is None:
            raise _NotPlain
        double, single, plain, end = match.groups()
        if double is not None:
            items.append(_unescape(double))
        elif single is not None:
            items.append(single.replace("''", "'"))
        else:
            items.append(_scalar(plain))
        position = match.end()
        if end == "]":
            if position != len(text):
                raise _NotPlain
            return items


def _unescape(text: str) -> str:
    return _ESCAPE.sub(_escaped, text) if "\\" in text else text


def _escaped(match: re.Match[str]) -> str:
    code = match[1]
    if code[0] == "u":
        value = int(code[1:], 16)
        if 0xD800 <= value <= 0xDFFF:  # a lone surrogate: libyaml's own error
            raise _NotPlain
        return chr(value)
    return _ESCAPES[code]


@lru_cache(maxsize=256)
def _is_string_key(key: str) -> bool:
    """Whether PyYAML reads ``key`` as a string (not ``yes``, ``null``…); keys recur."""
    return _resolve(key) == _STR


def _resolve(value: str) -> str:
    return str(_RESOLVER.resolve(yaml.ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]


def _scalar(value: str) -> Any:
    """A plain scalar as PyYAML reads it: a string, or what its tag's constructor makes."""
    when = _DATETIME.fullmatch(value)
    if when is not None:  # what PyYAML's timestamp constructor makes of it, ~5x faster
        return _datetime(when)
    tag = _resolve(value)
    if tag == _STR:
        return value
    node = yaml.ScalarNode(tag, value)
    return SafeConstructor.yaml_constructors[tag](_CONSTRUCTOR, node)


#: the usual form of a front-matter date: PyYAML resolves it as a timestamp
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:Z|([-+])([0-9]{2}):([0-9]{2}))"
)


def _datetime(match: re.Match[str]) -> datetime:
    """As PyYAML's ``construct_yaml_timestamp`` builds it (an aware datetime)."""
    year, month, day, hour, minute, second, sign, tz_hour, tz_minute = match.groups()
    zone = UTC
    if sign is not None:
        delta = timedelta(hours=int(tz_hour), minutes=int(tz_minute))
        zone = timezone(-delta if sign == "-" else delta)
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
    )
