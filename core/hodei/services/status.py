"""What the status page shows of a running daemon's live view: the fleet as rows, filtered and paged.

The daemon's fleet (its providers, their state and worker slots, the rows it could not use) is copied
once in the event loop (:func:`snapshot`: a few dict copies, no per-provider work), and everything else
(filtering, counting, sorting, paging) runs on that copy off the loop, so a page of a 10,000-provider
fleet never holds the loop for longer than the copy. Nothing here holds a config: only the fields the
fleet page shows, none of them secret.
"""

from __future__ import annotations

import heapq
import math
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus

PAGE_SIZE = 100
"""Providers on one page of the fleet."""
NEVER_CHECKED = "never checked"
INVALID = "invalid"
STATUSES = tuple(s.value for s in ProviderStatus)
HEALTHS = ("Healthy", "Degraded", "Unhealthy", NEVER_CHECKED)


class LiveFleet(Protocol):
    """The daemon's live view, as the status page reads it (``hodei.daemon.fleet.Fleet``)."""

    @property
    def providers(self) -> Mapping[uuid.UUID, Provider]: ...

    @property
    def states(self) -> Mapping[uuid.UUID, ProviderState]: ...

    @property
    def invalid(self) -> Mapping[uuid.UUID, Any]:
        """Rows that cannot be used: each with ``name`` and ``problems``."""
        ...

    @property
    def version(self) -> int:
        """Changes whenever anything above does: what was computed for one version holds until the next."""
        ...


@dataclass(frozen=True)
class Snapshot:
    """The live view at one moment: safe to read in another thread while the loop changes the fleet."""

    providers: list[Provider]
    states: dict[uuid.UUID, ProviderState]
    invalid: list[tuple[str, str]]  # (name, problems as text)


def snapshot(live: LiveFleet) -> Snapshot:
    """Copy the live view. Call it in the event loop (the only place the fleet changes): it is quick."""
    return Snapshot(list(live.providers.values()), dict(live.states),
                    [(str(row.name), "; ".join(str(p) for p in row.problems)) for row in live.invalid.values()])


@dataclass(frozen=True)
class FleetFilter:
    """What the fleet page is asked to show; empty fields match everything."""

    status: str = ""
    health: str = ""
    provider_type: str = ""
    region: str = ""
    name: str = ""  # a part of the name, any case

    def matches(self, provider: Provider, health: str) -> bool:
        return ((not self.status or provider.status.value == self.status)
                and (not self.health or health == self.health)
                and (not self.provider_type or provider.provider_type == self.provider_type)
                and (not self.region or self.region in _regions(provider))
                and (not self.name or self.name.casefold() in provider.name.casefold()))

    def query(self, page: int | None = None) -> dict[str, str]:
        """As the page's query string holds it (only what is set)."""
        values = {"status": self.status, "health": self.health, "type": self.provider_type,
                  "region": self.region, "name": self.name, "page": str(page) if page and page > 1 else ""}
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True)
class FleetRow:
    """One provider as the fleet page shows it."""

    id: str
    name: str
    provider_type: str
    status: str
    health: str
    health_reason: str
    checked_at: datetime | None
    used: int
    reserved: int
    max_workers: int
    region: str
    labels: tuple[tuple[str, str], ...]
    cooldown_until: datetime | None = None  # skipped by selection until then, after failed provisions
    provision_failures: int = 0
    last_provision_error: str = ""

    @property
    def percent(self) -> int:
        """Slots used, in percent of max_workers (a bar's length; 100 when there are none to use)."""
        if self.max_workers <= 0:
            return 100
        return min(100, round(100 * self.used / self.max_workers))


@dataclass(frozen=True)
class FleetPage:
    rows: list[FleetRow]
    page: int
    pages: int
    matched: int
    total: int
    by_status: dict[str, int]
    by_health: dict[str, int]
    types: list[str]
    regions: list[str]
    invalid: list[tuple[str, str]] = field(default_factory=list)

    @property
    def first(self) -> int:
        """The position of the first row shown, from 1 (0 when none are)."""
        return (self.page - 1) * PAGE_SIZE + 1 if self.rows else 0


def _regions(provider: Provider) -> list[str]:
    return [r for r in (provider.preferred_region, *provider.allowed_regions) if r]


_HEALTH_NAMES: dict[HealthStatus | None, str] = {**{h: h.value for h in HealthStatus}, None: NEVER_CHECKED}


def health_of(state: ProviderState | None) -> str:
    return state.health.value if state is not None and state.health is not None else NEVER_CHECKED


def _row(provider: Provider, state: ProviderState | None, health: str) -> FleetRow:
    state = state or ProviderState()
    return FleetRow(
        id=str(provider.id), name=provider.name, provider_type=provider.provider_type,
        status=provider.status.value, health=health, health_reason=state.health_reason, checked_at=state.checked_at,
        used=state.active_workers + state.reserved_workers, reserved=state.reserved_workers,
        max_workers=provider.max_workers, region=provider.preferred_region or "",
        labels=tuple(sorted((str(k), str(v)) for k, v in provider.required_labels.items())),
        cooldown_until=state.cooldown_until, provision_failures=state.provision_failures,
        last_provision_error=state.last_provision_error)


def fleet_page(seen: Snapshot, wanted: FleetFilter, page: int = 1) -> FleetPage:
    """The providers ``wanted`` matches, by name, the ``page``-th :data:`PAGE_SIZE` of them (a page past the
    last shows the last), with the counts every filter choice needs. Pure: run it off the event loop.

    One pass over the fleet with nothing but lookups in it (a 10,000-provider fleet is walked on every
    refresh of every open page): the counts, the filter choices and the matches together."""
    by_status: Counter[ProviderStatus] = Counter()
    by_health: Counter[str] = Counter()
    types: set[str] = set()
    regions: set[str] = set()
    matched: list[tuple[str, int, Provider, str]] = []
    states = seen.states
    every = not (wanted.status or wanted.health or wanted.provider_type or wanted.region or wanted.name)
    for position, provider in enumerate(seen.providers):
        state = states.get(provider.id)
        health = _HEALTH_NAMES[state.health if state is not None else None]
        by_status[provider.status] += 1
        by_health[health] += 1
        types.add(provider.provider_type)
        if provider.preferred_region:
            regions.add(provider.preferred_region)
        if provider.allowed_regions:
            regions.update(provider.allowed_regions)
        if every or wanted.matches(provider, health):
            # The position breaks a tie of names (one name per provider in the table, but a row edited in SQL
            # may say otherwise), so the sort never compares providers themselves.
            matched.append((provider.name, position, provider, health))
    pages = max(1, math.ceil(len(matched) / PAGE_SIZE))
    page = min(max(1, page), pages)
    start = (page - 1) * PAGE_SIZE
    end = start + PAGE_SIZE
    # The first pages need only the smallest names up to their end, not the whole list sorted.
    ordered = heapq.nsmallest(end, matched) if end < len(matched) // 4 else sorted(matched)
    rows = [_row(provider, states.get(provider.id), health) for _, _, provider, health in ordered[start:end]]
    return FleetPage(rows=rows, page=page, pages=pages, matched=len(matched), total=len(seen.providers),
                     by_status={s.value: by_status.get(s, 0) for s in ProviderStatus},
                     by_health={h: by_health.get(h, 0) for h in HEALTHS},
                     types=sorted(types), regions=sorted(regions), invalid=sorted(seen.invalid))


__all__ = ["HEALTHS", "PAGE_SIZE", "STATUSES", "FleetFilter", "FleetPage", "FleetRow", "LiveFleet", "Snapshot",
           "fleet_page", "health_of", "snapshot"]
