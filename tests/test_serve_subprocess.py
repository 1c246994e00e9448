"""``hodei serve`` as systemd starts it: a real process, a real NOTIFY_SOCKET, real signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hodei.testing.serve import clean_environment

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="the notify protocol needs Unix sockets")


class NotifySocket:
    """The datagram socket systemd would listen on; collects what the daemon sends."""

    def __init__(self, path: Path):
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.settimeout(0.2)
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str | None = None, seconds: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.socket.recv(4096).decode()
            except TimeoutError:
                continue
            message = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            self.messages.append(message)
            if key in message and (value is None or message[key] == value):
                return message
        raise AssertionError(f"no {key}={value or '*'} within {seconds}s; got {self.messages}")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "hodei.toml").write_text(
        '[database]\nurl = "sqlite:///hodei.db"\n[health]\ninterval_seconds = 0.5\ntimeout_seconds = 1.0\n'
        '[daemon]\npoll_seconds = 0.1\nshutdown_grace_seconds = 2.0\n'
        '[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n')
    return tmp_path


@pytest.fixture
def notify(workdir: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(workdir / "notify.sock")
    yield sock
    sock.socket.close()


def hodei(workdir: Path, *args: str, env: dict[str, str] | None = None, **kwargs):
    environment = clean_environment()
    environment["HODEI_CONFIG"] = str(workdir / "hodei.toml")
    return subprocess.Popen([sys.executable, "-m", "hodei", *args], cwd=workdir, env={**environment, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_serve_notifies_systemd_reloads_on_sighup_and_stops_cleanly(workdir: Path, notify: NotifySocket) -> None:
    added = hodei(workdir, "providers", "add", "edge", "--type", "static")
    assert added.wait(60) == 1 and "hodei db upgrade" in added.stderr.read()  # no schema yet: it says what to do
    daemon = hodei(workdir, "serve", env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "300000"})
    try:
        ready = notify.wait_for("READY", "1")
        assert ready["STATUS"] == "ready: 0 providers"
        notify.wait_for("WATCHDOG", "1", seconds=5)

        assert hodei(workdir, "providers", "add", "edge", "--type", "static").wait(60) == 0
        status = notify.wait_for("STATUS", "ready: 1 providers")
        assert status

        config = workdir / "hodei.toml"
        config.write_text(config.read_text().replace("interval_seconds = 0.5", "interval_seconds = 0.7")
                          .replace('url = "sqlite:///hodei.db"', 'url = "sqlite:///other.db"'))
        sent_at = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        daemon.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", "1")
        # Type=notify-reload (systemd 253+) needs the reload's CLOCK_MONOTONIC time with it.
        assert sent_at <= int(reloading["MONOTONIC_USEC"]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notify.wait_for("READY", "1")

        daemon.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", "1")
        assert daemon.wait(15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    log = daemon.stderr.read()
    assert "configuration listener started" in log and "health monitor started" in log
    assert "reloaded" in log and "applied health.interval_seconds" in log
    assert "need a restart to take effect: database.url" in log
    assert "received SIGTERM: stopping" in log and "Traceback" not in log
    assert not (workdir / "other.db").exists(), "the database URL must not change without a restart"


def test_sigint_stops_it_too(workdir: Path, notify: NotifySocket) -> None:
    daemon = hodei(workdir, "serve", env={"NOTIFY_SOCKET": str(notify.path)})
    try:
        notify.wait_for("READY", "1")
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()


def test_a_bad_config_on_reload_keeps_the_running_one(workdir: Path, notify: NotifySocket) -> None:
    daemon = hodei(workdir, "serve", env={"NOTIFY_SOCKET": str(notify.path)})
    try:
        notify.wait_for("READY", "1")
        (workdir / "hodei.toml").write_text("[health]\ninterval_seconds = -1\n")
        daemon.send_signal(signal.SIGHUP)
        notify.wait_for("READY", "1")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    log = daemon.stderr.read()
    assert "reload refused, the running configuration is kept" in log and "health.interval_seconds" in log
