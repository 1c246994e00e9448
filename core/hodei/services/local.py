"""The service graph, built in one place for every entry point.

The CLI runs the services on the database alone (every decision reads the providers and their state as
they are now; tests use them so too). The daemon builds the same graph with its :class:`Runtime`:
selection from its live fleet and recorded in its telemetry, database calls through its link, its view
of the worker slots kept current, failed provisions handed to its health monitor (a check now) and the
cooldowns it records applied to its view.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hodei import actors
from hodei.cooldown import Policy, Streak
from hodei.domain import Provider
from hodei.health import Thresholds
from hodei.plugins import HodeiPluginManager, make_plugin_manager
from hodei.selection import InvalidRow, SelectionChain, Selector, build_chain
from hodei.selection.outcome import SelectionRecorder
from hodei.services.cooldowns import LocalCooldowns
from hodei.services.daemons import LocalDaemons
from hodei.services.decisions import Decisions
from hodei.services.fleet_reads import FleetReads
from hodei.services.health import LocalHealth
from hodei.services.providers import DEFAULT_CHECK_TIMEOUT, LocalProviders, provider_lookup
from hodei.services.selection import LocalSelection
from hodei.services.workers import LocalWorkers
from hodei.settings import CooldownSettings, HealthSettings, Settings, WorkerSettings
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.workers import Provisioner, WorkerRecords
from hodei.workers.queue import PlacementQueue
from hodei.workers.queue_records import QueueRecords


def plugin_manager(settings: Settings) -> HodeiPluginManager:
    """The plugins ``[plugins]`` allows, denies and enables."""
    plugins = settings.plugins
    return make_plugin_manager(allow=plugins.allow, deny=plugins.deny, enable=plugins.enable)


def selection_chain(settings: Settings, pm: HodeiPluginManager) -> SelectionChain:
    """The filters and rank steps ``[selection]`` names, from the plugins ``pm`` loaded."""
    selection = settings.selection
    return build_chain(pm, selection.filters, selection.rankers, selection.weights)


def open_store(settings: Settings, pm: HodeiPluginManager, *, check: bool = True, create: bool = False) -> Store:
    """The providers' store on ``[database] url``; with ``check``, refused unless the schema is current;
    with ``create``, a missing SQLite file is made (the daemon's), else it is an error.

    :raises DatabaseNotReady:
    """
    return Store.open(settings.database.url, pm, check=check, create=create)


def selector_from_database(store: Store, states: ProviderStates, chain: SelectionChain) -> Selector:
    """A selector over every row as it is now (an invalid row is shown in reports, never selected)."""
    providers, invalid = [], []
    for row in store.all():
        if row.valid:
            providers.append(row.to_provider())
        else:
            invalid.append(InvalidRow(row.name, tuple(row.problems)))
    return Selector(chain, providers, states.all(), invalid)


@dataclass(frozen=True)
class Runtime:
    """What a running daemon adds to the services.

    :param selector: its live selector (replaced when providers change).
    :param chain: its current chain (replaced on a reload).
    :param call: runs a blocking database call off its event loop, bounded in time.
    :param recorder: where served selections are counted and traced (its telemetry).
    :param telemetry: where provisions are counted and traced.
    :param on_slots: told how a provider's worker counts changed, so its live view follows.
    :param on_failure: told of a failed provision (its health monitor checks the provider at once).
    :param provider_of: a provider by id from its live view.
    :param on_cooldown: told a provider's streak of failed provisions as recorded, so its live view
        skips (or readmits) the provider at once.
    :param queue_sweep_seconds: how often its waiting requests are tried when no event said so.
    :param waiter: how ``hodei queue`` names it.
    :param decisions: where its served decisions are kept for the status page.
    """

    selector: Callable[[], Selector]
    chain: Callable[[], SelectionChain]
    call: Callable[..., Any]
    recorder: SelectionRecorder
    telemetry: Any
    on_slots: Callable[[uuid.UUID, int, int], Any]
    on_failure: Callable[[uuid.UUID], Any]
    provider_of: Callable[[uuid.UUID], Provider | None]
    on_cooldown: Callable[[uuid.UUID, Streak], None] | None = None
    queue_sweep_seconds: float = 5.0
    waiter: str = ""
    decisions: Decisions | None = None


@dataclass(frozen=True)
class OnDatabase:
    store: Store
    states: ProviderStates
    providers: LocalProviders
    selection: LocalSelection
    records: WorkerRecords
    provisioner: Provisioner
    workers: LocalWorkers
    health: LocalHealth
    daemons: LocalDaemons
    fleet_reads: FleetReads
    cooldowns: LocalCooldowns


def on_database(store: Store, chain: SelectionChain, settings: WorkerSettings | None = None, *,
                health: Thresholds | None = None, cooldown: Policy | None = None,
                runtime: Runtime | None = None, actor: str | None = None,
                check_timeout: float = DEFAULT_CHECK_TIMEOUT) -> OnDatabase:
    """The services over ``store``'s database, with ``chain``'s rules, ``[workers]`` ``settings``,
    ``[health]`` thresholds and ``[cooldown]`` policy; a daemon passes its ``runtime``. The changes they
    make are ``actor``'s (default: this process's user, as the CLI's); a check on demand is given
    ``check_timeout`` seconds. A cooldown its provisions start or end is the daemon's own (its health
    monitor's, as a failed check's) under a ``runtime``, else ``actor``'s."""
    states = ProviderStates(store.engine)
    checks = LocalHealth(store, store.pm, health or HealthSettings())
    cooldowns = LocalCooldowns(store, cooldown or CooldownSettings(),
                               actor=actor if runtime is None else actors.health_monitor())
    providers = LocalProviders(store, states, store.pm, checks, cooldowns, actor=actor, check_timeout=check_timeout)
    records = WorkerRecords(store.engine)
    if runtime is None:
        selection = LocalSelection(lambda: selector_from_database(store, states, chain), lambda: chain)
        provisioner = Provisioner(store.pm, records, settings or WorkerSettings(), selection=selection,
                                  provider_of=provider_lookup(store), cooldowns=cooldowns)
        call = None
    else:
        selection = LocalSelection(runtime.selector, runtime.chain, runtime.recorder, runtime.decisions)
        call = runtime.call
        provisioner = Provisioner(store.pm, records, settings or WorkerSettings(), selection=selection, call=call,
                                  on_slots=runtime.on_slots, on_failure=runtime.on_failure,
                                  provider_of=runtime.provider_of, telemetry=runtime.telemetry,
                                  cooldowns=cooldowns, on_cooldown=runtime.on_cooldown)
    queue = PlacementQueue(provisioner, QueueRecords(store.engine), selection=selection,
                           parse=selection.requirements, call=call,
                           # Alone (the CLI), nothing tells it of changes elsewhere: it looks more often.
                           sweep_seconds=runtime.queue_sweep_seconds if runtime else 1.0,
                           claim_grace_seconds=(settings or WorkerSettings()).queue_claim_grace_seconds,
                           waiter=runtime.waiter if runtime else f"cli {socket.gethostname()}:{os.getpid()}",
                           telemetry=runtime.telemetry if runtime else None)
    if runtime is None:
        def slot_freed(provider_id: uuid.UUID, reserved: int, active: int) -> None:
            if reserved + active < 0:  # this process freed a slot: its waiting requests look at once
                queue.wake()

        provisioner.on_slots = slot_freed
    workers = LocalWorkers(provisioner, records, selection, provider_id=lambda ref: store.get(ref).id, queue=queue,
                           call=call)
    return OnDatabase(store, states, providers, selection, records, provisioner, workers, checks,
                      LocalDaemons(store.engine), FleetReads(store, states), cooldowns)


__all__ = ["OnDatabase", "Runtime", "SelectionChain", "Store", "on_database", "open_store", "plugin_manager",
           "selection_chain", "selector_from_database"]
