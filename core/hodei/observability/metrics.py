"""Hodei's Prometheus metrics: the instruments, and the collector that reads the daemon's state.

Two kinds of metric, for two kinds of fact:

* **State** (provider health, status, workers, max workers, ...) is read from the daemon's
  ``Fleet`` at scrape time by :class:`DaemonCollector`. Nothing is kept per provider between
  scrapes, so a deleted provider's series disappear with it and a value is never stale. With
  several replicas on one database, each exports the state of the providers it owns (those it
  health-checks) and no other: every provider's state is exported once, by the daemon whose
  checks produce it, and the replicas' scrapes together read as one daemon's.
* **Events** (health checks, selections, provisions, reconcile actions, ...) are Counters and
  Histograms in :class:`Metrics`, updated where they happen.

Every label value is bounded: provider names and types (the operator's), fixed outcome sets, filter
names (installed plugins), gRPC methods the server implements. Never a worker id, a job's data or
anything from a provider's config. :data:`SPECS` is the list ``docs/metrics.md`` documents (a test
holds the two and the scraped output together).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hodei.cooldown import remaining
from hodei.domain import HealthStatus, ProviderState, ProviderStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricSpec:
    """One documented metric: the name as PromQL sees it, its type, its labels, what it means."""

    name: str
    type: str  # gauge, counter, histogram
    labels: tuple[str, ...]
    help: str


P = ("provider", "provider_type")

SPECS: tuple[MetricSpec, ...] = (
    # -- read from the daemon's state at scrape time ----------------------------------------
    MetricSpec("hodei_build_info", "gauge", ("version",), "Always 1; the running Hodei version as a label."),
    MetricSpec("hodei_daemon_ready", "gauge", (), "1 once every part of the daemon has started, else 0."),
    MetricSpec("hodei_database_up", "gauge", (), "1 while the database answers, 0 while the daemon serves from "
                                                 "its last known state."),
    MetricSpec("hodei_daemons_live", "gauge", (), "Daemons sharing this database whose heartbeat is live, "
                                                  "as this daemon last saw them (itself included)."),
    MetricSpec("hodei_daemon_providers_owned", "gauge", (), "Providers this daemon health-checks, reconciles "
                                                            "and exports the state of (its share among the "
                                                            "live daemons)."),
    MetricSpec("hodei_providers_invalid", "gauge", (), "Provider rows the daemon cannot use (invalid config)."),
    MetricSpec("hodei_provider_health", "gauge", P, "Last health check: 1 Healthy, 0.5 Degraded, 0 Unhealthy "
                                                    "(absent until the first check)."),
    MetricSpec("hodei_provider_status", "gauge", (*P, "status"), "1 for the provider's current status "
                                                                 "(ACTIVE, DISABLED, MAINTENANCE, UNHEALTHY), "
                                                                 "0 for the others."),
    MetricSpec("hodei_provider_workers", "gauge", (*P, "state"), "Workers counted against max_workers, by state: "
                                                                 "active (running or releasing) and reserved "
                                                                 "(provisioning)."),
    MetricSpec("hodei_provider_backend_workers", "gauge", P, "Workers the backend itself reported at its last "
                                                             "capacity report (absent until reported)."),
    MetricSpec("hodei_provider_max_workers", "gauge", P, "The provider's max_workers."),
    MetricSpec("hodei_provider_consecutive_failures", "gauge", P, "Failed health checks in a row."),
    MetricSpec("hodei_provider_last_check_timestamp_seconds", "gauge", P, "Unix time of the last health check "
                                                                          "(absent until the first check)."),
    MetricSpec("hodei_provider_provision_failures", "gauge", P, "Failed provisions in a row (not counting "
                                                                "failures the job caused)."),
    MetricSpec("hodei_provider_cooldown_seconds", "gauge", P, "Seconds left of the provider's cooldown after "
                                                              "failed provisions (0: selection may use it)."),
    # -- events ---------------------------------------------------------------------------------
    MetricSpec("hodei_health_checks_total", "counter", (*P, "outcome"), "Health checks by outcome: healthy, "
                                                                        "degraded, unhealthy (a timeout or an "
                                                                        "error is unhealthy)."),
    MetricSpec("hodei_health_check_duration_seconds", "histogram", ("provider_type", "outcome"),
               "How long health checks took, bounded by [health] timeout_seconds."),
    MetricSpec("hodei_provider_status_changes_total", "counter", (*P, "status"),
               "Status changes made by the health monitor, by the new status (ACTIVE or UNHEALTHY)."),
    MetricSpec("hodei_selections_total", "counter", ("result", "tier"), "Selections by result (selected, none) "
                                                                        "and region tier (preferred, allowed, "
                                                                        "any; none when nothing fit)."),
    MetricSpec("hodei_selection_duration_seconds", "histogram", ("result",), "How long a selection took."),
    MetricSpec("hodei_selection_rejections_total", "counter", ("filter",),
               "For selections that found no provider: providers rejected, by the filter that rejected them "
               "(a provider failing two filters counts for both; invalid rows count as filter config)."),
    MetricSpec("hodei_provisions_total", "counter", (*P, "outcome"), "Provisioning attempts by outcome: "
                                                                     "succeeded, failed, timeout, cancelled."),
    MetricSpec("hodei_provision_duration_seconds", "histogram", ("provider_type", "outcome"),
               "How long provisioning attempts took."),
    MetricSpec("hodei_reconcile_actions_total", "counter", ("action",), "Actions the reconciler took."),
    MetricSpec("hodei_queue_waiting", "gauge", ("reason",), "Requests this daemon's clients have waiting in the "
                                                            "placement queue, by why they wait: capacity, health, "
                                                            "status, behind (providers kept for requests ahead), "
                                                            "other (sum over the daemons: the queue's depth)."),
    MetricSpec("hodei_queue_requests_total", "counter", ("outcome",), "Requests that left the placement queue: "
                                                                      "placed, expired, cancelled."),
    MetricSpec("hodei_queue_wait_duration_seconds", "histogram", ("outcome",),
               "How long requests waited in the placement queue, by how they left it."),
    MetricSpec("hodei_daemon_ownership_changes_total", "counter", (),
               "Providers this daemon took from or handed to another daemon (a daemon joined, left or lapsed)."),
    MetricSpec("hodei_provider_changes_total", "counter", ("change",), "Provider rows the daemon took in: "
                                                                       "added, changed, removed, invalid."),
    MetricSpec("hodei_config_reloads_total", "counter", ("result",), "hodei.toml reloads (SIGHUP): applied or "
                                                                     "refused."),
    MetricSpec("hodei_grpc_requests_total", "counter", ("method", "code"), "gRPC calls handled, by full method "
                                                                           "name and status code."),
    MetricSpec("hodei_grpc_request_duration_seconds", "histogram", ("method",), "How long gRPC calls took."),
)

HEALTH_VALUES = {HealthStatus.HEALTHY: 1.0, HealthStatus.DEGRADED: 0.5, HealthStatus.UNHEALTHY: 0.0}
PROVISION_OUTCOMES = ("succeeded", "failed", "timeout", "cancelled")
SELECTION_TIERS = ("preferred", "allowed", "any")
PROVIDER_CHANGES = ("added", "changed", "removed", "invalid")
RELOAD_RESULTS = ("applied", "refused")
# Gauges kept by an instrument of :class:`Metrics` as events happen, not read from the fleet by the collector.
INSTRUMENTED_GAUGES = frozenset({"hodei_queue_waiting"})
QUEUE_REASONS = ("capacity", "health", "status", "behind", "other")
QUEUE_OUTCOMES = ("placed", "expired", "cancelled")
_ACTION = re.compile(r"[a-z][a-z0-9_]{0,39}")

HEALTH_CHECK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SELECTION_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1)
PROVISION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
QUEUE_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0)
GRPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_SPEC = {spec.name: spec for spec in SPECS}


def _counter(name: str, registry: CollectorRegistry) -> Counter:
    spec = _SPEC[name]
    return Counter(name.removesuffix("_total"), spec.help, spec.labels, registry=registry)


def _histogram(name: str, registry: CollectorRegistry, buckets: tuple[float, ...]) -> Histogram:
    spec = _SPEC[name]
    return Histogram(name, spec.help, spec.labels, registry=registry, buckets=buckets)


def _bounded(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value in allowed:
        return value
    log.warning("metrics: %s %r is not one of %s; counted as 'other'", what, value, ", ".join(allowed))
    return "other"


class Metrics:
    """The event instruments, registered in one registry (the daemon's own)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        try:  # `_created` series double the series count for little use; Prometheus does not need them
            from prometheus_client import disable_created_metrics

            disable_created_metrics()
        except ImportError:  # pragma: no cover - older prometheus-client
            pass
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        # The process's own health, as every Prometheus client exposes it: process_* (memory, CPU, open
        # files, start time; Linux) and python_* (version, garbage collections), for the memory alert.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.health_checks = _counter("hodei_health_checks_total", r)
        self.health_check_seconds = _histogram("hodei_health_check_duration_seconds", r, HEALTH_CHECK_BUCKETS)
        self.status_changes = _counter("hodei_provider_status_changes_total", r)
        self.selections = _counter("hodei_selections_total", r)
        self.selection_seconds = _histogram("hodei_selection_duration_seconds", r, SELECTION_BUCKETS)
        self.selection_rejections = _counter("hodei_selection_rejections_total", r)
        self.provisions = _counter("hodei_provisions_total", r)
        self.provision_seconds = _histogram("hodei_provision_duration_seconds", r, PROVISION_BUCKETS)
        self.reconcile_actions = _counter("hodei_reconcile_actions_total", r)
        self.provider_changes = _counter("hodei_provider_changes_total", r)
        self.config_reloads = _counter("hodei_config_reloads_total", r)
        self.grpc_requests = _counter("hodei_grpc_requests_total", r)
        self.grpc_seconds = _histogram("hodei_grpc_request_duration_seconds", r, GRPC_BUCKETS)
        self.queue_waiting = Gauge("hodei_queue_waiting", _SPEC["hodei_queue_waiting"].help,
                                   _SPEC["hodei_queue_waiting"].labels, registry=r)
        self.queue_requests = _counter("hodei_queue_requests_total", r)
        self.queue_seconds = _histogram("hodei_queue_wait_duration_seconds", r, QUEUE_BUCKETS)
        for reason in QUEUE_REASONS:
            self.queue_waiting.labels(reason)
        for outcome in QUEUE_OUTCOMES:
            self.queue_requests.labels(outcome)
            self.queue_seconds.labels(outcome)
        # Series with a small fixed label set start at 0, so rate() and alerts see them from the start.
        for tier in SELECTION_TIERS:
            self.selections.labels("selected", tier)
        self.selections.labels("none", "none")
        for result in ("selected", "none"):
            self.selection_seconds.labels(result)
        for change in PROVIDER_CHANGES:
            self.provider_changes.labels(change)
        for result in RELOAD_RESULTS:
            self.config_reloads.labels(result)

    # -- placement queue -------------------------------------------------------------------------

    def queue_moved(self, reason: str, change: int) -> None:
        """A request of this daemon's started (+1) or stopped (-1) waiting for ``reason``."""
        self.queue_waiting.labels(_bounded(reason, QUEUE_REASONS, "queue reason")).inc(change)

    def queue_left(self, outcome: str, seconds: float) -> None:
        outcome = _bounded(outcome, QUEUE_OUTCOMES, "queue outcome")
        self.queue_requests.labels(outcome).inc()
        self.queue_seconds.labels(outcome).observe(seconds)

    # -- health -------------------------------------------------------------------------------

    def observe_health_check(self, provider: str, provider_type: str, health: HealthStatus,
                             seconds: float | None) -> None:
        outcome = health.value.lower()
        self.health_checks.labels(provider, provider_type, outcome).inc()
        if seconds is not None:
            self.health_check_seconds.labels(provider_type, outcome).observe(seconds)

    def status_changed(self, provider: str, provider_type: str, status: ProviderStatus) -> None:
        self.status_changes.labels(provider, provider_type, status.value).inc()

    # -- selection ----------------------------------------------------------------------------

    def observe_selection(self, tier: str | None, seconds: float) -> None:
        result = "selected" if tier is not None else "none"
        self.selections.labels(result, tier if tier is not None else "none").inc()
        self.selection_seconds.labels(result).observe(seconds)

    def count_rejections(self, by_filter: Mapping[str, int]) -> None:
        for name, count in by_filter.items():
            if count:
                self.selection_rejections.labels(name).inc(count)

    # -- workers ------------------------------------------------------------------------------

    def record_provision(self, provider: str, provider_type: str, outcome: str, seconds: float) -> None:
        """One provisioning attempt on ``provider``: ``outcome`` is succeeded, failed, timeout or cancelled."""
        outcome = _bounded(outcome, PROVISION_OUTCOMES, "provision outcome")
        self.provisions.labels(provider, provider_type, outcome).inc()
        self.provision_seconds.labels(provider_type, outcome).observe(max(0.0, seconds))

    def record_reconcile(self, action: str, count: int = 1) -> None:
        """``count`` reconcile actions of kind ``action`` (a short snake_case word, e.g. ``released``)."""
        if not _ACTION.fullmatch(action):
            log.warning("metrics: reconcile action %r is not a short snake_case word; counted as 'other'", action)
            action = "other"
        if count > 0:
            self.reconcile_actions.labels(action).inc(count)

    # -- configuration ------------------------------------------------------------------------

    def record_fleet_changes(self, changes: Any) -> None:
        """A ``FleetChanges`` the configuration listener applied."""
        for change in PROVIDER_CHANGES:
            count = len(getattr(changes, change, ()) or ())
            if count:
                self.provider_changes.labels(change).inc(count)

    def record_reload(self, result: str) -> None:
        self.config_reloads.labels(_bounded(result, RELOAD_RESULTS, "reload result")).inc()

    # -- gRPC ---------------------------------------------------------------------------------

    def observe_grpc(self, method: str, code: str, seconds: float | None) -> None:
        self.grpc_requests.labels(method, code).inc()
        if seconds is not None:
            self.grpc_seconds.labels(method).observe(seconds)


class DaemonCollector(Collector):
    """The state gauges, read from a running daemon's fleet at scrape time.

    ``collect`` runs in the event loop (the endpoint calls it there), so it sees the fleet's dicts
    between two changes, never in the middle of one.
    """

    def __init__(self, fleet: Any, database_up: Callable[[], bool], ready: Callable[[], bool],
                 membership: Any = None):
        self.fleet, self.database_up, self.ready = fleet, database_up, ready
        self.membership = membership

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        return {spec.name: GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
                for spec in SPECS if spec.type == "gauge" and spec.name not in INSTRUMENTED_GAUGES}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families().values())

    def _owned(self) -> set[Any] | None:
        """The providers whose state this daemon exports (None: all): its share among the replicas, and
        none before it knows its share, so that a replica joining never exports a provider twice."""
        membership = self.membership
        if membership is None:
            return None
        return membership.owned if membership.divided else set()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from hodei import __version__

        families = self._families()
        fleet = self.fleet
        families["hodei_build_info"].add_metric([__version__], 1.0)
        families["hodei_daemon_ready"].add_metric([], 1.0 if self.ready() else 0.0)
        families["hodei_database_up"].add_metric([], 1.0 if self.database_up() else 0.0)
        families["hodei_providers_invalid"].add_metric([], float(len(fleet.invalid)))
        if self.membership is not None:
            families["hodei_daemons_live"].add_metric([], float(len(self.membership.live)))
            families["hodei_daemon_providers_owned"].add_metric([], float(self.membership.owned_count))
        empty = ProviderState()
        now = datetime.now(UTC)
        owned = self._owned()
        for provider_id, provider in list(fleet.providers.items()):
            if owned is not None and provider_id not in owned:
                continue
            state = fleet.states.get(provider_id) or empty
            labels = [provider.name, provider.provider_type]
            if state.health is not None:
                families["hodei_provider_health"].add_metric(labels, HEALTH_VALUES[state.health])
            for status in ProviderStatus:
                families["hodei_provider_status"].add_metric(
                    [*labels, status.value], 1.0 if provider.status is status else 0.0)
            families["hodei_provider_workers"].add_metric([*labels, "active"], float(state.active_workers))
            families["hodei_provider_workers"].add_metric([*labels, "reserved"], float(state.reserved_workers))
            backend = getattr(state, "backend_workers", None)
            if backend is not None:
                families["hodei_provider_backend_workers"].add_metric(labels, float(backend))
            families["hodei_provider_max_workers"].add_metric(labels, float(provider.max_workers))
            families["hodei_provider_consecutive_failures"].add_metric(labels, float(state.consecutive_failures))
            if state.checked_at is not None:
                families["hodei_provider_last_check_timestamp_seconds"].add_metric(
                    labels, state.checked_at.timestamp())
            families["hodei_provider_provision_failures"].add_metric(labels, float(state.provision_failures))
            families["hodei_provider_cooldown_seconds"].add_metric(labels, remaining(state.cooldown_until, now))
        return iter(families.values())
