"""How long the providers service takes to apply, re-apply and read N providers.

Rerun: .venv/bin/python bench/store.py [--postgres URL] [--sizes 100,1000,10000] [--repeat 3]
Each figure is the median of --repeat runs on a fresh database (SQLite file in a temp dir; with
--postgres, a fresh schema in that database). Through ``hodei.services.providers.LocalProviders``,
as it is served: ``apply`` is what ``hodei apply`` runs (the store's apply, secrets masked in the
changes it reports), ``find`` what ``hodei providers list`` and the API's ListProviders answer
(every row read and validated, with its run-time state).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from hodei import database
from hodei.plugins import make_plugin_manager
from hodei.services.providers import LocalProviders
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.testing.databases import scratch_database


def documents(count: int, priority: int = 0) -> list[dict]:
    return [{"name": f"p{i:05d}", "provider_type": "static", "priority": priority + i % 7,
             "max_workers": 1 + i % 50, "preferred_region": f"r{i % 12}", "allowed_regions": [f"r{i % 12}", "global"],
             "required_labels": {"env": "prod" if i % 3 else "dev", "team": f"t{i % 20}"},
             "annotations": {"tier": "gold"}, "config": {"type": "static", "latency_ms": i % 100}}
            for i in range(count)]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(url: str, count: int) -> dict[str, float]:
    engine = database.create_engine(url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    providers = LocalProviders(store, ProviderStates(engine), store.pm)
    try:
        return {
            "apply (create)": timed(lambda: providers.apply(documents(count))),
            "apply (unchanged)": timed(lambda: providers.apply(documents(count))),
            "apply (update all)": timed(lambda: providers.apply(documents(count, priority=1))),
            "find (validate every row, with state)": timed(providers.find),
        }
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL database")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backends = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    print("| backend | providers | operation | median seconds | rows/s |")
    print("|---|---:|---|---:|---:|")
    for backend, postgres in backends:
        for count in map(int, args.sizes.split(",")):
            runs = []
            for _ in range(args.repeat):
                with scratch_database(postgres, "bench") as url:
                    runs.append(run(url, count))
            for operation in runs[0]:
                median = statistics.median(r[operation] for r in runs)
                print(f"| {backend} | {count} | {operation} | {median:.3f} | {count / median:,.0f} |")


if __name__ == "__main__":
    main()
