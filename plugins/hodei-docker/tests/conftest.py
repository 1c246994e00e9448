"""A real Docker engine for the lifecycle tests, the busybox worker image, and providers on it.

The engine is the one at ``$HODEI_TEST_DOCKER_SOCKET`` (default ``/var/run/docker.sock``; start
one with ``scripts/start-docker``). Without it the tests skip, or fail under HODEI_REQUIRE_BACKENDS=1.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hodei import Provider
from hodei.calls import call_provider_hook
from hodei.testing import backend_unavailable

SOCKET_ENV = "HODEI_TEST_DOCKER_SOCKET"


@pytest.fixture(scope="session")
def docker_socket() -> str:
    return os.environ.get(SOCKET_ENV, "/var/run/docker.sock")


@pytest.fixture(scope="session")
def docker_api(docker_socket: str) -> Iterator[Any]:
    """A plain SDK client on the test engine: the tests' own view of what the plugin did."""
    import docker

    try:
        api = docker.APIClient(base_url=f"unix://{docker_socket}", version="auto", timeout=10)
    except docker.errors.DockerException as exc:
        backend_unavailable(f"Docker engine unreachable at unix://{docker_socket} ({exc}); "
                            f"start one with scripts/start-docker or set {SOCKET_ENV}")
    yield api
    api.close()


@pytest.fixture(scope="session")
def worker_image(docker_api: Any) -> str:
    from hodei_docker.testing import BusyboxUnavailable, ensure_test_image

    try:
        return ensure_test_image(docker_api)
    except BusyboxUnavailable as exc:
        backend_unavailable(f"cannot build the worker image: {exc}")
        raise


@pytest.fixture
def docker_config(docker_socket: str, worker_image: str) -> dict[str, Any]:
    """A config for the test engine: small workers from the busybox image, which sleep."""
    return {"type": "docker", "socket_path": docker_socket, "default_image": worker_image, "network": "bridge",
            "default_resources": {"cpu_limit": "250m", "memory_limit": "64Mi"}, "stop_grace_seconds": 5}


@pytest.fixture
def make_provider(hodei_pm, docker_api) -> Iterator[Callable[..., Provider]]:
    """Build providers from config overrides, as the core does (config normalised by the plugin).

    Whatever containers they leave are removed afterwards, so one failing test cannot leak into
    the next; the tests themselves check that nothing is left.
    """
    from hodei_docker.labels import provider_filter

    made: list[Provider] = []

    def make(config: dict[str, Any], **fields: Any) -> Provider:
        normalised = hodei_pm.validate_config("docker", config)
        provider = Provider(id=uuid.uuid4(), name=f"docker test {len(made)}", provider_type="docker",
                            config=normalised, **fields)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        for container in docker_api.containers(all=True, filters=provider_filter(provider.id)):
            docker_api.remove_container(container["Id"], force=True)


@pytest.fixture
def call(hodei_pm) -> Callable[..., Any]:
    """Call a provider hook the way the core does: routed to this plugin, awaited, bounded by ``timeout``."""

    def call(hook_name: str, provider: Provider, timeout: float = 30.0, **kwargs: Any) -> Any:
        return anyio.run(lambda: call_provider_hook(hodei_pm, hook_name, provider, timeout, **kwargs))

    return call


# -- stand-in engines: one that hangs, one that refuses, a TCP endpoint ------------------------


def _short_dir() -> Path:
    # pytest's tmp_path can be longer than a Unix socket address allows (107 bytes).
    return Path(tempfile.mkdtemp(prefix="hodei-docker-"))


@pytest.fixture
def silent_engine() -> Iterator[str]:
    """A Unix socket that accepts connections and never answers: a hung engine. Yields its path."""
    path = _short_dir() / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)  # kept open, never read from or written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield str(path)
    finally:
        stop.set()
        _close_listener(server)
        for connection in held:
            connection.close()
        path.unlink(missing_ok=True)
        path.parent.rmdir()


@pytest.fixture
def refusing_socket() -> Iterator[str]:
    """A Unix socket file nobody listens on: what a crashed engine leaves behind."""
    path = _short_dir() / "dead.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    try:
        yield str(path)
    finally:
        server.close()
        path.unlink(missing_ok=True)
        path.parent.rmdir()


@pytest.fixture
def tcp_relay(docker_api: Any, docker_socket: str) -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` relaying to the test engine's socket: the engine as a TCP endpoint."""
    unix_socket = docker_socket
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(unix_socket)
            for source, target in ((client, engine), (engine, client)):
                threading.Thread(target=pump, args=(source, target), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        _close_listener(listener)


def _close_listener(listener: socket.socket) -> None:
    # close() alone does not wake a thread blocked in accept(); shutdown() does, on Linux.
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
