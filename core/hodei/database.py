"""Engines and migrations: one URL in, a ready engine out, or an error an operator can act on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from hodei.errors import DatabaseNotReady

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: every `hodei` command would otherwise pay for it at start.


def safe_url(url: str | sa.URL) -> str:
    """The URL with its password shown as ``***``, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets the daemon read while the CLI writes; the busy timeout waits out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> Engine:
    """An engine for ``url``. :raises DatabaseNotReady: naming what is wrong with the URL."""
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(parsed)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except OSError as exc:
        raise DatabaseNotReady(f"cannot create the folder of SQLite database {safe_url(url)}: "
                               f"{exc.strerror or exc}") from None
    except sa.exc.NoSuchModuleError:
        raise DatabaseNotReady(f"database URL {safe_url(url)}: no SQLAlchemy dialect "
                               f"{parsed.drivername!r} (use sqlite or postgresql+psycopg)") from None
    except ImportError as exc:
        raise DatabaseNotReady(f"database URL {safe_url(url)}: its driver is not installed "
                               f"({exc.name or exc}); use sqlite or postgresql+psycopg") from None


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "hodei:migrations")
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with _connect(engine) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the schema; returns the revisions before and after."""
    from alembic import command

    before = current_revision(engine)
    config = _alembic_config()
    with _connect(engine) as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return before, current_revision(engine)


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is missing or older than this Hodei."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no Hodei schema" if current is None else f"is at schema {current}, this Hodei needs {head}"
        raise DatabaseNotReady(f"database {safe_url(engine.url)} {state}: run `hodei db upgrade`")


def _connect(engine: Engine) -> sa.Connection:
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise DatabaseNotReady(f"cannot connect to database {safe_url(engine.url)}: {reason}") from None
