"""``hodei serve``: one anyio task group running the daemon's parts until a signal stops it.

Each part is started with ``TaskGroup.start`` and reports when it is up; the daemon is ready (and
tells systemd ``READY=1``) only when all are. SIGTERM and SIGINT stop new work, give in-flight work
``shutdown_grace_seconds``, and exit 0. SIGHUP re-reads hodei.toml: what can change live does, the
rest is reported as needing a restart.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import anyio

from hodei.daemon.config_watch import ConfigWatcher
from hodei.daemon.database import DatabaseLink
from hodei.daemon.fleet import Fleet, FleetChanges
from hodei.daemon.health_monitor import HealthMonitor
from hodei.daemon.systemd import Notifier, watchdog_interval
from hodei.database import create_engine, safe_url
from hodei.errors import HodeiError
from hodei.plugins import HodeiPluginManager, make_plugin_manager
from hodei.selection import build_chain
from hodei.settings import Settings, load_settings
from hodei.store import Store

log = logging.getLogger("hodei.daemon")

# Sections (or keys) a reload applies at once; anything else needs a restart.
LIVE = {"health", "selection", "daemon"}


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
                 notifier: Notifier | None = None):
        self.settings = settings
        self.config_path = config_path if config_path is not None else settings.source
        self.database_url = database_url
        self.pm = pm or make_plugin_manager(allow=settings.plugins.allow, deny=settings.plugins.deny)
        self.notifier = notifier or Notifier()
        self.store = Store(create_engine(settings.database.url), self.pm, check=False)
        self.chain = build_chain(self.pm, settings.selection.filters, settings.selection.rankers,
                                 settings.selection.weights)
        self.fleet = Fleet(self.store, self.chain)
        self.db = DatabaseLink(settings.daemon.database_timeout_seconds, on_change=self._database_changed)
        self.watcher = ConfigWatcher(self.fleet, self.store, self.db, settings.daemon, on_change=self._fleet_changed)
        self.monitor = HealthMonitor(self.fleet, self.pm, self.db, self.store, settings.health)
        self.parts: list[Any] = [self.watcher, self.monitor]
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

    def _fleet_changed(self, changes: FleetChanges) -> None:
        self.monitor.wake()
        if self.ready:
            self._announce()

    # -- life cycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT (or :meth:`shutdown`)."""
        url = self.settings.database.url
        log.info("hodei serve: database %s, config %s", safe_url(url), self.config_path or "built-in defaults")
        for problem in self.chain.problems:
            log.warning("selection: %s", problem)
        self.notifier.send(STATUS="starting")
        async with anyio.create_task_group() as group:
            group.start_soon(self._signals, group)
            interval = watchdog_interval()
            if interval is not None and self.notifier.enabled:
                group.start_soon(self._watchdog, interval)
            for part in self.parts:
                await group.start(part.run)
                log.info("%s started", part.name)
            # No part listens on the network yet: the API and metrics endpoints come with their parts.
            log.info("listening on no network address (the API and the metrics endpoint are not part of this release)")
            self.ready = True
            self.notifier.send(READY=1, STATUS=self.status_line())
            log.info("%s", self.status_line())
            await self._stopped.wait()
            await self._drain()
            group.cancel_scope.cancel()
        self.store.close()
        log.info("stopped")

    def shutdown(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.notifier.send(STOPPING=1, STATUS="stopping")
            for part in self.parts:
                part.stop()
            self._stopped.set()

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

    async def reload(self) -> list[str]:
        """Re-read hodei.toml (SIGHUP). Returns the keys that need a restart to take effect."""
        self.notifier.send(RELOADING=1, STATUS="reloading configuration")
        try:
            new = load_settings(self.config_path, self.database_url)
            chain = build_chain(self.pm, new.selection.filters, new.selection.rankers, new.selection.weights)
        except HodeiError as exc:
            log.error("reload refused, the running configuration is kept: %s", exc)
            self.notifier.send(READY=1, STATUS=self.status_line())
            return []
        changed = _diff(self.settings.model_dump(mode="json"), new.model_dump(mode="json"))
        live = [key for key in changed if key.split(".")[0] in LIVE]
        restart = [key for key in changed if key.split(".")[0] not in LIVE]
        new.database, new.plugins = self.settings.database, self.settings.plugins  # restart-only: kept
        self.settings = new
        self.chain = chain
        self.fleet.set_chain(chain)
        self.monitor.configure(new.health)
        self.watcher.configure(new.daemon)
        self.db.timeout = new.daemon.database_timeout_seconds
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
    engine = create_engine(settings.database.url)
    try:
        sqlite = engine.dialect.name == "sqlite"
        if migrate or (migrate is None and sqlite):
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
