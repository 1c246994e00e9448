"""One provider's health check and capacity report, bounded in time, never raising.

The health service's probe (:class:`hodei.services.health.LocalHealth`), for ``hodei providers check``
and the daemon's health monitor alike: whatever the plugin does (answers, raises, hangs past the
timeout), the caller gets a result it can record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from hodei import limits
from hodei.domain import Capacity, HealthResult, HealthStatus, Provider
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
