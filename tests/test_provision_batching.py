"""Group commit of worker writes: concurrent requests share transactions and keep every guarantee of a
single write (max_workers across processes, each write decided on its own, nothing made for a write
cancelled before its batch left). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import anyio
import pytest
from hodei import database
from hodei.errors import NotFound
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.store import Store
from hodei.workers import CapacityExhausted, IllegalTransition, NoProviderAvailable, WorkerState
from hodei.workers.batching import WorkerWrites, WriteNotConfirmed
from hodei.workers.records import Reservation, Transition, WorkerRecords


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(hodei_database_url: str) -> Any:
    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    yield store
    store.close()


def reservation(provider_id: uuid.UUID, worker_id: str | None = None) -> Reservation:
    return Reservation(provider_id, worker_id or str(uuid.uuid4()), "digest", {"cpu": 1})


def test_each_write_of_a_batch_is_decided_on_its_own(store: Store) -> None:
    records = WorkerRecords(store.engine)
    small = store.create({"name": "small", "provider_type": "static", "max_workers": 3}).id
    off = store.create({"name": "off", "provider_type": "static", "status": "DISABLED"}).id
    results = records.write_many([reservation(small) for _ in range(5)] + [reservation(off), reservation(uuid.uuid4())])
    assert [r.state for r in results[:3]] == [WorkerState.PROVISIONING] * 3
    assert [str(r) for r in results[3:]] == ["small is at capacity (3/3)", "small is at capacity (3/3)",
                                             "off is DISABLED, not ACTIVE", "the provider was deleted"]
    assert all(isinstance(r, CapacityExhausted) for r in results[3:])
    first, second = results[0].id, results[1].id
    # A slot the batch frees is free for the batch's next reservation; a refused write changes nothing.
    results = records.write_many([
        Transition(first, WorkerState.FAILED, "gave up"), reservation(small, "again"),
        Transition(second, WorkerState.TERMINATED, "not from PROVISIONING"), Transition("nobody", WorkerState.FAILED),
        reservation(small)])
    assert results[0].state is WorkerState.FAILED and results[0].ended_at is not None
    assert results[1].id == "again" and results[1].state is WorkerState.PROVISIONING
    assert isinstance(results[2], IllegalTransition) and isinstance(results[3], NotFound)
    assert str(results[4]) == "small is at capacity (3/3)"
    assert records.get(second).state is WorkerState.PROVISIONING
    assert records.slot_counts()[small] == (3, 0)


def test_the_start_of_a_release_is_one_write(store: Store) -> None:
    records = WorkerRecords(store.engine)
    provider = store.create({"name": "p", "provider_type": "static"}).id
    provisioning, running = (records.write_many([reservation(provider)])[0].id for _ in range(2))
    records.transition(running, WorkerState.RUNNING)
    release = [Transition(w, WorkerState.RELEASING, "done", frozenset({WorkerState.RUNNING}), release=True)
               for w in (provisioning, running, running)]
    refused, started, again = records.write_many(release)
    assert isinstance(refused, IllegalTransition) and "still being provisioned" in str(refused)
    assert started.state is WorkerState.RELEASING and started.reason == "done"
    assert again.state is WorkerState.RELEASING  # a release asked twice: the second finds it releasing


@pytest.mark.anyio
async def test_concurrent_requests_share_commits_and_max_workers_holds(store: Store) -> None:
    provider = store.create({"name": "pool", "provider_type": "static", "max_workers": 25}).id
    chain = build_chain(store.pm)
    services = on_database(store, chain)
    writes = WorkerWrites(services.records)
    provisioner = services.provisioner
    provisioner.writes = writes
    outcomes: list[str] = []
    workers: list[str] = []

    async def one() -> None:
        try:
            workers.append((await provisioner.provision(chain.parse_requirements({}))).worker.id)
            outcomes.append("ok")
        except NoProviderAvailable as exc:
            outcomes.append(str(exc))

    async with anyio.create_task_group() as group:
        await group.start(writes.run)
        async with anyio.create_task_group() as requests:
            for _ in range(60):
                requests.start_soon(one)
        assert outcomes.count("ok") == 25
        assert all("pool is at capacity (25/25)" in o for o in outcomes if o != "ok")
        assert writes.batches < writes.batched  # some commits carried several requests' writes
        async with anyio.create_task_group() as releases:
            for worker_id in workers:
                releases.start_soon(provisioner.release, worker_id, "done")
        group.cancel_scope.cancel()
    assert services.records.slot_counts().get(provider, (0, 0)) == (0, 0)
    assert {w.state for w in services.records.find()} == {WorkerState.TERMINATED}


@pytest.mark.anyio
async def test_a_write_cancelled_in_the_queue_is_not_made_and_a_stop_answers_every_write(store: Store) -> None:
    records = WorkerRecords(store.engine)
    provider = store.create({"name": "p", "provider_type": "static"}).id
    gate = anyio.Event()

    async def slow_call(func: Any, *args: Any) -> Any:
        await gate.wait()  # the first batch holds the writer until the gate opens
        return func(*args)

    writes = WorkerWrites(records, slow_call, flushers=1)
    answers: dict[str, Any] = {}

    async def write(name: str) -> None:
        try:
            answers[name] = await writes.write(reservation(provider, name))
        except Exception as exc:
            answers[name] = exc

    async with anyio.create_task_group() as group, anyio.create_task_group() as writer:
        await writer.start(writes.run)
        group.start_soon(write, "first")
        await anyio.sleep(0.05)  # "first" is in flight, the next ones queue
        group.start_soon(write, "queued")
        async with anyio.create_task_group() as inner:
            inner.start_soon(write, "cancelled")
            await anyio.sleep(0.05)
            inner.cancel_scope.cancel()
        group.start_soon(write, "left")
        await anyio.sleep(0.05)
        gate.set()
        with anyio.fail_after(30):
            while len(answers) < 3:
                await anyio.sleep(0.01)
        assert answers["first"].id == "first" and answers["queued"].id == "queued" and answers["left"].id == "left"
        assert "cancelled" not in answers
        gate = anyio.Event()  # the next batch hangs: the writer is stopped under it
        group.start_soon(write, "in flight")
        await anyio.sleep(0.05)
        group.start_soon(write, "never sent")
        await anyio.sleep(0.05)
        writer.cancel_scope.cancel()
    assert isinstance(answers["in flight"], WriteNotConfirmed) and "confirmed" in str(answers["in flight"])
    assert isinstance(answers["never sent"], WriteNotConfirmed) and "made" in str(answers["never sent"])
    assert {w.id for w in records.find()} == {"first", "queued", "left"}


PROCESS = r"""
import json, sys
import anyio
from hodei import database
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.store import Store
from hodei.workers import NoProviderAvailable
from hodei.workers.batching import WorkerWrites

url, count = sys.argv[1], int(sys.argv[2])
store = Store(database.create_engine(url), make_plugin_manager(enable=["static"]))
chain = build_chain(store.pm)
provisioner = on_database(store, chain).provisioner
writes = provisioner.writes = WorkerWrites(provisioner.records)
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
        await group.start(writes.run)
        async with anyio.create_task_group() as requests:
            for _ in range(count):
                requests.start_soon(one)
        group.cancel_scope.cancel()

anyio.run(main)
print(json.dumps([outcomes, writes.batches, writes.batched]))
"""


def test_three_batching_processes_never_exceed_max_workers(hodei_database_url: str, store: Store) -> None:
    provider = store.create({"name": "solo", "provider_type": "static", "max_workers": 20}).id
    processes = [subprocess.Popen([sys.executable, "-c", PROCESS, hodei_database_url, str(count)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for count in (67, 67, 66)]
    results, batches, batched = [], 0, 0
    try:
        for process in processes:
            assert process.stdout is not None and process.stdin is not None
            assert process.stdout.readline().strip() == "ready", process.stderr and process.stderr.read()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, err
            outcomes, made, carried = json.loads(out.strip().splitlines()[-1])
            results += outcomes
            batches, batched = batches + made, batched + carried
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert sum(1 for outcome, _ in results if outcome == "ok") == 20
    refusals = {text for outcome, text in results if outcome == "refused"}
    assert refusals <= {"no provider could take the worker: solo: solo is at capacity (20/20)",
                        "no provider fits: 0/1 providers available: 1 at capacity (solo: 20/20)"}, refusals
    assert WorkerRecords(store.engine).slot_counts()[provider] == (0, 20)
    assert batches < batched
