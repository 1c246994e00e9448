"""Workers on the real Docker engine: provision, release, and the orphan a killed process leaves.

Needs a Docker engine (scripts/start-docker); skipped with the reason without one, failing under
HODEI_REQUIRE_BACKENDS=1. The worker image is imported from the host's busybox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import anyio
import pytest
from hodei import database
from hodei.checks import check_provider
from hodei.daemon import Daemon
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.settings import Settings, WorkerSettings
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.testing import backend_unavailable
from hodei.workers import WorkerRecords, WorkerState

SOCKET = os.environ.get("HODEI_TEST_DOCKER_SOCKET", "/var/run/docker.sock")


@pytest.fixture(scope="module")
def docker_api() -> Any:
    import docker  # a dependency of hodei-docker: missing, it is an install error, not a skip

    try:
        api = docker.APIClient(base_url=f"unix://{SOCKET}", version="auto", timeout=10)
    except docker.errors.DockerException as exc:
        backend_unavailable(f"Docker engine unreachable at unix://{SOCKET} ({exc}); start one with scripts/start-docker")
    yield api
    api.close()


@pytest.fixture(scope="module")
def image(docker_api: Any) -> str:
    from hodei_docker.testing import ensure_test_image

    return ensure_test_image(docker_api)


@pytest.fixture
def store(hodei_sqlite_url: str, image: str, docker_api: Any) -> Any:
    engine = database.create_engine(hodei_sqlite_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager())
    store.create({"name": "engine", "provider_type": "docker", "max_workers": 5, "config": {
        "socket_path": SOCKET, "default_image": image, "stop_grace_seconds": 2,
        "default_resources": {"cpu_limit": "250m", "memory_limit": "64Mi"}}})
    yield store
    provider_id = str(store.get("engine").id)
    for container in docker_api.containers(all=True, filters={"label": f"hodei.provider-id={provider_id}"}):
        docker_api.remove_container(container["Id"], force=True)
    store.close()


def containers(docker_api: Any, provider_id: str) -> list[dict[str, Any]]:
    return docker_api.containers(all=True, filters={"label": f"hodei.provider-id={provider_id}"})


def test_provision_runs_a_labelled_container_and_release_removes_it(store: Any, docker_api: Any) -> None:
    chain = build_chain(store.pm)
    services = on_database(store, chain, WorkerSettings(server_address="10.0.0.1:50051"))
    provisioner = services.provisioner
    provider_id = str(store.get("engine").id)
    checked = anyio.run(check_provider, store.pm, store.get("engine").to_provider(), 10.0)
    services.providers.record_check("engine", capacity=checked.capacity)  # what one worker can get, for the resources filter
    worker = anyio.run(provisioner.provision, chain.parse_requirements({"cpu": 0.5, "memory": "32Mi"})).worker
    [container] = containers(docker_api, provider_id)
    assert container["Id"] == worker.backend_id and container["State"] == "running"
    assert container["Labels"]["hodei.worker-id"] == worker.id and container["Labels"]["hodei.managed"] == "true"
    inspected = docker_api.inspect_container(container["Id"])
    env = dict(item.split("=", 1) for item in inspected["Config"]["Env"])
    assert env["HODEI_WORKER_ID"] == worker.id and env["HODEI_SERVER_ADDRESS"] == "10.0.0.1:50051"
    assert inspected["HostConfig"]["NanoCpus"] == 500_000_000 and inspected["HostConfig"]["Memory"] == 32 * 2**20
    released = anyio.run(provisioner.release, worker.id)
    assert released.state is WorkerState.TERMINATED
    assert containers(docker_api, provider_id) == []


KILLED_MID_PROVISION = r"""
import os, signal, sys, anyio
from hodei import database
from hodei.checks import check_provider
from hodei.calls import call_provider_hook
from hodei.domain import WorkerRequest
from hodei.plugins import make_plugin_manager
from hodei.store import Store
from hodei.workers import WorkerRecords

store = Store(database.create_engine(sys.argv[1]), make_plugin_manager())
provider = store.get("engine").to_provider()
WorkerRecords(store.engine).reserve(provider.id, worker_id="doomed", token="t", requirements={})

async def main():
    request = WorkerRequest(worker_id="doomed", server_address="127.0.0.1:50051", token="t")
    await call_provider_hook(store.pm, "hodei_provision", provider, 60, request=request)
    os.kill(os.getpid(), signal.SIGKILL)  # the container exists; the database never hears of it

anyio.run(main)
"""


def test_a_process_killed_between_container_and_database_write_leaks_nothing(store: Any, docker_api: Any,
                                                                               hodei_sqlite_url: str) -> None:
    provider_id = str(store.get("engine").id)
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_PROVISION, hodei_sqlite_url], capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    [orphan] = containers(docker_api, provider_id)
    assert orphan["Labels"]["hodei.worker-id"] == "doomed"
    records = WorkerRecords(store.engine)
    assert records.get("doomed").state is WorkerState.PROVISIONING
    assert ProviderStates(store.engine).of("engine").reserved_workers == 1, "the slot is still held"

    settings = Settings.model_validate({
        "database": {"url": hodei_sqlite_url},
        "health": {"interval_seconds": 60},
        "daemon": {"poll_seconds": 0.1},
        "workers": {"reconcile_seconds": 0.2, "reservation_timeout_seconds": 0.5, "orphan_grace_seconds": 0},
        "api": {"listen": "127.0.0.1:0"}, "metrics": {"listen": ""},
    })

    async def restart() -> None:
        daemon = Daemon(settings)
        async with anyio.create_task_group() as group:
            group.start_soon(daemon.run)
            deadline = time.monotonic() + 30
            while containers(docker_api, provider_id) or records.get("doomed").state is not WorkerState.FAILED:
                assert time.monotonic() < deadline, "the daemon did not clean up"
                await anyio.sleep(0.1)
            daemon.shutdown()

    anyio.run(restart)
    assert "reservation expired" in records.get("doomed").reason
    assert ProviderStates(store.engine).of("engine").reserved_workers == 0 and ProviderStates(store.engine).of("engine").active_workers == 0
