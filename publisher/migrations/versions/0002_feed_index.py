"""covering index for planning feed builds

A feed build reads the light columns of every visible post in date order.
This index replaces ix_posts_status_published_at.
With this index SQLite (and PostgreSQL, as an index-only scan) answers that
from the index alone, without reading the large rows that hold the bodies.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ["published_at", "id", "status", "author_id", "updated_at", "source_hash", "slug"]


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        # replaced: planners picked it over the covering index and then read every row
        batch_op.drop_index("ix_posts_status_published_at")
        batch_op.create_index("ix_posts_feed", COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_feed")
        batch_op.create_index(
            "ix_posts_status_published_at", ["status", "published_at"], unique=False
        )
