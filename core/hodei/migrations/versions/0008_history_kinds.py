"""provider_history.kind: also "created", "changed" and "deleted" (a provider's creation, a change of
its other fields, named in new_value, and its deletion), recorded with the change that makes them.

A downgrade deletes the entries of these kinds (0007 cannot hold them) and keeps the others.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NAME = "ck_provider_history_kind"
OLD = ("status", "health")


def _table(kinds: tuple[str, ...]) -> sa.Table:
    """The table as 0007 left it, with the constraint allowing ``kinds``: SQLite's copy of it is made
    from this, so the offline SQL (``db upgrade --sql``) needs no database to read it from."""
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


def _allowed(kinds: tuple[str, ...]) -> str:
    return "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds))


def _kinds(before: tuple[str, ...], *kinds: str) -> None:
    # SQLite changes a constraint by copying the table (batch mode); PostgreSQL in place.
    with op.batch_alter_table("provider_history", copy_from=_table(before)) as batch:
        batch.drop_constraint(NAME, type_="check")
        batch.create_check_constraint(NAME, _allowed(kinds))


def upgrade() -> None:
    _kinds(OLD, *OLD, "created", "changed", "deleted")


def downgrade() -> None:
    op.execute("DELETE FROM provider_history WHERE kind NOT IN ('status', 'health')")
    _kinds((*OLD, "created", "changed", "deleted"), *OLD)
