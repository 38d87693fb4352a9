"""The audience: subscriber states, newsletters, consent, events.

- ``subscribers.status`` gains ``pending`` (double opt-in not yet clicked),
  ``bounced`` and ``complained``.
- ``subscriptions``: the newsletters (digests of config.yaml, by name) each
  subscriber receives, and ``subscription_topics`` the tags followed in each
  (none: all). They replace ``subscriber_tags``: every subscriber of today is
  kept on every newsletter, following the topics they followed.
- ``consents``: when and how each subscriber agreed, and to what words.
- ``subscriber_events``: bounces, complaints, unsubscribes, confirmations…
- ``suppressions``: salted hashes of addresses never to be mailed or imported
  again (erased people), and ``suppression_salt``, the installation's salt.

The newsletter names come from the config (``db.upgrade(engine,
newsletters=…)``, as ``publisher db upgrade`` and ``publisher init`` pass
them), else from the digests already sent.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import context, op

from publisher.errors import DatabaseError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NEW_STATUSES = ("pending", "bounced", "complained")
MIGRATED_CONSENT = (
    "Subscribed before consent was recorded; kept on every newsletter by the upgrade "
    "to schema 0005."
)


def _newsletters(bind: sa.Connection) -> list[str]:
    given = context.config.attributes.get("newsletters")
    if given is not None:
        return sorted(set(given))
    return list(bind.execute(sa.text("SELECT DISTINCT name FROM digest_runs ORDER BY name")).scalars())


def upgrade() -> None:
    bind = op.get_bind()
    newsletters = _newsletters(bind)
    has_subscribers = bind.execute(sa.text("SELECT 1 FROM subscribers LIMIT 1")).first()
    if has_subscribers and not newsletters:
        raise DatabaseError(
            "schema 0005 puts today's subscribers on every newsletter, but no newsletter is "
            "known: add the digests under `digests:` in config.yaml and run "
            "`publisher db upgrade` again"
        )
    if bind.dialect.name == "postgresql":
        # PostgreSQL 12+ may add enum values inside a transaction (not use them in it)
        for value in NEW_STATUSES:
            op.execute(f"ALTER TYPE subscriber_status ADD VALUE IF NOT EXISTS '{value}'")
    # SQLite stores the status as VARCHAR(12), which every new value fits: nothing to do
    # (and a batch copy of `subscribers` would cascade-delete its children)

    subscriptions = op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("newsletter", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"],
            name=op.f("fk_subscriptions_subscriber_id_subscribers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "newsletter", name=op.f("pk_subscriptions")),
    )
    topics = op.create_table(
        "subscription_topics",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("newsletter", sa.String(length=100), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id", "newsletter"],
            ["subscriptions.subscriber_id", "subscriptions.newsletter"],
            name=op.f("fk_subscription_topics_subscriber_id_subscriptions"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"],
            name=op.f("fk_subscription_topics_tag_id_tags"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "subscriber_id", "newsletter", "tag_id", name=op.f("pk_subscription_topics")
        ),
    )
    with op.batch_alter_table("subscription_topics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscription_topics_tag_id"), ["tag_id"], unique=False
        )
    consents = op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column(
            "method", sa.Enum("form", "import", "staff", name="consent_method"), nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("page", sa.Text(), nullable=True),
        sa.Column("client_address", sa.String(length=100), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"],
            name=op.f("fk_consents_subscriber_id_subscribers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consents_subscriber_id"), ["subscriber_id"], unique=False
        )
    op.create_table(
        "subscriber_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "request", "confirm", "add", "import", "preferences", "unsubscribe", "bounce",
                "soft_bounce", "complaint", "reactivate", name="event_kind",
            ),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("newsletter", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("report_id", sa.String(length=300), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"],
            name=op.f("fk_subscriber_events_subscriber_id_subscribers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriber_events")),
        sa.UniqueConstraint(
            "subscriber_id", "report_id", name=op.f("uq_subscriber_events_subscriber_id")
        ),
    )
    with op.batch_alter_table("subscriber_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscriber_events_when", ["subscriber_id", "kind", "at"], unique=False
        )
    op.create_table(
        "suppressions",
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=50), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address_hash", name=op.f("pk_suppressions")),
    )
    salt = op.create_table(
        "suppression_salt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppression_salt")),
    )
    op.bulk_insert(salt, [{"id": 1, "salt": secrets.token_hex(32)}])

    # today's subscribers: on every newsletter, with the topics they followed, and a
    # consent record that says where they came from (copied in SQL: no date conversions)
    for name in newsletters:
        op.execute(
            sa.text(
                "INSERT INTO subscriptions (subscriber_id, newsletter, created_at) "
                "SELECT id, :name, created_at FROM subscribers"
            ).bindparams(name=name)
        )
        op.execute(
            sa.text(
                "INSERT INTO subscription_topics (subscriber_id, newsletter, tag_id) "
                "SELECT subscriber_id, :name, tag_id FROM subscriber_tags"
            ).bindparams(name=name)
        )
    op.execute(
        sa.text(
            "INSERT INTO consents (subscriber_id, method, at, text, choices, confirmed_at) "
            "SELECT id, 'staff', created_at, :text, :choices, created_at FROM subscribers"
        ).bindparams(
            sa.bindparam("choices", {name: [] for name in newsletters}, type_=sa.JSON),
            text=MIGRATED_CONSENT,
        )
    )
    followed: dict[int, list[str]] = {}
    for subscriber_id, slug in bind.execute(
        sa.text(
            "SELECT st.subscriber_id, t.slug FROM subscriber_tags st "
            "JOIN tags t ON t.id = st.tag_id ORDER BY t.slug"
        )
    ):
        followed.setdefault(subscriber_id, []).append(slug)
    for subscriber_id, slugs in followed.items():
        op.execute(
            sa.text("UPDATE consents SET choices = :choices WHERE subscriber_id = :id").bindparams(
                sa.bindparam("choices", {n: slugs for n in newsletters}, type_=sa.JSON),
                id=subscriber_id,
            )
        )
    op.drop_table("subscriber_tags")


def downgrade() -> None:
    bind = op.get_bind()
    subscriber_tags = op.create_table(
        "subscriber_tags",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"],
            name=op.f("fk_subscriber_tags_subscriber_id_subscribers"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"],
            name=op.f("fk_subscriber_tags_tag_id_tags"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "tag_id", name=op.f("pk_subscriber_tags")),
    )
    with op.batch_alter_table("subscriber_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscriber_tags_tag_id"), ["tag_id"], unique=False)
    # one list of topics per person again: the union over the newsletters they still get
    rows = bind.execute(
        sa.text(
            "SELECT DISTINCT t.subscriber_id, t.tag_id FROM subscription_topics t "
            "JOIN subscriptions s ON s.subscriber_id = t.subscriber_id "
            "AND s.newsletter = t.newsletter WHERE s.unsubscribed_at IS NULL"
        )
    ).all()
    op.bulk_insert(subscriber_tags, [{"subscriber_id": s, "tag_id": t} for s, t in rows])

    op.drop_table("suppression_salt")
    op.drop_table("suppressions")
    with op.batch_alter_table("subscriber_events", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriber_events_when")
    op.drop_table("subscriber_events")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_subscriber_id"))
    op.drop_table("consents")
    with op.batch_alter_table("subscription_topics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_topics_tag_id"))
    op.drop_table("subscription_topics")
    op.drop_table("subscriptions")
    for name in ("event_kind", "consent_method"):
        sa.Enum(name=name).drop(bind, checkfirst=True)

    # who may not be mailed stays unmailed: pending, bounced and complained become unsubscribed
    op.execute(
        "UPDATE subscribers SET status = 'unsubscribed' "
        "WHERE status IN ('pending', 'bounced', 'complained')"
    )
    if bind.dialect.name == "postgresql":
        # an enum value cannot be dropped: rebuild the type with the old two
        op.execute("ALTER TABLE subscribers ALTER COLUMN status TYPE text")
        op.execute("DROP TYPE subscriber_status")
        op.execute("CREATE TYPE subscriber_status AS ENUM ('active', 'unsubscribed')")
        op.execute(
            "ALTER TABLE subscribers ALTER COLUMN status TYPE subscriber_status "
            "USING status::subscriber_status"
        )
