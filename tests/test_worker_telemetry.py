"""What a worker's life leaves in traces and logs: the ``hodei.provision`` span names the worker that runs,
each attempt the worker it tried, a release has its own ``hodei.release`` span and an INFO line, and the
daemon says at start where its traces go."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hodei import database
from hodei.observability import Telemetry
from hodei.observability.tracing import destination
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.services.local import on_database
from hodei.settings import TracingSettings, WorkerSettings
from hodei.store import Store
from hodei.testing.serve import clean_environment, hodei_command, serve
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def traced(hodei_database_url: str) -> Iterator[tuple[Any, Store, InMemorySpanExporter]]:
    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    pm = make_plugin_manager(enable=["static"])
    store = Store(engine, pm)
    chain = build_chain(pm)
    services = on_database(store, chain, WorkerSettings.model_validate({"provision_timeout_seconds": 1.0}))
    exporter = InMemorySpanExporter()
    services.provisioner.telemetry = Telemetry(span_exporter=exporter)
    yield services.provisioner, store, exporter
    store.close()


async def test_the_provision_span_names_the_worker_and_a_release_has_its_own(
        traced: tuple[Any, Store, InMemorySpanExporter], caplog: pytest.LogCaptureFixture) -> None:
    provisioner, store, exporter = traced
    store.create({"name": "broken", "provider_type": "static", "priority": 10, "config": {"fail_provision": "backend refused"}})
    store.create({"name": "Lambda us-east-1", "provider_type": "static"})
    caplog.set_level(logging.INFO, logger="hodei")
    result = await provisioner.provision(build_chain(provisioner.pm).parse_requirements({}))
    worker = result.worker
    spans = {span.name: span for span in exporter.get_finished_spans()}
    provision = spans["hodei.provision"]
    assert provision.attributes["hodei.worker_id"] == worker.id
    attempts = [s for s in exporter.get_finished_spans() if s.name == "hodei.provision.attempt"]
    assert [(a.attributes["hodei.provider"], a.attributes["hodei.outcome"]) for a in attempts] == [
        ("broken", "failed"), ("Lambda us-east-1", "succeeded")]
    # Each try is a worker of its own: the failed one's id is not the one that runs.
    assert attempts[1].attributes["hodei.worker_id"] == worker.id
    assert attempts[0].attributes["hodei.worker_id"] not in ("", worker.id)
    assert all(a.parent is not None and a.parent.span_id == provision.context.span_id for a in attempts)

    exporter.clear()
    caplog.clear()
    await provisioner.release(worker.id)
    [release] = exporter.get_finished_spans()
    assert release.name == "hodei.release"
    assert dict(release.attributes) == {"hodei.worker_id": worker.id, "hodei.provider": "Lambda us-east-1",
                                        "hodei.outcome": "terminated"}
    released = [r for r in caplog.records if r.levelno == logging.INFO and worker.id in r.getMessage()]
    assert [r.getMessage() for r in released] == [
        f"worker {worker.id} released from 'Lambda us-east-1' ({worker.backend_id}): TERMINATED"]

    # Releasing again changes nothing, and says so at INFO, in a span of its own.
    exporter.clear()
    caplog.clear()
    await provisioner.release(worker.id)
    [again] = exporter.get_finished_spans()
    assert (again.name, again.attributes["hodei.outcome"]) == ("hodei.release", "terminated")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        f"worker {worker.id} on 'Lambda us-east-1' had already ended (TERMINATED); nothing to release"]


def test_where_traces_go_is_said_in_words() -> None:
    assert destination(None) == 'tracing is off ([tracing] exporter = "off"): no spans are exported'
    otlp = TracingSettings.model_validate({"exporter": "otlp", "otlp_endpoint": "https://otel.internal:4317",
                                           "sample_ratio": 0.25})
    assert destination(otlp) == "traces exported over OTLP/gRPC to https://otel.internal:4317 (sample ratio 0.25)"
    secret = TracingSettings.model_validate({"exporter": "otlp", "otlp_endpoint": "https://u:hunter2@otel:4317"})
    assert "hunter2" not in destination(secret)
    console = TracingSettings.model_validate({"exporter": "console"})
    assert destination(console) == "traces written to standard output (sample ratio 1)"


@pytest.mark.parametrize(("section", "line"), [
    ("", 'tracing is off ([tracing] exporter = "off"): no spans are exported'),
    ('[tracing]\nexporter = "otlp"\notlp_endpoint = "http://127.0.0.1:9"\n',
     "traces exported over OTLP/gRPC to http://127.0.0.1:9 (sample ratio 1)"),
], ids=["off", "otlp"])
def test_the_daemon_logs_where_its_traces_go_at_start(tmp_path: Path, section: str, line: str) -> None:
    config = tmp_path / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///hodei.db"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = ""\n[logging]\nformat = "text"\n' + section, encoding="utf-8")
    subprocess.run([*hodei_command(), "--config", str(config), "db", "upgrade"], check=True, capture_output=True,
                   env=clean_environment(), timeout=60)
    with serve(config) as served:
        log = served.log()
    assert line in log
    assert log.index(line) < log.index("ready")
