"""What the daemon needs: health counters, provider history, and change notifications.

* provider_state gains the consecutive failure and success counts the status rules read, so a
  restarted daemon continues where it stopped.
* provider_history records every status change and every change of health, with its cause.
* On PostgreSQL, a trigger on provider_configs sends NOTIFY hodei_provider_configs for every row
  written (also by hand in SQL), so a running daemon sees changes without polling.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION hodei_notify_provider_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hodei_provider_configs', json_build_object(
        'op', TG_OP,
        'schema', TG_TABLE_SCHEMA,
        'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id WHEN TG_OP = 'TRUNCATE' THEN NULL ELSE NEW.id END
    )::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("provider_state", sa.Column("consecutive_failures", sa.Integer(), nullable=False,
                                              server_default="0"))
    op.add_column("provider_state", sa.Column("consecutive_successes", sa.Integer(), nullable=False,
                                              server_default="0"))
    op.create_table(
        "provider_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        # No foreign key: the history of a deleted provider is kept.
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("provider_name", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False, server_default=""),
        sa.CheckConstraint("kind IN ('status', 'health')", name="ck_provider_history_kind"),
    )
    op.create_index("ix_provider_history_provider", "provider_history", ["provider_id", "at"])
    if postgres:
        op.execute(NOTIFY_FUNCTION)
        op.execute("CREATE TRIGGER provider_configs_notify AFTER INSERT OR UPDATE OR DELETE ON provider_configs "
                   "FOR EACH ROW EXECUTE FUNCTION hodei_notify_provider_change()")
        op.execute("CREATE TRIGGER provider_configs_notify_truncate AFTER TRUNCATE ON provider_configs "
                   "FOR EACH STATEMENT EXECUTE FUNCTION hodei_notify_provider_change()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS provider_configs_notify_truncate ON provider_configs")
        op.execute("DROP TRIGGER IF EXISTS provider_configs_notify ON provider_configs")
        op.execute("DROP FUNCTION IF EXISTS hodei_notify_provider_change()")
    op.drop_index("ix_provider_history_provider", table_name="provider_history")
    op.drop_table("provider_history")
    op.drop_column("provider_state", "consecutive_successes")
    op.drop_column("provider_state", "consecutive_failures")
