"""Cooldown: failed provisions in a row, the cooldown they earned and the last error, per provider.

* provider_state gets ``provision_failures``, ``cooldown_until`` and ``last_provision_error``
  (written under the provider row's lock, like health results, so replicas count one streak).
* provider_history takes entries of kind ``cooldown`` (a cooldown starting and ending), besides 0008's.
* On PostgreSQL, the provider_state update trigger also NOTIFYs when ``cooldown_until`` changes, so
  every daemon's selection skips (or readmits) a provider another daemon cooled down (or reset).

A downgrade deletes the ``cooldown`` entries (0008 cannot hold them) and keeps the others.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NAME = "ck_provider_history_kind"


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in columns)


# 0006's columns, and the cooldown's end (each further failure moves it; a success or a reset clears it).
BEFORE = ("health", "health_reason", "active_workers", "capacity_cpu", "capacity_memory", "capacity_gpu")
AFTER = (*BEFORE, "cooldown_until")
BEFORE_KINDS = ("status", "health", "created", "changed", "deleted")  # 0008's
AFTER_KINDS = (*BEFORE_KINDS, "cooldown")


def _trigger(columns: tuple[str, ...]) -> None:
    op.execute("DROP TRIGGER IF EXISTS provider_state_notify_update ON provider_state")
    op.execute(f"CREATE TRIGGER provider_state_notify_update AFTER UPDATE ON provider_state FOR EACH ROW "
               f"WHEN ({_changed(columns)}) EXECUTE FUNCTION hodei_notify_state_change()")


def _allowed(kinds: tuple[str, ...]) -> str:
    return "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds))


def _history_as_of_0008(kinds: tuple[str, ...]) -> sa.Table:
    """provider_history as 0008 left it, with the constraint allowing ``kinds``: SQLite's copy of it is
    made from this, so the offline SQL (``db upgrade --sql``) needs no database to read it from."""
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
        sa.Column("actor", sa.Text(), nullable=True),
        sa.CheckConstraint(_allowed(kinds), name=NAME),
    )
    sa.Index("ix_provider_history_provider", table.c.provider_id, table.c.at)
    return table


def _kinds(before: tuple[str, ...], after: tuple[str, ...]) -> None:
    # SQLite changes a constraint by copying the table (batch mode); PostgreSQL in place.
    with op.batch_alter_table("provider_history", copy_from=_history_as_of_0008(before)) as batch:
        batch.drop_constraint(NAME, type_="check")
        batch.create_check_constraint(NAME, _allowed(after))


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
