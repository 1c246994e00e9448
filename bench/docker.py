"""Provision and deprovision latency and throughput: the docker plugin against the same SDK calls made directly.

Rerun: .venv/bin/python bench/docker.py [--socket PATH] [--workers 20] [--repeat 3]
Needs a running engine (scripts/start-docker). Each worker is a busybox container running `sleep`
(imported on first run, nothing is pulled). Latency: one worker at a time, provisioned then
deprovisioned, direct and plugin taking turns; median and p95 per worker. Throughput: all workers
at once (provision them all, then deprovision them all), in workers per second. Each figure is
the median over --repeat rounds. The direct side makes the plugin's engine calls (create, start;
stop with the same grace period, remove) through one shared low-level SDK client, from plain
threads; the plugin side goes through the hooks as the core calls them (pluggy dispatch, an event
loop, a worker thread per call, per-request deadlines).
"""

from __future__ import annotations

import os
import sys

# Run as `python bench/docker.py`, this directory comes first on sys.path, and this file's name
# would shadow the `docker` SDK.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio
import docker
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hodei import Provider, WorkerHandle, WorkerRequest
from hodei.calls import call_provider_hook
from hodei.plugins import make_plugin_manager
from hodei_docker.labels import provider_filter, worker_labels
from hodei_docker.testing import ensure_test_image
from hodei_docker.workers import container_name, environment

TIMEOUT = 30.0
CPU, MEMORY = 0.25, 64 * 2**20
# The engine tears networks and mounts down for a while after a burst of removals.
SETTLE_SECONDS = 1.0
T = TypeVar("T")


def requests(count: int) -> list[WorkerRequest]:
    return [WorkerRequest(worker_id=f"bench-{uuid.uuid4().hex[:10]}", server_address="127.0.0.1:50051",
                          token=uuid.uuid4().hex, cpu=CPU, memory=MEMORY) for _ in range(count)]


class Direct:
    """The plugin's engine calls, made directly with the SDK."""

    def __init__(self, api: docker.APIClient, provider: Provider) -> None:
        self.api, self.provider, self.config = api, provider, provider.config

    def provision(self, request: WorkerRequest) -> str:
        host = self.api.create_host_config(nano_cpus=round(CPU * 1e9), mem_limit=MEMORY,
                                           network_mode=self.config["network"], init=True)
        container = self.api.create_container(
            self.config["default_image"], environment=environment(self.provider, request),
            labels=worker_labels({}, self.provider.id, request.worker_id), host_config=host,
            name=container_name(request.worker_id))
        self.api.start(container["Id"])
        return container["Id"]

    def deprovision(self, container_id: str) -> None:
        self.api.stop(container_id, timeout=int(self.config["stop_grace_seconds"]))
        self.api.remove_container(container_id, force=True)

    def provision_all(self, jobs: list[WorkerRequest]) -> list[str]:
        with ThreadPoolExecutor(len(jobs)) as pool:
            return list(pool.map(self.provision, jobs))

    def deprovision_all(self, ids: list[str]) -> None:
        with ThreadPoolExecutor(len(ids)) as pool:
            list(pool.map(self.deprovision, ids))


class ThroughPlugin:
    """The same workers through the plugin's hooks, called as the core calls them, on one event loop."""

    def __init__(self, provider: Provider, portal: BlockingPortal) -> None:
        self.pm, self.provider, self.portal = make_plugin_manager(allow=["docker"]), provider, portal

    async def _provision(self, request: WorkerRequest) -> WorkerHandle:
        return await call_provider_hook(self.pm, "hodei_provision", self.provider, TIMEOUT, request=request)

    async def _deprovision(self, handle: WorkerHandle) -> None:
        await call_provider_hook(self.pm, "hodei_deprovision", self.provider, TIMEOUT, handle=handle)

    def provision(self, request: WorkerRequest) -> WorkerHandle:
        return self.portal.call(self._provision, request)

    def deprovision(self, handle: WorkerHandle) -> None:
        self.portal.call(self._deprovision, handle)

    def provision_all(self, jobs: list[WorkerRequest]) -> list[WorkerHandle]:
        async def run() -> list[WorkerHandle]:
            handles: list[WorkerHandle] = []

            async def provision(job: WorkerRequest) -> None:
                handles.append(await self._provision(job))

            async with anyio.create_task_group() as tasks:
                for job in jobs:
                    tasks.start_soon(provision, job)
            return handles

        return self.portal.call(run)

    def deprovision_all(self, handles: list[WorkerHandle]) -> None:
        async def run() -> None:
            async with anyio.create_task_group() as tasks:
                for handle in handles:
                    tasks.start_soon(self._deprovision, handle)

        self.portal.call(run)


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def latencies(runners: dict[str, Any], workers: int) -> dict[str, dict[str, float]]:
    """One worker at a time, direct and plugin taking turns (first one, then the other), so both meet
    the engine in the same state."""
    up: dict[str, list[float]] = {name: [] for name in runners}
    down: dict[str, list[float]] = {name: [] for name in runners}
    for turn in range(workers):
        order = list(runners) if turn % 2 else list(reversed(runners))
        for name in order:
            runner = runners[name]
            started, up_seconds = timed(lambda runner=runner: runner.provision(requests(1)[0]))
            _, down_seconds = timed(lambda runner=runner, started=started: runner.deprovision(started))
            up[name].append(up_seconds)
            down[name].append(down_seconds)
    return {name: {
        "provision latency, median (ms)": statistics.median(up[name]) * 1000,
        "provision latency, p95 (ms)": p95(up[name]) * 1000,
        "deprovision latency, median (ms)": statistics.median(down[name]) * 1000,
        "deprovision latency, p95 (ms)": p95(down[name]) * 1000,
        "provision+deprovision, median (ms)": statistics.median(
            a + b for a, b in zip(up[name], down[name], strict=True)) * 1000,
    } for name in runners}


def throughput(runner: Any, workers: int) -> dict[str, float]:
    """All workers at once: provision them all, then deprovision them all."""
    handles, up = timed(lambda: runner.provision_all(requests(workers)))
    _, down = timed(lambda: runner.deprovision_all(handles))
    return {f"throughput, {workers} at once (workers/s)": workers / (up + down)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", default="/var/run/docker.sock", help="the engine's Unix socket")
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    api = docker.APIClient(base_url=f"unix://{args.socket}", version="auto", timeout=TIMEOUT, max_pool_size=32)
    image = ensure_test_image(api)
    config = make_plugin_manager(allow=["docker"]).validate_config(
        "docker", {"socket_path": args.socket, "default_image": image, "stop_grace_seconds": 10})
    direct_provider = Provider(uuid.uuid4(), "bench direct", "docker", config)
    plugin_provider = Provider(uuid.uuid4(), "bench plugin", "docker", config)

    rounds: dict[str, list[dict[str, float]]] = {"direct": [], "plugin": []}
    try:
        with start_blocking_portal() as portal:
            runners = {"direct": Direct(api, direct_provider), "plugin": ThroughPlugin(plugin_provider, portal)}
            latencies(runners, 2)  # warm-up: SDK import, connection pools, the engine's caches
            for round_number in range(args.repeat):
                measured = latencies(runners, args.workers)
                order = list(runners) if round_number % 2 else list(reversed(runners))
                for name in order:
                    time.sleep(SETTLE_SECONDS)
                    measured[name].update(throughput(runners[name], args.workers))
                for name in runners:
                    rounds[name].append(measured[name])
    finally:
        for provider in (direct_provider, plugin_provider):
            for container in api.containers(all=True, filters=provider_filter(provider.id)):
                api.remove_container(container["Id"], force=True)

    print(f"{args.workers} workers, median of {args.repeat} rounds, engine {api.version()['Version']}")
    print("| measure | direct SDK | plugin | plugin / direct |")
    print("|---|---:|---:|---:|")
    for name in rounds["direct"][0]:
        direct_value = statistics.median(r[name] for r in rounds["direct"])
        plugin_value = statistics.median(r[name] for r in rounds["plugin"])
        # For throughput higher is better: show the ratio as "times slower" like the latencies.
        slower = direct_value / plugin_value if "throughput" in name else plugin_value / direct_value
        print(f"| {name} | {direct_value:.1f} | {plugin_value:.1f} | {slower:.2f}x |")


if __name__ == "__main__":
    main()
