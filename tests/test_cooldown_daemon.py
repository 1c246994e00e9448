"""Cooldown in a running daemon (both databases): its provisions cool a failing provider down, its live
selection skips it, /metrics shows it (on the owner only), and a reset through its API takes effect at
once. On PostgreSQL, a cooldown one replica recorded is honoured by another."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import grpc
import pytest
from hodei import actors, database
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.daemon import Daemon
from hodei.provider_change import ProviderChange
from hodei.services.workers import NoProviderAvailable
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.testing.daemon import running, wait_for

from tests.test_observability import by_name, scrape, settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def daemon_settings(url: str) -> Any:
    # Checks far apart: what the test sees comes from provisions, not from health.
    return settings(url, health={"interval_seconds": 3600.0, "timeout_seconds": 1.0},
                    cooldown={"after_failures": 3, "initial_seconds": 300, "max_seconds": 600})


def reset_through_the_api(address: str, name: str) -> pb.ResetProviderCooldownResponse:
    with grpc.insecure_channel(address) as channel:
        answer: pb.ResetProviderCooldownResponse = pb_grpc.ProviderServiceStub(channel).ResetProviderCooldown(
            pb.ResetProviderCooldownRequest(provider_id=name), timeout=10)
        return answer


def hodei_store_history(store: Store, name: str) -> list[Any]:
    return ProviderStates(store.engine).history(name, 50)


def cooling(daemon: Daemon, name: str) -> bool:
    provider = by_name(daemon, name)
    state = daemon.fleet.states.get(provider.id) if provider else None
    return bool(state and state.cooldown_until is not None)


async def fail_three_times(daemon: Daemon) -> None:
    for _ in range(3):
        provisioned = await daemon.workers.provision({})
        assert provisioned.provider_name == "spare"


async def test_a_daemon_skips_a_cooling_provider_shows_it_in_metrics_and_takes_a_reset_through_its_api(
        hodei_store: Any, hodei_database_url: str, tmp_path: Any) -> None:
    hodei_store.create({"name": "flaky", "provider_type": "static", "priority": 10,
                        "config": {"fail_provision": "no capacity in zone"}})
    hodei_store.create({"name": "spare", "provider_type": "static"})
    config = tmp_path / "hodei.toml"
    config.write_text("", encoding="utf-8")
    daemon = Daemon(daemon_settings(hodei_database_url), config_path=config, database_url=hodei_database_url)
    async with running(daemon):
        await fail_three_times(daemon)
        assert cooling(daemon, "flaky")  # its own view at once, not at the next read
        report = daemon.selection.select({}).as_dict()
        assert report["selected"] == "spare"
        [rejected] = [r for r in report["rejected"] if r["name"] == "flaky"]
        assert rejected["reasons"][0]["filter"] == "cooldown"
        assert "no capacity in zone" in rejected["reasons"][0]["message"]
        metrics = await scrape(daemon)
        assert metrics.value("hodei_provider_provision_failures", provider="flaky") == 3.0
        left = metrics.value("hodei_provider_cooldown_seconds", provider="flaky")
        assert left is not None and 250 < left <= 300
        assert metrics.value("hodei_provider_cooldown_seconds", provider="spare") == 0.0

        answer = await anyio.to_thread.run_sync(reset_through_the_api, daemon.api.address, "flaky")
        assert answer.ended_failures == 3 and answer.HasField("ended_until")
        assert answer.provider.state.provision_failures == 0 and not answer.provider.state.HasField("cooldown_until")
        assert not cooling(daemon, "flaky")  # the API answered after the daemon's view took it back
        assert daemon.selection.select({}).as_dict()["selected"] == "flaky"
        assert (await scrape(daemon)).value("hodei_provider_cooldown_seconds", provider="flaky") == 0.0
        with pytest.raises(grpc.RpcError) as missing:
            await anyio.to_thread.run_sync(reset_through_the_api, daemon.api.address, "ghost")
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    # Started by the daemon's own provisions (its own, as its health monitor's), ended by the API's caller.
    ended, started = [e for e in hodei_store_history(hodei_store, "flaky") if e.kind == "cooldown"]
    assert (started.actor, ended.new_value) == (actors.health_monitor(), "ended")
    assert re.fullmatch(r"api ipv4:127\.0\.0\.1:\d+ \(no token\)", ended.actor), ended.actor


async def test_a_job_failed_in_a_daemon_does_not_cool_the_provider_down(
        hodei_store: Any, hodei_database_url: str, tmp_path: Any) -> None:
    hodei_store.create({"name": "shared", "provider_type": "static",
                        "config": {"allowed_images": ["team/*"], "missing_images": ["team/ghost:1"]}})
    config = tmp_path / "hodei.toml"
    config.write_text("", encoding="utf-8")
    daemon = Daemon(daemon_settings(hodei_database_url), config_path=config, database_url=hodei_database_url)
    async with running(daemon):
        for _ in range(4):
            with contextlib.suppress(Exception):
                await daemon.workers.provision({"image": "team/ghost:1"})
        assert not cooling(daemon, "shared")
        assert (await daemon.workers.provision({"image": "team/real:1"})).provider_name == "shared"


async def test_a_cooldown_one_replica_recorded_is_honoured_by_the_other(
        hodei_postgres_url: str, hodei_pm: Any, tmp_path: Any) -> None:
    """Two daemons on one PostgreSQL database: A's failed provisions cool the provider down; B's selection
    skips it (NOTIFY on provider_state), and A's reset readmits it on B too."""
    engine = database.create_engine(hodei_postgres_url)
    database.upgrade(engine)
    store = Store(engine, hodei_pm)
    store.create({"name": "flaky", "provider_type": "static", "priority": 10,
                        "config": {"fail_provision": "no capacity in zone"}})
    store.create({"name": "spare", "provider_type": "static"})
    store.close()
    config = tmp_path / "hodei.toml"
    config.write_text("", encoding="utf-8")
    a = Daemon(daemon_settings(hodei_postgres_url), config_path=config, database_url=hodei_postgres_url)
    b = Daemon(daemon_settings(hodei_postgres_url), config_path=config, database_url=hodei_postgres_url)
    async with running(a), running(b):
        await fail_three_times(a)
        await wait_for(lambda: cooling(b, "flaky"), what="replica B to see A's cooldown")
        assert b.selection.select({}).as_dict()["selected"] == "spare"
        assert (await b.workers.provision({})).provider_name == "spare"
        await anyio.to_thread.run_sync(reset_through_the_api, a.api.address, "flaky")
        await wait_for(lambda: not cooling(b, "flaky"), what="replica B to see the reset")
        assert b.selection.select({}).as_dict()["selected"] == "flaky"


async def test_a_request_waiting_only_for_a_cooldown_is_placed_when_it_ends_not_at_the_next_sweep(
        hodei_store: Any, hodei_database_url: str, tmp_path: Any) -> None:
    row = hodei_store.create({"name": "flaky", "provider_type": "static",
                              "config": {"fail_provision": "no capacity in zone"}})
    config = tmp_path / "hodei.toml"
    config.write_text("", encoding="utf-8")
    cooldown_seconds = 2.0
    daemon = Daemon(settings(hodei_database_url, health={"interval_seconds": 3600.0, "timeout_seconds": 1.0},
                             cooldown={"after_failures": 1, "initial_seconds": cooldown_seconds,
                                       "max_seconds": cooldown_seconds},
                             workers={"queue_sweep_seconds": 600.0}),
                    config_path=config, database_url=hodei_database_url)
    async with running(daemon):
        with pytest.raises(NoProviderAvailable):
            await daemon.workers.provision({})
        assert cooling(daemon, "flaky")
        # The backend is fixed meanwhile; the provider still cools down until its cooldown ends.
        hodei_store.update("flaky", ProviderChange(merge_config={"fail_provision": None}))
        await wait_for(lambda: by_name(daemon, "flaky").config["fail_provision"] is None)
        ends = daemon.fleet.states[row.id].cooldown_until
        assert ends is not None
        provisioned = await daemon.workers.provision({}, wait_seconds=60)
        placed_at = datetime.now(UTC)
        assert provisioned.provider_name == "flaky"
        # Placed as the cooldown ended: long before the 600 s sweep, and not before the end.
        assert ends <= placed_at < ends + timedelta(seconds=5)
