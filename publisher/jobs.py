"""The imperative shell: the jobs the CLI and the scheduler run.

Each job reads the store, hands plain values to the pure modules and does
the I/O at the end. Jobs are idempotent: running one twice changes nothing
the second time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from . import __version__, queries
from .config import Settings
from .entries import build_entry
from .feedplan import DocPlan, FeedSpec, Stub, plan_documents
from .feeds import RENDERERS, Category, Document, FeedMeta, Person, PreparedEntry, prepare_entry
from .models import Author, Tag
from .output import BackgroundWriter, load_manifest, remove_files, save_manifest
from .urls import FEED_FILES, Urls
from .websub import ping_hub

log = logging.getLogger(__name__)

#: posts loaded from the database at a time while building feeds
CHUNK = 500


@dataclass
class FeedBuildReport:
    """What a feed build did, in paths relative to the feed folder."""

    documents: int = 0
    rendered: int = 0
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed_pings: list[str] = field(default_factory=list)


def feed_specs(
    settings: Settings, urls: Urls, authors: Iterable[Author], tags: Iterable[Tag]
) -> tuple[FeedSpec, dict[str, FeedSpec], dict[str, FeedSpec]]:
    """The site feed, and one feed per tag and per author."""
    site = settings.site
    hub = settings.feeds.websub_hub

    def meta(folder: str, title: str, subtitle: str | None) -> FeedMeta:
        return FeedMeta(
            id=urls.feed(folder + FEED_FILES["atom"]),
            title=title,
            subtitle=subtitle,
            home=site.base_url,
            language=site.language,
            icon=site.icon,
            logo=site.logo,
            rights=site.rights,
            hub=hub,
        )

    main = FeedSpec("", meta("", site.title, site.description or None), archived=True)
    tag_specs = {
        t.slug: FeedSpec(
            f"tags/{t.slug}/",
            meta(f"tags/{t.slug}/", f"{site.title}: {t.name}", f"Posts tagged {t.name}"),
        )
        for t in tags
    }
    author_specs = {
        a.slug: FeedSpec(
            f"authors/{a.slug}/",
            meta(f"authors/{a.slug}/", f"{site.title}: {a.name}", f"Posts by {a.name}"),
        )
        for a in authors
    }
    return main, tag_specs, author_specs


@dataclass(frozen=True)
class _Names:
    """Authors and tags by id: small tables, loaded once per build."""

    authors: dict[int, Author]
    tags: dict[int, Tag]
    tags_by_slug: dict[str, Tag]

    @classmethod
    def load(cls, session: Session) -> _Names:
        tags = queries.all_tags(session)
        return cls(
            {a.id: a for a in queries.all_authors(session)},
            {t.id: t for t in tags},
            {t.slug: t for t in tags},
        )

    def stub(self, row: Any) -> Stub:
        tag_ids = row.tag_ids.split(",") if row.tag_ids else ()
        return Stub(
            id=row.id,
            version=row.version,
            author=self.authors[row.author_id].slug if row.author_id else None,
            tags=tuple(self.tags[int(t)].slug for t in tag_ids),
        )

    def person(self, author_id: int | None) -> Person | None:
        author = self.authors.get(author_id) if author_id is not None else None
        return Person(author.name) if author else None

    def categories(self, tag_slugs: tuple[str, ...]) -> tuple[Category, ...]:
        tags = sorted((self.tags_by_slug[s] for s in tag_slugs), key=lambda t: t.name)
        return tuple(Category(t.slug, t.name) for t in tags)


def publish_feeds(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    force: bool = False,
    ping: Callable[[str, list[str]], list[str]] = ping_hub,
) -> FeedBuildReport:
    """Build every feed document whose content changed, and only those.

    Plan from light facts (no bodies); render the documents whose fingerprint
    differs from the last build's; write files atomically and only when their
    bytes change; remove files no document makes any more; ping the hub.
    """
    urls = Urls.from_settings(settings)
    out = settings.feeds.output_dir
    report = FeedBuildReport()
    with factory() as session:
        names = _Names.load(session)
        stubs = [names.stub(row) for row in queries.feed_stubs(session, now)]
        site, tag_specs, author_specs = feed_specs(
            settings, urls, names.authors.values(), names.tags.values()
        )
        salt = _salt(settings, urls, names.authors.values(), names.tags.values())
        plans = plan_documents(
            site, tag_specs, author_specs, stubs, settings.feeds.items, urls, salt
        )
        manifest = load_manifest(out)
        todo = [plan for plan in plans if force or _is_stale(plan, manifest, out)]
        with BackgroundWriter(out) as writer:
            for plan, entries in _assemble(session, todo, stubs, names, urls, settings):
                document = Document(plan.spec.meta, entries, plan.is_archive, plan.links)
                for kind, path in plan.paths.items():
                    writer.write(path, RENDERERS[kind](document))
        report.documents, report.rendered, report.written = len(plans), len(todo), writer.written

    fingerprints = {path: plan.fingerprint for plan in plans for path in plan.paths.values()}
    report.removed = remove_files(out, set(manifest) - set(fingerprints))
    save_manifest(out, fingerprints)

    hub = settings.feeds.websub_hub
    subscriptions = {p for plan in plans if not plan.is_archive for p in plan.paths.values()}
    topics = [urls.feed(path) for path in report.written if path in subscriptions]
    if hub and topics:
        report.failed_pings = ping(hub, topics)
    return report


def _is_stale(plan: DocPlan, manifest: dict[str, str], out: Path) -> bool:
    return any(
        manifest.get(path) != plan.fingerprint or not (out / path).is_file()
        for path in plan.paths.values()
    )


def _assemble(
    session: Session,
    plans: list[DocPlan],
    stubs: list[Stub],
    names: _Names,
    urls: Urls,
    settings: Settings,
) -> Iterator[tuple[DocPlan, list[PreparedEntry]]]:
    """Each plan with its entries, as soon as all of them have been read.

    Posts are read oldest first, CHUNK at a time, so archive pages complete
    (and leave memory) early; each entry is prepared once however many
    documents list it.
    """
    waiting: dict[int, list[int]] = {}
    for index, plan in enumerate(plans):
        if not plan.post_ids:
            yield plan, []
        for post_id in plan.post_ids:
            waiting.setdefault(post_id, []).append(index)
    remaining = [len(plan.post_ids) for plan in plans]
    buffers: list[dict[int, PreparedEntry]] = [{} for _ in plans]
    full_content = settings.feeds.content == "full"
    wanted = [stub for stub in stubs if stub.id in waiting]
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        ids = [stub.id for stub in chunk]
        rows = queries.feed_rows(session, ids)
        attachments = queries.attachments_of(session, ids)
        for stub in chunk:
            row = rows[stub.id]
            prepared = prepare_entry(
                build_entry(
                    row,
                    attachments.get(stub.id, []),
                    names.person(row.author_id),
                    names.categories(stub.tags),
                    urls,
                    full_content,
                )
            )
            for index in waiting[stub.id]:
                buffers[index][stub.id] = prepared
                remaining[index] -= 1
                if remaining[index] == 0:
                    plan = plans[index]
                    yield plan, [buffers[index][i] for i in plan.post_ids]
                    buffers[index] = {}


def _salt(settings: Settings, urls: Urls, authors: Iterable[Author], tags: Iterable[Tag]) -> str:
    """Everything outside the posts that shows in every document."""
    parts = [
        __version__,
        repr(settings.site),
        repr(settings.feeds.content),
        repr(settings.feeds.websub_hub),
        repr(urls),
        repr(sorted((a.id, a.slug, a.name) for a in authors)),
        repr(sorted((t.id, t.slug, t.name) for t in tags)),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
