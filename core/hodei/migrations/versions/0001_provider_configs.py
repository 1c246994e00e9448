"""provider_configs, with the seed's columns, so the seed's SQL runs verbatim on PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    document = postgresql.JSONB() if postgres else sa.JSON()
    # Rows inserted directly in SQL (as the seed does) get the same defaults as rows Hodei writes.
    new_id = sa.text("gen_random_uuid()") if postgres else sa.text("(lower(hex(randomblob(16))))")
    now = sa.text("now()") if postgres else sa.text("CURRENT_TIMESTAMP")
    empty_object = sa.text("'{}'::jsonb") if postgres else sa.text("'{}'")
    empty_list = sa.text("'[]'::jsonb") if postgres else sa.text("'[]'")
    op.create_table(
        "provider_configs",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=new_id),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("provider_type", sa.Text(), nullable=False),
        sa.Column("config", document, nullable=False, server_default=empty_object),
        sa.Column("status", sa.Text(), nullable=False, server_default="ACTIVE"),
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_workers", sa.Integer(), nullable=False, server_default="10"),
        sa.Column("preferred_region", sa.Text(), nullable=True),
        sa.Column("allowed_regions", document, nullable=False, server_default=empty_list),
        sa.Column("required_labels", document, nullable=False, server_default=empty_object),
        sa.Column("annotations", document, nullable=False, server_default=empty_object),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.UniqueConstraint("name", name="uq_provider_configs_name"),
        sa.CheckConstraint("status IN ('ACTIVE', 'DISABLED', 'MAINTENANCE', 'UNHEALTHY')",
                           name="ck_provider_configs_status"),
        sa.CheckConstraint("max_workers > 0", name="ck_provider_configs_max_workers"),
    )
    op.create_index("ix_provider_configs_provider_type", "provider_configs", ["provider_type"])


def downgrade() -> None:
    op.drop_index("ix_provider_configs_provider_type", table_name="provider_configs")
    op.drop_table("provider_configs")
