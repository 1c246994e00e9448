"""workers: every worker Hodei starts, from its reservation to its end.

A row in PROVISIONING, RUNNING or RELEASING holds one of its provider's max_workers slots; the
reservation is taken under a lock on the provider's row, so daemons sharing one database can never
put more than max_workers on a provider.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    document = postgresql.JSONB() if postgres else sa.JSON()
    op.create_table(
        "workers",
        sa.Column("id", sa.Text(), primary_key=True),
        # No foreign key: a worker's record outlives its provider's row.
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("provider_name", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("backend_id", sa.Text(), nullable=True),
        sa.Column("handle", document, nullable=True),
        sa.Column("requirements", document, nullable=False),
        sa.Column("attempts", document, nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('PROVISIONING', 'RUNNING', 'RELEASING', 'TERMINATED', 'FAILED')",
                           name="ck_workers_state"),
    )
    op.create_index("ix_workers_provider_state", "workers", ["provider_id", "state"])
    op.create_index("ix_workers_state", "workers", ["state"])


def downgrade() -> None:
    op.drop_index("ix_workers_state", table_name="workers")
    op.drop_index("ix_workers_provider_state", table_name="workers")
    op.drop_table("workers")
