"""A large fleet's first load: how long a starting daemon takes to read, validate and index every provider.

Rerun: .venv/bin/python bench/first_load.py [--providers 1000,10000,50000] [--repeat 3] [--postgres URL] [--seed 7]

For each fleet size: a fresh database (a SQLite file, or with --postgres also a fresh schema in that
database) filled with that many ``static`` providers (as bench/api.py makes them, every one checked once
so each has a recorded state). Then, --repeat times, a new daemon (``hodei.daemon.Daemon``, in this
process, not started) runs its change listener's initial read, ``daemon.watcher.resync("initial read")``:
every row read raw, fingerprinted and validated through its plugin, every state and the worker slot
counts read, and the selection index built. That read is what the daemon waits for before it is ready.

Columns: the median and best of the repeats (seconds), per provider (microseconds, of the median), the
median CPU time of this process during the read (all threads: less sensitive than the wall time to other
processes sharing the machine), and the providers and invalid rows the fleet then holds (a check that
everything was loaded).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import documents  # the same fleet as bench/api.py

POSTGRES_URL_ENV = "HODEI_TEST_POSTGRES_URL"


def record_a_check_of_each(url: str) -> None:
    """One passing check of every provider recorded, as a round of the health monitor leaves it."""
    from hodei.domain import Capacity, HealthResult, Resources
    from hodei.services.health import Result
    from hodei.services.local import on_database, open_store, plugin_manager, selection_chain
    from hodei.settings import Settings

    settings = Settings.model_validate({"database": {"url": url}, "plugins": {"enable": ["static"]}})
    pm = plugin_manager(settings)
    store = open_store(settings, pm)
    try:
        services = on_database(store, selection_chain(settings, pm))
        capacity = Capacity(0, Resources(cpu=8, memory=16 << 30))
        results = [Result(p.id, HealthResult.healthy("ok"), capacity) for p in store.all()]
        for start in range(0, len(results), 1000):
            services.health.record(results[start:start + 1000])
    finally:
        store.close()


def first_load(url: str) -> tuple[float, float, int, int]:
    from hodei.daemon import Daemon
    from hodei.settings import Settings

    settings = Settings.model_validate({
        "database": {"url": url}, "plugins": {"enable": ["static"]},
        "api": {"listen": "127.0.0.1:0"}, "metrics": {"listen": ""},
    })
    daemon = Daemon(settings)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        anyio.run(daemon.watcher.resync, "initial read")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        return elapsed, cpu, len(daemon.fleet.providers), len(daemon.fleet.invalid)
    finally:
        daemon.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default="1000,10000,50000", help="fleet sizes, one row each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get(POSTGRES_URL_ENV),
                        help=f"also on this PostgreSQL database (a fresh schema; default ${POSTGRES_URL_ENV})")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    from hodei.testing.databases import fill, scratch_database

    print(f"# {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")
    print(f"{'backend':10} {'providers':>9} {'median s':>9} {'best s':>8} {'us/provider':>11} {'cpu s':>7} "
          f"{'loaded':>7} {'invalid':>7}")
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    if args.postgres:
        backends.append(("postgresql", args.postgres))
    for backend, postgres in backends:
        for size in (int(n) for n in args.providers.split(",")):
            with scratch_database(postgres, "bench") as url:
                fill(url, documents(size, random.Random(args.seed + size)))
                record_a_check_of_each(url)
                runs: list[Any] = [first_load(url) for _ in range(args.repeat)]
            times = [run[0] for run in runs]
            median = statistics.median(times)
            cpu = statistics.median(run[1] for run in runs)
            _, _, loaded, invalid = runs[-1]
            print(f"{backend:10} {size:>9} {median:>9.3f} {min(times):>8.3f} {median / max(size, 1) * 1e6:>11.1f} "
                  f"{cpu:>7.3f} {loaded:>7} {invalid:>7}", flush=True)


if __name__ == "__main__":
    main()
