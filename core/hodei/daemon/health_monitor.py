"""Checks every provider on an interval, stores what it learns, and lets status follow health.

Each provider has its own schedule: a check that hangs holds only its own provider (and is cut at
the timeout), and a provider whose checks keep failing is checked less and less often, with
jitter, so it cannot slow the others. ACTIVE turns UNHEALTHY after ``unhealthy_after``
consecutive failures and back after ``healthy_after`` consecutive passes; DISABLED and MAINTENANCE
belong to operators and are never touched.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from hodei.checks import CheckResult, after_check, check_provider
from hodei.daemon.database import DatabaseLink, DatabaseUnavailable
from hodei.daemon.fleet import Fleet
from hodei.domain import HealthResult, HealthStatus, ProviderState, ProviderStatus
from hodei.observability.telemetry import Telemetry
from hodei.plugins import HodeiPluginManager
from hodei.settings import HealthSettings
from hodei.storage.provider_state import ProviderStates

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


class HealthMonitor:
    name = "health monitor"

    def __init__(self, fleet: Fleet, pm: HodeiPluginManager, db: DatabaseLink, states: ProviderStates,
                 settings: HealthSettings, *, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, telemetry: Telemetry | None = None):
        self.fleet, self.pm, self.db, self.states = fleet, pm, db, states
        self.telemetry = telemetry or Telemetry()
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.due: dict[uuid.UUID, float] = {}
        self.in_flight: set[uuid.UUID] = set()
        self.checks: dict[uuid.UUID, int] = {}  # per provider, since start
        self.stopping = False
        self.flush_seconds = 0.2
        self._wake = anyio.Event()
        self._limiter = anyio.CapacityLimiter(settings.concurrency)
        self._heap: list[tuple[float, int, uuid.UUID]] = []
        self._sequence = itertools.count()
        self._sleep_until = float("inf")
        self._generation = -1
        self._pending: dict[uuid.UUID, ProviderState] = {}

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

    # -- scheduling: a heap of due times, so a finished check costs O(log n), not a scan of all ----

    def _schedule(self, provider_id: uuid.UUID, due: float) -> None:
        self.due[provider_id] = due
        heapq.heappush(self._heap, (due, next(self._sequence), provider_id))
        if due < self._sleep_until:
            self.wake()

    def check_soon(self, provider_id: uuid.UUID) -> None:
        """Check this provider now (a provision just failed on it, say)."""
        if provider_id not in self.in_flight:
            self._schedule(provider_id, self.clock())

    def _take_new_providers(self, now: float) -> None:
        if self.fleet.generation == self._generation:
            return
        self._generation = self.fleet.generation
        for provider_id in self.fleet.providers:
            if provider_id not in self.due and provider_id not in self.in_flight:
                self._schedule(provider_id, now)
        for gone in set(self.due) - set(self.fleet.providers):
            del self.due[gone]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._write_batches)
                task_status.started()
                while not self.stopping:
                    now = self.clock()
                    self._take_new_providers(now)
                    started = 0
                    while self._heap and self._heap[0][0] <= now:
                        if started and started % 5 == 0:
                            # A round starts hundreds of checks at once, each one's first step run right
                            # after: a few at a time, so the loop answers others within a millisecond.
                            await anyio.lowlevel.checkpoint()
                        due, _, provider_id = heapq.heappop(self._heap)
                        if self.due.get(provider_id) != due:
                            continue  # superseded by a later schedule
                        provider = self.fleet.providers.get(provider_id)
                        if provider is None:
                            self.due.pop(provider_id, None)
                        elif provider.status is ProviderStatus.DISABLED:
                            self._schedule(provider_id, now + self.settings.interval_seconds)  # look again later
                        elif provider_id not in self.in_flight:
                            del self.due[provider_id]
                            self.in_flight.add(provider_id)
                            group.start_soon(self._check, provider_id)
                            started += 1
                    self._sleep_until = self._heap[0][0] if self._heap else now + 1.0
                    with anyio.move_on_after(max(0.005, min(1.0, self._sleep_until - self.clock()))):
                        await self._wake.wait()
                    self._wake = anyio.Event()
                    self._sleep_until = float("inf")
                group.cancel_scope.cancel()
        finally:
            with anyio.move_on_after(5, shield=True):
                await self.flush()

    async def _check(self, provider_id: uuid.UUID) -> None:
        try:
            async with self._limiter:
                provider = self.fleet.providers.get(provider_id)
                if provider is None or self.stopping:
                    return
                with self.telemetry.health_check_span(provider) as span:
                    result = await check_provider(self.pm, provider, self.settings.timeout_seconds)
                    self.telemetry.record_health_check(result, span)
            await self._record(provider_id, result)
        except Exception:  # a bug here must cost one check, not the monitor
            log.exception("recording the health check of provider %s failed", provider_id)
            self._schedule(provider_id, self.clock() + self.settings.interval_seconds)
        finally:
            self.in_flight.discard(provider_id)
            self.checks[provider_id] = self.checks.get(provider_id, 0) + 1

    # -- results: applied in memory at once, written to the database in batches ----------------

    async def _write_batches(self) -> None:
        while True:
            await anyio.sleep(self.flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        """Write the results gathered since the last flush in one transaction; kept for the next
        flush when the database is away."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await self.db.call(self.states.record, list(batch.items()))
        except DatabaseUnavailable:
            for provider_id, state in batch.items():
                self._pending.setdefault(provider_id, state)
        except Exception:
            log.exception("storing %d health results failed", len(batch))

    def note_failure(self, provider_id: uuid.UUID, result: HealthResult) -> None:
        """A failure seen outside a check (a provision that failed): counted like a failed check."""
        provider = self.fleet.providers.get(provider_id)
        if provider is not None:
            self._apply(provider_id, CheckResult(provider, result, None))
            self.check_soon(provider_id)

    def _apply(self, provider_id: uuid.UUID, result: CheckResult) -> tuple[ProviderState, ProviderState]:
        before = self.fleet.states.get(provider_id) or ProviderState()
        state = after_check(before, result.health, result.capacity)
        self.fleet.set_state(provider_id, state)
        self._pending[provider_id] = state
        if state.health != before.health:
            # A provider first found healthy is no news (a daemon's start would log one line per provider).
            level = (logging.WARNING if state.health is HealthStatus.UNHEALTHY else
                     logging.INFO if before.health is not None else logging.DEBUG)
            log.log(level, "provider %r is %s%s", result.provider.name,
                    state.health.value if state.health else "unknown",
                    f": {state.health_reason}" if state.health_reason else "")
        return before, state

    async def _record(self, provider_id: uuid.UUID, result: CheckResult) -> None:
        _, state = self._apply(provider_id, result)
        current = self.fleet.providers.get(provider_id)
        if current is not None:
            wanted = next_status(current.status, state, self.settings)
            if wanted is not None:
                await self._transition(provider_id, current.status, wanted, state)
        self._schedule(provider_id, self.clock() + next_delay(state, self.settings, self.rng))

    async def _transition(self, provider_id: uuid.UUID, current: ProviderStatus, wanted: ProviderStatus,
                          state: ProviderState) -> None:
        if wanted is ProviderStatus.UNHEALTHY:
            cause = f"{state.consecutive_failures} consecutive failed health checks: {state.health_reason}"
        else:
            cause = f"{state.consecutive_successes} consecutive passed health checks"
        try:
            changed = await self.db.call(self.states.transition_status, provider_id, current, wanted, cause)
        except DatabaseUnavailable:
            return  # selection already leaves Unhealthy providers out; the status follows when the database is back
        if changed:
            provider = self.fleet.providers.get(provider_id)
            log.warning("provider %r: %s -> %s (%s)", provider.name if provider else provider_id, current.value,
                        wanted.value, cause)
            self.fleet.set_status(provider_id, wanted)
            if provider is not None:
                self.telemetry.status_changed(provider, wanted)
