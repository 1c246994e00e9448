"""The status page's cost: the fleet page of a large fleet rendered server-side, and the API's answers
while browsers refresh the page.

Rerun: .venv/bin/python bench/ui.py [--providers 10000] [--renders 30] [--seconds 10] [--pollers 1,4]
       [--intervals 3600,30]

1. Server-side render (in this process): the status page's ASGI application asked directly (no socket)
   for the fleet page of --providers providers (every one with a state, regions, labels, a few disabled),
   --renders times per view, each as if the fleet had changed since the last (nothing cached): routing,
   the copy of the live view, filter, count, sort, the page of 100 rendered. Target: <= 200 ms (p99) at
   10,000 providers; each page holds at most 100 rows.
2. Served (a real ``hodei serve`` on SQLite with --providers static providers): the empty RPC (the gRPC
   health service's Check: no database, no fleet, only the event loop) called back to back for --seconds
   with nobody on the page, then while each of --pollers clients fetches the fleet page every second (a
   browser's refresh; [ui] refresh_seconds = 1), then while they fetch it back to back (the worst case).
   Once on a quiet fleet (one health round at start), once on a fleet being checked all the time
   (--intervals: [health] interval_seconds of each run), where the live view changes hundreds of times a
   second. Target: the empty RPC's p99 unchanged by a refreshing browser.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def documents(count: int, rng: random.Random) -> list[dict[str, Any]]:
    return [{"name": f"p{i:05d}", "provider_type": "static", "config": {"type": "static"},
             "status": rng.choices(["ACTIVE", "DISABLED", "MAINTENANCE"], [90, 5, 5])[0],
             "max_workers": rng.choice([4, 10, 50]), "preferred_region": rng.choice(REGIONS),
             "required_labels": {"environment": rng.choice(["production", "staging"]), "team": f"team-{i % 7}"}}
            for i in range(count)]


# -- 1. server-side -----------------------------------------------------------------------------------


class _Live:
    def __init__(self, count: int, rng: random.Random):
        from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus

        self.providers: dict[uuid.UUID, Any] = {}
        self.states: dict[uuid.UUID, Any] = {}
        self.invalid: dict[uuid.UUID, Any] = {}
        self._versions = itertools.count()
        now = datetime.now(UTC)
        for doc in documents(count, rng):
            provider = Provider(id=uuid.uuid4(), name=doc["name"], provider_type=rng.choice(["static", "docker"]),
                                config={}, status=ProviderStatus(doc["status"]), max_workers=doc["max_workers"],
                                preferred_region=doc["preferred_region"], required_labels=doc["required_labels"])
            self.providers[provider.id] = provider
            self.states[provider.id] = ProviderState(
                health=rng.choices(list(HealthStatus), [90, 5, 5])[0], health_reason="", checked_at=now,
                active_workers=rng.randrange(0, 4))


    @property
    def version(self) -> int:
        """A new version at every look: every render is measured as if the fleet had just changed (the page
        caches what it computed for an unchanged fleet)."""
        return next(self._versions)


async def _ask(app: Any, path: str, query: str) -> tuple[int, int]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1), "server": ("bench", 80)}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    size = sum(len(m.get("body", b"")) for m in sent if m["type"] == "http.response.body")
    return status, size


def server_side(count: int, renders: int) -> None:
    import anyio
    from hodei.services.decisions import Decisions
    from hodei.ui import app as ui_app
    from hodei.ui.app import StatusPage, UiServices

    live = _Live(count, random.Random(7))
    gc.collect()
    gc.freeze()  # as the daemon does at start: what lives as long as it is not walked by every collection
    services = UiServices(live, None, None, None, Decisions(), call=None, replicas=None,  # type: ignore[arg-type]
                          status_line=lambda: f"ready: {count} providers")
    page = StatusPage(services, refresh_seconds=5)
    ui_app.FLEET_PAGE_SECONDS = 0.0  # every render computed anew: the cost of a page, not of a cache hit
    views = [("fleet, page 1", ""), ("fleet, last page", "page=1000"),
             ("type + region filter", "type=static&region=eu-west-1"), ("name search", "name=p0999"),
             ("health filter", "health=Unhealthy")]
    print(f"1. fleet page, server-side, {count:,} providers, {renders} renders per view "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    header = f"{'view':<22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'bytes':>9}"
    print(header)
    print("-" * len(header))

    async def run() -> None:
        for name, query in views:
            times, size = [], 0
            for _ in range(renders):
                started = time.perf_counter()
                status, size = await _ask(page.app, "/", query)
                times.append(time.perf_counter() - started)
                assert status == 200, status
            print(f"{name:<22} {statistics.median(times) * 1e3:>8.1f} {percentile(times, 0.99) * 1e3:>8.1f} "
                  f"{max(times) * 1e3:>8.1f} {size:>9,}", flush=True)

    anyio.run(run)


# -- 2. served -------------------------------------------------------------------------------------------


def empty_rpcs(address: str, seconds: float) -> list[float]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    latencies = []
    with grpc.insecure_channel(address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        check(health_pb2.HealthCheckRequest(), timeout=10)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            check(health_pb2.HealthCheckRequest(), timeout=10)
            latencies.append(time.perf_counter() - started)
    return latencies


def poll(url: str, every: float, stop: threading.Event, into: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as answer:
            answer.read()
        elapsed = time.perf_counter() - started
        into.append(elapsed)
        if every:
            stop.wait(max(0.0, every - elapsed))


def served(count: int, seconds: float, pollers: list[int], interval: float) -> None:
    from hodei.testing.databases import fill, scratch_database
    from hodei.testing.serve import start

    fleet = ("a quiet fleet: one health round at start" if interval >= 3600 else
             f"every provider checked every {interval:g} s, so the fleet changes all the time")
    print(f"\n2. served: a real hodei serve on SQLite with {count:,} static providers, {fleet}; the empty RPC "
          f"(grpc.health.v1.Health/Check) back to back for {seconds:g} s per row")
    header = (f"{'while':<34} {'RPCs':>7} {'p50 ms':>8} {'p99 ms':>8} | {'page loads':>10} {'page p50 ms':>11} "
              f"{'page p99 ms':>11}")
    print(header)
    print("-" * len(header))
    with scratch_database(None, "bench-ui") as url, tempfile.TemporaryDirectory() as folder:
        fill(url, documents(count, random.Random(7)))
        config = Path(folder) / "hodei.toml"
        config.write_text(f'[database]\nurl = "{url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                          '[ui]\nlisten = "127.0.0.1:0"\nrefresh_seconds = 1\n'
                          f"[health]\ninterval_seconds = {interval}\n[workers]\nreconcile_seconds = 3600\n"
                          '[plugins]\nenable = ["static"]\n')
        daemon = start(config)
        try:
            daemon.wait_ready(300, ui=True)
            assert daemon.address is not None and daemon.ui_url is not None
            time.sleep(5)  # the first health round, at start, is done
            rows = [("nobody on the page", 0, 0.0)]
            rows += [(f"{n} browser(s) refreshing every 1 s", n, 1.0) for n in pollers]
            rows += [(f"{n} client(s) fetching back to back", n, 0.0) for n in pollers]
            for name, clients, every in rows:
                stop, loads = threading.Event(), []  # type: ignore[var-annotated]
                threads = [threading.Thread(target=poll, args=(daemon.ui_url, every, stop, loads)) for _ in range(clients)]
                for thread in threads:
                    thread.start()
                try:
                    latencies = empty_rpcs(daemon.address, seconds)
                finally:
                    stop.set()
                    for thread in threads:
                        thread.join()
                page = (f"{len(loads):>10} {statistics.median(loads) * 1e3:>11.1f} "
                        f"{percentile(loads, 0.99) * 1e3:>11.1f}") if loads else f"{'-':>10} {'-':>11} {'-':>11}"
                print(f"{name:<34} {len(latencies):>7,} {statistics.median(latencies) * 1e3:>8.2f} "
                      f"{percentile(latencies, 0.99) * 1e3:>8.2f} | {page}", flush=True)
        finally:
            daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pollers", default="1,4", help="numbers of page clients, one row each")
    parser.add_argument("--intervals", default="3600,30",
                        help="[health] interval_seconds of the served daemon, one table each (3600: a quiet fleet)")
    parser.add_argument("--skip-served", action="store_true", help="only the server-side render")
    args = parser.parse_args()
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    server_side(args.providers, args.renders)
    if not args.skip_served:
        for interval in (float(i) for i in args.intervals.split(",")):
            served(args.providers, args.seconds, [int(n) for n in args.pollers.split(",")], interval)
    print("\nTargets: the fleet page of 10,000 providers rendered server-side in <= 200 ms, a page of at most 100 "
          "rows; the empty RPC's p99 unchanged while a browser refreshes the page.")
    print(f"Rerun: .venv/bin/python bench/ui.py --providers {args.providers} --renders {args.renders} "
          f"--seconds {args.seconds:g} --pollers {args.pollers} --intervals {args.intervals}")


if __name__ == "__main__":
    main()
