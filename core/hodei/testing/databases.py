"""Scratch databases for tests and benchmarks: a fresh SQLite file, or a fresh PostgreSQL schema."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def postgres_schema(base_url: str, prefix: str = "scratch", connect_timeout: int = 10) -> Iterator[str]:
    """A new schema in the PostgreSQL database at ``base_url``, as a URL whose ``search_path`` is that
    schema (so unqualified SQL, the seed's included, lands in it); dropped with everything in it after.

    :raises sqlalchemy.exc.OperationalError: when the server cannot be reached.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    # pool_pre_ping: a test may restart the server in between, and the drop must still reach it.
    admin = sa.create_engine(base_url, pool_pre_ping=True, connect_args={"connect_timeout": connect_timeout})
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False)
        finally:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@contextmanager
def scratch_database(postgres_url: str | None = None, prefix: str = "scratch") -> Iterator[str]:
    """A fresh, empty database URL: a schema in ``postgres_url`` when given, else a SQLite file in a
    temporary folder. Removed afterwards."""
    if postgres_url:
        with postgres_schema(postgres_url, prefix) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as folder:
            yield f"sqlite:///{Path(folder) / 'hodei.db'}"


def fill(url: str, documents: list[dict]) -> None:
    """Migrate the database at ``url`` and apply provider documents to it (every installed plugin and
    the core's ``static`` type loaded)."""
    from hodei import database
    from hodei.plugins import make_plugin_manager
    from hodei.store import Store

    engine = database.create_engine(url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    try:
        store.apply(documents)
    finally:
        store.close()
