"""Import posts: Markdown files, folders of them, or an RSS/Atom feed.

Sources are read and validated by :mod:`.sources` and written by
:mod:`.writer` in one transaction, which commits only when no source had a
problem. A failed import therefore leaves the database as it was, and a
repeated import of unchanged sources writes nothing (each post remembers a
hash of its source). Batches of valid new posts go into the open
transaction while the pool parses the rest; a problem found later still
rolls all of it back.
"""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..config import Settings
from ..db import transaction
from ..errors import ImportFailed
from .sources import Checks, collect_sources, read_all
from .writer import ImportReport, Saver


def import_target(
    factory: sessionmaker[Session],
    target: str,
    settings: Settings,
    now: datetime,
    force: bool = False,
) -> ImportReport:
    """Import a file, folder or feed URL: validate everything, and write it all or nothing.

    One transaction is open while the sources are parsed; batches of posts
    are written into it as they pass, and it commits only if every source did.

    :raises ImportFailed: listing every problem; the database is unchanged.
    :raises PublisherError: when the target cannot be read.
    """
    sources = collect_sources(target)
    zone = settings.site.zone
    with transaction(factory) as session:
        known = set() if force else queries.source_hashes(session)
        checks = Checks()
        saver = Saver(session, settings.site.domain, now, force, os.path.isfile)
        unchanged: list[str] = []
        for source, result in read_all(sources, zone, known):
            if result is None:
                unchanged.append(source.label)
                continue
            for draft in checks.add(result):
                saver.add(draft, write=not checks.failed)
        checks.raise_problems()  # leaving the block rolls back what was written
        if saver.conflicts:
            raise ImportFailed(saver.conflicts)
        saver.flush()
        report = saver.report
        if os.path.isdir(target):
            report.notes += [
                f"{path}: gone; its post {slug!r} stays as it is "
                f"(`publisher posts unpublish {slug}` takes it down)"
                for path, slug in saver.stored.gone_under(target)
            ]
    report.unchanged[:0] = unchanged
    return report
