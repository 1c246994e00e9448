"""The daemons sharing a database (``hodei daemons``): read from the ``daemons`` table, locally or
through a running daemon's API (:mod:`hodei.api.daemons`), with the same answer."""

from __future__ import annotations

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
