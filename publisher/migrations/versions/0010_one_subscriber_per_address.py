"""One subscriber per address, whatever its case; a request's name kept with it.

``ix_subscribers_email_lower`` becomes unique. Every look-up by address
compares ``lower(email)``, but only the exact address was unique: two
subscribe requests at once on PostgreSQL for ``Ann@…`` and ``ann@…`` both
found no subscriber and both inserted one, and that mailbox then got every
digest twice. A database that holds such twins already is not changed: the
upgrade names them, to erase all but one of each first.

``consents.name``: the name given with a subscription request. A pending
subscriber's name is the one of the request whose link is clicked, set then
(before, any later request renamed a pending subscriber at once, so anyone
could put words of their choice in another person's greeting).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from publisher.errors import DatabaseError

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: addresses held by more than one subscriber, in different cases
TWINS = sa.text(
    "SELECT lower(email) FROM subscribers GROUP BY lower(email) HAVING count(*) > 1 ORDER BY 1"
)


def upgrade() -> None:
    twins = list(op.get_bind().execute(TWINS).scalars())
    if twins:
        shown = ", ".join(twins[:10]) + (f" and {len(twins) - 10} more" if len(twins) > 10 else "")
        raise DatabaseError(
            f"{len(twins)} addresses belong to more than one subscriber, in different cases "
            f"({shown}): erase all but one of each (`publisher subscribers erase ADDRESS`), "
            "then run `publisher db upgrade` again"
        )
    op.drop_index("ix_subscribers_email_lower", table_name="subscribers")
    op.create_index(
        "ix_subscribers_email_lower", "subscribers", [sa.text("lower(email)")], unique=True
    )
    with op.batch_alter_table("consents") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(200), nullable=True))
    # requests still waiting for their click keep the name they were made with (until
    # now it was on the subscriber: the latest request's)
    op.execute(
        "UPDATE consents SET name = (SELECT name FROM subscribers "
        "WHERE subscribers.id = consents.subscriber_id) WHERE confirmed_at IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch_op:
        batch_op.drop_column("name")
    op.drop_index("ix_subscribers_email_lower", table_name="subscribers")
    op.create_index(
        "ix_subscribers_email_lower", "subscribers", [sa.text("lower(email)")], unique=False
    )
