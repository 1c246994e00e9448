"""The daemon's telemetry: one object holding its metrics, its tracer, and the helpers that use both.

Spans (names and attributes are part of the documented interface, see ``docs/metrics.md``):

``hodei.selection``
    ``hodei.provider``, ``hodei.provider_type`` (when one was chosen), ``hodei.tier`` (preferred,
    allowed, any, none), ``hodei.candidates`` (providers considered), ``hodei.warnings``.
``hodei.health_check``
    ``hodei.provider``, ``hodei.provider_type``, ``hodei.outcome`` (healthy, degraded, unhealthy);
    status ERROR with the reason when unhealthy.
``hodei.config.reload``
    ``hodei.reload.result`` (applied, refused), ``hodei.reload.restart_needed``.
``hodei.provision`` and one child ``hodei.provision.attempt`` per provider tried
    the provision: ``hodei.worker_id`` of the worker that runs; the attempt: ``hodei.provider``,
    ``hodei.provider_type``, ``hodei.attempt``, ``hodei.outcome``, ``hodei.worker_id`` (each try is a new worker).
``hodei.release``
    ``hodei.worker_id``, ``hodei.provider``, ``hodei.outcome`` (the worker's state after: terminated, failed).
``/package.Service/Method`` (kind SERVER, from :meth:`Telemetry.grpc_interceptor`)
    ``rpc.system``, ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code``.

Usage from the workers code (sketch)::

    with telemetry.provision_span({"hodei.worker_id": worker_id}) as span:
        candidates, _ = selection.candidates(job, limit)     # recorded through telemetry.record_selection
        for number, candidate in enumerate(candidates, 1):
            with telemetry.attempt_span(candidate.name, candidate.provider.provider_type, number) as attempt:
                handle = await provision(...)      # raises: failed / timeout / cancelled, recorded
                if refused: attempt.outcome = "failed"

Attributes on spans may carry ids (a worker id is fine in a trace); metrics labels never do.
Nothing from a provider's ``config`` and no token goes in either.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue
from prometheus_client import CollectorRegistry

from hodei.checks import CheckResult
from hodei.domain import HealthStatus, Provider, ProviderStatus
from hodei.observability.metrics import DaemonCollector, Metrics
from hodei.observability.tracing import build_tracer_provider
from hodei.selection.outcome import SelectionOutcome

log = logging.getLogger(__name__)


@dataclass
class ProvisionAttempt:
    """What :meth:`Telemetry.attempt_span` yields. Set ``outcome`` to override the one worked out."""

    provider: str
    provider_type: str
    number: int
    span: Span
    outcome: str | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


def _outcome_of(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
        return "cancelled"
    return "failed"


class Telemetry:
    """Metrics (``metrics``, ``registry``) and traces (``tracer_provider``, ``tracer``) of one daemon.

    :param tracing: ``TracingSettings`` (``None``: tracing off).
    :param span_exporter: tests: receives every span (``InMemorySpanExporter``), whatever ``tracing`` says.
    :param registry: the Prometheus registry to use; a new one by default (never the global one).
    """

    def __init__(self, tracing: Any = None, *, span_exporter: Any = None, registry: CollectorRegistry | None = None):
        from hodei import __version__

        self.metrics = Metrics(registry)
        self.registry = self.metrics.registry
        self.tracer_provider = build_tracer_provider(tracing, span_exporter)
        self.tracer: Tracer = self.tracer_provider.get_tracer("hodei", __version__)
        self._collector: DaemonCollector | None = None

    def watch(self, fleet: Any, database_up: Callable[[], bool], ready: Callable[[], bool],
              membership: Any = None) -> None:
        """Expose a daemon's state (its fleet, whether the database answers, whether it is ready, its
        share among the replicas) as the scrape-time gauges."""
        if self._collector is not None:
            self.registry.unregister(self._collector)
        self._collector = DaemonCollector(fleet, database_up, ready, membership)
        self.registry.register(self._collector)

    def shutdown(self) -> None:
        """Export what is still buffered and stop the exporters."""
        try:
            self.tracer_provider.shutdown()
        except Exception as exc:  # an unreachable collector must not turn a clean stop into a crash
            log.warning("tracing: shutting the exporter down failed: %s", exc)

    # -- selection ----------------------------------------------------------------------------

    def record_selection(self, outcome: SelectionOutcome) -> None:
        """One served selection: span ``hodei.selection`` (under the caller's span) and ``hodei_selection_*``."""
        attributes: dict[str, AttributeValue] = {"hodei.candidates": outcome.candidates,
                                                 "hodei.tier": outcome.tier or "none"}
        if outcome.provider is not None:
            attributes["hodei.provider"] = outcome.provider
            attributes["hodei.provider_type"] = outcome.provider_type or ""
        if outcome.warnings:
            attributes["hodei.warnings"] = list(outcome.warnings)
        span = self.tracer.start_span("hodei.selection", attributes=attributes, start_time=outcome.started_ns)
        span.end(end_time=outcome.started_ns + int(outcome.seconds * 1e9))
        self.metrics.observe_selection(outcome.tier if outcome.provider is not None else None, outcome.seconds)
        if outcome.provider is None:
            self.metrics.count_rejections(outcome.rejections)

    # -- health -------------------------------------------------------------------------------

    @contextmanager
    def health_check_span(self, provider: Provider) -> Iterator[Span]:
        attributes = {"hodei.provider": provider.name, "hodei.provider_type": provider.provider_type}
        with self.tracer.start_as_current_span("hodei.health_check", attributes=attributes) as span:
            yield span

    def record_health_check(self, result: CheckResult, span: Span | None = None) -> None:
        """Count one check and note its outcome on ``span`` (default: the current span)."""
        from opentelemetry import trace

        provider, health = result.provider, result.health
        self.metrics.observe_health_check(provider.name, provider.provider_type, health.status,
                                          health.duration_seconds)
        span = span if span is not None else trace.get_current_span()
        if span.is_recording():
            span.set_attribute("hodei.outcome", health.status.value.lower())
            if health.status is HealthStatus.UNHEALTHY:
                span.set_status(Status(StatusCode.ERROR, health.reason[:500]))

    def status_changed(self, provider: Provider, status: ProviderStatus) -> None:
        self.metrics.status_changed(provider.name, provider.provider_type, status)

    # -- configuration ------------------------------------------------------------------------

    def fleet_changed(self, changes: Any) -> None:
        self.metrics.record_fleet_changes(changes)

    # -- workers ------------------------------------------------------------------------------

    @contextmanager
    def provision_span(self, attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[Span]:
        """Span ``hodei.provision`` around one job's provisioning; attempts inside it are its children."""
        with self.tracer.start_as_current_span("hodei.provision", attributes=dict(attributes or {})) as span:
            yield span

    @contextmanager
    def wait_span(self, request_id: str, priority: int) -> Iterator[Span]:
        """Span ``hodei.queue.wait`` around one request's wait in the placement queue (its outcome is set on
        it when it ends); the provisions tried meanwhile are its children."""
        with self.tracer.start_as_current_span("hodei.queue.wait", attributes={
                "hodei.request_id": request_id, "hodei.priority": priority}) as span:
            yield span

    def queue_moved(self, reason: str, change: int) -> None:
        self.metrics.queue_moved(reason, change)

    def queue_left(self, outcome: str, seconds: float) -> None:
        self.metrics.queue_left(outcome, seconds)

    @contextmanager
    def release_span(self, worker_id: str) -> Iterator[Span]:
        """Span ``hodei.release`` around one worker's release (its provider and outcome are set on it)."""
        with self.tracer.start_as_current_span("hodei.release", attributes={"hodei.worker_id": worker_id}) as span:
            yield span

    @contextmanager
    def attempt_span(self, provider: str, provider_type: str, attempt: int = 1,
                     attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[ProvisionAttempt]:
        """Span ``hodei.provision.attempt`` for one try on ``provider``; records the provision metrics.

        The outcome is ``attempt.outcome`` if the caller set it, else from the exception leaving the
        block (TimeoutError: timeout, cancellation: cancelled, any other: failed), else succeeded.
        """
        names: dict[str, AttributeValue] = {"hodei.provider": provider, "hodei.provider_type": provider_type,
                                            "hodei.attempt": attempt}
        started = time.perf_counter()
        with self.tracer.start_as_current_span("hodei.provision.attempt",
                                               attributes={**names, **(attributes or {})}) as span:
            record = ProvisionAttempt(provider, provider_type, attempt, span)
            failed = False
            try:
                yield record
            except BaseException as exc:
                failed = True
                if record.outcome is None:
                    record.outcome = _outcome_of(exc)
                raise
            finally:
                outcome = record.outcome or "succeeded"
                if span.is_recording():
                    span.set_attribute("hodei.outcome", outcome)
                    if outcome != "succeeded" and not failed:
                        span.set_status(Status(StatusCode.ERROR, outcome))
                self.metrics.record_provision(provider, provider_type, outcome, time.perf_counter() - started)

    def record_provision(self, provider: str, provider_type: str, outcome: str, seconds: float) -> None:
        """The provision metrics without a span (do not also use :meth:`attempt_span` for the same try)."""
        self.metrics.record_provision(provider, provider_type, outcome, seconds)

    def record_reconcile(self, action: str, count: int = 1) -> None:
        self.metrics.record_reconcile(action, count)

    # -- gRPC ---------------------------------------------------------------------------------

    def grpc_interceptor(self, methods: Iterable[str] | None = None) -> Any:
        """A ``grpc.aio.ServerInterceptor``: server spans continuing the caller's trace, and gRPC metrics.

        ``methods``: the full names (``/package.Service/Method``) the server implements; any other is
        counted as ``unknown`` (see :mod:`hodei.observability.grpc`).
        """
        from hodei.observability.grpc import TelemetryInterceptor

        return TelemetryInterceptor(self, methods)


def traced_reload(method: Callable[..., Awaitable[list[str]]]) -> Callable[..., Awaitable[list[str]]]:
    """For ``Daemon.reload``: span ``hodei.config.reload`` and ``hodei_config_reloads_total``.

    A reload that replaced ``self.settings`` was applied; one that kept them was refused (the daemon
    logs why, with this span's trace id).
    """

    @functools.wraps(method)
    async def reload(self: Any, *args: Any, **kwargs: Any) -> list[str]:
        telemetry: Telemetry = self.telemetry
        before = self.settings
        with telemetry.tracer.start_as_current_span("hodei.config.reload") as span:
            restart = await method(self, *args, **kwargs)
            result = "applied" if self.settings is not before else "refused"
            if span.is_recording():
                span.set_attribute("hodei.reload.result", result)
                span.set_attribute("hodei.reload.restart_needed", [str(key) for key in restart])
                if result == "refused":
                    span.set_status(Status(StatusCode.ERROR, "the new configuration was refused"))
        telemetry.metrics.record_reload(result)
        return restart

    return reload
