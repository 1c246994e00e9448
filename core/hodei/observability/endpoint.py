"""The ``/metrics`` endpoint: a small HTTP/1.1 server, one part of the daemon's task group.

Why its own server rather than prometheus-client's ``start_http_server``: that one serves from a
thread, and the gauges are read from the daemon's fleet, which only the event loop changes; read
from another thread, a scrape could meet a dict in the middle of a change. Here the metrics are
collected in the event loop, between two changes, and written out as text (and gzip) in a worker
thread; the server starts, reports readiness and stops with the other parts.

A scrape's cost is bounded whatever the scrapers do: scrapes that come in while the metrics are being
collected and written share that collection (one at a time), at most :data:`_CONNECTIONS` connections are open at once (one more
is answered 503 and closed), a response is written in chunks (never more than one chunk copied per
connection) and a connection that has not read it within :data:`_WRITE_TIMEOUT` seconds is closed.

It answers ``GET``/``HEAD /metrics`` in the format the scraper asks for (Prometheus text or
OpenMetrics, gzip when accepted), ``/`` with a pointer, anything else with 404 or 405; one request
per connection. An address that cannot be bound at start (another daemon holds it) is a start-up
failure: the daemon exits non-zero, naming the address and its holder, rather than run unscraped while
looking ready. The address is not reloadable, so nothing retries it later.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import time
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from hodei.errors import StartupFailure
from hodei.observability.address import cannot_listen, parse_listen

log = logging.getLogger(__name__)

_MAX_HEAD = 16 * 1024
_READ_TIMEOUT = 10.0
_WRITE_TIMEOUT = 10.0
_CONNECTIONS = 16
_CHUNK = 64 * 1024


def _head(status: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {length}", "Connection: close",
             *(f"{key}: {value}" for key, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _response(status: str, body: bytes, headers: dict[str, str], head_only: bool = False) -> bytes:
    return _head(status, len(body), headers) + (b"" if head_only else body)


class _Collected:
    """Metric families collected once, in the event loop, handed to an encoder in a thread."""

    def __init__(self, registry: CollectorRegistry):
        self.families = list(registry.collect())

    def collect(self) -> Any:
        return iter(self.families)


def _render(collected: _Collected, accept: str, compress: bool) -> tuple[bytes, dict[str, str]]:
    encoder, content_type = choose_encoder(accept)
    body = encoder(collected)  # anything with collect() will do
    headers = {"Content-Type": content_type}
    if compress:
        body = gzip.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return body, headers


class MetricsEndpoint:
    """Serves ``registry`` on ``listen`` (``HOST:PORT``; empty or ``False``: no endpoint)."""

    name = "metrics endpoint"

    def __init__(self, registry: CollectorRegistry, listen: str | bool | None):
        self.registry = registry
        self.listen = listen or ""
        self.address: tuple[str, int] | None = None  # what was bound, once listening
        self.stopping = False
        self._stop = anyio.Event()
        self._open = 0
        self._rendering = anyio.Lock()
        # (content type asked for, gzip) -> (when, body, headers): one collection serves every scraper.
        self._fresh: dict[tuple[str, bool], tuple[float, bytes, dict[str, str]]] = {}

    @property
    def url(self) -> str | None:
        if self.address is None:
            return None
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def stop(self) -> None:
        # The endpoint keeps answering while in-flight work drains; the daemon's task group ends it.
        self.stopping = True
        self._stop.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if not self.listen:
            log.info("metrics endpoint off ([metrics] listen is empty)")
            task_status.started()
            return
        host, port = parse_listen(str(self.listen))
        try:
            listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        except OSError as exc:
            raise StartupFailure(cannot_listen("metrics endpoint ([metrics] listen)", str(self.listen),
                                               str(exc.strerror or exc))) from None
        async with listener:
            bound = listener.extra(SocketAttribute.local_address)
            self.address = (str(bound[0]), int(bound[1]))
            log.info("metrics endpoint listening on %s", self.url)
            task_status.started()
            await listener.serve(self._handle)

    async def _read_head(self, stream: SocketStream) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > _MAX_HEAD:
                raise ValueError("request head too large")
            data += await stream.receive(4096)
        return data.split(b"\r\n\r\n", 1)[0]

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            if self._open >= _CONNECTIONS:  # answered without collecting anything
                with anyio.move_on_after(1.0), contextlib.suppress(
                        ValueError, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError,
                        ConnectionError):
                    await self._read_head(stream)  # read, so that closing does not reset the connection
                    await stream.send(_response("503 Service Unavailable", b"too many scrapes at once\n",
                                                    {"Content-Type": "text/plain", "Retry-After": "1"}))
                return
            self._open += 1
            try:
                with anyio.fail_after(_READ_TIMEOUT):
                    head = await self._read_head(stream)
                found = self._route(head)
                if found is None:
                    status, body, headers, head_only = "200 OK", *await self._metrics(head), head.startswith(b"HEAD")
                else:
                    status, body, headers, head_only = found
                with anyio.fail_after(_WRITE_TIMEOUT):  # a scraper that does not read is let go
                    await stream.send(_head(status, len(body), headers))
                    if not head_only:
                        view = memoryview(body)
                        for start in range(0, len(body), _CHUNK):
                            await stream.send(bytes(view[start:start + _CHUNK]))
            except (TimeoutError, ValueError, UnicodeDecodeError, anyio.EndOfStream, anyio.BrokenResourceError,
                    anyio.ClosedResourceError, ConnectionError):
                pass
            finally:
                self._open -= 1

    async def _metrics(self, head: bytes) -> tuple[bytes, dict[str, str]]:
        headers = _headers(head)
        key = (choose_encoder(headers.get("accept", ""))[1], "gzip" in headers.get("accept-encoding", ""))
        asked = time.monotonic()
        async with self._rendering:
            when, body, extra = self._fresh.get(key, (0.0, b"", {}))
            if when < asked:  # else collected after this scrape came in: as fresh as it can ask for
                collected = _Collected(self.registry)  # in the loop: the fleet is never read mid-change
                body, extra = await anyio.to_thread.run_sync(_render, collected, headers.get("accept", ""), key[1])
                self._fresh = {key: (time.monotonic(), body, extra)}
            return body, extra

    def _route(self, head: bytes) -> tuple[str, bytes, dict[str, str], bool] | None:
        """The answer to anything but a scrape of /metrics; ``None`` for a scrape."""
        request_line = head.decode("latin-1").split("\r\n", 1)[0]
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "400 Bad Request", b"bad request\n", {"Content-Type": "text/plain"}, False
        method, target, _ = parts
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return ("405 Method Not Allowed", b"only GET and HEAD\n",
                    {"Allow": "GET, HEAD", "Content-Type": "text/plain"}, False)
        head_only = method == "HEAD"
        if path == "/":
            return "200 OK", b"Hodei: metrics at /metrics\n", {"Content-Type": "text/plain"}, head_only
        if path != "/metrics":
            return ("404 Not Found", b"not found; metrics are at /metrics\n", {"Content-Type": "text/plain"},
                    head_only)
        return None


def _headers(head: bytes) -> dict[str, str]:
    found = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        found[key.strip().lower()] = value.strip()
    return found
