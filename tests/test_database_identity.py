"""The SQLite file: created readable by its owner only, and never silently swapped under a running
daemon. Deleting (or replacing) the file while `hodei serve` runs used to leave the daemon writing to
the deleted inode and reporting the database up, so the CLI and the daemon saw different worlds."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from hodei.testing.serve import clean_environment, hodei_command, serve


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def hodei(config: Path, *args: str, server: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["--server", server] if server else []
    return subprocess.run([*hodei_command(), *prefix, *args], capture_output=True, text=True, timeout=60,
                          env=clean_environment(HODEI_CONFIG=str(config)))


def write_config(folder: Path, database: str = "hodei.db") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "hodei.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{database}"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = "127.0.0.1:0"\n[daemon]\npoll_seconds = 0.1\n'
                      '[health]\ninterval_seconds = 0.5\n', encoding="utf-8")
    return config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_way_of_creating_the_database_file_makes_it_private(tmp_path: Path) -> None:
    with umask(0):  # the most open umask: the mode is Hodei's doing, not the umask's
        folder = tmp_path / "upgraded"
        hodei(write_config(folder), "db", "upgrade")
        assert mode(folder / "hodei.db") == 0o600
        for command in (["providers", "list"], ["select"]):  # they create nothing, let alone an open file
            folder = tmp_path / command[0]
            assert hodei(write_config(folder), *command).returncode != 0, command
            assert not (folder / "hodei.db").exists(), command
        served = tmp_path / "served"
        with serve(write_config(served)) as daemon:
            assert hodei(served / "hodei.toml", "providers", "add", "a", "--type", "static",
                         server=daemon.address).returncode == 0
            files = sorted(served.glob("hodei.db*"))
            assert {f.name for f in files} >= {"hodei.db", "hodei.db-wal", "hodei.db-shm"}
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


def health(address: str) -> Any:
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                    response_deserializer=health_pb2.HealthCheckResponse.FromString)
        return check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def database_up(metrics_url: str) -> float:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    line = next(line for line in text.splitlines() if line.startswith("hodei_database_up "))
    return float(line.split()[1])


def eventually(predicate: Callable[[], Any], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def names(config: Path, server: str) -> list[str]:
    found = hodei(config, "providers", "list", "-o", "json", server=server)
    assert found.returncode == 0, found.stderr
    return [p["name"] for p in json.loads(found.stdout)]


def test_a_database_file_deleted_under_the_daemon_is_reported_and_not_recreated_until_one_is_back(
        tmp_path: Path) -> None:
    folder = tmp_path / "live"
    config = write_config(folder)
    database = folder / "hodei.db"
    assert hodei(config, "db", "upgrade").returncode == 0
    assert hodei(config, "providers", "add", "first", "--type", "static").returncode == 0
    # The backup an operator restores later: another database, made the ordinary way.
    spare_config = write_config(tmp_path / "spare")
    assert hodei(spare_config, "db", "upgrade").returncode == 0
    assert hodei(spare_config, "providers", "add", "restored", "--type", "static").returncode == 0

    with serve(config, metrics=True) as daemon:
        address, metrics = daemon.address, daemon.metrics_url
        assert address is not None and metrics is not None
        assert names(config, address) == ["first"] and database_up(metrics) == 1.0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                (folder / f"hodei.db{suffix}").unlink()

        eventually(lambda: database_up(metrics) == 0.0, "hodei_database_up to say 0")
        eventually(lambda: health(address) == health_pb2.HealthCheckResponse.NOT_SERVING, "NOT_SERVING")
        refused = hodei(config, "providers", "add", "lost", "--type", "static", server=address)
        assert refused.returncode == 1 and "deleted" in refused.stderr and "Traceback" not in refused.stderr
        assert not database.exists(), "the daemon re-created the deleted database file"
        # Selection goes on from what the daemon last read; nothing is written anywhere.
        assert json.loads(hodei(config, "select", "-o", "json", server=address).stdout)["selected"] == "first"
        eventually(lambda: "was deleted while hodei serve ran" in daemon.log(), "the log line")
        time.sleep(1.0)  # several polls: still one line in the log
        assert daemon.log().count("was deleted while hodei serve ran") == 1
        assert not database.exists()

        os.replace(tmp_path / "spare" / "hodei.db", database)
        eventually(lambda: database_up(metrics) == 1.0, "the database to be back")
        eventually(lambda: health(address) == health_pb2.HealthCheckResponse.SERVING, "SERVING again")
        assert names(config, address) == ["restored"]
        eventually(lambda: json.loads(hodei(config, "select", "-o", "json", server=address).stdout)["selected"]
                   == "restored", "selection from the restored file")
        assert hodei(config, "providers", "add", "kept", "--type", "static", server=address).returncode == 0
        eventually(lambda: "the database answers again" in daemon.log(), "the log line saying so")
    # What the daemon wrote is in the file the CLI reads, after the daemon is gone too.
    assert names_local(config) == ["kept", "restored"]


def names_local(config: Path) -> list[str]:
    found = hodei(config, "providers", "list", "-o", "json")
    assert found.returncode == 0, found.stderr
    return sorted(p["name"] for p in json.loads(found.stdout))


def test_a_database_file_replaced_under_the_daemon_is_followed(tmp_path: Path) -> None:
    folder = tmp_path / "live"
    config = write_config(folder)
    assert hodei(config, "db", "upgrade").returncode == 0
    assert hodei(config, "providers", "add", "old", "--type", "static").returncode == 0
    other = write_config(tmp_path / "other")
    assert hodei(other, "db", "upgrade").returncode == 0
    assert hodei(other, "providers", "add", "new", "--type", "static").returncode == 0
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with serve(config, metrics=True) as daemon:
        address, metrics = daemon.address, daemon.metrics_url
        assert address is not None and metrics is not None
        # Replaced by a file that is no Hodei database: unavailable, the running state kept, nothing written.
        os.replace(empty, folder / "hodei.db")
        eventually(lambda: database_up(metrics) == 0.0, "the unusable file to be noticed")
        eventually(lambda: "replaced while hodei serve ran, and the new file is not usable" in daemon.log(),
                   "the log line (read from the daemon's stderr by another thread)")
        # A Hodei database put in its place: followed, as the CLI sees it.
        os.replace(tmp_path / "other" / "hodei.db", folder / "hodei.db")
        eventually(lambda: database_up(metrics) == 1.0, "the replacement to be taken")
        assert names(config, address) == ["new"]
        eventually(lambda: json.loads(hodei(config, "select", "-o", "json", server=address).stdout)["selected"]
                   == "new", "selection from the new file")
