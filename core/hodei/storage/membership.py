"""The ``daemons`` table: every running ``hodei serve`` and its heartbeat.

A daemon is live while ``heartbeat_at + lease_seconds`` is ahead of the database's clock (on
PostgreSQL; one SQLite file has one daemon on one machine, so its clock is the machine's). Rows whose
lease lapsed long ago are removed by the heartbeats of the others, so the table stays the size of the
fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from hodei.database import write_session
from hodei.models import DaemonRow
from hodei.storage.rows import aware

# A row whose lease lapsed this many leases ago is gone for good (a crashed daemon, a removed host).
FORGET_AFTER_LEASES = 10


@dataclass(frozen=True)
class DaemonInfo:
    """One daemon as the table has it."""

    id: str
    host: str
    pid: int
    address: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    lease_seconds: float
    providers_owned: int = 0

    def live_at(self, now: datetime) -> bool:
        return self.heartbeat_at + timedelta(seconds=self.lease_seconds) > now

    def document(self) -> dict[str, object]:
        return {"id": self.id, "host": self.host, "pid": self.pid, "address": self.address,
                "version": self.version, "started_at": self.started_at.isoformat(),
                "heartbeat_at": self.heartbeat_at.isoformat(), "lease_seconds": self.lease_seconds,
                "providers_owned": self.providers_owned}


def _info(row: DaemonRow) -> DaemonInfo:
    return DaemonInfo(id=row.id, host=row.host, pid=row.pid, address=row.address, version=row.version,
                      started_at=aware(row.started_at), heartbeat_at=aware(row.heartbeat_at),
                      lease_seconds=row.lease_seconds, providers_owned=row.providers_owned)


def _now(session: Session) -> datetime:
    if session.get_bind().dialect.name == "postgresql":
        return aware(session.execute(sa.select(sa.func.now())).scalar_one())
    return datetime.now(UTC)


def _sorted(daemons: Sequence[DaemonInfo]) -> list[DaemonInfo]:
    return sorted(daemons, key=lambda d: (d.started_at, d.id))


class Members:
    """Reads and writes ``daemons``. Sync: the daemon calls it from a thread."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def heartbeat(self, me: DaemonInfo, *, alone: bool = False) -> tuple[datetime, list[DaemonInfo]]:
        """Renew ``me`` (inserted if missing: first beat, or back after others forgot it) and answer
        the database's time and the live daemons, ``me`` among them. ``alone``: this daemon holds
        the database by itself (SQLite's lock), so every other row is a leftover and goes."""
        with write_session(self.engine) as session:
            now = _now(session)
            updated = session.execute(
                sa.update(DaemonRow).where(col(DaemonRow.id) == me.id)
                .values(heartbeat_at=now, lease_seconds=me.lease_seconds, providers_owned=me.providers_owned,
                        address=me.address))
            if not getattr(updated, "rowcount", 0):
                session.add(DaemonRow(id=me.id, host=me.host, pid=me.pid, address=me.address, version=me.version,
                                      started_at=me.started_at, heartbeat_at=now, lease_seconds=me.lease_seconds,
                                      providers_owned=me.providers_owned))
            others = [_info(row) for row in session.exec(select(DaemonRow).where(col(DaemonRow.id) != me.id))]
            gone = [d.id for d in others if alone or d.heartbeat_at + timedelta(
                seconds=d.lease_seconds * FORGET_AFTER_LEASES) < now]
            if gone:
                session.execute(delete(DaemonRow).where(col(DaemonRow.id).in_(gone)))
            session.commit()
        live = [d for d in others if d.id not in gone and d.live_at(now)]
        return now, _sorted([*live, replace(me, heartbeat_at=now)])

    def leave(self, daemon_id: str) -> None:
        """A clean stop: the row goes, and the others take this daemon's providers at once."""
        with write_session(self.engine) as session:
            session.execute(delete(DaemonRow).where(col(DaemonRow.id) == daemon_id))
            session.commit()

    def live(self) -> list[DaemonInfo]:
        """The daemons whose lease has not lapsed, oldest first."""
        with Session(self.engine) as session:
            now = _now(session)
            return _sorted([d for d in map(_info, session.exec(select(DaemonRow))) if d.live_at(now)])
