"""The daemon's ``TracerProvider``, built from ``[tracing]`` in hodei.toml.

``exporter = "off"`` (the default) still creates spans, but never records or exports them
(``ALWAYS_OFF`` sampling): they cost next to nothing, and they carry the trace id of a caller that
sent one, so the log lines of its request still share its trace id. ``console`` writes one JSON
span per line on standard output; ``otlp`` sends batches to an OpenTelemetry collector over gRPC.
The OTLP exporter's headers (an API key, say) come from ``OTEL_EXPORTER_OTLP_HEADERS``, never from
hodei.toml, so they stay out of the configuration and of ``hodei config show``.
"""

from __future__ import annotations

import sys
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased


def destination(settings: Any = None) -> str:
    """Where spans go, for the daemon's start-up log: ``exporter`` and, for OTLP, the collector."""
    from hodei.redaction import scrub

    exporter = getattr(settings, "exporter", "off")
    if exporter == "otlp":
        return (f"traces exported over OTLP/gRPC to {scrub(settings.otlp_endpoint)} "
                f"(sample ratio {settings.sample_ratio:g})")
    if exporter == "console":
        return f"traces written to standard output (sample ratio {settings.sample_ratio:g})"
    return "tracing is off ([tracing] exporter = \"off\"): no spans are exported"


def build_tracer_provider(settings: Any = None, span_exporter: SpanExporter | None = None) -> TracerProvider:
    """A provider for ``settings`` (a ``TracingSettings``, or ``None`` for off).

    ``span_exporter`` (tests: an ``InMemorySpanExporter``) replaces the configured exporter: every
    span is recorded and handed to it synchronously as it ends.
    """
    from hodei import __version__

    exporter = getattr(settings, "exporter", "off")
    name = getattr(settings, "service_name", "hodei")
    resource = Resource.create({"service.name": name, "service.version": __version__})
    if span_exporter is not None:
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        return provider
    if exporter == "off":
        return TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    sampler = ParentBased(TraceIdRatioBased(float(getattr(settings, "sample_ratio", 1.0))))
    provider = TracerProvider(resource=resource, sampler=sampler)
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        console = ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
        provider.add_span_processor(SimpleSpanProcessor(console))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint
        otlp = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"),
                                timeout=settings.otlp_timeout_seconds)
        provider.add_span_processor(BatchSpanProcessor(otlp))
    else:  # the settings model refuses anything else
        raise ValueError(f"unknown tracing exporter {exporter!r}")
    return provider
