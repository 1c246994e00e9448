"""The job's own worker on the real Docker engine: its image, command, env, limits and labels, as
``docker inspect`` shows them; an image the provider does not allow is refused at selection, with the
reason; a secret variable reaches the container and nothing else (``workers show``, logs, spans,
metrics, API messages).

Two images are imported from the host's busybox (no registry needed); skipped without an engine,
failing under HODEI_REQUIRE_BACKENDS=1.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from hodei import database
from hodei.api import convert
from hodei.checks import check_provider
from hodei.cli import main
from hodei.domain import HealthStatus
from hodei.observability.telemetry import Telemetry
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import OnDatabase, on_database
from hodei.settings import WorkerSettings
from hodei.store import Store
from hodei.testing import backend_unavailable
from hodei.workers import NoProviderAvailable
from hodei_docker.testing import ensure_test_image
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

SECRET = "s3cr3t-value-7f4e2a9b"
JOB_A = "hodei-test-job-a:1"
JOB_B = "hodei-test-job-b:2"


@pytest.fixture(scope="module")
def job_images(docker_api: Any) -> tuple[str, str]:
    from hodei_docker.testing import BusyboxUnavailable

    try:
        return ensure_test_image(docker_api, JOB_A), ensure_test_image(docker_api, JOB_B)
    except BusyboxUnavailable as exc:
        backend_unavailable(f"cannot build the job images: {exc}")  # a failure when backends are required
        raise


@pytest.fixture
def fleet(hodei_sqlite_url: str, docker_socket: str, worker_image: str, job_images: tuple[str, str],
          docker_api: Any) -> Iterator[tuple[OnDatabase, Telemetry, InMemorySpanExporter]]:
    """One Docker provider that allows job A's image exactly and any tag of job B's (a glob)."""
    engine = database.create_engine(hodei_sqlite_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager())
    store.create({"name": "engine", "provider_type": "docker", "max_workers": 5, "config": {
        "socket_path": docker_socket, "default_image": worker_image, "stop_grace_seconds": 1,
        "allowed_images": [JOB_A, "hodei-test-job-b:*"],
        "default_resources": {"cpu_limit": "250m", "memory_limit": "64Mi"}}})
    services = on_database(store, build_chain(store.pm), WorkerSettings(server_address="10.0.0.7:50051"))
    checked = anyio.run(check_provider, store.pm, store.get("engine").to_provider(), 10.0)
    services.providers.record_check("engine", capacity=checked.capacity)
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(span_exporter=exporter)
    services.provisioner.telemetry = telemetry
    yield services, telemetry, exporter
    provider_id = str(store.get("engine").id)
    for container in docker_api.containers(all=True, filters={"label": f"hodei.provider-id={provider_id}"}):
        docker_api.remove_container(container["Id"], force=True)
    store.close()


def provision(services: OnDatabase, requirements: dict[str, Any]) -> Any:
    return anyio.run(services.workers.provision, requirements)


def inspect(docker_api: Any, worker: Any) -> dict[str, Any]:
    inspected: dict[str, Any] = docker_api.inspect_container(worker.backend_id)
    return inspected


def environment(inspected: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in inspected["Config"]["Env"])


def test_two_jobs_run_their_own_images_commands_env_limits_and_labels(fleet: Any, docker_api: Any) -> None:
    services, _, _ = fleet
    a = provision(services, {"image": JOB_A, "command": ["sleep", "1001"], "env": {"MODE": "a"},
                             "labels": {"team": "alpha"}, "cpu": 0.5, "memory": "32Mi"})
    b = provision(services, {"image": JOB_B, "command": ["sh", "-c", "sleep 1002"], "env": {"MODE": "b"},
                             "labels": {"team": "beta"}, "memory": "48Mi"})
    first, second = inspect(docker_api, a), inspect(docker_api, b)

    assert first["Config"]["Image"] == JOB_A and second["Config"]["Image"] == JOB_B
    # The job's command is what runs: the image's CMD (sleep 3600) is not.
    assert first["Config"]["Entrypoint"] == ["sleep", "1001"] and not first["Config"]["Cmd"]
    assert second["Config"]["Entrypoint"] == ["sh", "-c", "sleep 1002"]
    assert first["State"]["Running"] and second["State"]["Running"]
    assert first["Path"] == "sleep" and first["Args"] == ["1001"]

    env_a, env_b = environment(first), environment(second)
    assert env_a["MODE"] == "a" and env_b["MODE"] == "b"
    # The connection contract beside the job's env.
    assert env_a["HODEI_WORKER_ID"] == a.id and env_a["HODEI_SERVER_ADDRESS"] == "10.0.0.7:50051"
    assert env_a["HODEI_WORKER_TOKEN"] and env_a["HODEI_WORKER_TOKEN"] != env_b["HODEI_WORKER_TOKEN"]

    assert first["HostConfig"]["NanoCpus"] == 500_000_000 and first["HostConfig"]["Memory"] == 32 * 2**20
    assert second["HostConfig"]["NanoCpus"] == 250_000_000 and second["HostConfig"]["Memory"] == 48 * 2**20

    assert first["Config"]["Labels"]["team"] == "alpha" and second["Config"]["Labels"]["team"] == "beta"
    assert first["Config"]["Labels"]["hodei.worker-id"] == a.id

    # The worker record keeps the spec it was started with.
    stored = anyio.run(services.workers.get, a.id).requirements
    assert (stored["image"], stored["command"], stored["env"]) == (JOB_A, ["sleep", "1001"], {"MODE": "a"})

    for worker in (a, b):
        anyio.run(services.workers.release, worker.id, "done")
    assert docker_api.containers(all=True, filters={"label": "hodei.worker-id=" + a.id}) == []


def test_without_an_image_the_worker_runs_the_default_image_and_its_own_command(fleet: Any, docker_api: Any,
                                                                               worker_image: str) -> None:
    services, _, _ = fleet
    inspected = inspect(docker_api, provision(services, {"env": {"MODE": "default"}}))
    assert inspected["Config"]["Image"] == worker_image
    assert inspected["Config"]["Cmd"] == ["sleep", "3600"] and not inspected["Config"]["Entrypoint"]
    assert environment(inspected)["MODE"] == "default"


def test_an_allowed_job_image_that_cannot_be_pulled_is_the_jobs_failure_not_the_providers(
        fleet: Any, docker_api: Any) -> None:
    """The engine answers, the job's image is allowed (job B's glob) but exists nowhere: the request
    fails saying so, the provider stays healthy and ACTIVE, and other tenants' jobs still run there."""
    services, _, _ = fleet
    for _ in range(5):
        with pytest.raises(NoProviderAvailable) as info:
            provision(services, {"image": "hodei-test-job-b:never-built"})
        assert "the job cannot start" in str(info.value)
        assert "hodei-test-job-b:never-built" in str(info.value) and "cannot be pulled" in str(info.value)
    assert services.states.of("engine").health is not HealthStatus.UNHEALTHY
    assert services.store.get("engine").status == "ACTIVE"
    worker = provision(services, {"image": JOB_A, "command": ["sleep", "1003"]})
    assert inspect(docker_api, worker)["State"]["Running"]
    anyio.run(services.workers.release, worker.id, "done")


def test_an_image_the_provider_does_not_allow_is_refused_at_selection_with_the_reason(
        fleet: Any, docker_api: Any, worker_image: str) -> None:
    services, _, _ = fleet
    job = {"image": "hodei-test-job-c:1"}
    report = services.selection.select(job)
    assert report.selected is None
    text = report.text()
    assert "image not allowed" in text and "hodei-test-job-c:1" in text
    explained = services.selection.explain("engine", job).text()
    assert f"its allowed_images are {JOB_A}, hodei-test-job-b:*" in explained
    assert "config.allowed_images" in explained  # the hint
    with pytest.raises(NoProviderAvailable, match="image not allowed"):
        provision(services, job)
    assert docker_api.containers(all=True, filters={"ancestor": "hodei-test-job-c:1"}) == []
    # The glob takes any tag of job B's repository; the default image is allowed as ever.
    assert services.selection.select({"image": "hodei-test-job-b:other"}).selected == "engine"
    assert services.selection.select({"image": worker_image}).selected is None, \
        "allowed_images given: only those, the default image is not added"


def test_a_secret_variable_reaches_the_container_and_nothing_else(
        fleet: Any, docker_api: Any, hodei_sqlite_url: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    services, telemetry, exporter = fleet
    with caplog.at_level(logging.DEBUG):
        worker = provision(services, {"image": JOB_A, "env": {"MODE": "visible"}, "secret_env": {"API_KEY": SECRET}})
    assert environment(inspect(docker_api, worker))["API_KEY"] == SECRET  # the backend's concern: it must run

    assert worker.requirements["secret_env"] == {"API_KEY": "***"}
    assert SECRET not in repr(worker) and SECRET not in caplog.text
    config = tmp_path / "hodei.toml"
    config.write_text("[plugins]\nallow = []\ndeny = []\n", encoding="utf-8")
    env = {"HODEI_DATABASE_URL": hodei_sqlite_url, "HODEI_CONFIG": str(config)}
    for output in ("table", "json"):
        shown = CliRunner().invoke(main, ["workers", "show", worker.id, "-o", output], env=env)
        assert shown.exit_code == 0, shown.stderr
        assert SECRET not in shown.stdout and "API_KEY" in shown.stdout
    table = CliRunner().invoke(main, ["workers", "show", worker.id], env=env).stdout
    assert re.search(r"^secret_env: API_KEY=\*\*\*$", table, re.M) and re.search(rf"^image: +{JOB_A}$", table, re.M)
    message = convert.worker_message(anyio.run(services.workers.get, worker.id))
    assert SECRET.encode() not in message.SerializeToString()
    spans = "".join(span.to_json() for span in exporter.get_finished_spans())
    assert "hodei.provision" in spans and SECRET not in spans
    metrics = generate_latest(telemetry.registry).decode()
    assert "hodei_provision" in metrics
    assert not any(word in metrics for word in (SECRET, "API_KEY", "visible", JOB_A)), \
        "no image or env in metric labels"


HOSTILE = ["p\u00e4ssw\u00f6rd-\u00fc\u00df-4e1a", 'q"uote-\'single\'-7b2c', "back\\slash-and/slash-9f3d",
           "sp ace&amp=plus+percent%-2a6e"]


@pytest.mark.parametrize("secret", HOSTILE)
def test_a_secret_in_any_encoding_reaches_the_container_and_no_log_line(fleet: Any, docker_api: Any,
                                                                         secret: str) -> None:
    """With `--log-level debug`: the lines Hodei writes (JSON) hold no encoding of the value a library
    could have logged (JSON escapes, a repr, URL encoding, base64)."""
    import io

    from hodei.observability.logs import make_handler
    from hodei.redaction import secret_forms

    services, _, _ = fleet
    written = io.StringIO()
    handler, root = make_handler("json", written), logging.getLogger()
    root.addHandler(handler)
    level, root.level = root.level, logging.DEBUG
    try:
        worker = provision(services, {"image": JOB_A, "secret_env": {"API_KEY": secret}})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert environment(inspect(docker_api, worker))["API_KEY"] == secret
    assert "worker" in written.getvalue(), "the provisioning was logged"
    leaked = sorted(form for form in secret_forms(secret) if form in written.getvalue())
    assert not leaked, leaked
