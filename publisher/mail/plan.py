"""``publisher digest send --dry-run``: how many would get which edition; nothing written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..audience.recipients import iter_recipients
from ..config import Settings
from ..words import counted
from .compose import Editions, digest_posts, run_posts, secret_key
from .digest import make_digest
from .runs import RunClaim
from .window import digest_settings, digest_window, run_before


@dataclass(frozen=True)
class PlannedEdition:
    #: the topics of the subscribers who get it (empty: everything)
    topics: tuple[str, ...]
    subscribers: int
    #: posts in this edition; 0: they get no message (no post about their topics)
    posts: int


def plan_send(
    factory: sessionmaker[Session], settings: Settings, now: datetime, name: str | None = None
) -> tuple[str, list[PlannedEdition]]:
    """``digest send --dry-run``: who would get which edition; nothing is written.

    The run :func:`~.runs.claim_run` would take: an open run at work (deliveries
    due or in flight), else the next window's, else (no new post) an open run
    waiting for retries. A line describing the run, and one entry per set of topics.

    :raises EmptyDigest: when there is no open run and no post in the new window.
    """
    config = digest_settings(settings, name)
    with factory() as session:
        waiting = queries.unfinished_runs(session, config.name)
        run = next((r for r in waiting if queries.run_at_work(session, r.id, now)), None)
        if run is None:
            start, end = digest_window(session, config, settings, now)
            after = run_before(session, config, start)
            posts = digest_posts(session, settings, start, end, now, after=after)
            what = "create a new run"
            if not posts and waiting:
                run = waiting[0]
        if run is not None:
            claim = RunClaim.of(run, created=False)
            posts = run_posts(session, settings, claim.post_ids, now)
            start, end = run.period_start, run.period_end
            what = f"resume run {run.id}"
    digest = make_digest(config.name, posts, start, end, config.order)
    editions = Editions(digest, config, settings, now, secret_key(settings, False))
    groups: dict[tuple[str, ...], int] = {}
    for recipient in iter_recipients(factory, newsletter=config.name):
        groups[recipient.topics] = groups.get(recipient.topics, 0) + 1
    plan = []
    for topics, count in sorted(groups.items()):
        template = editions.template(topics)
        size = 0 if template is None else len(template.rendered.digest.posts)
        plan.append(PlannedEdition(topics, count, size))
    window = f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"
    return (
        f"Would {what} of '{config.name}' for {window} ({counted(len(posts), 'post')})",
        plan,
    )
