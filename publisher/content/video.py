"""The video directive's stored form, and what each reader gets from it.

A video is written in Markdown as a directive::

    ::: video https://www.youtube.com/watch?v=dQw4w9WgXcQ
    Optional caption, in *Markdown*.
    :::

It is stored as a plain link inside a ``<figure class="video">`` that every
reader can show; the web page turns it into a player
(:func:`render_video_players`) and the email into a linked thumbnail
(:func:`render_video_thumbnails`), because mail clients do not run iframes.
Pure functions.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


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


def video_figure(info: str) -> str:
    """The opening of a video's figure, from the directive's words after ``:::``.

    :raises ValueError: naming the URL and the forms accepted.
    """
    video = parse_video_url(info.strip().removeprefix("video").strip())
    return (
        f'<figure class="video" data-provider="{video.provider}" '
        f'data-video-id="{video.video_id}">'
        f'<p><a href="{html.escape(video.url)}">Watch the video</a></p><figcaption>'
    )


VIDEO_END = "</figcaption></figure>\n"


_VIDEO_FIGURE = re.compile(
    r'<figure class="video" data-provider="(youtube|vimeo)" data-video-id="([A-Za-z0-9_-]+)">'
    r"<p><a [^>]*>Watch the video</a></p>(<figcaption>.*?</figcaption>)</figure>",
    re.DOTALL,
)


def find_videos(body_html: str) -> list[Video]:
    """The videos of a stored post body, in order."""
    return [Video(match[1], match[2]) for match in _VIDEO_FIGURE.finditer(body_html)]


def video_figures(body_html: str) -> str:
    """Only the video figures of a stored post body, one after the other."""
    return "".join(match[0] for match in _VIDEO_FIGURE.finditer(body_html))


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
            'style="display:block;width:100%;max-width:480px;height:auto;border:0">'
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


_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_DIRECTIVE = re.compile(r"^ {0,3}:::+\s*(\S*)")


def directive_mistakes(text: str) -> list[tuple[int, str]]:
    """Video directives written so that they would not be one (0-based line, why):
    ``::: Video`` (the name is lower case), and one whose closing ``:::`` is missing
    while more of the post follows its caption (all of it would become the caption;
    a post that ends with the video, or with its one caption paragraph, is as meant).
    Code blocks are passed over."""
    mistakes: list[tuple[int, str]] = []
    opened: int | None = None  # the line of a directive not closed yet
    gap = False  # a blank line came after its caption began
    fence: str | None = None
    for number, line in enumerate(text.split("\n")):
        fenced = _FENCE.match(line)
        if fenced and (fence is None or fenced[1] == fence):
            fence = None if fence else fenced[1]
            continue
        found = None if fence else _DIRECTIVE.match(line)
        if found is None:
            if opened is not None and not line.strip():
                gap = True
            elif opened is not None and gap:  # a second paragraph: swallowed
                mistakes.append((opened, _UNCLOSED))
                opened = None
            continue
        name = found[1]
        if not name:
            opened = None  # the closing line
        elif name == "video":
            if opened is not None:
                mistakes.append((opened, _UNCLOSED))
            opened, gap = number, False
        elif name.lower() == "video":
            mistakes.append((number, f"write `::: video`, in lower case (not `::: {name}`)"))
    return sorted(mistakes)


_UNCLOSED = (
    "the video is not closed: add a line `:::` after its caption (or right after it, "
    "with no caption); without it, the rest of the post would become the caption"
)
