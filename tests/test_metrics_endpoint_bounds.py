"""A scrape's cost is bounded and off the event loop: scrapers that never read are let go after the write
timeout, at most _CONNECTIONS are open at once (one more is answered 503), and writing the exposition
happens in a worker thread while the loop answers everything else."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from hodei.observability import endpoint as ep
from hodei.observability.endpoint import MetricsEndpoint
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

SERIES = 100_000  # about 7 MB of exposition: more than the socket buffers of both ends hold


class _Many:
    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("bench_provider_gauge", "one series per provider", labels=["provider", "type"])
        for i in range(SERIES):
            family.add_metric([f"provider-{i:06d}-with-a-longer-name", "static"], float(i))
        yield family


def registry() -> CollectorRegistry:
    found = CollectorRegistry()
    found.register(_Many())
    return found


async def _get(port: int, path: str = "/metrics") -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        with anyio.fail_after(30):
            while True:
                try:
                    data += await stream.receive(65536)
                except anyio.EndOfStream:
                    return data


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_scrapers_that_never_read_are_capped_and_let_go(anyio_backend: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ep, "_WRITE_TIMEOUT", 1.0)
    endpoint = MetricsEndpoint(registry(), "127.0.0.1:0")
    async with anyio.create_task_group() as group:
        await group.start(endpoint.run)
        assert endpoint.address is not None
        port = endpoint.address[1]
        stalled = []
        for _ in range(ep._CONNECTIONS):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a scraper that never reads
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(sock)
        await anyio.sleep(0.5)
        refused = await _get(port)
        assert refused.startswith(b"HTTP/1.1 503"), refused[:80]
        served = b""
        with anyio.fail_after(30):  # the stalled ones are let go after the write timeout: served again
            while not served.startswith(b"HTTP/1.1 200"):
                await anyio.sleep(0.5)
                served = await _get(port)
        assert b"provider-099999" in served
        assert endpoint._open == 0, "every stalled connection was closed"
        for sock in stalled:
            sock.close()
        group.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_writing_the_exposition_never_holds_the_event_loop(anyio_backend: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rendering, release = threading.Event(), threading.Event()
    render = ep._render

    def slow(*args: Any) -> Any:
        rendering.set()
        release.wait(30)
        return render(*args)

    monkeypatch.setattr(ep, "_render", slow)
    endpoint = MetricsEndpoint(registry(), "127.0.0.1:0")
    async with anyio.create_task_group() as group:
        await group.start(endpoint.run)
        assert endpoint.address is not None
        port = endpoint.address[1]
        scrapes: list[bytes] = []

        async def scrape() -> None:
            scrapes.append(await _get(port))

        for _ in range(3):  # concurrent scrapes share one collection
            group.start_soon(scrape)
        with anyio.fail_after(10):
            while not rendering.is_set():
                await anyio.sleep(0.01)
        pointer = await _get(port, "/")  # answered while the exposition is being written
        assert pointer.startswith(b"HTTP/1.1 200") and b"metrics at /metrics" in pointer
        release.set()
        with anyio.fail_after(30):
            while len(scrapes) < 3:
                await anyio.sleep(0.05)
        assert len({s.split(b"\r\n\r\n", 1)[1] for s in scrapes}) == 1
        group.cancel_scope.cancel()
