"""An index on the lower-cased address of every subscriber.

Every look-up by address (the subscribe form, ``subscribers show``, bounces,
imports) compares ``lower(email)``: without an index on that expression each
one read the whole table, and the subscribe form, which any visitor can send,
slowed down with the size of the list. SQLite (3.9+) and PostgreSQL both index
expressions.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_subscribers_email_lower", "subscribers", [sa.text("lower(email)")], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_subscribers_email_lower", table_name="subscribers")
