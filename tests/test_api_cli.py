"""The whole daemon with its API on a loopback port: the seed's UpdateProviderRequest changes what the
running selection sees, and ``hodei --server`` prints what ``hodei`` prints on the database directly."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from hodei import database
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.daemon import Daemon
from hodei.settings import Settings
from hodei.testing.daemon import running, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio and psycopg's LISTEN need asyncio


def daemon_settings(url: str, interval: float = 0.2) -> Settings:
    return Settings.model_validate({
        "database": {"url": url}, "metrics": {"listen": ""}, "api": {"listen": "127.0.0.1:0"},
        "health": {"interval_seconds": interval, "timeout_seconds": 0.5},
        "daemon": {"poll_seconds": 0.05, "resync_seconds": 30.0, "shutdown_grace_seconds": 1.0,
                   "database_timeout_seconds": 5.0},
    })


def job(**requirements: Any) -> spb.SelectRequest:
    return spb.SelectRequest(requirements=json_format.ParseDict(requirements, struct_pb2.Struct()))


async def test_the_seeds_update_request_changes_what_the_running_selection_sees(hodei_database_url: str) -> None:
    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    engine.dispose()
    async with running(Daemon(daemon_settings(hodei_database_url))) as daemon, \
            grpc.aio.insecure_channel(daemon.api.address) as channel:
        providers, selection = pb_grpc.ProviderServiceStub(channel), spb_grpc.SelectionServiceStub(channel)
        await providers.CreateProvider(pb.CreateProviderRequest(config=pb.ProviderConfig(
            name="Production Kubernetes", provider_type="static", priority=10)))
        other = await providers.CreateProvider(pb.CreateProviderRequest(config=pb.ProviderConfig(
            name="Local Docker", provider_type="static", priority=5)))
        assert (await selection.Select(job())).selected == "Production Kubernetes"
        # The seed's message, fields 1 and 2 only: the fields set in config change.
        request = pb.UpdateProviderRequest(provider_id=other.id, config=pb.ProviderConfig(priority=100, max_workers=50))
        updated = await providers.UpdateProvider(request)
        assert (updated.config.priority, updated.config.max_workers) == (100, 50)
        answer = await selection.Select(job())
        assert answer.selected == "Local Docker" and answer.ranking[0].priority == 100
        local = daemon.fleet.selector.select(daemon.chain.parse_requirements({}))
        assert local.selected.name == "Local Docker"
        # The seed's `config = config || '{...}'`: Local Docker turns Unhealthy, and the daemon's checks see it.
        merge = pb.UpdateProviderRequest(provider_id="Local Docker", merge_config=True, config=pb.ProviderConfig(
            config=json_format.ParseDict({"health": "Unhealthy", "health_reason": "socket refused"},
                                         struct_pb2.Value())))
        await providers.UpdateProvider(merge)
        await wait_for(lambda: daemon.fleet.selector.select(daemon.chain.parse_requirements({})).selected.name
                       == "Production Kubernetes", what="the unhealthy provider to be left out")
        explained = await selection.Explain(spb.ExplainRequest(provider="Local Docker"))
        assert not explained.fits and "Unhealthy" in explained.text


# -- the CLI, with and without --server -------------------------------------------------------------

_VOLATILE = re.compile(r"(\d{4}-\d\d-\d\dT[\d:.]+\+00:00)|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def same(text: str) -> str:
    """Output with ids and times (which differ between two providers made alike) blanked out."""
    return _VOLATILE.sub("<>", text)


async def test_the_cli_prints_the_same_through_the_api(hodei: Any, tmp_path: Path) -> None:
    requirements = tmp_path / "job.json"
    requirements.write_text(json.dumps({"required_labels": {"environment": "production"}, "cpu": 0}))
    hodei.ok("providers", "add", "prod", "--type", "static", "--priority", "50", "--label", "environment=production",
             "--preferred-region", "eu-west-1", "--config", '{"latency_ms": 1}')
    hodei.ok("providers", "add", "stage", "--type", "static", "--label", "environment=staging")
    hodei.ok("providers", "maintenance", "stage", "--reason", "upgrading")
    async with running(Daemon(daemon_settings(hodei.url, interval=3600.0))) as daemon:
        remote_env = hodei.env(HODEI_SERVER=daemon.api.address)

        async def both(*args: str) -> tuple[Any, Any]:
            direct = await anyio.to_thread.run_sync(lambda: hodei(*args))
            remote = await anyio.to_thread.run_sync(lambda: hodei(*args, env=remote_env))
            return direct, remote

        def checked() -> bool:
            states = daemon.states.all()
            return len(states) == 2 and all(s.health is not None for s in states.values())
        await wait_for(checked, what="the first health checks")
        for args in (("providers", "list"), ("providers", "list", "-o", "json"), ("providers", "show", "prod"),
                     ("providers", "show", "prod", "-o", "json"), ("providers", "list", "--status", "MAINTENANCE"),
                     ("providers", "history", "stage"), ("providers", "history", "stage", "-o", "json"),
                     ("select",), ("select", "-r", str(requirements)), ("select", "-r", str(requirements), "-o", "json"),
                     ("explain", "stage", "-r", str(requirements)), ("explain", "prod", "-o", "json"),
                     ("providers", "show", "ghost"), ("providers", "show", "ghost", "-o", "json"),
                     ("explain", "ghost"), ("providers", "enable", "ghost"),
                     ("providers", "add", "prod", "--type", "static"),
                     ("providers", "add", "bad", "--type", "static", "--max-workers", "0", "--config", '{"hang": 3}'),
                     ("providers", "update", "prod", "--max-workers", "0"),
                     ("select", "-r", "-")):
            direct, remote = await both(*args)
            assert (remote.exit_code, remote.stdout, remote.stderr) == (direct.exit_code, direct.stdout, direct.stderr), \
                args
        # Writes: the same command on two providers made alike prints the same, but for ids and times.
        printed: dict[str, list[str]] = {}
        for name, env in (("one", None), ("two", remote_env)):
            for args in (("providers", "add", name, "--type", "static", "--priority", "3", "--config", '{"hang": false}',
                          "--allowed-region", "us-east-1", "--annotation", "tier=gold"),
                         ("providers", "update", name, "--merge-config", '{"latency_ms": 2}', "--remove-annotation",
                          "tier", "--rename", f"{name}-x"),
                         ("providers", "disable", f"{name}-x", "--reason", "test"),
                         ("providers", "update", f"{name}-x", "--priority", "4", "-o", "json"),
                         ("providers", "history", f"{name}-x", "-o", "json"),
                         ("providers", "delete", f"{name}-x", "-o", "json")):
                result = await anyio.to_thread.run_sync(lambda a=args, e=env: hodei(*a, env=e))
                assert result.exit_code == 0, (args, result.stderr)
                if args[1] == "add":  # its first health check lands now, not in the middle of the comparison
                    await wait_for(lambda n=name: daemon.states.of(n).health is not None, what="a health check")
                text = same(result.stdout).replace(name, "NAME")
                if args[1] == "history":
                    # When the first health check lands differs from one provider to the other; and the actor is
                    # the CLI's user for the one written directly, the API's caller for the other.
                    entries = [e for e in json.loads(result.stdout) if e["kind"] != "health"]
                    assert all(e["actor"].startswith("cli " if env is None else "api ") for e in entries), entries
                    text = same(json.dumps([{**e, "actor": "<>"} for e in entries])).replace(name, "NAME")
                printed.setdefault(name, []).append(text)
        for one, two in zip(printed["one"], printed["two"], strict=True):
            assert two == one
        # Commands without an API call are refused: nothing runs on the database directly.
        result = await anyio.to_thread.run_sync(lambda: hodei("db", "current", env=remote_env))
        assert result.exit_code == 2 and "`hodei db current` has no API call" in result.stderr


async def test_cli_errors_through_the_api(hodei: Any, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("letmein", encoding="utf-8")
    settings = daemon_settings(hodei.url, interval=3600.0)
    settings.api.token_file = str(token)
    async with running(Daemon(settings)) as daemon:
        address = daemon.api.address
        env = hodei.env(HODEI_SERVER=address)
        result = await anyio.to_thread.run_sync(lambda: hodei("providers", "list", env=env))
        assert result.exit_code == 1
        assert result.stderr.strip() == (f"hodei: error: the Hodei server at {address} refused the call: "
                                         "this server requires a bearer token (metadata authorization: Bearer TOKEN)")
        result = await anyio.to_thread.run_sync(lambda: hodei("providers", "list", env={**env,
                                                                                       "HODEI_TOKEN_FILE": str(token)}))
        assert result.exit_code == 0 and result.stdout.startswith("no providers")
    result = await anyio.to_thread.run_sync(lambda: hodei("providers", "list", env=env))
    assert result.exit_code == 1 and result.stderr.startswith(f"hodei: error: cannot reach the Hodei server at "
                                                              f"{address}: ")
