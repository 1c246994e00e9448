"""Replicas: the daemons on one database divide the providers among themselves.

Each daemon keeps a row in ``daemons`` with a heartbeat (every quarter of its lease; the lease is
one health interval). The live daemons divide the providers by rendezvous hashing: a provider
belongs to the daemon whose hash of (daemon, provider) is highest, so when a daemon joins or leaves
only its share moves. The owner runs the provider's health checks and reconciliation; every daemon
still serves selection from its whole fleet.

* A daemon that stops cleanly deletes its row; the others hear it (NOTIFY hodei_daemons on
  PostgreSQL) and take its providers at once.
* One that is killed or cut off stops heartbeating; its lease lapses (the database's clock) and the
  others take its providers at their next heartbeat: within an interval and a quarter.
* One that is cut off stops checking its providers when its own lease lapses by its own clock,
  counted from before the last heartbeat it sent, so it stops no later than the others take over;
  when it is back it takes up its share again, each provider an interval after its last check
  (whichever daemon ran it), not at once. A daemon alone (or on SQLite) owns every provider and keeps
  checking through an outage: nobody else would.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry, Counter

from hodei.daemon.database import DatabaseLink, DatabaseUnavailable
from hodei.daemon.fleet import Fleet
from hodei.observability.metrics import SPECS
from hodei.services.daemons import LocalDaemons
from hodei.services.views import DaemonInfo

log = logging.getLogger(__name__)

# The lease never gets shorter than this, whatever the health interval: a heartbeat is a write.
MIN_LEASE_SECONDS = 1.0


def _weight(daemon_id: bytes, provider_id: uuid.UUID) -> int:
    return int.from_bytes(hashlib.blake2b(daemon_id + provider_id.bytes, digest_size=8).digest(), "big")


def owners(providers: Iterable[uuid.UUID], daemon_ids: Sequence[str]) -> dict[uuid.UUID, str]:
    """Rendezvous hashing: each provider to the daemon with the highest weight for it."""
    keys = [(d, d.encode()) for d in sorted(daemon_ids)]
    return {p: max(keys, key=lambda key: _weight(key[1], p))[0] for p in providers}


def lease_for(interval_seconds: float) -> float:
    return max(MIN_LEASE_SECONDS, interval_seconds)


class Membership:
    name = "membership"

    def __init__(self, members: LocalDaemons, db: DatabaseLink, fleet: Fleet, interval_seconds: float, *,
                 on_owned: Callable[[set[uuid.UUID] | None], None],
                 load_states: Callable[[set[uuid.UUID]], Awaitable[None]],
                 address: Callable[[], str | None], alone: bool = False, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic):
        from hodei import __version__

        self.members, self.db, self.fleet = members, db, fleet
        self.on_owned, self.load_states, self.address = on_owned, load_states, address
        self.alone = alone
        self.clock = clock
        self.lease = lease_for(interval_seconds)
        self.me = DaemonInfo(id=str(uuid.uuid4()), host=socket.gethostname(), pid=os.getpid(), address="",
                             version=__version__, started_at=datetime.now(UTC), heartbeat_at=datetime.now(UTC),
                             lease_seconds=self.lease)
        self.live: list[DaemonInfo] = []
        self.owned: set[uuid.UUID] | None = None  # None: every provider
        self.divided = False  # until the first division, this daemon does not know its share
        self.owned_count = 0
        self.ownership_changes = 0
        self.expires = float("-inf")  # by this daemon's clock: when its lease may have lapsed
        self.stopping = False
        self._wake = anyio.Event()
        self._generation = -1
        self._live_ids: tuple[str, ...] = ()
        self._told: tuple[int, str] = (-1, "")
        self.changes_counter = None
        if registry is not None:
            spec = next(s for s in SPECS if s.name == "hodei_daemon_ownership_changes_total")
            self.changes_counter = Counter(spec.name.removesuffix("_total"), spec.help, spec.labels,
                                           registry=registry)

    def configure(self, interval_seconds: float) -> None:
        self.lease = lease_for(interval_seconds)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self.stopping = True
        self.wake()

    @property
    def period(self) -> float:
        return self.lease / 4

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self._beat()  # in the table before the API answers
        await self._divide()
        task_status.started()
        try:
            while not self.stopping:
                told = (self.owned_count, self.address() or "") == self._told
                if told or not self.db.available:  # else say the new share (or the API's address) at once
                    with anyio.move_on_after(self.period):
                        await self._wake.wait()
                self._wake = anyio.Event()
                if self.stopping:
                    break
                await self._beat()
                await self._divide()
        finally:
            with anyio.move_on_after(5, shield=True):
                await self._leave()

    async def _beat(self) -> None:
        sent = self.clock()
        me = replace(self.me, address=self.address() or "", lease_seconds=self.lease,
                     providers_owned=self.owned_count)
        try:
            _, live = await self.db.call(self.members.heartbeat, me, alone=self.alone)
        except DatabaseUnavailable:
            return  # said once by the database link; the lease decides what this daemon may still do
        except Exception:
            log.exception("the heartbeat failed")
            return
        self.expires = sent + self.lease
        self.live = live
        self._told = (me.providers_owned, me.address)

    async def _leave(self) -> None:
        try:
            await self.db.call(self.members.leave, self.me.id)
            log.info("left the replicas: the others take this daemon's providers")
        except DatabaseUnavailable:
            log.warning("could not leave the replicas (the database is unavailable): the others take this "
                        "daemon's providers when its lease lapses, within %.1f s", self.lease)

    # -- dividing the providers ------------------------------------------------------------------

    def _member_ids(self) -> tuple[str, ...]:
        ids = tuple(sorted(d.id for d in self.live))
        if self.clock() >= self.expires:
            # The lease may have lapsed: if others were live they are taking over; alone, carry on.
            return () if any(i != self.me.id for i in ids) else (self.me.id,)
        return ids if self.me.id in ids else (*ids, self.me.id)

    async def _divide(self) -> None:
        ids = self._member_ids()
        if ids == self._live_ids and self.fleet.generation == self._generation:
            return
        reshuffled = ids != self._live_ids
        if reshuffled:
            names = ", ".join(f"{d.host}:{d.pid}" for d in self.live if d.id in ids) or "none reachable"
            log.info("replicas: %d live (%s)", len(ids), names)
        self._live_ids, self._generation = ids, self.fleet.generation
        providers = list(self.fleet.providers)
        owned: set[uuid.UUID] | None
        if ids == (self.me.id,):
            owned = None
        elif not ids:
            owned = set()
        else:
            shares = await anyio.to_thread.run_sync(owners, providers, ids)
            owned = {p for p, owner in shares.items() if owner == self.me.id}
        before = set(providers) if self.owned is None else self.owned
        after = set(providers) if owned is None else owned
        gained, lost = after - before, before - after
        if gained and self.owned is not None:
            # Their last checks (another daemon's) first: each is checked an interval after it, not now.
            with contextlib.suppress(DatabaseUnavailable):
                await self.load_states(gained)
        moved = len(gained) + len(lost) if reshuffled else 0
        if moved:
            self.ownership_changes += moved
            if self.changes_counter is not None:
                self.changes_counter.inc(moved)
            log.info("this daemon now checks %d of %d providers (%d taken, %d handed over)",
                     len(after), len(providers), len(gained), len(lost))
        self.owned, self.owned_count, self.divided = owned, len(after), True
        self.on_owned(owned)
