"""End-to-end provisioning: Hodei's own overhead (``static`` provider) and Docker against the SDK.

Rerun: .venv/bin/python bench/provision.py [--postgres URL] [--count 200] [--docker-workers 20] [--no-api]

Two ways in, both to a daemon started for the run over the same providers: through the gRPC API
of a `hodei serve` subprocess (a client's view: the request, selection, the reservation, the
plugin, the database writes, the answer), and in-process through the workers service of a
``hodei.daemon.Daemon`` running in this process (``daemon.workers``: the path the API's
ProvisionWorker and ReleaseWorker call, without gRPC; its selection recorded in the daemon's
telemetry, its database calls through the daemon's database link).

* static: select, reserve the slot in the database, call the plugin (which does nothing), record
  the handle; then release. Sequential (latency) and 20 at a time (throughput). This is Hodei's
  whole cost per worker.
* docker: the same path with the real Docker engine, against creating and starting the same
  container directly with the Docker SDK in the same run (interleaved, so both meet the engine in
  the same state). Target: Hodei within 1.3x of the direct SDK calls.
"""

from __future__ import annotations

import os
import sys

# bench/docker.py would shadow the `docker` SDK for a script run from this folder.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from hodei import database
from hodei.daemon import Daemon
from hodei.plugins import make_plugin_manager
from hodei.services.workers import LocalWorkers
from hodei.settings import Settings
from hodei.store import Store
from hodei.testing.databases import scratch_database

SOCKET = os.environ.get("HODEI_TEST_DOCKER_SOCKET", "/var/run/docker.sock")
STATIC_JOB = {"required_labels": {"backend": "static"}}
DOCKER_JOB = {"cpu": 0.25, "memory": "64Mi", "required_labels": {"backend": "docker"}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def create_providers(url: str, count: int, docker_workers: int) -> str | None:
    """The run's providers, used by both ways in: ``static`` and, unless 0 Docker workers, ``docker``.
    Returns the Docker test image (None without Docker)."""
    engine = database.create_engine(url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    try:
        store.create({"name": "static", "provider_type": "static", "max_workers": count + 10,
                      "required_labels": {"backend": "static"}})
        if not docker_workers:
            return None
        import docker
        from hodei_docker.testing import ensure_test_image

        api = docker.APIClient(base_url=f"unix://{SOCKET}", version="auto", timeout=60)
        image = ensure_test_image(api)
        api.close()
        store.create({"name": "docker", "provider_type": "docker", "max_workers": docker_workers + 5,
                      "required_labels": {"backend": "docker"},
                      "config": {"socket_path": SOCKET, "default_image": image, "stop_grace_seconds": 1,
                                 "default_resources": {"cpu_limit": "250m", "memory_limit": "64Mi"}}})
        return image
    finally:
        store.close()


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def static_rows(workers: LocalWorkers, count: int) -> list[tuple[str, ...]]:
    ids: list[str] = []

    async def provision() -> None:
        ids.append((await workers.provision(STATIC_JOB)).id)

    sequential = [await timed(provision) for _ in range(count)]
    releases = [await timed(lambda i=i: workers.release(i, "bench")) for i in ids]
    ids.clear()
    started = time.perf_counter()
    limiter = anyio.CapacityLimiter(20)

    async def limited() -> None:
        async with limiter:
            await provision()

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(limited)
    concurrent = time.perf_counter() - started
    for worker_id in ids:
        await workers.release(worker_id, "bench")
    return [
        ("static", "in-process: provision, one at a time", f"{count / sum(sequential):,.0f}",
         f"{statistics.median(sequential) * 1e3:.2f}", f"{percentile(sequential, 0.99) * 1e3:.2f}", ""),
        ("static", "in-process: release, one at a time", f"{count / sum(releases):,.0f}",
         f"{statistics.median(releases) * 1e3:.2f}", f"{percentile(releases, 0.99) * 1e3:.2f}", ""),
        ("static", "in-process: provision, 20 at a time", f"{count / concurrent:,.0f}", "", "", ""),
    ]


async def docker_rows(workers: LocalWorkers, image: str, count: int) -> list[tuple[str, ...]]:
    import docker

    api = docker.APIClient(base_url=f"unix://{SOCKET}", version="auto", timeout=60)
    hodei_times, direct_times, created = [], [], []

    def direct() -> None:
        container = api.create_container(image, labels={"bench": "direct"}, environment={"HODEI_WORKER_ID": "x"},
                                         host_config=api.create_host_config(nano_cpus=250_000_000,
                                                                            mem_limit=64 * 2**20, init=True))
        api.start(container["Id"])
        created.append(container["Id"])

    ids = []
    for _ in range(count):  # interleaved: both meet the engine in the same state
        started = time.perf_counter()
        ids.append((await workers.provision(DOCKER_JOB)).id)
        hodei_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        await anyio.to_thread.run_sync(direct)
        direct_times.append(time.perf_counter() - started)
    for worker_id in ids:
        await workers.release(worker_id, "bench")
    for container_id in created:
        api.remove_container(container_id, force=True)
    api.close()
    ratio = statistics.median(hodei_times) / statistics.median(direct_times)
    return [
        ("docker", "in-process: provision", f"{count / sum(hodei_times):,.1f}",
         f"{statistics.median(hodei_times) * 1e3:.1f}", f"{percentile(hodei_times, 0.99) * 1e3:.1f}", f"{ratio:.2f}x"),
        ("docker", "create+start with the SDK", f"{count / sum(direct_times):,.1f}",
         f"{statistics.median(direct_times) * 1e3:.1f}", f"{percentile(direct_times, 0.99) * 1e3:.1f}", "1.00x"),
    ]


async def in_process_rows(url: str, count: int, docker_workers: int, image: str | None) -> list[tuple[str, ...]]:
    """The same, through the workers service of a daemon running in this process (no API, no metrics
    endpoint; one health round, at start, which records the Docker engine's capacity)."""
    settings = Settings.model_validate({
        "database": {"url": url}, "api": {"listen": ""}, "metrics": {"listen": ""}, "plugins": {"enable": ["static"]},
        "health": {"interval_seconds": 3600.0}, "workers": {"reconcile_seconds": 3600.0},
    })
    daemon = Daemon(settings)
    async with anyio.create_task_group() as group:
        group.start_soon(daemon.run)
        with anyio.fail_after(60):
            while not (daemon.ready and len(daemon.monitor.checks) >= len(daemon.fleet.providers)
                       and not daemon.monitor.in_flight):
                await anyio.sleep(0.01)
        await anyio.sleep(1.0)  # the round's writes, and on SQLite the re-read they cause
        rows = await static_rows(daemon.workers, count)
        if docker_workers and image is not None:
            rows += await docker_rows(daemon.workers, image, docker_workers)
        daemon.shutdown()
    return rows


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_serving(channel: Any, seconds: float) -> None:
    """Until the daemon behind ``channel`` answers its health check SERVING; exits after ``seconds``."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    deadline = time.monotonic() + seconds
    while True:
        try:
            if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == serving:
                return
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the daemon did not start")
        time.sleep(0.1)


def api_rows(url: str, count: int, docker_workers: int, image: str | None) -> list[tuple[str, ...]]:
    """The same, through the API of a daemon started for the run."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from hodei.api.v1 import workers_pb2 as wpb
    from hodei.api.v1 import workers_pb2_grpc as wpb_grpc

    if docker_workers:
        import docker

        api = docker.APIClient(base_url=f"unix://{SOCKET}", version="auto", timeout=60)
    address = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as scratch:
        config = os.path.join(scratch, "hodei.toml")
        with open(config, "w") as handle:
            handle.write(f'[database]\nurl = "{url}"\n[api]\nlisten = "{address}"\n[metrics]\nlisten = ""\n'
                         '[plugins]\nenable = ["static"]\n'
                         "[health]\ninterval_seconds = 3600\n[workers]\nreconcile_seconds = 3600\n"
                         '[logging]\nformat = "text"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")} | {"HODEI_CONFIG": config}
        daemon = subprocess.Popen([sys.executable, "-m", "hodei", "--log-level", "ERROR", "serve", "--migrate"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        channel = grpc.insecure_channel(address)
        try:
            wait_serving(channel, 60)
            time.sleep(1.0)  # the first health round records the Docker engine's capacity
            stub = wpb_grpc.WorkerServiceStub(channel)
            from google.protobuf import struct_pb2

            def request(**job: Any) -> Any:
                requirements = struct_pb2.Struct()
                requirements.update(job)
                return wpb.ProvisionWorkerRequest(requirements=requirements)

            static_request = request(**STATIC_JOB)

            def provision_once() -> tuple[str, float]:
                started = time.perf_counter()
                worker = stub.ProvisionWorker(static_request, timeout=60)
                return worker.id, time.perf_counter() - started

            sequential = [provision_once() for _ in range(count)]
            release = []
            for worker_id, _ in sequential:
                started = time.perf_counter()
                stub.ReleaseWorker(wpb.ReleaseWorkerRequest(worker_id=worker_id), timeout=60)
                release.append(time.perf_counter() - started)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=20) as pool:
                concurrent = list(pool.map(lambda _: provision_once(), range(count)))
            concurrent_seconds = time.perf_counter() - started
            with ThreadPoolExecutor(max_workers=20) as pool:
                list(pool.map(lambda w: stub.ReleaseWorker(wpb.ReleaseWorkerRequest(worker_id=w[0]), timeout=60),
                              concurrent))
            times = [t for _, t in sequential]
            rows = [
                ("static", "API: provision, one at a time", f"{count / sum(times):,.0f}",
                 f"{statistics.median(times) * 1e3:.2f}", f"{percentile(times, 0.99) * 1e3:.2f}", ""),
                ("static", "API: release, one at a time", f"{count / sum(release):,.0f}",
                 f"{statistics.median(release) * 1e3:.2f}", f"{percentile(release, 0.99) * 1e3:.2f}", ""),
                ("static", "API: provision, 20 at a time", f"{count / concurrent_seconds:,.0f}", "", "", ""),
            ]
            if docker_workers:
                docker_request = request(**DOCKER_JOB)
                hodei_times, direct_times, created, ids = [], [], [], []
                for _ in range(docker_workers):
                    started = time.perf_counter()
                    ids.append(stub.ProvisionWorker(docker_request, timeout=120).id)
                    hodei_times.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    container = api.create_container(image, labels={"bench": "direct"}, host_config=(
                        api.create_host_config(nano_cpus=250_000_000, mem_limit=64 * 2**20, init=True)))
                    api.start(container["Id"])
                    created.append(container["Id"])
                    direct_times.append(time.perf_counter() - started)
                for worker_id in ids:
                    stub.ReleaseWorker(wpb.ReleaseWorkerRequest(worker_id=worker_id), timeout=120)
                for container_id in created:
                    api.remove_container(container_id, force=True)
                ratio = statistics.median(hodei_times) / statistics.median(direct_times)
                rows += [
                    ("docker", "API: provision", f"{docker_workers / sum(hodei_times):,.1f}",
                     f"{statistics.median(hodei_times) * 1e3:.1f}", f"{percentile(hodei_times, 0.99) * 1e3:.1f}",
                     f"{ratio:.2f}x"),
                    ("docker", "create+start with the SDK", f"{docker_workers / sum(direct_times):,.1f}",
                     f"{statistics.median(direct_times) * 1e3:.1f}", f"{percentile(direct_times, 0.99) * 1e3:.1f}",
                     "1.00x"),
                ]
            return rows
        finally:
            channel.close()
            daemon.terminate()
            daemon.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (a fresh schema is used); SQLite otherwise")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--docker-workers", type=int, default=20, help="0 skips Docker")
    parser.add_argument("--no-api", action="store_true", help="only the in-process daemon's workers service")
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("hodei").setLevel(logging.WARNING)  # the in-process daemon's INFO lines
    with scratch_database(args.postgres, "bench") as url:
        image = create_providers(url, args.count, args.docker_workers)
        rows = [] if args.no_api else api_rows(url, args.count, args.docker_workers, image)
        rows += anyio.run(in_process_rows, url, args.count, args.docker_workers, image)
    database_name = "PostgreSQL" if args.postgres else "SQLite"
    print(f"bench/provision: {database_name}, python {sys.version.split()[0]}; 'API' rows through the gRPC API of "
          "a `hodei serve` started for the run, the others through the workers service of a daemon in this process")
    header = f"{'backend':<8} {'what':<38} {'per s':>9} {'p50 ms':>9} {'p99 ms':>9} {'vs SDK':>8}"
    print(header)
    print("-" * len(header))
    for backend, what, rate, p50, p99, versus in rows:
        print(f"{backend:<8} {what:<38} {rate:>9} {p50:>9} {p99:>9} {versus:>8}")
    print("\nTarget: Docker provisioning through Hodei's API within 1.3x of the direct SDK calls (median).")


if __name__ == "__main__":
    main()
