"""The served paths as a client sees them: Select, Explain and ProvisionWorker+ReleaseWorker through gRPC.

Rerun: .venv/bin/python bench/api.py [--providers 1000,10000] [--clients 8] [--seconds 10] [--daemons 1]
       [--postgres URL] [--processes] [--paths start,empty,select,explain,provision] [--seed 7]

For each fleet size: a fresh database (a SQLite file, or with --postgres a fresh schema in that
database) filled with that many ``static`` providers (regions, labels, a few disabled or in
maintenance, ``config.capabilities`` for the resources filter), then --daemons real ``hodei serve``
processes on it (their own API ports; health interval an hour, so one round at start, which is
awaited), then --clients clients (threads of this process, or with --processes one process each,
spread over the daemons) drive each path for --seconds:

* start: the empty RPC (below) from the moment the daemons answer SERVING after "ready" for
  --start-seconds (20), while their first health round runs and is recorded: what a client meets
  while a large fleet is being checked; compare with ``empty``, the same once settled;
* empty: the standard health service's ``Check``, which does no work: the floor of a served call;
* select: ``Select`` of one of six jobs (some fit hundreds of providers, some none: FAILED_PRECONDITION
  with the report in its details, counted as an answer), the default page;
* explain: ``Explain`` of a random provider for one of the jobs;
* provision: ``ProvisionWorker`` then ``ReleaseWorker`` of the worker it got: one row per pair.

Columns: answers per second (all clients), latency p50/p99 per call (per pair for provision), the
answer's size in bytes (mean and max; for a refusal, its details), and the same decisions made in
this process on the same database, one at a time: Select and Explain through the local selection
service (``hodei select`` without a daemon, the selector read once), provision through the workers
service of a daemon started in this process (the API's path without gRPC); with the ratio of the two.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1"]
JOBS: list[dict[str, Any]] = [
    {"cpu": 1},
    {"cpu": 2, "memory": "4Gi", "preferred_region": "eu-west-1"},
    {"required_labels": {"environment": "production"}, "preferred_region": "us-east-1"},
    {"required_labels": {"environment": "staging", "team": "team-3"}},
    {"allowed_regions": ["ap-south-1", "ap-northeast-1"], "preferred_region": "ap-south-1", "cpu": 8},
    {"required_labels": {"team": "nobody"}},  # nothing fits: the refusal carries the report
]
PROVISION_JOB = {"required_labels": {"environment": "production"}, "cpu": 1}


def documents(count: int, rng: random.Random) -> list[dict[str, Any]]:
    docs = []
    for i in range(count):
        region = rng.choice(REGIONS)
        docs.append({
            "name": f"p{i:05d}", "provider_type": "static",
            "config": {"capabilities": {"cpu": rng.choice([2, 4, 8, 16]), "memory": rng.choice(["4Gi", "16Gi"])}},
            "status": rng.choices(["ACTIVE", "DISABLED", "MAINTENANCE"], [90, 5, 5])[0],
            "priority": rng.choice([0, 10, 20, 50]), "max_workers": 1000,
            "preferred_region": region, "allowed_regions": rng.sample([r for r in REGIONS if r != region], 1),
            "required_labels": {"environment": rng.choice(["production", "staging", "development"]),
                                "team": f"team-{rng.randrange(10)}"},
        })
    return docs


# -- clients ----------------------------------------------------------------------------------------


def drive(address: str, path: str, seconds: float, names: list[str], seed: int) -> list[tuple[float, int]]:
    """One client: calls ``path`` on ``address`` until ``seconds`` have passed; (latency, answer bytes) each."""
    import grpc
    from google.protobuf import json_format, struct_pb2
    from grpc_health.v1 import health_pb2
    from hodei.api.v1 import selection_pb2 as spb
    from hodei.api.v1 import selection_pb2_grpc as spb_grpc
    from hodei.api.v1 import workers_pb2 as wpb
    from hodei.api.v1 import workers_pb2_grpc as wpb_grpc

    rng = random.Random(seed)
    structs = [json_format.ParseDict(job, struct_pb2.Struct()) for job in JOBS]
    samples: list[tuple[float, int]] = []
    with grpc.insecure_channel(address) as channel:
        selection, workers = spb_grpc.SelectionServiceStub(channel), wpb_grpc.WorkerServiceStub(channel)
        provision_request = wpb.ProvisionWorkerRequest(
            requirements=json_format.ParseDict(PROVISION_JOB, struct_pb2.Struct()))

        def select() -> int:
            try:
                return int(selection.Select(spb.SelectRequest(requirements=rng.choice(structs)), timeout=60).ByteSize())
            except grpc.RpcError as exc:
                if exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                return sum(len(v) for k, v in exc.trailing_metadata() or () if k.endswith("-bin"))

        def explain() -> int:
            request = spb.ExplainRequest(provider=rng.choice(names), requirements=rng.choice(structs[:5]))
            return int(selection.Explain(request, timeout=60).ByteSize())

        def provision() -> int:
            worker = workers.ProvisionWorker(provision_request, timeout=60)
            released = workers.ReleaseWorker(wpb.ReleaseWorkerRequest(worker_id=worker.id), timeout=60)
            return int(worker.ByteSize() + released.ByteSize())

        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                    response_deserializer=health_pb2.HealthCheckResponse.FromString)

        def empty() -> int:
            return int(check(health_pb2.HealthCheckRequest(service=""), timeout=60).ByteSize())

        call: Callable[[], int] = {"select": select, "explain": explain, "provision": provision,
                                   "empty": empty, "start": empty}[path]
        end = time.perf_counter() + seconds
        while (started := time.perf_counter()) < end:
            size = call()
            samples.append((time.perf_counter() - started, size))
    return samples


def _drive_into(queue: Any, *args: Any) -> None:
    queue.put(drive(*args))


def run_clients(addresses: list[str], path: str, clients: int, seconds: float, names: list[str],
                processes: bool) -> tuple[list[tuple[float, int]], float]:
    jobs = [(addresses[i % len(addresses)], path, seconds, names, 1000 + i) for i in range(clients)]
    started = time.perf_counter()
    if processes:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        workers = [context.Process(target=_drive_into, args=(queue, *job)) for job in jobs]
        for worker in workers:
            worker.start()
        results = [queue.get() for _ in workers]
        for worker in workers:
            worker.join()
    else:
        results = [[] for _ in jobs]

        def one(i: int) -> None:
            results[i] = drive(*jobs[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    return [sample for result in results for sample in result], elapsed


# -- the same decisions in this process ---------------------------------------------------------------


def in_process(url: str, path: str, seconds: float, names: list[str]) -> float | None:
    """Decisions (or provision+release pairs) per second, single-threaded, with the local services
    (None for the empty RPC, which decides nothing)."""
    import anyio
    from hodei import database
    from hodei.plugins import make_plugin_manager
    from hodei.selection import build_chain
    from hodei.services.local import on_database, selector_from_database
    from hodei.services.selection import LocalSelection
    from hodei.store import Store

    engine = database.create_engine(url)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    chain = build_chain(store.pm)
    local = on_database(store, chain)
    rng = random.Random(3)
    if path in ("empty", "start"):
        return None
    try:
        if path == "provision":
            return anyio.run(daemon_cycles, url, seconds)
        selector = selector_from_database(store, local.states, chain)  # read once, as the daemon holds it
        selection = LocalSelection(lambda: selector, lambda: chain)
        count, started = 0, time.perf_counter()
        end = started + seconds
        while time.perf_counter() < end:
            if path == "select":
                selection.select(rng.choice(JOBS))
            else:
                selection.explain(rng.choice(names), rng.choice(JOBS[:5]))
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        store.close()


def disabled(daemon: Any) -> int:
    return sum(1 for p in daemon.fleet.providers.values() if p.status.value == "DISABLED")


async def daemon_cycles(url: str, seconds: float) -> float:
    """ProvisionWorker+ReleaseWorker pairs per second through the workers service of a daemon in this
    process (what the API calls, without gRPC), one at a time."""
    import anyio
    from hodei.daemon import Daemon
    from hodei.settings import Settings

    settings = Settings.model_validate({
        "database": {"url": url}, "api": {"listen": ""}, "metrics": {"listen": ""},
        "health": {"interval_seconds": 3600.0}, "workers": {"reconcile_seconds": 3600.0},
        "plugins": {"enable": ["static"]}})
    daemon = Daemon(settings)
    async with anyio.create_task_group() as group:
        group.start_soon(daemon.run)
        # Its first health round done, as the served daemon's is: of the providers it owns (a replica that
        # stopped a moment ago may still hold a lease on some). Providers the served daemon checked a moment
        # ago are not checked again before their interval: their recorded state counts as checked.
        while not daemon.ready or len(set(daemon.monitor.checks) | {
                k for k, state in daemon.fleet.states.items() if state.checked_at is not None}) < min(
                daemon.membership.owned_count, len(daemon.fleet.providers) - disabled(daemon)):
            await anyio.sleep(0.05)
        count, started = 0, time.perf_counter()
        while time.perf_counter() < started + seconds:
            worker = await daemon.workers.provision(PROVISION_JOB)
            await daemon.workers.release(worker.id, "bench")
            count += 1
        rate = count / (time.perf_counter() - started)
        daemon.shutdown()
    return rate


# -- the daemons ----------------------------------------------------------------------------------------


def start_daemons(url: str, count: int, folder: Path) -> list[Any]:
    from hodei.testing.serve import start

    daemons = []
    for i in range(count):
        config = folder / f"hodei-{i}.toml"
        config.write_text(f'[database]\nurl = "{url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                          "[health]\ninterval_seconds = 3600\ntimeout_seconds = 5\n"
                          "[workers]\nreconcile_seconds = 3600\n[plugins]\nenable = [\"static\"]\n")
        daemons.append(start(config))
    for daemon in daemons:
        daemon.wait_ready(300)
    return daemons


def wait_checked(address: str, count: int) -> None:
    """Until the first health round has recorded every provider (no "health never checked" left)."""
    import grpc
    from hodei.api.v1 import providers_pb2 as pb
    from hodei.api.v1 import providers_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel:
        api = pb_grpc.ProviderServiceStub(channel)
        deadline = time.monotonic() + 120 + count / 50
        while time.monotonic() < deadline:
            providers = api.ListProviders(pb.ListProvidersRequest(), timeout=120).providers
            if all(p.state.health for p in providers if p.config.status != "DISABLED"):
                return
            time.sleep(0.5)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default="1000,10000", help="fleet sizes, one database each")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="per path and size")
    parser.add_argument("--daemons", type=int, default=1)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database (a fresh schema); SQLite otherwise")
    parser.add_argument("--processes", action="store_true", help="one client process each (default: threads)")
    parser.add_argument("--paths", default="start,empty,select,explain,provision")
    parser.add_argument("--start-seconds", type=float, default=20.0,
                        help="how long the start path runs after the daemons are ready")
    parser.add_argument("--in-process-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.daemons > 1 and not args.postgres:
        parser.error("--daemons > 1 needs --postgres (daemons share SQLite only on one host, and slowly)")

    import logging

    from hodei.testing.databases import fill, scratch_database

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("hodei").setLevel(logging.WARNING)  # the in-process daemon's INFO lines
    paths = args.paths.split(",")
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"bench/api: {backend}, {args.daemons} daemon(s), {args.clients} client {'processes' if args.processes else 'threads'}, "
          f"{args.seconds:g} s per row; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    header = (f"{'path':<10} {'providers':>9} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'bytes mean':>10} "
              f"{'max':>8} | {'in-process per s':>16} {'API/in-process':>14}")
    print(header)
    print("-" * len(header))
    for size in [int(s) for s in args.providers.split(",")]:
        docs = documents(size, random.Random(args.seed))
        names = [d["name"] for d in docs]
        with scratch_database(args.postgres, "bench") as url, tempfile.TemporaryDirectory() as folder:
            fill(url, docs)
            daemons = start_daemons(url, args.daemons, Path(folder))
            served: dict[str, tuple[list[tuple[float, int]], float]] = {}
            try:
                addresses = [d.address for d in daemons]
                if "start" in paths:  # at once: the first health round has just begun
                    served["start"] = run_clients(addresses, "start", args.clients, args.start_seconds, names,
                                                  args.processes)
                wait_checked(addresses[0], size)
                for path in paths:
                    if path != "start":
                        served[path] = run_clients(addresses, path, args.clients, args.seconds, names,
                                                   args.processes)
            finally:
                for daemon in daemons:
                    daemon.stop()
            # In-process once the daemons are gone: a SQLite database serves one daemon, and the clients'
            # and daemons' processes no longer share the cores with it.
            for path in paths:
                samples, elapsed = served[path]
                local = in_process(url, path, args.in_process_seconds, names)
                latencies, sizes = [s[0] for s in samples], [s[1] for s in samples]
                rate = len(samples) / elapsed
                compared = f"{local:>16,.0f} {rate / local:>13.2f}x" if local else f"{'-':>16} {'-':>14}"
                print(f"{path:<10} {size:>9,} {rate:>8,.0f} {statistics.median(latencies) * 1e3:>8.1f} "
                      f"{percentile(latencies, 0.99) * 1e3:>8.1f} {statistics.fmean(sizes):>10,.0f} "
                      f"{max(sizes):>8,} | {compared}", flush=True)
    print("\nTargets (2 cores, one daemon, 8 clients): Select >= 1,000/s at 1,000 providers and >= 500/s at 10,000, "
          "p99 <= 50 ms, answer <= 16 KB; ProvisionWorker+ReleaseWorker on PostgreSQL >= 500/s at 1,000 providers, "
          "p99 <= 100 ms, >= 500/s on SQLite; the empty RPC in the first 20 s after ready (start) p99 <= 2x "
          "its settled p99 (empty).")


if __name__ == "__main__":
    main()
