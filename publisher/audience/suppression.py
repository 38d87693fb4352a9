"""The suppression list: addresses never to be mailed or imported again.

Kept only as salted SHA-256 hashes of the normalised, lower-cased address,
so after ``subscribers erase`` nothing readable of the person is left, yet
an import, a staff ``add`` or a send recognises the address. The salt is
random per installation (``suppression_salt``, made by the migration), so
the hashes cannot be matched against another list's. Only a new, explicit
double opt-in (the person confirming a subscription themselves) lifts an
entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from ..models import Suppression, SuppressionSalt


def load_salt(session: Session) -> str:
    salt = session.scalar(select(SuppressionSalt.salt).where(SuppressionSalt.id == 1))
    assert salt is not None, "the suppression salt is made by migration 0005"
    return salt


def address_hash(salt: str, address: str) -> str:
    """The hash an (already normalised) address is kept under."""
    return hashlib.sha256(f"{salt}:{address.lower()}".encode()).hexdigest()


#: built once: the send loop asks this for every group of messages
_ON_THE_LIST = select(Suppression.address_hash).where(
    Suppression.address_hash.in_(bindparam("hashes", expanding=True))
)


_ANY = f"SELECT 1 FROM {Suppression.__tablename__} LIMIT 1"


def suppressed(session: Session, salt: str, addresses: Iterable[str]) -> set[str]:
    """Which of ``addresses`` are on the list (no hashing at all while the list is empty)."""
    connection = session.connection()
    if connection.exec_driver_sql(_ANY).first() is None:  # asked per group: a plain statement
        return set()
    by_hash = {address_hash(salt, a): a for a in addresses}
    found: set[str] = set()
    hashes = list(by_hash)
    for start in range(0, len(hashes), 500):
        rows = connection.execute(_ON_THE_LIST, {"hashes": hashes[start : start + 500]})
        found.update(by_hash[h] for h in rows.scalars())
    return found


def is_suppressed(session: Session, address: str) -> bool:
    return bool(suppressed(session, load_salt(session), [address]))


def suppress(session: Session, address: str, reason: str, now: datetime) -> None:
    """Put an address on the list (idempotent)."""
    key = address_hash(load_salt(session), address)
    if session.get(Suppression, key) is None:
        session.add(Suppression(address_hash=key, reason=reason, at=now))


def lift(session: Session, address: str) -> None:
    """Take an address off the list: only for the person's own, confirmed opt-in."""
    key = address_hash(load_salt(session), address)
    session.execute(delete(Suppression).where(Suppression.address_hash == key))
