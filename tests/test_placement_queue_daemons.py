"""The placement queue with real daemons (``hodei serve`` processes) and the CLI through ``--server``: a
request waiting at one daemon is placed the moment a slot frees, whether this daemon or another one
(PostgreSQL: NOTIFY hodei_placement) freed it. The sweep is set to ten minutes, so only an event can
place it in time."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hodei import database
from hodei.plugins import make_plugin_manager
from hodei.store import Store
from hodei.testing.serve import Served, clean_environment, hodei_command, start


def write_config(folder: Path, name: str, url: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f"""
[database]
url = "{url}"
[plugins]
allow = ["static"]
enable = ["static"]
[api]
listen = "127.0.0.1:0"
[metrics]
listen = ""
[health]
interval_seconds = 3600.0
[daemon]
shutdown_grace_seconds = 2.0
[workers]
reconcile_seconds = 3600.0
queue_sweep_seconds = 600.0
""")
    return path


def hodei(config: Path, daemon: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hodei_command(), "--server", str(daemon.address), *args], capture_output=True, text=True,
                          env=clean_environment(HODEI_CONFIG=str(config)), timeout=60, check=False)


def waiting(config: Path, daemon: Served, job: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*hodei_command(), "--server", str(daemon.address), "workers", "provision", "-r", str(job),
                             "--wait", "120", "--request-id", "queued-job", "-o", "json"],
                            env=clean_environment(HODEI_CONFIG=str(config)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def until_queued(config: Path, daemon: Served) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    while True:
        listed = json.loads(hodei(config, daemon, "queue", "-o", "json").stdout)
        if listed:
            return list(listed)
        assert time.monotonic() < deadline, "the request never showed in the queue"
        time.sleep(0.1)


@pytest.fixture
def one_slot(hodei_database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    store.close()
    job = tmp_path / "job.json"
    job.write_text("{}", encoding="utf-8")
    yield hodei_database_url, job


def place_after_release(config: Path, at: Served, release_at: Served, job: Path) -> float:
    first = json.loads(hodei(config, at, "workers", "provision", "-r", str(job), "-o", "json").stdout)
    client = waiting(config, at, job)
    try:
        [entry] = until_queued(config, at)
        assert (entry["position"], entry["id"]) == (1, "queued-job")
        assert "at capacity" in str(entry["reasons"])
        freed = time.monotonic()
        released = hodei(config, release_at, "workers", "release", str(first["id"]))
        assert released.returncode == 0, released.stderr
        out, err = client.communicate(timeout=60)
        placed_after = time.monotonic() - freed
    finally:
        client.kill()
    assert client.returncode == 0, err
    assert json.loads(out)["provider"] == "one"
    assert json.loads(hodei(config, at, "queue", "-o", "json").stdout) == []
    return placed_after


def test_a_waiting_request_is_placed_when_its_daemon_frees_a_slot(one_slot: tuple[str, Path], tmp_path: Path) -> None:
    url, job = one_slot
    config = write_config(tmp_path, "d", url)
    daemon = start(config)
    try:
        daemon.wait_ready()
        assert place_after_release(config, daemon, daemon, job) < 10, "placed by the release, not the sweep"
    finally:
        daemon.stop()


def test_a_slot_freed_at_another_daemon_places_the_request(hodei_postgres_url: str, tmp_path: Path) -> None:
    engine = database.create_engine(hodei_postgres_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    store.close()
    job = tmp_path / "job.json"
    job.write_text("{}", encoding="utf-8")
    configs = [write_config(tmp_path, f"d{i}", hodei_postgres_url) for i in range(3)]
    daemons = [start(config) for config in configs]
    try:
        for daemon in daemons:
            daemon.wait_ready()
        # Three replicas: the request waits at the first, the slot is freed at the third.
        assert place_after_release(configs[0], daemons[0], daemons[2], job) < 10, "placed by NOTIFY, not the sweep"
    finally:
        for daemon in daemons:
            daemon.stop()


@pytest.mark.parametrize("how", ["kill", "terminate"])
def test_a_waiting_request_survives_its_daemon_restarting(one_slot: tuple[str, Path], tmp_path: Path, how: str) -> None:
    """The daemon is SIGKILLed or stopped (SIGTERM) while a request waits: its row stays (and is listed on
    the database directly); the client reconnects to the restarted daemon with the same request id, keeps its
    arrival, and is placed when a slot frees."""
    url, job = one_slot
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path, "d", url)
    config.write_text(config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"', 1))
    daemon = start(config)
    client = None
    try:
        daemon.wait_ready()
        first = json.loads(hodei(config, daemon, "workers", "provision", "-r", str(job), "-o", "json").stdout)
        client = waiting(config, daemon, job)
        [before] = until_queued(config, daemon)
        getattr(daemon.process, how)()
        daemon.process.wait(30)
        local = subprocess.run([*hodei_command(), "queue", "-o", "json"], capture_output=True, text=True, timeout=60,
                               env=clean_environment(HODEI_CONFIG=str(config)), check=False)
        assert [(e["id"], e["enqueued_at"]) for e in json.loads(local.stdout)] == [("queued-job", before["enqueued_at"])]
        daemon = start(config)
        daemon.wait_ready()
        deadline = time.monotonic() + 30
        while True:  # the client is back: the row is confirmed by the new daemon, with its first arrival
            [entry] = json.loads(hodei(config, daemon, "queue", "-o", "json").stdout) or [{"waits_at": ""}]
            if entry["waits_at"] and entry["waits_at"] != before["waits_at"]:
                break
            assert time.monotonic() < deadline, "the client did not come back"
            time.sleep(0.2)
        assert entry["enqueued_at"] == before["enqueued_at"]
        hodei(config, daemon, "workers", "release", str(first["id"]))
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err
        assert json.loads(out)["provider"] == "one"
    finally:
        if client is not None:
            client.kill()
        daemon.stop()


def test_a_burst_of_waiting_requests_is_taken_whole(one_slot: tuple[str, Path], tmp_path: Path) -> None:
    """Thousands of provisions arriving at once all wait in the queue: none is cancelled by the transport
    while the daemon takes them (gRPC cancels calls beyond its own pending-call limit unless told more)."""
    import asyncio

    import grpc
    from google.protobuf import struct_pb2
    from hodei.api.v1 import workers_pb2 as wpb
    from hodei.api.v1 import workers_pb2_grpc as wpb_grpc

    url, job = one_slot
    config = write_config(tmp_path, "d", url)
    daemon = start(config)
    burst = 2500
    try:
        daemon.wait_ready()
        hodei(config, daemon, "workers", "provision", "-r", str(job))  # the only slot taken: every call waits

        async def send() -> list[str]:
            channels = [grpc.aio.insecure_channel(str(daemon.address), options=[("grpc.use_local_subchannel_pool", 1)])
                        for _ in range(32)]
            stubs = [wpb_grpc.WorkerServiceStub(c) for c in channels]
            request = wpb.ProvisionWorkerRequest(requirements=struct_pb2.Struct(), wait_seconds=4)

            async def one(i: int) -> str:
                try:
                    await stubs[i % len(stubs)].ProvisionWorker(request, timeout=60)
                    return "placed"
                except grpc.aio.AioRpcError as exc:
                    return exc.code().name

            try:
                return list(await asyncio.gather(*(one(i) for i in range(burst))))
            finally:
                for channel in channels:
                    await channel.close()

        outcomes = asyncio.run(send())
    finally:
        daemon.stop()
    # Each waited its 4 s and was told no provider became free: none cancelled on arrival.
    assert {o: outcomes.count(o) for o in set(outcomes)} == {"FAILED_PRECONDITION": burst}
