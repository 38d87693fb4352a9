"""Sanitising: the one allow-list every post body passes through on its way
out, and the checks that name what it would remove.

Pure functions. Everything a post says goes through :func:`sanitize_html`
(nh3, an allow-list) before it reaches a feed, an email or a web page
(:mod:`~publisher.content.public`, the one way out of the store): no script,
no event handlers, no ``javascript:`` URLs. A Markdown post's ``body_html``
is stored as rendered, not sanitised: the store is not trusted (another tool
may write it), so sanitising on the way in as well only cost time.
:func:`unsafe_links` finds the links nh3 would drop, and
:func:`dropped_element` the elements it would drop with what they hold (an
iframe, a style sheet), so that an import can refuse them by name instead of
losing them silently.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

import nh3

from ..links import LINK_SCHEMES, revealed_scheme

ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) | {"figure", "figcaption"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "a": {"href", "hreflang", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "figure": {"class", "data-provider", "data-video-id"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "td": {"align", "colspan", "rowspan"},
}
URL_SCHEMES = set(LINK_SCHEMES)


def sanitize_html(fragment: str) -> str:
    """Keep only harmless HTML: allow-listed tags, attributes and URL schemes."""
    return str(_cleaner().clean(fragment))


@lru_cache(maxsize=1)
def _cleaner() -> Any:
    """nh3's cleaner, configured once (configuring it on every call doubled its cost)."""
    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


# An attribute's value as written (quoted or not), found from its "=" (a
# literal the regex engine scans for quickly), and the name just before it.
# Only detection: nh3 is what removes them.
_ATTRIBUTE_VALUE = re.compile(r"""=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""")
_ATTRIBUTE_NAME = re.compile(r"([A-Za-z:_-]+)\s*$")
_URL_ATTRIBUTES = frozenset(
    "href src cite action formaction poster background srcset xlink:href data longdesc "
    "lowsrc dynsrc ping manifest codebase usemap".split()
)


def unsafe_links(fragment: str) -> list[str]:
    """URLs in an HTML fragment whose scheme is not http, https or mailto.

    Finds them however disguised (character references, controls or
    whitespace inside the scheme, mixed case).
    """
    found = []
    for match in _ATTRIBUTE_VALUE.finditer(fragment):
        value = match[1] if match[1] is not None else match[2] or match[3] or ""
        scheme = revealed_scheme(value)
        if scheme is None or scheme in URL_SCHEMES:
            continue
        name = _ATTRIBUTE_NAME.search(fragment, max(0, match.start() - 40), match.start())
        if name is not None and name[1].lower() in _URL_ATTRIBUTES:
            found.append(html.unescape(value))
    return found


#: elements the allow-list drops together with what they do or hold: an embed, a
#: script, a style sheet, a form. (Tags it merely unwraps, such as ``<font>``,
#: keep their text and are left to it.)
_DROPPED = (
    frozenset(
        "script style iframe frame frameset object embed applet video audio canvas svg math "
        "form input button select textarea noscript template".split()
    )
    - ALLOWED_TAGS
)
_START_TAG = re.compile(r"<(" + "|".join(sorted(_DROPPED)) + r")(?=[\s/>])", re.IGNORECASE)
_EMBEDS = frozenset("iframe frame frameset object embed applet video audio".split())


def dropped_element(fragment: str) -> str | None:
    """The first element of an HTML fragment that sanitising would remove with
    what it does or holds (``iframe``, ``script``, ``style``…), or None.

    Text is escaped in rendered Markdown (``&lt;iframe``), so only elements
    written as HTML are found, not ones shown in code.
    """
    match = _START_TAG.search(fragment)
    return match[1].lower() if match else None


def dropped_elements(fragment: str) -> list[str]:
    """Every kind of element :func:`dropped_element` finds, each once, in order."""
    return list(dict.fromkeys(match[1].lower() for match in _START_TAG.finditer(fragment)))


def describe_dropped_element(name: str) -> str:
    if name in _EMBEDS:
        advice = (
            "for a YouTube or Vimeo video write `::: video URL` on a line of its own "
            "(and `:::` after its caption); for anything else, link to it"
        )
    elif name == "style":
        advice = "posts take their look from the site's and the email's templates"
    elif name == "script":
        advice = "nothing runs in feeds or email"
    else:
        advice = "feeds and email cannot carry it; link to a page that has it"
    return f"<{name}> would be removed from the post, with what it holds: {advice}"


def describe_unsafe_link(url: str) -> str:
    scheme = revealed_scheme(url)
    shown = url if len(url) <= 60 else url[:57] + "..."
    return (
        f"link {shown!r} uses the scheme {scheme!r}; only http, https and mailto links "
        "(or relative ones) are allowed"
    )


_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|h[1-6]|li|ul|ol|blockquote|figure|figcaption|table|tr|td|th|pre)\b[^>]*>", re.I
)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment, whitespace folded (for excerpts)."""
    spaced = _BLOCK_TAG.sub(r" \g<0>", fragment)
    text = nh3.clean(spaced, tags=set(), strip_comments=True)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()
