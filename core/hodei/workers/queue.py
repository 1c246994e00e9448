"""The placement queue: a request that fits nowhere now waits its turn instead of failing.

A request is tried at once. When no provider can take it and it may wait (``wait_seconds``), it is
refused at once if no provider could *ever* take it (every provider refused by a filter that does not
depend on the load: type, labels, regions, images, size); otherwise it joins the queue (a row shared by
every daemon) and is tried again each time something changes that could let it fit: a slot freed here
(a release, a failed or given-up provision), a worker ending (the reconciler), the fleet changing (a
provider added, enabled, its max_workers raised, its health read), a request leaving the queue, and on
PostgreSQL the same events of every other daemon (NOTIFY hodei_placement). A slow sweep retries anyway.

Order: higher ``priority`` first, then arrival. A provider that a request ahead could use is kept for it:
a later request is placed only on providers no request ahead of it could take, so a waiting request is
never overtaken on the providers it waits for (nothing starves within a priority), while a request
ahead that waits for other providers (bigger ones, another region) does not hold it back.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from hodei.calls import run_blocking
from hodei.errors import InvalidInput, Problem
from hodei.redaction import quote
from hodei.selection import Requirements
from hodei.selection.candidates import Candidate
from hodei.workers.provisioner import NoProviderAvailable, Provisioned, Provisioner
from hodei.workers.queue_records import Queued, QueueRecords

log = logging.getLogger(__name__)


class WaitCancelled(NoProviderAvailable):
    """The waiting request was cancelled (``hodei workers cancel``)."""


@dataclass(frozen=True)
class QueueEntry:
    """A waiting request as ``hodei queue`` shows it."""

    position: int
    id: str
    priority: int
    enqueued_at: datetime
    deadline: datetime
    reasons: str
    daemon: str

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {"position": self.position, "id": self.id, "priority": self.priority,
                "age_seconds": round(max(0.0, (now - self.enqueued_at).total_seconds()), 3),
                "left_seconds": round(max(0.0, (self.deadline - now).total_seconds()), 3),
                "waits_at": self.daemon, "reasons": self.reasons}


class PlacementQueue:
    """
    :param could_fit: the providers that could take a job once the load allows (a selector's
        :meth:`~hodei.selection.Selector.could_fit`).
    :param parse: a stored requirements document as a job.
    :param sweep_seconds: how often a waiting request is tried even when nothing said it could fit.
    :param claim_grace_seconds: how long a request's row outlives its waiter (a restarted daemon's client
        coming back with the same request id keeps its place); then anyone drops it.
    :param waiter: who waits, as ``hodei queue`` shows it.
    """

    def __init__(self, provisioner: Provisioner, records: QueueRecords, *,
                 could_fit: Callable[[Requirements], list[Candidate]],
                 parse: Callable[[Mapping[str, Any]], Requirements],
                 call: Callable[..., Any] | None = None, sweep_seconds: float = 5.0,
                 claim_grace_seconds: float = 60.0, waiter: str = "", telemetry: Any = None):
        self.provisioner, self.records = provisioner, records
        self.could_fit, self.parse = could_fit, parse
        self._call = call or run_blocking
        self.sweep_seconds, self.claim_grace_seconds = sweep_seconds, claim_grace_seconds
        self.waiter = waiter
        self.telemetry = telemetry
        self._changed: anyio.Event | None = None
        # Bumped by every wake: a waiter busy trying when a change came tries again at once (no lost wake-up).
        self._generation = 0
        self._waiting: dict[str, anyio.CancelScope] = {}
        # The daemon is stopping: its calls end, but its requests' rows stay for their clients to come back to.
        self.closing = False

    # -- events ---------------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed that could let a waiting request fit: every waiter here tries again."""
        self._generation += 1
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def _next_change(self, timeout: float, seen: int) -> None:
        """Until a change after generation ``seen`` (at once if one came meanwhile), or ``timeout``."""
        if self._generation != seen:
            return
        if self._changed is None:
            self._changed = anyio.Event()
        with anyio.move_on_after(timeout):
            await self._changed.wait()

    # -- placing ----------------------------------------------------------------------------------

    async def place(self, job: Requirements, wait_seconds: float, request_id: str) -> Provisioned:
        """A worker for ``job``, waiting up to ``wait_seconds`` for a provider to be free.

        :raises NoProviderAvailable: at once when no provider could ever take it (or it may not wait);
            after ``wait_seconds`` with the last reasons; :class:`WaitCancelled` when cancelled.
        """
        if request_id in self._waiting:
            raise InvalidInput(Problem("request_id", f"{quote(request_id)} is waiting already"))
        deadline = datetime.now(UTC) + timedelta(seconds=wait_seconds)
        seen = self._generation
        try:
            return await self._attempt(job, request_id, None)
        except NoProviderAvailable as exc:
            if wait_seconds <= 0 or exc.the_jobs:
                raise
            last = exc
        if not await anyio.to_thread.run_sync(self.could_fit, job):
            raise NoProviderAvailable(f"no provider could ever take the worker, whatever it waited for: {last}",
                                      last.attempts, last.summary)
        started = time.perf_counter()
        mine = await self._call(self.records.join, request_id, job.priority, deadline, job.document(), self.waiter,
                                _reasons(last))
        log.info("request %s waits for a provider (priority %d, up to %g s): %s", request_id, job.priority,
                 wait_seconds, _reasons(last))
        waiting = _Waiting(self.telemetry, _cause(last))
        outcome = "cancelled"
        with contextlib.ExitStack() as stack:
            span = stack.enter_context(self.telemetry.wait_span(request_id, job.priority)) \
                if self.telemetry is not None else None
            try:
                with anyio.CancelScope() as scope:
                    self._waiting[request_id] = scope
                    provisioned = await self._wait(job, mine, deadline, wait_seconds, last, seen, waiting)
                    outcome = "placed"
                    return provisioned
                raise WaitCancelled(f"request {request_id} was cancelled while waiting for a provider", [])
            except NoProviderAvailable as exc:
                outcome = "cancelled" if isinstance(exc, WaitCancelled) else "expired"
                raise
            finally:
                self._waiting.pop(request_id, None)
                with anyio.CancelScope(shield=True):
                    if not self.closing:
                        with contextlib.suppress(Exception):
                            await self._call(self.records.leave, request_id)
                    self.wake()  # the requests behind it may take what it was kept
                waiting.end()
                seconds = time.perf_counter() - started
                log.info("request %s left the queue after %.1f s: %s", request_id, seconds, outcome)
                if self.telemetry is not None:
                    self.telemetry.queue_left(outcome, seconds)
                if span is not None:
                    span.set_attribute("hodei.outcome", outcome)

    async def _wait(self, job: Requirements, mine: Queued, deadline: datetime, wait_seconds: float,
                    last: NoProviderAvailable, seen: int, waiting: _Waiting) -> Provisioned:
        reasons = _reasons(last)
        while True:
            left = (deadline - datetime.now(UTC)).total_seconds()
            if left <= 0:
                raise NoProviderAvailable(f"no provider became free within the {wait_seconds:g} s the request could "
                                          f"wait; last: {last}", last.attempts, last.summary)
            await self._next_change(min(left, self.sweep_seconds), seen)
            seen = self._generation
            if not await self._call(self.records.touch, mine.id):
                raise WaitCancelled(f"request {mine.id} was cancelled while waiting for a provider", [])
            try:
                return await self._attempt(job, mine.id, mine)
            except NoProviderAvailable as exc:
                if exc.the_jobs:
                    raise
                last = exc
                waiting.now(_cause(exc))
                if _reasons(exc) != reasons:
                    reasons = _reasons(exc)
                    await self._call(self.records.touch, mine.id, reasons)

    async def _attempt(self, job: Requirements, request_id: str, mine: Queued | None) -> Provisioned:
        """One try, on the providers no request ahead of this one could use."""
        queued = await self._call(self.records.waiting, self.claim_grace_seconds)
        if mine is None:  # a new request: behind every waiting one of its priority or higher
            ahead = [q for q in queued if q.priority >= job.priority and q.id != request_id]
        else:
            ahead = [q for q in queued if q.order() < mine.order()]
        kept = await anyio.to_thread.run_sync(self._kept, ahead) if ahead else frozenset()
        return await self.provisioner.provision(job, kept)

    def _kept(self, ahead: list[Queued]) -> frozenset[uuid.UUID]:
        kept: set[uuid.UUID] = set()
        for queued in ahead:
            try:
                kept.update(c.provider.id for c in self.could_fit(self.parse(queued.requirements)))
            except Exception as exc:  # a row edited by hand, or a field a removed plugin declared
                log.debug("waiting request %s keeps nothing: %s", queued.id, exc)
        return frozenset(kept)

    # -- reading and cancelling -------------------------------------------------------------------------

    async def entries(self, limit: int, after: tuple[int, datetime, str] | None = None) -> list[QueueEntry]:
        """Up to ``limit`` waiting requests in queue order, after the one keyed ``after`` (priority, arrival, id)."""
        queued, ahead = await self._call(self.records.page, self.claim_grace_seconds, limit, after)
        return [QueueEntry(position, q.id, q.priority, q.enqueued_at, q.deadline, q.reasons, q.daemon)
                for position, q in enumerate(queued, start=ahead + 1)]

    async def cancel(self, request_id: str) -> bool:
        """Take a waiting request out of the queue; its waiter (here, or another daemon's on its next look)
        answers that it was cancelled. ``False`` when no such request waits."""
        gone: bool = await self._call(self.records.leave, request_id)
        scope = self._waiting.get(request_id)
        if scope is not None:
            scope.cancel()
        self.wake()
        return gone


class _Waiting:
    """One request's place in the ``hodei_queue_waiting`` gauge, under the reason it waits for now."""

    def __init__(self, telemetry: Any, cause: str):
        self.telemetry, self.cause = telemetry, cause
        if telemetry is not None:
            telemetry.queue_moved(cause, 1)

    def now(self, cause: str) -> None:
        if cause != self.cause and self.telemetry is not None:
            self.telemetry.queue_moved(self.cause, -1)
            self.telemetry.queue_moved(cause, 1)
        self.cause = cause

    def end(self) -> None:
        if self.telemetry is not None:
            self.telemetry.queue_moved(self.cause, -1)


# The summary's groups (hodei.builtin_plugins.selection_rules) that name a load-dependent reason.
_CAUSES = (("at capacity", "capacity"), ("unhealthy", "health"), ("not ACTIVE", "status"))


def _cause(exc: NoProviderAvailable) -> str:
    """Why a request waits, as a bounded metric label: the first load-dependent reason its summary names."""
    if exc.attempts and all(a.outcome == "refused" for a in exc.attempts):
        return "capacity"
    text = exc.summary or str(exc)
    if "waiting ahead" in text:
        return "behind"
    found = [(text.find(words), cause) for words, cause in _CAUSES if words in text]
    return min(found)[1] if found else "other"


def _reasons(exc: NoProviderAvailable) -> str:
    if exc.summary:
        return exc.summary
    return "; ".join(f"{a.provider}: {a.reason}" for a in exc.attempts) or str(exc)
