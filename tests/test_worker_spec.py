"""The job's own worker: image, command, env, secret_env, labels and timeout_seconds in the requirements.

Validation names the field and never quotes a secret value; the image filter refuses a provider whose
allowed_images do not take the job's image (or a type that runs no image at all), with a reason and a
hint; the spec reaches the plugin whole while the worker record holds secret values as ``***``; the CLI
flags fill the spec; the reconciler ends a worker at its own timeout. Storage runs on SQLite and
PostgreSQL (``hodei_database_url``). The ``static`` provider type is the backend.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hodei import database
from hodei.builtin_plugins import static_provider
from hodei.cli import main
from hodei.errors import InvalidInput
from hodei.plugins import make_plugin_manager
from hodei.selection import Requirements, build_chain, parse_requirements
from hodei.services.local import OnDatabase, on_database
from hodei.settings import WorkerSettings
from hodei.store import Store
from hodei.worker_spec import image_allowed
from hodei.workers import NoProviderAvailable, Reconciler, WorkerState
from hypothesis import given, settings
from hypothesis import strategies as st

SECRET = "pa55-w0rd-e9b1c4"

# -- validation -----------------------------------------------------------------------------------


def problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as refused:
        parse_requirements(document)
    return {p.field: p.reason for p in refused.value.problems}


def test_a_whole_spec_is_parsed_and_its_secret_values_never_shown() -> None:
    job = parse_requirements({"image": "registry.example.com/jobs/etl:7", "command": ["python", "etl.py"],
                              "env": {"MODE": "batch"}, "secret_env": {"DB_PASSWORD": SECRET},
                              "labels": {"team": "data"}, "timeout_seconds": 600, "cpu": 1})
    assert (job.image, job.command, dict(job.env), dict(job.secret_env)) == (
        "registry.example.com/jobs/etl:7", ("python", "etl.py"), {"MODE": "batch"}, {"DB_PASSWORD": SECRET})
    assert (dict(job.labels), job.timeout_seconds) == ({"team": "data"}, 600)
    document = job.document()
    assert document["secret_env"] == {"DB_PASSWORD": "***"} and document["env"] == {"MODE": "batch"}
    assert SECRET not in repr(job) and SECRET not in json.dumps(document)


def test_a_job_without_a_spec_stores_what_it_stored_before() -> None:
    assert set(parse_requirements({}).document()) == {
        "cpu", "memory", "gpu", "required_labels", "required_annotations", "preferred_region", "allowed_regions"}


@pytest.mark.parametrize("document, field", [
    ({"image": ""}, "image"),
    ({"image": "python 3.12"}, "image"),
    ({"image": "a" * 600}, "image"),
    ({"image": 3}, "image"),
    ({"command": "python job.py"}, "command"),
    ({"command": ["python", "a\0b"]}, "command[1]"),
    ({"command": [1]}, "command[0]"),
    ({"env": {"1ABC": "x"}}, "env"),
    ({"env": {"A-B": "x"}}, "env"),
    ({"env": {"HODEI_WORKER_TOKEN": "mine"}}, "env"),
    ({"env": {"hodei_server_address": "elsewhere:1"}}, "env"),
    ({"env": {"A": 1}}, "env"),
    ({"env": ["A=1"]}, "env"),
    ({"secret_env": {"HODEI_WORKER_ID": "w"}}, "secret_env"),
    ({"env": {"A": "1"}, "secret_env": {"A": "2"}}, "secret_env"),
    ({"labels": {"hodei.managed": "false"}}, "labels"),
    ({"labels": {"": "x"}}, "labels"),
    ({"labels": {"team": 3}}, "labels.team"),
    ({"timeout_seconds": 0}, "timeout_seconds"),
    ({"timeout_seconds": -5}, "timeout_seconds"),
    ({"timeout_seconds": 1.5}, "timeout_seconds"),
    ({"timeout_seconds": 10**9}, "timeout_seconds"),
    ({"timeout_seconds": "600"}, "timeout_seconds"),
])
def test_a_bad_spec_is_refused_naming_the_field(document: dict[str, Any], field: str) -> None:
    found = problems(document)
    assert field in found, found


# Bracketed, so that a secret cannot be found in a refusal's own wording by chance.
SECRET_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40).map(
    lambda text: f"\u27e6{text}\u27e7")


@settings(max_examples=60, deadline=None)
@given(secret=SECRET_TEXT, name=st.sampled_from(["TOKEN", "1BAD", "HODEI_X", "A B", "OK"]),
       wrapped=st.sampled_from(["plain", "list", "number-name", "nul"]))
def test_no_refusal_ever_quotes_a_secret_value(secret: str, name: str, wrapped: str) -> None:
    value: Any = {"plain": secret, "list": [secret], "number-name": secret, "nul": secret + "\0"}[wrapped]
    document = {"secret_env": {name: value}} if wrapped != "number-name" else {"secret_env": {name: value, 5: 1}}
    try:
        job = parse_requirements(document)
    except InvalidInput as exc:
        text = str(exc) + repr(exc) + json.dumps([p.reason for p in exc.problems])
        assert secret not in text
        return
    assert secret not in repr(job) and secret not in json.dumps(job.document())


@given(st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=10))
def test_a_glob_spans_repository_paths_and_a_plain_entry_matches_only_itself(name: str) -> None:
    assert image_allowed(f"registry.example.com/jobs/{name}/x:1", ["registry.example.com/jobs/*"])
    assert not image_allowed(f"registry.example.com/other/{name}:1", ["registry.example.com/jobs/*"])
    assert image_allowed(f"{name}:1", [f"{name}:1"]) and not image_allowed(f"{name}:12", [f"{name}:1"])


# -- selection, provisioning, the record ------------------------------------------------------------


@pytest.fixture
def fleet(hodei_database_url: str) -> Any:
    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.create({"name": "jobs", "provider_type": "static", "priority": 1,
                  "config": {"allowed_images": ["registry.example.com/jobs/*", "python:3.12"]}})
    store.create({"name": "plain", "provider_type": "static", "priority": 9})
    services = on_database(store, build_chain(store.pm), WorkerSettings(server_address="hodei.example:50051"))
    yield services
    store.close()


def test_the_image_filter_sends_a_job_where_its_image_is_allowed_and_says_why_not_elsewhere(
        fleet: OnDatabase) -> None:
    assert fleet.selection.select({}).selected == "plain", "no spec: the better-ranked provider"
    assert fleet.selection.select({"image": "python:3.12"}).selected == "jobs"
    assert fleet.selection.select({"command": ["true"]}).selected == "jobs"
    assert fleet.selection.select({"env": {"A": "1"}}).selected == "plain", "env runs anywhere"
    explained = fleet.selection.explain("plain", {"image": "python:3.12"}).text()
    assert "runs no job image: a static provider's workers run what its config names" in explained
    report = fleet.selection.select({"image": "python:3.11"})
    assert report.selected is None
    listed = {r["name"]: r for r in report.as_dict()["rejected"]}
    assert listed["jobs"]["reasons"][0]["filter"] == "image"
    assert "does not allow image python:3.11" in listed["jobs"]["reasons"][0]["message"]
    assert "allowed_images" in listed["jobs"]["reasons"][0]["hint"]


def test_the_plugin_receives_the_whole_spec_and_the_record_holds_secrets_masked(
        fleet: OnDatabase, hodei_database_url: str) -> None:
    worker = anyio.run(fleet.workers.provision, {
        "image": "registry.example.com/jobs/etl:7", "command": ["etl", "--day", "1"], "env": {"MODE": "batch"},
        "secret_env": {"DB_PASSWORD": SECRET}, "labels": {"team": "data"}, "timeout_seconds": 60})
    request = static_provider.REQUESTS[worker.id]
    assert (request.image, request.command, dict(request.env), dict(request.secret_env)) == (
        "registry.example.com/jobs/etl:7", ("etl", "--day", "1"), {"MODE": "batch"}, {"DB_PASSWORD": SECRET})
    assert (dict(request.labels), request.timeout_seconds) == ({"team": "data"}, 60)
    assert request.server_address == "hodei.example:50051" and request.token
    assert SECRET not in repr(request)
    engine = sa.create_engine(hodei_database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT requirements FROM workers")).scalar_one()
    finally:
        engine.dispose()
    text = stored if isinstance(stored, str) else json.dumps(stored)
    assert SECRET not in text and '"DB_PASSWORD": "***"' in text


def test_a_failure_quoting_a_secret_is_recorded_with_the_secret_masked(fleet: OnDatabase) -> None:
    fleet.store.update("jobs", _config_change({"allowed_images": ["python:3.12"],
                                               "fail_provision": f"engine refused env {SECRET}"}))
    with pytest.raises(NoProviderAvailable) as failed:
        anyio.run(fleet.workers.provision, {"image": "python:3.12", "secret_env": {"DB_PASSWORD": SECRET}})
    assert SECRET not in str(failed.value) and "engine refused env ***" in str(failed.value)
    [worker] = anyio.run(lambda: fleet.workers.find(everything=True))
    assert SECRET not in json.dumps(worker.document())
    # The error kept for the provider's cooldown (shown by `providers show`, selection, the API) too.
    kept = fleet.providers.get("jobs").state.last_provision_error
    assert kept == "RuntimeError: engine refused env ***"


def _config_change(config: dict[str, Any]) -> Any:
    from hodei.provider_change import ProviderChange

    return ProviderChange(fields={"config": config})


def test_the_reconciler_ends_a_worker_at_its_own_timeout(fleet: OnDatabase) -> None:
    short = anyio.run(fleet.workers.provision, {"image": "python:3.12", "timeout_seconds": 30})
    long = anyio.run(fleet.workers.provision, {"image": "python:3.12", "timeout_seconds": 3600})
    endless = anyio.run(fleet.workers.provision, {})
    with fleet.store.engine.begin() as connection:  # all started 40 s ago
        connection.execute(sa.text("UPDATE workers SET created_at = :at"),
                           {"at": datetime.now(UTC) - timedelta(seconds=40)})
    providers = {row.id: row.to_provider() for row in fleet.store.all()}

    async def call(func: Any, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    reconciler = Reconciler(fleet.store.pm, fleet.records, fleet.provisioner, WorkerSettings(),
                            providers=lambda: providers, call=call)
    anyio.run(reconciler.reconcile)
    states = {w.id: (w.state, w.reason) for w in anyio.run(lambda: fleet.workers.find(everything=True))}
    assert states[short.id] == (WorkerState.TERMINATED, "its job's timeout_seconds (30 s) ended")
    assert states[long.id][0] is WorkerState.RUNNING and states[endless.id][0] is WorkerState.RUNNING


# -- the CLI flags ------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(hodei_sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "hodei.toml"
    config.write_text("[plugins]\nallow = []\ndeny = []\n", encoding="utf-8")
    env = {"HODEI_DATABASE_URL": hodei_sqlite_url, "HODEI_CONFIG": str(config)}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    add = ["providers", "add", "jobs", "--type", "static", "--config", '{"allowed_images": ["python:*"]}']
    assert runner.invoke(main, add, env=env).exit_code == 0
    return env


def test_flags_fill_the_spec_over_the_file_and_the_secret_comes_from_the_environment(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "job.toml").write_text('image = "python:3.11"\nenv = { A = "file", B = "file" }\n', encoding="utf-8")
    args = ["workers", "provision", "-r", "job.toml", "--image", "python:3.12", "--env", "B=flag",
            "--secret-env", "DB_PASSWORD", "--command", "python -c 'print(1)'", "--label", "team=data",
            "--timeout", "120", "-o", "json"]
    result = CliRunner().invoke(main, args, env={**cli_env, "DB_PASSWORD": SECRET})
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout
    shown = json.loads(result.stdout)["requirements"]
    assert shown["image"] == "python:3.12" and shown["env"] == {"A": "file", "B": "flag"}
    assert shown["command"] == ["python", "-c", "print(1)"] and shown["secret_env"] == {"DB_PASSWORD": "***"}
    assert shown["labels"] == {"team": "data"} and shown["timeout_seconds"] == 120
    request = static_provider.REQUESTS[json.loads(result.stdout)["id"]]
    assert dict(request.secret_env) == {"DB_PASSWORD": SECRET}


@pytest.mark.parametrize("args, named", [
    (["--secret-env", "NOT_SET_ANYWHERE_9"], "NOT_SET_ANYWHERE_9 is not set"),
    (["--secret-env", f"DB_PASSWORD={SECRET}"], "give only the variable's name (DB_PASSWORD)"),
    (["--env", "NOEQUALS"], "expected KEY=VALUE"),
    (["--command", "python 'unclosed"], "cannot split"),
    (["--image", "python 3"], "image"),
])
def test_bad_flags_are_refused_naming_them_and_never_echo_a_secret(cli_env: dict[str, str], args: list[str],
                                                                   named: str) -> None:
    result = CliRunner().invoke(main, ["select", *args], env=cli_env)
    assert result.exit_code != 0 and named in result.stderr, result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_select_with_an_image_no_provider_allows_says_so(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["select", "--image", "ruby:3"], env=cli_env)
    assert result.exit_code == 3
    assert "image not allowed" in result.stdout and "ruby:3" in result.stdout


def test_requirements_defaults_have_no_spec() -> None:
    job = Requirements()
    assert (job.image, job.command, dict(job.env), dict(job.secret_env), job.timeout_seconds) == (
        None, (), {}, {}, None)
