"""Markdown → safe HTML, and the video directive.

Pure functions. Everything a post says goes through :func:`sanitize_html`
(nh3, an allow-list), so stored ``body_html`` is safe to put in a feed, an
email or a web page as it is: no script, no event handlers, no
``javascript:`` URLs.

A video is written in Markdown as a directive::

    ::: video https://www.youtube.com/watch?v=dQw4w9WgXcQ
    Optional caption, in *Markdown*.
    :::

It is stored as a plain link inside a ``<figure class="video">`` that every
reader can show; the web page turns it into a player
(:func:`render_video_players`) and the email into a linked thumbnail
(:func:`render_video_thumbnails`), because mail clients do not run iframes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import nh3

from ..links import LINK_SCHEMES, revealed_scheme

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

#: bump when rendering changes, so unchanged files are re-rendered on import
RENDER_VERSION = "2"

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


@dataclass(frozen=True)
class Video:
    provider: str
    video_id: str

    @property
    def url(self) -> str:
        if self.provider == "vimeo":
            return f"https://vimeo.com/{self.video_id}"
        return f"https://www.youtube.com/watch?v={self.video_id}"

    @property
    def player_url(self) -> str:
        if self.provider == "vimeo":
            return f"https://player.vimeo.com/video/{self.video_id}?dnt=1"
        # the no-cookie host sets no tracking cookies until the viewer presses play
        return f"https://www.youtube-nocookie.com/embed/{self.video_id}"

    @property
    def thumbnail_url(self) -> str | None:
        if self.provider == "youtube":
            return f"https://i.ytimg.com/vi/{self.video_id}/hqdefault.jpg"
        return None


_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


def parse_video_url(url: str) -> Video:
    """Recognise a YouTube or Vimeo page URL.

    :raises ValueError: naming the URL and the forms accepted.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.").removeprefix("m.")
    candidate = ""
    if host in {"youtube.com", "youtube-nocookie.com"}:
        if parts.path == "/watch":
            candidate = parse_qs(parts.query).get("v", [""])[0]
        elif parts.path.startswith(("/embed/", "/shorts/", "/live/")):
            candidate = parts.path.split("/")[2]
    elif host == "youtu.be":
        candidate = parts.path.lstrip("/")
    if _YOUTUBE_ID.match(candidate):
        return Video("youtube", candidate)
    if host in {"vimeo.com", "player.vimeo.com"}:
        number = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if number.isdigit():
            return Video("vimeo", number)
    raise ValueError(
        f"video {url!r} is not a YouTube or Vimeo URL "
        "(e.g. https://www.youtube.com/watch?v=ID or https://vimeo.com/123)"
    )


def _video_figure(info: str) -> str:
    """The opening of a video's figure, from the directive's words after ``:::``.

    :raises ValueError: naming the URL and the forms accepted.
    """
    video = parse_video_url(info.strip().removeprefix("video").strip())
    return (
        f'<figure class="video" data-provider="{video.provider}" '
        f'data-video-id="{video.video_id}">'
        f'<p><a href="{html.escape(video.url)}">Watch the video</a></p><figcaption>'
    )


def _render_video(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    if token.nesting != 1:
        return _VIDEO_END
    try:
        return _video_figure(token.info)
    except ValueError as e:
        line = token.map[0] if token.map else 0
        env.setdefault("errors", []).append((line, str(e)))
        return "<figure><figcaption>"


_VIDEO_END = "</figcaption></figure>\n"


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    """markdown-it-py with the video container: the reference renderer."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.container import container_plugin

    md = MarkdownIt("commonmark", {"html": True, "typographer": False})
    # Let every link through to the HTML: there :func:`unsafe_links` finds the
    # bad ones (so the import can refuse them by name) and nh3 removes them.
    # markdown-it's own check would turn them into text nobody is told about.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.enable(["table", "strikethrough"])
    md.use(container_plugin, name="video", render=_render_video)
    return md


@lru_cache(maxsize=1)
def _compiled() -> Any:
    """markdown-it-pyrs (markdown-it in Rust): the same rules, about 20x faster."""
    from markdown_it_pyrs import MarkdownIt as CompiledMarkdownIt

    return CompiledMarkdownIt("commonmark").enable("table").enable("strikethrough")


class MarkdownError(ValueError):
    """A directive in the Markdown is wrong; ``line`` is 0-based in the body."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


# The compiled renderer writes the same HTML as the reference one
# (tests/unit/test_markup.py compares them on the sample, generated posts and
# edge cases), except where the reference was changed or extended: it keeps
# links whose scheme markdown-it refuses (javascript:, vbscript:, file:, data:,
# so that they can be named and refused), and it has the video container. A
# text that may hold such a link, or a directive the placeholders below cannot
# stand in for, goes to the reference renderer.
_REFUSED_SCHEME = re.compile(r"(?:javascript|vbscript|file|data):")
_MARKER_LINE = re.compile(r"^( *)(:{3,})(.*)$")
# where a ::: line might not start a block of its own: fenced code, and the HTML
# blocks that run on across blank lines (CommonMark 4.6, kinds 1-5)
_NOT_SIMPLE = re.compile(
    r"^ {0,3}(?:```|~~~)|<!--|<\?|<![A-Za-z\[]|<(?:pre|script|style|textarea)\b|\r|PUBLISHERVIDEO",
    re.IGNORECASE | re.MULTILINE,
)


def _with_placeholders(text: str) -> tuple[str, list[tuple[int, str]]] | None:
    """The text with each top-level video directive's two marker lines replaced
    by placeholder paragraphs, and the directives (line, words); None if a
    directive is not plainly top-level (indented, nested, after a non-blank line).
    """
    lines = text.split("\n")
    out: list[str] = []
    videos: list[tuple[int, str]] = []
    open_markers = 0  # colons of the open directive; 0 when none is open
    previous_blank = True
    for number, line in enumerate(lines):
        match = _MARKER_LINE.match(line)
        if match is not None:
            indent, colons, rest = match.groups()
            is_video = rest.strip().split(" ", 2)[0] == "video"
            if open_markers and len(colons) >= open_markers and not rest.strip(" "):
                out += ["", f"PUBLISHERVIDEO{len(videos) - 1}END", ""]
                open_markers, previous_blank = 0, True
                continue
            if is_video:
                if indent or open_markers or not previous_blank:
                    return None
                out += ["", f"PUBLISHERVIDEO{len(videos)}START", ""]
                videos.append((number, rest))
                open_markers = len(colons)
                continue
        out.append(line)
        previous_blank = not line.strip()
    if open_markers:  # a directive left open ends with the text, as in markdown-it-py
        out += ["", f"PUBLISHERVIDEO{len(videos) - 1}END", ""]
    return "\n".join(out), videos


def _render_fast(text: str) -> str | None:
    """The compiled renderer's HTML for ``text``, or None where only the reference will do."""
    if _REFUSED_SCHEME.search(html.unescape(text).lower().replace("\\", "")):
        return None
    if ":::" not in text:
        return str(_compiled().render(text))
    if _NOT_SIMPLE.search(text):
        return None
    replaced = _with_placeholders(text)
    if replaced is None:
        return None
    source, videos = replaced
    rendered = str(_compiled().render(source))
    for index, (line, words) in enumerate(videos):
        try:
            start = _video_figure(words)
        except ValueError as e:
            raise MarkdownError(line, str(e)) from e
        for placeholder, replacement in (("START", start), ("END", _VIDEO_END)):
            marker = f"<p>PUBLISHERVIDEO{index}{placeholder}</p>\n"
            if rendered.count(marker) != 1:
                return None
            rendered = rendered.replace(marker, replacement)
    return rendered


def render_markdown_html(text: str, reference: bool = False) -> str:
    """Markdown → HTML, before sanitising: the compiled renderer where it is
    equivalent, else (or with ``reference``) markdown-it-py.

    :raises MarkdownError: for a bad directive.
    """
    rendered = None if reference else _render_fast(text)
    if rendered is None:
        env: dict[str, Any] = {}
        rendered = _markdown().render(text, env)
        if env.get("errors"):
            line, message = env["errors"][0]
            raise MarkdownError(line, message)
    return rendered


def render_markdown(text: str, refuse_unsafe_links: bool = False) -> str:
    """Markdown → sanitised HTML.

    :param refuse_unsafe_links: raise for a link or image whose scheme is not
        http, https or mailto, instead of only removing it.
    :raises MarkdownError: for a bad directive (e.g. an unknown video URL), or
        an unsafe link when asked to refuse them.
    """
    rendered = render_markdown_html(text)
    if refuse_unsafe_links:
        bad = unsafe_links(rendered)
        if bad:
            raise MarkdownError(_line_of(text, bad[0]), describe_unsafe_link(bad[0]))
    return sanitize_html(rendered)


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


def describe_unsafe_link(url: str) -> str:
    scheme = revealed_scheme(url)
    shown = url if len(url) <= 60 else url[:57] + "..."
    return (
        f"link {shown!r} uses the scheme {scheme!r}; only http, https and mailto links "
        "(or relative ones) are allowed"
    )


def _line_of(text: str, url: str) -> int:
    """0-based line of the body where ``url`` is written, best effort.

    The rendered URL is decoded, the source may not be: look for the URL as
    rendered, then for a line whose decoded text has the scheme.
    """
    lowered = text.lower()
    position = lowered.find(url.lower())
    if position != -1:
        return text.count("\n", 0, position)
    scheme = (revealed_scheme(url) or "") + ":"
    for number, line in enumerate(lowered.splitlines()):
        if scheme in re.sub(r"[\x00-\x20\x7f]", "", html.unescape(line)):
            return number
    return 0


_VIDEO_FIGURE = re.compile(
    r'<figure class="video" data-provider="(youtube|vimeo)" data-video-id="([A-Za-z0-9_-]+)">'
    r"<p><a [^>]*>Watch the video</a></p>(<figcaption>.*?</figcaption>)</figure>",
    re.DOTALL,
)


def find_videos(body_html: str) -> list[Video]:
    """The videos of a stored post body, in order."""
    return [Video(match[1], match[2]) for match in _VIDEO_FIGURE.finditer(body_html)]


def remove_videos(body_html: str) -> str:
    """The body without its video figures (for text excerpts)."""
    return _VIDEO_FIGURE.sub("", body_html)


def render_video_players(body_html: str) -> str:
    """For web pages: each stored video link becomes an embedded player."""

    def player(match: re.Match[str]) -> str:
        video = Video(match[1], match[2])
        return (
            f'<figure class="video"><iframe src="{html.escape(video.player_url)}" '
            'width="560" height="315" loading="lazy" title="Video player" '
            'allow="encrypted-media; picture-in-picture" allowfullscreen></iframe>'
            f"{match[3]}</figure>"
        )

    return _VIDEO_FIGURE.sub(player, body_html)


def render_video_thumbnails(body_html: str) -> str:
    """For email: each video becomes a linked thumbnail ("Watch the video").

    Table markup, since Outlook, Yahoo and AOL do not support ``<figure>``;
    one link holds the thumbnail (``alt=""``: it is decoration) and the label,
    so with images off the label shows once and a screen reader reads it once.
    """

    def thumbnail(match: re.Match[str]) -> str:
        video = Video(match[1], match[2])
        link = html.escape(video.url)
        image = (
            f'<img class="fluid" src="{html.escape(video.thumbnail_url)}" width="480" '
            'height="360" alt="" '
            'style="display:block;width:480px;max-width:100%;height:auto;border:0">'
            if video.thumbnail_url
            else ""
        )
        caption = match[3].removeprefix("<figcaption>").removesuffix("</figcaption>").strip()
        return (
            '<table role="presentation" class="video" width="100%" cellpadding="0" '
            'cellspacing="0" border="0">'
            f'<tr><td><a href="{link}">{image}'
            '<span class="video-label">Watch the video</span></a></td></tr>'
            + (f'<tr><td class="video-caption">{caption}</td></tr>' if caption else "")
            + "</table>"
        )

    return _VIDEO_FIGURE.sub(thumbnail, body_html)


_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|h[1-6]|li|ul|ol|blockquote|figure|figcaption|table|tr|td|th|pre)\b[^>]*>", re.I
)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment, whitespace folded (for excerpts)."""
    spaced = _BLOCK_TAG.sub(r" \g<0>", fragment)
    text = nh3.clean(spaced, tags=set(), strip_comments=True)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()
