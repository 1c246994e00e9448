"""A private copy of a fleet: the providers, their state and their slots, which a plan or a simulation
fills and frees without touching the database or the daemon's live view."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence

from hodei.domain import Provider, ProviderState
from hodei.selection import Candidate, InvalidRow, SelectionChain, Selector

_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(ProviderState))


def state_of(candidate: Candidate) -> ProviderState:
    """The state ``candidate`` holds (every field of :class:`ProviderState` it carries), so a copy decides
    as the original does (health, load, cooldown, what one worker can get)."""
    values = {name: getattr(candidate, name) for name in _STATE_FIELDS if hasattr(candidate, name)}
    values["per_worker"] = candidate.resources
    return ProviderState(**values)


class FleetView:
    """A selector of its own over ``providers`` in ``states``; slots taken and freed here only."""

    def __init__(self, chain: SelectionChain, providers: Sequence[Provider],
                 states: Mapping[uuid.UUID, ProviderState], invalid: Iterable[InvalidRow] = ()):
        self.chain = chain
        self.selector = Selector(chain, providers, states, invalid)
        self.index = self.selector.index
        self.capacity_filtered = "capacity" in chain.filter_names

    @classmethod
    def copy_of(cls, selector: Selector) -> FleetView:
        """A copy of ``selector``'s fleet as it is now (the daemon's live one, or one read from the database)."""
        candidates = selector.index.candidates
        return cls(selector.chain, [c.provider for c in candidates],
                   {c.provider.id: state_of(c) for c in candidates}, selector.invalid)

    def providers(self) -> list[Provider]:
        return [c.provider for c in self.index.candidates]

    def states(self) -> dict[uuid.UUID, ProviderState]:
        return {c.provider.id: state_of(c) for c in self.index.candidates}

    def change(self, candidate: Candidate, **fields: object) -> None:
        """Give ``candidate`` a new state (``reserved_workers``, ``health``, ...), the index's masks with it."""
        self.index.update_state(candidate.provider.id, dataclasses.replace(state_of(candidate), **fields))  # type: ignore[arg-type]

    def take(self, candidate: Candidate) -> None:
        """One slot of ``candidate`` reserved, as a provision reserves it. Only the count and the full mask
        change (what :meth:`ProviderIndex.update_state` would do for it, without rebuilding the state: a plan
        takes a slot per job)."""
        candidate.reserved_workers += 1
        if candidate.load >= candidate.max_workers:
            self.index.full |= 1 << candidate.index

    def free(self, candidate: Candidate) -> None:
        """One slot of ``candidate`` freed (its worker ended)."""
        if candidate.reserved_workers > 0:
            candidate.reserved_workers -= 1
        elif candidate.active_workers > 0:
            candidate.active_workers -= 1
        if candidate.load < candidate.max_workers:
            self.index.full &= ~(1 << candidate.index)

    def open_slots(self) -> int:
        """The providers with a free slot (all of them when the chain has no capacity filter)."""
        return self.index.all & ~self.index.full if self.capacity_filtered else self.index.all

    def slots(self) -> int:
        return sum(c.max_workers for c in self.index.candidates)
