"""The daemons sharing a database (``hodei daemons``): read from the ``daemons`` table, locally or
through a running daemon's API (:mod:`hodei.api.daemons`), with the same answer; and a daemon's own
heartbeats into that table (its membership among the replicas)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine

from hodei.services.views import DaemonInfo
from hodei.storage.membership import Members


class Daemons(Protocol):
    def live(self) -> list[DaemonInfo]:
        """The live daemons (heartbeat younger than their lease), oldest first."""
        ...


class LocalDaemons:
    def __init__(self, engine: Engine):
        self.members = Members(engine)

    def live(self) -> list[DaemonInfo]:
        return self.members.live()

    def heartbeat(self, me: DaemonInfo, *, alone: bool = False) -> tuple[datetime, list[DaemonInfo]]:
        """Record that ``me`` is alive; the database's time and the live daemons (see :class:`Members`)."""
        return self.members.heartbeat(me, alone=alone)

    def leave(self, daemon_id: str) -> None:
        """A daemon stopping takes its row out, so the others take over its providers at once."""
        self.members.leave(daemon_id)
