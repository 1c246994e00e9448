"""The placement queue: requests are placed in rounds, and one that fits nowhere now waits its turn.

Every request for a worker (one that may wait, and one that may not) joins the round of placements of
its process. A round takes whatever is undecided, in the queue's order, and decides it against the
selector's view of capacity, each pick counted in that view at once (so the next request sees it); then
one transaction reserves every pick (``max_workers`` counted under the providers' locks, as for one; a
waiting request's row leaves the queue in that transaction, so a request is placed once whatever the
replicas do). The plugins then start the workers, each request in its own task; a provider that fails
sends its request back to the next round, to another provider.

A request not placed in its round fails at once when it may not wait, or when no provider could *ever*
take it (every provider refused by a filter that does not depend on the load: type, labels, regions,
images, size). Otherwise it joins the queue (a row shared by every daemon; all the round's newcomers in
one transaction) and is decided again in every round: a round runs when something changed that could
let one fit: a slot freed here (a release, a failed or given-up provision), a worker ending (the
reconciler), the fleet changing (a provider added, enabled, its max_workers raised, its health read), a
request leaving the queue, and on PostgreSQL the same events of every other daemon (NOTIFY
hodei_placement). A slow sweep runs one anyway.

Order: higher ``priority`` first, then arrival; a new request is behind every waiting one of its priority
or higher. A request ahead that is not placed keeps every provider it could take (waiting at this daemon
or another): a request behind it is placed only on providers no request ahead of it could take, so a
waiting request is never overtaken on the providers it waits for (nothing starves within a priority),
while a request ahead that waits for other providers (bigger ones, another region) does not hold it back.

There is no task of its own: the first request that finds no round running runs them (the leader) until
its own is decided, then hands the rounds to another undecided request of the process.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio

from hodei.calls import run_blocking
from hodei.errors import HodeiError, InvalidInput, Problem
from hodei.planning.order import queue_order
from hodei.redaction import quote
from hodei.selection import Requirements, Selector
from hodei.selection.candidates import Candidate
from hodei.workers.provisioner import MAX_REFUSALS, Attempt, NoProviderAvailable, Provisioned, Provisioner
from hodei.workers.queue_records import InLine, QueueRecords, RequestLeft
from hodei.workers.records import CapacityExhausted, Reservation, Worker, token_digest

log = logging.getLogger(__name__)

_YIELD_EVERY = 100  # decisions between two checkpoints of a round: the event loop keeps answering meanwhile
# The most reservations one round makes (one transaction): the first answers of a burst do not wait for
# the whole burst's transaction, and the next round follows at once.
MAX_PICKS = 1000


class WaitCancelled(NoProviderAvailable):
    """The waiting request was cancelled (``hodei workers cancel``)."""


class Choosing(Protocol):
    """What a round decides with (the selection service)."""

    def snapshot(self) -> Selector: ...

    def candidates(self, job: Requirements, limit: int,
                   selector: Selector | None = None) -> tuple[list[Candidate], Callable[[], str]]: ...

    def could_fit(self, job: Requirements, selector: Selector | None = None) -> list[Candidate]: ...


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


@dataclass(frozen=True)
class _Placed:
    """A slot reserved for a request by a round: its plugin is asked next."""

    candidate: Candidate
    worker_id: str
    token: str


_sequence = itertools.count()


@dataclass(eq=False)
class _Request:
    job: Requirements
    id: str
    key: str  # its requirements as canonical JSON: requests alike are decided alike, once per round
    deadline: datetime | None  # None: it may not wait
    seq: int = field(default_factory=lambda: next(_sequence))
    arrival: datetime | None = None  # in the queue since (its row's), once it waited
    row: bool = False  # its row is in the queue (False again once a round's reservation took it out)
    deciding: bool = True  # in the next round (False while a plugin starts its worker)
    outcome: _Placed | BaseException | None = None
    last: NoProviderAvailable | None = None  # why it was not placed, as its last round found
    tried: set[uuid.UUID] = field(default_factory=set)
    attempts: list[Attempt] = field(default_factory=list)
    refused: int = 0
    gone: bool = False  # its client stopped waiting
    nudge: anyio.Event = field(default_factory=anyio.Event)
    waiting: _Waiting | None = None
    span: Any = None

    # The caller's context (its task's context variables): what a round decides for it is decided in it, so
    # what the caller's context collects (the status page's recent decisions) is this request's own.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)

    def order(self, now: datetime) -> tuple[int, Any, Any]:
        if self.arrival is not None:
            return queue_order(self.job.priority, (self.arrival, 0), self.id)
        return queue_order(self.job.priority, (now, 1), f"{self.seq:020d}")  # new: behind every waiting one

    def settle(self, outcome: _Placed | BaseException) -> None:
        self.outcome, self.deciding = outcome, False
        self.nudge.set()


def _key(job: Requirements) -> str:
    return json.dumps(job.document(), sort_keys=True, default=str)


class PlacementQueue:
    """
    :param selection: decides (the selection service: the daemon's live selector, kept current by the
        slot changes the provisioner reports).
    :param parse: a stored requirements document as a job.
    :param sweep_seconds: how often a round runs for waiting requests when nothing said one could fit.
    :param claim_grace_seconds: how long a request's row outlives its waiter (a restarted daemon's client
        coming back with the same request id keeps its place); then anyone drops it.
    :param waiter: who waits, as ``hodei queue`` shows it.
    """

    def __init__(self, provisioner: Provisioner, records: QueueRecords, *, selection: Choosing,
                 parse: Callable[[Mapping[str, Any]], Requirements],
                 call: Callable[..., Any] | None = None, sweep_seconds: float = 5.0,
                 claim_grace_seconds: float = 60.0, waiter: str = "", telemetry: Any = None):
        self.provisioner, self.records = provisioner, records
        self.selection, self.parse = selection, parse
        self._call = call or run_blocking
        self.sweep_seconds, self.claim_grace_seconds = sweep_seconds, claim_grace_seconds
        self.waiter = waiter
        self.telemetry = telemetry
        self._changed: anyio.Event | None = None
        # Bumped by every wake: a leader busy in a round when a change came runs another at once.
        self._generation = 0
        self._requests: dict[str, _Request] = {}  # this process's requests, undecided or starting
        self._waiting: dict[str, anyio.CancelScope] = {}
        self._leading = False
        self._touched = 0.0
        # The requests waiting at other daemons, decided with the rest: their jobs by requirements.
        self._others: dict[str, str] = {}  # row id -> key
        self._jobs: dict[str, Requirements | None] = {}  # key -> job (None: its requirements do not parse)
        # Rounds run, their reservation transactions and the slots those reserved: placements in batches.
        self.rounds = self.batches = self.reserved = 0
        # The daemon is stopping: its calls end, but its requests' rows stay for their clients to come back to.
        self.closing = False

    # -- events ---------------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed that could let a waiting request fit: a round runs."""
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

    # -- a request ------------------------------------------------------------------------------------

    async def place(self, job: Requirements, wait_seconds: float, request_id: str) -> Provisioned:
        """A worker for ``job``, waiting up to ``wait_seconds`` for a provider to be free.

        :raises NoProviderAvailable: at once when no provider could ever take it (or it may not wait);
            after ``wait_seconds`` with the last reasons; :class:`WaitCancelled` when cancelled.
        """
        if request_id in self._requests:
            raise InvalidInput(Problem("request_id", f"{quote(request_id)} is waiting already"))
        deadline = datetime.now(UTC) + timedelta(seconds=wait_seconds) if wait_seconds > 0 else None
        request = _Request(job, request_id, _key(job), deadline)
        self._requests[request_id] = request
        self.wake()  # into the next round
        started = time.perf_counter()
        outcome = "cancelled"
        with contextlib.ExitStack() as spans:
            def waits() -> None:  # its wait is one span, the provisions tried meanwhile its children
                if self.telemetry is not None and request.span is None:
                    request.span = spans.enter_context(self.telemetry.wait_span(request_id, job.priority))

            try:
                with anyio.CancelScope() as scope:
                    self._waiting[request_id] = scope
                    provisioned = await self._serve(request, wait_seconds, waits)
                    outcome = "placed"
                    return provisioned
                raise WaitCancelled(f"request {request_id} was cancelled while waiting for a provider", [])
            except NoProviderAvailable as exc:
                outcome = "cancelled" if isinstance(exc, WaitCancelled) else "expired"
                raise
            finally:
                request.gone = True
                self._waiting.pop(request_id, None)
                self._requests.pop(request_id, None)
                self._handoff()
                if isinstance(request.outcome, _Placed):  # reserved for it, but its client went away first
                    with anyio.CancelScope(shield=True):
                        await self.provisioner.give_back(request.outcome.candidate.provider, request.outcome.worker_id, None)
                if request.arrival is not None:
                    await self._left(request, outcome, time.perf_counter() - started)
                if request.span is not None:
                    request.span.set_attribute("hodei.outcome", outcome)

    async def _left(self, request: _Request, outcome: str, seconds: float) -> None:
        with anyio.CancelScope(shield=True):
            if request.row and not self.closing:
                with contextlib.suppress(Exception):
                    await self._call(self.records.leave, request.id)
            self.wake()  # the requests behind it may take what it was kept
        if request.waiting is not None:
            request.waiting.end()
        log.info("request %s left the queue after %.1f s: %s", request.id, seconds, outcome)
        if self.telemetry is not None:
            self.telemetry.queue_left(outcome, seconds)

    async def _serve(self, request: _Request, wait_seconds: float, waits: Callable[[], None]) -> Provisioned:
        telemetry = self.provisioner.telemetry
        while True:
            await self._decided(request, wait_seconds, waits)
            outcome, request.outcome = request.outcome, None
            if isinstance(outcome, BaseException):
                raise outcome
            assert outcome is not None
            provider = outcome.candidate.provider
            with telemetry.provision_span() if telemetry is not None else contextlib.nullcontext() as span:
                provisioned = await self.provisioner.start(
                    request.job, provider, outcome.worker_id, outcome.token, request.attempts,
                    len(request.tried) + 1, streak=bool(outcome.candidate.provision_failures
                                                        or outcome.candidate.cooldown_until is not None))
                if provisioned is not None and span is not None:
                    span.set_attribute("hodei.worker_id", provisioned.worker.id)
            if provisioned is not None:
                return provisioned
            request.tried.add(provider.id)
            if len(request.tried) >= self.provisioner.settings.max_attempts:
                raise NoProviderAvailable("no provider could take the worker: " + "; ".join(
                    f"{a.provider}: {a.reason}" for a in request.attempts), request.attempts)
            request.deciding = True  # to another provider, in the next round
            self.wake()

    async def _decided(self, request: _Request, wait_seconds: float, waits: Callable[[], None]) -> None:
        """Until a round decided ``request``: leading the rounds while nobody else does."""
        while request.outcome is None:
            if request.arrival is not None:
                waits()
            if request.deadline is not None and datetime.now(UTC) >= request.deadline:
                last = request.last or NoProviderAvailable("no provider is free", [])
                raise NoProviderAvailable(f"no provider became free within the {wait_seconds:g} s the request "
                                          f"could wait; last: {last}", last.attempts, last.summary)
            if not self._leading:
                self._leading = True
                try:
                    await self._lead(request, waits)
                finally:
                    self._leading = False
                    self._handoff()
                continue
            left = math.inf if request.deadline is None else (request.deadline - datetime.now(UTC)).total_seconds()
            with anyio.move_on_after(max(0.0, left)):
                await request.nudge.wait()
            request.nudge = anyio.Event()

    async def _lead(self, request: _Request, waits: Callable[[], None]) -> None:
        """Rounds, each when something changed (or the sweep is due), until ``request`` is decided or its
        wait is over."""
        seen = self._generation - 1  # a round at once: the request came in
        while request.outcome is None:
            left = self.sweep_seconds
            if request.deadline is not None:
                left = min(left, (request.deadline - datetime.now(UTC)).total_seconds())
                if left <= 0:
                    return
            await self._next_change(left, seen)
            if request.deadline is not None and datetime.now(UTC) >= request.deadline:
                return
            seen = self._generation
            with anyio.CancelScope(shield=True):  # a round's reservations are answered, whoever led it
                await self._round()
            if request.arrival is not None:
                waits()

    def _handoff(self) -> None:
        """The rounds go on with another undecided request of this process, if one is left."""
        if self._leading:
            return
        for other in self._requests.values():
            if other.deciding and not other.gone:
                other.nudge.set()
                return

    # -- a round --------------------------------------------------------------------------------------

    async def _round(self) -> None:
        mine = [r for r in self._requests.values() if r.deciding and not r.gone and r.outcome is None]
        if not mine:
            return
        self.rounds += 1
        try:
            line = await self._call(self.records.line, self.claim_grace_seconds)
        except Exception as exc:  # the database's failure is each request's (as its own write's would be)
            for request in mine:
                request.settle(exc)
            return
        now = datetime.now(UTC)
        in_line = {entry.id: entry for entry in line}
        ours = {r.id for r in mine if r.row}
        for request in mine:
            entry = in_line.get(request.id)
            expired = request.deadline is not None and request.deadline <= now  # its own task answers that
            if request.row and not expired and (entry is None or entry.daemon != self.waiter):
                request.settle(WaitCancelled(f"request {request.id} was cancelled while waiting for a provider",
                                             []))
        mine = [r for r in mine if r.outcome is None]
        await self._learn(line, ours)
        order: list[tuple[tuple[int, Any, Any], _Request | InLine]] = [(r.order(now), r) for r in mine]
        order += [(queue_order(e.priority, (e.enqueued_at, 0), e.id), e) for e in line if e.id not in ours]
        order.sort(key=lambda pair: pair[0])
        picks, unplaced = await self._decide([item for _, item in order])
        await self._reserve(picks)
        await self._not_placed(unplaced)
        await self._confirm()

    async def _learn(self, line: list[InLine], ours: set[str]) -> None:
        """The jobs of the requests waiting at other daemons (read once each)."""
        others = {e.id for e in line if e.id not in ours}
        for gone in set(self._others) - others:
            del self._others[gone]
        new = [i for i in others if i not in self._others]
        if not new:
            return
        stored = await self._call(self.records.requirements_of, new)
        for request_id, document in stored.items():
            key = json.dumps(document, sort_keys=True, default=str)
            if key not in self._jobs:
                try:
                    self._jobs[key] = self.parse(document if isinstance(document, Mapping) else {})
                except Exception as exc:  # a row edited by hand, or a field a removed plugin declared
                    log.debug("waiting request %s keeps nothing: %s", request_id, exc)
                    self._jobs[key] = None
            self._others[request_id] = key
        used = set(self._others.values())
        for key in [k for k in self._jobs if k not in used]:
            del self._jobs[key]

    async def _decide(self, order: list[_Request | InLine]) -> tuple[list[tuple[_Request, Candidate]],
                                                                       list[tuple[_Request, str]]]:
        """In queue order: each of this process's requests on the best provider free in the view, those
        behind an unplaced one only on providers it could not take. Each pick counts in the view at once."""
        selector = self.selection.snapshot()
        kept: set[uuid.UUID] = set()
        keeping: set[str] = set()  # the jobs whose providers are kept (one of them ahead was not placed)
        fits: dict[str, frozenset[uuid.UUID]] = {}
        why: dict[str, str] = {}  # per job: why it is not placed, computed once
        picks: list[tuple[_Request, Candidate]] = []
        unplaced: list[tuple[_Request, str]] = []

        def keep(key: str, job: Requirements | None) -> None:
            if key not in keeping and job is not None:
                keeping.add(key)
                if key not in fits:
                    fits[key] = frozenset(c.provider.id for c in self.selection.could_fit(job, selector))
                kept.update(fits[key])

        order = [item for item in order if isinstance(item, InLine) or not item.gone]
        for position, item in enumerate(order):
            if position % _YIELD_EVERY == _YIELD_EVERY - 1:
                await anyio.sleep(0)
            if isinstance(item, InLine):  # waits at another daemon: what it could take is kept for it
                key = self._others.get(item.id)
                if key is not None:
                    keep(key, self._jobs.get(key))
                continue
            if len(picks) >= MAX_PICKS:  # the rest in the next round, at once
                self.wake()
                break
            if item.key in keeping:  # one like it ahead found nothing: neither can this one
                unplaced.append((item, why.get(item.key) or self._kept_reason(item, selector, kept)))
                continue
            candidates, why_none = item.context.run(self.selection.candidates, item.job,
                                                    len(kept) + len(item.tried) + 1, selector)
            chosen = next((c for c in candidates if c.provider.id not in kept and c.provider.id not in item.tried),
                          None)
            if chosen is None:
                if item.key not in why:
                    why[item.key] = why_none() if not candidates else self._kept_reason(item, selector, kept)
                unplaced.append((item, why[item.key]))
                keep(item.key, item.job)
                continue
            picks.append((item, chosen))
            await self.provisioner.slots_changed(chosen.provider.id, 1, 0)  # the next decision sees it taken
        return picks, unplaced

    def _kept_reason(self, request: _Request, selector: Selector, kept: set[uuid.UUID]) -> str:
        fitting = [c for c in self.selection.could_fit(request.job, selector) if c.provider.id in kept]
        if not fitting:
            return "every provider that fits is taken"
        count = len(fitting)
        return (f"{count} provider{'s' if count > 1 else ''} that fit{'' if count > 1 else 's'} "
                f"{'are' if count > 1 else 'is'} kept for requests waiting ahead in the placement queue")

    async def _reserve(self, picks: list[tuple[_Request, Candidate]]) -> None:
        """The round's picks, reserved in one transaction; each request told how its own went."""
        if not picks:
            return
        tokens = [secrets.token_urlsafe(32) for _ in picks]
        writes = [Reservation(c.provider.id, str(uuid.uuid4()), token_digest(token), r.job.document(),
                              tuple(a.as_dict() for a in r.attempts), (r.id, self.waiter) if r.row else None)
                  for (r, c), token in zip(picks, tokens, strict=True)]
        self.batches += 1
        try:
            results: list[Worker | HodeiError | BaseException] = list(
                await self._call(self.provisioner.records.write_many, writes))
        except Exception as exc:
            results = [exc] * len(writes)
        self.reserved += sum(isinstance(result, Worker) for result in results)
        again = False
        for (request, candidate), write, token, result in zip(picks, writes, tokens, results, strict=True):
            provider = candidate.provider
            if isinstance(result, Worker):
                request.row = False
                if request.gone:  # its client left during the round: the slot goes back at once
                    await self.provisioner.give_back(candidate.provider, write.worker_id, None)
                else:
                    request.settle(_Placed(candidate, write.worker_id, token))
                continue
            await self.provisioner.slots_changed(provider.id, -1, 0)  # not taken after all
            if isinstance(result, CapacityExhausted):  # another daemon took it first: the next round
                request.refused += 1
                request.attempts.append(Attempt(provider.name, "refused", str(result), 0.0))
                if request.refused >= MAX_REFUSALS:
                    request.settle(NoProviderAvailable("no provider could take the worker: " + "; ".join(
                        f"{a.provider}: {a.reason}" for a in request.attempts), request.attempts))
                again = True
            elif isinstance(result, RequestLeft):
                request.settle(WaitCancelled(f"request {request.id} was cancelled while waiting for a provider",
                                             request.attempts))
            else:
                request.settle(result)
        if again:
            self.wake()

    async def _not_placed(self, unplaced: list[tuple[_Request, str]]) -> None:
        """Those that may not wait are answered; new ones that may join the queue (in one transaction);
        waiting ones say why they still wait."""
        joining: list[_Request] = []
        reasons: dict[str, str] = {}
        never: dict[str, bool] = {}
        selector = self.selection.snapshot()
        for request, why in unplaced:
            summary = why
            last = NoProviderAvailable(f"no provider fits: {summary}" if not request.attempts else
                                       "no provider could take the worker: " + "; ".join(
                                           f"{a.provider}: {a.reason}" for a in request.attempts),
                                       request.attempts, summary)
            if request.deadline is None:
                request.settle(last)
                continue
            previous, request.last = request.last, last
            if request.arrival is None or not request.row:
                if request.arrival is None:
                    if request.key not in never:
                        never[request.key] = not self.selection.could_fit(request.job, selector)
                    if never[request.key]:
                        request.settle(NoProviderAvailable(
                            f"no provider could ever take the worker, whatever it waited for: {last}",
                            last.attempts, last.summary))
                        continue
                joining.append(request)
            elif previous is None or _reasons(previous) != _reasons(last):
                reasons[request.id] = _reasons(last)
            if request.waiting is not None:
                request.waiting.now(_cause(last))
        if joining:
            await self._join(joining)
        if reasons:
            with contextlib.suppress(Exception):  # said again by the next round
                await self._call(self.records.note_reasons, reasons)

    async def _confirm(self) -> None:
        """Now and then: the rows of this process's waiting requests are confirmed (their clients wait)."""
        if time.monotonic() - self._touched > self.claim_grace_seconds / 3:
            self._touched = time.monotonic()
            alive = [r.id for r in self._requests.values() if r.row and not r.gone]
            if alive:
                with contextlib.suppress(Exception):  # a missed confirmation is made up by the next one
                    await self._call(self.records.touch_many, alive)

    async def _join(self, joining: list[_Request]) -> None:
        joining = [r for r in joining if not r.gone]
        entries = [(r.id, r.job.priority, r.deadline, r.job.document(), self.waiter, _reasons(r.last), r.arrival)
                   for r in joining if r.deadline is not None]
        try:
            arrived = await self._call(self.records.join_many, entries)
        except Exception as exc:
            for request in joining:
                request.settle(exc)
            return
        for request in joining:
            first = request.arrival is None
            request.arrival, request.row = arrived.get(request.id, datetime.now(UTC)), True
            if first and request.last is not None:
                assert request.deadline is not None
                log.info("request %s waits for a provider (priority %d, until %s): %s", request.id,
                         request.job.priority, request.deadline.isoformat(timespec="seconds"), _reasons(request.last))
                request.waiting = _Waiting(self.telemetry, _cause(request.last))

    # -- reading and cancelling -------------------------------------------------------------------------

    async def entries(self, limit: int, after: tuple[int, datetime, str] | None = None) -> list[QueueEntry]:
        """Up to ``limit`` waiting requests in queue order, after the one keyed ``after`` (priority, arrival, id)."""
        queued, ahead = await self._call(self.records.page, self.claim_grace_seconds, limit, after)
        return [QueueEntry(position, q.id, q.priority, q.enqueued_at, q.deadline, q.reasons, q.daemon)
                for position, q in enumerate(queued, start=ahead + 1)]

    async def cancel(self, request_id: str) -> bool:
        """Take a waiting request out of the queue; its waiter (here, or another daemon's in its next round)
        answers that it was cancelled. ``False`` when no such request waits."""
        gone: bool = await self._call(self.records.leave, request_id)
        scope = self._waiting.get(request_id)
        if gone and scope is not None:  # (not one placed meanwhile: its worker is being started)
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


def _reasons(exc: NoProviderAvailable | None) -> str:
    if exc is None:
        return ""
    if exc.summary:
        return exc.summary
    return "; ".join(f"{a.provider}: {a.reason}" for a in exc.attempts) or str(exc)
