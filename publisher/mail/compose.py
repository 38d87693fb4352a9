"""The one compose path: store → digest → this reader's edition → render → message.

``digest render``, ``preview``, ``digest test-send`` and ``digest send`` all
go through :class:`Editions`: the digest is built once from the store,
each edition (a set of topics) is rendered and compiled once, and each
recipient's message is the compiled template joined with their values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from .. import queries
from ..audience.recipients import Recipient
from ..config import DigestSettings, Settings
from ..content.public import public_post
from ..content.values import PostStatus
from ..errors import EmptyDigest
from ..files import write_if_changed
from ..models import DigestRun, Post
from ..urls import Urls, digest_page_path
from .digest import Digest, DigestPost, edition, empty_window, make_digest, make_post
from .message import MessageTemplate
from .render import RenderedDigest, render_digest, render_web_page
from .window import digest_window, run_before

#: signs the links of renderings that are only looked at, never sent
PREVIEW_KEY = "preview-only-key: links in this rendering are not for sending"


def digest_posts(
    session: Session,
    settings: Settings,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    allow_empty: bool = False,
    after: DigestRun | None = None,
) -> list[DigestPost]:
    """The posts published in ``[start, end)``, and those ``after`` could not take (see
    :func:`~publisher.queries.posts_between`), as the digest shows them.

    :param allow_empty: an empty window is fine (it makes the "nothing new" note).
    :raises EmptyDigest: when no post was published in the window, unless ``allow_empty``.
    """
    posts = _digest_posts(settings, queries.posts_between(session, start, end, now, after))
    if not posts and not allow_empty:
        raise empty_window(None, start, end)
    return posts


def run_posts(
    session: Session, settings: Settings, post_ids: Sequence[int], now: datetime
) -> list[DigestPost]:
    """The posts a run was made with (those still visible), newest first: a resumed
    send renders the same digest even if posts were published since."""
    found = queries.posts_by_id(session, post_ids)
    visible = [
        p
        for p in found.values()
        if p.published_at is not None
        and p.published_at <= now
        and p.status in (PostStatus.PUBLISHED, PostStatus.SCHEDULED)
    ]
    visible.sort(key=lambda p: (p.published_at, p.id), reverse=True)
    return _digest_posts(settings, visible)


def _digest_posts(settings: Settings, found: Iterable[Post]) -> list[DigestPost]:
    urls = Urls.from_settings(settings)
    posts = []
    for post in found:
        public = public_post(post, post.attachments, urls)
        posts.append(
            make_post(
                title=public.title,
                link=public.link,
                published=public.published,
                body_html=public.body_html,
                summary=public.summary,
                author=post.author.name if post.author else None,
                image=public.image,
                image_alt=public.image_alt,
                attachments=public.enclosures,
                tags=tuple(t.name for t in post.tags),
            )
        )
    return posts


def build_digest(
    session: Session,
    config: DigestSettings,
    settings: Settings,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Digest:
    """The digest of the posts in its window, from the store: what the newsletter
    sends for that window (its "nothing new" note when empty and ``empty: note``).

    :raises EmptyDigest: when no post was published in the window (``empty: skip``).
    """
    start, end = digest_window(session, config, settings, now, since, until)
    after = run_before(session, config, start)
    posts = _digest_posts(settings, queries.posts_between(session, start, end, now, after))
    if not posts and config.empty != "note":
        raise empty_window(config.name, start, end)
    return make_digest(config.name, posts, start, end, config.order)


def secret_key(settings: Settings, required: bool) -> str:
    """The key that signs unsubscribe links.

    Rendering for a look (preview, render) may use a stand-in; anything that
    sends must have the real one, or its links could be forged.
    """
    key = settings.web.secret_key
    if key:
        return key
    if required:
        raise settings.error(
            "web.secret_key_env",
            f"the environment variable {settings.web.secret_key_env} is not set; set it to a "
            "long random string (it signs the unsubscribe links), e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`",
        )
    return PREVIEW_KEY


@dataclass(frozen=True)
class Composed:
    """One recipient's message, and what it was made from."""

    recipient: Recipient
    #: the edition they get, rendered (HTML with CSS inlined, text)
    rendered: RenderedDigest
    message: bytes
    message_id: str


class TemplateSource(Protocol):
    """Where a send gets each edition's compiled template: :class:`Editions` (rendered
    here) or a run's stored ones (:class:`~publisher.mail.snapshot.RunEditions`)."""

    def template(self, topics: tuple[str, ...]) -> MessageTemplate | None: ...


def compile_edition(
    rendered: RenderedDigest, settings: Settings, date: datetime, key: str
) -> MessageTemplate:
    """A rendered edition compiled into its message template (headers from config,
    ``Date`` ``date``, links signed with ``key``)."""
    return MessageTemplate(
        rendered,
        sender=settings.email.sender,
        reply_to=settings.email.reply_to,
        urls=Urls.from_settings(settings),
        secret=key,
        domain=settings.site.domain,
        date=date,
        list_title=f"{settings.site.title} {rendered.digest.name}",
    )


class Editions:
    """One compiled message template per set of topics, each compiled once.

    :param digest: the full digest (every post of the window).
    :param date: the messages' ``Date`` (a run's start, so a resend is identical).
    :param key: signs each recipient's links.
    """

    def __init__(
        self, digest: Digest, config: DigestSettings, settings: Settings, date: datetime, key: str
    ) -> None:
        self.digest = digest
        self.config = config
        self.settings = settings
        self.date = date
        self.key = key
        self._templates: dict[frozenset[str], MessageTemplate | None] = {}

    def template(self, topics: tuple[str, ...]) -> MessageTemplate | None:
        """The compiled edition for ``topics``; None when no post is about them."""
        wanted = frozenset(topics)
        if wanted not in self._templates:
            mine = edition(self.digest, sorted(wanted), self.config.order)
            self._templates[wanted] = (
                None
                if mine is None
                else self._compile(render_digest(mine, self.config, self.settings))
            )
        return self._templates[wanted]

    def _compile(self, rendered: RenderedDigest) -> MessageTemplate:
        return compile_edition(rendered, self.settings, self.date, self.key)

    def compose(self, recipient: Recipient) -> Composed:
        """``recipient``'s message.

        :raises EmptyDigest: when none of the digest's posts is about their topics.
        """
        template = self.template(recipient.topics)
        if template is None:
            raise EmptyDigest(
                f"{recipient.email} follows {', '.join(recipient.topics)}, and no post of this "
                "digest is about them: they would get no message"
            )
        return Composed(
            recipient, template.rendered, template.render(recipient), template.message_id(recipient)
        )


def compose(
    session: Session,
    settings: Settings,
    config: DigestSettings,
    recipient: Recipient,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    key: str = PREVIEW_KEY,
) -> tuple[Editions, Composed]:
    """The digest of the window as ``recipient`` gets it, for a look or a test send.

    :raises EmptyDigest: when this recipient's edition has no post, or the window has
        none and the newsletter sends no "nothing new" note.
    """
    full = build_digest(session, config, settings, now, since, until)
    editions = Editions(full, config, settings, now, key)
    return editions, editions.compose(recipient)


def web_version_path(settings: Settings, digest: Digest) -> Path:
    """Where the digest's web version is written (its "View in browser" link's page)."""
    return settings.feeds.output_dir / digest_page_path(digest.name, digest.period_end)


def publish_web_version(settings: Settings, rendered: RenderedDigest) -> Path:
    """Write the digest's web version where its "View in browser" link points."""
    path = web_version_path(settings, rendered.digest)
    write_if_changed(path, render_web_page(rendered, settings).encode("utf-8"))
    return path
