"""The placement queue: requests for a worker that fit nowhere yet and wait for a slot.

* placement_queue: one row per waiting request (its id, priority, arrival, deadline, requirements as
  stored, the daemon whose client waits, when that daemon last confirmed it, and why it waits). Rows are
  shared by every daemon on the database and survive a restart.
* On PostgreSQL, NOTIFY hodei_placement when a worker stops holding a slot (released, failed, ended) or
  a request leaves the queue, so every daemon retries its waiting requests at once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PLACEMENT_FUNCTION = """
CREATE OR REPLACE FUNCTION hodei_notify_placement() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hodei_placement', json_build_object(
        'op', TG_OP, 'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME
    )::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

SLOT_HOLDING = "('PROVISIONING', 'RUNNING', 'RELEASING')"


def upgrade() -> None:
    document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "placement_queue",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requirements", document, nullable=False),
        sa.Column("daemon", sa.Text(), nullable=False, server_default=""),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_placement_queue_order", "placement_queue", ["priority", "enqueued_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PLACEMENT_FUNCTION)
        op.execute("CREATE TRIGGER placement_queue_notify AFTER DELETE ON placement_queue "
                   "FOR EACH ROW EXECUTE FUNCTION hodei_notify_placement()")
        op.execute(f"CREATE TRIGGER workers_slot_freed_notify AFTER UPDATE OF state ON workers FOR EACH ROW "
                   f"WHEN (OLD.state IN {SLOT_HOLDING} AND NEW.state NOT IN {SLOT_HOLDING}) "
                   f"EXECUTE FUNCTION hodei_notify_placement()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS workers_slot_freed_notify ON workers")
        op.execute("DROP TRIGGER IF EXISTS placement_queue_notify ON placement_queue")
        op.execute("DROP FUNCTION IF EXISTS hodei_notify_placement()")
    op.drop_index("ix_placement_queue_order", table_name="placement_queue")
    op.drop_table("placement_queue")
