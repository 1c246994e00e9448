"""Checks every provider on an interval, stores what it learns, and lets status follow health.

Each provider has its own schedule: a check that hangs holds only its own provider (and is cut at
the timeout), and a provider whose checks keep failing is checked less and less often, with
jitter, so it cannot slow the others. ACTIVE turns UNHEALTHY after ``unhealthy_after``
consecutive failures and back after ``healthy_after`` consecutive passes; DISABLED and MAINTENANCE
belong to operators and are never touched.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from hodei.checks import CheckResult, check_provider
from hodei.daemon.database import DatabaseLink, DatabaseUnavailable
from hodei.daemon.fleet import Fleet
from hodei.domain import HealthStatus, ProviderState, ProviderStatus
from hodei.plugins import HodeiPluginManager
from hodei.settings import HealthSettings

log = logging.getLogger(__name__)


def next_status(status: ProviderStatus, state: ProviderState, settings: HealthSettings) -> ProviderStatus | None:
    """The status health asks for, or ``None`` to leave it. Operators' statuses are never changed."""
    if status is ProviderStatus.ACTIVE and state.consecutive_failures >= settings.unhealthy_after:
        return ProviderStatus.UNHEALTHY
    if status is ProviderStatus.UNHEALTHY and state.consecutive_successes >= settings.healthy_after:
        return ProviderStatus.ACTIVE
    return None


def next_delay(state: ProviderState, settings: HealthSettings, rng: random.Random) -> float:
    """Seconds until the next check: the interval, or a jittered exponential backoff after failures."""
    if state.consecutive_failures == 0:
        return settings.interval_seconds
    backoff = min(settings.max_backoff_seconds, settings.interval_seconds * 2 ** (state.consecutive_failures - 1))
    return max(settings.interval_seconds, backoff) * rng.uniform(0.8, 1.2)


def _counted(state: ProviderState, result: CheckResult) -> ProviderState:
    """The state after a check, worked out in memory (when the database cannot do it)."""
    failed = result.health.status is HealthStatus.UNHEALTHY
    changed = dataclasses.replace(
        state, health=result.health.status, health_reason=result.health.reason, checked_at=result.health.checked_at,
        check_duration_seconds=result.health.duration_seconds,
        consecutive_failures=state.consecutive_failures + 1 if failed else 0,
        consecutive_successes=0 if failed else state.consecutive_successes + 1)
    if result.capacity is not None:
        changed = dataclasses.replace(changed, active_workers=result.capacity.active_workers,
                                      per_worker=result.capacity.per_worker)
    return changed


class HealthMonitor:
    name = "health monitor"

    def __init__(self, fleet: Fleet, pm: HodeiPluginManager, db: DatabaseLink, store: object,
                 settings: HealthSettings, *, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None):
        self.fleet, self.pm, self.db, self.store = fleet, pm, db, store
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.due: dict[uuid.UUID, float] = {}
        self.in_flight: set[uuid.UUID] = set()
        self.checks_done = 0
        self.checks: dict[uuid.UUID, int] = {}  # per provider, since start
        self.stopping = False
        self._wake = anyio.Event()
        self._limiter = anyio.CapacityLimiter(settings.concurrency)

    def configure(self, settings: HealthSettings) -> None:
        """New settings from a reload; the next checks use them."""
        self.settings = settings
        self._limiter.total_tokens = settings.concurrency
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self.stopping = True
        self.wake()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as group:
            task_status.started()
            while not self.stopping:
                now = self.clock()
                next_due = now + 1.0
                for provider_id, provider in list(self.fleet.providers.items()):
                    if provider.status is ProviderStatus.DISABLED or provider_id in self.in_flight:
                        continue
                    due = self.due.setdefault(provider_id, now)
                    if due <= now:
                        self.in_flight.add(provider_id)
                        group.start_soon(self._check, provider_id)
                    else:
                        next_due = min(next_due, due)
                for gone in set(self.due) - set(self.fleet.providers):
                    del self.due[gone]
                with anyio.move_on_after(max(0.005, next_due - self.clock())):
                    await self._wake.wait()
                self._wake = anyio.Event()

    async def _check(self, provider_id: uuid.UUID) -> None:
        try:
            async with self._limiter:
                provider = self.fleet.providers.get(provider_id)
                if provider is None or self.stopping:
                    return
                result = await check_provider(self.pm, provider, self.settings.timeout_seconds)
            await self._record(provider_id, result)
        except Exception:  # a bug here must cost one check, not the monitor
            log.exception("recording the health check of provider %s failed", provider_id)
            self.due[provider_id] = self.clock() + self.settings.interval_seconds
        finally:
            self.in_flight.discard(provider_id)
            self.checks_done += 1
            self.checks[provider_id] = self.checks.get(provider_id, 0) + 1
            self.wake()

    async def _record(self, provider_id: uuid.UUID, result: CheckResult) -> None:
        provider = result.provider
        before = self.fleet.states.get(provider_id) or ProviderState()
        try:
            state = await self.db.call(self.store.record_health, provider_id, result.health)  # type: ignore[attr-defined]
            if result.capacity is not None:
                state = await self.db.call(self.store.record_capacity, provider_id, result.capacity)  # type: ignore[attr-defined]
        except DatabaseUnavailable:
            state = _counted(before, result)
        except Exception as exc:  # the provider was deleted meanwhile, most likely
            log.debug("health of %s not stored: %s", provider.name, exc)
            state = _counted(before, result)
        self.fleet.set_state(provider_id, state)
        if state.health != before.health:
            level = logging.WARNING if state.health is HealthStatus.UNHEALTHY else logging.INFO
            log.log(level, "provider %r is %s%s", provider.name, state.health.value if state.health else "unknown",
                    f": {state.health_reason}" if state.health_reason else "")
        current = self.fleet.providers.get(provider_id)
        if current is not None:
            wanted = next_status(current.status, state, self.settings)
            if wanted is not None:
                await self._transition(provider_id, current.status, wanted, state)
        self.due[provider_id] = self.clock() + next_delay(state, self.settings, self.rng)

    async def _transition(self, provider_id: uuid.UUID, current: ProviderStatus, wanted: ProviderStatus,
                          state: ProviderState) -> None:
        if wanted is ProviderStatus.UNHEALTHY:
            cause = f"{state.consecutive_failures} consecutive failed health checks: {state.health_reason}"
        else:
            cause = f"{state.consecutive_successes} consecutive passed health checks"
        try:
            changed = await self.db.call(self.store.transition_status, provider_id, current, wanted, cause)  # type: ignore[attr-defined]
        except DatabaseUnavailable:
            return  # selection already leaves Unhealthy providers out; the status follows when the database is back
        if changed:
            provider = self.fleet.providers.get(provider_id)
            log.warning("provider %r: %s -> %s (%s)", provider.name if provider else provider_id, current.value,
                        wanted.value, cause)
            self.fleet.set_status(provider_id, wanted)
