"""``hodei serve`` as a real process, for tests: started on loopback ports, ready, stopped.

The API's and the metrics endpoint's addresses (``listen = "127.0.0.1:0"`` picks free ports) are read
from the daemon's log; it is ready once its gRPC health service answers SERVING::

    with serve(tmp_path / "hodei.toml") as daemon:
        subprocess.run(["hodei", "--server", daemon.address, "providers", "list"])
        urllib.request.urlopen(daemon.metrics_url)
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_API = re.compile(r"API listening on grpcs?://(\S+?)[\s,)]")
_METRICS = re.compile(r"metrics endpoint listening on (http://\S+)")
_UI = re.compile(r"status page listening on (https?://\S+)")
# Variables of the test run that must not reach the daemon unless a test passes them on purpose.
_PRIVATE = ("HODEI_", "NOTIFY_", "WATCHDOG_", "OTEL_")
# HODEI_SYSTEM_CONFIG: where a test run keeps children away from the host's /etc/hodei/hodei.toml.
_KEPT = ("HODEI_PLUGINS_ENABLE", "HODEI_SYSTEM_CONFIG")


def hodei_command() -> list[str]:
    """The installed ``hodei`` console script beside this interpreter (else ``python -m hodei``)."""
    script = Path(sys.executable).parent / "hodei"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hodei"]


def clean_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without Hodei's, systemd's and OpenTelemetry's variables, plus ``overrides``.

    ``HODEI_PLUGINS_ENABLE`` is kept: it is how a test run gives its children the test-only ``static`` type."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE) or k in _KEPT}
    return {**environment, **overrides}


def _message(line: str) -> str:
    try:
        document = json.loads(line)
    except ValueError:
        return line.rstrip("\n")
    return str(document.get("message", "")) if isinstance(document, dict) else line.rstrip("\n")


class Served:
    """A running ``hodei serve``: ``address`` (HOST:PORT of the API), ``metrics_url``, ``ui_url`` (the status
    page's), its output so far."""

    def __init__(self, process: subprocess.Popen[str]):
        self.process = process
        self.address: str | None = None
        self.metrics_url: str | None = None
        self.ui_url: str | None = None
        self.stderr: list[str] = []  # log lines
        self.stdout: list[str] = []  # the console span exporter writes here
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(process.stderr, self.stderr, True), daemon=True),
                         threading.Thread(target=self._read, args=(process.stdout, self.stdout, False), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str] | None, into: list[str], announce: bool) -> None:
        for line in stream or ():
            into.append(line)
            if announce:
                self._lines.put(line)
        if announce:
            self._lines.put(None)

    def log(self) -> str:
        return "".join(self.stderr)

    def wait_ready(self, seconds: float = 60.0, *, metrics: bool = False, ui: bool = False) -> None:
        """Until it says where it listens (the metrics endpoint too, if ``metrics``; the status page, if ``ui``)
        and answers SERVING."""
        deadline = time.monotonic() + seconds
        while self.address is None or (metrics and self.metrics_url is None) or (ui and self.ui_url is None):
            try:
                line = self._lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or self.process.poll() is not None:
                self.process.wait(5)
                raise AssertionError(f"hodei serve exited ({self.process.returncode}) before it was ready:\n"
                                     f"{self.log()}")
            message = _message(line) + " "
            if found := _API.search(message):
                self.address = found[1]
            if found := _METRICS.search(message):
                self.metrics_url = found[1]
            if found := _UI.search(message):
                self.ui_url = found[1]
            if time.monotonic() > deadline:
                raise AssertionError(f"hodei serve did not say where it listens within {seconds}s:\n{self.log()}")
        self._wait_serving(deadline)

    def _wait_serving(self, deadline: float) -> None:
        import grpc
        from grpc_health.v1 import health_pb2

        assert self.address is not None
        with grpc.insecure_channel(self.address) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                        response_deserializer=health_pb2.HealthCheckResponse.FromString)
            while True:
                try:
                    answer = check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"hodei serve never answered SERVING:\n{self.log()}")
                time.sleep(0.05)

    def stop(self, seconds: float = 15.0) -> int:
        """SIGTERM, as systemd stops it; killed if it has not exited within ``seconds``. Its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for reader in self._readers:
            reader.join(5)
        return self.process.returncode


def start(config: str | Path, *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> Served:
    """``hodei serve`` with ``config`` as its hodei.toml, started but not yet ready: call
    :meth:`Served.wait_ready` (several daemons can start side by side), and :meth:`Served.stop` after."""
    config = Path(config)
    environment = clean_environment(HODEI_CONFIG=str(config), **dict(env or {}))
    process = subprocess.Popen([*hodei_command(), "serve"], cwd=cwd or config.parent, env=environment,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Served(process)


@contextmanager
def serve(config: str | Path, *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
          ready_seconds: float = 60.0, metrics: bool = False, ui: bool = False) -> Iterator[Served]:
    """``hodei serve`` with ``config`` as its hodei.toml (which should set ``[api] listen = "127.0.0.1:0"``),
    ready when it is yielded and stopped (SIGTERM) after. ``metrics``: also wait for the metrics endpoint;
    ``ui``: for the status page (``[ui] listen = "127.0.0.1:0"``)."""
    served = start(config, env=env, cwd=cwd)
    try:
        served.wait_ready(ready_seconds, metrics=metrics, ui=ui)
        yield served
    finally:
        served.stop()
