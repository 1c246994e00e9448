"""provider_history.kind: also "created", "changed" and "deleted" (a provider's creation, a change of
its other fields, named in new_value, and its deletion), recorded with the change that makes them.

A downgrade deletes the entries of these kinds (0007 cannot hold them) and keeps the others.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NAME = "ck_provider_history_kind"


def _kinds(*kinds: str) -> None:
    # SQLite changes a constraint by copying the table (batch mode); PostgreSQL in place.
    with op.batch_alter_table("provider_history") as batch:
        batch.drop_constraint(NAME, type_="check")
        batch.create_check_constraint(NAME, "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds)))


def upgrade() -> None:
    _kinds("status", "health", "created", "changed", "deleted")


def downgrade() -> None:
    op.execute("DELETE FROM provider_history WHERE kind NOT IN ('status', 'health')")
    _kinds("status", "health")
