"""The providers a running daemon serves, and what it knows of their state.

Rows are read raw, fingerprinted, and validated through their plugin only when they changed. A
row that changes into something invalid is reported, and its last valid version keeps serving:
a typo in a SQL UPDATE must not take a working provider away.

Nothing here that grows with the fleet runs on the event loop: a new selection index (rows added,
changed or removed) is built in a worker thread (:meth:`Fleet.rebuilt`), and the states and statuses
learnt meanwhile are replayed onto it; a change of state or status updates the index in place.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import anyio

from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus
from hodei.errors import Problem
from hodei.selection import InvalidRow, SelectionChain, Selector
from hodei.services.fleet_reads import FleetReads, RawRow, StoredProvider, with_slots

log = logging.getLogger(__name__)


@dataclass
class FleetChanges:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    invalid: list[tuple[str, tuple[Problem, ...]]] = field(default_factory=list)
    # Providers whose status the rows read changed from what this daemon knew: (id, before, after).
    statuses: list[tuple[uuid.UUID, ProviderStatus, ProviderStatus]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.invalid)

    def describe(self) -> str:
        parts = []
        for verb, names in (("added", self.added), ("changed", self.changed), ("removed", self.removed)):
            if names:
                parts.append(f"{verb} {', '.join(sorted(names))}")
        for name, _ in self.invalid:
            parts.append(f"{name} invalid")
        return "; ".join(parts) or "no change"


@dataclass
class Prepared:
    """One read of provider_configs, validated: its ticket, the rows that changed, and every row seen."""

    ticket: int
    changed: list[tuple[str, StoredProvider]] = field(default_factory=list)
    seen: dict[uuid.UUID, tuple[str, RawRow]] = field(default_factory=dict)


class Fleet:
    """Valid providers by id, their state, and a selector kept in step with both."""

    def __init__(self, reads: FleetReads, chain: SelectionChain):
        self.reads = reads  # rows fingerprinted and validated by the services, as they are read
        self.chain = chain
        self.providers: dict[uuid.UUID, Provider] = {}
        self.states: dict[uuid.UUID, ProviderState] = {}
        self.invalid: dict[uuid.UUID, InvalidRow] = {}
        self.slots: dict[uuid.UUID, tuple[int, int]] = {}  # (reserved, active) from the workers table
        self._fingerprints: dict[uuid.UUID, str] = {}
        self._tickets = itertools.count(1)
        self._read_at: dict[uuid.UUID, int] = {}  # ticket of the read that last set (or deleted) a row
        self._floor = 0  # ticket of the latest full read applied: older reads say nothing newer
        self.selector = Selector(chain)
        self.generation = 0  # bumped on every change of the provider set
        # The rows changed since the selector was built: :meth:`rebuilt` builds the next one.
        self._stale = False
        self._building = anyio.Lock()
        # Providers whose state or status changed while an index was being built, to replay onto it.
        self._touched: set[uuid.UUID] | None = None
        self.version = 0  # bumped on every change of what it holds (providers, states, slots): views cache on it
        # A provider may be admitted again: its health stopped being Unhealthy, or its cooldown was lifted.
        self.on_recovered: Callable[[], None] | None = None
        # Cooldown ends still to come (a heap; an entry whose cooldown was lifted early stays, harmlessly), so
        # waiting requests are woken when one ends rather than on the next sweep. Told of each new end.
        self.cooldown_ends: list[tuple[datetime, uuid.UUID]] = []
        self.on_cooldown_end_added: Callable[[], None] | None = None

    # -- rows ---------------------------------------------------------------------------------

    def begin_read(self) -> int:
        """A ticket for a read of provider_configs about to start. Reads run concurrently (the listener's,
        a full re-read, the API's read-your-writes) and finish in any order; the ticket orders them as
        they started, so what a later read found is never replaced by what an earlier one found."""
        return next(self._tickets)

    def prepare(self, rows: Iterable[RawRow], ticket: int | None = None) -> Prepared:
        """Validate the rows that changed since last seen. Pure and slow: run it in a worker thread.
        ``ticket``: from :meth:`begin_read`, taken before the rows were read (now, when not given)."""
        prepared = Prepared(self.begin_read() if ticket is None else ticket)
        key_of, fingerprint, validate = self.reads.key, self.reads.fingerprint, self.reads.validate
        for row in rows:
            key = key_of(row)
            print_ = fingerprint(row)
            prepared.seen[key] = (print_, row)
            if self._fingerprints.get(key) != print_:
                prepared.changed.append((print_, validate(row)))
        return prepared

    def _latest(self, provider_id: uuid.UUID) -> int:
        return max(self._read_at.get(provider_id, 0), self._floor)

    def apply(self, prepared: Prepared, *, complete: bool, deleted: Iterable[uuid.UUID] = ()) -> FleetChanges:
        """Take validated rows (from :meth:`prepare`). ``complete``: they were the whole table, so a
        provider not among them was deleted. Call it from the event loop: it is quick.

        A row (or a deletion) is taken only from a read that started after the one that last set it:
        an older read finishing late holds an older version, and must not overwrite a newer one."""
        ticket = prepared.ticket
        changes = FleetChanges()
        taken = {stored.id for _, stored in prepared.changed}
        for print_, stored in prepared.changed:
            if ticket > self._latest(stored.id):
                self._take(print_, stored, changes)
        for key, (print_, row) in prepared.seen.items():
            if ticket <= self._latest(key):
                continue
            self._read_at[key] = ticket
            if key not in taken and self._fingerprints.get(key) != print_:
                # Unchanged when this read prepared it, but an earlier read applied meanwhile: this read is
                # newer, so its version stands (validated here: a race, so one row now and then).
                self._take(print_, self.reads.validate(row), changes)
        gone = {provider_id for provider_id in deleted if provider_id not in prepared.seen}
        if complete:
            gone |= (set(self.providers) | set(self.invalid)) - set(prepared.seen)
        for provider_id in gone:
            if ticket <= self._latest(provider_id):
                continue  # a later read found it (added meanwhile): that read stands
            self._read_at[provider_id] = ticket
            self._fingerprints.pop(provider_id, None)
            self.invalid.pop(provider_id, None)
            self.states.pop(provider_id, None)
            removed = self.providers.pop(provider_id, None)
            if removed is not None:
                changes.removed.append(removed.name)
        if complete and ticket > self._floor:
            # Every row was read at this ticket: what an older read says of any row is older than this.
            self._floor = ticket
            self._read_at = {k: v for k, v in self._read_at.items() if v > ticket}
        if changes:
            self.generation += 1
            self.version += 1
            self._stale = True
        return changes

    def _take(self, print_: str, stored: StoredProvider, changes: FleetChanges) -> None:
        self._fingerprints[stored.id] = print_
        if not stored.valid:
            self.invalid[stored.id] = InvalidRow(stored.name, tuple(stored.problems))
            changes.invalid.append((stored.name, tuple(stored.problems)))
            text = "; ".join(map(str, stored.problems))
            if stored.id in self.providers:
                log.error("provider %r was changed into an invalid row (%s); its last valid version keeps "
                          "serving", stored.name, text)
            else:
                log.error("provider %r is invalid and is not used: %s", stored.name, text)
            return
        self.invalid.pop(stored.id, None)
        provider = stored.to_provider()
        (changes.changed if stored.id in self.providers else changes.added).append(provider.name)
        before = self.providers.get(stored.id)
        if before is not None and before.status is not provider.status:
            changes.statuses.append((stored.id, before.status, provider.status))
        self.providers[stored.id] = provider

    def rebuild(self) -> None:
        """A new selection index for the current providers, built here (the chain changed)."""
        self.selector = Selector(self.chain, list(self.providers.values()), self.states, self.invalid.values())
        self._stale = False

    async def rebuilt(self) -> None:
        """The selector brought up to the rows :meth:`apply` took, built in a worker thread (it grows with
        the fleet: on the event loop, it would pause every answer for as long). Selection keeps deciding
        with the current one meanwhile; the states and statuses learnt during the build are replayed onto
        the new one before it replaces it. Returns once the selector holds every row applied before the call."""
        async with self._building:
            while self._stale:
                self._stale = False
                self._touched = set()
                chain, providers = self.chain, list(self.providers.values())
                states, invalid = dict(self.states), list(self.invalid.values())
                try:
                    selector = await anyio.to_thread.run_sync(Selector, chain, providers, states, invalid)
                    if chain is not self.chain:
                        self._stale = True  # a reload changed the chain meanwhile (and rebuilt): build again
                        continue
                    for provider_id in self._touched:
                        provider, state = self.providers.get(provider_id), self.states.get(provider_id)
                        if provider is not None:
                            selector.update_status(provider)
                        if state is not None:
                            selector.update_state(provider_id, state)
                    self.selector = selector
                except BaseException:
                    self._stale = True  # cancelled (the daemon stops) or failed: the next call builds it
                    raise
                finally:
                    self._touched = None

    def set_chain(self, chain: SelectionChain) -> None:
        self.chain = chain
        self.rebuild()

    # -- state --------------------------------------------------------------------------------

    def set_state(self, provider_id: uuid.UUID, state: ProviderState) -> None:
        if provider_id in self.providers:
            state = with_slots(state, self.slots.get(provider_id))
            previous = self.states.get(provider_id)
            if previous == state:
                return  # what it holds already (on PostgreSQL, this daemon's own results come back notified)
            self.states[provider_id] = state
            self.version += 1
            self.selector.update_state(provider_id, state)
            if self._touched is not None:
                self._touched.add(provider_id)
            until = state.cooldown_until
            if until is not None and (previous is None or previous.cooldown_until != until):
                heapq.heappush(self.cooldown_ends, (until, provider_id))
                if self.on_cooldown_end_added is not None:
                    self.on_cooldown_end_added()
            if self.on_recovered is not None and previous is not None and (
                    (previous.health is HealthStatus.UNHEALTHY and state.health is not HealthStatus.UNHEALTHY)
                    or (previous.cooldown_until is not None and until is None)):
                self.on_recovered()

    def load_states(self, states: dict[uuid.UUID, ProviderState]) -> None:
        for provider_id, state in states.items():
            self.set_state(provider_id, state)

    def set_slots(self, counts: dict[uuid.UUID, tuple[int, int]], *, complete: bool = True) -> None:
        """Worker counts from the workers table (all providers when ``complete``, else only those given)."""
        touched = set(counts) | (set(self.slots) if complete else set())
        if complete:
            self.slots = dict(counts)
        else:
            self.slots.update(counts)
        for provider_id in touched:
            if provider_id in self.providers:
                self.set_state(provider_id, self.states.get(provider_id) or ProviderState())

    def set_status(self, provider_id: uuid.UUID, status: ProviderStatus) -> None:
        """A status this daemon just wrote; the row's notification will say the same a moment later."""
        provider = self.providers.get(provider_id)
        if provider is not None and provider.status is not status:
            self.providers[provider_id] = changed = dataclasses.replace(provider, status=status)
            self.version += 1
            self.selector.update_status(changed)  # in place: not a new index of the whole fleet
            if self._touched is not None:
                self._touched.add(provider_id)
