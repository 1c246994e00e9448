"""Health policy: what a provider's checks mean, as pure functions (thresholds in, decision out).

How a check's answer is counted (:func:`after_check`), which status the counts ask for
(:func:`next_status`, with its cause: :func:`decide`), and when to check again (:func:`next_delay`).
No settings are read and nothing is stored here: the health service
(:class:`hodei.services.health.LocalHealth`) applies the policy where results are recorded, the daemon's
monitor where it schedules checks, so ``hodei providers check`` and ``hodei serve`` count alike.

ACTIVE turns UNHEALTHY after ``unhealthy_after`` consecutive failures and back after ``healthy_after``
consecutive passes (Healthy or Degraded); DISABLED and MAINTENANCE belong to operators and are never
changed.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from typing import Protocol

from hodei.domain import Capacity, HealthResult, HealthStatus, ProviderState, ProviderStatus


class Thresholds(Protocol):
    """What the policy reads (``[health]`` of hodei.toml has these fields)."""

    @property
    def unhealthy_after(self) -> int: ...

    @property
    def healthy_after(self) -> int: ...

    @property
    def interval_seconds(self) -> float: ...

    @property
    def max_backoff_seconds(self) -> float: ...


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


def next_status(status: ProviderStatus, state: ProviderState, thresholds: Thresholds) -> ProviderStatus | None:
    """The status health asks for, or ``None`` to leave it. Operators' statuses are never changed."""
    if status is ProviderStatus.ACTIVE and state.consecutive_failures >= thresholds.unhealthy_after:
        return ProviderStatus.UNHEALTHY
    if status is ProviderStatus.UNHEALTHY and state.consecutive_successes >= thresholds.healthy_after:
        return ProviderStatus.ACTIVE
    return None


def status_cause(wanted: ProviderStatus, state: ProviderState) -> str:
    """Why health changes the status, as the history records it."""
    if wanted is ProviderStatus.UNHEALTHY:
        return f"{state.consecutive_failures} consecutive failed health checks: {state.health_reason}"
    return f"{state.consecutive_successes} consecutive passed health checks"


def decide(status: ProviderStatus, state: ProviderState, thresholds: Thresholds) -> tuple[ProviderStatus, str] | None:
    """The status the counts ask for with its cause, or ``None`` to leave the status alone."""
    wanted = next_status(status, state, thresholds)
    return None if wanted is None else (wanted, status_cause(wanted, state))


def next_delay(state: ProviderState, thresholds: Thresholds, rng: random.Random) -> float:
    """Seconds until the next check: the interval, or a jittered exponential backoff after failures."""
    if state.consecutive_failures == 0:
        return thresholds.interval_seconds
    backoff = min(thresholds.max_backoff_seconds,
                  thresholds.interval_seconds * 2 ** (state.consecutive_failures - 1))
    return max(thresholds.interval_seconds, backoff) * rng.uniform(0.8, 1.2)
