"""Metrics, traces and logs: the real /metrics endpoint of a running daemon scraped over HTTP and
parsed with prometheus-client's parser, spans captured with the SDK's in-memory exporter, a trace
continued from gRPC metadata, and JSON log lines carrying the trace id."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import grpc
import grpc.aio
import pytest
from hodei import database
from hodei.daemon import Daemon
from hodei.errors import StartupFailure
from hodei.observability.endpoint import MetricsEndpoint
from hodei.observability.logs import JsonFormatter, make_handler, set_format
from hodei.observability.metrics import SPECS, Metrics
from hodei.observability.telemetry import Telemetry
from hodei.plugins import make_plugin_manager
from hodei.services.selection import LocalSelection
from hodei.settings import Settings, TracingSettings
from hodei.store import Store
from hodei.testing.daemon import run_sql, running, wait_for
from hodei.testing.serve import clean_environment
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio and psycopg's async connection need asyncio


def settings(url: str, **sections: Any) -> Settings:
    return Settings.model_validate({
        "database": {"url": url},
        "health": {"interval_seconds": 0.2, "timeout_seconds": 0.5, "unhealthy_after": 2, "healthy_after": 2,
                   "max_backoff_seconds": 0.4},
        "daemon": {"poll_seconds": 0.05, "resync_seconds": 30.0, "shutdown_grace_seconds": 1.0,
                   "database_timeout_seconds": 2.0},
        "metrics": {"listen": "127.0.0.1:0"}, "api": {"listen": "127.0.0.1:0"},
        **sections,
    })


@pytest.fixture
def store(hodei_store: Any) -> Any:
    return hodei_store


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class Scrape:
    """One scrape, parsed: samples by metric name, and each family's type and label names."""

    def __init__(self, text: str):
        self.text = text
        self.families: dict[str, Any] = {}
        self.samples: list[Any] = []
        for family in text_string_to_metric_families(text):
            name = family.name + ("_total" if family.type == "counter" else "")
            self.families[name] = family
            self.samples += family.samples

    def value(self, name: str, **labels: str) -> float | None:
        found = [s.value for s in self.samples if s.name == name and all(s.labels.get(k) == v
                                                                        for k, v in labels.items())]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else None

    def label_sets(self, family: str) -> set[frozenset[str]]:
        return {frozenset(k for k in s.labels if k not in ("le", "quantile"))
                for s in self.families[family].samples}


async def scrape(daemon: Daemon) -> Scrape:
    url = daemon.metrics_endpoint.url
    assert url is not None
    status, headers, body = await anyio.to_thread.run_sync(http_get, url)
    assert status == 200 and headers["Content-Type"].startswith("text/plain"), (status, headers)
    return Scrape(body.decode())


def by_name(daemon: Daemon, name: str) -> Any:
    return next((p for p in daemon.fleet.providers.values() if p.name == name), None)


# -- a tiny gRPC server of our own ---------------------------------------------------------------


class Echo(grpc.GenericRpcHandler):
    """``/test.Echo/Say`` (unary), ``/test.Echo/Count`` (server streaming), ``/test.Echo/Fail`` (aborts),
    each running ``inside`` within the handler so a test can see what a handler sees."""

    def __init__(self, inside: Callable[[], None] = lambda: None):
        self.inside = inside

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        ident = (lambda b: b)

        async def say(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.inside()
            return b"hello " + request

        async def count(request: bytes, context: grpc.aio.ServicerContext) -> Any:
            for i in range(3):
                self.inside()
                yield str(i).encode()

        async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            await context.abort(grpc.StatusCode.INTERNAL, "broken on purpose")
            return b""

        if details.method == "/test.Echo/Say":
            return grpc.unary_unary_rpc_method_handler(say, ident, ident)
        if details.method == "/test.Echo/Count":
            return grpc.unary_stream_rpc_method_handler(count, ident, ident)
        if details.method == "/test.Echo/Fail":
            return grpc.unary_unary_rpc_method_handler(fail, ident, ident)
        return None


@asynccontextmanager
async def echo_server(telemetry: Telemetry, inside: Callable[[], None] = lambda: None) -> AsyncIterator[str]:
    server = grpc.aio.server(interceptors=[telemetry.grpc_interceptor()])
    server.add_generic_rpc_handlers((Echo(inside),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def call(target: str, method: str, request: bytes = b"x", metadata: Any = None) -> Any:
    async with grpc.aio.insecure_channel(target) as channel:
        if method == "/test.Echo/Count":
            stub = channel.unary_stream(method)
            return [item async for item in stub(request, metadata=metadata)]
        return await channel.unary_unary(method)(request, metadata=metadata)


# -- the endpoint of a running daemon ------------------------------------------------------------


async def test_every_documented_metric_is_scraped_and_values_follow_the_daemon(store, hodei_database_url,
                                                                                 tmp_path: Path) -> None:
    store.create({"name": "good", "provider_type": "static", "priority": 5, "max_workers": 7})
    store.create({"name": "flaky", "provider_type": "static", "config": {"health": "Unhealthy",
                                                                           "health_reason": "socket refused"}})
    store.create({"name": "gone", "provider_type": "static"})
    config = tmp_path / "hodei.toml"
    config.write_text('[metrics]\nlisten = "127.0.0.1:0"\n[api]\nlisten = "127.0.0.1:0"\n', encoding="utf-8")
    exporter = InMemorySpanExporter()
    daemon = Daemon(settings(hodei_database_url), config_path=config, database_url=hodei_database_url,
                    telemetry=Telemetry(span_exporter=exporter))
    async with running(daemon):
        await wait_for(lambda: by_name(daemon, "flaky").status.value == "UNHEALTHY", what="flaky to turn UNHEALTHY")
        first = await scrape(daemon)
        assert first.value("hodei_provider_health", provider="good", provider_type="static") == 1.0
        assert first.value("hodei_provider_health", provider="flaky", provider_type="static") == 0.0
        assert first.value("hodei_provider_status", provider="flaky", status="UNHEALTHY") == 1.0
        assert first.value("hodei_provider_status", provider="flaky", status="ACTIVE") == 0.0
        assert first.value("hodei_provider_max_workers", provider="good") == 7.0
        assert first.value("hodei_provider_status_changes_total", provider="flaky", status="UNHEALTHY") == 1.0
        assert first.value("hodei_health_checks_total", provider="flaky", outcome="unhealthy") >= 2
        assert first.value("hodei_daemon_ready") == 1.0 and first.value("hodei_database_up") == 1.0
        assert first.value("hodei_provider_changes_total", change="added") == 3.0
        assert first.value("hodei_provider_consecutive_failures", provider="flaky") >= 2

        # Every event kind once: selections (one fits, one does not), a provision, a reconcile action,
        # a reload applied and one refused, gRPC calls.
        chain = daemon.chain
        chosen = daemon.selection.decide(chain.parse_requirements({}))
        assert chosen.selected.name == "good"
        nothing = daemon.selection.decide(chain.parse_requirements({"required_labels": {"team": "nobody"}}))
        assert nothing.selected is None
        daemon.telemetry.record_provision("good", "static", "succeeded", 0.42)
        daemon.telemetry.record_reconcile("orphan_removed")
        config.write_text('[metrics]\nlisten = "127.0.0.1:0"\n[api]\nlisten = "127.0.0.1:0"\n'
                          '[health]\ninterval_seconds = 0.25\n'
                          'timeout_seconds = 0.5\nunhealthy_after = 2\nhealthy_after = 2\n'
                          'max_backoff_seconds = 0.4\n', encoding="utf-8")
        assert await daemon.reload() == []
        config.write_text("[health]\ninterval_seconds = -1\n", encoding="utf-8")
        await daemon.reload()
        async with echo_server(daemon.telemetry) as target:
            assert await call(target, "/test.Echo/Say") == b"hello x"
        # The operator fixes flaky (in SQL) and deletes gone.
        run_sql(hodei_database_url, "UPDATE provider_configs SET config = :c WHERE name = 'flaky'",
            c='{"type": "static", "health": "Healthy"}')
        run_sql(hodei_database_url, "DELETE FROM provider_configs WHERE name = 'gone'")
        await wait_for(lambda: by_name(daemon, "flaky").status.value == "ACTIVE", what="flaky to be ACTIVE again")
        await wait_for(lambda: by_name(daemon, "gone") is None, what="gone to be gone")
        second = await scrape(daemon)

    # Every documented metric is there, with exactly its documented labels, and nothing else is.
    for spec in SPECS:
        assert spec.name in second.families, f"{spec.name} missing from the scrape"
        family = second.families[spec.name]
        assert family.type == spec.type, (spec.name, family.type)
        assert second.label_sets(spec.name) == {frozenset(spec.labels)}, (spec.name, second.label_sets(spec.name))
    assert {name for name in second.families if name.startswith("hodei_")} == {spec.name for spec in SPECS}
    # Besides Hodei's own, only the process's standard collectors (docs/metrics.md, "The process").
    assert {name.split("_")[0] for name in second.families} == {"hodei", "process", "python"}
    assert not [s for s in second.samples if s.name.endswith("_created")]

    # Values moved with the daemon's state and its events.
    assert second.value("hodei_provider_health", provider="flaky", provider_type="static") == 1.0
    assert second.value("hodei_provider_status", provider="flaky", status="ACTIVE") == 1.0
    assert second.value("hodei_provider_status_changes_total", provider="flaky", status="ACTIVE") == 1.0
    assert second.value("hodei_provider_consecutive_failures", provider="flaky") == 0.0
    assert not [s for s in second.samples if s.labels.get("provider") == "gone" and not s.name.endswith(
        ("_total", "_bucket", "_sum", "_count"))], "a deleted provider's state series must disappear"
    assert second.value("hodei_provider_changes_total", change="removed") == 1.0
    assert second.value("hodei_provider_changes_total", change="changed") >= 1.0
    assert second.value("hodei_provisions_total", provider="good", provider_type="static", outcome="succeeded") == 1
    assert second.value("hodei_provision_duration_seconds_sum", provider_type="static", outcome="succeeded") == 0.42
    assert second.value("hodei_reconcile_actions_total", action="orphan_removed") == 1.0
    assert second.value("hodei_selections_total", result="selected", tier="any") == 1.0
    assert second.value("hodei_selections_total", result="none", tier="none") == 1.0
    assert second.value("hodei_selection_duration_seconds_count", result="selected") == 1.0
    assert second.value("hodei_selection_rejections_total", filter="labels") == 3.0  # good, flaky, gone
    assert second.value("hodei_config_reloads_total", result="applied") == 1.0
    assert second.value("hodei_config_reloads_total", result="refused") == 1.0
    assert second.value("hodei_grpc_requests_total", method="/test.Echo/Say", code="OK") == 1.0
    assert second.value("hodei_health_checks_total", provider="good", outcome="healthy") >= 2

    # The spans of what happened, from the daemon's own tracer provider.
    spans = exporter.get_finished_spans()
    checks = [s for s in spans if s.name == "hodei.health_check" and s.attributes["hodei.provider"] == "flaky"]
    assert {s.attributes["hodei.outcome"] for s in checks} == {"unhealthy", "healthy"}
    failed = next(s for s in checks if s.attributes["hodei.outcome"] == "unhealthy")
    assert failed.status.status_code is StatusCode.ERROR and "socket refused" in failed.status.description
    assert failed.attributes["hodei.provider_type"] == "static"
    reloads = [s for s in spans if s.name == "hodei.config.reload"]
    assert [s.attributes["hodei.reload.result"] for s in reloads] == ["applied", "refused"]
    assert reloads[1].status.status_code is StatusCode.ERROR
    selections = [s for s in spans if s.name == "hodei.selection"]
    assert selections[0].attributes["hodei.provider"] == "good"
    assert selections[0].attributes["hodei.tier"] == "any"
    assert selections[0].attributes["hodei.candidates"] == 3
    assert selections[1].attributes["hodei.tier"] == "none" and "hodei.provider" not in selections[1].attributes


async def test_the_endpoint_speaks_http(tmp_path: Path) -> None:
    telemetry = Telemetry()
    endpoint = MetricsEndpoint(telemetry.registry, "127.0.0.1:0")
    async with anyio.create_task_group() as group:
        await group.start(endpoint.run)
        base = endpoint.url.removesuffix("/metrics")
        status, headers, body = await anyio.to_thread.run_sync(http_get, endpoint.url)
        assert status == 200 and b"hodei_selections_total" in body
        status, headers, body = await anyio.to_thread.run_sync(
            lambda: http_get(endpoint.url, {"Accept-Encoding": "gzip"}))
        assert headers["Content-Encoding"] == "gzip" and b"hodei_selections_total" in gzip.decompress(body)
        status, headers, body = await anyio.to_thread.run_sync(
            lambda: http_get(endpoint.url, {"Accept": "application/openmetrics-text; version=1.0.0"}))
        assert headers["Content-Type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
        assert (await anyio.to_thread.run_sync(http_get, base + "/nothing-here"))[0] == 404
        assert (await anyio.to_thread.run_sync(http_get, base + "/"))[0] == 200
        request = urllib.request.Request(endpoint.url, method="POST", data=b"x")
        assert (await anyio.to_thread.run_sync(lambda: http_get_request(request)))[0] == 405
        # A client that connects and sends nothing does not hold up the others.
        idle = await anyio.connect_tcp(*endpoint.address)
        assert (await anyio.to_thread.run_sync(http_get, endpoint.url))[0] == 200
        await idle.aclose()
        group.cancel_scope.cancel()


def http_get_request(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def test_a_busy_address_is_a_start_up_failure_naming_its_holder() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    endpoint = MetricsEndpoint(Telemetry().registry, f"127.0.0.1:{port}")
    try:
        with pytest.raises(StartupFailure) as raised:  # before it reports started: the daemon never gets ready
            await endpoint.run()
    finally:
        taken.close()
    assert endpoint.url is None
    assert f"cannot listen on 127.0.0.1:{port}" in str(raised.value)
    assert f"pid {os.getpid()}" in str(raised.value)


async def test_no_endpoint_when_listen_is_empty() -> None:
    endpoint = MetricsEndpoint(Telemetry().registry, "")
    with anyio.fail_after(2):
        async with anyio.create_task_group() as group:
            await group.start(endpoint.run)
    assert endpoint.url is None


# -- traces ---------------------------------------------------------------------------------------


def traced() -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Telemetry(span_exporter=exporter), exporter


def fleet_selector(*providers: dict[str, Any]) -> Any:
    from hodei.selection import Selector, build_chain
    from hodei.testing.selection import provider as make

    chain = build_chain(make_plugin_manager(enable=["static"]))
    return Selector(chain, [make(**p) for p in providers]), chain


def test_provision_spans_nest_attempts_and_record_metrics() -> None:
    telemetry, exporter = traced()
    with telemetry.provision_span({"hodei.worker_id": "w-1"}):
        with pytest.raises(TimeoutError), telemetry.attempt_span("slow", "docker", 1):
            raise TimeoutError("no answer")
        with telemetry.attempt_span("refusing", "docker", 2) as attempt:
            attempt.outcome = "failed"
        with telemetry.attempt_span("edge", "docker", 3):
            pass
    spans = {s.name + str(s.attributes.get("hodei.attempt", "")): s for s in exporter.get_finished_spans()}
    parent = spans["hodei.provision"]
    attempts = [spans[f"hodei.provision.attempt{i}"] for i in (1, 2, 3)]
    assert parent.attributes["hodei.worker_id"] == "w-1" and parent.parent is None
    for span in attempts:
        assert span.parent.span_id == parent.context.span_id
        assert span.context.trace_id == parent.context.trace_id
    assert [s.attributes["hodei.outcome"] for s in attempts] == ["timeout", "failed", "succeeded"]
    assert [s.attributes["hodei.provider"] for s in attempts] == ["slow", "refusing", "edge"]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert attempts[0].events[0].name == "exception"
    samples = {(s.labels["provider"], s.labels["outcome"]): s.value
               for s in telemetry.metrics.provisions.collect()[0].samples}
    assert samples == {("slow", "timeout"): 1.0, ("refusing", "failed"): 1.0, ("edge", "succeeded"): 1.0}


def test_selection_span_carries_the_choice_and_rejections_are_counted_by_filter() -> None:
    telemetry, exporter = traced()
    selector, chain = fleet_selector({"name": "a", "priority": 1}, {"name": "b", "priority": 9},
                                     {"name": "off", "status": "DISABLED"})
    selection = LocalSelection(lambda: selector, lambda: chain, telemetry)
    decision = selection.decide(chain.parse_requirements({"preferred_region": "eu"}))
    assert decision.selected.name == "b"
    selection.decide(chain.parse_requirements({"cpu": 64, "required_labels": {"x": "y"}}))
    first, second = exporter.get_finished_spans()
    assert dict(first.attributes) == {"hodei.candidates": 3, "hodei.tier": "any", "hodei.provider": "b",
                                      "hodei.provider_type": "static"}
    assert second.attributes["hodei.tier"] == "none"
    rejections = {s.labels["filter"]: s.value for s in telemetry.metrics.selection_rejections.collect()[0].samples}
    # Every provider misses the label; "off" is also not ACTIVE; resources are unknown, so cpu=64 fails all.
    assert rejections == {"status": 1.0, "labels": 3.0, "resources": 3.0}
    report = selector.report(chain.parse_requirements({"cpu": 64, "required_labels": {"x": "y"}}))
    from_report: dict[str, int] = {}
    for rejection in report.rejected:
        for name, _ in rejection.reasons:
            from_report[name] = from_report.get(name, 0) + 1
    assert from_report == rejections, "the fast count agrees with what `hodei select` explains"


async def test_a_trace_id_in_grpc_metadata_becomes_the_parent() -> None:
    telemetry, exporter = traced()
    selector, chain = fleet_selector({"name": "a"})
    stream = io.StringIO()
    handler = make_handler("json", stream)
    seen: list[Any] = []
    logger = logging.getLogger("hodei.test.grpc")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def inside() -> None:  # what a real handler does: select, and log
        seen.append(LocalSelection(lambda: selector, lambda: chain, telemetry).decide(chain.parse_requirements({})))
        logger.info("selected a provider")

    try:
        async with echo_server(telemetry, inside) as target:
            metadata = (("traceparent", TRACEPARENT), ("tracestate", "vendor=1"))
            assert await call(target, "/test.Echo/Say", metadata=metadata) == b"hello x"
            assert await call(target, "/test.Echo/Count", metadata=metadata) == [b"0", b"1", b"2"]
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call(target, "/test.Echo/Fail", metadata=metadata)
            assert failure.value.code() is grpc.StatusCode.INTERNAL
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await call(target, "/test.Echo/NoSuchMethod")
            assert unknown.value.code() is grpc.StatusCode.UNIMPLEMENTED
            assert await call(target, "/test.Echo/Say") == b"hello x"  # no metadata: a new trace
    finally:
        logger.removeHandler(handler)
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["test.Echo/Say", "test.Echo/Count", "test.Echo/Fail", "test.Echo/Say"]
    for span in servers[:3]:
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert span.parent is not None and span.parent.is_remote
        assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert servers[3].parent is None and format(servers[3].context.trace_id, "032x") != TRACE_ID
    assert dict(servers[0].attributes) == {"rpc.system": "grpc", "rpc.service": "test.Echo", "rpc.method": "Say",
                                           "rpc.grpc.status_code": 0}
    assert servers[2].attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert servers[2].status.status_code is StatusCode.ERROR
    # The selection made inside the handler is the server span's child, in the caller's trace.
    selection = next(s for s in spans if s.name == "hodei.selection")
    assert selection.parent.span_id == servers[0].context.span_id
    assert format(selection.context.trace_id, "032x") == TRACE_ID
    assert len(seen) == 1 + 3 + 1
    # And the handler's log line carries the caller's trace id.
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["trace_id"] == TRACE_ID and line["message"] == "selected a provider"
    assert line["span_id"] == format(servers[0].context.span_id, "016x")
    calls = {(s.labels["method"], s.labels["code"]): s.value
             for s in telemetry.metrics.grpc_requests.collect()[0].samples}
    assert calls == {("/test.Echo/Say", "OK"): 2.0, ("/test.Echo/Count", "OK"): 1.0,
                     ("/test.Echo/Fail", "INTERNAL"): 1.0, ("unknown", "UNIMPLEMENTED"): 1.0}


async def test_tracing_off_records_nothing_but_keeps_the_callers_trace_id() -> None:
    telemetry = Telemetry(TracingSettings(exporter="off"))
    ids: list[str] = []

    def inside() -> None:
        from hodei.observability.logs import current_trace_ids

        ids.append(current_trace_ids()[0])

    async with echo_server(telemetry, inside) as target:
        await call(target, "/test.Echo/Say", metadata=(("traceparent", TRACEPARENT),))
    assert ids == [TRACE_ID]
    with telemetry.provision_span() as span:
        assert not span.is_recording()


def test_console_exporter_writes_one_json_span_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = Telemetry(TracingSettings(exporter="console", service_name="hodei-test"))
    with telemetry.provision_span({"hodei.worker_id": "w-9"}), telemetry.attempt_span("edge", "docker"):
        pass
    telemetry.shutdown()
    lines = capsys.readouterr().out.splitlines()
    spans = [json.loads(line) for line in lines]
    assert [s["name"] for s in spans] == ["hodei.provision.attempt", "hodei.provision"]
    assert spans[0]["resource"]["attributes"]["service.name"] == "hodei-test"


def test_otlp_exporter_is_built_from_the_settings() -> None:
    telemetry = Telemetry(TracingSettings(exporter="otlp", otlp_endpoint="http://127.0.0.1:1",
                                          otlp_timeout_seconds=0.2))
    processor = telemetry.tracer_provider._active_span_processor._span_processors[0]
    assert type(processor).__name__ == "BatchSpanProcessor"
    telemetry.shutdown()  # nothing buffered: returns at once, unreachable collector or not


# -- logs -----------------------------------------------------------------------------------------


def test_json_log_lines() -> None:
    telemetry, _ = traced()
    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger("hodei.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.warning("provider %r is %s", "edge", "Unhealthy")
        with telemetry.provision_span() as span:
            logger.info("inside", extra={"attempts": 2})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    plain, inside, failed = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert set(plain) == {"time", "level", "logger", "message"}
    assert plain["message"] == "provider 'edge' is Unhealthy" and plain["level"] == "WARNING"
    assert plain["logger"] == "hodei.test.json" and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", plain["time"])
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert inside["attempts"] == 2
    assert "Traceback" in failed["exception"] and "ValueError: boom" in failed["exception"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "name": "hodei"})
    assert make_handler("auto", Terminal()).format(record) == "INFO hodei: hello"
    assert json.loads(make_handler("auto", io.StringIO()).format(record))["message"] == "hello"
    assert make_handler("text", io.StringIO()).format(record) == "INFO hodei: hello"
    assert isinstance(make_handler("json", Terminal()).formatter, JsonFormatter)
    root = logging.getLogger()
    ours = make_handler("json", io.StringIO())
    root.addHandler(ours)
    try:
        set_format("text")
        assert ours.format(record) == "INFO hodei: hello"
    finally:
        root.removeHandler(ours)


# -- settings, labels, docs and the dashboard -------------------------------------------------------


@pytest.mark.parametrize("value, problem", [
    (True, "HOST:PORT"), ("9464", "HOST:PORT"), ("127.0.0.1:70000", "at most 65535"), (9464, "string"),
])
def test_metrics_listen_is_checked(value: Any, problem: str) -> None:
    from hodei.errors import InvalidInput
    from pydantic import ValidationError

    with pytest.raises((ValidationError, InvalidInput)) as error:
        Settings.model_validate({"metrics": {"listen": value}})
    assert problem in str(error.value)


def test_metrics_listen_accepts_addresses_and_off() -> None:
    for value, expected in (("[::1]:9464", "[::1]:9464"), ("localhost:0", "localhost:0"), ("", ""), (False, "")):
        assert Settings.model_validate({"metrics": {"listen": value}}).metrics.listen == expected


def test_the_shipped_config_lists_every_new_setting() -> None:
    import tomllib

    shipped = tomllib.loads((ROOT / "config" / "hodei.toml").read_text(encoding="utf-8"))
    defaults = Settings()
    for section in ("metrics", "tracing", "logging"):
        assert shipped[section] == getattr(defaults, section).model_dump(mode="json"), section


def test_label_values_stay_bounded(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    metrics.record_provision("edge", "docker", "worker 0b7c1 exploded", 1.0)
    metrics.record_reconcile("Removed worker 0b7c1")
    metrics.record_reconcile("orphan_removed", 3)
    assert {s.labels["outcome"] for s in metrics.provisions.collect()[0].samples} == {"other"}
    assert {s.labels["action"]: s.value for s in metrics.reconcile_actions.collect()[0].samples} == {
        "other": 1.0, "orphan_removed": 3.0}
    assert "counted as 'other'" in caplog.text


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The table of docs/metrics.md: name -> (type, labels)."""
    table = {}
    for line in (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `(hodei_[a-z_]+)` \| (gauge|counter|histogram) \| ([^|]+) \|", line)
        if match:
            labels = tuple(re.findall(r"`([a-z_]+)`", match[3]))
            table[match[1]] = (match[2], labels)
    return table


def test_docs_document_exactly_the_metrics() -> None:
    assert documented() == {spec.name: (spec.type, spec.labels) for spec in SPECS}


def test_the_grafana_dashboard_uses_only_documented_metrics() -> None:
    dashboard = json.loads((ROOT / "contrib" / "grafana" / "hodei-dashboard.json").read_text(encoding="utf-8"))
    names = set()
    for spec in SPECS:
        names.add(spec.name)
        if spec.type == "histogram":
            names |= {spec.name + suffix for suffix in ("_bucket", "_sum", "_count")}
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    assert len(exprs) >= 20
    used = {name for expr in exprs for name in re.findall(r"\bhodei_[a-z_]+", expr)}
    assert used <= names, used - names
    panels_with_metrics = {name.removesuffix("_bucket") for name in used}
    assert len(panels_with_metrics & {spec.name for spec in SPECS}) >= 20, "the dashboard shows most metrics"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# -- `hodei serve` as a process ----------------------------------------------------------------------


def test_hodei_serve_logs_json_lines_and_serves_metrics(tmp_path: Path) -> None:
    import queue
    import signal
    import subprocess
    import sys
    import threading
    import time

    url = f"sqlite:///{tmp_path / 'hodei.db'}"
    engine = database.create_engine(url)
    database.upgrade(engine)
    seeded = Store(engine, make_plugin_manager(enable=["static"]))
    seeded.create({"name": "edge", "provider_type": "static"})
    seeded.close()
    (tmp_path / "hodei.toml").write_text(
        f'[database]\nurl = "{url}"\n[health]\ninterval_seconds = 0.2\n[daemon]\npoll_seconds = 0.1\n'
        '[metrics]\nlisten = "127.0.0.1:0"\n[api]\nlisten = "127.0.0.1:0"\n', encoding="utf-8")
    env = clean_environment()
    env["HODEI_CONFIG"] = str(tmp_path / "hodei.toml")
    daemon = subprocess.Popen([sys.executable, "-m", "hodei", "serve"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in daemon.stderr], daemon=True)
    reader.start()
    seen: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 30
        metrics_url = None
        while metrics_url is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(json.loads(line))  # not a terminal: every line is one JSON object
            found = re.search(r"metrics endpoint listening on (\S+)", seen[-1]["message"])
            metrics_url = found[1] if found else None
        scraped = None
        while time.monotonic() < deadline:
            scraped = Scrape(http_get(metrics_url)[2].decode())
            if scraped.value("hodei_provider_health", provider="edge", provider_type="static") == 1.0:
                break
            time.sleep(0.1)
        assert scraped.value("hodei_provider_health", provider="edge", provider_type="static") == 1.0
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    reader.join(5)
    while not lines.empty():
        seen.append(json.loads(lines.get()))
    messages = [line["message"] for line in seen]
    assert any(m.startswith("listening on metrics endpoint http://127.0.0.1:") for m in messages), messages
    assert "stopped" in messages
    assert {"time", "level", "logger", "message"} <= set(seen[0])


async def test_method_labels_stay_bounded() -> None:
    telemetry, _ = traced()
    interceptor = telemetry.grpc_interceptor(["/test.Echo/Say"])
    server = grpc.aio.server(interceptors=[interceptor])
    server.add_generic_rpc_handlers((Echo(),))
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    try:
        await call(target, "/test.Echo/Say")
        await call(target, "/test.Echo/Count")  # implemented, but not in the list given
    finally:
        await server.stop(None)
    calls = {(s.labels["method"], s.labels["code"]): s.value
             for s in telemetry.metrics.grpc_requests.collect()[0].samples}
    assert calls == {("/test.Echo/Say", "OK"): 1.0, ("unknown", "OK"): 1.0}

    from hodei.observability.grpc import MAX_METHODS, TelemetryInterceptor

    unlisted = TelemetryInterceptor(telemetry)
    labels = [unlisted._label(f"/junk.S/M{i}") for i in range(MAX_METHODS + 5)]
    assert labels[:MAX_METHODS] == [f"/junk.S/M{i}" for i in range(MAX_METHODS)]
    assert set(labels[MAX_METHODS:]) == {"unknown"} and unlisted._label("/junk.S/M0") == "/junk.S/M0"
