"""The ``/metrics`` endpoint: a small HTTP/1.1 server, one part of the daemon's task group.

Why its own server rather than prometheus-client's ``start_http_server``: that one serves from a
thread, and the gauges are read from the daemon's fleet, which only the event loop changes; read
from another thread, a scrape could meet a dict in the middle of a change. Here the exposition is
generated in the event loop, between two changes (a few milliseconds even for thousands of
providers), and the server starts, reports readiness and stops with the other parts.

It answers ``GET``/``HEAD /metrics`` in the format the scraper asks for (Prometheus text or
OpenMetrics, gzip when accepted), ``/`` with a pointer, anything else with 404 or 405; one request
per connection. An address that cannot be bound at start (another daemon holds it) is a start-up
failure: the daemon exits non-zero, naming the address and its holder, rather than run unscraped while
looking ready. The address is not reloadable, so nothing retries it later.
"""

from __future__ import annotations

import gzip
import logging

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from hodei.errors import StartupFailure
from hodei.observability.address import cannot_listen, parse_listen

log = logging.getLogger(__name__)

_MAX_HEAD = 16 * 1024
_READ_TIMEOUT = 10.0


def _response(status: str, body: bytes, headers: dict[str, str], head_only: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close",
             *(f"{key}: {value}" for key, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


class MetricsEndpoint:
    """Serves ``registry`` on ``listen`` (``HOST:PORT``; empty or ``False``: no endpoint)."""

    name = "metrics endpoint"

    def __init__(self, registry: CollectorRegistry, listen: str | bool | None):
        self.registry = registry
        self.listen = listen or ""
        self.address: tuple[str, int] | None = None  # what was bound, once listening
        self.stopping = False
        self._stop = anyio.Event()

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
            try:
                with anyio.fail_after(_READ_TIMEOUT):
                    head = await self._read_head(stream)
                await stream.send(self.respond(head))
            except (TimeoutError, ValueError, UnicodeDecodeError, anyio.EndOfStream, anyio.BrokenResourceError,
                    anyio.ClosedResourceError, ConnectionError):
                pass

    def respond(self, head: bytes) -> bytes:
        """The whole HTTP response to a request head (request line and headers)."""
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _response("400 Bad Request", b"bad request\n", {"Content-Type": "text/plain"})
        method, target, _ = parts
        headers = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response("405 Method Not Allowed", b"only GET and HEAD\n",
                             {"Allow": "GET, HEAD", "Content-Type": "text/plain"})
        head_only = method == "HEAD"
        if path == "/":
            return _response("200 OK", b"Hodei: metrics at /metrics\n", {"Content-Type": "text/plain"}, head_only)
        if path != "/metrics":
            return _response("404 Not Found", b"not found; metrics are at /metrics\n",
                             {"Content-Type": "text/plain"}, head_only)
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        body = encoder(self.registry)
        extra = {"Content-Type": content_type}
        if "gzip" in headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=5)
            extra["Content-Encoding"] = "gzip"
        return _response("200 OK", body, extra, head_only)
