"""A provisioning whose caller is gone gives its slot back at once, on a real daemon (SQLite and
PostgreSQL): three calls whose deadline passes while a slow provider is still starting their workers
used to hold ``max_workers`` until the reservations expired (300 s by default)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from hodei.api.v1 import workers_pb2 as wpb
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
from hodei.settings import WorkerSettings
from hodei.testing.databases import fill
from hodei.testing.serve import serve

SLOW_MS = 3000
SLOTS = 3


def served(url: str, folder: Path) -> Path:
    config = folder / "hodei.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = ""\n[health]\ninterval_seconds = 3600\n'
                      '[workers]\nprovision_timeout_seconds = 30\nreservation_timeout_seconds = 3600\n'
                      'reconcile_seconds = 3600\n[daemon]\nshutdown_grace_seconds = 0.5\n')
    return config


def states(api: wpb_grpc.WorkerServiceStub) -> dict[str, tuple[str, str]]:
    return {w.id: (w.state, w.reason)
            for w in api.ListWorkers(wpb.ListWorkersRequest(all=True), timeout=10).workers}


def test_calls_whose_deadline_passed_give_their_slots_back(hodei_database_url: str, tmp_path: Path) -> None:
    fill(hodei_database_url, [{"name": "slow", "provider_type": "static", "max_workers": SLOTS,
                               "config": {"latency_ms": SLOW_MS}}])
    requirements = json_format.ParseDict({}, struct_pb2.Struct())
    with serve(served(hodei_database_url, tmp_path)) as daemon, grpc.insecure_channel(daemon.address) as channel:
        api = wpb_grpc.WorkerServiceStub(channel)
        calls = [api.ProvisionWorker.future(wpb.ProvisionWorkerRequest(requirements=requirements), timeout=0.5)
                 for _ in range(SLOTS)]
        for call in calls:
            with pytest.raises(grpc.RpcError) as info:
                call.result()
            assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED

        # Well before the slow provider would have answered: every reservation is given back.
        deadline = time.monotonic() + SLOW_MS / 1000 / 2
        while time.monotonic() < deadline:
            found = states(api)
            if len(found) == SLOTS and all(state == "FAILED" for state, _ in found.values()):
                break
            time.sleep(0.05)
        assert len(found) == SLOTS
        assert {state for state, _ in found.values()} == {"FAILED"}, found
        assert all("cancelled" in reason for _, reason in found.values()), found

        # The slots are free: a caller who waits gets a worker (max_workers would refuse a fourth).
        worker = api.ProvisionWorker(wpb.ProvisionWorkerRequest(requirements=requirements), timeout=30)
        assert worker.state == "RUNNING"
    assert "Traceback" not in daemon.log()


def test_the_cli_waits_for_a_provisioning_as_long_as_the_servers_budget(tmp_path: Path) -> None:
    """`hodei --server ... workers provision` keeps the call open while the daemon may still be trying
    providers (every attempt timing out, then a worker being stopped), not the usual 30 s; and, with
    --server, reads no local hodei.toml to know how long (the default settings' budget)."""
    from hodei.api.client import ServerOptions
    from hodei.cli.app import App

    config = tmp_path / "hodei.toml"
    config.write_text("[workers]\nmax_attempts = 2\nprovision_timeout_seconds = 100\nrelease_timeout_seconds = 20\n")
    workers = App(str(config), None, ServerOptions("127.0.0.1:1")).workers
    default = WorkerSettings()
    assert workers.provision_seconds == default.provision_budget_seconds  # type: ignore[attr-defined]
    assert workers.provision_seconds >= default.max_attempts * default.provision_timeout_seconds + 30
