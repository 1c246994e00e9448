"""A provider's history records its creation, every change of its fields and its deletion, each with who
made it (the CLI's user@host, the API's peer and token identity) and the fields changed, a config by its
keys: never a value, so never a secret. Through every door (add, update, apply, delete; CLI and API), on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from hodei import actors
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.daemon import Daemon
from hodei.store import changed_fields
from hodei.testing.daemon import running
from hypothesis import given
from hypothesis import strategies as st

from tests.test_actors import TOKEN, daemon_settings

pytestmark = pytest.mark.anyio

SECRET = "registry-pa55-hist-7c1e"
SECRET_2 = "registry-pa55-hist-rotated-90ab"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio and psycopg's LISTEN need asyncio


def docker_config(password: str, image: str = "registry.example.com/worker:1") -> dict[str, Any]:
    return {"socket_path": "/nonexistent/docker.sock", "default_image": image,
            "registry_auth": {"username": "ci", "password": password}}


def history(hodei: Any, ref: str) -> list[dict[str, Any]]:
    return list(hodei.json("providers", "history", ref))


def changes(hodei: Any, ref: str) -> list[tuple[Any, ...]]:
    """(kind, from, to, cause, actor) of each entry, newest first."""
    return [(e["kind"], e["from"], e["to"], e["cause"], e["actor"]) for e in history(hodei, ref)]


def no_secret(hodei: Any, ref: str) -> None:
    shown = json.dumps(history(hodei, ref)) + hodei.ok("providers", "history", ref).stdout
    assert SECRET not in shown and SECRET_2 not in shown


def test_the_cli_records_add_update_and_delete_with_the_fields_and_its_actor(hodei: Any, tmp_path: Path) -> None:
    cli = actors.cli()
    config = tmp_path / "config.json"
    config.write_text(json.dumps(docker_config(SECRET)))
    hodei.ok("providers", "add", "reg", "--type", "docker", "--config-file", str(config))
    provider_id = hodei.provider("reg")["id"]
    assert changes(hodei, "reg") == [("created", None, "docker", "created", cli)]
    config.write_text(json.dumps(docker_config(SECRET_2)))
    hodei.ok("providers", "update", "reg", "--config-file", str(config), "--max-workers", "7", "--priority", "3")
    assert changes(hodei, "reg")[0] == ("changed", None, "config.registry_auth, max_workers, priority",
                                        "changed by an update", cli)
    hodei.ok("providers", "update", "reg", "--label", "team=ci")
    assert changes(hodei, "reg")[0] == ("changed", None, "required_labels", "changed by an update", cli)
    no_secret(hodei, "reg")
    table = hodei.ok("providers", "history", "reg").stdout
    assert re.search(r" changed +- +config\.registry_auth, max_workers, priority +" + re.escape(cli), table)
    hodei.ok("providers", "delete", "reg")
    entries = changes(hodei, provider_id)  # a deleted provider's history, by its id
    assert entries[0] == ("deleted", "docker", "", "deleted", cli)
    assert [e[0] for e in entries] == ["deleted", "changed", "changed", "created"]
    no_secret(hodei, provider_id)


def test_an_update_that_changes_nothing_records_nothing_more(hodei: Any) -> None:
    hodei.ok("providers", "add", "a", "--type", "static", "--max-workers", "4")
    hodei.ok("providers", "update", "a", "--max-workers", "4")
    assert [e[0] for e in changes(hodei, "a")] == ["created"]


def test_an_apply_records_each_creation_change_and_pruned_deletion(hodei: Any, tmp_path: Path) -> None:
    cli = actors.cli()
    document = tmp_path / "providers.json"
    document.write_text(json.dumps([{"name": "reg", "provider_type": "docker", "config": docker_config(SECRET)},
                                    {"name": "gone", "provider_type": "static"}]))
    hodei.ok("providers", "apply", "-f", str(document))
    gone_id = hodei.provider("gone")["id"]
    assert changes(hodei, "reg") == [("created", None, "docker", "created by an apply", cli)]
    hodei.ok("providers", "apply", "-f", str(document), "--dry-run")
    hodei.ok("providers", "apply", "-f", str(document))  # unchanged: nothing more recorded
    assert len(changes(hodei, "reg")) == 1
    document.write_text(json.dumps([{"name": "reg", "provider_type": "docker", "max_workers": 9,
                                     "config": docker_config(SECRET_2, image="registry.example.com/worker:2")}]))
    hodei.ok("providers", "apply", "-f", str(document), "--prune")
    assert changes(hodei, "reg")[0] == ("changed", None, "config.default_image, config.registry_auth, max_workers",
                                        "changed by an apply", cli)
    assert changes(hodei, gone_id)[0] == ("deleted", "static", "", "deleted by an apply that prunes", cli)
    no_secret(hodei, "reg")


async def test_the_api_records_create_update_apply_and_delete_as_its_caller(hodei: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")

    def struct(value: dict[str, Any]) -> struct_pb2.Value:
        message = struct_pb2.Value()
        message.struct_value.update(value)
        return message

    async with running(Daemon(daemon_settings(hodei.url, token_file))) as daemon, \
            grpc.aio.insecure_channel(daemon.api.address) as channel:
        api = pb_grpc.ProviderServiceStub(channel)
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        created = await api.CreateProvider(pb.CreateProviderRequest(config=pb.ProviderConfig(
            name="reg", provider_type="docker", config=struct(docker_config(SECRET)))), metadata=metadata)
        # A status and other fields in one update: the status has its own entry, the rest one "changed".
        await api.UpdateProvider(pb.UpdateProviderRequest(provider_id="reg", config=pb.ProviderConfig(
            status="MAINTENANCE", max_workers=5, config=struct(docker_config(SECRET_2)))), metadata=metadata)
        await api.ApplyProviders(pb.ApplyProvidersRequest(providers_json=json.dumps([
            {"name": "reg", "provider_type": "docker", "max_workers": 5, "priority": 2,
             "config": docker_config(SECRET_2)},
            {"name": "applied", "provider_type": "static"}])), metadata=metadata)
        await api.DeleteProvider(pb.DeleteProviderRequest(provider_id="reg"), metadata=metadata)
        entries = (await api.GetProviderHistory(pb.GetProviderHistoryRequest(provider_id=created.id),
                                                metadata=metadata)).entries
        applied = (await api.GetProviderHistory(pb.GetProviderHistoryRequest(provider_id="applied"),
                                                metadata=metadata)).entries
    # The daemon checks what was created (its own entries, by the health monitor): left out here.
    entries, applied = ([e for e in found if e.kind != "health" and not e.actor.startswith("health monitor")]
                        for found in (entries, applied))
    pattern = rf"api ipv4:127\.0\.0\.1:\d+ \({re.escape(actors.token_identity(TOKEN))}\)"
    assert [(e.kind, e.old_value if e.HasField("old_value") else None, e.new_value, e.cause) for e in entries] == [
        ("deleted", "docker", "", "deleted"),
        ("changed", None, "priority", "changed by an apply"),
        ("changed", None, "config.registry_auth, max_workers", "changed by an update"),
        ("status", "ACTIVE", "MAINTENANCE", "changed by an update"),
        ("created", None, "docker", "created")]
    assert [(e.kind, e.new_value, e.cause) for e in applied] == [("created", "static", "created by an apply")]
    assert all(re.fullmatch(pattern, e.actor) for e in [*entries, *applied]), [e.actor for e in entries]
    shown = str(entries) + str(applied)
    assert SECRET not in shown and SECRET_2 not in shown and TOKEN not in shown


@given(before=st.dictionaries(st.text(max_size=5), st.integers(0, 3), max_size=4),
       after=st.dictionaries(st.text(max_size=5), st.integers(0, 3), max_size=4))
def test_changed_fields_name_exactly_the_config_keys_that_differ_and_never_a_value(
        before: dict[str, int], after: dict[str, int]) -> None:
    names = changed_fields({"config": (before, after), "status": ("ACTIVE", "DISABLED"), "priority": (1, 1)})
    differing = {k for k in {*before, *after} if before.get(k) != after.get(k)}
    assert len(names) == len(differing)
    assert all(n.startswith("config.") or n == "config" for n in names)
    assert "status" not in names and "priority" not in names
