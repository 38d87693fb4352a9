"""What goes into a digest: the posts of a period, as email-ready values.

Pure. The shell (jobs) reads the posts; this module decides the window,
the order and the excerpts; ``render`` turns the result into HTML and text.

A digest of an empty window has no posts: it is the "nothing new" note a
newsletter with ``empty: note`` sends. Whether an empty window is sent at all
is decided where a run is made (:func:`~publisher.mail.runs.claim_run`) and
where a digest is shown (:mod:`~publisher.mail.compose`), which raise
:func:`empty_window`'s error otherwise.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..content.html import excerpt, truncate_html
from ..content.values import Enclosure
from ..content.video import (
    Video,
    find_videos,
    remove_videos,
    render_video_thumbnails,
    video_figures,
)
from ..errors import EmptyDigest

#: characters of text in a post's excerpt (the rest is a "Read more" away)
EXCERPT_CHARS = 420
#: characters of a summary when the digest has to shrink to fit its size budget
SUMMARY_CHARS = 200


@dataclass(frozen=True)
class DigestPost:
    """One post as a digest shows it."""

    title: str
    link: str
    published: datetime
    author: str | None
    #: HTML excerpt: links absolute, videos as linked thumbnails, no broken tags
    excerpt_html: str
    #: plain-text summary (the post's own, or the start of its body)
    summary: str
    image: str | None = None
    image_alt: str = ""
    #: the first video (templates written before ``videos``), and all of them
    video: Video | None = None
    videos: tuple[Video, ...] = ()
    attachments: tuple[Enclosure, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DigestSection:
    #: None for a digest in one list, else the tag the section is about
    title: str | None
    posts: tuple[DigestPost, ...]


@dataclass(frozen=True)
class Digest:
    """A digest: its schedule's name, its window and its posts (none: the "nothing new" note)."""

    name: str
    period_start: datetime
    period_end: datetime
    sections: tuple[DigestSection, ...]
    #: True when it was shrunk to summaries to stay under its size budget
    condensed: bool = False
    posts: tuple[DigestPost, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "posts", tuple(p for s in self.sections for p in s.posts))

    @property
    def is_note(self) -> bool:
        """No post in the window: this is the "nothing new since …" note."""
        return not self.posts


def make_post(
    title: str,
    link: str,
    published: datetime,
    body_html: str,
    summary: str | None = None,
    author: str | None = None,
    image: str | None = None,
    image_alt: str | None = None,
    attachments: tuple[Enclosure, ...] = (),
    tags: tuple[str, ...] = (),
) -> DigestPost:
    """A post for the digest; ``body_html`` must already have absolute links.

    The summary its editor wrote is what both parts show (with the post's videos,
    as thumbnails in HTML, as links in text); without one, the start of the body.
    """
    videos = find_videos(body_html)
    if summary and summary.strip():
        shown = f"<p>{html.escape(summary.strip())}</p>"
        excerpt_html = shown + render_video_thumbnails(video_figures(body_html))
    else:
        excerpt_html = truncate_html(render_video_thumbnails(body_html), EXCERPT_CHARS)
    return DigestPost(
        title=title,
        link=link,
        published=published,
        author=author,
        excerpt_html=excerpt_html,
        summary=(summary or excerpt(remove_videos(body_html), SUMMARY_CHARS)).strip(),
        image=image,
        image_alt=image_alt or "",
        video=videos[0] if videos else None,
        videos=tuple(videos),
        attachments=attachments,
        tags=tags,
    )


def make_digest(
    name: str,
    posts: Sequence[DigestPost],
    period_start: datetime,
    period_end: datetime,
    order: str = "newest",
) -> Digest:
    """Arrange ``posts``, the digest's for ``[period_start, period_end)``: those its
    callers chose (the window's, and the posts the run before could not take, which
    came late and are dated before it: :func:`publisher.queries.posts_between`).

    :param order: ``newest`` (one list, newest first) or ``tag`` (a section per
        tag, each post under its first tag; untagged posts last, under "More news").

    No post in the window gives a digest without sections: the "nothing new" note
    (:attr:`Digest.is_note`); callers that must not send one raise :func:`empty_window`.
    """
    chosen = sorted(posts, key=lambda p: p.published, reverse=True)
    sections: tuple[DigestSection, ...]
    if not chosen:
        sections = ()
    elif order != "tag":
        sections = (DigestSection(None, tuple(chosen)),)
    else:
        groups: dict[str, list[DigestPost]] = {}
        for post in chosen:
            groups.setdefault(sorted(post.tags)[0] if post.tags else "", []).append(post)
        sections = tuple(
            DigestSection(tag or "More news", tuple(groups[tag]))
            for tag in sorted(groups, key=lambda t: (t == "", t.lower()))
        )
    return Digest(name, period_start, period_end, sections)


def empty_window(name: str | None, period_start: datetime, period_end: datetime) -> EmptyDigest:
    """The error for a window without posts where no "nothing new" note may go out."""
    which = f"'{name}' digest" if name else "digest"
    return EmptyDigest(
        f"no post was published between {period_start:%Y-%m-%d %H:%M} and "
        f"{period_end:%Y-%m-%d %H:%M} UTC, so there is no {which} to make "
        "(digest render, test-send and preview take --since/--until for another window)"
    )


def filter_topics(posts: Sequence[DigestPost], topics: Sequence[str]) -> list[DigestPost]:
    """The posts about any of ``topics`` (tag names); every post when there are none."""
    if not topics:
        return list(posts)
    wanted = set(topics)
    return [p for p in posts if wanted.intersection(p.tags)]


def edition(digest: Digest, topics: Sequence[str], order: str = "newest") -> Digest | None:
    """The digest as a subscriber following ``topics`` gets it; None when none is theirs.

    The "nothing new" note is everyone's: nothing is new about their topics either.
    """
    if not topics or digest.is_note:
        return digest
    posts = filter_topics(digest.posts, topics)
    if not posts:
        return None
    return make_digest(digest.name, posts, digest.period_start, digest.period_end, order)


def condense(digest: Digest) -> Digest:
    """The same digest with summaries instead of excerpts, to fit a size budget."""
    sections = tuple(
        DigestSection(
            section.title,
            tuple(
                replace(p, excerpt_html=f"<p>{html.escape(p.summary, quote=False)}</p>")
                for p in section.posts
            ),
        )
        for section in digest.sections
    )
    return replace(digest, sections=sections, condensed=True)
