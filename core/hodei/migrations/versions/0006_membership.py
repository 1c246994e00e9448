"""Replicas: the daemons sharing one database, and notifications of health results.

* daemons: one row per running ``hodei serve`` (its address, version, and a heartbeat). A daemon is
  live while ``heartbeat_at + lease_seconds`` (the database's clock) is ahead; the live daemons divide
  the providers among themselves.
* On PostgreSQL, NOTIFY hodei_daemons when a daemon joins, leaves, or comes back after its lease had
  lapsed (not on every heartbeat), so the others re-divide the providers at once.
* On PostgreSQL, NOTIFY hodei_provider_state when a provider's health or capacity change,
  so every daemon's in-memory view follows the checks another daemon ran.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DAEMONS_FUNCTION = """
CREATE OR REPLACE FUNCTION hodei_notify_daemon_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hodei_daemons', json_build_object(
        'op', TG_OP, 'schema', TG_TABLE_SCHEMA,
        'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END
    )::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

STATE_FUNCTION = """
CREATE OR REPLACE FUNCTION hodei_notify_state_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hodei_provider_state', json_build_object(
        'op', TG_OP, 'schema', TG_TABLE_SCHEMA, 'id', NEW.provider_id
    )::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""

# What another daemon's selection needs. The time of the check and the counters move with every check
# of a steady fleet: not worth a message each (the others read them at their next full re-read).
STATE_CHANGED = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in (
    "health", "health_reason", "active_workers", "capacity_cpu", "capacity_memory", "capacity_gpu"))


def upgrade() -> None:
    op.create_table(
        "daemons",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False, server_default=""),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_seconds", sa.Float(), nullable=False),
        sa.Column("providers_owned", sa.Integer(), nullable=False, server_default="0"),
        sa.CheckConstraint("lease_seconds > 0", name="ck_daemons_lease_positive"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DAEMONS_FUNCTION)
        op.execute("CREATE TRIGGER daemons_notify AFTER INSERT OR DELETE ON daemons "
                   "FOR EACH ROW EXECUTE FUNCTION hodei_notify_daemon_change()")
        # A heartbeat after the lease had lapsed: the daemon is back (a partition healed).
        op.execute("CREATE TRIGGER daemons_notify_back AFTER UPDATE ON daemons FOR EACH ROW "
                   "WHEN (OLD.heartbeat_at + make_interval(secs => OLD.lease_seconds) < NEW.heartbeat_at) "
                   "EXECUTE FUNCTION hodei_notify_daemon_change()")
        op.execute(STATE_FUNCTION)
        op.execute("CREATE TRIGGER provider_state_notify AFTER INSERT ON provider_state "
                   "FOR EACH ROW EXECUTE FUNCTION hodei_notify_state_change()")
        op.execute(f"CREATE TRIGGER provider_state_notify_update AFTER UPDATE ON provider_state FOR EACH ROW "
                   f"WHEN ({STATE_CHANGED}) EXECUTE FUNCTION hodei_notify_state_change()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS provider_state_notify_update ON provider_state")
        op.execute("DROP TRIGGER IF EXISTS provider_state_notify ON provider_state")
        op.execute("DROP FUNCTION IF EXISTS hodei_notify_state_change()")
        op.execute("DROP TRIGGER IF EXISTS daemons_notify_back ON daemons")
        op.execute("DROP TRIGGER IF EXISTS daemons_notify ON daemons")
        op.execute("DROP FUNCTION IF EXISTS hodei_notify_daemon_change()")
    op.drop_table("daemons")
