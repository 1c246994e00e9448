"""``hodei select``, ``hodei explain`` and ``hodei providers check`` as an operator runs them,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Hodei


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HODEI_CONFIG", raising=False)
    monkeypatch.delenv("HODEI_DATABASE_URL", raising=False)


FLEET = """
[[providers]]
name = "k8s-east"
provider_type = "static"
priority = 100
max_workers = 20
preferred_region = "us-east-1"
allowed_regions = ["us-west-2"]
required_labels = { environment = "production" }
config = { capabilities = { cpu = 16, memory = "64Gi" } }

[[providers]]
name = "lambda-east"
provider_type = "static"
priority = 10
max_workers = 100
preferred_region = "us-east-1"
required_labels = { environment = "production" }
config = { capabilities = { cpu = 2, memory = "10Gi" } }

[[providers]]
name = "docker-local"
provider_type = "static"
priority = 50
required_labels = { environment = "development" }
config = { capabilities = { cpu = 4, memory = "8Gi" } }

[[providers]]
name = "off"
provider_type = "static"
status = "DISABLED"
required_labels = { environment = "production" }
"""

JOB = {"cpu": 4, "memory": "8Gi", "required_labels": {"environment": "production"}, "preferred_region": "us-east-1"}


@pytest.fixture
def fleet(hodei: Hodei, tmp_path: Path) -> Hodei:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    hodei.ok("providers", "apply", "-f", str(path))
    return hodei


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_select_json_has_the_documented_shape(fleet: Hodei, tmp_path: Path) -> None:
    result = fleet.json("select", "-r", write(tmp_path, "job.json", json.dumps(JOB)))
    assert list(result) == ["selected", "tier", "ranking", "rejected", "summary", "warnings", "rejection_counts",
                            "total", "eligible", "in_tier", "rejected_total", "offset", "next_page_token"]
    assert (result["total"], result["eligible"], result["in_tier"], result["rejected_total"]) == (4, 1, 1, 3)
    assert [(c["filter"], c["count"]) for c in result["rejection_counts"]] == [
        ("status", 1), ("resources", 2), ("labels", 1)]
    assert (result["offset"], result["next_page_token"]) == (0, "")
    assert (result["selected"], result["tier"]) == ("k8s-east", "preferred")
    assert [{k: r[k] for k in ("name", "priority", "utilization", "score")} for r in result["ranking"]] == [
        {"name": "k8s-east", "priority": 100, "utilization": 0.0, "score": 1.0}]
    assert result["rejected"] == [
        {"name": "docker-local", "reasons": [{
            "filter": "labels", "message": "missing label environment=production (has environment=development)",
            "hint": "add them to the provider's required_labels, or drop them from the job's required_labels "
                    "(matching is exact and case-sensitive)"}]},
        {"name": "lambda-east", "reasons": [{
            "filter": "resources", "message": "too small: cpu: needs 4 cores, one worker can get 2 cores",
            "hint": "ask for less; run `hodei providers check` to record what it can give; or set "
                    "config.capabilities when the operator knows better than discovery"}]},
        {"name": "off", "reasons": [
            {"filter": "status", "message": "status is DISABLED, not ACTIVE",
             "hint": "an operator disabled it; `hodei providers enable off` brings it back"},
            {"filter": "resources", "message": "size unknown, it has not reported its capacity: cpu: needs 4 "
                                               "cores, unknown what one worker can get "
                                               "(no capacity report yet, no capabilities.cpu in its config); "
                                               "memory: needs 8Gi, unknown what one worker can get (no capacity "
                                               "report yet, no capabilities.memory in its config)",
             "hint": "run `hodei providers check off` to record what one worker can get; or set "
                     "config.capabilities when the operator knows better than discovery"}]},
    ]
    assert result["summary"].startswith("selected k8s-east (tier preferred; 1 candidate in the tier, 1/4")


def test_select_reads_toml_and_standard_input(fleet: Hodei, tmp_path: Path) -> None:
    toml_job = 'cpu = "500m"\nmemory = "512Mi"\npreferred_region = "us-west-2"\n'
    by_file = fleet.json("select", "-r", write(tmp_path, "job.toml", toml_job))
    by_stdin = fleet.json("select", "-r", "-", input=toml_job)
    by_json_stdin = fleet.json("select", "-r", "-", input=json.dumps({"cpu": 0.5, "memory": 536870912,
                                                                      "preferred_region": "us-west-2"}))
    assert by_file == by_stdin == by_json_stdin
    assert (by_file["selected"], by_file["tier"]) == ("k8s-east", "allowed")


def test_select_with_nothing_fitting_exits_3_with_the_checklist(fleet: Hodei, tmp_path: Path) -> None:
    job = write(tmp_path, "job.json", json.dumps({"required_labels": {"environment": "staging"}}))
    result = fleet("select", "-r", job)
    assert result.exit_code == 3
    assert result.stdout.startswith("0/4 providers available: 1 not ACTIVE (off: DISABLED), 4 missing label "
                                    "environment=staging (")
    as_json = fleet("select", "-r", job, "-o", "json")
    assert as_json.exit_code == 3
    assert json.loads(as_json.stdout)["selected"] is None


def test_select_text_output_is_for_operators(fleet: Hodei, tmp_path: Path) -> None:
    text = fleet.ok("select", "-r", write(tmp_path, "job.json", json.dumps(JOB))).stdout
    assert "ranking (tier preferred):" in text
    assert "1. k8s-east" in text and "[health never checked]" in text
    line = next(line for line in text.splitlines() if line.strip().startswith("lambda-east"))
    assert line.split()[1:5] == ["[resources]", "too", "small:", "cpu:"]


@pytest.mark.parametrize("document, field", [
    ('{"cpu": "lots"}', "cpu"), ('{"memory": "4GB"}', "memory"), ('{"gpus": 1}', "gpus"),
    ('{"required_labels": {"a": 1}}', "required_labels.a"), ('{"allowed_regions": "eu"}', "allowed_regions"),
    ('{"cpu": 1', "requirements"), ('[1, 2]', "requirements"),
])
def test_bad_requirements_name_the_field_and_exit_1(sqlite_hodei: Hodei, document: str, field: str) -> None:
    result = sqlite_hodei("select", "-r", "-", input=document)
    assert result.exit_code == 1 and result.stdout == ""
    assert field in result.stderr and "Traceback" not in result.stderr
    as_json = sqlite_hodei("select", "-r", "-", "-o", "json", input=document)
    assert field in [p["field"] for p in json.loads(as_json.stderr)["problems"]] or field == "requirements"


def test_a_missing_requirements_file_is_an_error(sqlite_hodei: Hodei) -> None:
    result = sqlite_hodei("select", "-r", "nope.json")
    assert result.exit_code == 1 and "cannot read nope.json" in result.stderr


def test_explain_says_why_not_and_what_would_fit(fleet: Hodei, tmp_path: Path) -> None:
    job = write(tmp_path, "job.json", json.dumps(JOB))
    result = fleet("explain", "docker-local", "-r", job, "-o", "json")
    assert result.exit_code == 3, result.stderr  # does not fit, as `select` exits 3 when nothing fits
    explained = json.loads(result.stdout)
    assert explained["fits"] is False and explained["selected"] == "k8s-east"
    assert [c["filter"] for c in explained["checks"] if not c["passed"]] == ["labels"]
    assert {c["filter"] for c in explained["checks"]} == {
        "status", "health", "cooldown", "capacity", "resources", "labels", "annotations", "allowed-regions", "image"}
    health = next(c for c in explained["checks"] if c["filter"] == "health")
    assert health == {"filter": "health", "passed": True, "message": "health never checked", "hint": ""}
    result = fleet("explain", "docker-local", "-r", job)
    assert result.exit_code == 3
    text = result.stdout
    assert text.startswith("docker-local does not fit: rejected by labels")
    assert "to fit: add them to the provider's required_labels" in text


def test_explain_a_provider_in_a_lower_tier(fleet: Hodei, tmp_path: Path) -> None:
    job = write(tmp_path, "job.json", json.dumps({"required_labels": {"environment": "production"},
                                                  "preferred_region": "us-east-1"}))
    explained = fleet.json("explain", "lambda-east", "-r", job)
    assert explained["fits"] and explained["tier"] == "preferred" and explained["rank"] == 2
    assert explained["summary"] == "lambda-east fits, ranked 2 of 2: k8s-east ranks first on priority, 100 against 10"


def test_explain_an_unknown_provider(fleet: Hodei) -> None:
    result = fleet("explain", "ghost")
    assert result.exit_code == 1 and "no provider named 'ghost'" in result.stderr


def test_providers_check_records_health_and_capacity_for_selection(hodei: Hodei) -> None:
    hodei.ok("providers", "add", "up", "--type", "static", "--config", '{"health": "Healthy"}')
    hodei.ok("providers", "add", "down", "--type", "static", "--priority", "9",
             "--config", '{"health": "Unhealthy", "health_reason": "socket refused"}')
    hodei.ok("providers", "add", "slow", "--type", "static", "--priority", "5", "--config", '{"hang": true}')
    assert [p["state"]["health"] for p in hodei.providers()] == [None, None, None]
    assert hodei.json("select")["selected"] == "down"  # never checked passes

    checked = {c["name"]: c for c in hodei.json("providers", "check", "--timeout", "0.5")}
    assert checked["up"]["health"] == "Healthy" and checked["up"]["active_workers"] == 0
    assert (checked["down"]["health"], checked["down"]["reason"]) == ("Unhealthy", "socket refused")
    assert checked["slow"]["health"] == "Unhealthy"
    assert checked["slow"]["reason"] == "the health check did not answer within 0.5 s"

    shown = hodei.provider("down")["state"]
    assert (shown["health"], shown["health_reason"]) == ("Unhealthy", "socket refused")
    result = hodei.json("select")
    assert result["selected"] == "up"
    assert {r["name"]: r["reasons"][0]["message"] for r in result["rejected"]} == {
        "down": "last health check was Unhealthy: socket refused",
        "slow": "last health check was Unhealthy: the health check did not answer within 0.5 s"}
    table = hodei.ok("providers", "list").stdout
    assert "Unhealthy" in table and "Healthy" in table


def test_state_goes_with_its_provider(hodei: Hodei) -> None:
    hodei.ok("providers", "add", "p", "--type", "static")
    hodei.ok("providers", "check", "p")
    deleted = hodei.json("providers", "delete", "p")
    assert deleted["state"]["health"] == "Healthy"
    hodei.ok("providers", "add", "p", "--type", "static")
    assert hodei.provider("p")["state"]["health"] is None


def test_deleting_in_sql_removes_the_state_too(hodei: Hodei) -> None:
    hodei.ok("providers", "add", "p", "--type", "static")
    hodei.ok("providers", "check", "p")
    hodei.sql("DELETE FROM provider_configs WHERE name = 'p'")
    hodei.sql("INSERT INTO provider_configs (name, provider_type, config) VALUES ('p', 'static', '{}')")
    assert hodei.provider("p")["state"]["health"] is None


def test_history_records_operator_and_health_changes_with_their_cause(hodei: Hodei) -> None:
    added = hodei.json("providers", "add", "p", "--type", "static",
                       "--config", '{"health": "Unhealthy", "health_reason": "engine down"}')
    hodei.ok("providers", "disable", "p", "--reason", "moving racks")
    hodei.ok("providers", "check", "p")
    hodei.ok("providers", "check", "p")  # the same health again: no new entry
    rows = hodei.json("providers", "history", "p")
    assert [(r["kind"], r["from"], r["to"], r["cause"]) for r in rows] == [
        ("health", None, "Unhealthy", "engine down"),
        ("status", "ACTIVE", "DISABLED", "hodei providers disable: moving racks"),
        ("created", None, "static", "created")]
    hodei.ok("providers", "delete", "p")
    kept = hodei.json("providers", "history", added["id"])
    assert [r["kind"] for r in kept] == ["deleted", "health", "status", "created"], "history outlives the provider"
    assert "no changes recorded" in hodei.ok("providers", "history", "00000000-0000-0000-0000-000000000000").stdout
