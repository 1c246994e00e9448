"""The daemon's view of the fleet changes without work that grows with the fleet on the event loop: a
status change updates the selection index in place, and a new index (rows changed) is built in a worker
thread while the states learnt meanwhile are kept."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import anyio
import pytest
from hodei.daemon import fleet as fleet_module
from hodei.daemon.fleet import Fleet
from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus
from hodei.plugins import make_plugin_manager
from hodei.selection import Requirements, Selector, build_chain
from hodei.selection.report import Page
from hodei.testing.selection import provider, state
from hodei.testing.strategies import fleets, jobs
from hypothesis import given, settings
from hypothesis import strategies as st

STATUSES = st.sampled_from(list(ProviderStatus))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _answer(selector: Selector, job: Requirements) -> tuple[Any, ...]:
    report = selector.report(job, page=Page(size=None))
    return (report.selected, report.tier, [(r.candidate.name, r.position) for r in report.ranking],
            [(r.name, [name for name, _ in r.reasons]) for r in report.rejected], report.eligible)


@settings(max_examples=60, deadline=None)
@given(fleet=fleets(), changes=st.lists(st.tuples(st.integers(min_value=0), STATUSES), max_size=6), job=jobs)
def test_a_status_changed_in_place_decides_as_an_index_built_anew(
        fleet: tuple[list[Provider], dict[str, ProviderState]], changes: list[tuple[int, ProviderStatus]],
        job: Requirements) -> None:
    """Whatever statuses change, one after the other, the index updated in place answers every job as an
    index built from scratch on the providers as they now are: same choice, tier, ranking and rejections."""
    providers, states = fleet
    chain = build_chain(make_plugin_manager(load_entry_points=False))
    by_id = {p.id: states.get(p.name, state()) for p in providers}
    live = Selector(chain, providers, by_id)
    current = list(providers)
    for position, status in changes:
        if not current:
            break
        changed = dataclasses.replace(current[position % len(current)], status=status)
        current[position % len(current)] = changed
        assert live.update_status(changed)
    assert _answer(live, job) == _answer(Selector(chain, current, by_id), job)


class _Reads:
    """Just enough of the fleet reads for :meth:`Fleet.rebuilt` (rows are placed in the fleet directly)."""


@pytest.fixture
def slow_index(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Selectors built in a worker thread wait until the test lets them finish."""
    started, go = threading.Event(), threading.Event()
    real = fleet_module.Selector

    def held(*args: Any) -> Selector:
        if len(args) == 1:  # the empty selector a new fleet starts with
            return real(*args)
        assert threading.current_thread() is not threading.main_thread(), "the index was built on the event loop"
        started.set()
        go.wait(10)
        return real(*args)

    monkeypatch.setattr(fleet_module, "Selector", held)
    return started, go


@pytest.mark.anyio
async def test_an_index_built_in_a_thread_keeps_the_states_and_statuses_learnt_meanwhile(
        slow_index: tuple[threading.Event, threading.Event]) -> None:
    """While the new index is built, selection keeps answering from the old one, and a health result and
    a status change that arrive meanwhile are on the new one once it replaces the old."""
    started, go = slow_index
    chain = build_chain(make_plugin_manager(load_entry_points=False))
    fleet = Fleet(_Reads(), chain)  # type: ignore[arg-type]
    a, b = provider("a", priority=10), provider("b")
    fleet.providers = {a.id: a, b.id: b}
    fleet.states = {a.id: state(), b.id: state()}
    fleet._stale = True
    old = fleet.selector
    async with anyio.create_task_group() as group:
        group.start_soon(fleet.rebuilt)
        await anyio.to_thread.run_sync(started.wait, 10)
        assert fleet.selector is old  # answers go on meanwhile
        fleet.set_state(a.id, dataclasses.replace(state(), health=HealthStatus.UNHEALTHY))
        fleet.set_status(b.id, ProviderStatus.MAINTENANCE)
        go.set()
    assert fleet.selector is not old
    decision = fleet.selector.select(Requirements())
    assert decision.selected is None  # a: Unhealthy since; b: in maintenance since
    report = fleet.selector.report(Requirements(), page=Page(size=None))
    assert {r.name: [name for name, _ in r.reasons] for r in report.rejected} == {"a": ["health"], "b": ["status"]}


@pytest.mark.anyio
async def test_rows_applied_during_a_build_are_built_too(slow_index: tuple[threading.Event, threading.Event]) -> None:
    """A provider added while an index is being built is in the selector once the build returns."""
    started, go = slow_index
    chain = build_chain(make_plugin_manager(load_entry_points=False))
    fleet = Fleet(_Reads(), chain)  # type: ignore[arg-type]
    a, b = provider("a"), provider("b", priority=10)
    fleet.providers, fleet._stale = {a.id: a}, True
    async with anyio.create_task_group() as group:
        group.start_soon(fleet.rebuilt)
        await anyio.to_thread.run_sync(started.wait, 10)
        fleet.providers[b.id], fleet._stale = b, True  # what apply does with a new row
        go.set()
    selected = fleet.selector.select(Requirements()).selected
    assert selected is not None and selected.name == "b"
