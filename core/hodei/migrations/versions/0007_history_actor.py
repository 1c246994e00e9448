"""provider_history.actor: who or what made each change (hodei.actors).

Rows recorded before it have none (NULL), shown as "unknown".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("provider_history", sa.Column("actor", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provider_history") as batch:
        batch.drop_column("actor")
