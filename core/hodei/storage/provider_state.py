"""What Hodei learns about providers at run time (``provider_state``) and the history of their
status and health (``provider_history``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hodei import limits
from hodei.actors import UNKNOWN
from hodei.columns import raw_text
from hodei.database import write_session
from hodei.domain import HealthStatus, ProviderState, ProviderStatus, Resources
from hodei.errors import NotFound
from hodei.models import ProviderConfigRow, ProviderHistoryRow, ProviderStateRow
from hodei.redaction import shorten
from hodei.storage.rows import as_uuid, find_provider_row, maybe_aware, moment
from hodei.storage.slots import slot_counts, with_slots


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a provider (its status, its health, its creation, its other fields, its deletion),
    with its cause."""

    at: str  # ISO 8601, UTC
    kind: str  # "status", "health", "created", "changed" (new_value: the fields), "deleted" or "cooldown"
    old_value: str | None
    new_value: str | None
    cause: str
    provider_name: str
    actor: str = UNKNOWN  # who or what made it (hodei.actors)

    def document(self) -> dict[str, str | None]:
        return {"at": self.at, "kind": self.kind, "from": self.old_value, "to": self.new_value,
                "cause": self.cause, "provider": self.provider_name, "actor": self.actor}


def _fit(value: Any, kind: type | tuple[type, ...], default: Any = None) -> Any:
    # A state column edited in SQL into something else reads as unknown (the next check writes it anew);
    # what a row holds must never stop the daemon from reading every other row.
    return value if isinstance(value, kind) and not isinstance(value, bool) else default


def _health(value: Any) -> HealthStatus | None:
    try:
        return HealthStatus(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _state(row: Any) -> ProviderState:
    """The state a provider_state row holds (as read, or a namespace of its columns; None: never checked)."""
    if row is None:
        return ProviderState()
    reported = _fit(row.capacity_reported_at, datetime)
    return ProviderState(
        health=_health(row.health), health_reason=_fit(row.health_reason, str, ""),
        checked_at=maybe_aware(_fit(row.checked_at, datetime)),
        check_duration_seconds=_fit(row.check_duration_seconds, (int, float)),
        # The row's own worker column is what the backend counted; the load comes from the workers table.
        backend_workers=_fit(row.active_workers, int, 0) if reported else None,
        per_worker=Resources(cpu=_fit(row.capacity_cpu, (int, float)), memory=_fit(row.capacity_memory, int),
                             gpu=_fit(row.capacity_gpu, int)),
        capacity_reported_at=maybe_aware(reported),
        consecutive_failures=_fit(row.consecutive_failures, int, 0),
        consecutive_successes=_fit(row.consecutive_successes, int, 0),
        provision_failures=_fit(row.provision_failures, int, 0),
        cooldown_until=maybe_aware(_fit(row.cooldown_until, datetime)),
        last_provision_error=_fit(row.last_provision_error, str, ""),
    )


def _kept_reason(reason: str) -> str:
    # A backend's answer can be megabytes; stored whole it would be copied into every list and
    # outgrow the API's message limit. What is kept says that it was cut.
    return shorten(reason, limits.HEALTH_REASON_CHARS)


class ProviderStates:
    """Reads and writes ``provider_state`` and ``provider_history``. Sync: the daemon calls it from a thread."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def all(self) -> dict[uuid.UUID, ProviderState]:
        """Every provider's last known health, load and capacity; a provider never checked has none."""
        with Session(self.engine) as session:
            states = {row.provider_id: _state(row) for row in session.exec(select(ProviderStateRow)).all()}
            slots = slot_counts(session)
        for provider_id in set(states) | set(slots):
            states[provider_id] = with_slots(states.get(provider_id, ProviderState()), slots.get(provider_id))
        return states

    def of_ids(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProviderState]:
        """The states of these providers only (a page of a listing), as :meth:`all` gives them."""
        wanted = [i for i in ids if isinstance(i, uuid.UUID)]
        if not wanted:
            return {}
        with Session(self.engine) as session:
            rows = session.exec(select(ProviderStateRow).where(col(ProviderStateRow.provider_id).in_(wanted))).all()
            states = {row.provider_id: _state(row) for row in rows}
            slots = slot_counts(session, wanted)
        for provider_id in set(states) | set(slots):
            states[provider_id] = with_slots(states.get(provider_id, ProviderState()), slots.get(provider_id))
        return states

    def slot_counts(self) -> dict[uuid.UUID, tuple[int, int]]:
        with Session(self.engine) as session:
            return slot_counts(session)

    def of(self, ref: str | uuid.UUID) -> ProviderState:
        """One provider's state, by name or id."""
        with Session(self.engine) as session:
            provider_id = find_provider_row(session, ref).id
            state = _state(session.get(ProviderStateRow, provider_id))
            return with_slots(state, slot_counts(session, provider_id).get(provider_id))

    def record_outside_changes(self, seen: Sequence[tuple[uuid.UUID, ProviderStatus, ProviderStatus, str]],
                               ) -> list[tuple[str, str, str]]:
        """Status changes made outside Hodei (in SQL) that a daemon saw, into the history: ``seen`` holds each
        provider's id, the status the daemon knew before and the one it read, and the actor to record. A
        status changed again since it was read is left to the read that sees it. A change Hodei made has its
        history entry already (written in the same transaction), and so has one another daemon recorded
        first (the row is locked while it looks): each change is recorded once. Returns (name, before,
        after) of those recorded."""
        recorded = []
        with write_session(self.engine) as session:
            for provider_id, before, after, actor in seen:
                provider = session.get(ProviderConfigRow, provider_id, with_for_update=True)
                if provider is None or provider.status != after.value:
                    continue
                last = session.exec(select(ProviderHistoryRow.new_value).where(
                    ProviderHistoryRow.provider_id == provider_id, ProviderHistoryRow.kind == "status")
                    .order_by(col(ProviderHistoryRow.at).desc(), col(ProviderHistoryRow.id).desc()).limit(1)).first()
                if last == provider.status:
                    continue
                session.add(ProviderHistoryRow(provider_id=provider_id, provider_name=provider.name, kind="status",
                                               old_value=before.value, new_value=provider.status,
                                               cause="changed in SQL, outside Hodei", actor=actor))
                recorded.append((provider.name, before.value, provider.status))
            session.commit()
        return recorded

    def history(self, ref: str | uuid.UUID, limit: int = 50) -> list[HistoryEntry]:
        """The provider's changes, newest first (also of a deleted provider, by id)."""
        return self.history_page(ref, limit)[0]

    def history_page(self, ref: str | uuid.UUID, size: int,
                     after: int | None = None) -> tuple[list[HistoryEntry], int | None]:
        """:meth:`history`'s first ``size`` entries after the entry ``after`` (the first page without), and
        the entry the next page starts after (``None`` after the last). Keyed on the row (never deleted, its
        time never changes), not a position: entries recorded between two pages do not shift the next."""
        with Session(self.engine) as session:
            try:
                provider_id = find_provider_row(session, ref).id
            except NotFound:
                found = as_uuid(ref)
                if found is None:
                    raise
                provider_id = found
            query = select(ProviderHistoryRow).where(ProviderHistoryRow.provider_id == provider_id)
            if after is not None:  # the database compares its own value, even one it cannot give back
                at = select(ProviderHistoryRow.at).where(ProviderHistoryRow.id == after).scalar_subquery()
                query = query.where(or_(col(ProviderHistoryRow.at) < at,
                                        and_(col(ProviderHistoryRow.at) == at, col(ProviderHistoryRow.id) < after)))
            query = (query.order_by(col(ProviderHistoryRow.at).desc(), col(ProviderHistoryRow.id).desc())
                     .limit(size + 1))
            rows = session.exec(query).all()
            entries = [HistoryEntry(at=moment(row, "at", []).isoformat(), kind=_shown(row.kind) or "",
                                    old_value=_shown(row.old_value), new_value=_shown(row.new_value),
                                    cause=_shown(row.cause) or "", provider_name=_shown(row.provider_name) or "",
                                    actor=_shown(row.actor) or UNKNOWN)
                       for row in rows[:size]]
            return entries, rows[size - 1].id if len(rows) > size else None


def _shown(value: Any) -> str | None:
    """A history column as text (a row edited in SQL may hold a number or bytes there)."""
    return None if value is None else raw_text(value)
