"""The placement queue's table: one row per request waiting for a slot, shared by every daemon and CLI on
the database. A row lives while its client waits: the daemon serving that client confirms it
(``seen_at``) each time it looks again; a row nobody confirmed within the claim grace (its daemon was
killed and its client did not come back) is dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, not_, or_, tuple_, update
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hodei.columns import Unreadable
from hodei.errors import HodeiError
from hodei.models import PlacementRow, utcnow
from hodei.planning.order import queue_order
from hodei.storage.rows import aware

TABLE = PlacementRow.__table__  # type: ignore[attr-defined]
_CHUNK = 500  # ids per statement: well under every database's limit of parameters


class RequestLeft(HodeiError):
    """The waiting request's row is gone (cancelled, or taken over by a client that came back elsewhere):
    nothing was reserved for it."""


@dataclass(frozen=True)
class InLine:
    """A waiting request's place, as a placement round reads the queue (its requirements only when new)."""

    id: str
    priority: int
    enqueued_at: datetime
    daemon: str

    def order(self) -> tuple[int, Any, Any]:
        return queue_order(self.priority, self.enqueued_at, self.id)


def claim(session: Session, requests: list[tuple[str, str]]) -> set[str]:
    """In a placement's transaction: lock the rows of ``requests`` (id, the daemon whose client waits) that
    are still there and still that daemon's, and say which; :func:`remove` takes them out once placed."""
    found: set[str] = set()
    for start in range(0, len(requests), _CHUNK):
        part = requests[start:start + _CHUNK]
        found.update(session.execute(
            select_columns(TABLE.c.id).where(tuple_(TABLE.c.id, TABLE.c.daemon).in_(part))
            .order_by(TABLE.c.id).with_for_update()).scalars())
    return found


def remove(session: Session, ids: list[str]) -> None:
    for start in range(0, len(ids), _CHUNK):
        session.execute(delete(TABLE).where(TABLE.c.id.in_(ids[start:start + _CHUNK])))


@dataclass(frozen=True)
class Queued:
    """A waiting request as stored."""

    id: str
    priority: int
    enqueued_at: datetime
    deadline: datetime
    requirements: Mapping[str, Any]
    daemon: str
    seen_at: datetime
    reasons: str

    def order(self) -> tuple[int, Any, Any]:
        """Its place in the queue: higher priority first, then arrival (then id, so ties are stable)."""
        return queue_order(self.priority, self.enqueued_at, self.id)


def _queued(row: PlacementRow) -> Queued:
    requirements = row.requirements if isinstance(row.requirements, Mapping) else {}
    return Queued(row.id, int(row.priority), aware(row.enqueued_at), aware(row.deadline), requirements,
                  row.daemon, aware(row.seen_at), row.reasons)


class QueueRecords:
    def __init__(self, engine: Engine):
        self.engine = engine

    def join(self, request_id: str, priority: int, deadline: datetime, requirements: Mapping[str, Any],
             daemon: str, reasons: str = "") -> Queued:
        """Put the request in the queue, or take over its row when it is there already (a client that
        reconnected after its daemon restarted keeps its place: the arrival is the first one)."""
        now = utcnow()
        with Session(self.engine) as session:
            row = session.get(PlacementRow, request_id)
            if row is None:
                row = PlacementRow(id=request_id, priority=priority, enqueued_at=now, deadline=deadline,
                                   requirements=dict(requirements), daemon=daemon, seen_at=now, reasons=reasons)
            else:
                row.priority, row.deadline, row.requirements = priority, deadline, dict(requirements)
                row.daemon, row.seen_at, row.reasons = daemon, now, reasons
            session.add(row)
            session.commit()
            session.refresh(row)
            return _queued(row)

    def touch(self, request_id: str, reasons: str | None = None) -> bool:
        """Confirm the request still waits (and why); ``False`` when its row is gone (cancelled)."""
        values: dict[str, Any] = {"seen_at": utcnow()}
        if reasons is not None:
            values["reasons"] = reasons
        with Session(self.engine) as session:
            done = session.execute(update(PlacementRow).where(col(PlacementRow.id) == request_id).values(**values))
            session.commit()
            return bool(getattr(done, "rowcount", 0))

    def leave(self, request_id: str) -> bool:
        """Take the request out of the queue; ``False`` when it was not there."""
        with Session(self.engine) as session:
            done = session.execute(delete(PlacementRow).where(col(PlacementRow.id) == request_id))
            session.commit()
            return bool(getattr(done, "rowcount", 0))

    def waiting(self, grace_seconds: float) -> list[Queued]:
        """The requests waiting now, in queue order. Rows whose deadline passed or that nobody confirmed
        within ``grace_seconds`` are dropped on the way."""
        now = utcnow()
        with Session(self.engine) as session:
            rows = [_queued(row) for row in session.exec(select(PlacementRow)).all()]
            # A row past its deadline is its waiter's to remove (with the reasons); after the grace, anyone's.
            cutoff = now - timedelta(seconds=grace_seconds)
            stale = [q.id for q in rows if q.deadline < cutoff or q.seen_at < cutoff]
            if stale:
                session.execute(delete(PlacementRow).where(col(PlacementRow.id).in_(stale)))
                session.commit()
        gone = set(stale)
        return sorted((q for q in rows if q.id not in gone and q.deadline >= now), key=Queued.order)

    def page(self, grace_seconds: float, limit: int,
             after: tuple[int, datetime, str] | None = None) -> tuple[list[Queued], int]:
        """Up to ``limit`` requests waiting now, in queue order, after the one keyed ``after`` (its priority,
        arrival and id: it may have left since), and how many wait ahead of the first of them."""
        self.waiting(grace_seconds)  # drops the rows nobody waits for any more
        with Session(self.engine) as session:
            live = col(PlacementRow.deadline) >= utcnow()
            query = select(PlacementRow).where(live)
            ahead = 0
            if after is not None:
                priority, enqueued_at, request_id = after
                later = or_(col(PlacementRow.priority) < priority,
                            and_(col(PlacementRow.priority) == priority,
                                 or_(col(PlacementRow.enqueued_at) > enqueued_at,
                                     and_(col(PlacementRow.enqueued_at) == enqueued_at,
                                          col(PlacementRow.id) > request_id))))
                query = query.where(later)
                ahead = session.exec(select(func.count()).select_from(PlacementRow).where(live, not_(later))).one()
            query = query.order_by(col(PlacementRow.priority).desc(), col(PlacementRow.enqueued_at),
                                   col(PlacementRow.id)).limit(limit)
            return [_queued(row) for row in session.exec(query).all()], int(ahead)

    # -- for placement rounds: few columns, many rows, one statement each ----------------------------

    def line(self, grace_seconds: float) -> list[InLine]:
        """Every request waiting now, in queue order, without its requirements (:meth:`requirements_of`).
        Rows past their deadline or unconfirmed for ``grace_seconds`` are dropped on the way."""
        now = utcnow()
        cutoff = now - timedelta(seconds=grace_seconds)
        with Session(self.engine) as session:
            rows = session.execute(select_columns(TABLE.c.id, TABLE.c.priority, TABLE.c.enqueued_at,
                                                  TABLE.c.deadline, TABLE.c.seen_at, TABLE.c.daemon)).all()
            live: list[InLine] = []
            stale: list[str] = []
            for request_id, priority, enqueued_at, deadline, seen_at, daemon in rows:
                if any(isinstance(v, Unreadable) for v in (enqueued_at, deadline, seen_at)) \
                        or not isinstance(request_id, str):
                    stale.append(request_id)  # edited in SQL into something no order holds: not waited for
                    continue
                deadline, seen_at = aware(deadline), aware(seen_at)
                if deadline < cutoff or seen_at < cutoff:
                    stale.append(request_id)
                elif deadline >= now:
                    live.append(InLine(request_id, int(priority), aware(enqueued_at), str(daemon)))
            if stale:
                remove(session, stale)
                session.commit()
        return sorted(live, key=InLine.order)

    def requirements_of(self, ids: list[str]) -> dict[str, Any]:
        """The stored requirements of these waiting requests (those still there)."""
        found: dict[str, Any] = {}
        with Session(self.engine) as session:
            for start in range(0, len(ids), _CHUNK):
                found.update((row[0], row[1]) for row in session.execute(
                    select_columns(TABLE.c.id, TABLE.c.requirements).where(TABLE.c.id.in_(ids[start:start + _CHUNK]))))
        return found

    def join_many(self, joining: list[tuple[str, int, datetime, Mapping[str, Any], str, str, datetime | None]]
                  ) -> dict[str, datetime]:
        """Put these requests (id, priority, deadline, requirements, daemon, reasons, arrival or None for
        now) in the queue in one transaction, taking over rows already there (their arrival stays), and
        answer each one's arrival."""
        now = utcnow()
        ids = [j[0] for j in joining]
        with Session(self.engine) as session:
            held: dict[str, Any] = {}
            for start in range(0, len(ids), _CHUNK):
                held.update((row[0], row[1]) for row in session.execute(
                    select_columns(TABLE.c.id, TABLE.c.enqueued_at).where(TABLE.c.id.in_(ids[start:start + _CHUNK]))
                    .with_for_update()))
            new = [j for j in joining if j[0] not in held]
            if new:
                session.execute(insert(TABLE), [
                    {"id": i, "priority": p, "enqueued_at": arrival or now, "deadline": d, "requirements": dict(r),
                     "daemon": w, "seen_at": now, "reasons": why} for i, p, d, r, w, why, arrival in new])
            taken = [j for j in joining if j[0] in held]
            if taken:
                session.execute(update(TABLE).where(TABLE.c.id == bindparam("b_id")).values(
                    priority=bindparam("b_priority"), deadline=bindparam("b_deadline"),
                    requirements=bindparam("b_requirements"), daemon=bindparam("b_daemon"), seen_at=now,
                    reasons=bindparam("b_reasons")), [
                    {"b_id": i, "b_priority": p, "b_deadline": d, "b_requirements": dict(r), "b_daemon": w,
                     "b_reasons": why} for i, p, d, r, w, why, _ in taken])
            session.commit()
        arrived = {i: (arrival or now) for i, _, _, _, _, _, arrival in new}
        arrived.update({i: aware(v) if isinstance(v, datetime) else now for i, v in held.items()})
        return arrived

    def touch_many(self, ids: list[str]) -> None:
        """Confirm these requests still wait (their daemon's clients are there)."""
        now = utcnow()
        with Session(self.engine) as session:
            for start in range(0, len(ids), _CHUNK):
                session.execute(update(TABLE).where(TABLE.c.id.in_(ids[start:start + _CHUNK])).values(seen_at=now))
            session.commit()

    def note_reasons(self, reasons: dict[str, str]) -> None:
        """Say why each of these requests waits now."""
        by_reason: dict[str, list[str]] = {}
        for request_id, why in reasons.items():
            by_reason.setdefault(why, []).append(request_id)
        with Session(self.engine) as session:
            for why, ids in by_reason.items():
                for start in range(0, len(ids), _CHUNK):
                    session.execute(update(TABLE).where(TABLE.c.id.in_(ids[start:start + _CHUNK]))
                                    .values(reasons=why))
            session.commit()
