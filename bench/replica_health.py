"""Replicas: from one daemon finding a change of health to another daemon's selection seeing it.

Rerun: .venv/bin/python bench/replica_health.py [--postgres URL] [--providers 300] [--changes 100] [--seed 7]

PostgreSQL comes from --postgres or $HODEI_TEST_POSTGRES_URL (a fresh schema, dropped at the end).
Two real daemons (``hodei.daemon.Daemon``) run in this process on one database, each with its own
engine, over N ``static`` providers checked every second, and divide them between them. Then, --changes
times, one provider owned by the first daemon is switched between Healthy and Unhealthy in SQL
(``UPDATE provider_configs SET config = ...``). A task polls both daemons' in-memory views every
millisecond and notes when the owner's view has the new health (its own check found it) and when the
other daemon's has it (through the owner's write and NOTIFY hodei_provider_state): the difference is
the propagation time printed. The other daemon never checks that provider itself, so what it shows
came from the owner.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import sys
import time
from typing import Any

import anyio
from hodei.daemon import Daemon
from hodei.domain import HealthStatus
from hodei.settings import Settings
from hodei.testing.daemon import run_sql, running, wait_for
from hodei.testing.databases import fill, scratch_database

POSTGRES_URL_ENV = "HODEI_TEST_POSTGRES_URL"


def settings(url: str) -> Settings:
    return Settings.model_validate({
        "database": {"url": url}, "api": {"listen": ""}, "metrics": {"listen": ""},
        "health": {"interval_seconds": 1.0, "timeout_seconds": 1.0, "max_backoff_seconds": 1.0,
                   "unhealthy_after": 1000, "healthy_after": 1000},  # health only; the status stays
        "workers": {"reconcile_seconds": 3600.0}, "daemon": {"resync_seconds": 3600.0},
        "plugins": {"enable": ["static"]}})


async def measure(url: str, providers: int, changes: int, rng: random.Random) -> list[float]:
    owner, other = Daemon(settings(url)), Daemon(settings(url))
    lags: list[float] = []
    async with running(owner), running(other):
        await wait_for(lambda: owner.membership.owned_count and other.membership.owned_count
                       and owner.monitor.owned is not None and other.monitor.owned is not None, seconds=30,
                       what="two replicas sharing the providers")
        await anyio.sleep(1.0)
        names = {p.id: p.name for p in owner.fleet.providers.values()}
        mine = sorted(owner.monitor.owned or ())
        for i in range(changes):
            provider = rng.choice(mine)
            wanted = HealthStatus.UNHEALTHY if i % 2 == 0 else HealthStatus.HEALTHY
            was = other.fleet.states[provider].health
            if was is wanted:
                continue
            await anyio.to_thread.run_sync(functools.partial(
                run_sql, url, "UPDATE provider_configs SET config = :c WHERE id = :id",
                c=f'{{"type": "static", "health": "{wanted.value}"}}', id=provider))
            found = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if found is None and owner.fleet.states[provider].health is wanted:
                    found = time.perf_counter()
                if other.fleet.states[provider].health is wanted:
                    if found is not None:
                        lags.append(time.perf_counter() - found)
                    break
                await anyio.sleep(0.001)
            else:
                print(f"{names[provider]}: the other daemon never saw {wanted.value}", file=sys.stderr)
            await anyio.sleep(rng.uniform(0.05, 0.3))
    return lags


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get(POSTGRES_URL_ENV))
    parser.add_argument("--providers", type=int, default=300)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not args.postgres:
        parser.error(f"replicas need PostgreSQL: --postgres URL or ${POSTGRES_URL_ENV}")
    rng = random.Random(args.seed)
    with scratch_database(args.postgres, "bench_replicas") as url:
        fill(url, [{"name": f"r{i:04d}", "provider_type": "static"} for i in range(args.providers)])
        lags: Any = anyio.run(measure, url, args.providers, args.changes, rng)
    ms = [lag * 1000 for lag in lags]
    print(f"{'providers':>9}  {'changes':>7}  {'p50 ms':>7}  {'p99 ms':>7}  {'max ms':>7}  (target p99 < 200 ms)")
    print(f"{args.providers:>9}  {len(ms):>7}  {statistics.median(ms):>7.1f}  {percentile(ms, 0.99):>7.1f}  "
          f"{max(ms):>7.1f}")
    print(f"rerun: .venv/bin/python bench/replica_health.py --providers {args.providers} --changes {args.changes} "
          f"--seed {args.seed}")


if __name__ == "__main__":
    main()
