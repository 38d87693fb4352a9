"""The send pipeline: delivery states, claimed runs.

- ``digest_runs``: one run per digest and period (unique ``name, period_start``),
  so a second sender or scheduler joins the run instead of making another; the
  run keeps the ids of its posts, so a resend renders the same digest.
- ``deliveries``: every row is created ``pending`` when the run is claimed;
  ``sending`` is committed before a message goes to SMTP; ``attempts``,
  ``next_attempt_at`` and ``retry_until`` pace the retries of 4xx replies.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # PostgreSQL 12+ may add enum values inside a transaction (not use them in it)
        op.execute("ALTER TYPE delivery_status ADD VALUE IF NOT EXISTS 'pending'")
        op.execute("ALTER TYPE delivery_status ADD VALUE IF NOT EXISTS 'sending'")
    with op.batch_alter_table("digest_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("post_ids", sa.Text(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_digest_runs_name"), ["name", "period_start"]
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("retry_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_deliveries_claim", ["run_id", "status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_claim")
        batch_op.drop_column("retry_until")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
    with op.batch_alter_table("digest_runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_digest_runs_name"), type_="unique")
        batch_op.drop_column("post_ids")
    op.execute("DELETE FROM deliveries WHERE status IN ('pending', 'sending')")
    if op.get_bind().dialect.name == "postgresql":
        # an enum value cannot be dropped: rebuild the type with the old three
        op.execute("ALTER TABLE deliveries ALTER COLUMN status TYPE text")
        op.execute("DROP TYPE delivery_status")
        op.execute("CREATE TYPE delivery_status AS ENUM ('sent', 'failed', 'skipped')")
        op.execute(
            "ALTER TABLE deliveries ALTER COLUMN status TYPE delivery_status "
            "USING status::delivery_status"
        )
