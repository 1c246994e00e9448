"""Workers through the API: three `hodei serve` processes on one PostgreSQL database, 200 provision requests at
once against a provider with max_workers = 20; and `hodei --server ... workers` as an operator uses it (SQLite
and PostgreSQL). One SQLite database serves one daemon (a second refuses, tests/test_replicas.py); three
processes provisioning on one SQLite file are tests/test_workers_concurrency.py.

The `static` provider keeps its workers in each daemon's memory, so the reconcilers are slowed
right down here: one daemon would otherwise find the others' workers missing from its "backend".
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hodei import database
from hodei.api.v1 import workers_pb2 as wpb
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
from hodei.plugins import make_plugin_manager
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.testing.serve import clean_environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(config: Path) -> dict[str, str]:
    env = clean_environment()
    env["HODEI_CONFIG"] = str(config)
    return env


def serving(address: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"no daemon serving at {address}")


@pytest.fixture
def daemons(tmp_path: Path, hodei_database_url: str, request: pytest.FixtureRequest) -> Iterator[list[str]]:
    count = getattr(request, "param", 1)
    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.create({"name": "solo", "provider_type": "static", "max_workers": 20})
    store.close()
    addresses, processes = [], []
    for i in range(count):
        address = f"127.0.0.1:{free_port()}"
        config = tmp_path / f"hodei-{i}.toml"
        config.write_text(
            f'[database]\nurl = "{hodei_database_url}"\n[api]\nlisten = "{address}"\n[metrics]\nlisten = ""\n'
            "[health]\ninterval_seconds = 3600\n[workers]\nreconcile_seconds = 3600\n")
        processes.append(subprocess.Popen([sys.executable, "-m", "hodei", "serve", "--migrate"],
                                          env=environment(config), cwd=tmp_path, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
        addresses.append(address)
    try:
        for address in addresses:
            serving(address)
        yield addresses
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                assert process.wait(20) == 0, process.stderr.read()
            finally:
                if process.poll() is None:
                    process.kill()


# Replicas share PostgreSQL only: on SQLite a second `hodei serve` refuses to start (tests/test_replicas.py).
@pytest.mark.parametrize("hodei_database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("daemons", [3], indirect=True)
def test_three_daemons_200_requests_exactly_20_workers(daemons: list[str], hodei_database_url: str) -> None:
    channels = [grpc.insecure_channel(address) for address in daemons]
    stubs = [wpb_grpc.WorkerServiceStub(channel) for channel in channels]

    def provision(i: int) -> tuple[str, str]:
        try:
            worker = stubs[i % 3].ProvisionWorker(wpb.ProvisionWorkerRequest(), timeout=120)
            return "ok", worker.id
        except grpc.RpcError as error:
            return error.code().name, error.details()

    with ThreadPoolExecutor(max_workers=200) as pool:
        outcomes = list(pool.map(provision, range(200)))
    succeeded = [detail for code, detail in outcomes if code == "ok"]
    refused = [(code, detail) for code, detail in outcomes if code != "ok"]
    assert len(succeeded) == 20, f"{len(succeeded)} workers for max_workers = 20"
    assert {code for code, _ in refused} == {"FAILED_PRECONDITION"}
    assert all("at capacity" in detail for _, detail in refused), {detail for _, detail in refused}

    engine = database.create_engine(hodei_database_url)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    assert ProviderStates(engine).of("solo").active_workers == 20
    with ThreadPoolExecutor(max_workers=20) as pool:
        released = list(pool.map(lambda i: stubs[i % 3].ReleaseWorker(
            wpb.ReleaseWorkerRequest(worker_id=succeeded[i]), timeout=60), range(20)))
    assert {w.state for w in released} == {"TERMINATED"}
    after = ProviderStates(engine).of("solo")
    assert after.active_workers == 0 and after.reserved_workers == 0
    listed = stubs[0].ListWorkers(wpb.ListWorkersRequest(), timeout=10)
    assert list(listed.workers) == []
    store.close()
    for channel in channels:
        channel.close()


def test_hodei_workers_through_the_server(daemons: list[str], tmp_path: Path) -> None:
    [address] = daemons
    config = tmp_path / "hodei-0.toml"

    def hodei(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hodei", "--server", address, *args], env=environment(config),
                              cwd=tmp_path, input=input, capture_output=True, text=True, timeout=60)

    made = hodei("workers", "provision", "-r", "-", "-o", "json", input='{"cpu": 0}')
    assert made.returncode == 0, made.stderr
    worker = json.loads(made.stdout)
    assert (worker["provider"], worker["state"]) == ("solo", "RUNNING")
    assert [a["outcome"] for a in worker["attempts"]] == ["provisioned"]
    shown = json.loads(hodei("workers", "show", worker["id"], "-o", "json").stdout)
    assert shown == worker
    listed = hodei("workers", "list").stdout
    assert worker["id"] in listed and "RUNNING" in listed

    nothing = hodei("workers", "provision", "-r", "-", "-o", "json", input='{"required_labels": {"gpu": "a100"}}')
    assert nothing.returncode == 3
    assert "missing label gpu=a100" in json.loads(nothing.stdout)["summary"]
    bad = hodei("workers", "provision", "-r", "-", input='{"cpu": "lots"}')
    assert bad.returncode == 1 and "cpu" in bad.stderr and "Traceback" not in bad.stderr

    released = hodei("workers", "release", worker["id"], "-o", "json")
    assert json.loads(released.stdout)["state"] == "TERMINATED"
    assert hodei("workers", "release", worker["id"]).returncode == 0, "release is idempotent"
    missing = hodei("workers", "show", "no-such-worker")
    assert missing.returncode == 1 and "no worker 'no-such-worker'" in missing.stderr
    everything = json.loads(hodei("workers", "list", "--all", "-o", "json").stdout)
    assert [(w["id"], w["state"]) for w in everything] == [(worker["id"], "TERMINATED")]
