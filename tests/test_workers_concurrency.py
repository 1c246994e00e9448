"""max_workers holds under contention: three processes sharing one database, 200 requests at once.

Each process provisions concurrently (as three daemons would), against one ``static`` provider with
``max_workers = 20``: exactly 20 succeed, every other request is refused with the capacity reason,
and after all are released the provider is back to 0/20. On PostgreSQL (row lock) and SQLite
(BEGIN IMMEDIATE).
"""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
from hodei import database
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.workers import WorkerState

PROCESS = r"""
import json, sys
import anyio
from hodei import database
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.store import Store
from hodei.workers import NoProviderAvailable

url, count = sys.argv[1], int(sys.argv[2])
store = Store(database.create_engine(url), make_plugin_manager(enable=["static"]))
chain = build_chain(store.pm)
provisioner = on_database(store, chain).provisioner
outcomes = []

async def one():
    try:
        result = await provisioner.provision(chain.parse_requirements({}))
        outcomes.append(["ok", result.worker.id])
    except NoProviderAvailable as exc:
        outcomes.append(["refused", str(exc)])

async def main():
    print("ready", flush=True)
    sys.stdin.readline()  # all three start together
    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(one)

anyio.run(main)
print(json.dumps(outcomes))
"""


def test_three_processes_200_requests_max_workers_20(hodei_database_url: str) -> None:
    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.create({"name": "solo", "provider_type": "static", "max_workers": 20})
    processes = [subprocess.Popen([sys.executable, "-c", PROCESS, hodei_database_url, str(count)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for count in (67, 67, 66)]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, err
            results += json.loads(out.strip().splitlines()[-1])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    succeeded = [detail for outcome, detail in results if outcome == "ok"]
    refused = [detail for outcome, detail in results if outcome == "refused"]
    assert len(results) == 200
    assert len(succeeded) == 20, f"{len(succeeded)} workers for max_workers = 20"
    assert len(refused) == 180 and all("at capacity" in reason for reason in refused), set(refused)
    assert ProviderStates(store.engine).of("solo").active_workers == 20

    services = on_database(store, build_chain(store.pm))
    records, provisioner = services.records, services.provisioner

    async def release_all() -> None:
        async with anyio.create_task_group() as group:
            for worker_id in succeeded:
                group.start_soon(provisioner.release, worker_id)

    anyio.run(release_all)
    assert {w.state for w in records.find(states=None)} == {WorkerState.TERMINATED}
    assert ProviderStates(store.engine).of("solo").active_workers == 0 and ProviderStates(store.engine).of("solo").reserved_workers == 0
    store.close()
