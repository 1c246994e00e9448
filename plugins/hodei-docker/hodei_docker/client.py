"""Connections to Docker engines: one client per engine, every request bounded by the caller's deadline.

Imports the ``docker`` SDK, so only the blocking side of the hooks (worker threads) imports this
module; config validation never does.
"""

from __future__ import annotations

import errno
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.tls import TLSConfig
from hodei import Deadline, JobFailed

# Hodei's thread pool runs up to 40 calls at once; a smaller pool would open and drop connections.
_POOL_SIZE = 32


class EngineError(RuntimeError):
    """A Docker engine could not do what a hook asked; the message names the engine and the reason."""


class _DeadlineClient(docker.APIClient):
    """An ``APIClient`` whose request timeout is what is left of the calling hook's deadline.

    The SDK reads ``self.timeout`` for every request (and adds the grace period to it for
    ``stop``); making it the thread's :meth:`hodei.Deadline.current` (set by ``Deadline.applied()``)
    lets concurrent hook calls share one client, and one connection pool, while each keeps its own
    bound. It raises :class:`hodei.DeadlineExceeded` once the deadline has passed.
    """

    @property  # type: ignore[override]
    def timeout(self) -> float | None:
        bound = Deadline.current()
        return self._fallback_timeout if bound is None else bound.request_timeout()

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._fallback_timeout = value


def engine_address(config: Mapping[str, Any]) -> str:
    """The engine as an operator would name it in ``docker -H``."""
    return config["endpoint"] or f"unix://{config['socket_path']}"


def _connection_key(config: Mapping[str, Any]) -> tuple[Any, ...]:
    tls = config["tls"]
    return (engine_address(config),) + (tuple(sorted(tls.items())) if tls else ())


def _tls_config(tls: Mapping[str, Any]) -> TLSConfig:
    client_cert = (tls["client_cert"], tls["client_key"]) if tls["client_cert"] else None
    return TLSConfig(client_cert=client_cert, ca_cert=tls["ca_cert"], verify=tls["verify"])


_clients: dict[tuple[Any, ...], _DeadlineClient] = {}
_clients_lock = threading.Lock()


def client_for(config: Mapping[str, Any]) -> docker.APIClient:
    """The shared client for the config's engine, connecting (and negotiating the API version) once.

    Call inside ``Deadline.applied()``: connecting asks the engine for its version.
    """
    key = _connection_key(config)
    with _clients_lock:
        client = _clients.get(key)
    if client is not None:
        return client
    tls = _tls_config(config["tls"]) if config["tls"] else False
    # No lock held while connecting: a hung engine must not stall the calls for every other engine.
    client = _DeadlineClient(base_url=engine_address(config), version="auto", tls=tls, max_pool_size=_POOL_SIZE)
    with _clients_lock:
        kept = _clients.setdefault(key, client)
    if kept is not client:
        client.close()
    return kept


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, docker.errors.NotFound)


def describe(exc: BaseException, deadline: Deadline | None = None) -> str:
    """Why a request failed, in words an operator can act on, without the SDK's wrapping."""
    if isinstance(exc, docker.errors.APIError):
        return f"answered {exc.status_code}: {exc.explanation or getattr(exc.response, 'reason', '')}"
    if isinstance(exc, docker.errors.TLSParameterError):
        return f"TLS settings refused: {exc}"
    for cause in _causes(exc):
        # hodei.DeadlineExceeded is a TimeoutError.
        if isinstance(cause, (requests.exceptions.Timeout, TimeoutError)):
            return f"did not answer within {deadline.timeout:g}s" if deadline else "did not answer in time"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, FileNotFoundError):
            return "no such socket (is dockerd running, and is socket_path right?)"
        if isinstance(cause, PermissionError):
            return "permission denied (the Hodei user needs access to the engine's socket, e.g. the docker group)"
        if isinstance(cause, ConnectionRefusedError):
            return "refused the connection (is dockerd running and listening there?)"
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"is unreachable: {cause.strerror}"
    return f"failed: {exc}"


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


@contextmanager
def engine_errors(config: Mapping[str, Any], action: str, deadline: Deadline) -> Iterator[None]:
    """Turn any failure of the block into an :class:`EngineError` naming the engine and the action.

    ``from None``: the SDK's exceptions hold the HTTP request, whose body and headers carry the
    worker's token and the registry credentials; nothing that keeps them may travel up.
    """
    try:
        yield
    except (EngineError, JobFailed):
        raise
    except Exception as exc:
        raise EngineError(f"Docker engine at {engine_address(config)}: cannot {action}: {describe(exc, deadline)}") \
            from None
