"""provider_state: each provider's last health check, worker counts and discovered capacity.

Kept apart from provider_configs so the seed's table and SQL stay exactly as written, and so
run-time writes (every health check) never touch the rows operators edit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    now = sa.text("now()") if postgres else sa.text("CURRENT_TIMESTAMP")
    op.create_table(
        "provider_state",
        sa.Column("provider_id", sa.Uuid(), sa.ForeignKey("provider_configs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("health", sa.Text(), nullable=True),
        sa.Column("health_reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_duration_seconds", sa.Float(), nullable=True),
        sa.Column("active_workers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reserved_workers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("capacity_cpu", sa.Float(), nullable=True),
        sa.Column("capacity_memory", sa.BigInteger(), nullable=True),
        sa.Column("capacity_gpu", sa.Integer(), nullable=True),
        sa.Column("capacity_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.CheckConstraint("health IS NULL OR health IN ('Healthy', 'Degraded', 'Unhealthy')",
                           name="ck_provider_state_health"),
        sa.CheckConstraint("active_workers >= 0 AND reserved_workers >= 0", name="ck_provider_state_workers"),
    )


def downgrade() -> None:
    op.drop_table("provider_state")
