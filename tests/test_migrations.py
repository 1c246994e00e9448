"""Upgrades keep what a database holds: from every earlier schema revision (enumerated from Alembic's
script directory, so a new migration is covered the day it is added), a database populated with real rows
is migrated to this Hodei's head on SQLite and PostgreSQL, and every value is still there and readable.
And the SQL of ``hodei db upgrade --sql`` runs as printed on PostgreSQL, through psql."""

from __future__ import annotations

import ast
import datetime as dt
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hodei import database
from hodei.models import SQLModel
from hodei.store import Store
from hodei.testing.serve import clean_environment, hodei_command

REVISIONS = database.revisions()
EARLIER = REVISIONS[:-1]
PROVIDER = uuid.UUID("5b0f6c43-2f7e-4f55-9d0e-7f3e8e1f0a11")
AT = dt.datetime(2026, 11, 30, 9, 12, 3, 250000, tzinfo=dt.UTC)

# What each table holds before the upgrade: real values of every column a revision may have. A column a
# revision has that is not listed here must be nullable or have a default; a table not listed here fails the
# test (add its rows), so no migration's data goes unchecked.
ROWS: dict[str, dict[str, Any]] = {
    "provider_configs": {
        "id": PROVIDER, "name": "Lambda us-east-1", "provider_type": "static",
        "config": {"type": "static", "latency_ms": 5, "capabilities": {"cpu": 2}},
        "status": "DISABLED", "priority": 70, "max_workers": 3, "preferred_region": "us-east-1",
        "allowed_regions": ["us-east-1", "us-west-2"], "required_labels": {"environment": "production"},
        "annotations": {"owner": "ünïcode ✓"}, "created_at": AT, "updated_at": AT,
    },
    "provider_state": {
        "provider_id": PROVIDER, "health": "Unhealthy", "health_reason": "no usable AWS credentials",
        "checked_at": AT, "check_duration_seconds": 0.5, "active_workers": 1, "reserved_workers": 0,
        "capacity_cpu": 2.0, "capacity_memory": 2**31, "capacity_gpu": 0, "capacity_reported_at": AT,
        "updated_at": AT, "consecutive_failures": 2, "consecutive_successes": 0,
    },
    "provider_history": {
        "id": 1, "provider_id": PROVIDER, "provider_name": "Lambda us-east-1", "at": AT, "kind": "status",
        "old_value": "ACTIVE", "new_value": "DISABLED", "cause": "hodei providers disable: maintenance window",
    },
    "workers": {
        "id": "8d1f7c2e-0000-4000-8000-000000000001", "provider_id": PROVIDER, "provider_name": "Lambda us-east-1",
        "state": "RUNNING", "reason": "provisioned", "backend_id": "req-42", "handle": {"backend_id": "req-42",
                                                                                     "details": {"arn": "x"}},
        "requirements": {"cpu": 1, "memory": 2**30}, "attempts": [{"provider": "Lambda us-east-1",
                                                                  "outcome": "provisioned"}],
        "token_sha256": "0" * 64, "created_at": AT, "updated_at": AT, "ended_at": None,
    },
    "daemons": {
        "id": "d-1", "host": "hodei-a", "pid": 811, "address": "10.0.0.11:50051", "version": "0.1.0",
        "started_at": AT, "heartbeat_at": AT, "lease_seconds": 30.0, "providers_owned": 1,
    },
    "placement_queue": {
        "id": "request-1", "priority": 5, "enqueued_at": AT, "deadline": AT, "requirements": {"cpu": 1.0},
        "daemon": "daemon hodei-a:811", "seen_at": AT, "reasons": "1 at capacity (edge-1: 2/2)",
    },
}
# Tables Hodei fills itself (a counter, Alembic's own): no rows of the operator's to keep.
OWN = {"alembic_version", "provider_configs_version"}


def comparable(value: Any) -> Any:
    if isinstance(value, dt.datetime):  # SQLite hands timestamps back without their zone: they are UTC
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and len(value) == 32 and value.isalnum():
        return uuid.UUID(value)
    return value


def populate(engine: sa.Engine, revision: str) -> dict[str, dict[str, Any]]:
    """The rows of :data:`ROWS` a database at ``revision`` can hold (its tables, its columns), inserted."""
    inspector = sa.inspect(engine)
    tables = set(inspector.get_table_names()) - OWN
    assert tables <= set(ROWS), f"revision {revision} has tables this test does not fill: {tables - set(ROWS)}"
    written: dict[str, dict[str, Any]] = {}
    with engine.begin() as connection:
        for name in ROWS:  # in order: the state and history refer to the provider
            if name not in tables:
                continue
            columns = {column["name"]: column for column in inspector.get_columns(name)}
            unfilled = [c for c, column in columns.items()
                        if c not in ROWS[name] and not column["nullable"] and column.get("default") is None]
            assert not unfilled, f"revision {revision}: give {name}.{', '.join(unfilled)} a value in ROWS"
            row = {c: v for c, v in ROWS[name].items() if c in columns}
            connection.execute(SQLModel.metadata.tables[name].insert().values(**row))
            written[name] = row
    return written


@pytest.mark.parametrize("start", EARLIER)
def test_a_populated_database_migrates_from_every_earlier_revision(start: str, hodei_database_url: str,
                                                                   hodei_pm: Any) -> None:
    engine = database.create_engine(hodei_database_url)
    try:
        assert database.upgrade(engine, start) == (None, start)
        written = populate(engine, start)
        assert "provider_configs" in written
        assert database.upgrade(engine, "head") == (start, REVISIONS[-1])
        with engine.connect() as connection:
            for name, row in written.items():
                table = SQLModel.metadata.tables[name]
                found = connection.execute(sa.select(*(table.c[c] for c in row))).mappings().all()
                assert [{c: comparable(v) for c, v in r.items()} for r in found] == [row], name
    finally:
        engine.dispose()
    # And Hodei reads them as it reads its own.
    store = Store(database.create_engine(hodei_database_url, create=False), hodei_pm)
    try:
        stored = store.get("Lambda us-east-1")
        assert stored.valid, stored.problems
        assert (stored.id, stored.status, stored.priority, stored.max_workers) == (PROVIDER, "DISABLED", 70, 3)
        assert (stored.config["latency_ms"], stored.annotations) == (5, {"owner": "ünïcode ✓"})
    finally:
        store.close()


def test_every_revision_is_enumerated_in_order() -> None:
    assert REVISIONS[0] == "0001" and REVISIONS[-1] == database.head_revision()
    assert len(set(REVISIONS)) == len(REVISIONS) >= 6


# -- hodei db upgrade --sql ----------------------------------------------------------------------------------------


def psql_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def offline_sql(url: str, *extra: str) -> str:
    result = subprocess.run([*hodei_command(), "--database-url", url, "db", "upgrade", "--sql", *extra],
                            capture_output=True, text=True, env=clean_environment(), timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("start", [None, *EARLIER])
def test_the_offline_sql_runs_verbatim_on_postgresql(start: str | None, hodei_postgres_url: str, hodei_pm: Any,
                                                     tmp_path: Any) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed (Debian package postgresql-client)")
    engine = database.create_engine(hodei_postgres_url)
    try:
        if start is not None:
            database.upgrade(engine, start)
            populate(engine, start)
        script = tmp_path / "upgrade.sql"
        script.write_text(offline_sql(hodei_postgres_url, *(("--from", start) if start else ())), encoding="utf-8")
        ran = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", psql_url(hodei_postgres_url), "-f",
                              str(script)], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert database.current_revision(engine) == REVISIONS[-1]
        database.check_schema(engine)
        # The schema psql made is the one `hodei db upgrade` makes: nothing left to migrate, Hodei works on it.
        assert database.upgrade(engine) == (REVISIONS[-1], REVISIONS[-1])
    finally:
        engine.dispose()
    store = Store(database.create_engine(hodei_postgres_url, create=False), hodei_pm)
    try:
        if start is not None:
            assert store.get("Lambda us-east-1").valid
    finally:
        store.close()


def test_the_offline_sql_touches_no_database(tmp_path: Any) -> None:
    missing = tmp_path / "nothing-here.db"
    text = offline_sql(f"sqlite:///{missing}")
    assert "CREATE TABLE provider_configs" in text and f"'{REVISIONS[-1]}'" in text
    assert not missing.exists()
    unreachable = offline_sql("postgresql+psycopg://hodei:secret@127.0.0.1:1/nowhere")
    assert "JSONB" in unreachable and "secret" not in unreachable


def test_an_unknown_from_revision_is_refused_naming_it() -> None:
    result = subprocess.run([*hodei_command(), "--database-url", "sqlite:///unused.db", "db", "upgrade", "--sql",
                             "--from", "9999"], capture_output=True, text=True, env=clean_environment(), timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"hodei: error: --from: no schema revision '9999'; the revisions are "
                                     f"{', '.join(REVISIONS)}")
    assert result.stdout == ""


# -- what a rolling upgrade relies on ------------------------------------------------------------------------------

MIGRATIONS = sorted((Path(database.__file__).parent / "migrations" / "versions").glob("[0-9]*.py"))


def upgrade_function(path: Path) -> tuple[str, ast.FunctionDef]:
    text = path.read_text(encoding="utf-8")
    function = next(node for node in ast.parse(text).body
                    if isinstance(node, ast.FunctionDef) and node.name == "upgrade")
    return ast.get_source_segment(text, function) or "", function


def test_every_migration_only_adds_so_replicas_of_the_version_before_keep_working() -> None:
    """docs/operations.md: replicas of the version before keep running on the migrated schema, because a
    migration only adds (tables, indexes, columns with a default or NULL, triggers). One that drops,
    renames or retypes must say so there and change this test."""
    assert len(MIGRATIONS) == len(REVISIONS)
    taking = re.compile(r"\.(drop_\w+|alter_column|rename_table)\(|\b(DROP|ALTER)\s+(TABLE|COLUMN)\b|\bRENAME\b",
                        re.IGNORECASE)
    for path in MIGRATIONS:
        source, function = upgrade_function(path)
        found = taking.search(source)
        assert found is None, f"{path.name} takes something away: {found and found.group(0)}"
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "add_column"):
                continue
            column = next(arg for arg in call.args if isinstance(arg, ast.Call))
            keywords = {k.arg: k.value for k in column.keywords}
            required = isinstance(keywords.get("nullable"), ast.Constant) and keywords["nullable"].value is False
            assert not required or "server_default" in keywords, (
                f"{path.name}: a NOT NULL column without a default breaks the previous version's inserts")


def test_a_schema_newer_than_this_hodei_is_named_as_such(hodei_database_url: str) -> None:
    engine = database.create_engine(hodei_database_url)
    try:
        database.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(database.DatabaseNotReady) as refused:
            database.check_schema(engine)
    finally:
        engine.dispose()
    assert "is at schema 9999, newer than this Hodei knows" in str(refused.value)
    assert "restore the backup taken before the upgrade" in str(refused.value)


def test_the_offline_sql_makes_a_usable_sqlite_database(tmp_path: Path, hodei_pm: Any) -> None:
    import sqlite3

    path = tmp_path / "from-sql.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(offline_sql(f"sqlite:///{path}"))
    engine = database.create_engine(f"sqlite:///{path}", create=False)
    try:
        database.check_schema(engine)
        assert database.upgrade(engine) == (REVISIONS[-1], REVISIONS[-1])
        populate(engine, REVISIONS[-1])
    finally:
        engine.dispose()
    store = Store(database.create_engine(f"sqlite:///{path}", create=False), hodei_pm)
    try:
        assert store.get("Lambda us-east-1").valid
    finally:
        store.close()
