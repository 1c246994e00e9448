"""The ``hodei`` command as an operator uses it, through click's CliRunner.

Most tests run twice, on SQLite and on PostgreSQL (``hodei_database_url``); the PostgreSQL run
skips without ``HODEI_TEST_POSTGRES_URL`` (and fails under ``HODEI_REQUIRE_BACKENDS=1``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pytest
import tomli_w
import yaml
from click.testing import CliRunner, Result
from hodei import database
from hodei.cli import main
from hodei.settings import Settings, load_settings
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from conftest import Hodei

SEED_FIELDS = {
    "id", "name", "provider_type", "config", "status", "priority", "max_workers", "preferred_region",
    "allowed_regions", "required_labels", "annotations", "created_at", "updated_at",
}
DOCUMENT_FIELDS = SEED_FIELDS | {"valid", "problems", "state"}


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never pick up ./config/hodei.toml of the checkout, nor the caller's environment.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HODEI_CONFIG", raising=False)
    monkeypatch.delenv("HODEI_DATABASE_URL", raising=False)


def assert_one_error(result: Result, *names: str, exit_code: int = 1) -> None:
    """Failed with ``exit_code``, nothing on stdout, one clear message on stderr naming ``names``."""
    assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    if exit_code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("hodei: error: "), result.stderr
    for name in names:
        assert name in result.stderr, f"{name!r} not named in {result.stderr!r}"


# -- 1. bad input is refused, naming the field, changing nothing -------------------------------

BAD_ADDS = [
    pytest.param(["--config", "{bad json"], ["--config", "not valid JSON"], 1, id="invalid-json-config"),
    pytest.param(["--type", "no-such-type"], ["provider_type", "no-such-type", "static"], 1, id="unknown-type"),
    pytest.param(["--name", "existing"], ["existing", "exists already"], 1, id="duplicate-name"),
    pytest.param(["--max-workers", "0"], ["max_workers"], 1, id="max-workers-0"),
    pytest.param(["--max-workers", "-3"], ["max_workers"], 1, id="max-workers-negative"),
    pytest.param(["--priority", "1.5"], ["priority"], 1, id="priority-float"),
    pytest.param(["--priority", "ten"], ["priority"], 1, id="priority-word"),
    pytest.param(["--status", "BOGUS"], ["--status", "BOGUS"], 2, id="status-bogus"),
    pytest.param(["--config", '{"nope": 1}'], ["config.nope", "unknown key"], 1, id="unknown-config-key"),
    pytest.param(["--config", '{"latency_ms": "fast"}'], ["config.latency_ms"], 1, id="config-wrong-type"),
    pytest.param(["--preferred-region", ""], ["preferred_region"], 1, id="empty-preferred-region"),
    pytest.param(["--allowed-region", ""], ["allowed_regions"], 1, id="empty-allowed-region"),
    pytest.param(["--label", "env=prod "], ["required_labels", "env"], 1, id="label-trailing-space"),
]


@pytest.mark.parametrize("options, names, exit_code", BAD_ADDS)
def test_bad_add_is_refused_and_changes_nothing(hodei: Hodei, options: list[str], names: list[str],
                                                exit_code: int) -> None:
    hodei.ok("providers", "add", "existing", "--type", "static")
    before = hodei.providers()
    name = "new"
    if options[:1] == ["--name"]:
        name, options = options[1], options[2:]
    if "--type" not in options:
        options = ["--type", "static", *options]

    result = hodei("providers", "add", name, *options)

    assert_one_error(result, *names, exit_code=exit_code)
    assert hodei.providers() == before


def test_invalid_json_config_is_reported_against_config_not_a_file(sqlite_hodei: Hodei) -> None:
    # There is no file here: the problem is the --config option's value.
    result = sqlite_hodei("providers", "add", "new", "--type", "static", "--config", "{bad json", "-o", "json")
    assert result.exit_code == 1
    body = json.loads(result.stderr)
    assert [p["field"] for p in body["problems"]] == ["config"], body


# -- 2. the seed's field names -----------------------------------------------------------------


def test_add_show_list_use_the_seed_field_names(hodei: Hodei) -> None:
    added = hodei.json(
        "providers", "add", "edge", "--type", "static", "--config", '{"latency_ms": 12.5, "health": "Degraded"}',
        "--priority", "7", "--max-workers", "3", "--preferred-region", "eu-west-1",
        "--allowed-region", "eu-west-1", "--allowed-region", "eu-central-1",
        "--label", "environment=production", "--annotation", "compliance=soc2", "--status", "MAINTENANCE")
    shown = hodei.provider("edge")
    listed = hodei.providers()

    for document in (added, shown, *listed):
        assert set(document) == DOCUMENT_FIELDS
    assert listed == [shown]
    assert shown == added
    assert {k: shown[k] for k in SEED_FIELDS - {"id", "created_at", "updated_at"}} == {
        "name": "edge",
        "provider_type": "static",
        "config": {"latency_ms": 12.5, "health": "Degraded"},
        "status": "MAINTENANCE",
        "priority": 7,
        "max_workers": 3,
        "preferred_region": "eu-west-1",
        "allowed_regions": ["eu-west-1", "eu-central-1"],
        "required_labels": {"environment": "production"},
        "annotations": {"compliance": "soc2"},
    }
    assert shown["valid"] is True and shown["problems"] == []
    # Looked up by id too.
    assert hodei.provider(shown["id"]) == shown


def test_add_defaults(hodei: Hodei) -> None:
    added = hodei.json("providers", "add", "plain", "--type", "static")
    assert (added["status"], added["priority"], added["max_workers"]) == ("ACTIVE", 0, 10)
    assert (added["preferred_region"], added["allowed_regions"]) == (None, [])
    assert (added["required_labels"], added["annotations"], added["config"]) == ({}, {}, {})


def test_table_output(hodei: Hodei) -> None:
    hodei.ok("providers", "add", "edge", "--type", "static", "--label", "env=prod")
    table = hodei.ok("providers", "list").stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "TYPE", "STATUS"]
    assert "edge" in table and "env=prod" in table and "yes" in table
    shown = hodei.ok("providers", "show", "edge").stdout
    assert "provider_type:" in shown and "static" in shown


# -- 3. update ----------------------------------------------------------------------------------


@pytest.fixture
def edge(hodei: Hodei) -> dict[str, Any]:
    return hodei.json("providers", "add", "edge", "--type", "static",
                      "--config", '{"latency_ms": 5, "health": "Degraded"}',
                      "--preferred-region", "us-east-1", "--allowed-region", "us-east-1",
                      "--label", "env=prod", "--label", "tier=gold", "--annotation", "audit=enabled")


def test_merge_config_keeps_the_other_keys(hodei: Hodei, edge: dict[str, Any]) -> None:
    updated = hodei.json("providers", "update", "edge", "--merge-config", '{"health": "Unhealthy", "hang": true}')
    assert updated["config"] == {"latency_ms": 5, "health": "Unhealthy", "hang": True}
    assert hodei.provider("edge")["config"] == updated["config"]
    assert updated["required_labels"] == edge["required_labels"]


def test_config_replaces_the_whole_object(hodei: Hodei, edge: dict[str, Any]) -> None:
    updated = hodei.json("providers", "update", "edge", "--config", '{"hang": true}')
    assert updated["config"] == {"hang": True}
    assert hodei.provider("edge")["config"] == {"hang": True}


def test_rename(hodei: Hodei, edge: dict[str, Any]) -> None:
    hodei.ok("providers", "update", "edge", "--rename", "edge-2")
    assert hodei.provider("edge-2")["id"] == edge["id"]
    assert_one_error(hodei("providers", "show", "edge"), "no provider named")
    assert [p["name"] for p in hodei.providers()] == ["edge-2"]


def test_labels_added_and_removed(hodei: Hodei, edge: dict[str, Any]) -> None:
    updated = hodei.json("providers", "update", "edge", "--label", "zone=a", "--label", "env=staging",
                         "--remove-label", "tier")
    assert updated["required_labels"] == {"env": "staging", "zone": "a"}
    assert updated["annotations"] == {"audit": "enabled"}


def test_no_preferred_region(hodei: Hodei, edge: dict[str, Any]) -> None:
    updated = hodei.json("providers", "update", "edge", "--no-preferred-region")
    assert updated["preferred_region"] is None
    assert updated["allowed_regions"] == ["us-east-1"]


def test_updated_at_moves_and_created_at_does_not(hodei: Hodei, edge: dict[str, Any]) -> None:
    updated = hodei.json("providers", "update", "edge", "--priority", "9")
    assert updated["priority"] == 9
    assert updated["created_at"] == edge["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) >= datetime.fromisoformat(edge["updated_at"])


@pytest.mark.parametrize("options, names", [
    pytest.param(["--max-workers", "0"], ["max_workers"], id="max-workers"),
    pytest.param(["--priority", "high"], ["priority"], id="priority"),
    pytest.param(["--merge-config", '{"nope": 1}'], ["config.nope"], id="merge-unknown-key"),
    pytest.param(["--merge-config", '{"latency_ms": "fast"}'], ["config.latency_ms"], id="merge-wrong-type"),
    pytest.param(["--config", '{"type": "docker"}'], ["config.type"], id="config-type-mismatch"),
    pytest.param(["--preferred-region", ""], ["preferred_region"], id="empty-region"),
    pytest.param(["--label", "env= prod"], ["required_labels"], id="label-space"),
    pytest.param(["--rename", "other"], ["other", "exists already"], id="rename-to-taken-name"),
    pytest.param(["--rename", ""], ["name"], id="rename-empty"),
])
def test_invalid_update_is_refused_and_changes_nothing(hodei: Hodei, edge: dict[str, Any], options: list[str],
                                                       names: list[str]) -> None:
    hodei.ok("providers", "add", "other", "--type", "static")
    before = hodei.providers()
    assert_one_error(hodei("providers", "update", "edge", *options), *names)
    assert hodei.providers() == before


def test_update_with_nothing_to_change_is_a_usage_error(hodei: Hodei, edge: dict[str, Any]) -> None:
    result = hodei("providers", "update", "edge")
    assert result.exit_code == 2
    assert "nothing to change" in result.stderr


def test_update_of_a_missing_provider(hodei: Hodei) -> None:
    assert_one_error(hodei("providers", "update", "ghost", "--priority", "1"), "no provider named", "ghost")


# -- 4. status and delete -----------------------------------------------------------------------


@pytest.mark.parametrize("verb, status", [("disable", "DISABLED"), ("maintenance", "MAINTENANCE"),
                                          ("enable", "ACTIVE")])
def test_status_commands(hodei: Hodei, verb: str, status: str) -> None:
    hodei.ok("providers", "add", "edge", "--type", "static", "--status", "UNHEALTHY")
    hodei.ok("providers", "add", "other", "--type", "static")
    result = hodei.ok("providers", verb, "edge")
    assert status in result.stdout
    assert hodei.provider("edge")["status"] == status
    assert hodei.provider("other")["status"] == "ACTIVE"
    listed = [p["name"] for p in hodei.json("providers", "list", "--status", status)]
    assert listed == (["edge", "other"] if status == "ACTIVE" else ["edge"])


def test_delete(hodei: Hodei) -> None:
    hodei.ok("providers", "add", "edge", "--type", "static")
    hodei.ok("providers", "add", "other", "--type", "static")
    removed = hodei.json("providers", "delete", "edge")
    assert removed["name"] == "edge"
    assert [p["name"] for p in hodei.providers()] == ["other"]
    assert_one_error(hodei("providers", "delete", "edge"), "no provider named")


@pytest.mark.parametrize("verb", ["enable", "disable", "maintenance", "show", "delete"])
def test_missing_provider(hodei: Hodei, verb: str) -> None:
    assert_one_error(hodei("providers", verb, "ghost"), "no provider named 'ghost'")


# -- 5. apply -------------------------------------------------------------------------------------

PROVIDERS = [
    {"name": "Fast static", "provider_type": "static", "priority": 100, "max_workers": 20,
     "preferred_region": "us-east-1", "allowed_regions": ["us-east-1", "us-west-2"],
     "required_labels": {"environment": "production", "tier": "high-performance"},
     "annotations": {"compliance": "soc2", "audit": "enabled"},
     "config": {"type": "static", "latency_ms": 12.5, "health": "Degraded", "health_reason": "half the nodes"}},
    {"name": "Slow static", "provider_type": "static", "priority": 10, "max_workers": 100,
     "config": {"latency_ms": 250}},
]


def _write(tmp_path: Path, kind: str, providers: list[dict[str, Any]]) -> Path:
    if kind == "toml":
        path, text = tmp_path / "providers.toml", tomli_w.dumps({"providers": providers})
    elif kind == "yaml":
        path, text = tmp_path / "providers.yaml", yaml.safe_dump(providers, sort_keys=False)
    elif kind == "yml-wrapped":
        path, text = tmp_path / "providers.yml", yaml.safe_dump({"providers": providers}, sort_keys=False)
    elif kind == "json-list":
        path, text = tmp_path / "providers.json", json.dumps(providers)
    elif kind == "json-wrapped":
        path, text = tmp_path / "providers.json", json.dumps({"providers": providers})
    else:
        raise AssertionError(kind)
    path.write_text(text, encoding="utf-8")
    return path


def _seed_values(document: dict[str, Any]) -> dict[str, Any]:
    return {k: document[k] for k in ("name", "provider_type", "priority", "max_workers", "preferred_region",
                                     "allowed_regions", "required_labels", "annotations", "config")}


def _expected(provider: dict[str, Any]) -> dict[str, Any]:
    return {"preferred_region": None, "allowed_regions": [], "required_labels": {}, "annotations": {},
            **provider}


@pytest.mark.parametrize("kind", ["toml", "yaml", "yml-wrapped", "json-list", "json-wrapped"])
def test_apply_file_creates_then_changes_nothing(hodei: Hodei, tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path, kind, PROVIDERS)

    first = hodei.json("providers", "apply", "-f", str(path))
    assert first["dry_run"] is False
    assert [(c["name"], c["action"]) for c in first["changes"]] == [("Fast static", "create"),
                                                                   ("Slow static", "create")]
    after_first = hodei.providers()
    assert sorted((_seed_values(p) for p in after_first), key=lambda p: p["name"]) == [
        _expected(p) for p in PROVIDERS]
    assert all(p["status"] == "ACTIVE" and p["valid"] for p in after_first)

    second = hodei.json("providers", "apply", "-f", str(path))
    assert [(c["name"], c["action"], c["fields"]) for c in second["changes"]] == [
        ("Fast static", "unchanged", {}), ("Slow static", "unchanged", {})]
    assert hodei.providers() == after_first  # updated_at included

    text = hodei.ok("providers", "apply", "-f", str(path)).stdout
    assert "0 created, 0 updated, 2 unchanged" in text
    assert hodei.providers() == after_first


def test_apply_from_stdin(hodei: Hodei) -> None:
    text = json.dumps({"providers": PROVIDERS})
    first = hodei.ok("providers", "apply", "-f", "-", "--format", "json", input=text)
    assert "2 created" in first.stdout
    after_first = hodei.providers()
    second = hodei.json("providers", "apply", "-f", "-", "--format", "json", input=text)
    assert {c["action"] for c in second["changes"]} == {"unchanged"}
    assert hodei.providers() == after_first


def test_apply_updates_what_changed(hodei: Hodei, tmp_path: Path) -> None:
    hodei.ok("providers", "apply", "-f", str(_write(tmp_path, "toml", PROVIDERS)))
    before = {p["name"]: p for p in hodei.providers()}
    changed = [{**PROVIDERS[0], "priority": 5, "config": {**PROVIDERS[0]["config"], "latency_ms": 1}}, PROVIDERS[1]]
    result = hodei.json("providers", "apply", "-f", str(_write(tmp_path, "json-list", changed)))
    first = result["changes"][0]
    assert first["action"] == "update"
    assert first["fields"]["priority"] == {"from": 100, "to": 5}
    assert set(first["fields"]) == {"priority", "config"}
    assert result["changes"][1]["action"] == "unchanged"
    after = {p["name"]: p for p in hodei.providers()}
    assert after["Fast static"]["priority"] == 5
    assert after["Fast static"]["config"]["latency_ms"] == 1
    assert after["Fast static"]["id"] == before["Fast static"]["id"]
    assert after["Slow static"] == before["Slow static"]


def test_apply_dry_run_writes_nothing(hodei: Hodei, tmp_path: Path) -> None:
    path = _write(tmp_path, "toml", PROVIDERS)
    dry = hodei.json("providers", "apply", "-f", str(path), "--dry-run")
    assert dry["dry_run"] is True
    assert [(c["name"], c["action"]) for c in dry["changes"]] == [("Fast static", "create"),
                                                                 ("Slow static", "create")]
    assert hodei.providers() == []
    text = hodei.ok("providers", "apply", "-f", str(path), "--dry-run").stdout
    assert "would create Fast static" in text
    assert hodei.providers() == []

    hodei.ok("providers", "apply", "-f", str(path))
    before = hodei.providers()
    changed = [{**PROVIDERS[0], "max_workers": 21}, PROVIDERS[1]]
    dry = hodei.json("providers", "apply", "-f", str(_write(tmp_path, "yaml", changed)), "--dry-run")
    assert dry["changes"][0] == {"name": "Fast static", "action": "update",
                                 "fields": {"max_workers": {"from": 20, "to": 21}}}
    text = hodei.ok("providers", "apply", "-f", str(tmp_path / "providers.yaml"), "--dry-run").stdout
    assert "would update Fast static" in text and "max_workers: 20 -> 21" in text
    assert hodei.providers() == before


def test_apply_with_one_invalid_entry_applies_nothing(hodei: Hodei, tmp_path: Path) -> None:
    hodei.ok("providers", "add", "Fast static", "--type", "static", "--priority", "1")
    before = hodei.providers()
    entries = [PROVIDERS[0], {**PROVIDERS[1], "max_workers": 0}]
    result = hodei("providers", "apply", "-f", str(_write(tmp_path, "toml", entries)))
    assert_one_error(result, "nothing applied", "providers[1]", "max_workers")
    assert hodei.providers() == before

    entries = [PROVIDERS[0], {**PROVIDERS[1], "config": {"nope": 1}}]
    result = hodei("providers", "apply", "-f", str(_write(tmp_path, "json-list", entries)), "-o", "json")
    assert result.exit_code == 1
    fields = [p["field"] for p in json.loads(result.stderr)["problems"]]
    assert len(fields) == 1 and fields[0].startswith("providers[1]") and fields[0].endswith("config.nope"), fields
    assert hodei.providers() == before


def test_apply_reports_every_invalid_entry(hodei: Hodei, tmp_path: Path) -> None:
    entries = [{**PROVIDERS[0], "priority": "high"}, {**PROVIDERS[1], "provider_type": "ghost"}]
    result = hodei("providers", "apply", "-f", str(_write(tmp_path, "json-list", entries)))
    assert result.exit_code == 1
    assert "providers[0]" in result.stderr and "priority" in result.stderr
    assert "providers[1]" in result.stderr and "provider_type" in result.stderr
    assert hodei.providers() == []


def test_apply_refuses_a_name_given_twice(hodei: Hodei, tmp_path: Path) -> None:
    entries = [PROVIDERS[0], {**PROVIDERS[1], "name": PROVIDERS[0]["name"]}]
    result = hodei("providers", "apply", "-f", str(_write(tmp_path, "toml", entries)))
    assert_one_error(result, "providers[1].name", "more than once")
    assert hodei.providers() == []


def test_reapply_without_status_keeps_the_operators_status(hodei: Hodei, tmp_path: Path) -> None:
    path = _write(tmp_path, "toml", PROVIDERS)
    hodei.ok("providers", "apply", "-f", str(path))
    hodei.ok("providers", "disable", "Fast static")
    before = hodei.providers()
    result = hodei.json("providers", "apply", "-f", str(path))
    assert {c["action"] for c in result["changes"]} == {"unchanged"}
    assert hodei.providers() == before
    assert hodei.provider("Fast static")["status"] == "DISABLED"

    # Given explicitly, status is applied like any other field.
    path = _write(tmp_path, "toml", [{**PROVIDERS[0], "status": "ACTIVE"}])
    result = hodei.json("providers", "apply", "-f", str(path))
    assert result["changes"][0]["fields"] == {"status": {"from": "DISABLED", "to": "ACTIVE"}}
    assert hodei.provider("Fast static")["status"] == "ACTIVE"


@pytest.mark.parametrize("content, names", [
    pytest.param("[[providers]\nname = 'x'\n", ["broken.toml", "not valid TOML"], id="invalid-toml"),
    pytest.param(b"\xff\xfe\x00garbage", ["broken.toml", "cannot read"], id="not-utf8"),
    pytest.param("title = 'not providers'\n", ["file", "expected a list of providers"], id="no-providers"),
    pytest.param("providers = 3\n", ["providers", "must be a list"], id="providers-not-a-list"),
])
def test_apply_broken_file(sqlite_hodei: Hodei, tmp_path: Path, content: str | bytes, names: list[str]) -> None:
    path = tmp_path / "broken.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    assert_one_error(sqlite_hodei("providers", "apply", "-f", str(path)), *names)
    assert sqlite_hodei.providers() == []


def test_apply_missing_or_unreadable_file(sqlite_hodei: Hodei, tmp_path: Path) -> None:
    assert_one_error(sqlite_hodei("providers", "apply", "-f", str(tmp_path / "absent.toml")), "absent.toml",
                     "cannot read")
    assert_one_error(sqlite_hodei("providers", "apply", "-f", str(tmp_path)), "cannot tell the format")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    assert_one_error(sqlite_hodei("providers", "apply", "-f", str(folder)), "folder.toml", "cannot read")
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.toml"
        locked.write_text("providers = []\n", encoding="utf-8")
        locked.chmod(0)
        assert_one_error(sqlite_hodei("providers", "apply", "-f", str(locked)), "locked.toml", "cannot read")


def test_apply_unknown_suffix_asks_for_format(sqlite_hodei: Hodei, tmp_path: Path) -> None:
    path = tmp_path / "providers.txt"
    path.write_text(json.dumps(PROVIDERS), encoding="utf-8")
    assert_one_error(sqlite_hodei("providers", "apply", "-f", str(path)), "--format")
    sqlite_hodei.ok("providers", "apply", "-f", str(path), "--format", "json")
    assert len(sqlite_hodei.providers()) == 2


# -- 6. rows made invalid in SQL -------------------------------------------------------------------


@pytest.mark.parametrize("statement, field, reason", [
    pytest.param("UPDATE provider_configs SET config = '{\"nope\": 1}'", "config.nope", "unknown key",
                 id="unknown-config-key"),
    pytest.param("UPDATE provider_configs SET provider_type = 'ghost'", "provider_type", "ghost",
                 id="unknown-type"),
    pytest.param("UPDATE provider_configs SET config = '{\"latency_ms\": \"fast\"}'", "config.latency_ms",
                 "must be a number", id="config-wrong-type"),
    pytest.param("UPDATE provider_configs SET required_labels = '{\"env\": \"prod \"}'", "required_labels",
                 "white space", id="label-trailing-space"),
])
def test_row_made_invalid_in_sql(hodei: Hodei, statement: str, field: str, reason: str) -> None:
    hodei.ok("providers", "add", "broken", "--type", "static", "--config", '{"latency_ms": 5}')
    hodei.ok("providers", "add", "fine", "--type", "static")
    if hodei.is_postgres and "}'" in statement:
        statement = statement.replace("}'", "}'::jsonb")
    hodei.sql(statement + " WHERE name = 'broken'")

    table = hodei.ok("providers", "list").stdout
    row = next(line for line in table.splitlines() if line.startswith("broken"))
    assert "NO:" in row and field in row and reason in row
    assert next(line for line in table.splitlines() if line.startswith("fine")).endswith("yes")

    listed = {p["name"]: p for p in hodei.providers()}
    assert listed["broken"]["valid"] is False
    assert field in [p["field"] for p in listed["broken"]["problems"]]
    assert any(reason in p["reason"] for p in listed["broken"]["problems"])
    assert listed["fine"]["valid"] is True

    shown = hodei.provider("broken")
    assert shown["valid"] is False and shown == listed["broken"]
    text = hodei.ok("providers", "show", "broken").stdout
    assert "valid:" in text and "NO" in text and field in text

    disabled = hodei.ok("providers", "disable", "broken")
    assert "DISABLED" in disabled.stdout
    assert hodei.provider("broken")["status"] == "DISABLED"
    hodei.ok("providers", "enable", "broken")
    hodei.ok("providers", "delete", "broken")
    assert [p["name"] for p in hodei.providers()] == ["fine"]


def test_invalid_row_can_be_fixed_with_update(hodei: Hodei) -> None:
    hodei.ok("providers", "add", "broken", "--type", "static", "--config", '{"latency_ms": 5}')
    cast = "::jsonb" if hodei.is_postgres else ""
    hodei.sql(f"UPDATE provider_configs SET config = '{{\"latency_ms\": 5, \"nope\": 1}}'{cast}")
    fixed = hodei.json("providers", "update", "broken", "--config", '{"latency_ms": 5}')
    assert fixed["valid"] is True and fixed["config"] == {"latency_ms": 5}


# -- 7. errors as JSON -----------------------------------------------------------------------------


def test_json_error_names_the_fields(hodei: Hodei) -> None:
    result = hodei("providers", "add", "new", "--type", "static", "--max-workers", "0",
                   "--config", '{"nope": 1}', "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    body = json.loads(result.stderr)
    assert body["error"] == "InvalidInput"
    assert "max_workers" in body["message"]
    assert {p["field"] for p in body["problems"]} == {"max_workers", "config.nope"}
    assert all(set(p) == {"field", "reason"} and p["reason"] for p in body["problems"])
    assert hodei.providers() == []


@pytest.mark.parametrize("args", [
    pytest.param(["providers", "show", "ghost"], id="not-found"),
    pytest.param(["providers", "add", "existing", "--type", "static"], id="already-exists"),
    pytest.param(["providers", "add", "new", "--type", "ghost"], id="unknown-type"),
])
def test_every_json_error_has_the_same_keys(sqlite_hodei: Hodei, args: list[str]) -> None:
    # A script reads error, message and problems from any failure, whatever its kind.
    sqlite_hodei.ok("providers", "add", "existing", "--type", "static")
    result = sqlite_hodei(*args, "-o", "json")
    assert result.exit_code == 1
    body = json.loads(result.stderr)
    assert {"error", "message", "problems"} <= set(body), body
    assert isinstance(body["problems"], list)


# -- 8. plugins ------------------------------------------------------------------------------------


def test_plugins_lists_static(sqlite_hodei: Hodei) -> None:
    body = sqlite_hodei.json("plugins")
    assert set(body) == {"plugins", "errors", "skipped"}
    by_type = {t: p for p in body["plugins"] for t in p["provider_types"]}
    assert by_type["static"]["name"] == "static"
    assert by_type["static"]["distribution"] == "hodei"
    assert "hodei_validate_config" in by_type["static"]["hooks"]
    table = sqlite_hodei.ok("plugins").stdout
    assert "static" in table and "PROVIDER TYPES" in table


def test_plugins_respect_deny(sqlite_hodei: Hodei) -> None:
    sqlite_hodei.config.write_text('[plugins]\ndeny = ["static"]\n', encoding="utf-8")
    body = sqlite_hodei.json("plugins")
    assert "static" in body["skipped"]
    assert "static" not in [t for p in body["plugins"] for t in p["provider_types"]]
    assert_one_error(sqlite_hodei("providers", "add", "x", "--type", "static"), "provider_type", "static")


def test_plugins_lists_the_three_provider_plugins(sqlite_hodei: Hodei) -> None:
    missing = [m for m in ("hodei_docker", "hodei_k8s", "hodei_lambda") if importlib.util.find_spec(m) is None]
    body = sqlite_hodei.json("plugins")
    found = {t: p["distribution"] for p in body["plugins"] for t in p["provider_types"]}
    wanted = {"docker": "hodei-docker", "kubernetes": "hodei-k8s", "lambda": "hodei-lambda"}
    assert {t: found.get(t) for t in wanted} == wanted, (
        f"not importable: {missing}; load errors: {body['errors']}")
    assert body["errors"] == []


# -- 9. --help everywhere --------------------------------------------------------------------------


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(main))


def test_command_tree_is_complete() -> None:
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"plugins", "db upgrade", "db current", "config init", "config show", "providers list",
            "providers show", "providers add", "providers update", "providers delete", "providers enable",
            "providers disable", "providers maintenance", "providers apply"} <= paths


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "hodei" for p, _ in COMMANDS])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(path: tuple[str, ...], command: click.Command, flag: str, tmp_path: Path) -> None:
    # No database and no hodei.toml needed for help.
    result = CliRunner().invoke(main, [*path, flag], env={"HODEI_DATABASE_URL": "postgresql://nobody@256.0.0.1/x",
                                                          "HODEI_CONFIG": str(tmp_path / "absent.toml")})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert (command.help or "").strip(), f"hodei {' '.join(path)} has no help text"
    first_line = command.help.strip().splitlines()[0]
    assert first_line[:40] in " ".join(result.stdout.split())


def test_version() -> None:
    from hodei import __version__

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout


# -- 10. hodei config ----------------------------------------------------------------------------


def test_config_init_writes_a_commented_default_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "hodei.toml"
    result = CliRunner().invoke(main, ["config", "init", str(path)])
    assert result.exit_code == 0, result.stderr
    text = path.read_text(encoding="utf-8")
    tomllib.loads(text)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert len(comments) >= 5
    settings = load_settings(path)
    defaults = Settings()
    assert settings.plugins == defaults.plugins
    assert settings.health == defaults.health
    # The url is left unset: the per-user database, whichever folder hodei runs in.
    assert settings.database.url == f"sqlite:///{Path(os.environ['XDG_DATA_HOME']) / 'hodei' / 'hodei.db'}"
    assert settings.source == path
    beside = tmp_path / "beside" / "hodei.toml"
    assert CliRunner().invoke(main, ["config", "init", str(beside), "--database-url", "sqlite:///hodei.db"]).exit_code == 0
    assert load_settings(beside).database.url == f"sqlite:///{(beside.parent / 'hodei.db').resolve()}"


def test_config_init_database_url(tmp_path: Path) -> None:
    path = tmp_path / "hodei.toml"
    url = "postgresql+psycopg://hodei:pw@db.example:5432/hodei"
    assert CliRunner().invoke(main, ["config", "init", str(path), "--database-url", url]).exit_code == 0
    assert load_settings(path).database.url == url


def test_config_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "hodei.toml"
    path.write_text("# mine\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["config", "init", str(path)])
    assert result.exit_code != 0
    assert "--force" in result.stderr
    assert path.read_text(encoding="utf-8") == "# mine\n"
    result = CliRunner().invoke(main, ["config", "init", str(path), "--force"])
    assert result.exit_code == 0
    assert path.read_text(encoding="utf-8") != "# mine\n"
    load_settings(path)


def test_config_show_hides_the_database_password(tmp_path: Path) -> None:
    secret = "s3cr3t-Pa55word"
    url = f"postgresql+psycopg://hodei:{secret}@db.example:5432/hodei"
    for output in ("json", "table"):
        result = CliRunner().invoke(main, ["--database-url", url, "config", "show", "-o", output])
        assert result.exit_code == 0, result.stderr
        assert secret not in result.output
        assert "***" in result.stdout
    body = json.loads(CliRunner().invoke(main, ["--database-url", url, "config", "show", "-o", "json"]).stdout)
    assert body["settings"]["database"]["url"] == "postgresql+psycopg://hodei:***@db.example:5432/hodei"


def test_config_show_hides_a_password_from_the_file(tmp_path: Path) -> None:
    secret = "from-file-s3cret"
    path = tmp_path / "hodei.toml"
    path.write_text(f'[database]\nurl = "postgresql+psycopg://hodei:{secret}@db.example/hodei"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["config", "show", "-o", "json"], env={"HODEI_CONFIG": str(path)})
    assert result.exit_code == 0, result.stderr
    assert secret not in result.output and "***" in result.stdout
    assert json.loads(result.stdout)["source"] == str(path)


# -- 11. settings --------------------------------------------------------------------------------


def test_unknown_settings_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "hodei.toml"
    path.write_text('[database]\nurll = "x"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["providers", "list"], env={"HODEI_CONFIG": str(path)})
    assert_one_error(result, "database.urll", str(path))
    result = CliRunner().invoke(main, ["--config", str(path), "config", "show"])
    assert_one_error(result, "database.urll")


@pytest.mark.parametrize("content, names", [
    pytest.param('[health]\ntimeout_seconds = "5"\n', ["health.timeout_seconds"], id="wrong-type"),
    pytest.param("[health]\ntimeout_seconds = 0\n", ["health.timeout_seconds"], id="out-of-range"),
    pytest.param("[database\n", ["cannot read", "hodei.toml"], id="invalid-toml"),
])
def test_invalid_settings_file(tmp_path: Path, content: str, names: list[str]) -> None:
    path = tmp_path / "hodei.toml"
    path.write_text(content, encoding="utf-8")
    assert_one_error(CliRunner().invoke(main, ["--config", str(path), "providers", "list"]), *names)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "hodei.toml"
    assert_one_error(CliRunner().invoke(main, ["--config", str(missing), "providers", "list"]), str(missing))
    assert_one_error(CliRunner().invoke(main, ["providers", "list"], env={"HODEI_CONFIG": str(missing)}),
                     str(missing))


def test_relative_sqlite_path_is_taken_from_the_config_files_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "hodei.toml"
    path.write_text('[database]\nurl = "sqlite:///data/h.db"\n', encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = CliRunner().invoke(main, ["config", "show", "-o", "json"], env={"HODEI_CONFIG": str(path)})
    assert result.exit_code == 0, result.stderr
    url = json.loads(result.stdout)["settings"]["database"]["url"]
    assert url == f"sqlite:///{(folder / 'data' / 'h.db').resolve()}"

    assert CliRunner().invoke(main, ["db", "upgrade"], env={"HODEI_CONFIG": str(path)}).exit_code == 0
    assert (folder / "data" / "h.db").is_file()
    assert not (tmp_path / "elsewhere" / "data").exists()


def test_database_url_option_and_environment_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hodei.toml"
    path.write_text('[database]\nurl = "sqlite:///from-file.db"\n', encoding="utf-8")
    env = {"HODEI_CONFIG": str(path), "HODEI_DATABASE_URL": "sqlite:////tmp/from-env.db"}
    shown = json.loads(CliRunner().invoke(main, ["config", "show", "-o", "json"], env=env).stdout)
    assert shown["settings"]["database"]["url"] == "sqlite:////tmp/from-env.db"
    shown = json.loads(CliRunner().invoke(main, ["--database-url", "sqlite:////tmp/from-option.db", "config",
                                                 "show", "-o", "json"], env=env).stdout)
    assert shown["settings"]["database"]["url"] == "sqlite:////tmp/from-option.db"


# -- 12. the database ----------------------------------------------------------------------------


def test_db_current_and_upgrade(hodei_cli, hodei_database_url: str, config_file: Path) -> None:
    cli = hodei_cli(hodei_database_url, config_file)
    if database.sqlite_file(hodei_database_url) is None:
        before = cli.json("db", "current")
        assert before["current"] is None and before["up_to_date"] is False and before["head"]
        assert "hodei db upgrade" in cli.ok("db", "current").stdout
    else:  # a SQLite file that does not exist is not created by looking at it
        assert_one_error(cli("db", "current"), "does not exist", "hodei db upgrade")
        before = {"head": database.head_revision()}

    upgraded = cli.json("db", "upgrade")
    assert (upgraded["from"], upgraded["to"]) == (None, before["head"])
    now = cli.json("db", "current")
    assert now["current"] == now["head"] and now["up_to_date"] is True
    assert "up to date" in cli.ok("db", "current").stdout

    again = cli.ok("db", "upgrade")
    assert "already" in again.stdout
    assert cli.json("db", "current") == now


@pytest.mark.parametrize("args", [
    ["providers", "list"], ["providers", "show", "x"], ["providers", "add", "x", "--type", "static"],
    ["providers", "update", "x", "--priority", "1"], ["providers", "delete", "x"], ["providers", "disable", "x"],
    ["providers", "apply", "-f", "-", "--format", "json"],
])
def test_providers_on_a_database_never_upgraded(hodei_cli, hodei_database_url: str, config_file: Path,
                                                args: list[str]) -> None:
    cli = hodei_cli(hodei_database_url, config_file)
    result = cli(*args, input='[{"name": "x", "provider_type": "static"}]')
    assert_one_error(result, "hodei db upgrade")
    sqlite_file = database.sqlite_file(hodei_database_url)
    if sqlite_file is not None:  # nothing is left behind: only `db upgrade` and `serve` create a database
        assert not sqlite_file.exists()
        assert_one_error(cli("db", "current"), "does not exist", str(sqlite_file), str(config_file))
    else:
        assert cli.json("db", "current")["current"] is None


def _server_accepts(url: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 10})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def test_wrong_postgres_password_is_reported_without_it(hodei_cli, hodei_postgres_url: str, config_file: Path) -> None:
    secret = "Wr0ng-Pa55word-xyzzy"
    url = make_url(hodei_postgres_url).set(password=secret).render_as_string(hide_password=False)
    assert secret in url
    if _server_accepts(url):
        pytest.skip("this PostgreSQL accepts any password (trust authentication in pg_hba.conf), so a wrong one "
                    "cannot be refused; CI's server uses password authentication")
    cli = hodei_cli(url, config_file)
    for args in (["db", "upgrade"], ["db", "current"], ["providers", "list"], ["providers", "list", "-o", "json"]):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert secret not in result.output
        assert "Traceback" not in result.output
        assert "cannot connect" in result.stderr
        assert "***" in result.stderr


@pytest.mark.parametrize("where", ["option", "environment", "file"])
@pytest.mark.parametrize("url, names", [
    pytest.param("::::", ["database.url"], id="unparseable"),
    pytest.param("nosuchdialect://hodei:s3cret-pw@h/db", ["nosuchdialect"], id="unknown-dialect"),
    pytest.param("mysql://hodei:s3cret-pw@127.0.0.1/db", ["mysql"], id="driver-not-installed"),
    pytest.param("sqlite:////proc/no-such-dir/hodei.db", ["/proc/no-such-dir"], id="sqlite-folder-not-creatable"),
])
def test_unusable_database_url_is_a_clear_error(tmp_path: Path, url: str, names: list[str], where: str) -> None:
    config = tmp_path / "hodei.toml"
    config.write_text(tomli_w.dumps({"database": {"url": url}}) if where == "file" else "", encoding="utf-8")
    args = ["--database-url", url] if where == "option" else []
    env = {"HODEI_CONFIG": str(config), "HODEI_DATABASE_URL": url if where == "environment" else None}
    for command in (["providers", "list"], ["db", "upgrade"], ["db", "current"]):
        result = CliRunner().invoke(main, [*args, *command], env=env)
        assert not isinstance(result.exception, Exception), f"hodei {' '.join(command)}: {result.exception!r}"
        assert_one_error(result, *names)
        assert "s3cret-pw" not in result.output


def test_unreachable_postgres_is_a_clear_error(hodei_cli, config_file: Path) -> None:
    secret = "unreachable-pw-42"
    cli = hodei_cli(f"postgresql+psycopg://hodei:{secret}@127.0.0.1:1/hodei", config_file)
    result = cli("providers", "list")
    assert_one_error(result, "cannot connect", "127.0.0.1")
    assert secret not in result.output
