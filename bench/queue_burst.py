"""A burst through the placement queue: requests waiting on a full fleet, all placed once slots free.

Rerun: .venv/bin/python bench/queue_burst.py [--providers 1000] [--slots 10] [--requests 10000]
       [--free apply|release] [--postgres URL] [--channels 128] [--profile FILE]

--profile FILE records the daemon with py-spy (``pip install py-spy``) from the slots freeing to the last
answer, as collapsed stacks in FILE, and prints the functions it spent most time in.

A fresh database (a SQLite file, or with --postgres a fresh schema in that database) with --providers
``static`` providers of --slots workers each, every slot taken by a running worker (rows written before
the daemon starts), then one real ``hodei serve`` process. --requests clients (one asyncio process, over
--channels gRPC connections: the API takes 100 calls in flight per connection) each call
``ProvisionWorker`` with ``wait_seconds`` 600: none fits, so every request waits in the queue. Once the
daemon counts them all waiting (``hodei_queue_waiting``), --requests slots free: with ``apply`` (the
default) one ``ApplyProviders`` raises every provider's ``max_workers`` by the slots needed; with
``release`` the running workers are released through ``ReleaseWorker`` (64 at a time), and the clock starts
with the first release. Then every waiting call is answered with its worker.

Columns: how long the requests took to be all waiting (enqueue s); how many were placed and how long
from the slots freeing to the last answer (placed in s; the target is 30 s); the placement rate; each
request's time from the slots freeing to its answer (after free p50/p99) and from its call to its
answer (wait p50/p99); the daemon's resident memory idle, with every request waiting, and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

WAIT_SECONDS = 600.0


def documents(count: int, slots: int) -> list[dict[str, Any]]:
    return [{"name": f"p{i:05d}", "provider_type": "static", "max_workers": slots, "priority": i % 4 * 10}
            for i in range(count)]


def fill_workers(url: str, slots: int) -> list[str]:
    """Every slot of every provider taken by a running worker; their ids."""
    from hodei import database
    from hodei.models import ProviderConfigRow, WorkerRow, utcnow
    from sqlmodel import Session, select

    engine = database.create_engine(url)
    ids: list[str] = []
    with Session(engine) as session:
        now = utcnow()
        for provider in session.exec(select(ProviderConfigRow)).all():
            for _ in range(slots):
                worker_id = str(uuid.uuid4())
                ids.append(worker_id)
                session.add(WorkerRow(id=worker_id, provider_id=provider.id, provider_name=provider.name,
                                      state="RUNNING", reason="provisioned", backend_id=f"static-{worker_id}",
                                      handle={"backend_id": f"static-{worker_id}", "details": {}},
                                      token_sha256="0" * 64, created_at=now, updated_at=now))
        session.commit()
    engine.dispose()
    return ids


def start_daemon(url: str, folder: Path) -> Any:
    from hodei.testing.serve import start

    config = folder / "hodei.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = "127.0.0.1:0"\n'
                      "[health]\ninterval_seconds = 3600\ntimeout_seconds = 5\n"
                      "[workers]\nreconcile_seconds = 3600\n[plugins]\nenable = [\"static\"]\n")
    daemon = start(config)
    daemon.wait_ready(300, metrics=True)
    return daemon


def waiting_count(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=30) as answer:
        text = answer.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("hodei_queue_waiting{"))


def rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def burst(daemon: Any, args: argparse.Namespace, docs: list[dict[str, Any]], fillers: list[str]) -> dict[str, Any]:
    import grpc
    from google.protobuf import struct_pb2
    from hodei.api.v1 import providers_pb2 as pb
    from hodei.api.v1 import providers_pb2_grpc as pb_grpc
    from hodei.api.v1 import workers_pb2 as wpb
    from hodei.api.v1 import workers_pb2_grpc as wpb_grpc

    pid = daemon.process.pid
    found: dict[str, Any] = {"rss_idle": rss_mb(pid)}
    # Separate connections (the API takes 100 calls in flight on one).
    channels = [grpc.aio.insecure_channel(daemon.address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(args.channels)]
    stubs = [wpb_grpc.WorkerServiceStub(c) for c in channels]
    request = wpb.ProvisionWorkerRequest(requirements=struct_pb2.Struct(), wait_seconds=WAIT_SECONDS)
    answers: list[tuple[float, float, str]] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        try:
            await stubs[i % len(stubs)].ProvisionWorker(request, timeout=WAIT_SECONDS + 60)
            outcome = "placed"
        except grpc.aio.AioRpcError as exc:
            outcome = f"{exc.code().name}: {exc.details()}"
        answers.append((started, time.perf_counter(), outcome))

    submitted = time.perf_counter()
    tasks = [asyncio.create_task(one(i)) for i in range(args.requests)]
    while (count := await asyncio.to_thread(waiting_count, daemon.metrics_url)) < args.requests:
        if len(answers) == args.requests or time.perf_counter() - submitted > WAIT_SECONDS:
            raise SystemExit(f"only {count:g} of {args.requests} requests waited; answers so far: "
                             f"{sorted({a[2] for a in answers})}; the daemon said first:\n" + "".join(
                                 line for line in daemon.stderr if '"INFO"' not in line)[:4000])
        await asyncio.sleep(0.25)
    found["enqueue"] = time.perf_counter() - submitted
    found["rss_waiting"] = rss_mb(pid)

    profiler = None
    if args.profile:
        profiler = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
            "--output", args.profile, "--rate", "50", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await asyncio.sleep(1.0)  # attached
    freed = time.perf_counter()
    if args.free == "apply":
        raised = [{**d, "max_workers": d["max_workers"] + -(-args.requests // len(docs))} for d in docs]
        async with grpc.aio.insecure_channel(daemon.address) as channel:
            await pb_grpc.ProviderServiceStub(channel).ApplyProviders(
                pb.ApplyProvidersRequest(providers_json=json.dumps(raised)), timeout=300)
    else:
        limiter = asyncio.Semaphore(64)

        async def release(i: int, worker_id: str) -> None:
            async with limiter:
                await stubs[i % len(stubs)].ReleaseWorker(wpb.ReleaseWorkerRequest(worker_id=worker_id), timeout=300)

        releases = [asyncio.create_task(release(i, w)) for i, w in enumerate(fillers[:args.requests])]
        await asyncio.gather(*releases)
        found["released"] = time.perf_counter() - freed
    await asyncio.gather(*tasks)
    if profiler is not None:
        profiler.send_signal(2)  # SIGINT: py-spy writes what it recorded
        await profiler.wait()
    last = max(a[1] for a in answers)
    placed = [a for a in answers if a[2] == "placed"]
    found.update(placed=len(placed), outcomes=sorted({a[2] for a in answers}), seconds=last - freed,
                 after=[a[1] - freed for a in placed], waits=[a[1] - a[0] for a in placed],
                 rss_after=rss_mb(pid))
    for channel in channels:
        await channel.close()
    return found


def top_of_profile(path: str, count: int = 15) -> list[tuple[float, float, str]]:
    """From py-spy's collapsed stacks: the functions with the most samples in them (total) and at the top
    of the stack (self), as shares of all samples."""
    total: dict[str, int] = {}
    own: dict[str, int] = {}
    samples = 0
    for line in Path(path).read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = []
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            frames.append(f"{name} ({where.rsplit('/', 1)[-1]}" if where else name)
        samples += int(number)
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + int(number)
        own[frames[-1]] = own.get(frames[-1], 0) + int(number)
    ranked = sorted(own, key=lambda f: -own[f])[:count]
    return [(own[f] / samples, total[f] / samples, f) for f in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=10, help="max_workers of each provider, all taken")
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--free", choices=["apply", "release"], default="apply")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database (a fresh schema); SQLite otherwise")
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--profile", metavar="FILE", help="py-spy's collapsed stacks of the daemon while placing")
    args = parser.parse_args()
    if args.free == "release" and args.requests > args.providers * args.slots:
        parser.error("--free release frees at most --providers x --slots slots")

    import logging

    from hodei.testing.databases import fill, scratch_database

    logging.getLogger("alembic").setLevel(logging.WARNING)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"bench/queue: {backend}, one daemon, {args.requests:,} waiting requests over {args.channels} connections, "
          f"slots freed by {args.free}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    docs = documents(args.providers, args.slots)
    with scratch_database(args.postgres, "bench") as url, tempfile.TemporaryDirectory() as folder:
        fill(url, docs)
        fillers = fill_workers(url, args.slots)
        daemon = start_daemon(url, Path(folder))
        try:
            found = asyncio.run(burst(daemon, args, docs, fillers))
        finally:
            daemon.stop()
    header = (f"{'providers':>9} {'requests':>8} {'enqueue s':>9} {'placed':>7} {'in s':>6} {'per s':>7} "
              f"{'after free p50/p99 s':>20} {'wait p50/p99 s':>15} {'RSS idle/waiting/end MB':>23}")
    print(header)
    print("-" * len(header))
    after, waits = found["after"] or [0.0], found["waits"] or [0.0]
    print(f"{args.providers:>9,} {args.requests:>8,} {found['enqueue']:>9.1f} {found['placed']:>7,} "
          f"{found['seconds']:>6.1f} {found['placed'] / found['seconds']:>7,.0f} "
          f"{statistics.median(after):>9.1f} / {percentile(after, 0.99):>7.1f} "
          f"{statistics.median(waits):>6.1f} / {percentile(waits, 0.99):>6.1f} "
          f"{found['rss_idle']:>7.0f} / {found['rss_waiting']:>5.0f} / {found['rss_after']:>5.0f}")
    if found["outcomes"] != ["placed"]:
        print(f"answers: {found['outcomes']}")
    if "released" in found:
        print(f"the {args.requests:,} releases took {found['released']:.1f} s")
    print("\nTarget: all placed within 30 s of the slots freeing (issue 26, item 7).")
    if args.profile:
        print(f"\nThe daemon while placing (py-spy, {args.profile}): self% total% function")
        for own, total, frame in top_of_profile(args.profile):
            print(f"{own:>6.1%} {total:>6.1%} {frame}")


if __name__ == "__main__":
    main()
