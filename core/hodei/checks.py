"""One provider's health check and capacity report, bounded in time, never raising.

Shared by ``hodei providers check`` and the daemon's health monitor: whatever the plugin does
(answers, raises, hangs past the timeout), the caller gets a result it can store.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from hodei import limits
from hodei.domain import Capacity, HealthResult, HealthStatus, Provider, ProviderState
from hodei.plugins import HodeiPluginManager
from hodei.redaction import scrub, shorten


@dataclass(frozen=True)
class CheckResult:
    provider: Provider
    health: HealthResult
    capacity: Capacity | None
    capacity_error: str = ""


def _failure(exc: BaseException, timeout: float, what: str) -> str:
    if isinstance(exc, TimeoutError):
        return f"{what} did not answer within {timeout:g} s"
    return f"{what} failed: {type(exc).__name__}: {exc}"


async def check_provider(pm: HodeiPluginManager, provider: Provider, timeout: float) -> CheckResult:
    """Ask the provider's plugin for its health, then (unless Unhealthy) its capacity."""
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        health = await pm.provider_hooks.health_check(provider, timeout)
    except Exception as exc:
        health = HealthResult.unhealthy(_failure(exc, timeout, "the health check"))
    # What a backend answers is kept and shown: cut to the limit, no credential it happened to quote.
    health = replace(health, reason=shorten(scrub(str(health.reason or "")), limits.HEALTH_REASON_CHARS), checked_at=started_at, duration_seconds=round(time.perf_counter() - started, 6))
    capacity, capacity_error = None, ""
    if health.status is not HealthStatus.UNHEALTHY:
        try:
            capacity = await pm.provider_hooks.capacity(provider, timeout)
        except Exception as exc:
            capacity, capacity_error = None, shorten(scrub(_failure(exc, timeout, "the capacity report")),
                                                     limits.HEALTH_REASON_CHARS)
    return CheckResult(provider, health, capacity, capacity_error)


def after_check(state: ProviderState, health: HealthResult | None, capacity: Capacity | None = None) -> ProviderState:
    """A provider's state once a check answered: its health, the consecutive failures (Unhealthy) and
    passes (Healthy or Degraded) the status rules read, and what the capacity report found. The one
    place these are counted, for the daemon's monitor and for ``hodei providers check`` alike."""
    if health is not None:
        failed = health.status is HealthStatus.UNHEALTHY
        state = dataclasses.replace(
            state, health=health.status, health_reason=health.reason,
            checked_at=health.checked_at or datetime.now(UTC),
            check_duration_seconds=health.duration_seconds,
            consecutive_failures=state.consecutive_failures + 1 if failed else 0,
            consecutive_successes=0 if failed else state.consecutive_successes + 1)
    if capacity is not None:
        state = dataclasses.replace(state, backend_workers=capacity.active_workers, per_worker=capacity.per_worker,
                                    capacity_reported_at=state.checked_at or datetime.now(UTC))
    return state
