"""A deleted subscriber's or request's id is never given to another (SQLite).

The links of an email are signed ids: a subscriber's for the preferences and
unsubscribe pages, a request's (consent) for the confirmation. SQLite gives a
new row the highest id in the table plus one, so after the newest subscriber
was erased (or their request forgotten) the next one to sign up got the same
id, and the erased person's links opened *their* preferences, confirmed *their*
request and unsubscribed *them*. PostgreSQL's sequences never go back, so only
SQLite changes: ``subscribers`` and ``consents`` are rebuilt with
``AUTOINCREMENT``, whose counter (``sqlite_sequence``) only grows.

Rows deleted before this upgrade left no trace of their ids. Those above the
highest id left are the newest subscribers erased or forgotten: the counters
start past them by the number of suppressed addresses (each erasure left one)
plus 10,000 (requests forgotten unconfirmed left none), so no id handed out
before is handed out again. A database with no subscriber and no suppressed
address yet starts at 1.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: the counters start this far past the highest id left (see above)
MARGIN = 10_000
TABLES = ("subscribers", "consents")


def _rebuild(autoincrement: bool) -> None:
    """Copy both tables into new ones with (or without) ``AUTOINCREMENT``.

    Foreign keys are off while migrations run (env.py): dropping the old table
    would otherwise delete every row that refers to it.
    """
    with warnings.catch_warnings():
        # SQLAlchemy cannot reflect the index on lower(email): it is made again below
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        for table in TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
            ):
                pass
    op.create_index(
        "ix_subscribers_email_lower", "subscribers", [sa.text("lower(email)")], unique=True
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _rebuild(autoincrement=True)
    suppressed = bind.execute(sa.text("SELECT count(*) FROM suppressions")).scalar_one()
    lived = suppressed or bind.execute(sa.text("SELECT 1 FROM subscribers LIMIT 1")).first()
    # a new database has handed out no id: its counters start at 0
    past = MARGIN + suppressed if lived else 0
    for table in TABLES:
        highest = bind.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
        op.execute(f"DELETE FROM sqlite_sequence WHERE name = '{table}'")
        op.execute(f"INSERT INTO sqlite_sequence (name, seq) VALUES ('{table}', {highest + past})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(autoincrement=False)
