"""The daemon in-process, on SQLite and on PostgreSQL: health monitoring, status rules, live
configuration from plain SQL, and a database that goes away and comes back."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hodei import database
from hodei.daemon import Daemon
from hodei.domain import HealthStatus, ProviderStatus
from hodei.plugins import make_plugin_manager
from hodei.settings import Settings
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.testing.daemon import run_sql, running, wait_for
from hodei.testing.proxy import Proxy
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # psycopg's async connection (LISTEN) needs asyncio


def settings(url: str, **health: Any) -> Settings:
    return Settings.model_validate({
        "database": {"url": url},
        "health": {"interval_seconds": 0.2, "timeout_seconds": 0.5, "unhealthy_after": 2, "healthy_after": 2,
                   "max_backoff_seconds": 0.4, **health},
        "daemon": {"poll_seconds": 0.05, "resync_seconds": 30.0, "shutdown_grace_seconds": 1.0,
                   "database_timeout_seconds": 2.0},
        # Free ports: a busy one is a start-up failure, and other daemons may run on this machine.
        "api": {"listen": "127.0.0.1:0"}, "metrics": {"listen": "127.0.0.1:0"},
    })


@pytest.fixture
def store(hodei_store: Any) -> Any:
    return hodei_store


def by_name(daemon: Daemon, name: str) -> Any:
    return next((p for p in daemon.fleet.providers.values() if p.name == name), None)


def checks(daemon: Daemon, name: str) -> int:
    provider = by_name(daemon, name)
    return daemon.monitor.checks.get(provider.id, 0) if provider else 0


# -- health monitoring ---------------------------------------------------------------------------


async def test_a_hanging_backend_does_not_delay_the_other_providers(store, hodei_database_url) -> None:
    for i in range(5):
        store.create({"name": f"fast-{i}", "provider_type": "static", "config": {"latency_ms": 10}})
    for i in range(2):
        store.create({"name": f"hung-{i}", "provider_type": "static", "config": {"hang": True}})
    async with running(Daemon(settings(hodei_database_url, timeout_seconds=1.0))) as daemon:
        await anyio.sleep(2.5)
        fast = [checks(daemon, f"fast-{i}") for i in range(5)]
        hung = [checks(daemon, f"hung-{i}") for i in range(2)]
    # Every 0.2 s for 2.5 s: about 10 checks each, hangs or not elsewhere.
    assert min(fast) >= 6, (fast, hung)
    assert max(hung) <= 2, (fast, hung)
    states = ProviderStates(store.engine).all()
    hung_state = states[store.get("hung-0").id]
    assert hung_state.health is HealthStatus.UNHEALTHY
    assert hung_state.health_reason == "the health check did not answer within 1 s"


async def test_a_fleet_larger_than_the_concurrency_holds_only_that_many_checks_and_checks_every_one(
        store, hodei_database_url) -> None:
    # A round over a large fleet must not become one task per provider queued at the limiter (the
    # 100,000-provider daemon held them all and its loop answered probes late): at most ``concurrency``.
    for i in range(12):
        store.create({"name": f"slow-{i}", "provider_type": "static", "config": {"latency_ms": 100}})
    async with running(Daemon(settings(hodei_database_url, concurrency=3))) as daemon:
        most = 0
        with anyio.move_on_after(2.0):
            while True:
                most = max(most, len(daemon.monitor.in_flight))
                await anyio.sleep(0.005)
        counted = [checks(daemon, f"slow-{i}") for i in range(12)]
    assert 1 <= most <= 3, most
    assert min(counted) >= 1, counted  # every provider had its turn


async def test_status_follows_health_but_never_the_operators_statuses(store, hodei_database_url) -> None:
    broken = {"health": "Unhealthy", "health_reason": "socket refused"}
    store.create({"name": "flaky", "provider_type": "static", "config": broken})
    store.create({"name": "off", "provider_type": "static", "status": "DISABLED", "config": broken})
    store.create({"name": "maint", "provider_type": "static", "status": "MAINTENANCE", "config": broken})
    async with running(Daemon(settings(hodei_database_url))) as daemon:
        await wait_for(lambda: store.get("flaky").status == "UNHEALTHY", what="flaky to turn UNHEALTHY")
        # The daemon's own view follows its write a moment later (the write returns, then it is applied).
        await wait_for(lambda: by_name(daemon, "flaky").status is ProviderStatus.UNHEALTHY)
        assert daemon.fleet.selector.select(daemon.chain.parse_requirements({})).selected is None
        # The operator fixes the backend, here by changing the row in SQL.
        run_sql(hodei_database_url, "UPDATE provider_configs SET config = :c WHERE name = 'flaky'",
            c='{"type": "static", "health": "Healthy"}')
        await wait_for(lambda: store.get("flaky").status == "ACTIVE", what="flaky to be ACTIVE again")
        await wait_for(lambda: by_name(daemon, "flaky").status is ProviderStatus.ACTIVE)
        assert checks(daemon, "maint") >= 2
        assert checks(daemon, "off") == 0, "a DISABLED provider is not checked"
    assert (store.get("off").status, store.get("maint").status) == ("DISABLED", "MAINTENANCE")
    history = [(h.kind, h.old_value, h.new_value, h.cause) for h in ProviderStates(store.engine).history("flaky")]
    assert ("status", "ACTIVE", "UNHEALTHY", "2 consecutive failed health checks: socket refused") in history
    assert ("status", "UNHEALTHY", "ACTIVE", "2 consecutive passed health checks") in history
    assert ("health", None, "Unhealthy", "socket refused") in history
    assert [h for h in ProviderStates(store.engine).history("off") if h.kind == "status"] == []


# -- live configuration --------------------------------------------------------------------------


async def test_changes_made_in_sql_reach_the_running_daemon(store, hodei_database_url) -> None:
    store.create({"name": "a", "provider_type": "static", "priority": 1})
    async with running(Daemon(settings(hodei_database_url, interval_seconds=30.0))) as daemon:
        select = lambda: daemon.fleet.selector.select(daemon.chain.parse_requirements({}))
        assert select().selected.name == "a"
        run_sql(hodei_database_url, "INSERT INTO provider_configs (name, provider_type, config, priority) "
                                "VALUES ('b', 'static', '{}', 5)")
        await wait_for(lambda: select().selected.name == "b", what="the inserted provider")
        run_sql(hodei_database_url, "UPDATE provider_configs SET priority = 9 WHERE name = 'a'")
        await wait_for(lambda: select().selected.name == "a", what="the updated priority")
        # A change the plugin refuses: reported, and the last valid version keeps serving.
        run_sql(hodei_database_url, "UPDATE provider_configs SET config = :c, priority = 20 WHERE name = 'a'",
            c='{"type": "static", "latency": "fast"}')
        await wait_for(lambda: daemon.fleet.invalid, what="the invalid row to be noticed")
        assert [row.name for row in daemon.fleet.invalid.values()] == ["a"]
        assert by_name(daemon, "a").priority == 9 and select().selected.name == "a"
        report = daemon.fleet.selector.report(daemon.chain.parse_requirements({}))
        assert report.selected == "a"
        run_sql(hodei_database_url, "DELETE FROM provider_configs WHERE name = 'a'")
        await wait_for(lambda: by_name(daemon, "a") is None and not daemon.fleet.invalid, what="the deletion")
        assert select().selected.name == "b"


async def test_the_cli_and_the_store_are_live_too(store, hodei_database_url) -> None:
    async with running(Daemon(settings(hodei_database_url, interval_seconds=30.0))) as daemon:
        assert daemon.fleet.providers == {}
        store.create({"name": "new", "provider_type": "static"})
        await wait_for(lambda: by_name(daemon, "new") is not None, what="the new provider")
        store.set_status("new", "MAINTENANCE")
        await wait_for(lambda: by_name(daemon, "new").status is ProviderStatus.MAINTENANCE)


# -- the database going away -----------------------------------------------------------------------


async def test_the_daemon_outlives_the_database_and_recovers(hodei_postgres_url) -> None:
    engine = database.create_engine(hodei_postgres_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.create({"name": "steady", "provider_type": "static"})
    direct = make_url(hodei_postgres_url)
    proxy = Proxy((direct.host or "127.0.0.1", direct.port or 5432))
    via_proxy = direct.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        async with running(Daemon(settings(via_proxy))) as daemon:
            await wait_for(lambda: daemon.watcher.listening, what="LISTEN")
            proxy.cut()
            await wait_for(lambda: not daemon.db.available, what="the outage to be noticed")
            assert daemon.status_line().startswith("degraded: database unavailable")
            # Still serving from the last known state.
            assert daemon.fleet.selector.select(daemon.chain.parse_requirements({})).selected.name == "steady"
            checked = checks(daemon, "steady")
            await wait_for(lambda: checks(daemon, "steady") > checked, what="checks to go on")
            proxy.restore()
            await wait_for(lambda: daemon.db.available and daemon.watcher.listening, seconds=30,
                           what="the database to be back")
            assert daemon.status_line() == "ready: 1 providers"
            run_sql(hodei_postgres_url, "UPDATE provider_configs SET priority = 42 WHERE name = 'steady'")
            await wait_for(lambda: by_name(daemon, "steady").priority == 42, what="a change after the outage")
    finally:
        proxy.close()
        store.close()


def postgres_restart_command(url: str) -> tuple[list[str] | None, str]:
    """How this test may restart the server behind ``url``: ``$HODEI_TEST_POSTGRES_RESTART``, else
    ``pg_ctlcluster ... restart`` for the local Debian cluster listening on the URL's port, when this
    user may run it (root, or the cluster's owner). Else None, with the reason."""
    import getpass
    import os
    import shlex
    import shutil
    import subprocess

    from sqlalchemy.engine import make_url

    if command := os.environ.get("HODEI_TEST_POSTGRES_RESTART"):
        return shlex.split(command), ""
    parsed = make_url(url)
    if parsed.host not in ("127.0.0.1", "localhost", "::1", None) or not shutil.which("pg_lsclusters"):
        return None, "the server is not a local Debian cluster (no pg_lsclusters, or not on this host)"
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, timeout=30).stdout
    for line in listed.splitlines():
        version, name, port, _status, owner, *_ = line.split()
        if int(port) == (parsed.port or 5432):
            if os.geteuid() != 0 and getpass.getuser() != owner:
                return None, f"cluster {version}/{name} belongs to {owner}: this user may not restart it"
            return ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"], ""
    return None, f"no local cluster listens on port {parsed.port or 5432}"


async def test_postgresql_restarted_under_a_running_daemon(hodei_postgres_url) -> None:
    """The real thing: the test restarts the server (which every other test uses too) under a running
    daemon. The command is $HODEI_TEST_POSTGRES_RESTART, else worked out for a local Debian cluster."""
    import subprocess

    from hodei.testing import backend_unavailable

    command, why = postgres_restart_command(hodei_postgres_url)
    if command is None:
        backend_unavailable(f"cannot restart the test PostgreSQL: {why}; set HODEI_TEST_POSTGRES_RESTART to a "
                            "command that does (e.g. pg_ctlcluster --skip-systemctl-redirect 15 main restart)")
    engine = database.create_engine(hodei_postgres_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.create({"name": "steady", "provider_type": "static"})
    try:
        async with running(Daemon(settings(hodei_postgres_url))) as daemon:
            await wait_for(lambda: daemon.watcher.listening, what="LISTEN")
            resyncs = daemon.watcher.resyncs
            done = await anyio.to_thread.run_sync(
                lambda: subprocess.run(command, capture_output=True, text=True, timeout=120))
            assert done.returncode == 0, done.stderr
            # The LISTEN connection died with the server: the daemon reconnects and re-reads everything.
            await wait_for(lambda: daemon.watcher.resyncs > resyncs and daemon.watcher.listening, seconds=60,
                           what="LISTEN again after the restart")
            run_sql(hodei_postgres_url, "UPDATE provider_configs SET priority = 7 WHERE name = 'steady'")
            await wait_for(lambda: by_name(daemon, "steady").priority == 7, what="a change after the restart")
            checked = checks(daemon, "steady")
            await wait_for(lambda: checks(daemon, "steady") > checked and daemon.db.available,
                           what="health checks stored again")
            assert daemon.status_line() == "ready: 1 providers"
    finally:
        store.close()
