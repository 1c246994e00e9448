"""The workers table: reservations that hold, and only the transitions that make sense.

A reservation counts the provider's workers in a slot-holding state under a lock on the provider's
row (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite: :func:`hodei.database.write_session`), so any number of
daemons and CLIs sharing the database can never put more than ``max_workers`` on one provider.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from hodei.columns import Unreadable, raw_text
from hodei.database import write_session
from hodei.domain import WorkerState
from hodei.errors import HodeiError, NotFound, Problem
from hodei.models import ProviderConfigRow, WorkerRow, utcnow
from hodei.redaction import quote
from hodei.storage.rows import moment, value_reason
from hodei.storage.slots import slot_counts
from hodei.workers import queue_records

# Which state may follow which; anything else is a bug or a race lost, and is refused.
TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.PROVISIONING: frozenset({WorkerState.RUNNING, WorkerState.FAILED, WorkerState.RELEASING}),
    WorkerState.RUNNING: frozenset({WorkerState.RELEASING, WorkerState.TERMINATED}),
    WorkerState.RELEASING: frozenset({WorkerState.TERMINATED, WorkerState.FAILED}),
    WorkerState.TERMINATED: frozenset(),
    WorkerState.FAILED: frozenset(),
}
ENDED = frozenset({WorkerState.TERMINATED, WorkerState.FAILED})

# The hot path writes with SQL statements (one executemany per kind of change), not ORM objects: a batch
# of a few dozen writes costs a few statements, and no unit of work.
WORKERS = WorkerRow.metadata.tables["workers"]
PROVIDERS = ProviderConfigRow.metadata.tables["provider_configs"]
# Columns a transition may change; a column it does not change is never written back (it may hold a
# value edited in SQL that cannot be read, kept as it is).
_CHANGING = ("state", "reason", "updated_at", "ended_at", "handle", "backend_id", "attempts")


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
    # The columns of its row that cannot be read (said in ``reason`` too).
    problems: tuple[Problem, ...] = ()

    def unreadable(self, column: str) -> bool:
        return any(p.field == column for p in self.problems)

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id, "provider_id": str(self.provider_id), "provider": self.provider_name,
            "state": self.state.value, "reason": self.reason, "backend_id": self.backend_id,
            "requirements": dict(self.requirements), "attempts": list(self.attempts),
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


# The provider a row names when its provider_id cannot be read: no provider has it.
NO_PROVIDER = uuid.UUID(int=0)


def _worker(row: Any) -> Worker:
    """A row as a worker, whatever it holds: a column edited in SQL into something that cannot be read
    (a timestamp of 'infinity') is named in ``problems`` and in the reason, and shown as a stand-in
    (1970; FAILED for a state, which then holds no slot: slots are counted by state), so the row is
    still listed, and can be released."""
    problems = [Problem(name, value_reason(value)) for name in _WORKER_COLUMNS
                if isinstance(value := getattr(row, name), Unreadable)]
    created_at, updated_at = moment(row, "created_at", problems), moment(row, "updated_at", problems)
    ended_at = None if row.ended_at is None else moment(row, "ended_at", problems)
    try:
        state = WorkerState(row.state)
    except ValueError:
        problems.append(Problem("state", f"is not a worker state: {raw_text(row.state)[:40]!r}"))
        state = WorkerState.FAILED
    reason = raw_text(row.reason)
    if problems:
        said = f"this row cannot be read in full ({'; '.join(map(str, problems))})"
        reason = f"{said}; {reason}" if reason else said
    return Worker(raw_text(row.id), row.provider_id if isinstance(row.provider_id, uuid.UUID) else NO_PROVIDER,
                  raw_text(row.provider_name), state, reason,
                  None if row.backend_id is None else raw_text(row.backend_id), row.handle if isinstance(row.handle, Mapping) else None,
                  row.requirements if isinstance(row.requirements, Mapping) else {},
                  [a for a in row.attempts if isinstance(a, Mapping)] if isinstance(row.attempts, list) else [],
                  created_at, updated_at, ended_at, tuple(problems))


_WORKER_COLUMNS = ("provider_id", "handle", "requirements", "attempts")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Reservation:
    """A request for one slot on a provider: the worker row to insert if there is one."""

    provider_id: uuid.UUID
    worker_id: str
    token_sha256: str
    requirements: Mapping[str, Any]
    attempts: tuple[Mapping[str, Any], ...] = ()
    # A request waiting in the placement queue (its id, the daemon whose client waits): the reservation
    # takes its row out of the queue in the same transaction, or is refused when the row is gone.
    request: tuple[str, str] | None = None


@dataclass(frozen=True)
class Transition:
    """A worker's move to ``new``, if legal from its state (and that state is in ``expected``, when given).

    ``release``: the start of a release: RUNNING becomes ``new`` (RELEASING); a worker already RELEASING
    or ended comes back unchanged (a release is idempotent), one still PROVISIONING is refused.
    """

    worker_id: str
    new: WorkerState
    reason: str = ""
    expected: frozenset[WorkerState] | None = None
    handle: Mapping[str, Any] | None = None
    backend_id: str | None = None
    attempts: tuple[Mapping[str, Any], ...] | None = None
    release: bool = False


Write = Reservation | Transition
# PostgreSQL's deadlock_detected and serialization_failure: the transaction may simply be run again.
RETRYABLE = frozenset({"40P01", "40001"})


def _answer(result: Worker | HodeiError) -> Worker:
    if isinstance(result, HodeiError):
        raise result
    return result


def _reserve(write: Reservation, provider: Any, used: dict[uuid.UUID, int],
             now: datetime) -> SimpleNamespace | HodeiError:
    """The row to insert for ``write`` (``provider``: its id, name, status and max_workers, locked), or why not."""
    if provider is None:
        return CapacityExhausted(str(write.provider_id), "the provider was deleted")
    if provider.status != "ACTIVE":
        return CapacityExhausted(provider.name, f"{provider.name} is {provider.status}, not ACTIVE")
    taken = used.get(provider.id, 0)
    if taken >= provider.max_workers:
        return CapacityExhausted(provider.name, f"{provider.name} is at capacity ({taken}/{provider.max_workers})")
    used[provider.id] = taken + 1
    return SimpleNamespace(id=write.worker_id, provider_id=provider.id, provider_name=provider.name,
                           state=WorkerState.PROVISIONING.value, reason="", backend_id=None, handle=None,
                           requirements=dict(write.requirements), attempts=[dict(a) for a in write.attempts],
                           token_sha256=write.token_sha256, created_at=now, updated_at=now, ended_at=None)


def _transition(write: Transition, row: SimpleNamespace | None, used: dict[uuid.UUID, int],
                now: datetime, changed: set[str]) -> SimpleNamespace | HodeiError:
    """``row`` (a worker's columns, as read or as this batch left them) moved as ``write`` says, the columns
    changed added to ``changed``; or why not, changing nothing."""
    if row is None:
        return NotFound(f"no worker {quote(write.worker_id)}")
    current = _worker(row).state  # a column that cannot be read does not stop a release
    if write.release:
        if current is WorkerState.PROVISIONING:
            return IllegalTransition(f"worker {write.worker_id} is still being provisioned; release it when it runs")
        if current is not WorkerState.RUNNING:
            return row
    if (write.expected is not None and current not in write.expected) or write.new not in TRANSITIONS[current]:
        return IllegalTransition(f"worker {write.worker_id} is {current.value}; it cannot become {write.new.value}")
    if write.new in ENDED and row.provider_id in used:
        used[row.provider_id] -= 1  # a slot this batch frees is free for its next reservations
    row.state = write.new.value
    row.reason = write.reason
    row.updated_at = now
    changed.update(("state", "reason", "updated_at"))
    if write.new in ENDED:
        row.ended_at = now
        changed.add("ended_at")
    if write.handle is not None:
        row.handle = dict(write.handle)
        changed.add("handle")
    if write.backend_id is not None:
        row.backend_id = write.backend_id
        changed.add("backend_id")
    if write.attempts is not None:
        row.attempts = [dict(a) for a in write.attempts]
        changed.add("attempts")
    return row


class WorkerRecords:
    """Reads and writes the workers table. Sync: the daemon calls it from a worker thread."""

    def __init__(self, engine: Engine):
        self.engine = engine

    # -- reservations and transitions: one transaction for any number of them --------------------

    def write_many(self, writes: Sequence[Write]) -> list[Worker | HodeiError]:
        """Apply ``writes`` in order in one transaction (one commit for a whole batch of concurrent
        requests), each answered on its own: the worker as written, or the error that refused it
        (:class:`CapacityExhausted`, :class:`IllegalTransition`, :class:`NotFound`), which changed nothing.

        Rows are locked in one order (the reservations' providers by id, then the workers by id), so
        batches of several daemons cannot deadlock one another; slots are counted once per provider,
        under the lock, and the batch's own reservations and releases keep the count.
        """
        for attempt in range(3):
            try:
                return self._write_many(writes)
            except OperationalError as exc:
                # PostgreSQL gives up one of two transactions that wait on each other; the batch is retried.
                if attempt == 2 or getattr(exc.orig, "sqlstate", None) not in RETRYABLE:
                    raise
        raise AssertionError("unreachable")

    def _write_many(self, writes: Sequence[Write]) -> list[Worker | HodeiError]:
        provider_ids = sorted({w.provider_id for w in writes if isinstance(w, Reservation)})
        worker_ids = sorted({w.worker_id for w in writes if not isinstance(w, Reservation)})
        with write_session(self.engine) as session:
            providers: dict[uuid.UUID, Any] = {}
            used: dict[uuid.UUID, int] = {}
            if provider_ids:
                providers = {row.id: row for row in session.execute(
                    sa.select(PROVIDERS.c.id, PROVIDERS.c.name, PROVIDERS.c.status, PROVIDERS.c.max_workers)
                    .where(PROVIDERS.c.id.in_(provider_ids)).order_by(PROVIDERS.c.id).with_for_update())}
                used = {found: reserved + active
                        for found, (reserved, active) in slot_counts(session, providers).items()}
            rows: dict[str, SimpleNamespace] = {}
            if worker_ids:
                rows = {row.id: SimpleNamespace(**row._mapping) for row in session.execute(
                    sa.select(WORKERS).where(WORKERS.c.id.in_(worker_ids)).order_by(WORKERS.c.id).with_for_update())}
            requests = [w.request for w in writes if isinstance(w, Reservation) and w.request is not None]
            waiting = queue_records.claim(session, requests) if requests else set()
            placed: list[str] = []
            now = utcnow()
            results: list[Worker | HodeiError] = []
            inserted: dict[str, SimpleNamespace] = {}
            changed: dict[str, set[str]] = {}
            for write in writes:
                outcome: SimpleNamespace | HodeiError
                if isinstance(write, Reservation):
                    if write.request is not None and write.request[0] not in waiting:
                        outcome = queue_records.RequestLeft(f"request {write.request[0]} left the placement queue")
                    else:
                        outcome = _reserve(write, providers.get(write.provider_id), used, now)
                    if isinstance(outcome, SimpleNamespace):
                        rows[outcome.id] = inserted[outcome.id] = outcome
                        if write.request is not None:
                            placed.append(write.request[0])
                else:
                    outcome = _transition(write, rows.get(write.worker_id), used, now,
                                          changed.setdefault(write.worker_id, set()))
                results.append(_worker(outcome) if isinstance(outcome, SimpleNamespace) else outcome)
            _write_back(session, rows, inserted, changed)
            if placed:
                queue_records.remove(session, placed)
            session.commit()
            return results

    def reserve(self, provider_id: uuid.UUID, *, worker_id: str, token: str, requirements: Mapping[str, Any],
                attempts: Sequence[Mapping[str, Any]] = ()) -> Worker:
        """Take one slot on the provider, or raise :class:`CapacityExhausted` saying why not."""
        return _answer(self.write_many([Reservation(provider_id, worker_id, token_digest(token), dict(requirements),
                                                    tuple(dict(a) for a in attempts))])[0])

    def transition(self, worker_id: str, new: WorkerState, *, reason: str = "",
                   expected: Iterable[WorkerState] | None = None, handle: Mapping[str, Any] | None = None,
                   backend_id: str | None = None, attempts: Sequence[Mapping[str, Any]] | None = None) -> Worker:
        """Move a worker to ``new`` if the move is legal from its current state (and it is in one of
        ``expected``, when given). :raises IllegalTransition: otherwise, changing nothing."""
        return _answer(self.write_many([Transition(
            worker_id, new, reason, None if expected is None else frozenset(expected),
            None if handle is None else dict(handle), backend_id,
            None if attempts is None else tuple(dict(a) for a in attempts))])[0])

    def note(self, worker_id: str, reason: str) -> None:
        """Say why a worker is still where it is (a release that failed, to be retried)."""
        with write_session(self.engine) as session:
            session.execute(sa.update(WORKERS).where(WORKERS.c.id == worker_id).values(reason=reason, updated_at=utcnow()))
            session.commit()

    # -- reading ------------------------------------------------------------------------------

    def get(self, worker_id: str) -> Worker:
        with Session(self.engine) as session:
            row = session.get(WorkerRow, worker_id)
            if row is None:
                raise NotFound(f"no worker {quote(worker_id)}")
            return _worker(row)

    def find(self, *, provider_id: uuid.UUID | None = None, states: Iterable[WorkerState] | None = None,
             limit: int | None = None, after: str | None = None) -> list[Worker]:
        """Workers, newest first (then by id); with ``after``, those listed after that worker's row. Keyed on
        the row (its creation time, read by the database, and id), not a position: workers created between
        two pages neither shift the next one nor repeat."""
        with Session(self.engine) as session:
            query = select(WorkerRow)
            if provider_id is not None:
                query = query.where(WorkerRow.provider_id == provider_id)
            if states is not None:
                query = query.where(col(WorkerRow.state).in_([s.value for s in states]))
            if after is not None:
                # The database compares its own value: a time edited into something unreadable still pages.
                created = select(WorkerRow.created_at).where(WorkerRow.id == after).scalar_subquery()
                query = query.where(or_(col(WorkerRow.created_at) < created,
                                        and_(col(WorkerRow.created_at) == created, col(WorkerRow.id) > after)))
            query = query.order_by(col(WorkerRow.created_at).desc(), col(WorkerRow.id))
            if limit is not None:
                query = query.limit(limit)
            return [_worker(row) for row in session.exec(query).all()]

    def slot_counts(self) -> dict[uuid.UUID, tuple[int, int]]:
        """Per provider: (reserved: PROVISIONING, active: RUNNING or RELEASING)."""
        with Session(self.engine) as session:
            return slot_counts(session)

    def stale_reservations(self, older_than: timedelta) -> list[Worker]:
        cutoff = utcnow() - older_than
        with Session(self.engine) as session:
            # Compared here, not in SQL: a time that cannot be read ('infinity') must expire too, not never.
            # Reservations are few (at most every provider's max_workers).
            rows = session.exec(select(WorkerRow).where(WorkerRow.state == WorkerState.PROVISIONING.value)).all()
            found = [_worker(row) for row in rows]
            return [w for w in found if w.unreadable("updated_at") or w.updated_at < cutoff]


def _write_back(session: Session, rows: Mapping[str, SimpleNamespace], inserted: Mapping[str, SimpleNamespace],
                changed: Mapping[str, set[str]]) -> None:
    """The rows a batch inserted in one statement, and those it changed as it left them: one statement per
    set of columns changed."""
    if inserted:
        session.execute(sa.insert(WORKERS), [vars(row) for row in inserted.values()])
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for worker_id, columns in changed.items():
        if columns and worker_id not in inserted:
            names = tuple(c for c in _CHANGING if c in columns)
            row = rows[worker_id]
            updates.setdefault(names, []).append({"key": worker_id, **{c: getattr(row, c) for c in names}})
    for names, params in updates.items():
        session.execute(sa.update(WORKERS).where(WORKERS.c.id == sa.bindparam("key"))
                        .values({c: sa.bindparam(c) for c in names}), params)
