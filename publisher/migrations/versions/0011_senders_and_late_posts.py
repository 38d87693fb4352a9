"""Which sender claimed a delivery; which file made a post, and when it arrived.

``deliveries.sender``: which sender claimed a ``sending`` delivery, so that
another takes it only once that sender is gone. On PostgreSQL several senders share a run (``digest send`` on several machines,
a scheduler beside a staff member's send). A delivery left ``sending`` is a
dead sender's to resend, or a live one's in flight: before, another sender told
them apart by age alone (``stale_after``, five minutes), and a scheduler that
took the lead took back every ``sending`` row of the run at once, the live
senders' too, so their messages in flight went out twice. Now each sender holds
a PostgreSQL advisory lock of its own while it sends (:mod:`publisher.mail.senders`)
and marks the rows it claims with its number: a row is taken back when no
session holds its sender's lock any more, at once after a crash, never while
its sender lives. Rows claimed before (no sender) are still taken by age.

``ix_posts_source_path``: an import finds the post a file made before by the
file's path too, when the file names no id and its slug changed (it made a
second post before, and a file taking another file's slug overwrote that post).

``posts.first_seen_at``: when a post first reached the store. A post dated
inside a digest's period but imported after that digest was sent (written in
the morning, imported after the 9 o'clock send) was in no digest at all; it
now goes out with the next one. Posts stored before have none, and are not
taken for late.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("sender", sa.BigInteger(), nullable=True))
    op.create_index("ix_posts_source_path", "posts", ["source_path"])
    with op.batch_alter_table("posts") as batch_op:
        batch_op.add_column(sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch_op:
        batch_op.drop_column("first_seen_at")
    op.drop_index("ix_posts_source_path", table_name="posts")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("sender")
