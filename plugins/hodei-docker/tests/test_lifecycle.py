"""The backend hooks against a real Docker engine: what ends up on the engine, and what the hooks answer."""

from __future__ import annotations

import time
import uuid
from typing import Any

import docker.errors
import pytest
from hodei import HealthStatus, Provider, WorkerHandle, WorkerRequest
from hodei.testing.contract import LifecycleContract
from hodei_docker.client import EngineError
from hodei_docker.labels import MANAGED, PROVIDER_ID, WORKER_ID

MIB = 2**20


def request(cpu: float | None = None, memory: int | None = None) -> WorkerRequest:
    return WorkerRequest(worker_id=f"w-{uuid.uuid4().hex[:12]}", server_address="10.1.2.3:50051",
                         token=f"token-{uuid.uuid4().hex}", cpu=cpu, memory=memory)


class TestDockerLifecycleContract(LifecycleContract):
    provider_type = "docker"

    @pytest.fixture
    def live_provider(self, make_provider, docker_config) -> Provider:
        return make_provider(docker_config)


def our_containers(docker_api: Any, provider: Provider) -> list[dict[str, Any]]:
    return docker_api.containers(all=True, filters={"label": f"{PROVIDER_ID}={provider.id}"})


def test_provision_then_deprovision_leaves_nothing_behind(call, make_provider, docker_config, docker_api) -> None:
    provider = make_provider(docker_config)
    handle = call("hodei_provision", provider, request=request())
    assert docker_api.inspect_container(handle.backend_id)["State"]["Running"]

    assert call("hodei_deprovision", provider, handle=handle) is True

    assert our_containers(docker_api, provider) == []
    with pytest.raises(docker.errors.NotFound):
        docker_api.inspect_container(handle.backend_id)


@pytest.fixture
def user_network(docker_api: Any) -> Any:
    name = f"hodei-test-{uuid.uuid4().hex[:8]}"
    docker_api.create_network(name, driver="bridge")
    yield name
    docker_api.remove_network(name)


def test_the_container_gets_the_jobs_limits_env_labels_and_network(call, make_provider, docker_config, docker_api,
                                                                   user_network) -> None:
    provider = make_provider({**docker_config, "network": user_network, "labels": {"team": "ci"}})
    job = request(cpu=0.5, memory=128 * MIB)
    handle = call("hodei_provision", provider, request=job)
    try:
        container = docker_api.inspect_container(handle.backend_id)
    finally:
        call("hodei_deprovision", provider, handle=handle)

    assert container["State"]["Running"]
    host = container["HostConfig"]
    assert (host["NanoCpus"], host["Memory"]) == (500_000_000, 128 * MIB)
    assert host["NetworkMode"] == user_network
    assert list(container["NetworkSettings"]["Networks"]) == [user_network]
    assert host["Init"] is True
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    assert {k: env.get(k) for k in ("HODEI_WORKER_ID", "HODEI_PROVIDER_ID", "HODEI_SERVER_ADDRESS",
                                     "HODEI_WORKER_TOKEN")} == {
        "HODEI_WORKER_ID": job.worker_id, "HODEI_PROVIDER_ID": str(provider.id),
        "HODEI_SERVER_ADDRESS": "10.1.2.3:50051", "HODEI_WORKER_TOKEN": job.token}
    labels = container["Config"]["Labels"]
    assert {k: labels.get(k) for k in (MANAGED, PROVIDER_ID, WORKER_ID, "team")} == {
        MANAGED: "true", PROVIDER_ID: str(provider.id), WORKER_ID: job.worker_id, "team": "ci"}
    assert container["Name"] == f"/hodei-worker-{job.worker_id}"
    assert container["Config"]["Image"] == docker_config["default_image"]
    assert container["Config"]["Cmd"] == ["sleep", "3600"], "without `command`, the image's own command runs"


def test_default_resources_apply_when_the_job_asks_for_none(call, make_provider, docker_config, docker_api) -> None:
    provider = make_provider({**docker_config, "command": ["sleep", "1234"]})
    handle = call("hodei_provision", provider, request=request())
    try:
        container = docker_api.inspect_container(handle.backend_id)
    finally:
        call("hodei_deprovision", provider, handle=handle)
    assert (container["HostConfig"]["NanoCpus"], container["HostConfig"]["Memory"]) == (250_000_000, 64 * MIB)
    assert container["HostConfig"]["NetworkMode"] == "bridge"
    assert container["Config"]["Cmd"] == ["sleep", "1234"]


def test_two_providers_on_one_engine_never_see_each_others_workers(call, make_provider, docker_config) -> None:
    first, second = make_provider(docker_config), make_provider(docker_config)
    mine = call("hodei_provision", first, request=request())
    theirs = call("hodei_provision", second, request=request())
    try:
        listed_first = call("hodei_list_workers", first)
        listed_second = call("hodei_list_workers", second)
        counted = (call("hodei_capacity", first).active_workers, call("hodei_capacity", second).active_workers)
    finally:
        call("hodei_deprovision", first, handle=mine)
        call("hodei_deprovision", second, handle=theirs)
    assert [(w.worker_id, w.backend_id, w.state) for w in listed_first] == [(mine.worker_id, mine.backend_id, "running")]
    assert [w.worker_id for w in listed_second] == [theirs.worker_id]
    assert listed_first[0].created_at is not None
    assert counted == (1, 1)


def test_capacity_reports_the_engines_cpus_and_memory(call, make_provider, docker_config, docker_api) -> None:
    info = docker_api.info()
    found = call("hodei_capacity", make_provider(docker_config))
    assert (found.per_worker.cpu, found.per_worker.memory) == (float(info["NCPU"]), info["MemTotal"])


def test_capabilities_in_the_config_win_over_what_the_engine_reports(call, make_provider, docker_config,
                                                                    docker_api) -> None:
    provider = make_provider({**docker_config, "capabilities": {"cpu": 64, "gpu": 2}})
    found = call("hodei_capacity", provider)
    assert (found.per_worker.cpu, found.per_worker.memory, found.per_worker.gpu) == (
        64.0, docker_api.info()["MemTotal"], 2)


def test_a_worker_that_cannot_start_is_removed_and_the_error_says_why(call, make_provider, docker_config,
                                                                       docker_api) -> None:
    # Without an init the engine itself execs the command, so a missing binary fails the start.
    provider = make_provider({**docker_config, "command": ["/no/such/worker"], "init": False})
    with pytest.raises(EngineError) as info:
        call("hodei_provision", provider, request=request())
    assert "cannot start worker" in str(info.value) and "/no/such/worker" in str(info.value)
    assert our_containers(docker_api, provider) == []


def test_deprovision_gives_the_worker_its_grace_period_then_kills_it(call, make_provider, docker_config,
                                                                       docker_api) -> None:
    # Without an init, `sleep` is PID 1 and PID 1 ignores SIGTERM: only the kill after the grace ends it.
    stubborn = make_provider({**docker_config, "init": False, "stop_grace_seconds": 2})
    handle = call("hodei_provision", stubborn, request=request())
    started = time.monotonic()
    call("hodei_deprovision", stubborn, handle=handle)
    assert time.monotonic() - started >= 1.9
    assert our_containers(docker_api, stubborn) == []

    # With Docker's init as PID 1 (the default), SIGTERM reaches the worker, which ends at once.
    polite = make_provider({**docker_config, "stop_grace_seconds": 2})
    handle = call("hodei_provision", polite, request=request())
    started = time.monotonic()
    call("hodei_deprovision", polite, handle=handle)
    assert time.monotonic() - started < 1.5
    assert our_containers(docker_api, polite) == []


def test_deprovision_of_a_worker_removed_behind_our_back_is_success(call, make_provider, docker_config,
                                                                    docker_api) -> None:
    provider = make_provider(docker_config)
    handle = call("hodei_provision", provider, request=request())
    docker_api.remove_container(handle.backend_id, force=True)
    assert call("hodei_deprovision", provider, handle=handle) is True
    assert call("hodei_deprovision", provider, handle=WorkerHandle("never-was", "f" * 64)) is True


def test_an_engine_reached_over_tcp_runs_workers_too(call, make_provider, docker_config, tcp_relay,
                                                     docker_api) -> None:
    config = {k: v for k, v in docker_config.items() if k != "socket_path"}
    provider = make_provider({**config, "endpoint": tcp_relay})
    assert call("hodei_health_check", provider).status == HealthStatus.HEALTHY
    handle = call("hodei_provision", provider, request=request())
    assert [w.worker_id for w in call("hodei_list_workers", provider)] == [handle.worker_id]
    call("hodei_deprovision", provider, handle=handle)
    assert our_containers(docker_api, provider) == []
