"""Health results counted where every daemon sees the same count: in the database.

The consecutive failures and passes, the change of health written to the history, and the status
the counts ask for are all decided in the transaction that records the result, under the lock of
the provider's row. So ``unhealthy_after = 3`` means three failed checks of that provider in a row
whichever daemons ran them, and a change of health or status is written once, not once per replica.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hodei.database import write_session
from hodei.domain import Capacity, HealthResult, ProviderState, ProviderStatus
from hodei.health import after_check
from hodei.models import ProviderConfigRow, ProviderHistoryRow, ProviderStateRow, utcnow
from hodei.storage.provider_state import _state, _store_state
from hodei.storage.rows import maybe_aware

# The status a provider's counts ask for, with the cause to record; None leaves the status alone.
Decide = Callable[[ProviderStatus, ProviderState], tuple[ProviderStatus, str] | None]


@dataclass(frozen=True)
class Result:
    """One answer to count: a health check's (with its capacity report), or, with no health, a
    capacity report alone, which counts nothing. It is stamped with the time it
    was found, so counting it twice (a write retried after a timeout that had committed after all) or
    after a newer one (another daemon's) counts it not at all."""

    provider_id: uuid.UUID
    health: HealthResult | None
    capacity: Capacity | None = None

    def __post_init__(self) -> None:
        if self.health is not None and self.health.checked_at is None:
            object.__setattr__(self, "health", replace(self.health, checked_at=datetime.now(UTC)))


@dataclass(frozen=True)
class Recorded:
    """A provider after its results were counted: its state, its status, and the status changes made."""

    provider_id: uuid.UUID
    name: str
    state: ProviderState
    status: ProviderStatus
    transitions: tuple[tuple[ProviderStatus, ProviderStatus, str], ...] = ()
    health_changed: bool = False


def record_results(engine: Engine, results: Sequence[Result], decide: Decide, *,
                   actor: str | None = None) -> list[Recorded]:
    """Count ``results`` (in their order) in one transaction; providers deleted meanwhile are skipped.
    The changes of health and status they make go to the history as ``actor``'s (the health monitor).

    A result no newer than the provider's last counted check is skipped: a retried write counts once.
    The providers' rows are locked in id order (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite),
    so two daemons recording the same provider at once are counted one after the other, and batches
    never deadlock.
    """
    ids = sorted({r.provider_id for r in results})
    if not ids:
        return []
    with write_session(engine) as session:
        providers = {p.id: p for p in session.exec(
            select(ProviderConfigRow).where(col(ProviderConfigRow.id).in_(ids))
            .order_by(col(ProviderConfigRow.id)).with_for_update()).all()}
        rows = {r.provider_id: r for r in session.exec(
            select(ProviderStateRow).where(col(ProviderStateRow.provider_id).in_(list(providers)))).all()}
        transitions: dict[uuid.UUID, list[tuple[ProviderStatus, ProviderStatus, str]]] = {}
        changed: set[uuid.UUID] = set()
        for result in results:
            provider = providers.get(result.provider_id)
            if provider is None:
                continue
            row = rows.get(provider.id)
            if row is None:
                row = rows[provider.id] = ProviderStateRow(provider_id=provider.id)
            last = maybe_aware(row.checked_at)
            checked_at = result.health.checked_at if result.health is not None else None
            if last is not None and checked_at is not None and checked_at <= last:
                continue  # counted already, or older than what is counted
            before = row.health
            _store_state(session, provider, row, after_check(_state(row), result.health, result.capacity), actor)
            if row.health != before:
                changed.add(provider.id)
            status = ProviderStatus(provider.status)
            wanted = decide(status, _state(row))
            if wanted is not None and wanted[0] is not status:
                new, cause = wanted
                provider.status, provider.updated_at = new.value, utcnow()
                session.add(provider)
                session.add(ProviderHistoryRow(provider_id=provider.id, provider_name=provider.name, kind="status",
                                               old_value=status.value, new_value=new.value, cause=cause,
                                               actor=actor))
                transitions.setdefault(provider.id, []).append((status, new, cause))
        session.commit()
        return [Recorded(provider_id, provider.name, _state(rows[provider_id]), ProviderStatus(provider.status),
                         tuple(transitions.get(provider_id, ())), provider_id in changed)
                for provider_id, provider in providers.items() if provider_id in rows]


def read_states(engine: Engine, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProviderState]:
    """The stored state of these providers (those never checked are left out), for a daemon whose
    view must follow checks another daemon ran."""
    with Session(engine) as session:
        return {row.provider_id: _state(row) for row in session.exec(
            select(ProviderStateRow).where(col(ProviderStateRow.provider_id).in_(list(ids)))).all()}
