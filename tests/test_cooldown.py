"""Cooldown on both databases: a provider whose provisions keep failing is skipped, says until when and
why, comes back on a success after its cooldown or by hand, and never for the job's own failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hodei import actors, database
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.settings import CooldownSettings, HealthSettings, WorkerSettings
from hodei.store import Store
from hodei.workers import NoProviderAvailable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class World:
    """The services as the CLI builds them, health thresholds high enough that only the cooldown acts."""

    def __init__(self, url: str, **cooldown: Any):
        engine = database.create_engine(url)
        database.upgrade(engine)
        self.pm = make_plugin_manager(enable=["static"])
        self.store = Store(engine, self.pm)
        self.chain = build_chain(self.pm)
        self.policy = CooldownSettings.model_validate({"initial_seconds": 60, "max_seconds": 200, **cooldown})
        self.services = on_database(self.store, self.chain, WorkerSettings(provision_timeout_seconds=1.0),
                                    health=HealthSettings(unhealthy_after=1000), cooldown=self.policy)
        self.provisioner, self.providers = self.services.provisioner, self.services.providers

    def job(self, **fields: Any) -> Any:
        return self.chain.parse_requirements(fields)

    def at(self, moment: datetime) -> None:
        """Count the next outcomes as found at ``moment``."""
        self.services.cooldowns.clock = lambda: moment

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def world(hodei_database_url: str) -> Any:
    w = World(hodei_database_url)
    yield w
    w.close()


def flaky(world: World, **config: Any) -> None:
    world.store.create({"name": "flaky", "provider_type": "static", "priority": 10,
                        "config": {"fail_provision": "quota exceeded for instances", **config}})
    world.store.create({"name": "spare", "provider_type": "static"})


async def test_three_failures_in_a_row_cool_the_provider_down_and_selection_says_until_when(world: World) -> None:
    flaky(world)
    before = datetime.now(UTC)
    for _ in range(3):  # each request tries flaky first, fails there and gets spare
        answer = await world.provisioner.provision(world.job())
        assert [(a.provider, a.outcome) for a in answer.attempts] == [("flaky", "failed"), ("spare", "provisioned")]
    state = world.providers.get("flaky").state
    assert state.provision_failures == 3 and state.last_provision_error == "RuntimeError: quota exceeded for instances"
    assert state.cooldown_until is not None
    assert before + timedelta(seconds=59) < state.cooldown_until <= datetime.now(UTC) + timedelta(seconds=60)

    answer = await world.provisioner.provision(world.job())  # flaky is skipped now: spare at once
    assert [(a.provider, a.outcome) for a in answer.attempts] == [("spare", "provisioned")]
    report = world.services.selection.select({}).as_dict()
    assert report["selected"] == "spare"
    [rejected] = [r for r in report["rejected"] if r["name"] == "flaky"]
    [reason] = rejected["reasons"]
    end = state.cooldown_until.isoformat(timespec="seconds")
    assert reason["filter"] == "cooldown"
    assert reason["message"] == (f"cooling down until {end} after 3 failed provisions in a row; the last: "
                                 "RuntimeError: quota exceeded for instances")
    assert "`hodei providers reset-cooldown flaky`" in reason["hint"]
    explained = world.services.selection.explain("flaky", {}).text()
    assert f"cooling down until {end}" in explained

    [entry] = [e for e in world.providers.history("flaky") if e.kind == "cooldown"]
    assert entry.new_value == f"until {end}" and "3 failed provisions in a row" in entry.cause
    assert world.store.get("flaky").status == "ACTIVE"  # a cooldown is not a status


async def test_the_cooldown_grows_with_each_further_failure_up_to_the_cap(world: World) -> None:
    flaky(world)
    flaky_id = world.store.get("flaky").id
    now = datetime.now(UTC)
    world.at(now)
    ends = [world.services.cooldowns.record(flaky_id, "boom") for _ in range(6)]
    assert [e.until - now if e and e.until else None for e in ends] == [
        None, None, *(timedelta(seconds=s) for s in (60, 120, 200, 200))]
    # One history entry: the cooldown started once; the further failures only moved its end.
    assert len([e for e in world.providers.history("flaky") if e.kind == "cooldown"]) == 1


async def test_a_success_after_the_cooldown_ends_the_streak(world: World) -> None:
    flaky(world)
    world.at(datetime.now(UTC) - timedelta(hours=1))  # the failures were an hour ago: their cooldown is over
    for _ in range(3):
        await world.provisioner.provision(world.job())
    assert world.providers.get("flaky").state.provision_failures == 3
    world.at(datetime.now(UTC))
    world.store.update("flaky", _config({"fail_provision": None}))  # the operator fixed the quota
    answer = await world.provisioner.provision(world.job())
    assert [(a.provider, a.outcome) for a in answer.attempts] == [("flaky", "provisioned")]
    state = world.providers.get("flaky").state
    assert (state.provision_failures, state.cooldown_until, state.last_provision_error) == (0, None, "")
    entries = [e for e in world.providers.history("flaky") if e.kind == "cooldown"]
    assert entries[0].new_value == "ended" and "a provision succeeded" in entries[0].cause


async def test_a_failure_after_the_cooldown_starts_a_longer_one(world: World) -> None:
    flaky(world)
    world.at(datetime.now(UTC) - timedelta(hours=1))
    for _ in range(3):
        await world.provisioner.provision(world.job())
    world.at(datetime.now(UTC))
    answer = await world.provisioner.provision(world.job())  # its trial: it fails again
    assert [(a.provider, a.outcome) for a in answer.attempts] == [("flaky", "failed"), ("spare", "provisioned")]
    state = world.providers.get("flaky").state
    assert state.provision_failures == 4
    assert state.cooldown_until is not None and state.cooldown_until > datetime.now(UTC) + timedelta(seconds=100)


async def test_reset_by_hand_ends_it_at_once(world: World) -> None:
    flaky(world)
    for _ in range(3):
        await world.provisioner.provision(world.job())
    reset = world.providers.reset_cooldown("flaky")
    assert reset.ended.failures == 3 and reset.ended.until is not None
    assert "reset after 3 failed provisions in a row" in reset.message()
    assert reset.provider.state.cooldown_until is None and reset.provider.state.provision_failures == 0
    assert world.services.selection.select({}).as_dict()["selected"] == "flaky"
    assert [e.new_value for e in world.providers.history("flaky") if e.kind == "cooldown"] == [
        "ended", f"until {reset.ended.until.isoformat(timespec='seconds')}"]
    again = world.providers.reset_cooldown("flaky")  # nothing left to end: nothing written
    assert again.ended.failures == 0 and "nothing changed" in again.message()
    assert len([e for e in world.providers.history("flaky") if e.kind == "cooldown"]) == 2


async def test_failures_the_job_causes_count_against_the_job_not_the_provider(world: World) -> None:
    world.store.create({"name": "shared", "provider_type": "static",
                        "config": {"allowed_images": ["team/*"], "missing_images": ["team/ghost:1"]}})
    for _ in range(5):
        with pytest.raises(NoProviderAvailable, match="the job cannot start"):
            await world.provisioner.provision(world.job(image="team/ghost:1"))
    state = world.providers.get("shared").state
    assert (state.provision_failures, state.cooldown_until) == (0, None)
    assert (await world.provisioner.provision(world.job(image="team/real:2"))).worker.provider_name == "shared"


async def test_a_success_with_no_streak_writes_nothing(world: World) -> None:
    world.store.create({"name": "fine", "provider_type": "static"})
    calls: list[Any] = []
    record = world.services.cooldowns.record
    world.services.cooldowns.record = lambda *args: calls.append(args) or record(*args)  # type: ignore[method-assign]
    await world.provisioner.provision(world.job())
    assert calls == []


def test_reset_cooldown_of_an_unknown_provider_is_not_found(world: World) -> None:
    from hodei.errors import NotFound

    with pytest.raises(NotFound, match="ghost"):
        world.providers.reset_cooldown("ghost")


def _config(merge: dict[str, Any]) -> Any:
    from hodei.provider_change import ProviderChange

    return ProviderChange(merge_config=merge)


def test_the_cli_shows_and_resets_a_cooldown(hodei: Any) -> None:
    hodei.ok("providers", "add", "flaky", "--type", "static", "--config", json.dumps(
        {"fail_provision": "quota exceeded"}))
    for _ in range(3):
        hodei("workers", "provision")
    shown = hodei.ok("providers", "show", "flaky").stdout
    assert "cooldown:" in shown and "3 failed provisions in a row; the last: RuntimeError: quota exceeded" in shown
    assert "skipped by selection until then" in shown
    history = hodei.ok("providers", "history", "flaky").stdout
    assert "cooldown" in history and "3 failed provisions in a row" in history
    document = json.loads(hodei.ok("providers", "show", "flaky", "-o", "json").stdout)
    assert document["state"]["cooldown"]["provision_failures"] == 3
    assert document["state"]["cooldown"]["until"] is not None
    printed = hodei.ok("providers", "reset-cooldown", "flaky").stdout
    assert printed.strip() == ("cooldown of provider 'flaky' reset after 3 failed provisions in a row: its cooldown "
                               "ended; selection tries it again")
    assert json.loads(hodei.ok("providers", "show", "flaky", "-o", "json").stdout)["state"]["cooldown"] == {
        "until": None, "provision_failures": 0, "last_error": None}
    # Started by the CLI's provisions, ended by its reset: both the CLI's user's.
    ended, started = [e for e in hodei.json("providers", "history", "flaky") if e["kind"] == "cooldown"]
    assert (ended["to"], ended["actor"]) == ("ended", actors.cli())
    assert started["to"].startswith("until ") and started["actor"] == actors.cli()


def test_the_reason_quotes_a_name_for_the_shell_and_says_until_when(world: World) -> None:
    world.store.create({"name": "Lambda us-east-1", "provider_type": "static",
                        "config": {"fail_provision": "throttled"}})
    provider_id = world.store.get("Lambda us-east-1").id
    for _ in range(3):
        streak = world.services.cooldowns.record(provider_id, "ThrottlingException: rate exceeded")
    assert streak is not None and streak.until is not None
    report = world.services.selection.select({}).as_dict()
    [reason] = report["rejected"][0]["reasons"]
    assert reason["message"] == (f"cooling down until {streak.until.isoformat(timespec='seconds')} after 3 failed "
                                 "provisions in a row; the last: ThrottlingException: rate exceeded")
    assert "`hodei providers reset-cooldown 'Lambda us-east-1'`" in reason["hint"]
    assert "1 cooling down" in world.services.selection.select({}).text()
