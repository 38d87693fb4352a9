"""Rendering the documents a build must write: read the posts, serialise each entry
once per format, assemble the documents from those parts, write the files.

The part of the build that loads feedgen and lxml: :mod:`build` imports this
module only when some document changed, so a build with nothing to do loads
neither. It is also where the build's worker processes start: a worker is forked
from the build with this module loaded, or, where it is spawned, imports this
module (and what it needs), not the command line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from .. import queries
from ..config import Settings
from ..db import make_engine, make_sessionmaker
from ..files import write_if_changed
from ..urls import Urls
from .entries import build_entry
from .formats import RENDERERS, serialise_entry
from .model import Document, EntryParts
from .names import Names
from .plan import DocPlan, Stub, split_shares

#: posts loaded from the database at a time while building feeds
CHUNK = 500


@dataclass
class Rendered:
    """What rendering did: the paths written, and how many entries were serialised."""

    written: list[str] = field(default_factory=list)
    #: each once, however many documents list it
    entries: int = 0

    def add(self, other: Rendered) -> None:
        self.written += other.written
        self.entries += other.entries


def render_document(plan: DocPlan, entries: list[EntryParts]) -> list[tuple[str, bytes]]:
    """One document in every format: each path with its bytes."""
    document = Document(plan.spec.meta, entries, plan.is_archive, plan.links)
    return [(path, RENDERERS[kind](document)) for kind, path in plan.paths.items()]


def write_files(out: Path, files: list[tuple[str, bytes]]) -> list[str]:
    """Write ``files`` under ``out``; the paths whose bytes changed."""
    return [path for path, data in files if write_if_changed(out / path, data)]


def render_plans(
    session: Session,
    plans: list[DocPlan],
    stubs: list[Stub],
    names: Names,
    urls: Urls,
    settings: Settings,
) -> Rendered:
    """Render ``plans`` from the store, each entry serialised once, and write each
    document's files as soon as it is made.

    Written here, not by a thread of their own: each file's system calls hand the
    interpreter lock to the writer and back, and on two cores those hand-overs cost
    more than the overlap saved (bench/peers.py's posts, as ``import --build``: at
    10,000, 11.4 s of CPU with a writer thread, 10.9 s without; at 1,000 right
    after deleting the old feed folder, when every new file is slow to create,
    3.27 s with it, 2.94 s without).
    """
    out = settings.feeds.output_dir
    rendered = Rendered()
    for plan, entries in _assemble(session, plans, stubs, names, urls, settings, rendered):
        rendered.written += write_files(out, render_document(plan, entries))
    return rendered


def _assemble(
    session: Session,
    plans: list[DocPlan],
    stubs: list[Stub],
    names: Names,
    urls: Urls,
    settings: Settings,
    rendered: Rendered,
) -> Iterator[tuple[DocPlan, list[EntryParts]]]:
    """Each plan with its entries' parts, as soon as all of them have been made.

    Posts are read oldest first, CHUNK at a time, so archive pages complete
    (and leave memory) early. Each post is serialised once, when it is read,
    and its parts are shared by every document that lists it: an entry is
    written once per format per build, not once per document. (Keeping the
    parts across builds, in the database, would save a one-post build the
    serialisation of the ~100 other entries its documents list, a few tens of
    milliseconds, for ~10 KB stored per post; bench/feeds.py prints the count.)
    """
    waiting: dict[int, list[int]] = {}
    for index, plan in enumerate(plans):
        if not plan.post_ids:
            yield plan, []
        for post_id in plan.post_ids:
            waiting.setdefault(post_id, []).append(index)
    remaining = [len(plan.post_ids) for plan in plans]
    buffers: list[dict[int, EntryParts]] = [{} for _ in plans]
    full_content = settings.feeds.content == "full"
    wanted = [stub for stub in stubs if stub.id in waiting]
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        ids = [stub.id for stub in chunk]
        rows = queries.feed_rows(session, ids)
        attachments = queries.attachments_of(session, ids)
        for stub in chunk:
            row = rows[stub.id]
            parts = serialise_entry(
                build_entry(
                    row,
                    attachments.get(stub.id, []),
                    names.person(row.author_id),
                    names.categories(stub.tags),
                    urls,
                    full_content,
                )
            )
            rendered.entries += 1
            for index in waiting[stub.id]:
                buffers[index][stub.id] = parts
                remaining[index] -= 1
                if remaining[index] == 0:
                    plan = plans[index]
                    yield plan, [buffers[index][i] for i in plan.post_ids]
                    buffers[index] = {}


def render_share(url: str, settings: Settings, plans: list[DocPlan], stubs: list[Stub]) -> Rendered:
    """In a worker process: render a share of the documents, reading the store itself."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            names = Names.load(session)
            return render_plans(
                session, plans, stubs, names, Urls.from_settings(settings), settings
            )
    finally:
        engine.dispose()


def render_in_parallel(
    session: Session,
    names: Names,
    url: str,
    settings: Settings,
    plans: list[DocPlan],
    stubs: list[Stub],
    workers: int,
) -> Rendered:
    """Render on ``workers`` processes: this one and ``workers - 1`` others each take a share.

    Shares are of about equal cost (:func:`~.plan.split_shares`), and each
    process reads its own posts, so no post body crosses a process boundary.
    Each worker opens its own database connection from ``url`` (a forked one
    never uses the connection it inherits). They die with this process
    (:mod:`workers`).
    """
    shares = split_shares(plans, stubs, workers)

    def stubs_of(share: list[DocPlan]) -> list[Stub]:
        wanted = {i for plan in share for i in plan.post_ids}
        return [stub for stub in stubs if stub.id in wanted]

    from .workers import worker_pool  # multiprocessing: only for a parallel build

    with worker_pool(workers - 1) as pool:
        futures = [
            pool.submit(render_share, url, settings, share, stubs_of(share)) for share in shares[1:]
        ]
        urls = Urls.from_settings(settings)
        rendered = render_plans(session, shares[0], stubs_of(shares[0]), names, urls, settings)
        for future in futures:
            rendered.add(future.result())
        return rendered
