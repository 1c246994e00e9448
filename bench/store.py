"""How long the provider store takes to apply, re-apply and read N providers.

Rerun: .venv/bin/python bench/store.py [--postgres URL] [--sizes 100,1000,10000]
Each figure is the median of --repeat runs on a fresh database (SQLite file in a temp dir; with
--postgres, a fresh schema in that database).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from hodei import database
from hodei.plugins import make_plugin_manager
from hodei.store import Store
from sqlalchemy.engine import make_url


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
    store = Store(engine, make_plugin_manager())
    try:
        return {
            "apply (create)": timed(lambda: store.apply(documents(count))),
            "apply (unchanged)": timed(lambda: store.apply(documents(count))),
            "apply (update all)": timed(lambda: store.apply(documents(count, priority=1))),
            "list (validate every row)": timed(store.list),
        }
    finally:
        store.close()


def sqlite_url() -> str:
    return f"sqlite:///{tempfile.mkdtemp()}/bench.db"


_SCHEMAS: list[tuple[str, str]] = []


def postgres_url(base: str) -> str:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    _SCHEMAS.append((base, schema))
    engine = sa.create_engine(base)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL database")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backends = [("sqlite", sqlite_url)] + ([("postgresql", lambda: postgres_url(args.postgres))]
                                           if args.postgres else [])
    print("| backend | providers | operation | median seconds | rows/s |")
    print("|---|---:|---|---:|---:|")
    for backend, make in backends:
        for count in map(int, args.sizes.split(",")):
            runs = [run(make(), count) for _ in range(args.repeat)]
            for operation in runs[0]:
                median = statistics.median(r[operation] for r in runs)
                print(f"| {backend} | {count} | {operation} | {median:.3f} | {count / median:,.0f} |")
    for base, schema in _SCHEMAS:
        engine = sa.create_engine(base)
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


if __name__ == "__main__":
    main()
