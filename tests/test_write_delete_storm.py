"""Writes through a running daemon's API racing deletes of the same provider (SQLite and PostgreSQL):
every answer is done, NOT_FOUND (the row was deleted under the call), ALREADY_EXISTS or ABORTED
(a race lost, nothing written): never INTERNAL, and the daemon logs no traceback."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.testing.databases import fill
from hodei.testing.serve import serve

ROUNDS = 40
ANSWERS = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED}


def served(url: str, folder: Path) -> Path:
    config = folder / "hodei.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = ""\n[health]\ninterval_seconds = 0.05\n'
                      '[workers]\nreconcile_seconds = 3600\n[daemon]\nshutdown_grace_seconds = 0.5\n')
    return config


def test_updates_and_status_changes_racing_deletes_answer_done_or_not_found(hodei_database_url: str,
                                                                           tmp_path: Path) -> None:
    fill(hodei_database_url, [])
    codes: list[grpc.StatusCode] = []
    details: list[str] = []

    def call(method: object, request: object) -> None:
        try:
            method(request, timeout=30)  # type: ignore[operator]
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
            details.append(f"{exc.code()}: {exc.details()}")

    with serve(served(hodei_database_url, tmp_path)) as daemon, grpc.insecure_channel(daemon.address) as channel:
        api = pb_grpc.ProviderServiceStub(channel)
        start = threading.Barrier(2)

        def churn() -> None:
            start.wait()
            for _ in range(ROUNDS):
                call(api.CreateProvider, pb.CreateProviderRequest(config=pb.ProviderConfig(
                    name="p", provider_type="static")))
                call(api.DeleteProvider, pb.DeleteProviderRequest(provider_id="p"))

        def change() -> None:
            start.wait()
            for i in range(ROUNDS):
                call(api.UpdateProvider, pb.UpdateProviderRequest(
                    provider_id="p", config=pb.ProviderConfig(priority=i + 1)))
                call(api.SetProviderStatus, pb.SetProviderStatusRequest(
                    provider_id="p", status="DISABLED" if i % 2 else "ACTIVE"))

        threads = [threading.Thread(target=churn), threading.Thread(target=change)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert len(codes) == 4 * ROUNDS
    assert set(codes) <= ANSWERS, [d for d in details if "INTERNAL" in d or "UNKNOWN" in d][:5]
    assert "Traceback" not in daemon.log() and "failed" not in daemon.log(), daemon.log()[-3000:]
