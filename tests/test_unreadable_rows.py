"""Rows edited in SQL into something that cannot be read: JSON that does not parse or has the wrong
shape, an id that is not a UUID, a timestamp that is not one, bytes, wrong types. Such a row is listed
as invalid with the reason, never selected, and can be shown, disabled, fixed and deleted (by name,
and by its id as stored); every other row keeps working, in the CLI, the API and the daemon."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from hodei import database
from hodei.daemon import Daemon
from hodei.daemon.fleet import Fleet
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.settings import Settings
from hodei.store import Store
from hodei.testing.daemon import running, wait_for
from hodei.testing.serve import clean_environment, hodei_command, serve
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

# (column, SQL value, the field the problem names, a word its reason holds). SQLite keeps any value in
# any column; PostgreSQL's types allow fewer kinds of garbage, so it gets its own list.
SQLITE_GARBAGE = [
    ("config", "'{\"latency_ms\": 1'", "config", "not valid JSON"),
    ("config", "'\"just text\"'", "config", "JSON object"),
    ("config", "'null'", "config", "JSON object"),
    ("config", "x'00ff7b'", "config", "not"),
    ("config", "42", "config", "JSON"),
    ("allowed_regions", "'[\"us\"'", "allowed_regions", "not valid JSON"),
    ("allowed_regions", "'\"us-east-1\"'", "allowed_regions", "JSON list"),
    ("required_labels", "'[1, 2]'", "required_labels", "JSON object"),
    ("annotations", "'{'", "annotations", "not valid JSON"),
    ("priority", "'high'", "priority", "integer"),
    ("priority", "99999999999", "priority", "integer"),
    ("max_workers", "2.5", "max_workers", "integer"),
    ("name", "x'41ff42'", "name", "text"),
    ("provider_type", "7", "provider_type", "unknown provider type"),  # TEXT affinity: stored as '7'
    ("provider_type", "x'737461746963'", "provider_type", "text"),  # 'static', as bytes
    ("preferred_region", "x'ff'", "preferred_region", "text"),
    ("created_at", "'yesterday'", "created_at", "not a timestamp"),
    ("updated_at", "12345", "updated_at", "timestamp"),
]
POSTGRES_GARBAGE = [
    ("config", "'\"just text\"'::jsonb", "config", "JSON object"),
    ("config", "'[1, 2]'::jsonb", "config", "JSON object"),
    ("config", "'null'::jsonb", "config", "JSON object"),
    ("allowed_regions", "'{\"a\": 1}'::jsonb", "allowed_regions", "JSON list"),
    ("required_labels", "'\"x\"'::jsonb", "required_labels", "JSON object"),
    ("annotations", "'7'::jsonb", "annotations", "JSON object"),
    ("updated_at", "'infinity'", "updated_at", "timestamp"),
    ("created_at", "'-infinity'", "created_at", "timestamp"),
]


def garbage(hodei: Any) -> list[tuple[str, str, str, str]]:
    return POSTGRES_GARBAGE if hodei.is_postgres else SQLITE_GARBAGE


def add_pair(hodei: Any) -> None:
    hodei.ok("providers", "add", "good", "--type", "static", "--priority", "1")
    hodei.ok("providers", "add", "bad", "--type", "static", "--priority", "9", "--config", '{"latency_ms": 1}')


def test_each_kind_of_garbage_is_listed_with_its_reason_and_never_selected(hodei: Any) -> None:
    add_pair(hodei)
    for column, value, field, word in garbage(hodei):
        hodei.sql(f"UPDATE provider_configs SET {column} = {value} WHERE name <> 'good'")
        listed = hodei.providers()
        bad = next(p for p in listed if p["name"] != "good")
        assert bad["valid"] is False, (column, value)
        problem = next((p for p in bad["problems"] if p["field"] == field), None)
        assert problem is not None and word in problem["reason"], (column, value, bad["problems"])
        shown = hodei.json("providers", "show", bad["id"])
        assert shown["problems"] == bad["problems"]
        table = hodei.ok("providers", "list").stdout
        assert "good" in table and "Traceback" not in table
        decision = hodei.json("select")
        assert decision["selected"] == "good", (column, value, decision)
        assert hodei.ok("providers", "delete", bad["id"])
        assert [p["name"] for p in hodei.providers()] == ["good"]
        hodei.ok("providers", "add", "bad", "--type", "static", "--priority", "9")


def test_a_row_with_malformed_json_is_shown_disabled_fixed_and_deleted(hodei: Any) -> None:
    add_pair(hodei)
    broken = "'{\"latency_ms\": 1'" if not hodei.is_postgres else "'[\"latency_ms\", 1]'::jsonb"
    hodei.sql(f"UPDATE provider_configs SET config = {broken} WHERE name = 'bad'")
    shown = hodei("providers", "show", "bad")
    assert shown.exit_code == 0 and "config:" in shown.stdout and "Traceback" not in shown.stdout + shown.stderr
    assert hodei.ok("providers", "disable", "bad")
    assert hodei.provider("bad")["status"] == "DISABLED"
    # A merge into a config that cannot be read would drop what it held: refused, naming the field.
    refused = hodei("providers", "update", "bad", "--priority", "3")
    assert refused.exit_code == 1 and "config" in refused.stderr and "whole new config" in refused.stderr
    assert "Traceback" not in refused.stderr
    hodei.ok("providers", "update", "bad", "--config", '{"latency_ms": 2}')
    fixed = hodei.provider("bad")
    assert fixed["valid"] is True and fixed["config"] == {"latency_ms": 2} and fixed["status"] == "DISABLED"
    hodei.sql(f"UPDATE provider_configs SET config = {broken} WHERE name = 'bad'")
    hodei.ok("providers", "delete", "bad")
    assert [p["name"] for p in hodei.providers()] == ["good"]


def test_an_id_that_is_not_a_uuid_still_finds_its_row(sqlite_hodei: Any) -> None:
    hodei = sqlite_hodei
    add_pair(hodei)
    for raw in ("not-a-uuid", "5F3C7A1E-9B2D-4C8E-A1F0-123456789ABC", "x"):
        hodei.sql("UPDATE provider_configs SET id = :raw WHERE name = 'bad'", raw=raw)
        bad = next(p for p in hodei.providers() if p["name"] == "bad")
        assert bad["id"] == raw and bad["valid"] is False and bad["problems"][0]["field"] == "id"
        assert hodei.json("providers", "show", raw)["name"] == "bad"
        hodei.ok("providers", "disable", raw)
        assert hodei.json("providers", "history", raw)[0]["to"] == "DISABLED"
        hodei.ok("providers", "enable", raw)
        assert hodei.json("select")["selected"] == "good"
    hodei.ok("providers", "delete", "x")
    assert [p["name"] for p in hodei.providers()] == ["good"]
    assert hodei("providers", "show", "x").exit_code == 1


def test_served_the_daemon_starts_and_the_api_manages_the_broken_row(hodei: Any, tmp_path: Path) -> None:
    """`hodei serve` with a broken row from the start (the ExceptionGroup of old), then every command
    through its API: show, disable, fix, delete, by name and by raw id."""
    add_pair(hodei)
    if hodei.is_postgres:
        hodei.sql("UPDATE provider_configs SET config = '\"oops\"'::jsonb, updated_at = 'infinity' WHERE name = 'bad'")
        ref = "bad"
    else:
        hodei.sql("UPDATE provider_configs SET config = '{\"latency_ms\": 1', id = 'row-7' WHERE name = 'bad'")
        ref = "row-7"
    config = tmp_path / "served.toml"
    config.write_text(f'[database]\nurl = "{hodei.url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                      '[health]\ninterval_seconds = 0.2\n[daemon]\npoll_seconds = 0.1\n', encoding="utf-8")

    def remote(address: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*hodei_command(), "--server", address, *args], capture_output=True, text=True,
                              env=clean_environment(), timeout=60)

    with serve(config, env=clean_environment()) as daemon:
        assert daemon.address is not None
        listed = json.loads(remote(daemon.address, "providers", "list", "-o", "json").stdout)
        bad = next(p for p in listed if p["name"] == "bad")
        assert bad["valid"] is False and any(p["field"] == "config" for p in bad["problems"])
        assert json.loads(remote(daemon.address, "select", "-o", "json").stdout)["selected"] == "good"
        assert remote(daemon.address, "providers", "show", ref).returncode == 0
        assert remote(daemon.address, "providers", "disable", ref).returncode == 0
        refused = remote(daemon.address, "providers", "update", ref, "--priority", "2")
        assert refused.returncode == 1 and "whole new config" in refused.stderr and "Traceback" not in refused.stderr
        assert remote(daemon.address, "providers", "update", ref, "--config", "{}").returncode == 0
        fixed = json.loads(remote(daemon.address, "providers", "show", ref, "-o", "json").stdout)
        assert fixed["config"] == {} and fixed["status"] == "DISABLED"
        assert remote(daemon.address, "providers", "delete", ref).returncode == 0
        assert [p["name"] for p in json.loads(remote(daemon.address, "providers", "list", "-o", "json").stdout)] == [
            "good"]
        assert daemon.process.poll() is None
    assert "Traceback" not in daemon.log() and "could not refresh" not in daemon.log()


# -- random garbage in every column ----------------------------------------------------------------

COLUMNS = ("id", "name", "provider_type", "config", "status", "priority", "max_workers", "preferred_region",
           "allowed_regions", "required_labels", "annotations", "created_at", "updated_at")
TEXT_COLUMNS = ("name", "provider_type", "preferred_region")
JSON_COLUMNS = ("config", "allowed_regions", "required_labels", "annotations")

# Text PostgreSQL can store (no NUL, no lone surrogate): what is refused at the door is i15's other half.
safe_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | safe_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(safe_text, inner, max_size=4),
    max_leaves=12)
# What SQLite lets any column hold, and text shaped to look almost like what belongs there.
sqlite_values = st.one_of(
    st.text(max_size=40), st.binary(max_size=40), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),  # NaN binds as NULL
    json_values.map(json.dumps), json_values.map(lambda v: json.dumps(v)[:-1]),
    st.sampled_from(["2026-13-45 99:99:99", "infinity", "{", "[", "", "null", "ACTIVE", "static", "0" * 40]))
EXAMPLES = {"sqlite": 150, "postgresql": 80}
tried: dict[str, int] = {}


def _not_good(value: Any) -> bool:
    return value != "good"  # the name of the row that must keep serving (names are unique)


def _positive_or_not_a_number(value: Any) -> bool:
    return not isinstance(value, (int, float)) or value > 0  # max_workers > 0 is checked by SQLite too


def _garbage_row(backend: str) -> st.SearchStrategy[dict[str, Any]]:
    if backend == "sqlite":
        columns = {c: sqlite_values for c in COLUMNS if c not in ("status", "name", "max_workers")}
        columns["name"] = sqlite_values.filter(_not_good)
        columns["max_workers"] = sqlite_values.filter(_positive_or_not_a_number)
        return st.fixed_dictionaries({}, optional=columns)
    return st.fixed_dictionaries({}, optional={
        "name": safe_text.filter(_not_good), "provider_type": safe_text, "preferred_region": safe_text,
        **{c: json_values for c in JSON_COLUMNS},
        "priority": st.integers(-(2**31), 2**31 - 1), "max_workers": st.integers(1, 2**31 - 1),
        "updated_at": st.sampled_from(["infinity", "-infinity", "epoch", "2000-01-01"]),
        "created_at": st.sampled_from(["infinity", "-infinity", "294276-12-31 00:00:00+00"]),
    })


_PG_TYPES = {"priority": "integer", "max_workers": "integer", "updated_at": "timestamptz",
             "created_at": "timestamptz", **{c: "jsonb" for c in JSON_COLUMNS}}


@pytest.fixture
def broken_store(hodei_database_url: str) -> Any:
    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.create({"name": "good", "provider_type": "static"})
    yield store
    store.close()


def test_random_garbage_in_every_column_never_crashes_list_show_select_or_the_daemons_reload(
        broken_store: Store) -> None:
    store = broken_store
    backend = store.engine.dialect.name
    services = on_database(store, build_chain(store.pm))
    fleet = Fleet(services.fleet_reads, build_chain(store.pm))
    table = sa.table("provider_configs", *(sa.column(c) for c in COLUMNS))

    @settings(max_examples=EXAMPLES[backend], deadline=None, suppress_health_check=list(HealthCheck))
    @given(values=_garbage_row(backend))
    def check(values: dict[str, Any]) -> None:
        tried[backend] = tried.get(backend, 0) + 1
        with store.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM provider_configs WHERE name <> 'good' OR name IS NULL"))
            connection.execute(sa.text("INSERT INTO provider_configs (name, provider_type, config, priority) "
                                       "VALUES ('victim', 'static', '{}', 5)"))
            if backend == "postgresql" and values:
                sets = ", ".join(f"{c} = CAST(:{c} AS {_PG_TYPES.get(c, 'text')})" for c in values)
                params = {c: json.dumps(v) if c in JSON_COLUMNS else v for c, v in values.items()}
                connection.execute(sa.text(f"UPDATE provider_configs SET {sets} WHERE name = 'victim'"), params)
            elif values:  # SQLite: bound as they are, so each column holds that very type
                try:
                    with connection.begin_nested():
                        connection.execute(sa.update(table).where(table.c.name == "victim").values(**values))
                except sa.exc.IntegrityError:
                    reject()  # a value the database's own CHECKs refuse ('0' is 0 to SQLite) cannot be in a row
        rows = store.all()
        valid = {row.name for row in rows if row.valid}
        assert "good" in valid
        views = services.providers.find()
        json.dumps([view.as_json() for view in views])  # what `providers list -o json` prints
        for row in rows:
            json.dumps(services.providers.get(row.ref).as_json())  # `providers show ID`
        assert services.selection.decide(services.selection.requirements({})).selected.name in valid
        fleet.apply(fleet.prepare(store.raw_rows()), complete=True)  # the daemon's re-read
        assert {p.id for p in fleet.providers.values()} == {row.id for row in rows if row.valid}
        assert {row.id for row in rows if not row.valid} == set(fleet.invalid)

    check()
    assert tried[backend] >= EXAMPLES[backend]


# -- the tables the daemon reads besides provider_configs -----------------------------------------

def _state_history_worker_garbage(hodei: Any, provider_id: str) -> None:
    pid = provider_id if hodei.is_postgres else uuid.UUID(provider_id).hex
    if hodei.is_postgres:
        state = ("'Healthy'", "'infinity'", "'-infinity'", "1.5", "2", "3")
        history_at, requirements, attempts, created = "'infinity'", "'\"x\"'", "'5'", "'-infinity'"
    else:
        state = ("'Healthy'", "'tuesday'", "'never'", "'slow'", "x'00'", "'many'")
        history_at, requirements, attempts, created = "'garbage'", "'{'", "'5'", "'soon'"
    hodei.sql("INSERT INTO provider_state (provider_id, health, health_reason, checked_at, capacity_reported_at, "
              "check_duration_seconds, capacity_memory, consecutive_failures, active_workers, reserved_workers, "
              f"consecutive_successes, updated_at) VALUES ('{pid}', {state[0]}, '', {state[1]}, {state[2]}, "
              f"{state[3]}, {state[4]}, {state[5]}, 0, 0, 0, CURRENT_TIMESTAMP)")
    hodei.sql("INSERT INTO provider_history (provider_id, provider_name, at, kind, old_value, new_value, cause) "
              f"VALUES ('{pid}', 'good', {history_at}, 'status', NULL, 'ACTIVE', 'edited in SQL')")
    # (The state column is CHECKed by the database on both.)
    bad_id = pid if hodei.is_postgres else "not-a-uuid"
    for worker, provider, document in (("w-bad-id", bad_id, "'{}'"), ("w-bad-json", pid, requirements)):
        hodei.sql("INSERT INTO workers (id, provider_id, provider_name, state, reason, requirements, attempts, "
                  f"token_sha256, created_at, updated_at) VALUES ('{worker}', '{provider}', 'good', 'RUNNING', '', "
                  f"{document}, {attempts}, 'x', {created}, CURRENT_TIMESTAMP)")
    hodei.sql("INSERT INTO workers (id, provider_id, provider_name, state, reason, requirements, attempts, "
              f"token_sha256, created_at, updated_at) VALUES ('w-fine', '{pid}', 'good', 'RUNNING', '', '{{}}', "
              "'[]', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")


def test_garbage_in_state_history_and_worker_rows_is_read_around(hodei: Any) -> None:
    hodei.ok("providers", "add", "good", "--type", "static")
    good = hodei.provider("good")
    _state_history_worker_garbage(hodei, good["id"])
    shown = hodei.provider("good")
    # Health is checked by the database (a CHECK constraint); the rest read as unknown.
    assert shown["valid"] is True and shown["state"]["health"] == "Healthy" and shown["state"]["checked_at"] is None
    assert hodei.json("providers", "history", "good")[0]["cause"] == "edited in SQL"
    assert "good" in hodei.ok("providers", "list").stdout
    # Listed, saying what cannot be read (tests/test_unreadable_workers.py: and released).
    listed = {w["id"]: w["reason"] for w in hodei.json("workers", "list", "--all")}
    assert sorted(listed) == ["w-bad-id", "w-bad-json", "w-fine"]
    assert listed["w-fine"] == "" and "cannot be read" in listed["w-bad-id"] + listed["w-bad-json"]
    assert "cannot be read" in hodei.json("workers", "show", "w-bad-json")["reason"]
    assert hodei.json("select")["selected"] == "good"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_daemon_starts_and_runs_over_garbage_in_every_table(anyio_backend: str, hodei: Any) -> None:
    hodei.ok("providers", "add", "good", "--type", "static")
    hodei.ok("providers", "add", "bad", "--type", "static")
    _state_history_worker_garbage(hodei, hodei.provider("good")["id"])
    hodei.sql("UPDATE provider_configs SET config = " + ("'\"x\"'::jsonb" if hodei.is_postgres else "'{'")
              + " WHERE name = 'bad'")
    settings = Settings.model_validate({
        "database": {"url": hodei.url}, "api": {"listen": ""}, "metrics": {"listen": ""},
        "health": {"interval_seconds": 0.1}, "workers": {"reconcile_seconds": 0.1},
        "daemon": {"poll_seconds": 0.05, "shutdown_grace_seconds": 0.5}})
    async with running(Daemon(settings)) as daemon:
        await wait_for(lambda: daemon.monitor.checks, what="a round of health checks")
        await anyio.sleep(0.5)  # several reconcile rounds over the unreadable worker rows
        assert [p.name for p in daemon.fleet.providers.values()] == ["good"]
        assert [row.name for row in daemon.fleet.invalid.values()] == ["bad"]
        decision = daemon.selection.decide(daemon.selection.requirements({}))
        assert decision.selected is not None and decision.selected.name == "good"
        assert not daemon.stopping


def test_apply_replaces_a_column_that_cannot_be_read_and_says_so(hodei: Any, tmp_path: Path) -> None:
    add_pair(hodei)
    broken = "'{\"latency_ms\": 1'" if not hodei.is_postgres else "'\"text\"'::jsonb"
    hodei.sql(f"UPDATE provider_configs SET config = {broken} WHERE name = 'bad'")
    document = tmp_path / "providers.json"
    document.write_text(json.dumps([{"name": "bad", "provider_type": "static", "config": {"latency_ms": 3}}]))
    planned = hodei.json("providers", "apply", "-f", str(document), "--dry-run")
    change = planned["changes"][0]
    assert change["action"] == "update" and change["fields"]["config"]["to"] == {"latency_ms": 3}
    assert change["fields"]["config"]["from"] == "(cannot be read)"  # never the raw text: it may hold a secret
    hodei.ok("providers", "apply", "-f", str(document))
    fixed = hodei.provider("bad")
    assert fixed["valid"] is True and fixed["config"] == {"latency_ms": 3}
