"""Cooldown: failed provisions in a row, the cooldown they earned and the last error, per provider.

* provider_state gets ``provision_failures``, ``cooldown_until`` and ``last_provision_error``
  (written under the provider row's lock, like health results, so replicas count one streak).
* provider_history takes entries of kind ``cooldown`` (a cooldown starting and ending).
* On PostgreSQL, the provider_state update trigger also NOTIFYs when ``cooldown_until`` changes, so
  every daemon's selection skips (or readmits) a provider another daemon cooled down (or reset).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in columns)


# 0006's columns, and the cooldown's end (each further failure moves it; a success or a reset clears it).
BEFORE = ("health", "health_reason", "active_workers", "capacity_cpu", "capacity_memory", "capacity_gpu")
AFTER = (*BEFORE, "cooldown_until")


def _trigger(columns: tuple[str, ...]) -> None:
    op.execute("DROP TRIGGER IF EXISTS provider_state_notify_update ON provider_state")
    op.execute(f"CREATE TRIGGER provider_state_notify_update AFTER UPDATE ON provider_state FOR EACH ROW "
               f"WHEN ({_changed(columns)}) EXECUTE FUNCTION hodei_notify_state_change()")


def _kinds(kinds: str) -> None:
    with op.batch_alter_table("provider_history") as batch:
        batch.drop_constraint("ck_provider_history_kind", type_="check")
        batch.create_check_constraint("ck_provider_history_kind", f"kind IN ({kinds})")


def upgrade() -> None:
    with op.batch_alter_table("provider_state") as batch:
        batch.add_column(sa.Column("provision_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cooldown_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_provision_error", sa.Text(), nullable=False, server_default=""))
    _kinds("'status', 'health', 'cooldown'")
    if op.get_bind().dialect.name == "postgresql":
        _trigger(AFTER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _trigger(BEFORE)
    op.execute("DELETE FROM provider_history WHERE kind = 'cooldown'")
    _kinds("'status', 'health'")
    with op.batch_alter_table("provider_state") as batch:
        batch.drop_column("last_provision_error")
        batch.drop_column("cooldown_until")
        batch.drop_column("provision_failures")
