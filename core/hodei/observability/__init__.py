"""Prometheus metrics, OpenTelemetry traces and structured logs for the daemon.

Everything hangs off one :class:`~hodei.observability.telemetry.Telemetry` that the daemon owns
(``daemon.telemetry``): its own Prometheus registry (never the process-wide default, so two daemons
in one process do not collide), its own ``TracerProvider``, and the helpers the rest of the daemon
calls. The metric names, units and labels are documented in ``docs/metrics.md``.

What code outside this package calls (all on ``daemon.telemetry``):

* ``select(selector, job) -> Decision``: a timed, traced ``Selector.select`` (span ``hodei.selection``,
  ``hodei_selection_*`` metrics, rejections by filter when nothing fits).
* ``provision_span(attributes=None)``: context manager, span ``hodei.provision`` around one job's
  provisioning; ``attempt_span(provider, provider_type, attempt=1)``: context manager, one child span
  ``hodei.provision.attempt`` per provider tried, which also records ``hodei_provisions_total`` and
  ``hodei_provision_duration_seconds`` when it ends (set ``attempt.outcome`` to override the outcome
  it works out from the exception, if any).
* ``record_provision(provider, provider_type, outcome, seconds)``: the same metrics without a span.
* ``record_reconcile(action, count=1)``: ``hodei_reconcile_actions_total``.
* ``grpc_interceptor(methods=None)``: a ``grpc.aio.ServerInterceptor`` that continues the caller's W3C
  trace from the ``traceparent`` metadata and records ``hodei_grpc_*`` metrics; ``methods`` (the full
  names the server implements) keeps a client from inventing ``method`` label values.

The package imports prometheus-client and OpenTelemetry lazily: ``hodei.observability.logs`` (used
by every command for logging) must not pull them in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hodei.observability.endpoint import MetricsEndpoint
    from hodei.observability.telemetry import Telemetry, traced_reload

__all__ = ["MetricsEndpoint", "Telemetry", "traced_reload"]

_WHERE = {
    "MetricsEndpoint": "hodei.observability.endpoint",
    "Telemetry": "hodei.observability.telemetry",
    "traced_reload": "hodei.observability.telemetry",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
