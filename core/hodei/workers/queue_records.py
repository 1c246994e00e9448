"""The placement queue's table: one row per request waiting for a slot, shared by every daemon and CLI on
the database. A row lives while its client waits: the daemon serving that client confirms it
(``seen_at``) each time it looks again; a row nobody confirmed within the claim grace (its daemon was
killed and its client did not come back) is dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, not_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hodei.models import PlacementRow, utcnow
from hodei.storage.rows import aware


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

    def order(self) -> tuple[int, datetime, str]:
        """Its place in the queue: higher priority first, then arrival (then id, so ties are stable)."""
        return (-self.priority, self.enqueued_at, self.id)


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
