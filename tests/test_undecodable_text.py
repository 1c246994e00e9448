"""Text columns holding bytes that are not UTF-8 (SQLite keeps them: ``CAST(x'ff' AS TEXT)``): the
standard driver raises while the rows are fetched, which took `providers list`, `select` and the
daemon's reload down with the one row. Every such column is read as its problem ("NO: field: is not
UTF-8 text"), in the CLI, through the API and in the daemon. PostgreSQL refuses invalid UTF-8 on
write (its text is checked against the database encoding), so the class cannot arise there."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from hodei.daemon import Daemon
from hodei.settings import Settings
from hodei.testing.daemon import running, wait_for
from hodei.testing.serve import clean_environment, hodei_command, serve

# Every text column of provider_configs (status is CHECKed by the database); the JSON ones are text on SQLite too.
PROVIDER_COLUMNS = ["name", "provider_type", "preferred_region", "config", "allowed_regions",
                    "required_labels", "annotations"]
NOT_UTF8 = "CAST(x'41ff42' AS TEXT)"


def _pair(hodei: Any) -> None:
    hodei.ok("providers", "add", "good", "--type", "static", "--priority", "1")
    hodei.ok("providers", "add", "bad", "--type", "static", "--priority", "9")


@pytest.mark.parametrize("column", PROVIDER_COLUMNS)
def test_a_column_that_is_not_utf8_is_listed_as_its_problem(sqlite_hodei: Any, column: str) -> None:
    hodei = sqlite_hodei
    _pair(hodei)
    hodei.sql(f"UPDATE provider_configs SET {column} = {NOT_UTF8} WHERE name = 'bad'")
    table = hodei("providers", "list")
    assert table.exit_code == 0 and "Traceback" not in table.stdout + table.stderr
    assert f"NO: {column}: cannot be read: is not UTF-8 text" in table.stdout
    bad = next(p for p in hodei.providers() if p["name"] != "good")
    assert bad["valid"] is False
    assert {"field": column, "reason": "cannot be read: is not UTF-8 text (byte 2 is not)"} in bad["problems"]
    if column == "name":
        assert bad["name"] == "A\\xffB"  # its bytes, the undecodable one escaped
    assert hodei.json("providers", "show", bad["id"])["problems"] == bad["problems"]
    assert hodei.json("select")["selected"] == "good"
    hodei.ok("providers", "disable", bad["id"])
    hodei.ok("providers", "delete", bad["id"])
    assert [p["name"] for p in hodei.providers()] == ["good"]


def _other_tables(hodei: Any) -> None:
    good = hodei.provider("good")
    pid = uuid.UUID(good["id"]).hex
    hodei.sql("INSERT INTO provider_state (provider_id, health, health_reason, active_workers, reserved_workers, "
              "consecutive_failures, consecutive_successes, updated_at) "
              f"VALUES ('{pid}', 'Degraded', {NOT_UTF8}, 0, 0, 0, 0, CURRENT_TIMESTAMP)")
    hodei.sql("INSERT INTO provider_history (provider_id, provider_name, at, kind, old_value, new_value, cause) "
              f"VALUES ('{pid}', {NOT_UTF8}, CURRENT_TIMESTAMP, 'status', {NOT_UTF8}, 'ACTIVE', {NOT_UTF8})")
    hodei.sql("INSERT INTO workers (id, provider_id, provider_name, state, reason, backend_id, requirements, "
              f"attempts, token_sha256, created_at, updated_at) VALUES ('w-1', '{pid}', {NOT_UTF8}, 'RUNNING', "
              f"{NOT_UTF8}, {NOT_UTF8}, '{{}}', '[]', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")


def test_state_history_and_worker_text_that_is_not_utf8_is_shown_escaped(sqlite_hodei: Any) -> None:
    hodei = sqlite_hodei
    _pair(hodei)
    _other_tables(hodei)
    assert hodei.provider("good")["state"]["health_reason"] == "A\\xffB"
    assert [e["cause"] for e in hodei.json("providers", "history", "good") if e["kind"] == "status"] == ["A\\xffB"]
    listed = hodei.json("workers", "list", "--all")
    assert [(w["id"], w["reason"]) for w in listed] == [("w-1", "A\\xffB")]
    for args in (("providers", "list"), ("workers", "list", "--all"), ("workers", "show", "w-1"), ("select",)):
        result = hodei(*args)
        assert result.exit_code in (0, 3) and "Traceback" not in result.stdout + result.stderr, args


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_daemon_becomes_ready_over_text_that_is_not_utf8(anyio_backend: str, sqlite_hodei: Any) -> None:
    hodei = sqlite_hodei
    _pair(hodei)
    _other_tables(hodei)
    hodei.sql(f"UPDATE provider_configs SET name = {NOT_UTF8}, config = {NOT_UTF8} WHERE name = 'bad'")
    settings = Settings.model_validate({
        "database": {"url": hodei.url}, "api": {"listen": ""}, "metrics": {"listen": ""},
        "health": {"interval_seconds": 0.1}, "workers": {"reconcile_seconds": 0.1},
        "daemon": {"poll_seconds": 0.05, "shutdown_grace_seconds": 0.5}})
    async with running(Daemon(settings)) as daemon:
        await wait_for(lambda: daemon.monitor.checks, what="a round of health checks")
        await anyio.sleep(0.5)  # reloads and reconcile rounds over the rows
        assert [p.name for p in daemon.fleet.providers.values()] == ["good"]
        assert [row.name for row in daemon.fleet.invalid.values()] == ["A\\xffB"]
        assert not daemon.stopping


def test_served_list_and_select_answer_over_text_that_is_not_utf8(sqlite_hodei: Any, tmp_path: Path) -> None:
    hodei = sqlite_hodei
    _pair(hodei)
    hodei.sql(f"UPDATE provider_configs SET name = {NOT_UTF8} WHERE name = 'bad'")
    config = tmp_path / "served.toml"
    config.write_text(f'[database]\nurl = "{hodei.url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                      '[health]\ninterval_seconds = 0.2\n[daemon]\npoll_seconds = 0.1\n', encoding="utf-8")
    with serve(config, env=clean_environment()) as daemon:
        assert daemon.address is not None
        listed = subprocess.run([*hodei_command(), "--server", daemon.address, "providers", "list", "-o", "json"],
                                capture_output=True, text=True, env=clean_environment(), timeout=60)
        assert listed.returncode == 0, listed.stderr
        bad = next(p for p in json.loads(listed.stdout) if p["name"] != "good")
        assert bad["name"] == "A\\xffB" and bad["problems"][0]["field"] == "name"
        chosen = subprocess.run([*hodei_command(), "--server", daemon.address, "select", "-o", "json"],
                                capture_output=True, text=True, env=clean_environment(), timeout=60)
        assert json.loads(chosen.stdout)["selected"] == "good"
    assert "Traceback" not in daemon.log()


# JSON a database holds but Python cannot read back: PostgreSQL's jsonb keeps any number and thousands of
# levels, and the driver parsed them while fetching, failing the whole query.
UNREADABLE_JSON = [
    ("config", '{"n": ' + "9" * 5000 + "}", "number too long"),
    ("config", "[" * 3000 + "]" * 3000, "nest"),
    ("allowed_regions", "[" * 3000 + "]" * 3000, "nest"),
]


@pytest.mark.parametrize("column, text, word", UNREADABLE_JSON)
def test_json_that_python_cannot_read_back_is_listed_as_its_problem(hodei: Any, column: str, text: str,
                                                                    word: str) -> None:
    _pair(hodei)
    cast = "CAST(:text AS jsonb)" if hodei.is_postgres else ":text"
    hodei.sql(f"UPDATE provider_configs SET {column} = {cast} WHERE name = 'bad'", text=text)
    table = hodei("providers", "list")
    assert table.exit_code == 0 and "Traceback" not in table.stdout + table.stderr
    bad = next(p for p in hodei.providers() if p["name"] == "bad")
    problem = next(p for p in bad["problems"] if p["field"] == column)
    assert "cannot be read" in problem["reason"] and word in problem["reason"], problem
    assert hodei.json("select")["selected"] == "good"
    hodei.ok("providers", "delete", "bad")
