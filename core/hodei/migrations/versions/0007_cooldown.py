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
from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in columns)


# 0006's columns, and the cooldown's end (each further failure moves it; a success or a reset clears it).
BEFORE = ("health", "health_reason", "active_workers", "capacity_cpu", "capacity_memory", "capacity_gpu")
AFTER = (*BEFORE, "cooldown_until")
BEFORE_KINDS = "'status', 'health'"
AFTER_KINDS = "'status', 'health', 'cooldown'"


def _trigger(columns: tuple[str, ...]) -> None:
    op.execute("DROP TRIGGER IF EXISTS provider_state_notify_update ON provider_state")
    op.execute(f"CREATE TRIGGER provider_state_notify_update AFTER UPDATE ON provider_state FOR EACH ROW "
               f"WHEN ({_changed(columns)}) EXECUTE FUNCTION hodei_notify_state_change()")


def _history_as_of_0006(kinds: str) -> sa.Table:
    """provider_history as 0003 made it: SQLite's offline SQL cannot reflect the table it rebuilds."""
    table = sa.Table(
        "provider_history", sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("provider_name", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False, server_default=""),
        sa.CheckConstraint(f"kind IN ({kinds})", name="ck_provider_history_kind"),
    )
    sa.Index("ix_provider_history_provider", table.c.provider_id, table.c.at)
    return table


def _kinds(old: str, new: str) -> None:
    # SQLite cannot alter a CHECK constraint: the table is rebuilt (reflected when online, so columns a
    # later revision adds are kept).
    copy_from = _history_as_of_0006(old) if context.is_offline_mode() else None
    with op.batch_alter_table("provider_history", copy_from=copy_from) as batch:
        batch.drop_constraint("ck_provider_history_kind", type_="check")
        batch.create_check_constraint("ck_provider_history_kind", f"kind IN ({new})")


def upgrade() -> None:
    op.add_column("provider_state", sa.Column("provision_failures", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("provider_state", sa.Column("cooldown_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("provider_state", sa.Column("last_provision_error", sa.Text(), nullable=False, server_default=""))
    _kinds(BEFORE_KINDS, AFTER_KINDS)
    if op.get_bind().dialect.name == "postgresql":
        _trigger(AFTER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _trigger(BEFORE)
    op.execute("DELETE FROM provider_history WHERE kind = 'cooldown'")
    _kinds(AFTER_KINDS, BEFORE_KINDS)
    op.drop_column("provider_state", "last_provision_error")
    op.drop_column("provider_state", "cooldown_until")
    op.drop_column("provider_state", "provision_failures")
