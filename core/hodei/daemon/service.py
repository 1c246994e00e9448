"""``hodei serve``: one anyio task group running the daemon's parts until a signal stops it.

Each part is started with ``TaskGroup.start`` and reports when it is up; the daemon is ready (and
tells systemd ``READY=1``) only when all are. SIGTERM and SIGINT stop new work, give in-flight work
``shutdown_grace_seconds``, and exit 0. SIGHUP re-reads hodei.toml: what can change live does, the
rest is reported as needing a restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import heapq
import logging
import math
import os
import signal
import socket
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.engine import make_url

from hodei import actors
from hodei.api.server import METHODS, ApiServer, ApiServices
from hodei.cooldown import Streak
from hodei.daemon.config_watch import ConfigWatcher
from hodei.daemon.database import DatabaseLink, DatabaseUnavailable, SqliteFile
from hodei.daemon.fleet import Fleet, FleetChanges
from hodei.daemon.health_monitor import HealthMonitor
from hodei.daemon.membership import Membership, owners
from hodei.daemon.sqlite_lock import SqliteLock
from hodei.daemon.systemd import Notifier, watchdog_interval
from hodei.database import create_engine, safe_url, sqlite_file
from hodei.domain import ProviderState
from hodei.errors import HodeiError, InvalidInput, Problem, StartupFailure
from hodei.observability.endpoint import MetricsEndpoint
from hodei.observability.telemetry import Telemetry, traced_reload
from hodei.observability.tracing import destination as tracing_destination
from hodei.plugins import HodeiPluginManager
from hodei.services.decisions import Decisions
from hodei.services.local import Runtime, on_database, open_store, plugin_manager, selection_chain
from hodei.settings import Settings, load_settings
from hodei.ui.app import OWNED_SHOWN, Replica, StatusPage, UiServices
from hodei.ui.server import UiServer
from hodei.workers import Reconciler

log = logging.getLogger("hodei.daemon")

# Sections (or keys) a reload applies at once; anything else needs a restart.
LIVE = {"health", "cooldown", "selection", "daemon", "workers"}
# [ui] keys a reload applies at once (the address and the token need a restart).
LIVE_UI = {"refresh_seconds", "decisions"}


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed


class Daemon:
    def __init__(self, settings: Settings, pm: HodeiPluginManager | None = None, *,
                 config_path: str | os.PathLike[str] | None = None, database_url: str | None = None,
                 notifier: Notifier | None = None, telemetry: Telemetry | None = None):
        self.settings = settings
        self.config_path = config_path if config_path is not None else settings.source
        self.database_url = database_url
        self.pm = pm or plugin_manager(settings)
        self.notifier = notifier or Notifier()
        self.store = open_store(settings, self.pm, check=False, create=True)
        self.chain = selection_chain(settings, self.pm)
        sqlite_path = sqlite_file(settings.database.url)
        self.db = DatabaseLink(settings.daemon.database_timeout_seconds, on_change=self._database_changed,
                               file=SqliteFile(self.store.engine, sqlite_path) if sqlite_path else None)
        self.telemetry = telemetry or Telemetry(settings.tracing)  # metrics registry, tracer provider
        # The last selections and provisions, for the status page's decisions page.
        self.decisions = Decisions(settings.ui.decisions)
        # The application services, built as the CLI builds them, with the daemon's runtime: selection from
        # the live fleet, recorded in this daemon's telemetry; database calls through the database link.
        # Its changes are made for API callers, each named as the actor of its own (hodei.actors).
        self.services = on_database(self.store, self.chain, settings.workers, health=settings.health,
                                    cooldown=settings.cooldown, actor=actors.api("", None),
                                    check_timeout=settings.health.timeout_seconds,
                                    runtime=Runtime(
                                        selector=lambda: self.fleet.selector, chain=lambda: self.chain,
                                        call=self.db.call, recorder=self.telemetry, telemetry=self.telemetry,
                                        on_slots=self._adjust_slots, on_failure=self._check_soon,
                                        provider_of=lambda provider_id: self.fleet.providers.get(provider_id),
                                        on_cooldown=self._cooldown_recorded,
                                        queue_sweep_seconds=settings.workers.queue_sweep_seconds,
                                        waiter=f"daemon {socket.gethostname()}:{os.getpid()}",
                                        decisions=self.decisions))
        # The live view reads (and validates changed rows) through the services, like every other part.
        self.fleet = Fleet(self.services.fleet_reads, self.chain)
        self.states = self.services.states
        self.selection, self.providers = self.services.selection, self.services.providers
        self.records, self.provisioner, self.workers = (self.services.records, self.services.provisioner,
                                                        self.services.workers)
        self.queue = self.workers.queue
        self.fleet.on_recovered = self.queue.wake
        # Concurrent requests' reservations and transitions share transactions (group commit).
        self.writes = self.provisioner.writes
        self.watcher = ConfigWatcher(self.fleet, self.db, settings.daemon, on_change=self._fleet_changed,
                                     on_daemons=self._daemons_changed,
                                     record_sql_edits=self.providers.record_outside_changes,
                                     on_placement=self._placement_possible)
        self.monitor = HealthMonitor(self.fleet, self.services.health, self.db, settings.health,
                                     telemetry=self.telemetry)
        # One SQLite file, one daemon (a lock); on PostgreSQL the replicas divide the providers.
        self.sqlite_lock = SqliteLock(settings.database.url)
        # Its own link (its own thread): a heartbeat must not wait behind a round of reconciliation, or the
        # lease would lapse on a busy daemon.
        self.heartbeat_db = DatabaseLink(settings.daemon.database_timeout_seconds)
        self.membership = Membership(self.services.daemons, self.heartbeat_db, self.fleet,
                                     settings.health.interval_seconds,
                                     on_owned=self.monitor.set_owned, load_states=self.watcher.refresh_states,
                                     address=lambda: self.api.address, alone=self.sqlite_lock.path is not None,
                                     registry=self.telemetry.registry)
        self.telemetry.watch(self.fleet, database_up=lambda: self.db.available, ready=lambda: self.ready,
                             membership=self.membership)
        self.metrics_endpoint = MetricsEndpoint(self.telemetry.registry, settings.metrics.listen)
        self.reconciler = Reconciler(self.pm, self.records, self.provisioner, settings.workers,
                                     providers=self._owned_providers, call=self.db.call,
                                     on_slots=self._refresh_slots, telemetry=self.telemetry)
        # The health monitor starts last: its first round begins at once, and the others' start-up
        # (binding ports, the first read of every provider) should not pause the loop in the middle of it.
        self.parts: list[Any] = [self.metrics_endpoint, self.watcher, self.membership, self.writes,
                                 self.reconciler]
        source = self.config_path or settings.source
        self.api = ApiServer(  # after the rest is up: it answers for all of it
            settings.api, ApiServices(self.providers, self.selection, self.workers, call=self.db.call,
                                      changed=self._provider_written, daemons=self.services.daemons,
                                      checked=self.watcher.refresh_states),
            base=Path(source).parent if source else Path.cwd(),
            # A PostgreSQL outage keeps serving selections from memory; a SQLite file gone does not: writes
            # the API accepted would be lost, so the health service says NOT_SERVING until it is back.
            serving=lambda: self.ready and not self.stopping and self.db.file_problem is None,
            interceptors=[self.telemetry.grpc_interceptor(METHODS)],
            grace_seconds=settings.daemon.shutdown_grace_seconds)
        # The status page asks for the API's token and speaks the API's TLS, both read when it starts.
        self.ui = UiServer(
            StatusPage(UiServices(self.fleet, self.providers, self.selection, self.workers, self.decisions,
                                  call=self.db.call, replicas=self._replicas, status_line=self.status_line),
                       refresh_seconds=settings.ui.refresh_seconds),
            settings.ui.listen, token=self.api.token, certificate=self.api.certificate_files(),
            grace_seconds=min(settings.daemon.shutdown_grace_seconds, 5.0))
        self.parts += [self.api, self.ui, self.monitor]
        self.ready = False
        self.stopping = False
        self._stopped = anyio.Event()

    # -- status -------------------------------------------------------------------------------

    def status_line(self) -> str:
        if self.stopping:
            return "stopping"
        if not self.ready:
            return "starting"
        providers = f"{len(self.fleet.providers)} providers"
        if self.fleet.invalid:
            providers += f", {len(self.fleet.invalid)} invalid"
        if not self.db.available:
            return f"degraded: database unavailable ({self.db.problem}); serving {providers} from the last known state"
        return f"ready: {providers}"

    def _announce(self) -> None:
        self.notifier.send(STATUS=self.status_line())

    def _database_changed(self, available: bool, problem: str) -> None:
        self._announce()

    async def _refresh_slots(self) -> None:
        """Worker counts from the table: each reconcile round (other daemons' workers included)."""
        with contextlib.suppress(DatabaseUnavailable):  # the next resync brings them
            self.fleet.set_slots(await self.db.call(self.records.slot_counts))
            self.queue.wake()  # a worker ended, or another daemon's did

    async def _placement_possible(self) -> None:
        """Another daemon freed a slot or a request left the queue: the counts, then the waiting requests."""
        await self._refresh_slots()

    def _adjust_slots(self, provider_id: uuid.UUID, reserved: int, active: int) -> None:
        """This daemon's own reservations and releases, applied to selection's load at once."""
        held_reserved, held_active = self.fleet.slots.get(provider_id, (0, 0))
        self.fleet.set_slots({provider_id: (max(0, held_reserved + reserved), max(0, held_active + active))},
                             complete=False)
        if reserved + active < 0:  # a slot freed (not a reservation turned running): a waiting request may take it
            self.queue.wake()

    async def _provider_written(self, provider_id: uuid.UUID) -> None:
        """Read-your-writes for selection: the daemon's view of a provider written through the API now,
        not at the next notification."""
        await self.watcher.refresh({provider_id})
        await self.watcher.refresh_states({provider_id})  # a cooldown reset through the API, say

    def _check_soon(self, provider_id: uuid.UUID) -> None:
        """A provision failed: the provider is checked now (its cooldown counts the failure itself), so a
        backend that is down is found Unhealthy by its check, not by one failed provision."""
        self.monitor.check_soon(provider_id)

    def _cooldown_recorded(self, provider_id: uuid.UUID, streak: Streak) -> None:
        """A streak this daemon recorded, applied to selection at once (the others hear it by NOTIFY)."""
        state = self.fleet.states.get(provider_id) or ProviderState()
        self.fleet.set_state(provider_id, dataclasses.replace(
            state, provision_failures=streak.failures, cooldown_until=streak.until,
            last_provision_error=streak.last_error))

    def _owned_providers(self) -> dict[uuid.UUID, Any]:
        """The providers this daemon reconciles: those it owns among the replicas."""
        if self.monitor.owned is None:
            return self.fleet.providers
        return {k: v for k, v in self.fleet.providers.items() if k in self.monitor.owned}

    async def _replicas(self) -> list[Replica]:
        """The live daemons and the providers each owns (rendezvous, as each divides them), for the status page."""
        members = {d.id: d for d in self.membership.live}
        members.setdefault(self.membership.me.id, self.membership.me)
        names = {provider_id: provider.name for provider_id, provider in self.fleet.providers.items()}
        shares = await anyio.to_thread.run_sync(owners, list(names), sorted(members))
        owned: dict[str, list[str]] = {daemon_id: [] for daemon_id in members}
        for provider_id, daemon_id in shares.items():
            owned[daemon_id].append(names[provider_id])
        return [Replica(info, info.id == self.membership.me.id, len(owned[info.id]),
                        tuple(sorted(owned[info.id])[:OWNED_SHOWN]))
                for info in sorted(members.values(), key=lambda d: d.started_at)]

    def _daemons_changed(self) -> None:
        self.membership.wake()

    def _fleet_changed(self, changes: FleetChanges) -> None:
        self.telemetry.fleet_changed(changes)
        self.queue.wake()  # a provider added, enabled, its max_workers raised
        self.membership.wake()
        self.monitor.wake()
        if self.ready:
            self._announce()

    # -- life cycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT (or :meth:`shutdown`)."""
        url = self.settings.database.url
        origin = self.settings.origin
        log.info("hodei serve: database %s, %s", safe_url(url), f"{origin.describe()}; database from "
                 f"{origin.database_from}" if origin else f"config {self.config_path or 'built-in defaults'}")
        log.info("%s", tracing_destination(self.settings.tracing))
        for problem in self.chain.problems:
            log.warning("selection: %s", problem)
        self.sqlite_lock.acquire()  # before anything is read or written: a second daemon stops here
        self.notifier.send(STATUS="starting")
        # What exists now lives as long as the daemon: freezing it keeps the collector from walking it
        # again and again, which otherwise pauses the event loop for tens of ms under load. Done before
        # the parts start: a full collection in the middle of the first health round would be one.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)  # a round of checks makes many short-lived objects: collect less often
        # A thread busy in Python (a batch of health results written, a plugin's SDK call) hands the
        # interpreter back to the event loop within half a millisecond rather than the default five, so
        # the loop's answers (a Select, a provision) do not wait behind it.
        sys.setswitchinterval(0.0005)
        try:
            await self._run_parts()
        except BaseExceptionGroup as errors:
            # A part that cannot start (a port another process holds) stops the daemon before it is
            # ready: one clear error, and a non-zero exit for systemd, not a traceback of the task group.
            failure, rest = errors.split(StartupFailure)
            if failure is None or rest is not None:
                raise
            first = failure.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            log.error("start-up failed: %s", first)
            self.notifier.send(STATUS=f"start-up failed: {first}")
            raise first from None
        finally:
            self.store.close()
            self.telemetry.shutdown()
            self.sqlite_lock.release()
        log.info("stopped")

    async def _run_parts(self) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._signals, group)
            group.start_soon(self._wake_at_cooldown_ends)
            interval = watchdog_interval()
            if interval is not None and self.notifier.enabled:
                group.start_soon(self._watchdog, interval)
            for part in self.parts:
                await group.start(part.run)
                log.info("%s started", part.name)
            urls = [f"{part.name} {part.url}" for part in self.parts if getattr(part, "url", None)]
            log.info("listening on %s", ", ".join(urls) if urls else "no network address")
            self.ready = True
            self.membership.wake()  # the API's address, now bound, into the daemons table
            self.notifier.send(READY=1, STATUS=self.status_line())
            log.info("%s", self.status_line())
            await self._stopped.wait()
            await self._drain()
            group.cancel_scope.cancel()

    def shutdown(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.queue.closing = True  # waiting requests keep their rows for their clients to come back
            self.notifier.send(STOPPING=1, STATUS="stopping")
            for part in self.parts:
                part.stop()
            self._stopped.set()

    async def _wake_at_cooldown_ends(self) -> None:
        """Waiting requests try again the moment a provider's cooldown ends, not at the next sweep."""
        added = anyio.Event()

        def end_added() -> None:
            nonlocal added
            added.set()

        self.fleet.on_cooldown_end_added = end_added
        ends = self.fleet.cooldown_ends
        while True:
            now = datetime.now(UTC)
            if ends and ends[0][0] <= now:
                while ends and ends[0][0] <= now:
                    heapq.heappop(ends)
                self.queue.wake()
                continue
            with anyio.move_on_after((ends[0][0] - now).total_seconds() if ends else math.inf):
                await added.wait()
            added = anyio.Event()

    async def _drain(self) -> None:
        grace = self.settings.daemon.shutdown_grace_seconds
        with anyio.move_on_after(grace) as scope:
            while self.monitor.in_flight:
                await anyio.sleep(0.05)
        if scope.cancelled_caught:
            log.warning("%d health checks still running after %.1f s; cancelling them",
                        len(self.monitor.in_flight), grace)

    async def _signals(self, group: Any) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    await self.reload()
                else:
                    log.info("received %s: stopping", signal.Signals(signum).name)
                    self.shutdown()

    async def _watchdog(self, interval: float) -> None:
        # Pinged from the event loop: a loop that stops turning stops the pings, and systemd restarts us.
        while True:
            self.notifier.send(WATCHDOG=1)
            await anyio.sleep(interval)

    @traced_reload
    async def reload(self) -> list[str]:
        """Re-read hodei.toml (SIGHUP). Returns the keys that need a restart to take effect."""
        self.notifier.reloading("reloading configuration")
        try:
            new = load_settings(self.config_path, self.database_url, refuse_empty=True)
            # Sections the running file set (settings built in code, without a file, set none).
            running = self.settings.model_fields_set & LIVE if self.settings.source is not None else set()
            dropped = sorted(running - new.model_fields_set)
            if dropped:
                # A file cut short (a copy or an editor caught halfway) loses its last sections; taking it
                # would put them back to their defaults without a word.
                raise InvalidInput(Problem("config", f"{', '.join(f'[{s}]' for s in dropped)} is set by the running "
                                           "configuration but missing from the file (cut short?); to go back to "
                                           "the defaults, keep the section header with no keys under it"))
            chain = selection_chain(new, self.pm)
        except HodeiError as exc:
            log.error("reload refused, the running configuration is kept: %s", exc)
            self.notifier.send(READY=1, STATUS=self.status_line())
            return []
        changed = _diff(self.settings.model_dump(mode="json"), new.model_dump(mode="json"))
        live = [key for key in changed if key.split(".")[0] in LIVE or key.removeprefix("ui.") in LIVE_UI]
        restart = [key for key in changed if key not in live]
        # What needs a restart keeps running as it is: the running settings say what runs, so the next
        # reload compares with them (a restart-only key changed and changed back is no change).
        for section in type(new).model_fields:
            if section not in LIVE:
                kept = getattr(self.settings, section)
                if section == "ui":  # its live keys from the file, its address as it runs
                    kept = kept.model_copy(update={key: getattr(new.ui, key) for key in LIVE_UI})
                setattr(new, section, kept)
        self.settings = new
        self.chain = chain
        self.fleet.set_chain(chain)
        self.services.health.configure(new.health)
        self.services.cooldowns.configure(new.cooldown)
        self.monitor.configure(new.health)
        self.providers.check_timeout = new.health.timeout_seconds
        self.membership.configure(new.health.interval_seconds)
        self.watcher.configure(new.daemon)
        self.reconciler.configure(new.workers)
        self.ui.page.refresh = new.ui.refresh_seconds
        self.decisions.resize(new.ui.decisions)
        self.provisioner.settings = new.workers
        self.db.timeout = self.heartbeat_db.timeout = new.daemon.database_timeout_seconds
        log.info("reloaded %s: %s", self.config_path or "settings",
                 f"applied {', '.join(live)}" if live else "no live setting changed")
        if restart:
            log.warning("these settings changed but need a restart to take effect: %s", ", ".join(restart))
        self.notifier.send(READY=1, STATUS=self.status_line())
        return restart


def serve(config: str | None = None, database_url: str | None = None, *, migrate: bool | None = None) -> None:
    """Load the settings, prepare the database, and run the daemon until stopped."""
    from hodei import database

    settings = load_settings(config, database_url)
    sqlite = make_url(settings.database.url).get_backend_name() == "sqlite"
    migrating = bool(migrate or (migrate is None and sqlite))
    engine = create_engine(settings.database.url, create=migrating)  # a database is created only to migrate it
    try:
        if migrating:
            before, after = database.upgrade(engine)
            if before != after:
                log.info("database schema migrated from %s to %s", before or "empty", after)
        else:
            database.check_schema(engine)
    finally:
        engine.dispose()
    path = config or os.environ.get("HODEI_CONFIG") or (str(settings.source) if settings.source else None)
    daemon = Daemon(settings, config_path=Path(path) if path else None, database_url=database_url)
    anyio.run(daemon.run)
