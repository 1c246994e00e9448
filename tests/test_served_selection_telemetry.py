"""A selection through the API of a real ``hodei serve`` is counted and traced like any other.

The daemon runs as a process with its metrics endpoint on and ``[tracing] exporter = "otlp"``
pointed at a small OTLP/gRPC trace collector run by this test. ``Select`` calls (through
``hodei --server ADDR select`` and through the gRPC stub), one that finds a provider and one that
finds none, must move ``hodei_selections_total`` (with the result and tier), the duration
histogram, and ``hodei_selection_rejections_total`` (by the rejecting filter) on ``/metrics``, and
send exactly one ``hodei.selection`` span per call, carrying the tier and the chosen provider.
Provisioning through the API counts (and traces) one selection.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from google.protobuf import json_format, struct_pb2
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.api.v1 import workers_pb2 as wpb
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
from hodei.cli import main
from hodei.testing.serve import Served, clean_environment, hodei_command, serve
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

SELECT_METHOD = "hodei.api.v1.SelectionService/Select"
PROVISION_METHOD = "hodei.api.v1.WorkerService/ProvisionWorker"
FITS = {"preferred_region": "eu-west-1", "required_labels": {"pool": "blue"}}  # edge, tier preferred
NOTHING_FITS = {"required_labels": {"team": "nobody"}}  # both providers fail the labels filter
PROVIDERS = 2


# -- an OTLP/gRPC trace collector ------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any] = field(hash=False)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Receives what the daemon's OTLP exporter sends, span by span."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(ReceivedSpan(
                            span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in span.attributes}))
        return trace_service_pb2.ExportTraceServiceResponse()

    def received(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], what: str,
                 seconds: float = 20.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + seconds
        while not predicate(spans := self.received()):
            if time.monotonic() > deadline:
                names = sorted({s.name for s in spans})
                raise AssertionError(f"timed out after {seconds}s waiting for {what}; span names received: {names}")
            time.sleep(0.05)
        return spans


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, int]]:
    sink = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield sink, port
    server.stop(None)


# -- the daemon ------------------------------------------------------------------------------------


def hodei_in_process(config: Path, *args: str) -> None:
    env = {"HODEI_CONFIG": str(config), "HODEI_DATABASE_URL": None, "HODEI_SERVER": None}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"hodei {' '.join(args)}: {result.stderr}"


@dataclass
class World:
    daemon: Served
    collector: Collector
    folder: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The installed ``hodei`` command, through the daemon's API."""
        # The database URL leads nowhere: only the API can answer.
        nowhere = f"sqlite:///{self.folder / 'no-such-folder' / 'hodei.db'}"
        done = subprocess.run([*hodei_command(), "--server", str(self.daemon.address), *args], cwd=self.folder,
                              env=clean_environment(HODEI_DATABASE_URL=nowhere), capture_output=True, text=True,
                              timeout=120)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        assert self.daemon.metrics_url is not None
        with urllib.request.urlopen(self.daemon.metrics_url, timeout=10) as response:
            text = response.read().decode()
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, collector: tuple[Collector, int]) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("telemetry")
    sink, port = collector
    config = folder / "hodei.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{folder / "hodei.db"}"\n'
        '[plugins]\nallow = ["static"]\n'
        '[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
        f'[tracing]\nexporter = "otlp"\notlp_endpoint = "http://127.0.0.1:{port}"\notlp_timeout_seconds = 5.0\n'
        '[health]\ninterval_seconds = 3600.0\n[workers]\nreconcile_seconds = 3600.0\n'
        '[daemon]\npoll_seconds = 0.1\nshutdown_grace_seconds = 1.0\n', encoding="utf-8")
    hodei_in_process(config, "db", "upgrade")
    hodei_in_process(config, "providers", "add", "edge", "--type", "static", "--priority", "10", "--max-workers",
                     "50", "--preferred-region", "eu-west-1", "--label", "pool=blue")
    hodei_in_process(config, "providers", "add", "spare", "--type", "static", "--label", "pool=green")
    for name, content in (("fits.json", FITS), ("none.json", NOTHING_FITS)):
        (folder / name).write_text(json.dumps(content), encoding="utf-8")
    # Batches of spans leave every 100 ms rather than every 5 s (the OpenTelemetry SDK's own variable).
    with serve(config, metrics=True, env={"OTEL_BSP_SCHEDULE_DELAY": "100"}) as served:
        yield World(served, sink, folder)


Series = tuple[str, tuple[tuple[str, str], ...]]


def assert_moved(before: dict, after: dict, expected: dict[Series, float], what: str) -> None:
    """Each series in ``expected`` moved by exactly that much between the two scrapes."""
    def series(key: Series) -> str:
        return f"{key[0]}{{{', '.join(f'{k}={v!r}' for k, v in key[1])}}}"
    actual = {key: after.get((key[0], frozenset(key[1])), 0.0) - before.get((key[0], frozenset(key[1])), 0.0)
              for key in expected}
    wrong = [f"  {series(key)} moved by {actual[key]:g}, expected {value:g}"
             for key, value in expected.items() if actual[key] != value]
    assert not wrong, f"after {what}:\n" + "\n".join(wrong)


def selected(tier: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return "hodei_selections_total", (("result", "selected"), ("tier", tier))


NONE = ("hodei_selections_total", (("result", "none"), ("tier", "none")))
SELECTED_DURATION = ("hodei_selection_duration_seconds_count", (("result", "selected"),))
NONE_DURATION = ("hodei_selection_duration_seconds_count", (("result", "none"),))
LABELS_REJECTIONS = ("hodei_selection_rejections_total", (("filter", "labels"),))


def requirements(document: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(document, struct_pb2.Struct())


def traced_call(method: Callable[..., Any], request: Any) -> tuple[str, Any]:
    """Call ``method`` with a fresh W3C trace context in its metadata: (the trace id, the answer or the error)."""
    trace_id = secrets.token_hex(16)
    metadata = (("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),)
    try:
        return trace_id, method(request, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        return trace_id, error


# -- selection -------------------------------------------------------------------------------------


def test_select_through_the_api_moves_the_selection_metrics(world: World) -> None:
    before = world.scrape()
    fits = world.cli("select", "-r", "fits.json")
    assert fits.returncode == 0 and "edge" in fits.stdout, fits.stdout + fits.stderr
    none = world.cli("select", "-r", "none.json")
    assert none.returncode == 3, none.stdout + none.stderr
    with grpc.insecure_channel(str(world.daemon.address)) as channel:
        stub = spb_grpc.SelectionServiceStub(channel)
        assert stub.Select(spb.SelectRequest(requirements=requirements(FITS)), timeout=30).selected == "edge"
        with pytest.raises(grpc.RpcError) as nothing:
            stub.Select(spb.SelectRequest(requirements=requirements(NOTHING_FITS)), timeout=30)
        assert nothing.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    after = world.scrape()
    # Two calls found edge in the preferred tier, two found nothing: each of those rejected by labels.
    expected = {selected("preferred"): 2.0, NONE: 2.0, SELECTED_DURATION: 2.0, NONE_DURATION: 2.0,
                LABELS_REJECTIONS: 2.0 * PROVIDERS}
    assert_moved(before, after, expected, "4 Select calls through the API (2 found edge, 2 found nothing)")


def test_each_select_call_sends_exactly_one_selection_span(world: World) -> None:
    with grpc.insecure_channel(str(world.daemon.address)) as channel:
        stub = spb_grpc.SelectionServiceStub(channel)
        fits_trace, answer = traced_call(stub.Select, spb.SelectRequest(requirements=requirements(FITS)))
        assert not isinstance(answer, grpc.RpcError) and answer.selected == "edge", answer
        none_trace, error = traced_call(stub.Select, spb.SelectRequest(requirements=requirements(NOTHING_FITS)))
        assert isinstance(error, grpc.RpcError) and error.code() is grpc.StatusCode.FAILED_PRECONDITION
    traces = {fits_trace, none_trace}
    # The server spans arrive (the exporter and the collector work); a selection span ends before its
    # request's span does, so it has arrived by then too.
    spans = world.collector.wait_for(
        lambda got: traces <= {s.trace_id for s in got if s.name == SELECT_METHOD}, "the Select calls' server spans")
    selections = {trace: [s for s in spans if s.name == "hodei.selection" and s.trace_id == trace] for trace in traces}
    counts = {"found edge": len(selections[fits_trace]), "found nothing": len(selections[none_trace])}
    assert counts == {"found edge": 1, "found nothing": 1}, f"hodei.selection spans per Select call: {counts}"
    chosen = selections[fits_trace][0].attributes
    assert (chosen.get("hodei.tier"), chosen.get("hodei.provider")) == ("preferred", "edge"), chosen
    nothing = selections[none_trace][0].attributes
    assert nothing.get("hodei.tier") == "none" and "hodei.provider" not in nothing, nothing


# -- provisioning ----------------------------------------------------------------------------------


def test_provisioning_through_the_api_counts_one_selection(world: World) -> None:
    before = world.scrape()
    done = world.cli("workers", "provision", "-r", "fits.json", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["provider"] == "edge"
    after = world.scrape()
    expected = {selected("preferred"): 1.0, selected("allowed"): 0.0, selected("any"): 0.0, NONE: 0.0,
                SELECTED_DURATION: 1.0, NONE_DURATION: 0.0}
    assert_moved(before, after, expected, "one provisioning through the API")


def test_provisioning_through_the_api_sends_one_selection_span(world: World) -> None:
    with grpc.insecure_channel(str(world.daemon.address)) as channel:
        stub = wpb_grpc.WorkerServiceStub(channel)
        trace, worker = traced_call(stub.ProvisionWorker, wpb.ProvisionWorkerRequest(requirements=requirements(FITS)))
        assert not isinstance(worker, grpc.RpcError) and worker.provider == "edge", worker
    spans = world.collector.wait_for(
        lambda got: any(s.name == PROVISION_METHOD and s.trace_id == trace for s in got),
        "the ProvisionWorker call's server span")
    in_trace = [s for s in spans if s.trace_id == trace]
    assert [s.name for s in in_trace if s.name == "hodei.provision"] == ["hodei.provision"]
    selections = [s for s in in_trace if s.name == "hodei.selection"]
    assert len(selections) == 1, f"hodei.selection spans in the provisioning's trace: {[s.name for s in in_trace]}"
    assert (selections[0].attributes.get("hodei.tier"), selections[0].attributes.get("hodei.provider")) == \
        ("preferred", "edge"), selections[0].attributes
