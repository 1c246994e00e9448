"""Engines and migrations: one URL in, a ready engine out, or an error an operator can act on."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from hodei.columns import sqlite_text, tolerant_json_loads
from hodei.errors import Conflict, DatabaseNotReady, InvalidInput, Problem
from hodei.private_files import create_private
from hodei.redaction import scrub

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: every `hodei` command would otherwise pay for it at start.


class _AlembicSetUpLines(logging.Filter):
    """Drops the lines Alembic logs each time it looks at a database ("Context impl SQLiteImpl.", "Will
    assume non-transactional DDL."): the daemon would print them at every start. What a migration does
    ("Running upgrade 0004 -> 0005, ...") still goes through, and only an upgrade that applies one says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl", "Will assume"))


logging.getLogger("alembic.runtime.migration").addFilter(_AlembicSetUpLines())


def safe_url(url: str | sa.URL) -> str:
    """The URL with its password shown as ``***``, for messages and logs: in the user part and in any
    query parameter that carries one (``?password=``, libpq's ``sslpassword``, ...)."""
    text = url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url)
    return scrub(text)


# The execution option a write transaction carries (:func:`write_session`).
WRITE = "hodei_write"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the daemon read while the CLI writes; the busy timeout waits out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    dbapi_connection.text_factory = sqlite_text
    # SQLAlchemy's own BEGIN is left out (pysqlite's legacy mode would start the transaction only at the
    # first write, after the reads it depends on), so _sqlite_begin says how each transaction starts.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: sa.Connection) -> None:
    # A read-modify-write takes the write lock before it reads (BEGIN IMMEDIATE): on SQLite,
    # SELECT ... FOR UPDATE is a no-op, and this is what keeps a concurrent writer from slipping in
    # between the read and the write. Readers begin DEFERRED and never wait for writers (WAL).
    immediate = connection.get_execution_options().get(WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _tolerant_timestamps(dbapi_connection: Any, _record: Any) -> None:
    # A timestamp column set to 'infinity' in SQL is one psycopg cannot turn into a datetime: it would
    # fail the whole query. Read as its text instead, the row reader reports it as the row's problem.
    from psycopg.types.datetime import TimestampLoader, TimestamptzLoader

    for name, base in (("timestamptz", TimestamptzLoader), ("timestamp", TimestampLoader)):
        dbapi_connection.adapters.register_loader(name, type(f"Tolerant{base.__name__}", (base,), {
            "load": lambda self, data, _base=base: _load_or_text(_base, self, data)}))


def _tolerant_json(dbapi_connection: Any, _record: Any) -> None:
    from psycopg.types.json import set_json_loads

    set_json_loads(tolerant_json_loads, dbapi_connection)


def _load_or_text(base: Any, loader: Any, data: Any) -> Any:
    try:
        return base.load(loader, data)
    except Exception:  # psycopg.DataError: out of Python's range
        return bytes(data).decode("utf-8", "replace")


def write_session(engine: Engine) -> Session:
    """A session for a read-modify-write: on SQLite its transaction holds the write lock from the start;
    on PostgreSQL it is an ordinary transaction, and the caller locks the rows it reads (FOR UPDATE).

    What was written is answered from the objects as written, never read again after the commit: a
    concurrent delete right after the commit would make that read fail a change that was made."""
    session = Session(engine, expire_on_commit=False)
    try:
        session.connection(execution_options={WRITE: True})
    except sa.exc.OperationalError as exc:
        session.close()
        if "locked" in str(exc.orig).lower():  # SQLite: another writer held the lock past the busy timeout
            raise Conflict("the database is busy with another change; nothing was written, try again") from None
        raise
    return session


def sqlite_file(url: str | sa.URL) -> Path | None:
    """The file of a SQLite database URL; ``None`` for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.database.startswith("file:") or parsed.query.get("uri"):
        return None  # a URI filename the caller spelt out: its own options say what to create
    return Path(parsed.database)


def exists(url: str | sa.URL) -> bool:
    """Whether the database is there to connect to: false only for a SQLite file that does not exist
    (a server database's existence is learnt by connecting)."""
    path = sqlite_file(url)
    return path is None or path.exists()


def _create_private(path: Path) -> None:
    """Create ``path`` empty, readable by its owner only (0600, whatever the umask): it holds provider configs
    with their secrets. SQLite gives the -wal and -shm files the database file's mode, so they are private too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    create_private(path)


def _open_existing_only(path: Path) -> Any:
    # Only create_engine creates the file (private, above). A connection opened later must not create
    # an empty database where the file was deleted: it fails instead, and the daemon reports the
    # database unavailable (hodei.daemon.database) rather than writing to a world no one else sees.
    uri = f"file:{quote(str(path.resolve()))}?mode=rw"

    def do_connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if not path.exists():
            raise DatabaseNotReady(f"SQLite database {path} does not exist (any more): restore it, or run "
                                   "`hodei db upgrade` to create an empty one")
        cargs[:] = [uri]
        cparams["uri"] = True
    return do_connect


def create_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``; with ``create``, a SQLite file (and its folder) is made on first use,
    readable by its owner only.

    Only ``hodei db upgrade`` and ``hodei serve`` create a database: every other command opens it with
    ``create=False``, so a command run with the wrong settings leaves no empty database behind.

    :raises DatabaseNotReady: naming what is wrong with the URL, or that the SQLite file does not exist.
    """
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            path = sqlite_file(parsed)
            if path is not None and create:
                _create_private(path)
            elif path is not None and not path.exists():
                raise DatabaseNotReady(f"database {safe_url(url)} does not exist: `hodei db upgrade` creates it")
            engine = sa.create_engine(parsed)
            if path is not None:
                sa.event.listen(engine, "do_connect", _open_existing_only(path))
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            sa.event.listen(engine, "begin", _sqlite_begin)
            return engine
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        if parsed.get_driver_name() == "psycopg":
            sa.event.listen(engine, "connect", _tolerant_timestamps)
            sa.event.listen(engine, "connect", _tolerant_json)
        return engine
    except OSError as exc:
        raise DatabaseNotReady(f"cannot create SQLite database {safe_url(url)}: "
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


def revisions() -> list[str]:
    """Every revision of the schema, oldest first."""
    from alembic.script import ScriptDirectory

    return [script.revision for script in reversed(list(ScriptDirectory.from_config(_alembic_config()).walk_revisions()))]


def upgrade_sql(url: str, start: str | None = None) -> str:
    """The SQL that migrates a database of ``url``'s kind from revision ``start`` (``None``: an empty
    database) to this Hodei's, written by Alembic's offline mode without connecting to anything.

    :raises InvalidInput: naming ``start`` when it is not one of :func:`revisions`.
    """
    import io

    from alembic import command

    known = revisions()
    if start is not None and start not in known:
        raise InvalidInput(Problem("--from", f"no schema revision {start!r}; the revisions are {', '.join(known)}"))
    config = _alembic_config()
    config.output_buffer = io.StringIO()
    config.attributes["dialect"] = make_url(url).get_backend_name()
    command.upgrade(config, f"{start}:head" if start else "head", sql=True)
    return str(config.output_buffer.getvalue())


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is missing or older than this Hodei."""
    current, head = current_revision(engine), head_revision()
    if current is not None and current not in revisions():
        # Migrated by a newer Hodei (a rolling upgrade): `db upgrade` of this one cannot help.
        raise DatabaseNotReady(f"database {safe_url(engine.url)} is at schema {current}, newer than this Hodei knows "
                               f"(it needs {head}): run the Hodei that migrated it, or restore the backup taken "
                               "before the upgrade")
    if current != head:
        state = "has no Hodei schema" if current is None else f"is at schema {current}, this Hodei needs {head}"
        raise DatabaseNotReady(f"database {safe_url(engine.url)} {state}: run `hodei db upgrade`")


def _connect(engine: Engine) -> sa.Connection:
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise DatabaseNotReady(f"cannot connect to database {safe_url(engine.url)}: {reason}") from None
