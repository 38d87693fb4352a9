"""The feed build: the shell around :mod:`feedplan` and :mod:`feeds`.

It reads the store, hands plain values to the pure modules and does the I/O
at the end. It is idempotent: a second build with nothing changed renders
nothing and writes nothing. (The digest's shell is :mod:`mailing`.)
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .. import __version__, queries
from ..config import Settings
from ..db import make_engine, make_sessionmaker
from ..files import write_if_changed
from ..models import Author, Tag
from ..urls import FEED_FILES, Urls
from .entries import build_entry
from .manifest import load_manifest, remove_files, save_manifest
from .model import RENDERERS, Category, Document, Entry, FeedMeta, Person, prepare_entry
from .plan import DocPlan, FeedSpec, Stub, plan_documents
from .websub import ping_hub

#: posts loaded from the database at a time while building feeds
CHUNK = 500
#: from this many documents to render on, a build uses every core (each worker
#: reopens the database from its URL)
PARALLEL_DOCUMENTS = 200


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
            author=site.title,
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
    #: plain values for the hot loops over every post (ORM attribute access is slow)
    author_slugs: dict[int, str]
    tag_slugs: dict[str, str]
    persons: dict[int, Person]
    categories_by_slug: dict[str, Category]

    @classmethod
    def load(cls, session: Session) -> _Names:
        tags = queries.all_tags(session)
        authors = queries.all_authors(session)
        return cls(
            {a.id: a for a in authors},
            {t.id: t for t in tags},
            {a.id: a.slug for a in authors},
            {str(t.id): t.slug for t in tags},
            {a.id: Person(a.name) for a in authors},
            {t.slug: Category(t.slug, t.name) for t in tags},
        )

    def stubs(self, rows: Iterable[Any], tag_ids: dict[int, str]) -> list[Stub]:
        """Planning facts per post; a post's tags are part of its version."""
        author_slugs, tag_slugs = self.author_slugs, self.tag_slugs
        stubs = []
        for post_id, author_id, version in rows:
            tags = tag_ids.get(post_id, "")
            stubs.append(
                Stub(
                    post_id,
                    f"{version}|{tags}",
                    author_slugs[author_id] if author_id else None,
                    tuple(map(tag_slugs.__getitem__, tags.split(","))) if tags else (),
                )
            )
        return stubs

    def person(self, author_id: int | None) -> Person | None:
        return self.persons.get(author_id) if author_id is not None else None

    def categories(self, tag_slugs: tuple[str, ...]) -> tuple[Category, ...]:
        found = (self.categories_by_slug[s] for s in tag_slugs)
        return tuple(sorted(found, key=lambda c: c.name))


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
        stubs = names.stubs(queries.feed_stubs(session, now), queries.tag_ids_by_post(session))
        site, tag_specs, author_specs = feed_specs(
            settings, urls, names.authors.values(), names.tags.values()
        )
        salt = _salt(settings, urls, names.authors.values(), names.tags.values())
        plans = plan_documents(
            site, tag_specs, author_specs, stubs, settings.feeds.items, urls, salt
        )
        manifest = load_manifest(out)
        existing = _existing_files(out)
        todo = [
            plan
            for plan in plans
            if force
            or any(
                manifest.get(path) != plan.fingerprint or path not in existing
                for path in plan.paths.values()
            )
        ]
        workers = os.cpu_count() or 1
        if len(todo) >= PARALLEL_DOCUMENTS and workers > 1:
            url = session.get_bind().engine.url.render_as_string(hide_password=False)
            written = _render_in_parallel(session, names, url, settings, todo, stubs, workers)
        else:
            written = _render_plans(session, todo, stubs, names, urls, settings)
        report.documents, report.rendered, report.written = len(plans), len(todo), sorted(written)

    fingerprints = {path: plan.fingerprint for plan in plans for path in plan.paths.values()}
    report.removed = remove_files(out, set(manifest) - set(fingerprints))
    save_manifest(out, fingerprints)

    hub = settings.feeds.websub_hub
    subscriptions = {p for plan in plans if not plan.is_archive for p in plan.paths.values()}
    topics = [urls.feed(path) for path in report.written if path in subscriptions]
    if hub and topics:
        report.failed_pings = ping(hub, topics)
    return report


def _existing_files(root: Path) -> set[str]:
    """Paths of the files under ``root``, relative to it (one walk, not a stat per file)."""
    found: set[str] = set()
    for folder, _, files in os.walk(root):
        prefix = os.path.relpath(folder, root)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        found.update(prefix + name for name in files)
    return found


def _assemble(
    session: Session,
    plans: list[DocPlan],
    stubs: list[Stub],
    names: _Names,
    urls: Urls,
    settings: Settings,
) -> Iterator[tuple[DocPlan, list[Entry]]]:
    """Each plan with its entries, as soon as all of them have been read.

    Posts are read oldest first, CHUNK at a time, so archive pages complete
    (and leave memory) early; each post becomes an entry once however many
    documents list it.
    """
    waiting: dict[int, list[int]] = {}
    for index, plan in enumerate(plans):
        if not plan.post_ids:
            yield plan, []
        for post_id in plan.post_ids:
            waiting.setdefault(post_id, []).append(index)
    remaining = [len(plan.post_ids) for plan in plans]
    buffers: list[dict[int, Entry]] = [{} for _ in plans]
    full_content = settings.feeds.content == "full"
    wanted = [stub for stub in stubs if stub.id in waiting]
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        ids = [stub.id for stub in chunk]
        rows = queries.feed_rows(session, ids)
        attachments = queries.attachments_of(session, ids)
        for stub in chunk:
            row = rows[stub.id]
            entry = build_entry(
                row,
                attachments.get(stub.id, []),
                names.person(row.author_id),
                names.categories(stub.tags),
                urls,
                full_content,
            )
            for index in waiting[stub.id]:
                buffers[index][stub.id] = entry
                remaining[index] -= 1
                if remaining[index] == 0:
                    plan = plans[index]
                    yield plan, [buffers[index][i] for i in plan.post_ids]
                    buffers[index] = {}


#: a document's entries are often in other documents too: prepare each once
_prepare = functools.lru_cache(maxsize=1024)(prepare_entry)


def render_document(out: Path, plan: DocPlan, entries: list[Entry]) -> list[str]:
    """Write one document in every format; the paths whose bytes changed."""
    document = Document(plan.spec.meta, [_prepare(e) for e in entries], plan.is_archive, plan.links)
    return [
        path
        for kind, path in plan.paths.items()
        if write_if_changed(out / path, RENDERERS[kind](document))
    ]


def _render_plans(
    session: Session,
    plans: list[DocPlan],
    stubs: list[Stub],
    names: _Names,
    urls: Urls,
    settings: Settings,
) -> list[str]:
    """Render ``plans`` from the store; the paths written."""
    out = settings.feeds.output_dir
    rendered = _assemble(session, plans, stubs, names, urls, settings)
    return [path for plan, entries in rendered for path in render_document(out, plan, entries)]


def _render_part(
    url: str, settings: Settings, plans: list[DocPlan], stubs: list[Stub]
) -> list[str]:
    """In a worker process: render a share of the documents, reading the store itself."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            names = _Names.load(session)
            return _render_plans(
                session, plans, stubs, names, Urls.from_settings(settings), settings
            )
    finally:
        engine.dispose()


def _render_in_parallel(
    session: Session,
    names: _Names,
    url: str,
    settings: Settings,
    plans: list[DocPlan],
    stubs: list[Stub],
    workers: int,
) -> list[str]:
    """Render on every core: this process and ``workers - 1`` others each take a share.

    Shares are runs of consecutive posts of about equal size, so each process
    streams one stretch of the archive and no post body crosses a process
    boundary. Workers are spawned, not forked, so none inherits a database
    connection; each opens its own from ``url``.
    """
    position = {stub.id: index for index, stub in enumerate(stubs)}
    ordered = sorted(plans, key=lambda p: min((position[i] for i in p.post_ids), default=0))
    total = sum(len(p.post_ids) for p in ordered) or 1
    shares: list[list[DocPlan]] = [[] for _ in range(workers)]
    done = 0
    for plan in ordered:
        shares[min(done * workers // total, workers - 1)].append(plan)
        done += len(plan.post_ids)

    def stubs_of(share: list[DocPlan]) -> list[Stub]:
        wanted = {i for plan in share for i in plan.post_ids}
        return [stub for stub in stubs if stub.id in wanted]

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=context) as pool:
        futures = [
            pool.submit(_render_part, url, settings, share, stubs_of(share)) for share in shares[1:]
        ]
        urls = Urls.from_settings(settings)
        written = _render_plans(session, shares[0], stubs_of(shares[0]), names, urls, settings)
        return written + [path for future in futures for path in future.result()]


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
