"""The one rule for URLs that enter or leave the publisher.

Pure and dependency-free, so the config, the content parsers, the feeds and
the mail all apply the same rule: a link is ``http``, ``https`` or ``mailto``
(relative links are made absolute against the site), and nothing else.
``javascript:``, ``data:``, ``vbscript:``, ``file:`` and every other scheme are
refused, also when disguised the ways browsers still understand: character
references (``&#106;avascript:``), tabs, line breaks and control characters
inside the scheme (``java\\tscript:``), leading spaces, mixed case.

Spec: https://url.spec.whatwg.org/#concept-basic-url-parser (browsers strip
leading and trailing C0 controls and spaces, and remove every tab and newline,
before they read the scheme).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

#: the schemes a link may use anywhere
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
#: the schemes of a web address (config URLs, feed and site links)
WEB_SCHEMES = frozenset({"http", "https"})
#: longer URLs are refused: browsers and servers cut them around here
MAX_URL_LENGTH = 2048

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
# C0 controls, space, DEL, and the Unicode line and paragraph separators
_CONTROL_OR_SPACE = re.compile("[\x00-\x20\x7f\x85\u2028\u2029]")


class UnsafeUrl(ValueError):
    """A URL the publisher will not pass on.

    :param url: the URL as given.
    :param why: what is wrong with it, and what is accepted instead.
    """

    def __init__(self, url: str, why: str) -> None:
        self.url = url
        self.why = why
        super().__init__(why)


def revealed_scheme(url: str) -> str | None:
    """The scheme a browser would read in ``url``, lower-case (None when relative).

    Undoes the disguises: character references (decoded until nothing
    changes), and the controls and whitespace browsers drop.
    """
    if "&" not in url and _CONTROL_OR_SPACE.search(url) is None:
        match = _SCHEME.match(url)  # the common case: nothing disguised
        return match[1].lower() if match else None
    text = url
    for _ in range(4):  # &amp;#106; → &#106; → j
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    text = _CONTROL_OR_SPACE.sub("", text)
    match = _SCHEME.match(text)
    return match[1].lower() if match else None


def check_url(
    url: str,
    base: str | None = None,
    schemes: frozenset[str] = LINK_SCHEMES,
) -> str:
    """``url`` checked and normalised, or :class:`UnsafeUrl` saying why not.

    :param base: relative URLs are resolved against it; without one they are refused.
    :param schemes: the schemes allowed (lower-case).
    :returns: the URL, absolute, with surrounding whitespace removed and the
        scheme in lower case.
    """
    allowed = ", ".join(sorted(schemes))
    value = url.strip(" \t\r\n\f\v")
    if not value:
        raise UnsafeUrl(url, "is empty")
    if len(value) > MAX_URL_LENGTH:
        raise UnsafeUrl(url, f"is longer than {MAX_URL_LENGTH} characters")
    scheme = revealed_scheme(value)
    if scheme is not None and scheme not in schemes:
        raise UnsafeUrl(url, f"uses the scheme {scheme!r}; only {allowed} links are allowed")
    if _CONTROL_OR_SPACE.search(value):
        raise UnsafeUrl(
            url, "contains a space, line break or control character; write a space as %20"
        )
    written = _SCHEME.match(value)
    if scheme is not None and (written is None or written[1].lower() != scheme):
        # the scheme only appears once character references are decoded
        raise UnsafeUrl(url, "spells its scheme with character references; write it plainly")
    if scheme is None:
        if base is None:
            raise UnsafeUrl(url, f"is not an absolute URL; write it with {allowed}")
        value = urljoin(base, value)
        scheme = revealed_scheme(value)
        if scheme not in schemes:
            raise UnsafeUrl(url, f"is not an absolute URL; write it with {allowed}")
    value = scheme + value[len(scheme) :]
    if scheme in WEB_SCHEMES:
        try:
            parts = urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as e:
            raise UnsafeUrl(url, f"is not a valid URL ({e})") from None
        if not host:
            raise UnsafeUrl(url, "has no host name; write it as https://example.org/…")
    elif scheme == "mailto" and not value[len("mailto:") :]:
        raise UnsafeUrl(url, "names no address after mailto:")
    return value


def safe_url(url: str | None, base: str | None = None) -> str | None:
    """For values on their way out: the checked URL, or None when it is not safe.

    Stored values were checked when they came in; this catches rows written
    by another tool, so they cannot reach a reader either.
    """
    if not url:
        return None
    try:
        return check_url(url, base)
    except UnsafeUrl:
        return None
