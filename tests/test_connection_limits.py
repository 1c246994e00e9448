"""Idle connections cannot starve the daemon: past the connection cap (hodei.limits.API_CONNECTIONS, fewer
when the file limit leaves less than RESERVED_FILES) a connection is closed at once, a connection that
never finishes its handshake is closed after HANDSHAKE_SECONDS, so health checks and the API answer again
and the database always has descriptors to open. The daemon runs under a 256-file limit, as a unit
without LimitNOFILE runs under 1,024."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hodei import limits
from hodei.testing.serve import Served, clean_environment, hodei_command

FILES = 256


def check(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return True
    except grpc.RpcError:
        return False


def test_idle_connections_are_capped_and_timed_out_and_the_database_keeps_its_files(
        sqlite_hodei: Any, tmp_path: Path) -> None:
    hodei = sqlite_hodei
    hodei.ok("providers", "add", "only", "--type", "static")
    config = tmp_path / "served.toml"
    config.write_text(f'[database]\nurl = "{hodei.url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                      '[health]\ninterval_seconds = 0.5\n[daemon]\npoll_seconds = 0.1\n', encoding="utf-8")
    process = subprocess.Popen(["prlimit", f"--nofile={FILES}:{FILES}", "--", *hodei_command(), "serve"],
                               cwd=tmp_path, env=clean_environment(HODEI_CONFIG=str(config)),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    daemon = Served(process)
    sockets: list[socket.socket] = []
    try:
        daemon.wait_ready(60)
        assert daemon.address is not None
        host, port = daemon.address.rsplit(":", 1)
        for _ in range(FILES + 150):  # more than the daemon could ever hold open
            sockets.append(socket.create_connection((host, int(port))))
        answered_at = None
        started = time.monotonic()
        while time.monotonic() < started + limits.HANDSHAKE_SECONDS + 20:
            if check(daemon.address):
                answered_at = time.monotonic() - started
                break
            time.sleep(0.5)
        assert answered_at is not None, "the health check was never answered while idle connections stayed open"
        listed = subprocess.run([*hodei_command(), "--server", daemon.address, "providers", "list", "-o", "json"],
                                capture_output=True, text=True, env=clean_environment(), timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert [p["name"] for p in json.loads(listed.stdout)] == ["only"]
        hodei.ok("providers", "add", "second", "--type", "static")  # the daemon reads the change from SQLite
        time.sleep(1.5)
        listed = subprocess.run([*hodei_command(), "--server", daemon.address, "providers", "list", "-o", "json"],
                                capture_output=True, text=True, env=clean_environment(), timeout=60)
        assert [p["name"] for p in json.loads(listed.stdout)] == ["only", "second"]
        assert daemon.process.poll() is None
    finally:
        for sock in sockets:
            sock.close()
        daemon.stop()
    log = daemon.log()
    assert "Too many open files" not in log and "unable to open database" not in log
    assert f"the file limit ({FILES}) leaves room for {FILES - limits.RESERVED_FILES} API connections" in log
