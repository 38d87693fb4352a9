"""Which feed documents exist, what each holds, and whether it must be rebuilt.

Pure. From light per-post facts (no bodies) we lay out every document:

- one **site feed**, plus one feed per **tag** and per **author**, each in
  Atom, RSS and JSON Feed;
- the site feed keeps its full history as **RFC 5005 archive pages**: the
  posts, oldest first, cut into pages of ``page_size``. Only full pages are
  written. A page never changes once full (new posts go to newer pages), so a
  reader or a cache can keep it forever; each links ``prev-archive`` to the page
  before it and ``current`` to the subscription document. The subscription
  document holds the newest ``page_size`` posts, which always include the posts
  not yet on a full page, and links ``prev-archive`` to the newest full page.
- tag and author feeds hold the newest ``page_size`` posts; their history is
  in the site archive.

Each document gets a fingerprint of everything it is made from, so a build
renders only the documents whose fingerprint changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .feeds import FeedMeta, Links
from .urls import FEED_FILES, Urls

#: bump when the output for the same input changes, to rebuild everything once
FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Stub:
    """What planning needs to know of a visible post."""

    id: int
    #: changes whenever anything shown in the post's entry changes
    version: str
    author: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedSpec:
    """One feed: its folder under the feed root, metadata, and whether it is archived."""

    folder: str
    meta: FeedMeta
    archived: bool = False


@dataclass(frozen=True)
class DocPlan:
    """One document to write in every format."""

    spec: FeedSpec
    #: 1-based archive page (oldest first), or None for the subscription document
    page: int | None
    #: newest first
    post_ids: tuple[int, ...]
    paths: dict[str, str]
    links: dict[str, Links]
    fingerprint: str

    @property
    def is_archive(self) -> bool:
        return self.page is not None


def document_paths(folder: str, page: int | None) -> dict[str, str]:
    """``atom.xml`` … for the subscription document, ``archive/atom-3.xml`` … for page 3."""
    if page is None:
        return {kind: folder + name for kind, name in FEED_FILES.items()}
    return {
        kind: f"{folder}archive/{stem}-{page}{ext}"
        for kind, (stem, ext) in ((k, _split(n)) for k, n in FEED_FILES.items())
    }


def _split(name: str) -> tuple[str, str]:
    stem, ext = name.rsplit(".", 1)
    return stem, "." + ext


def _fingerprint(
    salt: str, spec: FeedSpec, page: int | None, links: dict[str, Links], versions: Iterable[str]
) -> str:
    digest = hashlib.sha256()
    digest.update(f"{FORMAT_VERSION}\0{salt}\0{spec!r}\0{page}\0{sorted(links.items())!r}".encode())
    for version in versions:
        digest.update(b"\0")
        digest.update(version.encode())
    return digest.hexdigest()


def plan_feed(
    spec: FeedSpec,
    stubs: Sequence[Stub],
    page_size: int,
    urls: Urls,
    salt: str = "",
) -> list[DocPlan]:
    """The documents of one feed, given its posts oldest first."""
    pages = len(stubs) // page_size if spec.archived else 0
    plans = []
    for page in range(1, pages + 1):
        chunk = stubs[(page - 1) * page_size : page * page_size]
        paths = document_paths(spec.folder, page)
        links = {
            kind: Links(
                self=urls.feed(paths[kind]),
                current=urls.feed(document_paths(spec.folder, None)[kind]),
                prev_archive=(
                    urls.feed(document_paths(spec.folder, page - 1)[kind]) if page > 1 else None
                ),
            )
            for kind in FEED_FILES
        }
        ids = tuple(s.id for s in reversed(chunk))
        fingerprint = _fingerprint(salt, spec, page, links, (s.version for s in chunk))
        plans.append(DocPlan(spec, page, ids, paths, links, fingerprint))

    newest = stubs[-page_size:]
    paths = document_paths(spec.folder, None)
    links = {
        kind: Links(
            self=urls.feed(paths[kind]),
            prev_archive=urls.feed(document_paths(spec.folder, pages)[kind]) if pages else None,
        )
        for kind in FEED_FILES
    }
    fingerprint = _fingerprint(salt, spec, None, links, (s.version for s in newest))
    plans.append(
        DocPlan(spec, None, tuple(s.id for s in reversed(newest)), paths, links, fingerprint)
    )
    return plans


def plan_documents(
    site: FeedSpec,
    tags: dict[str, FeedSpec],
    authors: dict[str, FeedSpec],
    stubs: Sequence[Stub],
    page_size: int,
    urls: Urls,
    salt: str = "",
) -> list[DocPlan]:
    """Every document of every feed. ``stubs`` are the visible posts, oldest first.

    Tags and authors without a visible post get no feed.
    """
    by_tag: dict[str, list[Stub]] = {}
    by_author: dict[str, list[Stub]] = {}
    for stub in stubs:
        for tag in stub.tags:
            by_tag.setdefault(tag, []).append(stub)
        if stub.author is not None:
            by_author.setdefault(stub.author, []).append(stub)
    plans = plan_feed(site, stubs, page_size, urls, salt)
    for slug, members in sorted(by_tag.items()):
        plans += plan_feed(tags[slug], members, page_size, urls, salt)
    for slug, members in sorted(by_author.items()):
        plans += plan_feed(authors[slug], members, page_size, urls, salt)
    return plans
