"""The workers table: reservations that hold, and only the transitions that make sense.

A reservation counts the provider's workers in a slot-holding state under a lock on the provider's
row (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite: :func:`hodei.database.write_session`), so any number of
daemons and CLIs sharing the database can never put more than ``max_workers`` on one provider.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hodei.columns import Unreadable, raw_text
from hodei.database import write_session
from hodei.domain import WorkerState
from hodei.errors import HodeiError, InvalidInput, NotFound, Problem
from hodei.models import ProviderConfigRow, WorkerRow, utcnow
from hodei.redaction import quote
from hodei.storage.rows import moment, value_reason
from hodei.storage.slots import slot_counts, used_slots

log = logging.getLogger(__name__)

# Which state may follow which; anything else is a bug or a race lost, and is refused.
TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.PROVISIONING: frozenset({WorkerState.RUNNING, WorkerState.FAILED, WorkerState.RELEASING}),
    WorkerState.RUNNING: frozenset({WorkerState.RELEASING, WorkerState.TERMINATED}),
    WorkerState.RELEASING: frozenset({WorkerState.TERMINATED, WorkerState.FAILED}),
    WorkerState.TERMINATED: frozenset(),
    WorkerState.FAILED: frozenset(),
}
ENDED = frozenset({WorkerState.TERMINATED, WorkerState.FAILED})


class CapacityExhausted(HodeiError):
    """The provider has no free slot (or is not ACTIVE any more); nothing was reserved."""

    def __init__(self, provider: str, message: str):
        self.provider = provider
        super().__init__(message)


class IllegalTransition(HodeiError):
    """The worker is not in a state that allows this change (another daemon got there first)."""


@dataclass(frozen=True)
class Worker:
    id: str
    provider_id: uuid.UUID
    provider_name: str
    state: WorkerState
    reason: str
    backend_id: str | None
    handle: Mapping[str, Any] | None
    requirements: Mapping[str, Any]
    attempts: list[Mapping[str, Any]]
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id, "provider_id": str(self.provider_id), "provider": self.provider_name,
            "state": self.state.value, "reason": self.reason, "backend_id": self.backend_id,
            "requirements": dict(self.requirements), "attempts": list(self.attempts),
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


def _worker(row: WorkerRow) -> Worker:
    """:raises InvalidInput: for a row edited in SQL into something that cannot be read, naming the column."""
    problems = [Problem(name, value_reason(value)) for name in _WORKER_COLUMNS
                if isinstance(value := getattr(row, name), Unreadable)]
    created_at, updated_at = moment(row, "created_at", problems), moment(row, "updated_at", problems)
    ended_at = None if row.ended_at is None else moment(row, "ended_at", problems)
    try:
        state = WorkerState(row.state)
    except ValueError:
        problems.append(Problem("state", f"is not a worker state: {raw_text(row.state)[:40]!r}"))
    if problems:
        raise InvalidInput(problems, subject=f"worker row {raw_text(row.id)!r}")
    return Worker(raw_text(row.id), row.provider_id, raw_text(row.provider_name), state, raw_text(row.reason),
                  None if row.backend_id is None else raw_text(row.backend_id), row.handle if isinstance(row.handle, Mapping) else None,
                  row.requirements if isinstance(row.requirements, Mapping) else {},
                  [a for a in row.attempts if isinstance(a, Mapping)] if isinstance(row.attempts, list) else [],
                  created_at, updated_at, ended_at)


_WORKER_COLUMNS = ("provider_id", "handle", "requirements", "attempts")


def _readable(rows: Iterable[WorkerRow]) -> list[Worker]:
    """The rows that can be read; each one that cannot is logged and left out (it holds no slot Hodei
    can account for, and must not stop the reconciler or a listing)."""
    found = []
    for row in rows:
        try:
            found.append(_worker(row))
        except InvalidInput as exc:
            log.warning("%s; left out", exc)
    return found


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WorkerRecords:
    """Reads and writes the workers table. Sync: the daemon calls it from a worker thread."""

    def __init__(self, engine: Engine):
        self.engine = engine

    # -- reservations -------------------------------------------------------------------------

    def reserve(self, provider_id: uuid.UUID, *, worker_id: str, token: str, requirements: Mapping[str, Any],
                attempts: Sequence[Mapping[str, Any]] = ()) -> Worker:
        """Take one slot on the provider, or raise :class:`CapacityExhausted` saying why not."""
        with write_session(self.engine) as session:
            provider = session.get(ProviderConfigRow, provider_id, with_for_update=True)
            if provider is None:
                raise CapacityExhausted(str(provider_id), "the provider was deleted")
            if provider.status != "ACTIVE":
                raise CapacityExhausted(provider.name, f"{provider.name} is {provider.status}, not ACTIVE")
            used = used_slots(session, provider_id)
            if used >= provider.max_workers:
                raise CapacityExhausted(provider.name, f"{provider.name} is at capacity ({used}/{provider.max_workers})")
            now = utcnow()
            row = WorkerRow(id=worker_id, provider_id=provider_id, provider_name=provider.name,
                            state=WorkerState.PROVISIONING.value, requirements=dict(requirements),
                            attempts=[dict(a) for a in attempts], token_sha256=token_digest(token),
                            created_at=now, updated_at=now)
            session.add(row)
            session.commit()
            session.refresh(row)
            return _worker(row)

    # -- transitions --------------------------------------------------------------------------

    def transition(self, worker_id: str, new: WorkerState, *, reason: str = "",
                   expected: Iterable[WorkerState] | None = None, handle: Mapping[str, Any] | None = None,
                   backend_id: str | None = None, attempts: Sequence[Mapping[str, Any]] | None = None) -> Worker:
        """Move a worker to ``new`` if the move is legal from its current state (and it is in one of
        ``expected``, when given). :raises IllegalTransition: otherwise, changing nothing."""
        with write_session(self.engine) as session:
            row = session.get(WorkerRow, worker_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no worker {quote(worker_id)}")
            current = _worker(row).state
            if (expected is not None and current not in set(expected)) or new not in TRANSITIONS[current]:
                raise IllegalTransition(f"worker {worker_id} is {current.value}; it cannot become {new.value}")
            row.state = new.value
            row.reason = reason
            row.updated_at = utcnow()
            if new in ENDED:
                row.ended_at = row.updated_at
            if handle is not None:
                row.handle = dict(handle)
            if backend_id is not None:
                row.backend_id = backend_id
            if attempts is not None:
                row.attempts = [dict(a) for a in attempts]
            session.add(row)
            session.commit()
            session.refresh(row)
            return _worker(row)

    def note(self, worker_id: str, reason: str) -> None:
        """Say why a worker is still where it is (a release that failed, to be retried)."""
        with write_session(self.engine) as session:
            row = session.get(WorkerRow, worker_id, with_for_update=True)
            if row is not None:
                row.reason, row.updated_at = reason, utcnow()
                session.add(row)
                session.commit()

    # -- reading ------------------------------------------------------------------------------

    def get(self, worker_id: str) -> Worker:
        with Session(self.engine) as session:
            row = session.get(WorkerRow, worker_id)
            if row is None:
                raise NotFound(f"no worker {quote(worker_id)}")
            return _worker(row)

    def find(self, *, provider_id: uuid.UUID | None = None, states: Iterable[WorkerState] | None = None,
             limit: int | None = None) -> list[Worker]:
        with Session(self.engine) as session:
            query = select(WorkerRow)
            if provider_id is not None:
                query = query.where(WorkerRow.provider_id == provider_id)
            if states is not None:
                query = query.where(col(WorkerRow.state).in_([s.value for s in states]))
            query = query.order_by(col(WorkerRow.created_at).desc(), col(WorkerRow.id))
            if limit is not None:
                query = query.limit(limit)
            return _readable(session.exec(query).all())

    def slot_counts(self) -> dict[uuid.UUID, tuple[int, int]]:
        """Per provider: (reserved: PROVISIONING, active: RUNNING or RELEASING)."""
        with Session(self.engine) as session:
            return slot_counts(session)

    def stale_reservations(self, older_than: timedelta) -> list[Worker]:
        cutoff = utcnow() - older_than
        with Session(self.engine) as session:
            rows = session.exec(select(WorkerRow).where(WorkerRow.state == WorkerState.PROVISIONING.value,
                                                        WorkerRow.updated_at < cutoff)).all()
            return _readable(rows)

