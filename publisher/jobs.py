"""The imperative shell: the jobs the CLI and the scheduler run.

Each job reads the store, hands plain values to the pure modules and does
the I/O at the end. Jobs are idempotent: running one twice changes nothing
the second time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from . import __version__, queries
from .config import Settings
from .entries import build_entry
from .feedplan import DocPlan, FeedSpec, Stub, plan_documents
from .feeds import RENDERERS, Category, Document, FeedMeta, Person, PreparedEntry, prepare_entry
from .models import Author, Tag
from .output import load_manifest, remove_files, save_manifest, write_if_changed
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


def publish_feeds(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    force: bool = False,
    ping: Callable[[str, list[str]], list[str]] = ping_hub,
) -> FeedBuildReport:
    """Build every feed document whose content changed, and only those.

    Posts are streamed oldest first in chunks, so memory stays flat however
    many there are; each post's entry is prepared once and shared by every
    document that lists it. Files are written atomically and only when their
    bytes change; files of documents that no longer exist are removed.
    """
    urls = Urls.from_settings(settings)
    out = settings.feeds.output_dir
    full_content = settings.feeds.content == "full"
    report = FeedBuildReport()
    with factory() as session:
        authors = {a.id: a for a in queries.all_authors(session)}
        tags = {t.id: t for t in queries.all_tags(session)}
        tag_ids = queries.post_tag_ids(session)
        stubs = [
            Stub(
                id=row.id,
                version=f"{row.id}|{row.slug}|{row.status}|{row.published_at}|"
                f"{row.updated_at}|{row.source_hash}|{row.author_id}|{tag_ids.get(row.id)}",
                author=authors[row.author_id].slug if row.author_id else None,
                tags=tuple(tags[t].slug for t in tag_ids.get(row.id, ())),
            )
            for row in queries.feed_stubs(session, now)
        ]
        site, tag_specs, author_specs = feed_specs(settings, urls, authors.values(), tags.values())
        salt = _salt(settings, urls, authors.values(), tags.values())
        plans = plan_documents(
            site, tag_specs, author_specs, stubs, settings.feeds.items, urls, salt
        )
        report.documents = len(plans)
        manifest = load_manifest(out)
        todo = [
            plan
            for plan in plans
            if force
            or any(
                manifest.get(path) != plan.fingerprint or not (out / path).is_file()
                for path in plan.paths.values()
            )
        ]

        def render(plan: DocPlan, entries: list[PreparedEntry]) -> None:
            document = Document(plan.spec.meta, entries, plan.is_archive, plan.links)
            for kind, path in plan.paths.items():
                if write_if_changed(out / path, RENDERERS[kind](document)):
                    report.written.append(path)
            report.rendered += 1

        waiting: dict[int, list[int]] = {}
        remaining = [len(plan.post_ids) for plan in todo]
        buffers: list[dict[int, PreparedEntry]] = [{} for _ in todo]
        for index, plan in enumerate(todo):
            if not plan.post_ids:
                render(plan, [])
            for post_id in plan.post_ids:
                waiting.setdefault(post_id, []).append(index)

        order = [stub.id for stub in stubs if stub.id in waiting]
        for start in range(0, len(order), CHUNK):
            chunk = order[start : start + CHUNK]
            rows = queries.feed_rows(session, chunk)
            attachments = queries.attachments_of(session, chunk)
            for post_id in chunk:
                row = rows[post_id]
                author = authors.get(row.author_id) if row.author_id else None
                prepared = prepare_entry(
                    build_entry(
                        row,
                        attachments.get(post_id, []),
                        Person(author.name) if author else None,
                        tuple(
                            Category(tags[t].slug, tags[t].name) for t in tag_ids.get(post_id, ())
                        ),
                        urls,
                        full_content,
                    )
                )
                for index in waiting[post_id]:
                    buffers[index][post_id] = prepared
                    remaining[index] -= 1
                    if remaining[index] == 0:
                        plan = todo[index]
                        render(plan, [buffers[index][i] for i in plan.post_ids])
                        buffers[index] = {}

    fingerprints = {path: plan.fingerprint for plan in plans for path in plan.paths.values()}
    report.removed = remove_files(out, set(manifest) - set(fingerprints))
    save_manifest(out, fingerprints)

    hub = settings.feeds.websub_hub
    if hub:
        subscriptions = {
            path for plan in plans if not plan.is_archive for path in plan.paths.values()
        }
        topics = [urls.feed(path) for path in report.written if path in subscriptions]
        if topics:
            report.failed_pings = ping(hub, topics)
    return report


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
