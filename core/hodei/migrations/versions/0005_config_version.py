"""SQLite: a change counter on provider_configs, so the daemon's poll costs one tiny read.

PostgreSQL tells the daemon about changes with NOTIFY (0003). SQLite cannot, and its
``PRAGMA data_version`` also moves on the daemon's own writes (every health result), which made
each poll re-read the whole table. These triggers count changes to provider_configs only, however
they are made (CLI, API or plain SQL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "provider_configs_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_provider_configs_version_one_row"),
    )
    op.execute("INSERT INTO provider_configs_version (id, version) VALUES (1, 0)")
    for event in ("INSERT", "UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER provider_configs_count_{event.lower()} AFTER {event} ON provider_configs "
                   "BEGIN UPDATE provider_configs_version SET version = version + 1 WHERE id = 1; END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS provider_configs_count_{event}")
    op.drop_table("provider_configs_version")
