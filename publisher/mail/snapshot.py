"""A run's editions, rendered once and stored with the run (``run_editions``).

The first sender that needs an edition (the digest for one set of topics)
renders it, with Jinja2 and premailer, and stores its subject, HTML (CSS
inlined), text and placeholder nonce; every other sender of the run, and
every resend after a crash, compiles the stored one. So a resent message is
byte for byte the first (its MIME boundary comes from the nonce, its
``Date`` from the run, its Message-ID from the run and the subscriber) even
if the posts or the templates changed meanwhile, and a sender that resumes a
run loads no post and renders nothing. Headers taken from the config (From,
Reply-To, List-Id) and the key that signs the links are the config's at the
time of sending.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..config import Settings
from ..db import transaction
from ..models import RunEdition
from .compose import Editions, compile_edition, publish_web_version, run_posts
from .digest import Digest, make_digest
from .message import MessageTemplate
from .render import Placeholders, RenderedDigest
from .runs import RunClaim
from .window import digest_settings


def topics_key(topics: Iterable[str]) -> str:
    """How a set of topics is stored: the sorted names, as JSON (``[]``: everything)."""
    return json.dumps(sorted(set(topics)), ensure_ascii=False)


class RunEditions:
    """The compiled message template of each edition of a claimed run.

    :param key: signs each recipient's links.
    """

    def __init__(
        self, factory: sessionmaker[Session], settings: Settings, claim: RunClaim, key: str
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.claim = claim
        self.key = key
        self._templates: dict[frozenset[str], MessageTemplate | None] = {}
        self._renderer: Editions | None = None
        #: editions this sender rendered (and stored) itself, by topics_key
        self.rendered_here: list[str] = []

    def prepare_all(self) -> None:
        """Render and store now the edition of every set of topics the run's subscribers
        follow (what the sender that made the run does first, so the run holds its
        editions as its posts stood when it was made; a set that appears later, when a
        subscriber changes topics, is rendered when first needed)."""
        with self.factory() as session:
            sets = queries.topic_sets(session, self.claim.run_id, self.claim.name)
        for topics in sorted(sets):
            self.template(topics)

    def compiled(self) -> dict[frozenset[str], MessageTemplate]:
        """The editions compiled so far, by their topics (those with a message)."""
        return {t: m for t, m in self._templates.items() if m is not None}

    def template(self, topics: tuple[str, ...]) -> MessageTemplate | None:
        """The compiled edition for ``topics``; None when no post of the run is about them."""
        wanted = frozenset(topics)
        if wanted not in self._templates:
            self._templates[wanted] = self._load(topics_key(wanted), wanted)
        return self._templates[wanted]

    def _load(self, key: str, topics: frozenset[str]) -> MessageTemplate | None:
        with self.factory() as session:
            stored = queries.run_edition(session, self.claim.run_id, key)
        if stored is None:
            stored = self._render(key, topics)
        if stored.subject is None:
            return None
        assert stored.html is not None and stored.text is not None and stored.nonce is not None
        claim = self.claim
        # the run's window stands for the digest: a message needs its name and end only
        digest = Digest(claim.name, claim.period_start, claim.period_end, ())
        rendered = RenderedDigest(
            digest, stored.subject, stored.html, stored.text, Placeholders(stored.nonce)
        )
        return compile_edition(rendered, self.settings, claim.started_at, self.key)

    def _render(self, key: str, topics: frozenset[str]) -> RunEdition:
        """Render the edition and store it; if another sender stored it first, theirs."""
        template = self._editions().template(tuple(sorted(topics)))
        edition = RunEdition(run_id=self.claim.run_id, topics=key)
        if template is not None:
            rendered = template.rendered
            edition.subject, edition.html, edition.text = (
                rendered.subject,
                rendered.html,
                rendered.text,
            )
            edition.nonce = rendered.placeholders.nonce
            edition.posts = len(rendered.digest.posts)
            if not topics:  # everyone's: its web version, where "View in browser" points
                publish_web_version(self.settings, rendered)
        try:
            with transaction(self.factory) as session:
                queries.add_run_edition(session, edition)
        except IntegrityError:
            with self.factory() as session:
                stored = queries.run_edition(session, self.claim.run_id, key)
            assert stored is not None
            return stored
        self.rendered_here.append(key)
        return edition

    def _editions(self) -> Editions:
        """The run's digest from its posts, to render editions from (loaded once)."""
        if self._renderer is None:
            claim = self.claim
            config = digest_settings(self.settings, claim.name)
            with self.factory() as session:
                posts = run_posts(session, self.settings, claim.post_ids, claim.started_at)
            digest = make_digest(
                claim.name, posts, claim.period_start, claim.period_end, config.order
            )
            self._renderer = Editions(digest, config, self.settings, claim.started_at, self.key)
        return self._renderer
