"""Propagation: from an ``UPDATE provider_configs`` commit to the running daemon using the new value.

Rerun: .venv/bin/python bench/propagation.py [--postgres URL] [--sizes 10,1000] [--updates 200] [--poll-seconds 1]
       [--seed 7]

PostgreSQL comes from --postgres or $HODEI_TEST_POSTGRES_URL (a fresh schema, dropped at the end);
without either only SQLite (a file in a temp dir) is measured. Each row runs a real daemon
(``hodei.daemon.Daemon``) in this process over N ``static`` providers, waits until it is ready
(on PostgreSQL: LISTEN in place) and its first health round is over (the health interval is an
hour, so no health write happens during the measurement), then changes one random provider's
priority --updates times, one after the other:

* a thread commits ``UPDATE provider_configs SET priority = ... WHERE id = ...`` on its own engine
  and notes the time ``commit()`` returned;
* a task in the daemon's event loop asks the daemon's selection service for a decision every
  millisecond, as served selections are made (``daemon.selection.decide`` on a job with no
  requirements, recorded in the daemon's telemetry), and notes when it chooses that provider with
  the new priority: each update sets a priority above every other provider's (1000 and up), so
  the first served decision that uses the new row chooses it. Only providers that job may choose
  (the ranking before the first update) are updated;
* the next update follows after a random pause (up to the poll interval on SQLite, so the commits
  do not fall in step with the polls).

PostgreSQL follows changes by LISTEN/NOTIFY; SQLite polls ``PRAGMA data_version`` every
``[daemon] poll_seconds`` (--poll-seconds) and re-reads the whole table when it moved. The daemon's
API listens on a free loopback port and its metrics endpoint is off, so a run does not depend on a
daemon already using the default ports.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
import uuid
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from hodei import database
from hodei.daemon import Daemon
from hodei.models import ProviderConfigRow
from hodei.settings import Settings
from hodei.testing.databases import fill, scratch_database

POSTGRES_URL_ENV = "HODEI_TEST_POSTGRES_URL"
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1"]


def documents(count: int, rng: random.Random) -> list[dict[str, Any]]:
    return [{"name": f"q{i:05d}", "provider_type": "static", "config": {"latency_ms": 1},
             "priority": rng.choice([0, 10, 20, 50]), "max_workers": rng.choice([5, 10, 50, 100]),
             "preferred_region": rng.choice(REGIONS),
             "required_labels": {"environment": rng.choice(["production", "staging"]), "team": f"team-{i % 10}"}}
            for i in range(count)]


# -- one run --------------------------------------------------------------------------------------


async def measure(url: str, args: argparse.Namespace, seed: int) -> list[float]:
    """Seconds from each commit's return to the daemon holding the new value."""
    settings = Settings.model_validate({
        "database": {"url": url}, "plugins": {"enable": ["static"]},
        "health": {"interval_seconds": 3600.0},
        "daemon": {"poll_seconds": args.poll_seconds, "resync_seconds": 3600.0},
        "api": {"listen": "127.0.0.1:0"}, "metrics": {"listen": ""},
    })
    daemon = Daemon(settings)
    clock, rng = time.perf_counter, random.Random(seed)
    pending: dict[str, Any] = {}  # id, value, seen: what the watching task waits for
    seen = threading.Event()
    table = ProviderConfigRow.__table__
    pause = args.poll_seconds if not daemon.watcher.postgres else 0.02

    anything = daemon.selection.requirements({})

    async def watch() -> None:
        while True:
            wanted = pending.get("id")
            if wanted is not None and "seen" not in pending:
                chosen = daemon.selection.decide(anything).selected
                if chosen is not None and chosen.provider.id == wanted and chosen.priority == pending["value"]:
                    pending["seen"] = clock()
                    seen.set()
            await anyio.sleep(0.001)

    def update_all(ids: list[uuid.UUID]) -> list[float]:
        engine = database.create_engine(url)
        latencies = []
        try:
            for turn in range(args.updates):
                time.sleep(rng.uniform(0, pause))
                provider_id, value = rng.choice(ids), 1000 + turn
                seen.clear()
                pending.clear()
                pending.update(id=provider_id, value=value)
                with engine.connect() as connection:
                    connection.execute(sa.update(table).where(table.c.id == provider_id).values(priority=value))
                    connection.commit()
                    committed = clock()
                if not seen.wait(timeout=max(30.0, 10 * args.poll_seconds)):
                    raise RuntimeError(f"the daemon did not take update {turn} within the wait")
                latencies.append(pending["seen"] - committed)
        finally:
            engine.dispose()
        return latencies

    async with anyio.create_task_group() as group:
        group.start_soon(daemon.run)
        with anyio.fail_after(300):
            while not (daemon.ready and (daemon.watcher.listening or not daemon.watcher.postgres)
                       and len(daemon.monitor.checks) >= len(daemon.fleet.providers)):
                await anyio.sleep(0.01)
            await anyio.sleep(2 * args.poll_seconds + 0.2)  # SQLite: the re-read the health writes cause
        eligible = [c.provider.id for c, _ in daemon.selection.decide(anything, limit=None).ranking]
        if not eligible:
            raise RuntimeError("no provider passes selection's filters: nothing to measure")
        group.start_soon(watch)
        latencies = await anyio.to_thread.run_sync(update_all, eligible)
        daemon.shutdown()
        group.cancel_scope.cancel()
    return latencies


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get(POSTGRES_URL_ENV),
                        help=f"PostgreSQL database (a fresh schema in it); default ${POSTGRES_URL_ENV}")
    parser.add_argument("--sizes", default="10,1000", help="numbers of providers, one row each")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="[daemon] poll_seconds for SQLite")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    backends: list[tuple[str, str, str | None]] = []
    if args.postgres:
        backends.append(("postgresql", "LISTEN/NOTIFY", args.postgres))
    backends.append(("sqlite", f"poll {args.poll_seconds:g} s", None))
    print(f"bench/propagation: python {sys.version.split()[0]}, {args.updates} sequential priority updates per row, "
          f"seed {args.seed}")
    header = (f"{'backend':<10} {'follows by':<14} {'providers':>9} {'updates':>7} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'p99 ms':>8} {'max ms':>8} {'p99 < 200 ms':>12}")
    print(header)
    print("-" * len(header))
    verdicts = []
    for backend, how, postgres in backends:
        for size in [int(s) for s in args.sizes.split(",")]:
            with scratch_database(postgres, "bench") as url:
                fill(url, documents(size, random.Random(args.seed + size)))
                latencies = anyio.run(measure, url, args, args.seed + size, backend="asyncio")
            ordered = sorted(latencies)
            p99 = percentile(ordered, 0.99)
            met = p99 < 0.2
            verdict = "yes" if met else "NO"
            if backend == "postgresql":
                verdicts.append((size, met))
            else:
                verdict = "(n/a)"
            print(f"{backend:<10} {how:<14} {size:>9,} {len(ordered):>7} {statistics.median(ordered) * 1e3:>8.1f} "
                  f"{percentile(ordered, 0.95) * 1e3:>8.1f} {p99 * 1e3:>8.1f} {ordered[-1] * 1e3:>8.1f} "
                  f"{verdict:>12}", flush=True)
    print("\nTarget: on PostgreSQL, p99 under 200 ms from the UPDATE's commit to the daemon using the new value. "
          "SQLite has no notifications: it is bound by the poll interval, shown for comparison.")
    if not args.postgres:
        print(f"  not measured: no PostgreSQL (--postgres URL or ${POSTGRES_URL_ENV})")
    for size, met in verdicts:
        print(f"  postgresql, {size} providers: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
