"""The placement queue on SQLite and PostgreSQL: a request that fits nowhere now waits and is placed the
moment a slot frees; one that can never fit is refused at once; priority then arrival; a provider a
request ahead could use is kept for it; cancel; the deadline with the last reasons; a restarted daemon's
client keeps its place."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from hodei import database
from hodei.errors import InvalidInput, NotFound
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.services.workers import LocalWorkers, NoProviderAvailable, WaitCancelled
from hodei.settings import WorkerSettings
from hodei.store import Store
from hodei.workers import Worker
from hodei.workers.queue_records import QueueRecords

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class World:
    def __init__(self, url: str):
        engine = database.create_engine(url)
        database.upgrade(engine)
        self.pm = make_plugin_manager(enable=["static"])
        self.store = Store(engine, self.pm)
        self.services = on_database(self.store, build_chain(self.pm),
                                    WorkerSettings.model_validate({"provision_timeout_seconds": 2.0}))
        self.workers: LocalWorkers = self.services.workers
        # Far longer than any wait below: a request placed in time was placed by an event, not a sweep.
        self.workers.queue.sweep_seconds = 60.0
        self.rows = QueueRecords(engine)

    async def waiting_ids(self) -> list[str]:
        return [e.id for e in await self.workers.waiting()]

    async def until_waiting(self, count: int) -> None:
        with anyio.fail_after(10):
            while len(await self.waiting_ids()) < count:
                await anyio.sleep(0.02)


@pytest.fixture
def world(hodei_database_url: str) -> Any:
    w = World(hodei_database_url)
    yield w
    w.store.close()


async def test_a_request_waits_and_is_placed_the_moment_a_slot_frees(world: World) -> None:
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    first = await world.workers.provision({})
    placed: list[Worker] = []
    async with anyio.create_task_group() as group:
        async def wait() -> None:
            placed.append(await world.workers.provision({"cpu": 0}, wait_seconds=30, request_id="job-1"))

        group.start_soon(wait)
        await world.until_waiting(1)
        [entry] = await world.workers.waiting()
        assert (entry.position, entry.id, entry.priority) == (1, "job-1", 0)
        assert "at capacity" in entry.reasons and "one: 1/1" in entry.reasons
        freed = time.monotonic()
        await world.workers.release(first.id, "done")
    assert time.monotonic() - freed < 5, "placed by the release, not by the 60 s sweep"
    assert [w.provider_name for w in placed] == ["one"]
    assert await world.waiting_ids() == [], "a placed request leaves the queue"


async def test_a_request_that_can_never_fit_is_refused_at_once(world: World) -> None:
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1,
                        "required_labels": {"gpu": "a100"}, "allowed_regions": ["eu-west-1"]})
    await world.workers.provision({"required_labels": {"gpu": "a100"}})  # full now: full is not the reason
    started = time.monotonic()
    with pytest.raises(NoProviderAvailable) as info:
        await world.workers.provision({"required_labels": {"gpu": "h100"}}, wait_seconds=600)
    assert time.monotonic() - started < 5
    assert "could ever take" in str(info.value) and 'gpu=h100' in str(info.value)
    with pytest.raises(NoProviderAvailable, match="could ever take"):
        await world.workers.provision({"allowed_regions": ["us-east-1"]}, wait_seconds=600)
    assert await world.waiting_ids() == []


async def test_the_deadline_answers_with_the_last_reasons(world: World) -> None:
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    await world.workers.provision({})
    started = time.monotonic()
    with pytest.raises(NoProviderAvailable) as info:
        await world.workers.provision({}, wait_seconds=0.5)
    assert 0.4 < time.monotonic() - started < 5
    assert "within the 0.5 s the request could wait" in str(info.value) and "one: 1/1" in str(info.value)
    assert await world.waiting_ids() == []


async def test_a_disabled_provider_is_waited_for_and_enabling_it_places(world: World) -> None:
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1, "status": "DISABLED"})
    placed: list[Worker] = []
    async with anyio.create_task_group() as group:
        async def wait() -> None:
            placed.append(await world.workers.provision({}, wait_seconds=30))

        group.start_soon(wait)
        await world.until_waiting(1)
        assert "not ACTIVE" in (await world.workers.waiting())[0].reasons
        world.services.providers.set_status("one", "ACTIVE", "maintenance done")
        world.workers.queue.wake()  # the daemon's change listener does this; the CLI alone sweeps
    assert [w.provider_name for w in placed] == ["one"]


async def test_waiting_requests_are_placed_together_in_one_transaction(world: World) -> None:
    """Slots freed at once place the waiting requests in one round: the first in the queue, as many as
    fit, reserved in one transaction; the provider never holds more than its max_workers."""
    from hodei.provider_change import ProviderChange

    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    await world.workers.provision({})
    placed: list[str] = []
    queue = world.workers.queue
    async with anyio.create_task_group() as group:
        async def wait(request_id: str) -> None:
            await world.workers.provision({}, wait_seconds=30, request_id=request_id)
            placed.append(request_id)

        for i in range(12):
            group.start_soon(wait, f"r{i:02d}")
            await world.until_waiting(i + 1)
        batches, reserved = queue.batches, queue.reserved
        world.store.update("one", ProviderChange(fields={"max_workers": 11}))  # ten more slots, for twelve
        queue.wake()  # the daemon's change listener does this; the CLI alone sweeps
        with anyio.fail_after(10):
            while len(placed) < 10:
                await anyio.sleep(0.02)
        assert sorted(placed) == [f"r{i:02d}" for i in range(10)], "the first ten in the queue"
        assert (queue.batches - batches, queue.reserved - reserved) == (1, 10), "one transaction reserved ten"
        assert await world.waiting_ids() == ["r10", "r11"]
        assert len(await world.workers.find(provider="one")) == 11
        group.cancel_scope.cancel()
    assert await world.waiting_ids() == []


async def test_higher_priority_first_then_arrival(world: World) -> None:
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    running = await world.workers.provision({})
    order: list[str] = []
    async with anyio.create_task_group() as group:
        async def wait(request_id: str, priority: int) -> None:
            worker = await world.workers.provision({"priority": priority}, wait_seconds=30, request_id=request_id)
            order.append(request_id)
            await world.workers.release(worker.id, "done")

        for count, (request_id, priority) in enumerate([("low-1", 0), ("low-2", 0), ("high", 5)], start=1):
            group.start_soon(wait, request_id, priority)
            await world.until_waiting(count)
        entries = await world.workers.waiting()
        assert [(e.position, e.id, e.priority) for e in entries] == [(1, "high", 5), (2, "low-1", 0), (3, "low-2", 0)]
        await world.workers.release(running.id, "done")
    assert order == ["high", "low-1", "low-2"]


async def test_a_provider_a_request_ahead_could_use_is_kept_for_it(world: World) -> None:
    """A new request does not overtake a waiting one on the providers it waits for; a request ahead
    that waits for other providers does not hold it back."""
    world.store.create({"name": "big", "provider_type": "static", "max_workers": 1, "required_labels": {"size": "big"}})
    world.store.create({"name": "small", "provider_type": "static", "max_workers": 1})
    soon = datetime.now(UTC) + timedelta(seconds=60)
    # Waiting at another daemon, for "big" only (it needs the label).
    world.rows.join("elsewhere", 0, soon, {"required_labels": {"size": "big"}}, "daemon elsewhere")
    worker = await world.workers.provision({})  # "small" is no request's: placed
    assert worker.provider_name == "small"
    with pytest.raises(NoProviderAvailable) as info:
        await world.workers.provision({"required_labels": {"size": "big"}})
    assert "kept for requests waiting ahead" in str(info.value)
    # A higher priority goes before it, and takes "big".
    assert (await world.workers.provision({"required_labels": {"size": "big"}, "priority": 1})).provider_name == "big"


async def test_cancel_a_waiting_request(world: World) -> None:
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    await world.workers.provision({})
    failures: list[BaseException] = []
    async with anyio.create_task_group() as group:
        async def wait() -> None:
            try:
                await world.workers.provision({}, wait_seconds=30, request_id="doomed")
            except WaitCancelled as exc:
                failures.append(exc)

        group.start_soon(wait)
        await world.until_waiting(1)
        await world.workers.cancel("doomed")
    assert len(failures) == 1 and "cancelled" in str(failures[0])
    assert await world.waiting_ids() == []
    with pytest.raises(NotFound, match="no request 'doomed' waits"):
        await world.workers.cancel("doomed")


async def test_a_request_cancelled_at_another_daemon_stops_waiting(world: World) -> None:
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    await world.workers.provision({})
    failures: list[BaseException] = []
    async with anyio.create_task_group() as group:
        async def wait() -> None:
            try:
                await world.workers.provision({}, wait_seconds=30, request_id="there")
            except WaitCancelled as exc:
                failures.append(exc)

        group.start_soon(wait)
        await world.until_waiting(1)
        assert world.rows.leave("there")  # what another daemon's cancel does to the shared row
        world.workers.queue.wake()  # its NOTIFY on PostgreSQL; a sweep otherwise
    assert len(failures) == 1


async def test_a_client_gone_takes_its_request_out_of_the_queue(world: World) -> None:
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    await world.workers.provision({})
    with anyio.move_on_after(0.5):  # the gRPC server cancels a handler whose client went away
        await world.workers.provision({}, wait_seconds=30)
    assert await world.waiting_ids() == []


async def test_a_restarted_daemons_client_keeps_its_place(world: World) -> None:
    """A row outlives its daemon (killed: nothing removed it) for the claim grace: the client that comes
    back with the same request id keeps its arrival, ahead of later requests."""
    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    running = await world.workers.provision({})
    soon = datetime.now(UTC) + timedelta(seconds=60)
    world.rows.join("survivor", 0, soon, {}, "daemon killed")
    await anyio.sleep(0.05)
    order: list[str] = []
    async with anyio.create_task_group() as group:
        async def wait(request_id: str) -> None:
            worker = await world.workers.provision({}, wait_seconds=30, request_id=request_id)
            order.append(request_id)
            await world.workers.release(worker.id, "done")

        group.start_soon(wait, "later")
        await world.until_waiting(2)
        group.start_soon(wait, "survivor")  # the client reconnects
        with anyio.fail_after(10):
            while (await world.workers.waiting())[0].daemon == "daemon killed":
                await anyio.sleep(0.02)
        assert await world.waiting_ids() == ["survivor", "later"]
        await world.workers.release(running.id, "done")
    assert order == ["survivor", "later"]


async def test_a_row_nobody_claims_is_dropped_after_the_grace(world: World) -> None:
    old = datetime.now(UTC) + timedelta(seconds=60)
    world.rows.join("abandoned", 0, old, {}, "daemon killed")
    world.workers.queue.claim_grace_seconds = 0.1
    await anyio.sleep(0.3)
    assert await world.waiting_ids() == []


async def test_the_queue_pages_by_key_and_counts_positions_across_pages(world: World) -> None:
    """Pages follow the queue's order (priority, then arrival); a request leaving between two pages
    neither repeats nor skips one, and positions count from the head of the queue as each page is read."""
    soon = datetime.now(UTC) + timedelta(seconds=60)
    for i in range(7):
        world.rows.join(f"r{i}", 5 if i == 6 else 0, soon, {}, "a daemon")
        await anyio.sleep(0.002)  # distinct arrivals
    first, token = await world.workers.queue_page(limit=3)
    assert [(e.position, e.id) for e in first] == [(1, "r6"), (2, "r0"), (3, "r1")] and token
    world.rows.leave("r0")  # placed meanwhile
    second, token = await world.workers.queue_page(limit=3, page_token=token)
    assert [(e.position, e.id) for e in second] == [(3, "r2"), (4, "r3"), (5, "r4")] and token
    last, token = await world.workers.queue_page(limit=3, page_token=token)
    assert [(e.position, e.id) for e in last] == [(6, "r5")] and token == ""
    assert [e.id for e in await world.workers.waiting(limit=4)] == ["r6", "r1", "r2", "r3"]
    for bad in ("garbage", second[0].id):
        with pytest.raises(InvalidInput, match="page_token"):
            await world.workers.queue_page(page_token=bad)
    with pytest.raises(InvalidInput, match="limit"):
        await world.workers.queue_page(limit=1001)


@pytest.mark.parametrize(("field", "value"), [("wait_seconds", -1), ("wait_seconds", float("nan")),
                                              ("wait_seconds", 86401), ("request_id", "bad id\n")])
async def test_bad_wait_input_names_the_field(world: World, field: str, value: Any) -> None:
    with pytest.raises(InvalidInput, match=field):
        await world.workers.provision({}, **{field: value})


async def test_priority_is_bounded(world: World) -> None:
    with pytest.raises(InvalidInput, match="priority"):
        await world.workers.provision({"priority": 1001})


async def test_the_wait_is_counted_timed_and_traced(world: World) -> None:
    from hodei.observability.telemetry import Telemetry
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    telemetry = world.workers.queue.telemetry = Telemetry(span_exporter=exporter)

    def sample(name: str, **labels: str) -> float | None:
        return telemetry.registry.get_sample_value(name, labels)

    world.store.create({"name": "one", "provider_type": "static", "max_workers": 1})
    running = await world.workers.provision({})
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: world.workers.provision({}, wait_seconds=30, request_id="counted"))
        await world.until_waiting(1)
        with anyio.fail_after(10):  # the row is visible a moment before its waiter counts itself
            while sample("hodei_queue_waiting", reason="capacity") != 1:
                await anyio.sleep(0.01)
        await world.workers.release(running.id, "done")
    with pytest.raises(NoProviderAvailable):
        await world.workers.provision({}, wait_seconds=0.2)
    assert sample("hodei_queue_waiting", reason="capacity") == 0
    assert sample("hodei_queue_requests_total", outcome="placed") == 1
    assert sample("hodei_queue_requests_total", outcome="expired") == 1
    assert sample("hodei_queue_requests_total", outcome="cancelled") == 0
    assert sample("hodei_queue_wait_duration_seconds_count", outcome="placed") == 1
    waits = [s for s in exporter.get_finished_spans() if s.name == "hodei.queue.wait"]
    assert waits[0].attributes is not None and waits[0].attributes["hodei.request_id"] == "counted"
    assert [(s.attributes or {})["hodei.outcome"] for s in waits] == ["placed", "expired"]


def test_a_provider_recovering_wakes_the_waiting_requests(world: World) -> None:
    """The daemon's fleet tells the queue when a provider's health stops being Unhealthy (the queue's wake)."""
    from hodei.daemon.fleet import Fleet
    from hodei.domain import HealthStatus, ProviderState

    row = world.store.create({"name": "one", "provider_type": "static"})
    fleet = Fleet(world.store, build_chain(world.pm))
    fleet.providers[row.id] = world.store.get("one").to_provider()
    woken: list[bool] = []
    fleet.on_recovered = lambda: woken.append(True)
    fleet.set_state(row.id, ProviderState(health=HealthStatus.UNHEALTHY))
    fleet.set_state(row.id, ProviderState(health=HealthStatus.UNHEALTHY))
    assert woken == []
    fleet.set_state(row.id, ProviderState(health=HealthStatus.HEALTHY))
    assert woken == [True]


async def test_requests_placed_in_one_round_each_keep_their_own_decision(world: World) -> None:
    """The status page's recent decisions: a round decides many requests in one task, yet each provision's
    entry is its own selection and ends with its own outcome."""
    from hodei.services.decisions import Decisions

    world.services.selection.decisions = Decisions()
    for name in ("a", "b"):
        world.store.create({"name": name, "provider_type": "static", "max_workers": 1})
    firsts = [await world.workers.provision({}) for _ in range(2)]
    got: dict[str, str] = {}
    async with anyio.create_task_group() as group:
        for pool in ("x", "y"):
            async def wait(pool: str = pool) -> None:
                worker = await world.workers.provision({"labels": {"pool": pool}}, wait_seconds=30,
                                                       request_id=f"for-{pool}")
                got[pool] = worker.provider_name

            group.start_soon(wait)
        await world.until_waiting(2)
        for first in firsts:  # both slots free: the rounds place both requests
            await world.workers.release(first.id, "done")
    assert sorted(got.values()) == ["a", "b"]
    ended = [e for e in world.services.selection.decisions.latest() if e.kind == "provision" and e.outcome]
    for pool, provider in got.items():
        mine = [e for e in ended if f"'pool': '{pool}'" in e.job]
        assert mine, f"no decision kept for the request of pool {pool}"
        assert {e.outcome for e in mine} == {f"provisioned on {provider}"}, [(e.job, e.outcome) for e in ended]
