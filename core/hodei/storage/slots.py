"""The one place worker slots are counted: the workers in a state that holds one of a provider's
``max_workers`` (PROVISIONING: reserved; RUNNING or RELEASING: active)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import replace

from sqlmodel import Session, col, func, select

from hodei.domain import SLOT_HOLDING, ProviderState, WorkerState
from hodei.models import WorkerRow

Slots = tuple[int, int]  # (reserved, active)


def slot_counts(session: Session, provider_id: uuid.UUID | Collection[uuid.UUID] | None = None,
                ) -> dict[uuid.UUID, Slots]:
    """Per provider (or only ``provider_id``, or those of a collection of ids), the workers holding a slot:
    (reserved, active)."""
    query = (select(WorkerRow.provider_id, WorkerRow.state, func.count())
             .where(col(WorkerRow.state).in_([s.value for s in SLOT_HOLDING]))
             .group_by(col(WorkerRow.provider_id), col(WorkerRow.state)))
    if isinstance(provider_id, uuid.UUID):
        query = query.where(WorkerRow.provider_id == provider_id)
    elif isinstance(provider_id, Collection) and not isinstance(provider_id, str):
        query = query.where(col(WorkerRow.provider_id).in_([i for i in provider_id if isinstance(i, uuid.UUID)]))
    elif provider_id is not None:
        return {}  # an id that is not a UUID (a row edited in SQL): no worker can hold a slot on it
    counts: dict[uuid.UUID, Slots] = {}
    for found_id, state, count in session.exec(query).all():
        reserved, active = counts.get(found_id, (0, 0))
        counts[found_id] = (reserved + count, active) if state == WorkerState.PROVISIONING.value else (reserved, active + count)
    return counts


def with_slots(state: ProviderState, slots: Slots | None) -> ProviderState:
    """The state with its load taken from the workers table, which is what max_workers limits."""
    reserved, active = slots or (0, 0)
    return replace(state, active_workers=active, reserved_workers=reserved)
