"""Workers on SQLite and PostgreSQL: provisioning with reservations, failover, release, the legal
transitions, and reconciliation. The ``static`` provider type is the backend (in this process)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
from hodei import database
from hodei.builtin_plugins import static_provider
from hodei.domain import BackendWorker, HealthStatus
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.settings import WorkerSettings
from hodei.store import Store
from hodei.workers import (
    IllegalTransition,
    NoProviderAvailable,
    Reconciler,
    WorkerState,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class World:
    """A store, the workers table and a provisioner, as the CLI builds them."""

    def __init__(self, url: str, **settings: Any):
        engine = database.create_engine(url)
        database.upgrade(engine)
        self.pm = make_plugin_manager(enable=["static"])
        self.store = Store(engine, self.pm)
        self.chain = build_chain(self.pm)
        self.settings = WorkerSettings.model_validate({"provision_timeout_seconds": 1.0, **settings})
        self.services = on_database(self.store, self.chain, self.settings)
        self.records, self.states = self.services.records, self.services.states
        # The providers a failed provision was reported on (the daemon checks their health at once).
        self.failures: list[uuid.UUID] = []
        self.provisioner = self.services.provisioner
        self.provisioner.on_failure = self.failures.append

    def job(self, **fields: Any) -> Any:
        return self.chain.parse_requirements(fields)

    def reconciler(self, **settings: Any) -> Reconciler:
        merged = WorkerSettings.model_validate({**self.settings.model_dump(), **settings})
        providers = {}
        for row in self.store.all():
            if row.valid:
                providers[row.id] = row.to_provider()

        async def call(func: Any, *args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return Reconciler(self.pm, self.records, self.provisioner, merged, providers=lambda: providers, call=call)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def world(hodei_database_url: str) -> Any:
    w = World(hodei_database_url)
    yield w
    w.close()


async def test_provision_then_release(world: World) -> None:
    world.store.create({"name": "p", "provider_type": "static", "max_workers": 2})
    result = await world.provisioner.provision(world.job(cpu=0))
    worker = result.worker
    assert worker.state is WorkerState.RUNNING and worker.provider_name == "p"
    assert worker.backend_id == f"static-{worker.id}"
    assert [(a.provider, a.outcome) for a in result.attempts] == [("p", "provisioned")]
    assert world.states.of("p").active_workers == 1
    backend = static_provider._WORKERS[str(worker.provider_id)]
    assert worker.id in backend

    released = await world.provisioner.release(worker.id)
    assert released.state is WorkerState.TERMINATED and released.ended_at is not None
    assert worker.id not in backend
    assert (await world.provisioner.release(worker.id)).state is WorkerState.TERMINATED, "release is idempotent"
    assert world.states.of("p").active_workers == 0


async def test_max_workers_holds_and_the_refusal_says_why(world: World) -> None:
    world.store.create({"name": "small", "provider_type": "static", "max_workers": 2})
    for _ in range(2):
        await world.provisioner.provision(world.job())
    with pytest.raises(NoProviderAvailable) as info:
        await world.provisioner.provision(world.job())
    assert "1 at capacity (small: 2/2)" in str(info.value)


async def test_failover_to_the_next_ranked_provider(world: World) -> None:
    world.store.create({"name": "first", "provider_type": "static", "priority": 10,
                        "config": {"fail_provision": "engine refused"}})
    world.store.create({"name": "second", "provider_type": "static", "priority": 5})
    result = await world.provisioner.provision(world.job())
    assert result.worker.provider_name == "second"
    assert [(a.provider, a.outcome, a.reason) for a in result.attempts] == [
        ("first", "failed", "RuntimeError: engine refused"), ("second", "provisioned", "")]
    assert result.worker.attempts[0]["reason"] == "RuntimeError: engine refused"
    failed = [w for w in world.records.find() if w.provider_name == "first"]
    assert [(w.state, w.reason) for w in failed] == [(WorkerState.FAILED, "provision failed: RuntimeError: engine refused")]
    assert world.states.of("first").active_workers == 0, "the failed attempt gave its slot back"
    # The failure counts toward the provider's cooldown, not its health: one failure is not yet a cooldown,
    # so the next request tries it again (tests/test_cooldown.py: three in a row are).
    state = world.states.of("first")
    assert state.health is None and (state.provision_failures, state.cooldown_until) == (1, None)
    assert world.failures == [world.store.get("first").id]  # reported: the daemon checks it at once
    assert (await world.provisioner.provision(world.job())).attempts[0].provider == "first"


async def test_a_provider_that_hangs_times_out_and_the_next_one_is_tried(world: World) -> None:
    world.store.create({"name": "slow", "provider_type": "static", "priority": 10, "config": {"latency_ms": 5000}})
    world.store.create({"name": "quick", "provider_type": "static"})
    with anyio.fail_after(10):
        result = await world.provisioner.provision(world.job())
    assert result.worker.provider_name == "quick"
    assert result.attempts[0].reason == "did not answer within 1 s"


async def test_attempts_are_bounded(hodei_database_url: str) -> None:
    world = World(hodei_database_url, max_attempts=2)
    try:
        for i in range(4):
            world.store.create({"name": f"bad{i}", "provider_type": "static", "config": {"fail_provision": "no"}})
        with pytest.raises(NoProviderAvailable) as info:
            await world.provisioner.provision(world.job())
        assert [a.provider for a in info.value.attempts] == ["bad0", "bad1"]
        assert "bad0: RuntimeError: no; bad1: RuntimeError: no" in str(info.value)
    finally:
        world.close()


async def test_only_legal_transitions(world: World) -> None:
    world.store.create({"name": "p", "provider_type": "static"})
    worker = (await world.provisioner.provision(world.job())).worker
    await world.provisioner.release(worker.id)
    for state in (WorkerState.RUNNING, WorkerState.PROVISIONING, WorkerState.RELEASING):
        with pytest.raises(IllegalTransition):
            world.records.transition(worker.id, state)
    assert world.records.get(worker.id).state is WorkerState.TERMINATED


# -- reconciliation -------------------------------------------------------------------------------


async def test_a_worker_the_backend_lost_is_terminated_and_frees_its_slot(world: World) -> None:
    world.store.create({"name": "p", "provider_type": "static", "max_workers": 1})
    worker = (await world.provisioner.provision(world.job())).worker
    static_provider._WORKERS[str(worker.provider_id)].pop(worker.id)  # it died on the backend
    reconciler = world.reconciler()
    await reconciler.reconcile()
    gone = world.records.get(worker.id)
    assert (gone.state, gone.reason) == (WorkerState.TERMINATED, "the backend no longer has it")
    assert reconciler.actions == {"terminated": 1}
    assert (await world.provisioner.provision(world.job())).worker.provider_name == "p"


async def test_orphans_are_removed_after_the_grace_period(world: World) -> None:
    world.store.create({"name": "p", "provider_type": "static"})
    provider = world.store.get("p")
    orphans = static_provider._WORKERS.setdefault(str(provider.id), {})
    orphans["crashed-mid-provision"] = BackendWorker("crashed-mid-provision", "static-x")
    kept = (await world.provisioner.provision(world.job())).worker
    clock = [0.0]
    reconciler = world.reconciler(orphan_grace_seconds=60)
    reconciler.clock = lambda: clock[0]
    await reconciler.reconcile()
    assert "crashed-mid-provision" in orphans, "not within the grace period"
    clock[0] = 61.0
    await reconciler.reconcile()
    assert "crashed-mid-provision" not in orphans and kept.id in orphans
    assert reconciler.actions == {"orphan_removed": 1}


async def test_a_reservation_that_never_finished_expires(world: World) -> None:
    world.store.create({"name": "p", "provider_type": "static", "max_workers": 1})
    provider = world.store.get("p")
    world.records.reserve(provider.id, worker_id="stuck", token="t", requirements={})
    with pytest.raises(NoProviderAvailable):
        await world.provisioner.provision(world.job())
    await world.reconciler(reservation_timeout_seconds=3600).reconcile()
    assert world.records.get("stuck").state is WorkerState.PROVISIONING
    await world.reconciler(reservation_timeout_seconds=0.001).reconcile()
    assert world.records.get("stuck").state is WorkerState.FAILED
    assert "reservation expired" in world.records.get("stuck").reason
    assert (await world.provisioner.provision(world.job())).worker.provider_name == "p"


async def test_workers_past_their_lifetime_are_released(world: World) -> None:
    world.store.create({"name": "p", "provider_type": "static"})
    worker = (await world.provisioner.provision(world.job())).worker
    await world.reconciler(max_lifetime_seconds=3600).reconcile()
    assert world.records.get(worker.id).state is WorkerState.RUNNING
    await anyio.sleep(0.05)
    await world.reconciler(max_lifetime_seconds=0.01).reconcile()
    ended = world.records.get(worker.id)
    assert (ended.state, ended.reason) == (WorkerState.TERMINATED, "past its maximum lifetime")


# -- a release racing the reconciler ------------------------------------------------------------


class Backend:
    """Counts the deprovisions that reach the backend (from the provisioner and the reconciler) and can
    hold the first one, before or after the backend lets the worker go."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, hold: str):
        from hodei.calls import ProviderHooks

        self.deprovisions = 0
        self.held = anyio.Event()
        self.go = anyio.Event()
        real = ProviderHooks.deprovision

        # Both the provisioner and the reconciler ask the backend through the typed provider hooks.
        async def deprovision(hooks: ProviderHooks, provider: Any, handle: Any, timeout: float) -> None:
            self.deprovisions += 1
            first = self.deprovisions == 1
            if first and hold == "before":
                self.held.set()
                await self.go.wait()
            await real(hooks, provider, handle, timeout)
            if first and hold == "after":
                self.held.set()
                await self.go.wait()

        monkeypatch.setattr(ProviderHooks, "deprovision", deprovision)


async def test_a_release_in_flight_is_not_asked_of_the_backend_again_by_the_reconciler(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.store.create({"name": "p", "provider_type": "static"})
    worker = (await world.provisioner.provision(world.job())).worker
    backend = Backend(monkeypatch, hold="before")
    reconciler = world.reconciler()
    answers: list[Any] = []

    async def release() -> None:
        answers.append(await world.provisioner.release(worker.id))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(release)
            await backend.held.wait()  # the release is asking the backend; the backend still lists it
            await reconciler.reconcile()
            backend.go.set()
    assert backend.deprovisions == 1
    assert [a.state for a in answers] == [WorkerState.TERMINATED]
    assert world.states.of("p").active_workers == 0


async def test_a_second_release_waits_for_the_first_and_answers_the_same(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.store.create({"name": "p", "provider_type": "static"})
    worker = (await world.provisioner.provision(world.job())).worker
    backend = Backend(monkeypatch, hold="before")
    answers: list[Any] = []

    async def release() -> None:
        answers.append(await world.provisioner.release(worker.id))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(release)
            await backend.held.wait()
            group.start_soon(release)
            await anyio.sleep(0.1)
            backend.go.set()
    assert backend.deprovisions == 1
    assert [a.state for a in answers] == [WorkerState.TERMINATED] * 2


async def test_a_release_ended_meanwhile_by_another_daemons_reconciler_is_answered_as_released(
        hodei_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two daemons on one database: A releases; B's reconciler leaves the release alone while A may be
    asking the backend, and ends the worker once the backend no longer has it; A's release still
    answers TERMINATED (a release is idempotent), and the backend was asked once."""
    a, b = World(hodei_database_url), World(hodei_database_url)
    try:
        a.store.create({"name": "p", "provider_type": "static"})
        worker = (await a.provisioner.provision(a.job())).worker
        answers: list[Any] = []

        async def release() -> None:
            answers.append(await a.provisioner.release(worker.id))

        before = Backend(monkeypatch, hold="before")
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(release)
                await before.held.wait()
                await b.reconciler().reconcile()  # RELEASING, still listed: A may be asking right now
                assert before.deprovisions == 1
                assert b.records.get(worker.id).state is WorkerState.RELEASING
                before.go.set()
        assert [w.state for w in answers] == [WorkerState.TERMINATED]

        worker = (await a.provisioner.provision(a.job())).worker
        answers.clear()
        after = Backend(monkeypatch, hold="after")
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(release)
                await after.held.wait()  # the backend let it go; A has not written that yet
                reconciler = b.reconciler()
                await reconciler.reconcile()
                assert reconciler.actions == {"terminated": 1}
                after.go.set()
        assert after.deprovisions == 1
        assert [w.state for w in answers] == [WorkerState.TERMINATED]
        assert a.states.of("p").active_workers == 0
    finally:
        a.close()
        b.close()


# -- a failure the job causes -----------------------------------------------------------------


async def test_a_job_whose_image_cannot_be_pulled_fails_alone_and_the_provider_stays_healthy(world: World) -> None:
    """One tenant asking again and again for an image the shared provider allows but cannot pull: each
    request fails as the job's own failure; the provider's health, status and slots are untouched,
    no other provider is tried for it, and every other tenant is still served."""
    world.store.create({"name": "shared", "provider_type": "static", "priority": 10, "max_workers": 2,
                        "config": {"allowed_images": ["team/*"], "missing_images": ["team/ghost:1"]}})
    world.store.create({"name": "spare", "provider_type": "static", "config": {"allowed_images": ["team/*"]}})
    for _ in range(10):
        with pytest.raises(NoProviderAvailable) as info:
            await world.provisioner.provision(world.job(image="team/ghost:1"))
        assert "the job cannot start" in str(info.value) and "team/ghost:1" in str(info.value)
        assert [(a.provider, a.outcome) for a in info.value.attempts] == [("shared", "failed")]
    assert world.failures == []  # nothing reported against any provider
    assert world.states.of("shared").health is not HealthStatus.UNHEALTHY
    assert world.store.get("shared").status == "ACTIVE"
    assert world.states.of("shared").reserved_workers == 0 and world.states.of("spare").active_workers == 0
    other = await world.provisioner.provision(world.job(image="team/real:2"))
    assert other.worker.provider_name == "shared"


# -- a request cancelled while it holds a slot ---------------------------------------------------


async def test_a_provisioning_cancelled_while_the_plugin_works_gives_its_slot_back(world: World) -> None:
    world.store.create({"name": "slow", "provider_type": "static", "max_workers": 1,
                        "config": {"latency_ms": 800}})
    with anyio.move_on_after(0.2):
        await world.provisioner.provision(world.job())
    [worker] = world.records.find(states=list(WorkerState))
    assert worker.state is WorkerState.FAILED and "cancelled" in worker.reason
    assert world.states.of("slow").reserved_workers == 0
    assert world.failures == []  # the caller left: nothing is wrong with the provider
    assert (await world.provisioner.provision(world.job())).worker.provider_name == "slow"


async def test_a_provisioning_cancelled_after_the_plugin_started_the_worker_stops_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.store.create({"name": "p", "provider_type": "static", "max_workers": 1})
    writes = world.provisioner.writes
    real = writes.write

    async def slow_running_write(write: Any) -> Any:
        if getattr(write, "new", None) is WorkerState.RUNNING:
            await anyio.sleep(5)  # the caller gives up here: the worker runs, not yet recorded
        return await real(write)

    monkeypatch.setattr(writes, "write", slow_running_write)
    with anyio.move_on_after(0.3):
        await world.provisioner.provision(world.job())
    [worker] = world.records.find(states=list(WorkerState))
    assert worker.state is WorkerState.FAILED and "cancelled" in worker.reason
    backend = static_provider._WORKERS.get(str(worker.provider_id), {})
    assert worker.id not in backend, "the worker it started was stopped"
    assert world.states.of("p").reserved_workers == 0 and world.states.of("p").active_workers == 0
