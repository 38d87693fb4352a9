"""The feed build: the shell around :mod:`plan` and :mod:`render`.

It reads light facts from the store, plans every document, and hands the
changed ones to :mod:`render` (imported only then, with feedgen and lxml), then
removes stale files, saves the manifest and pings the hub. It is idempotent: a
second build with nothing changed renders nothing and writes nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .. import __version__, queries
from ..config import Settings
from ..content.text import xml_safe
from ..files import exclusive_lock, existing_files, remove_stale_temporaries
from ..models import Author, Tag
from ..urls import FEED_FILES, Urls
from .manifest import load_manifest, remove_files, save_manifest, state_dir
from .model import FeedMeta
from .names import Names, folder_name
from .plan import FeedSpec, plan_documents
from .stamp import (
    Stamp,
    clear_stamp,
    save_stamp,
    sqlite_path,
    store_digest,
    utc_iso,
)
from .websub import ping_hub

#: from this many entries to serialise on, a build may spread over idle cores: a
#: forked worker costs ~20 ms to start and its own reads of the store, and saves
#: ~0.4 ms an entry it serialises instead of this process
PARALLEL_ENTRIES = 1000


@dataclass
class FeedBuildReport:
    """What a feed build did, in paths relative to the feed folder."""

    documents: int = 0
    rendered: int = 0
    #: entries serialised (each once, however many documents list it)
    entries: int = 0
    #: processes that rendered (1: this one alone)
    processes: int = 1
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
    tag_specs = {}
    for t in tags:
        folder, name = f"tags/{folder_name(t.slug)}/", xml_safe(t.name)
        tag_specs[folder_name(t.slug)] = FeedSpec(
            folder, meta(folder, f"{site.title}: {name}", f"Posts tagged {name}")
        )
    author_specs = {}
    for a in authors:
        folder, name = f"authors/{folder_name(a.slug)}/", xml_safe(a.name)
        author_specs[folder_name(a.slug)] = FeedSpec(
            folder, meta(folder, f"{site.title}: {name}", f"Posts by {name}")
        )
    return main, tag_specs, author_specs


def publish_feeds(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    force: bool = False,
    ping: Callable[[str, list[str]], list[str]] = ping_hub,
    on_wait: Callable[[], None] | None = None,
    stamp_key: str | None = None,
) -> FeedBuildReport:
    """Build every feed document whose content changed, and only those.

    Plan from light facts (no bodies); render the documents whose fingerprint
    differs from the last build's; write files atomically and only when their
    bytes change; remove files no document makes any more; ping the hub.

    One build at a time: a build holds a lock from reading the store to
    saving the manifest, so a second one waits (``on_wait`` is told) and then
    reads the store as the first left it. Two builds racing with a change
    between them therefore always leave the newer state on disk.

    :param stamp_key: the :func:`~publisher.feeds.stamp.config_key` of the config
        file ``settings`` were read from, taken before reading it: the build then
        leaves a stamp, so that the next build with nothing to do can tell at once.
    """
    out = settings.feeds.output_dir
    with exclusive_lock(state_dir(out) / "lock", on_wait):
        # what a killed build left half-written: no build is writing now
        existing = existing_files(out)
        existing.difference_update(remove_stale_temporaries(out, existing))
        remove_stale_temporaries(state_dir(out))
        clear_stamp(out)
        report, topics = _build(factory, settings, now, force, stamp_key, existing)
    # after the files are in place and the lock is free: a slow hub delays no one
    hub = settings.feeds.websub_hub
    if hub and topics:
        report.failed_pings = ping(hub, topics)
    return report


def _build(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    force: bool,
    stamp_key: str | None,
    existing: set[str],
) -> tuple[FeedBuildReport, list[str]]:
    """The build itself; the report and the changed subscription feeds' URLs.

    :param existing: the files in the feed folder (:func:`~publisher.files.existing_files`).
    """
    urls = Urls.from_settings(settings)
    out = settings.feeds.output_dir
    report = FeedBuildReport()
    with factory() as session:
        database = _sqlite_file(session) if stamp_key else None
        # before reading: a change made meanwhile leaves the stamp out of date, not wrong
        digest = store_digest(_dbapi(session)) if database else None
        next_due = queries.next_due(session, now) if database else None
        names = Names.load(session)
        stubs = names.stubs(queries.feed_stubs(session, now), queries.tag_ids_by_post(session))
        site, tag_specs, author_specs = feed_specs(
            settings, urls, names.authors.values(), names.tags.values()
        )
        salt = _salt(settings, urls, names.authors.values(), names.tags.values())
        plans = plan_documents(
            site, tag_specs, author_specs, stubs, settings.feeds.items, urls, salt
        )
        manifest = load_manifest(out)
        todo = [
            plan
            for plan in plans
            if force
            or any(
                manifest.get(path) != plan.fingerprint or path not in existing
                for path in plan.paths.values()
            )
        ]
        if todo:
            from . import render

            entries = len({i for plan in todo for i in plan.post_ids})
            report.processes = workers = choose_workers(entries)
            if workers > 1:
                url = session.get_bind().engine.url.render_as_string(hide_password=False)
                rendered = render.render_in_parallel(
                    session, names, url, settings, todo, stubs, workers
                )
            else:
                rendered = render.render_plans(session, todo, stubs, names, urls, settings)
            report.written, report.entries = sorted(rendered.written), rendered.entries
        report.documents, report.rendered = len(plans), len(todo)

    fingerprints = {path: plan.fingerprint for plan in plans for path in plan.paths.values()}
    report.removed = remove_files(out, set(manifest) - set(fingerprints))
    save_manifest(out, fingerprints)
    if stamp_key and database and digest:
        stamp = Stamp(stamp_key, digest, database, str(out), utc_iso(next_due), len(plans))
        save_stamp(out, stamp)

    subscriptions = {p for plan in plans if not plan.is_archive for p in plan.paths.values()}
    topics = [urls.feed(path) for path in report.written if path in subscriptions]
    return report, topics


def choose_workers(entries: int) -> int:
    """How many processes to render ``entries`` entries on: 1, unless the build is
    large and cores stand idle.

    Measured with bench/feeds.py on a 2-core machine that others kept busy (load
    ~10): at 10,000 posts a second process made the build 1.9x slower and took
    70% more CPU; a worker only pays on a core nobody else wants. So what other
    processes keep busy (:func:`busy_cores`) decides how many cores are free.
    """
    if entries < PARALLEL_ENTRIES:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    idle = (cores or 1) - busy_cores()
    return max(1, min(cores or 1, 1 + int(idle)))


def busy_cores(loadavg: str = "/proc/loadavg") -> float:
    """How many cores other processes keep busy: the lesser of the 1-minute load
    average and the tasks runnable right now, this one apart.

    The load average alone lags by a minute: right after a parallel import it
    still counts the import's processes, which are gone. Where there is no
    ``/proc/loadavg``, the load average alone.
    """
    load = os.getloadavg()[0]
    try:
        with open(loadavg) as handle:
            runnable = int(handle.read().split()[3].split("/")[0]) - 1
    except (OSError, ValueError, IndexError):
        return load
    return min(load, max(runnable, 0))


def _sqlite_file(session: Session) -> str | None:
    """The SQLite file ``session`` reads (absolute), or None for another database."""
    url = session.get_bind().engine.url
    return (
        sqlite_path(url.render_as_string(hide_password=False))
        if url.get_backend_name() == "sqlite"
        else None
    )


def _dbapi(session: Session) -> Any:
    """The driver's own connection under ``session`` (for the stamp's one query)."""
    return session.connection().connection.dbapi_connection


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
