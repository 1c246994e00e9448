"""provider_history.actor: who or what made each change (hodei.actors).

Rows recorded before it have none (NULL), shown as "unknown". On PostgreSQL the notification of a
written provider_configs row also says who wrote it (the session's user, application_name and client
address), so a daemon can say who made a change in SQL when it records it.

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

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION hodei_notify_provider_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hodei_provider_configs', json_build_object(
        'op', TG_OP,
        'schema', TG_TABLE_SCHEMA,
        'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id WHEN TG_OP = 'TRUNCATE' THEN NULL ELSE NEW.id END{extra}
    )::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
WRITER = """,
        'user', session_user,
        'application', current_setting('application_name', true),
        'client', host(inet_client_addr())"""


def upgrade() -> None:
    op.add_column("provider_history", sa.Column("actor", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION.format(extra=WRITER))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION.format(extra=""))  # 0003's
    with op.batch_alter_table("provider_history") as batch:
        batch.drop_column("actor")
