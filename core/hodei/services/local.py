"""The services on the database alone, as the CLI runs them without a daemon (and tests use them):
every decision reads the providers and their state as they are now."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from hodei.domain import HealthResult
from hodei.selection import InvalidRow, SelectionChain, Selector
from hodei.services.providers import DEFAULT_CHECK_TIMEOUT, LocalProviders, provider_lookup
from hodei.services.selection import LocalSelection
from hodei.services.workers import LocalWorkers
from hodei.settings import WorkerSettings
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.workers import Provisioner, WorkerRecords


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
class OnDatabase:
    store: Store
    states: ProviderStates
    providers: LocalProviders
    selection: LocalSelection
    records: WorkerRecords
    provisioner: Provisioner
    workers: LocalWorkers


def on_database(store: Store, chain: SelectionChain, settings: WorkerSettings | None = None, *,
                actor: str | None = None, check_timeout: float = DEFAULT_CHECK_TIMEOUT) -> OnDatabase:
    """The three services over ``store``'s database, with ``chain``'s rules; the changes they make are
    ``actor``'s (default: this process's user, as the CLI's)."""
    states = ProviderStates(store.engine)
    providers = LocalProviders(store, states, store.pm, actor=actor, check_timeout=check_timeout)
    selection = LocalSelection(lambda: selector_from_database(store, states, chain), lambda: chain)
    records = WorkerRecords(store.engine)

    async def count_failure(provider_id: uuid.UUID, result: HealthResult) -> None:
        # A failed provision counts as a failed health check, as the daemon counts it.
        providers.record_check(provider_id, result)

    provisioner = Provisioner(store.pm, records, settings or WorkerSettings(), selection=selection,
                              on_failure=count_failure, provider_of=provider_lookup(store))
    workers = LocalWorkers(provisioner, records, selection, provider_id=lambda ref: store.get(ref).id)
    return OnDatabase(store, states, providers, selection, records, provisioner, workers)
