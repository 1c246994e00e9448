"""Alembic environment: always run from ``hodei db upgrade``, with a connection handed in, or offline
(``hodei db upgrade --sql``) with the name of the database's dialect, writing the SQL instead of running it."""

from alembic import context

from hodei.models import SQLModel

if context.is_offline_mode():
    dialect = context.config.attributes["dialect"]
    context.configure(
        dialect_name=dialect,
        target_metadata=SQLModel.metadata,
        render_as_batch=dialect == "sqlite",
        literal_binds=True,
    )
else:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
with context.begin_transaction():
    context.run_migrations()
