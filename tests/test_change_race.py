"""A change the daemon must not miss: reads of provider_configs run concurrently (the change listener,
a full re-read, the API's read-your-writes) and finish in any order. Each test forces one interleaving
with hooks in the read path, on SQLite and PostgreSQL; the old daemon kept the older version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hodei.daemon.config_watch import ConfigWatcher
from hodei.daemon.database import DatabaseLink
from hodei.daemon.fleet import Fleet
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.settings import DaemonSettings
from hodei.store import Store
from hodei.testing.daemon import run_sql

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class PausedRead:
    """``store.raw_rows`` whose first call, once it has read the rows, waits until released: an
    in-flight read that returns after everything else."""

    def __init__(self, store: Store):
        self.read = store.raw_rows
        self.done = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        rows = self.read(*args)
        if self.calls == 1:
            self.done.set()
            assert self.release.wait(30)
        return rows


def watcher_on(store: Store) -> tuple[ConfigWatcher, Fleet]:
    chain = build_chain(store.pm)
    fleet = Fleet(on_database(store, chain).fleet_reads, chain)
    return ConfigWatcher(fleet, DatabaseLink(10.0), DaemonSettings()), fleet


def priority(fleet: Fleet, name: str) -> int | None:
    return next((p.priority for p in fleet.providers.values() if p.name == name), None)


async def in_flight(store: Store, first: Callable[[], Any], meanwhile: Callable[[], Any]) -> None:
    """Start ``first`` (a read), hold it after its rows are read, run ``meanwhile``, then let it finish."""
    paused = PausedRead(store)
    store.raw_rows = paused  # type: ignore[method-assign]
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(first)
            await anyio.to_thread.run_sync(paused.done.wait, 30)
            await meanwhile()
            paused.release.set()
    finally:
        del store.raw_rows


async def test_a_notification_during_an_in_flight_refresh_of_the_same_row_keeps_the_newer_version(
        hodei_store: Store, hodei_database_url: str) -> None:
    store = hodei_store
    row = store.create({"name": "a", "provider_type": "static", "priority": 1})
    watcher, fleet = watcher_on(store)
    await watcher.resync("initial read")

    async def newer() -> None:
        run_sql(hodei_database_url, "UPDATE provider_configs SET priority = 2 WHERE name = 'a'")
        await watcher.refresh({row.id})  # the notification of the newer version, taken at once
        assert priority(fleet, "a") == 2

    # The first refresh read priority 1 (say, the API's read-your-writes), and returns last.
    await in_flight(store, lambda: watcher.refresh({row.id}), newer)
    assert priority(fleet, "a") == 2, "an older read replaced the newer version"


async def test_a_full_reread_in_flight_neither_reverts_nor_deletes_nor_revives_rows(
        hodei_store: Store, hodei_database_url: str) -> None:
    store = hodei_store
    a = store.create({"name": "a", "provider_type": "static", "priority": 1})
    gone = store.create({"name": "gone", "provider_type": "static"})
    watcher, fleet = watcher_on(store)
    await watcher.resync("initial read")

    async def meanwhile() -> None:
        run_sql(hodei_database_url, "UPDATE provider_configs SET priority = 5 WHERE name = 'a'")
        run_sql(hodei_database_url, "DELETE FROM provider_configs WHERE name = 'gone'")
        new = store.create({"name": "new", "provider_type": "static"})
        await watcher.refresh({a.id, gone.id, new.id})

    await in_flight(store, watcher.resync, meanwhile)
    assert sorted(p.name for p in fleet.providers.values()) == ["a", "new"]
    assert priority(fleet, "a") == 5


async def test_a_newer_read_that_found_a_row_unchanged_still_wins_over_an_older_one_applied_before_it(
        hodei_store: Store, hodei_database_url: str) -> None:
    """Reads prepared in one order and applied in the other: the newer read saw the version the fleet
    held, so it had nothing to validate; the older one then applied its (older) version first."""
    store = hodei_store
    store.create({"name": "a", "provider_type": "static", "priority": 1})
    _, fleet = watcher_on(store)
    fleet.apply(fleet.prepare(store.raw_rows()), complete=True)
    older_ticket = fleet.begin_read()
    run_sql(hodei_database_url, "UPDATE provider_configs SET priority = 7 WHERE name = 'a'")
    older_rows = store.raw_rows()  # priority 7 ...
    run_sql(hodei_database_url, "UPDATE provider_configs SET priority = 1 WHERE name = 'a'")
    newer = fleet.prepare(store.raw_rows(), fleet.begin_read())  # ... and back to 1: unchanged for it
    older = fleet.prepare(older_rows, older_ticket)
    fleet.apply(older, complete=False)
    fleet.apply(newer, complete=False)
    assert priority(fleet, "a") == 1


async def test_sqlite_polling_and_the_apis_read_your_writes_interleaved(hodei_sqlite_url: str, hodei_pm: Any) -> None:
    """On SQLite the change counter is polled; the API's refresh after its own write runs alongside."""
    from hodei import database

    engine = database.create_engine(hodei_sqlite_url)
    database.upgrade(engine)
    store = Store(engine, hodei_pm)
    try:
        row = store.create({"name": "a", "provider_type": "static", "priority": 1})
        watcher, fleet = watcher_on(store)
        await watcher.resync("initial read")

        async def poll_finds_a_change() -> None:
            run_sql(hodei_sqlite_url, "UPDATE provider_configs SET priority = 3 WHERE name = 'a'")
            await watcher.resync("change found")

        await in_flight(store, lambda: watcher.refresh({row.id}), poll_finds_a_change)
        assert priority(fleet, "a") == 3
    finally:
        store.close()
