"""Markdown → safe HTML, with the video directive (:mod:`.video`).

Pure functions. The compiled renderer (markdown-it-pyrs) writes the HTML
where it is equivalent to the reference (markdown-it-py with the video
container); the result is sanitised by :mod:`.sanitize`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..links import revealed_scheme
from .sanitize import (
    describe_dropped_element,
    describe_unsafe_link,
    dropped_elements,
    sanitize_html,
    unsafe_links,
)
from .video import VIDEO_END, video_figure

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

#: bump when rendering changes, so unchanged files are re-rendered on import
RENDER_VERSION = "2"


def _render_video(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    if token.nesting != 1:
        return VIDEO_END
    try:
        return video_figure(token.info)
    except ValueError as e:
        line = token.map[0] if token.map else 0
        env.setdefault("errors", []).append((line, str(e)))
        return "<figure><figcaption>"


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
_REFUSED_SCHEMES = ("javascript:", "vbscript:", "file:", "data:")
_REFUSED_NAMES = tuple(scheme.removesuffix(":") for scheme in _REFUSED_SCHEMES)
_LONGEST_NAME = max(map(len, _REFUSED_NAMES))
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


def may_hold_refused_scheme(text: str) -> bool:
    """Whether a refused scheme may be written in ``text``, in any case, behind
    character references or backslashes: where ``html.unescape(text).lower()
    .replace("\\\\", "")`` holds one (tests/unit/test_markup.py holds the two alike).

    Only the few characters before each colon are lowered: lowering the whole
    of a long text that is not ASCII took longer than the rest of the check.
    No other character lowers to an ASCII letter of a scheme's name, so lowered
    one by one the characters before a colon spell a name exactly when they do
    in the whole text lowered.
    """
    revealed = html.unescape(text).replace("\\", "")
    colon = revealed.find(":")
    while colon != -1:
        before = revealed[max(0, colon - _LONGEST_NAME) : colon].lower()
        if before.endswith(_REFUSED_NAMES):
            return True
        colon = revealed.find(":", colon + 1)
    return False


def _render_fast(text: str) -> str | None:
    """The compiled renderer's HTML for ``text``, or None where only the reference will do."""
    if may_hold_refused_scheme(text):
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
            start = video_figure(words)
        except ValueError as e:
            raise MarkdownError(line, str(e)) from e
        for placeholder, replacement in (("START", start), ("END", VIDEO_END)):
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


def render_markdown(text: str, refuse_unsafe: bool = False) -> str:
    """Markdown → sanitised HTML.

    :param refuse_unsafe: raise for a link or image whose scheme is not http,
        https or mailto, and for an element sanitising would drop with what it
        holds (an iframe, a script, a style sheet), instead of only removing them.
    :raises MarkdownError: for a bad directive (e.g. an unknown video URL), or
        what is unsafe when asked to refuse it.
    """
    rendered = render_markdown_html(text)
    if refuse_unsafe:
        refuse_unsafe_html(text, rendered)
    return sanitize_html(rendered)


def refuse_unsafe_html(text: str, rendered: str) -> None:
    """Raise for what sanitising ``rendered`` (the HTML of the Markdown ``text``)
    would remove that its author should hear of: a link or image whose scheme is
    not http, https or mailto, an element dropped with what it holds.

    :raises MarkdownError: naming the first one and its line in ``text``.
    """
    problems = unsafe_html(text, rendered)
    if problems:
        raise problems[0]


def unsafe_html(text: str, rendered: str) -> list[MarkdownError]:
    """Everything :func:`refuse_unsafe_html` refuses: each unsafe link or image, and
    each element dropped with what it holds, every time it is written, in the order
    of ``text``'s lines."""
    problems: list[MarkdownError] = []
    lowered = text.lower()
    for url in dict.fromkeys(unsafe_links(rendered)):
        lines = _lines_of(lowered, url.lower()) or [_line_of(text, url)]
        problems += [MarkdownError(line, describe_unsafe_link(url)) for line in lines]
    for name in dropped_elements(rendered):
        found = [m.start() for m in re.finditer(rf"<{name}(?=[\s/>])", lowered)]
        lines = sorted({text.count("\n", 0, at) for at in found}) or [0]
        problems += [MarkdownError(line, describe_dropped_element(name)) for line in lines]
    return sorted(problems, key=lambda problem: problem.line)


def _lines_of(text: str, part: str) -> list[int]:
    """0-based lines of ``text`` where ``part`` is written, each once."""
    lines, at = [], text.find(part)
    while at != -1:
        lines.append(text.count("\n", 0, at))
        at = text.find(part, at + len(part))
    return sorted(set(lines))


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
