"""Schedules every provider's health checks: when each is due, which this daemon owns, which are in flight.

Each provider has its own schedule: a check that hangs holds only its own provider (and is cut at
the timeout), and a provider whose checks keep failing is checked less and less often, with
jitter (:func:`hodei.health.next_delay`), so it cannot slow the others.

What a check means is not decided here: the checks run through the health service
(:class:`hodei.services.health.LocalHealth`), which records the results, in batches, the one way every
entry point records them. The counts and the status rules (:mod:`hodei.health`) are applied in the
database, in the transaction that records a result: one count per provider, whichever daemons ran its
checks. With several daemons on one database each checks only the providers it owns (``set_owned``,
from the membership).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from hodei import actors
from hodei.checks import CheckResult
from hodei.daemon.database import DatabaseLink, DatabaseUnavailable
from hodei.daemon.fleet import Fleet
from hodei.domain import HealthStatus, ProviderState, ProviderStatus
from hodei.health import after_check, next_delay, next_status
from hodei.observability.telemetry import Telemetry
from hodei.services.health import LocalHealth, Recorded, Result
from hodei.settings import HealthSettings

log = logging.getLogger(__name__)

STEP = 1000  # providers scheduled (or results taken) between two turns of the event loop


class HealthMonitor:
    name = "health monitor"

    def __init__(self, fleet: Fleet, health: LocalHealth, db: DatabaseLink, settings: HealthSettings, *,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 telemetry: Telemetry | None = None):
        self.fleet, self.health, self.db = fleet, health, db
        self.actor = actors.health_monitor()  # of the changes of health and status it records
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
        self._pending: list[Result] = []
        self._flush_now = anyio.Event()
        # None: every provider (one daemon); else the ones this daemon owns among its replicas.
        self.owned: set[uuid.UUID] | None = None
        self._owned_generation = 0
        self._taken_owned = -1

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

    def owns(self, provider_id: uuid.UUID) -> bool:
        return self.owned is None or provider_id in self.owned

    def set_owned(self, owned: set[uuid.UUID] | None) -> None:
        """The providers this daemon checks from now on (None: all of them)."""
        self.owned = owned
        self._owned_generation += 1
        self.wake()

    def check_soon(self, provider_id: uuid.UUID) -> None:
        """Check this provider now (a provision just failed on it, say)."""
        if provider_id not in self.in_flight and self.owns(provider_id):
            self._schedule(provider_id, self.clock())

    def _first_due(self, provider_id: uuid.UUID, now: float) -> float:
        """A provider newly taken: checked an interval after its last check, whichever daemon ran it, so
        a handover neither checks it twice in a row nor leaves it unchecked longer than an interval."""
        state = self.fleet.states.get(provider_id)
        if state is None or state.checked_at is None:
            return now
        age = (datetime.now(UTC) - state.checked_at).total_seconds()
        return now + max(0.0, next_delay(state, self.settings, self.rng) - max(0.0, age))

    async def _take_new_providers(self, now: float) -> None:
        """Schedule the providers added (or newly owned) since the last look, forget those gone. A look
        goes over the whole fleet: it lets the event loop answer others every :data:`STEP` providers."""
        if self.fleet.generation == self._generation and self._owned_generation == self._taken_owned:
            return
        self._generation, self._taken_owned = self.fleet.generation, self._owned_generation
        providers = list(self.fleet.providers)  # a copy: the fleet may change while this look yields
        for start in range(0, len(providers), STEP):
            for provider_id in providers[start:start + STEP]:
                if provider_id not in self.due and provider_id not in self.in_flight and self.owns(provider_id):
                    self._schedule(provider_id, self._first_due(provider_id, now))
            await anyio.lowlevel.checkpoint()
        current = self.fleet.providers
        for gone in [p for p in self.due if p not in current or not self.owns(p)]:
            del self.due[gone]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._write_batches)
                task_status.started()
                while not self.stopping:
                    now = self.clock()
                    await self._take_new_providers(now)
                    started = 0
                    # No more checks started than may run (``concurrency``): the rest wait in the heap, not
                    # as tasks queued on the limiter, so a round over 100,000 providers holds a thousand
                    # tasks, not 100,000, and the loop's ready queue stays short enough to answer a probe.
                    while self._heap and self._heap[0][0] <= now and len(self.in_flight) < self._limiter.total_tokens:
                        if started and started % 5 == 0:
                            # A round starts hundreds of checks at once, each one's first step run right
                            # after: a few at a time, so the loop answers others within a millisecond.
                            await anyio.lowlevel.checkpoint()
                        due, _, provider_id = heapq.heappop(self._heap)
                        if self.due.get(provider_id) != due:
                            continue  # superseded by a later schedule
                        provider = self.fleet.providers.get(provider_id)
                        if provider is None or not self.owns(provider_id):
                            self.due.pop(provider_id, None)
                        elif provider.status is ProviderStatus.DISABLED:
                            self._schedule(provider_id, now + self.settings.interval_seconds)  # look again later
                        elif provider_id not in self.in_flight:
                            del self.due[provider_id]
                            self.in_flight.add(provider_id)
                            group.start_soon(self._check, provider_id)
                            started += 1
                    full = len(self.in_flight) >= self._limiter.total_tokens  # a check that ends wakes us
                    self._sleep_until = self._heap[0][0] if self._heap and not full else now + 1.0
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
                if provider is None or self.stopping or not self.owns(provider_id):
                    return
                with self.telemetry.health_check_span(provider) as span:
                    result = await self.health.probe(provider, self.settings.timeout_seconds)
                    self.telemetry.record_health_check(result, span)
            await self._record(provider_id, result)
        except Exception:  # a bug here must cost one check, not the monitor
            log.exception("recording the health check of provider %s failed", provider_id)
            self._schedule(provider_id, self.clock() + self.settings.interval_seconds)
        finally:
            self.in_flight.discard(provider_id)
            self.checks[provider_id] = self.checks.get(provider_id, 0) + 1
            if self._heap and self._heap[0][0] <= self.clock():
                self.wake()  # a check that waited for this one's place

    # -- results: applied in memory at once, counted in the database in batches -----------------

    async def _write_batches(self) -> None:
        while True:
            with anyio.move_on_after(self.flush_seconds):
                await self._flush_now.wait()
            self._flush_now = anyio.Event()
            await self.flush()

    async def flush(self) -> None:
        """Count the results gathered since the last flush in one transaction; kept for the next flush
        when the database is away. The database's counts and statuses then replace the local guess."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            recorded = await self.db.call(self.health.record, batch, actor=self.actor)
        except DatabaseUnavailable:
            self._pending[:0] = batch[-self._keep():]
            return
        except Exception:
            log.exception("storing %d health results failed", len(batch))
            return
        for start in range(0, len(recorded), STEP):
            if start:
                await anyio.lowlevel.checkpoint()  # a round's batch can be thousands: let the loop answer others
            newer = {r.provider_id for r in self._pending}  # results found meanwhile: their guess stands
            for entry in recorded[start:start + STEP]:
                self._take(entry, entry.provider_id not in newer)

    def _keep(self) -> int:
        # Through a long outage a lone daemon keeps checking: hold a few results per provider, not all.
        return 8 * max(1, len(self.fleet.providers))

    def _take(self, entry: Recorded, state: bool) -> None:
        if state:
            self.fleet.set_state(entry.provider_id, entry.state)
        provider = self.fleet.providers.get(entry.provider_id)
        for current, wanted, cause in entry.transitions:
            log.warning("provider %r: %s -> %s (%s)", entry.name, current.value, wanted.value, cause)
            if provider is not None:
                self.telemetry.status_changed(provider, wanted)
        if entry.transitions:
            self.fleet.set_status(entry.provider_id, entry.status)

    def _apply(self, provider_id: uuid.UUID, result: CheckResult) -> tuple[ProviderState, ProviderState]:
        before = self.fleet.states.get(provider_id) or ProviderState()
        state = after_check(before, result.health, result.capacity)
        self.fleet.set_state(provider_id, state)
        self._pending.append(Result(provider_id, result.health, result.capacity))
        if state.health != before.health:
            self._flush_now.set()  # the other daemons' views follow a change of health within moments
            # A provider first found healthy is no news (a daemon's start would log one line per provider).
            level = (logging.WARNING if state.health is HealthStatus.UNHEALTHY else
                     logging.INFO if before.health is not None else logging.DEBUG)
            log.log(level, "provider %r is %s%s", result.provider.name,
                    state.health.value if state.health else "unknown",
                    f": {state.health_reason}" if state.health_reason else "")
        elif next_status(result.provider.status, state, self.settings) is not None:
            self._flush_now.set()  # a status change is due: decided in the database, now
        return before, state

    async def _record(self, provider_id: uuid.UUID, result: CheckResult) -> None:
        _, state = self._apply(provider_id, result)
        self._schedule(provider_id, self.clock() + next_delay(state, self.settings, self.rng))
