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
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hodei.database import write_session
from hodei.domain import Capacity, HealthResult, ProviderState, ProviderStatus
from hodei.health import after_check
from hodei.models import ProviderConfigRow, ProviderHistoryRow, ProviderStateRow, utcnow
from hodei.storage.provider_state import _kept_reason, _state
from hodei.storage.rows import maybe_aware

# A round of checks over a large fleet is recorded with SQL statements (one executemany per kind of
# change), not ORM objects: recording 10,000 results must not hold the interpreter (and so the API) for
# seconds.
PROVIDERS = ProviderConfigRow.metadata.tables["provider_configs"]
STATES = ProviderStateRow.metadata.tables["provider_state"]
HISTORY = ProviderHistoryRow.metadata.tables["provider_history"]
_COUNTED = ("health", "health_reason", "checked_at", "check_duration_seconds", "consecutive_failures",
            "consecutive_successes", "updated_at")
_CAPACITY = ("active_workers", "capacity_cpu", "capacity_memory", "capacity_gpu", "capacity_reported_at")

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
        providers = {p.id: p for p in session.execute(
            sa.select(PROVIDERS.c.id, PROVIDERS.c.name, PROVIDERS.c.status).where(PROVIDERS.c.id.in_(ids))
            .order_by(PROVIDERS.c.id).with_for_update())}
        rows = {r.provider_id: SimpleNamespace(**r._mapping) for r in session.execute(
            sa.select(STATES).where(STATES.c.provider_id.in_(list(providers))))}
        statuses = {provider_id: ProviderStatus(p.status) for provider_id, p in providers.items()}
        now = utcnow()
        new_rows: set[uuid.UUID] = set()
        written: dict[uuid.UUID, bool] = {}  # the state rows changed: with their capacity columns or not
        history: list[dict[str, Any]] = []
        transitions: dict[uuid.UUID, list[tuple[ProviderStatus, ProviderStatus, str]]] = {}
        changed: set[uuid.UUID] = set()
        for result in results:
            provider = providers.get(result.provider_id)
            if provider is None:
                continue
            row = rows.get(provider.id)
            if row is None:
                row = rows[provider.id] = _empty_state(provider.id)
                new_rows.add(provider.id)
            last = maybe_aware(row.checked_at)
            checked_at = result.health.checked_at if result.health is not None else None
            if last is not None and checked_at is not None and checked_at <= last:
                continue  # counted already, or older than what is counted
            before = row.health
            state = after_check(_state(row), result.health, result.capacity)
            written[provider.id] = _set_state(row, state, now) or written.get(provider.id, False)
            if row.health != before:
                changed.add(provider.id)
                if row.health is not None:
                    history.append(_entry(provider, "health", before, row.health, row.health_reason, actor, now))
            status = statuses[provider.id]
            wanted = decide(status, _state(row))
            if wanted is not None and wanted[0] is not status:
                new, cause = wanted
                statuses[provider.id] = new
                history.append(_entry(provider, "status", status.value, new.value, cause, actor, now))
                transitions.setdefault(provider.id, []).append((status, new, cause))
        _write(session, rows, new_rows, written, history, {i: statuses[i] for i in transitions}, now)
        session.commit()
        return [Recorded(provider_id, provider.name, _state(rows[provider_id]), statuses[provider_id],
                         tuple(transitions.get(provider_id, ())), provider_id in changed)
                for provider_id, provider in providers.items() if provider_id in rows]


def _empty_state(provider_id: uuid.UUID) -> SimpleNamespace:
    """The columns of a provider_state row not written yet (a provider never checked)."""
    return SimpleNamespace(provider_id=provider_id, health=None, health_reason="", checked_at=None,
                           check_duration_seconds=None, active_workers=0, reserved_workers=0, capacity_cpu=None,
                           capacity_memory=None, capacity_gpu=None, capacity_reported_at=None,
                           consecutive_failures=0, consecutive_successes=0, provision_failures=0,
                           cooldown_until=None, last_provision_error="", updated_at=None)


def _set_state(row: SimpleNamespace, state: ProviderState, now: datetime) -> bool:
    """``row``'s columns set to ``state``; whether its capacity columns were set too (a capacity report)."""
    row.health, row.health_reason = state.health.value if state.health else None, _kept_reason(state.health_reason)
    row.checked_at, row.check_duration_seconds = state.checked_at, state.check_duration_seconds
    row.consecutive_failures = state.consecutive_failures
    row.consecutive_successes = state.consecutive_successes
    row.updated_at = now
    if state.capacity_reported_at is None:
        return False
    row.active_workers = state.backend_workers or 0
    row.capacity_cpu, row.capacity_memory = state.per_worker.cpu, state.per_worker.memory
    row.capacity_gpu, row.capacity_reported_at = state.per_worker.gpu, state.capacity_reported_at
    return True


def _entry(provider: Any, kind: str, old: str | None, new: str, cause: str, actor: str | None,
           now: datetime) -> dict[str, Any]:
    return {"provider_id": provider.id, "provider_name": provider.name, "at": now, "kind": kind, "old_value": old,
            "new_value": new, "cause": cause, "actor": actor}


def _write(session: Session, rows: dict[uuid.UUID, SimpleNamespace], new_rows: set[uuid.UUID],
           written: dict[uuid.UUID, bool], history: list[dict[str, Any]],
           statuses: dict[uuid.UUID, ProviderStatus], now: datetime) -> None:
    """What a batch counted, in one statement (an executemany) per kind of change. A column a result does
    not set is not written (it may hold a value edited in SQL that cannot be read, kept as it is)."""
    inserts = [vars(rows[i]) for i in written if i in new_rows]
    if inserts:
        session.execute(sa.insert(STATES), inserts)
    for capacity in (False, True):
        names = _COUNTED + (_CAPACITY if capacity else ())
        params = [{"key": i, **{c: getattr(rows[i], c) for c in names}}
                  for i, with_capacity in written.items() if with_capacity is capacity and i not in new_rows]
        if params:
            session.execute(sa.update(STATES).where(STATES.c.provider_id == sa.bindparam("key"))
                            .values({c: sa.bindparam(c) for c in names}), params)
    if statuses:
        session.execute(sa.update(PROVIDERS).where(PROVIDERS.c.id == sa.bindparam("key"))
                        .values(status=sa.bindparam("status"), updated_at=now),
                        [{"key": i, "status": status.value} for i, status in statuses.items()])
    if history:
        session.execute(sa.insert(HISTORY), history)


def read_states(engine: Engine, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProviderState]:
    """The stored state of these providers (those never checked are left out), for a daemon whose
    view must follow checks another daemon ran."""
    with Session(engine) as session:
        return {row.provider_id: _state(row) for row in session.exec(
            select(ProviderStateRow).where(col(ProviderStateRow.provider_id).in_(list(ids)))).all()}
