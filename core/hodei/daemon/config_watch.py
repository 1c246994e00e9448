"""Keeps the fleet in step with provider_configs, however the rows are changed.

On PostgreSQL a trigger NOTIFYs every written row (CLI, API or plain SQL), and a LISTEN connection
fetches just those rows; a full re-read every ``resync_seconds`` is the safety net, and a lost
connection is re-opened with backoff (then re-read, since notifications were missed). On SQLite,
which has no notifications, a change counter kept by triggers on provider_configs is polled, so an
idle database costs one tiny query per ``poll_seconds`` and the daemon's own writes cost nothing.

With replicas (PostgreSQL), the same connection also follows the health results other daemons
record (NOTIFY hodei_provider_state: those providers' state is read again) and the daemons joining
and leaving (NOTIFY hodei_daemons: the membership re-divides the providers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from hodei import actors
from hodei.daemon.database import DatabaseLink, DatabaseUnavailable
from hodei.daemon.fleet import Fleet, FleetChanges
from hodei.domain import ProviderState, ProviderStatus
from hodei.services.fleet_reads import FleetReads
from hodei.settings import DaemonSettings

log = logging.getLogger(__name__)

CHANNEL = "hodei_provider_configs"
STATE_CHANNEL = "hodei_provider_state"
NOTES_PER_TURN = 200  # notifications read between two turns of the event loop
STATES_PER_TURN = 500  # states taken between two turns of the event loop
DAEMONS_CHANNEL = "hodei_daemons"
PLACEMENT_CHANNEL = "hodei_placement"  # a slot freed or a request left the placement queue, on any daemon


class ConfigWatcher:
    name = "configuration listener"

    def __init__(self, fleet: Fleet, db: DatabaseLink, settings: DaemonSettings,
                 on_change: Callable[[FleetChanges], None] | None = None,
                 on_daemons: Callable[[], None] | None = None,
                 record_sql_edits: Callable[[list[tuple[uuid.UUID, ProviderStatus, ProviderStatus, str]]],
                                            list[tuple[str, str, str]]] | None = None,
                 on_placement: Callable[[], Awaitable[None]] | None = None):
        self.fleet, self.db = fleet, db
        # Where status changes made in SQL are recorded (the providers service; None: not recorded).
        self.record_sql_edits = record_sql_edits
        self.reads: FleetReads = fleet.reads  # the same reads its fleet validates with
        self.settings = settings
        self.on_change = on_change
        self.on_daemons = on_daemons
        self.on_placement = on_placement
        self.postgres = self.reads.postgres
        self.listening = False
        self.resyncs = 0
        self.stopping = False
        self._placement = False  # a placement notification arrived in this batch
        self._version: int | None = None  # SQLite: the change counter when the providers were last read
        # PostgreSQL: who last wrote each row notified since the last refresh, as its notification said.
        self._writers: dict[uuid.UUID, str] = {}

    def configure(self, settings: DaemonSettings) -> None:
        self.settings = settings

    def stop(self) -> None:
        self.stopping = True

    # -- applying changes ---------------------------------------------------------------------

    def _report(self, changes: FleetChanges, how: str) -> None:
        if changes:
            log.info("providers %s (%s)", changes.describe(), how)
            if self.on_change is not None:
                self.on_change(changes)

    async def _record_sql_edits(self, changes: FleetChanges) -> None:
        """Status changes made in SQL, outside Hodei, go to the providers' history (Hodei's own changes are
        there already, written with them); the next change seen is tried again when this fails."""
        if not changes.statuses or self.record_sql_edits is None:
            return
        seen = [(provider_id, before, after, actors.sql(self._writers.pop(provider_id, "")))
                for provider_id, before, after in changes.statuses]
        try:
            recorded = await self.db.call(self.record_sql_edits, seen)
        except Exception as exc:  # DatabaseUnavailable, or a row gone meanwhile: a history entry, not the daemon
            log.warning("could not record status changes made in SQL: %s", exc)
            return
        for name, before, after in recorded:
            log.warning("provider %r: %s -> %s, changed in SQL (outside Hodei)", name, before, after)

    async def resync(self, how: str = "full re-read") -> None:
        """Read the whole table (and the worker counts); raises DatabaseUnavailable when it cannot."""
        ticket = self.fleet.begin_read()  # before the read starts: see Fleet.apply
        rows = await self.db.call(self.reads.rows)
        prepared = await anyio.to_thread.run_sync(self.fleet.prepare, rows, ticket)
        changes = self.fleet.apply(prepared, complete=True)
        await self.fleet.rebuilt()
        self._report(changes, how)
        await self._record_sql_edits(changes)
        self._writers.clear()  # what they said is older than this read: not to be told of a later change
        if self.resyncs == 0 or self.postgres:  # on PostgreSQL other daemons' results land in the table too
            self.fleet.load_states(self._not_older(await self.db.call(self.reads.states_of)))
        self.fleet.set_slots(await self.db.call(self.reads.slot_counts))
        self.resyncs += 1

    async def refresh(self, ids: set[uuid.UUID]) -> None:
        ticket = self.fleet.begin_read()
        rows = await self.db.call(self.reads.rows, sorted(ids))
        prepared = await anyio.to_thread.run_sync(self.fleet.prepare, rows, ticket)
        changes = self.fleet.apply(prepared, complete=False, deleted=ids)
        await self.fleet.rebuilt()
        self._report(changes, "notification")
        await self._record_sql_edits(changes)

    async def refresh_states(self, ids: set[uuid.UUID]) -> None:
        """These providers' state as stored: health another daemon found, for this daemon's selection."""
        stored = list((await self.db.call(self.reads.states_of, sorted(ids))).items())
        for start in range(0, len(stored), STATES_PER_TURN):
            if start:  # a health round's burst: let the event loop answer others (and compare after it)
                await anyio.lowlevel.checkpoint()
            for provider_id, state in self._not_older(dict(stored[start:start + STATES_PER_TURN])).items():
                self.fleet.set_state(provider_id, state)

    def _not_older(self, stored: dict[uuid.UUID, ProviderState]) -> dict[uuid.UUID, ProviderState]:
        """Stored states, but not over a newer one in the view (a check of this daemon's, not yet written).
        The cooldown is taken as stored all the same: it is written to the database before any view."""
        def older(provider_id: uuid.UUID, state: ProviderState) -> bool:
            held = self.fleet.states.get(provider_id)
            return bool(held is not None and held.checked_at is not None and
                        (state.checked_at is None or held.checked_at > state.checked_at))
        return {k: v if not older(k, v) else dataclasses.replace(
            self.fleet.states[k], provision_failures=v.provision_failures, cooldown_until=v.cooldown_until,
            last_provision_error=v.last_provision_error) for k, v in stored.items()}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        delay = 0.5
        while True:
            try:
                if not self.postgres:  # read first: a change made during the initial read is found by the next poll
                    self._version = await self.db.call(self.reads.config_version)
                await self.resync("initial read")
                break
            except DatabaseUnavailable as exc:
                log.error("cannot read providers yet (%s); retrying in %.1f s", exc, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 30.0)
        task_status.started()
        if self.postgres:
            await self._listen_forever()
        else:
            await self._poll_forever()

    # -- SQLite -------------------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        # From the version the initial read saw: a first poll that found nothing new re-read everything
        # (a full pass over every row, in the middle of the first health round).
        last_version, generation = self._version, self.db.generation
        next_resync = time.monotonic() + self.settings.resync_seconds
        while not self.stopping:
            await anyio.sleep(self.settings.poll_seconds)
            try:
                version = await self.db.call(self.reads.config_version)
                if self.db.generation != generation:  # another file now (a backup restored): all of it anew
                    generation, last_version, self.resyncs = self.db.generation, None, 0
                if version != last_version or time.monotonic() >= next_resync:
                    await self.resync("change found" if last_version is not None else "poll")
                    last_version = version
                    next_resync = time.monotonic() + self.settings.resync_seconds
            except DatabaseUnavailable:
                pass  # said once by the database link; the next poll tries again

    # -- PostgreSQL -----------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        delay = 0.5
        while not self.stopping:
            try:
                await self._listen_once()
                delay = 0.5
            except Exception as exc:  # psycopg.OperationalError, a dropped connection, a timeout
                self.listening = False
                if self.stopping:
                    return
                log.error("lost the change notifications (%s: %s); reconnecting in %.1f s",
                          type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "", delay)
                await anyio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 30.0)

    async def _listen_once(self) -> None:
        import psycopg

        timeout = self.settings.database_timeout_seconds
        with anyio.fail_after(timeout):
            connection = await psycopg.AsyncConnection.connect(self.reads.listen_url(), autocommit=True,
                                                               connect_timeout=max(1, int(timeout)))
        async with connection:
            with anyio.fail_after(timeout):
                for channel in (CHANNEL, STATE_CHANNEL, DAEMONS_CHANNEL, PLACEMENT_CHANNEL):
                    await connection.execute(f"LISTEN {channel}")
                found = await (await connection.execute("SELECT current_schema()")).fetchone()
                schema = found[0] if found else "public"
            # Notifications sent before LISTEN are lost: read everything once it is in place.
            await self.resync("listening again" if self.resyncs else "listening")
            self.listening = True
            log.info("following provider changes by LISTEN %s (schema %s)", CHANNEL, schema)
            next_resync = time.monotonic() + self.settings.resync_seconds
            while not self.stopping:
                wait = max(0.05, next_resync - time.monotonic())
                ids: set[uuid.UUID] = set()
                states: set[uuid.UUID] = set()
                everything = False
                self._placement = False
                async for note in connection.notifies(timeout=wait, stop_after=1):
                    everything |= self._sort(note, schema, ids, states)
                if ids or everything or states or self._placement:
                    # A burst (an apply of many rows, a health round's results) arrives as many notifications:
                    # take them together, letting the event loop answer others between every few hundred.
                    read = 0
                    async for note in connection.notifies(timeout=0.02):
                        everything |= self._sort(note, schema, ids, states)
                        read += 1
                        if read % NOTES_PER_TURN == 0:
                            await anyio.lowlevel.checkpoint()
                    if self._placement and self.on_placement is not None:
                        await self.on_placement()
                    if everything:
                        await self.resync("notification")
                    elif ids:
                        await self.refresh(ids)
                    if states and not everything:
                        await self.refresh_states(states)
                if time.monotonic() >= next_resync:
                    with anyio.fail_after(timeout):  # also proves the listening connection is alive
                        await connection.execute("SELECT 1")
                    await self.resync()
                    next_resync = time.monotonic() + self.settings.resync_seconds

    def _sort(self, note: Any, schema: str, ids: set[uuid.UUID], states: set[uuid.UUID]) -> bool:
        """Route one notification by its channel; ``True`` when the whole table must be re-read."""
        if note.channel == STATE_CHANNEL:
            return self._collect(note.payload, schema, states)  # a TRUNCATE of provider_state: read it all
        if note.channel == PLACEMENT_CHANNEL:
            with contextlib.suppress(ValueError, TypeError, AttributeError, RecursionError):
                self._placement |= json.loads(note.payload).get("schema") == schema
            return False
        if note.channel == DAEMONS_CHANNEL:
            found: set[uuid.UUID] = set()
            self._collect(note.payload, schema, found)  # only this schema's daemons
            if found and self.on_daemons is not None:
                self.on_daemons()
            return False
        self._note_writer(note.payload, schema)
        return self._collect(note.payload, schema, ids)

    def _note_writer(self, payload: str, schema: str) -> None:
        """Who wrote the row (since 0007 the notification says: user, application_name, client address)."""
        try:
            note = json.loads(payload)
            if note.get("schema") != schema or len(self._writers) >= 10_000:  # bounded between two re-reads
                return
            writer = [f"{label} {note[key]}" for key, label in (("user", "user"), ("application", "application"),
                                                                 ("client", "from")) if note.get(key)]
            if writer and note.get("id") is not None:
                self._writers[uuid.UUID(str(note["id"]))] = ", ".join(map(str, writer))
        except (ValueError, TypeError, KeyError, AttributeError):
            pass  # _collect says what to do with a notification it cannot read

    @staticmethod
    def _collect(payload: str, schema: str, ids: set[uuid.UUID]) -> bool:
        """Add the changed row's id to ``ids``; ``True`` when the whole table must be re-read."""
        try:
            note = json.loads(payload)
            if note.get("schema") != schema:
                return False  # another Hodei sharing the database, in its own schema
            if note.get("op") == "TRUNCATE" or note.get("id") is None:
                return True
            ids.add(uuid.UUID(str(note["id"])))
            return False
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):  # anyone may NOTIFY
            return True
