"""One write path for health: ``hodei providers check`` and the daemon's health monitor record the same
sequence of results into the same history (SQLite and PostgreSQL), whichever of them found each result,
with the same status rules and the same causes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hodei.daemon import Daemon
from hodei.settings import load_settings
from hodei.storage.provider_state import ProviderStates
from hodei.testing.daemon import run_sql

if TYPE_CHECKING:
    from conftest import Hodei

pytestmark = pytest.mark.anyio

# What the backend answers, check after check: two failures turn it UNHEALTHY, two passes back ACTIVE.
ANSWERS = [("Unhealthy", "socket refused"), ("Unhealthy", "socket refused"), ("Unhealthy", "timed out"),
           ("Healthy", ""), ("Healthy", ""), ("Degraded", "slow disk"), ("Unhealthy", "socket refused"),
           ("Unhealthy", "disk full"), ("Healthy", "")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # psycopg's async connection (LISTEN) needs asyncio


@pytest.fixture
def config(config_file: Path) -> Path:
    # The CLI and the daemon read the same hodei.toml, as on a host where both run.
    with config_file.open("a", encoding="utf-8") as file:
        file.write("\n[health]\nunhealthy_after = 2\nhealthy_after = 2\n"
                   '\n[api]\nlisten = "127.0.0.1:0"\n\n[metrics]\nlisten = "127.0.0.1:0"\n')
    return config_file


def answer(hodei: Hodei, name: str, step: int) -> None:
    health, reason = ANSWERS[step]
    run_sql(hodei.url, "UPDATE provider_configs SET config = :c WHERE name = :n", n=name,
            c=json.dumps({"type": "static", "health": health, "health_reason": reason}))


def history(hodei: Hodei, name: str) -> list[tuple[Any, ...]]:
    """As ``hodei providers history`` shows it, oldest first, without the times."""
    return [(h["kind"], h["from"], h["to"], h["cause"])
            for h in reversed(hodei.json("providers", "history", name, "--limit", "100"))]


class Checker:
    """Runs each step's check through the CLI or through a daemon's health monitor."""

    def __init__(self, hodei: Hodei, daemon: Daemon):
        self.hodei, self.daemon = hodei, daemon

    async def cli(self, name: str) -> None:
        # In a thread of its own: the command runs an event loop of its own, as when run from a shell.
        await anyio.to_thread.run_sync(self.hodei.ok, "providers", "check", name)

    async def monitor(self, name: str) -> None:
        provider_id = self.daemon.store.get(name).id
        await self.daemon.watcher.refresh({provider_id})  # the daemon's view of the row as it is now
        await self.daemon.monitor._check(provider_id)
        await self.daemon.monitor.flush()


@pytest.fixture
async def checker(hodei: Hodei, config: Path) -> Any:
    daemon = Daemon(load_settings(str(config), hodei.url))
    try:
        yield Checker(hodei, daemon)
    finally:
        daemon.store.close()


async def test_the_cli_and_the_daemon_record_the_same_results_the_same_way(hodei: Hodei, checker: Checker) -> None:
    for name in ("by-cli", "by-daemon", "by-both"):
        hodei.ok("providers", "add", name, "--type", "static")
    for step in range(len(ANSWERS)):
        for name in ("by-cli", "by-daemon", "by-both"):
            answer(hodei, name, step)
        await checker.cli("by-cli")
        await checker.monitor("by-daemon")
        # Taking turns: each counts on from what the other recorded (one run of failures, not two).
        if step % 2:
            await checker.cli("by-both")
        else:
            await checker.monitor("by-both")
        await anyio.sleep(0.002)  # each result newer than the last counted one

    expected = [
        ("created", None, "static", "created"),
        ("health", None, "Unhealthy", "socket refused"),
        ("status", "ACTIVE", "UNHEALTHY", "2 consecutive failed health checks: socket refused"),
        ("health", "Unhealthy", "Healthy", ""),
        ("status", "UNHEALTHY", "ACTIVE", "2 consecutive passed health checks"),
        ("health", "Healthy", "Degraded", "slow disk"),
        ("health", "Degraded", "Unhealthy", "socket refused"),
        ("status", "ACTIVE", "UNHEALTHY", "2 consecutive failed health checks: disk full"),
        ("health", "Unhealthy", "Healthy", ""),
    ]
    assert history(hodei, "by-cli") == expected
    assert history(hodei, "by-daemon") == expected
    assert history(hodei, "by-both") == expected
    shown = {name: hodei.provider(name) for name in ("by-cli", "by-daemon", "by-both")}
    assert {name: (p["status"], p["state"]["health"]) for name, p in shown.items()} == {
        name: ("UNHEALTHY", "Healthy") for name in shown}


async def test_a_check_older_than_the_daemons_last_one_is_not_counted(hodei: Hodei, checker: Checker) -> None:
    """The stale-result guard holds on the one write path: a check through the health service (as
    ``hodei providers check`` runs it) that started before the daemon's last recorded one, recorded
    after it, is not counted over it."""
    hodei.ok("providers", "add", "edge", "--type", "static")
    answer(hodei, "edge", 0)
    health = checker.daemon.services.health
    from hodei.services.health import Result

    early = await health.probe(checker.daemon.store.get("edge").to_provider(), 1.0)
    await anyio.sleep(0.002)
    await checker.monitor("edge")
    await checker.monitor("edge")
    assert hodei.provider("edge")["status"] == "UNHEALTHY"
    health.record([Result(early.provider.id, early.health, early.capacity)])  # older than what is counted
    state = ProviderStates(checker.daemon.store.engine).of("edge")
    assert state.consecutive_failures == 2
