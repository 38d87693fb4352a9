"""A run's editions, rendered once and stored with the run.

- ``run_editions``: one row per run and set of topics (unique ``run_id,
  topics``): the edition's subject, HTML (CSS inlined) and text with their
  placeholders, and the placeholders' nonce (which also makes the MIME
  boundary), so every sender of the run, and every resend after a crash,
  makes the same bytes. ``subject`` NULL: no post of the run is about those
  topics (their subscribers are skipped).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_editions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("topics", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("nonce", sa.String(length=64), nullable=True),
        sa.Column("posts", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["digest_runs.id"],
            name=op.f("fk_run_editions_run_id_digest_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_editions")),
        sa.UniqueConstraint("run_id", "topics", name=op.f("uq_run_editions_run_id")),
    )


def downgrade() -> None:
    op.drop_table("run_editions")
