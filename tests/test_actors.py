"""Every change in a provider's history names who or what made it: the CLI's user@host, the API's peer
and token identity (never the token), the health monitor, or an edit in SQL a daemon saw; entries from
before actors were recorded show as unknown. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
import sqlalchemy as sa
from hodei import actors, database
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.daemon import Daemon
from hodei.domain import ProviderStatus as S
from hodei.settings import Settings
from hodei.storage.provider_state import ProviderStates
from hodei.testing.daemon import running, wait_for

pytestmark = pytest.mark.anyio

TOKEN = "the-very-secret-token-1234"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio and psycopg's LISTEN need asyncio


def daemon_settings(url: str, token_file: Path | None = None, interval: float = 3600.0) -> Settings:
    return Settings.model_validate({
        "database": {"url": url}, "metrics": {"listen": ""},
        "api": {"listen": "127.0.0.1:0", **({"token_file": str(token_file)} if token_file else {})},
        "health": {"interval_seconds": interval, "timeout_seconds": 0.5, "unhealthy_after": 2},
        "daemon": {"poll_seconds": 0.05, "resync_seconds": 30.0, "shutdown_grace_seconds": 1.0,
                   "database_timeout_seconds": 5.0},
    })


def history(hodei: Any, name: str, *extra: str) -> list[dict[str, Any]]:
    return list(hodei.json("providers", "history", name, *extra))


def statuses(hodei: Any, name: str) -> list[dict[str, Any]]:
    """The status changes (a daemon's health checks add changes of health)."""
    return [e for e in history(hodei, name) if e["kind"] == "status"]


def test_the_cli_names_its_user_and_host(hodei: Any) -> None:
    hodei.ok("providers", "add", "a", "--type", "static")
    hodei.ok("providers", "disable", "a", "--reason", "patching")
    entry, created = history(hodei, "a")
    assert (created["kind"], created["to"], created["actor"]) == ("created", "static", actors.cli())
    assert entry["actor"] == actors.cli() == f"cli {actors.user_at_host()}"
    assert re.fullmatch(r"cli \S+@\S+", entry["actor"]) and socket.gethostname() in entry["actor"]
    table = hodei.ok("providers", "history", "a").stdout
    assert table.splitlines()[0].split() == ["AT", "KIND", "FROM", "TO", "ACTOR", "CAUSE"]
    assert f"{actors.cli()}  hodei providers disable: patching" in table


def test_an_apply_that_changes_a_status_records_it_and_its_actor(hodei: Any, tmp_path: Path) -> None:
    hodei.ok("providers", "add", "a", "--type", "static")
    document = tmp_path / "providers.json"
    document.write_text(json.dumps([{"name": "a", "provider_type": "static", "status": "MAINTENANCE"}]))
    hodei.ok("providers", "apply", "-f", str(document))
    hodei.ok("providers", "apply", "-f", str(document))  # unchanged: nothing more recorded
    assert [(e["from"], e["to"], e["cause"], e["actor"]) for e in history(hodei, "a")] == [
        ("ACTIVE", "MAINTENANCE", "changed by an apply", actors.cli()), (None, "static", "created", actors.cli())]


def test_a_check_on_the_database_is_the_clis(hodei: Any) -> None:
    hodei.ok("providers", "add", "down", "--type", "static", "--config", '{"health": "Unhealthy"}')
    hodei.ok("providers", "check", "down")
    assert [(e["kind"], e["to"], e["actor"]) for e in history(hodei, "down")] == [
        ("health", "Unhealthy", actors.cli()), ("created", "static", actors.cli())]


def test_entries_from_before_actors_show_as_unknown(hodei: Any) -> None:
    hodei.ok("providers", "add", "old", "--type", "static")
    provider_id = hodei.provider("old")["id"]
    hodei.sql("INSERT INTO provider_history (provider_id, provider_name, at, kind, old_value, new_value, cause) "
              "VALUES (:id, 'old', :at, 'status', 'ACTIVE', 'DISABLED', 'long ago')",
              id=provider_id if hodei.is_postgres else provider_id.replace("-", ""), at="2020-01-01T00:00:00+00:00")
    created, entry = history(hodei, "old")
    assert (created["kind"], created["actor"]) == ("created", actors.cli())
    assert (entry["cause"], entry["actor"]) == ("long ago", actors.UNKNOWN)
    assert " unknown " in hodei.ok("providers", "history", "old").stdout


def test_a_migrated_database_keeps_its_history_as_unknown(hodei_database_url: str) -> None:
    engine = database.create_engine(hodei_database_url)
    try:
        database.upgrade(engine, "0006")
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO provider_history (provider_id, provider_name, at, kind, old_value, new_value, cause) "
                "VALUES (:id, 'gone', :at, 'status', 'ACTIVE', 'DISABLED', 'before 0007')"),
                {"id": "0" * 32 if engine.dialect.name == "sqlite" else "00000000-0000-0000-0000-000000000000",
                 "at": "2020-01-01T00:00:00+00:00"})
        assert database.upgrade(engine) == ("0006", database.head_revision())
        (entry,) = ProviderStates(engine).history("00000000-0000-0000-0000-000000000000")
        assert (entry.cause, entry.actor) == ("before 0007", "unknown")
        database.upgrade(engine, "0006")  # and back down: the column goes, the rows stay
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM provider_history")).scalar_one() == 1
    finally:
        engine.dispose()


async def test_the_api_names_its_peer_and_token_never_the_token(hodei: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    hodei.ok("providers", "add", "a", "--type", "static", "--config", '{"hang": true}')
    # DISABLED: the health monitor leaves it alone, a check on demand does not.
    hodei.ok("providers", "add", "down", "--type", "static", "--status", "DISABLED", "--config",
             '{"health": "Unhealthy"}')
    async with running(Daemon(daemon_settings(hodei.url, token_file))) as daemon, \
            grpc.aio.insecure_channel(daemon.api.address) as channel:
        api = pb_grpc.ProviderServiceStub(channel)
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        await api.SetProviderStatus(pb.SetProviderStatusRequest(provider_id="a", status="DISABLED"),
                                    metadata=metadata)
        await api.UpdateProvider(pb.UpdateProviderRequest(provider_id="a", config=pb.ProviderConfig(
            status="MAINTENANCE")), metadata=metadata)
        await api.CheckProviders(pb.CheckProvidersRequest(providers=["down"], timeout_seconds=5), metadata=metadata)
        entries = (await api.GetProviderHistory(pb.GetProviderHistoryRequest(provider_id="a"),
                                                metadata=metadata)).entries
        checked = (await api.GetProviderHistory(pb.GetProviderHistoryRequest(provider_id="down"),
                                                metadata=metadata)).entries
    identity = actors.token_identity(TOKEN)
    assert re.fullmatch(r"token sha256:[0-9a-f]{12}", identity)
    pattern = rf"api ipv4:127\.0\.0\.1:\d+ \({re.escape(identity)}\)"
    assert [(e.new_value, e.cause) for e in entries] == [("MAINTENANCE", "changed by an update"),
                                                         ("DISABLED", "set through the API"), ("static", "created")]
    assert all(re.fullmatch(pattern, e.actor) for e in [*entries[:-1], *checked[:-1]]), [e.actor for e in entries]
    assert [(e.kind, e.new_value) for e in checked] == [("health", "Unhealthy"), ("created", "static")]
    assert entries[-1].actor == checked[-1].actor == actors.cli()  # added with the CLI
    # Never the token, in any form the history could show it.
    shown = json.dumps(history(hodei, "a")) + hodei.ok("providers", "history", "a").stdout
    assert TOKEN not in shown and TOKEN[:12] not in shown and re.search(pattern, shown)


async def test_the_health_monitor_names_itself(hodei: Any) -> None:
    hodei.ok("providers", "add", "down", "--type", "static", "--config", '{"health": "Unhealthy"}')
    async with running(Daemon(daemon_settings(hodei.url, interval=0.1))):
        await wait_for(lambda: any(e["kind"] == "status" for e in history(hodei, "down")), seconds=20,
                       what="the health monitor to turn the provider UNHEALTHY")
    entries = history(hodei, "down")
    monitor = f"health monitor on {socket.gethostname()} (pid {os.getpid()})"
    assert [(e["kind"], e["to"], e["actor"]) for e in entries][-3:] == [
        ("status", "UNHEALTHY", monitor), ("health", "Unhealthy", monitor), ("created", "static", actors.cli())]


async def test_an_edit_in_sql_is_recorded_once_as_sql(hodei: Any) -> None:
    hodei.ok("providers", "add", "a", "--type", "static", "--config", '{"hang": true}')
    async with running(Daemon(daemon_settings(hodei.url))) as daemon:
        # Hodei's own change while the daemon watches: recorded once, as the CLI's.
        await anyio.to_thread.run_sync(lambda: hodei.ok("providers", "disable", "a"))
        await wait_for(lambda: any(p.status.value == "DISABLED" for p in daemon.fleet.providers.values()),
                       what="the daemon to see the CLI's change")
        # An operator's SQL session (on PostgreSQL, naming its application as psql does).
        engine = sa.create_engine(hodei.url, connect_args={"application_name": "psql"} if hodei.is_postgres else {})
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE provider_configs SET status = 'MAINTENANCE' WHERE name = 'a'"))
        engine.dispose()
        await wait_for(lambda: len(statuses(hodei, "a")) == 2, what="the edit in SQL in the history")
        await anyio.sleep(0.5)  # more polls and a full re-read: still recorded once
        await daemon.watcher.resync()
    entries = statuses(hodei, "a")
    assert [(e["from"], e["to"], e["cause"]) for e in entries] == [
        ("DISABLED", "MAINTENANCE", "changed in SQL, outside Hodei"), ("ACTIVE", "DISABLED", "hodei providers disable")]
    if hodei.is_postgres:  # the notification said who wrote the row
        url = sa.engine.make_url(hodei.url)
        known = f"user {url.username}, application psql, from {url.host}"
        assert entries[0]["actor"] == actors.sql(known) and entries[0]["actor"].startswith(f"sql ({known}, seen by ")
    else:  # SQLite knows nothing of who wrote it
        assert entries[0]["actor"] == actors.sql() and entries[0]["actor"].startswith("sql (seen by the daemon on ")
    assert entries[1]["actor"] == actors.cli()


def test_a_status_edited_twice_in_sql_is_recorded_as_each_read_saw_it(hodei: Any) -> None:
    """The daemon saw ACTIVE -> DISABLED, but by the time it records it the row says MAINTENANCE: that read
    records nothing (the next one sees MAINTENANCE and records DISABLED -> MAINTENANCE), and a change two
    replicas saw is recorded once."""
    hodei.ok("providers", "add", "a", "--type", "static")
    hodei.sql("UPDATE provider_configs SET status = 'MAINTENANCE' WHERE name = 'a'")
    states = ProviderStates(sa.create_engine(hodei.url))
    try:
        provider_id = uuid.UUID(hodei.provider("a")["id"])
        assert states.record_outside_changes([(provider_id, S.ACTIVE, S.DISABLED, "sql (one)")]) == []
        for replica in ("sql (one)", "sql (two)"):
            states.record_outside_changes([(provider_id, S.DISABLED, S.MAINTENANCE, replica)])
    finally:
        states.engine.dispose()
    assert [(e["from"], e["to"], e["actor"]) for e in statuses(hodei, "a")] == [("DISABLED", "MAINTENANCE", "sql (one)")]


def test_an_actor_edited_in_sql_into_garbage_is_shown_never_a_crash(hodei: Any) -> None:
    hodei.ok("providers", "add", "a", "--type", "static")
    provider_id = hodei.provider("a")["id"]
    stored_id = provider_id if hodei.is_postgres else provider_id.replace("-", "")
    garbage = ["line one\n\x1b[31mline two", *([] if hodei.is_postgres else ["X'FF00'", "42"])]
    for number, actor in enumerate(garbage):
        value = actor if actor.startswith("X'") or actor.isdigit() else "'" + actor.replace("'", "''") + "'"
        hodei.sql("INSERT INTO provider_history (provider_id, provider_name, at, kind, old_value, new_value, cause, "
                  f"actor) VALUES (:id, 'a', :at, 'status', 'ACTIVE', 'DISABLED', 'edited', {value})",
                  id=stored_id, at=f"2020-01-0{number + 1}T00:00:00+00:00")
    entries = history(hodei, "a")
    assert entries[-1]["actor"] == "line one\n\x1b[31mline two"
    table = hodei.ok("providers", "history", "a").stdout
    assert len(table.splitlines()) == 2 + len(garbage) and "line one\\u000a\\u001b[31mline two" in table
