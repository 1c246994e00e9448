"""A request for a worker becomes a running worker on the best provider, or an answer saying why not.

Select; reserve a slot on the winner in the database (atomic, whatever else shares it); ask the
provider's plugin to start the worker within a timeout; record its handle. A provider that fails
(error or timeout) gets its slot back, the failure counted toward its cooldown (:mod:`hodei.cooldown`;
not a failure the job caused), and the next-ranked provider is tried, up to ``max_attempts``. The
answer lists every provider tried and why each failed.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio

from hodei.calls import run_blocking
from hodei.domain import Provider, WorkerHandle, WorkerRequest
from hodei.errors import HodeiError, JobFailed
from hodei.redaction import HELD_SECRETS, mask_secrets, secret_forms
from hodei.selection import Requirements
from hodei.selection.candidates import Candidate
from hodei.settings import WorkerSettings
from hodei.workers.batching import WorkerWrites
from hodei.workers.records import (
    CapacityExhausted,
    IllegalTransition,
    Reservation,
    Transition,
    Worker,
    WorkerRecords,
    WorkerState,
    token_digest,
)

log = logging.getLogger(__name__)

# Capacity refusals cost one query; still, a request should not walk thousands of full providers.
MAX_REFUSALS = 50


class CooldownRecorder(Protocol):
    def record(self, provider_id: uuid.UUID, error: str | None) -> Any:
        """Count a provision that failed with ``error`` (None: succeeded); sync, run through ``call``."""
        ...


class CandidateSource(Protocol):
    def candidates(self, job: Requirements, limit: int) -> tuple[list[Candidate], Callable[[], str]]:
        """The best ``limit`` providers for ``job``, best first, and a way to say why none fit."""
        ...


@dataclass(frozen=True)
class Attempt:
    provider: str
    outcome: str  # "provisioned", "failed" or "refused"
    reason: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "outcome": self.outcome, "reason": self.reason,
                "seconds": round(self.seconds, 4)}


class NoProviderAvailable(HodeiError):
    """No provider could take the worker; ``attempts`` says what was tried, ``summary`` why the rest were out."""

    def __init__(self, message: str, attempts: list[Attempt], summary: str = "", *, the_jobs: bool = False):
        self.attempts = attempts
        self.summary = summary
        self.the_jobs = the_jobs  # the job itself failed to start: waiting would not help
        super().__init__(message)


@dataclass
class _Outcome:
    outcome: str | None = None


@dataclass
class _Held:
    """The attempt of a request that holds a slot right now: given back if the request is cancelled."""

    provider: Provider | None = None
    worker_id: str = ""
    handle: WorkerHandle | None = None


@dataclass(frozen=True)
class Provisioned:
    worker: Worker
    attempts: list[Attempt]


def _describe(exc: BaseException, timeout: float, secrets: Iterable[str] = ()) -> str:
    if isinstance(exc, TimeoutError):
        return f"did not answer within {timeout:g} s"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # A plugin's error may quote what it was sent: never let the token or a secret variable through,
    # in any encoding (JSON escapes, a repr, URL encoding, base64).
    text = mask_secrets(text, {form for secret in secrets for form in secret_forms(secret)})
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Provisioner:
    def __init__(self, pm: Any, records: WorkerRecords, settings: WorkerSettings, *,
                 selection: CandidateSource, call: Callable[..., Any] | None = None,
                 on_slots: Callable[[uuid.UUID, int, int], Any] | None = None,
                 on_failure: Callable[[uuid.UUID], Any] | None = None,
                 provider_of: Callable[[uuid.UUID], Provider | None] | None = None, telemetry: Any = None,
                 writes: WorkerWrites | None = None, cooldowns: CooldownRecorder | None = None,
                 on_cooldown: Callable[[uuid.UUID, Any], Any] | None = None):
        """
        :param selection: ranks the providers for a job (``LocalSelection``: the daemon's live selector, or
            one read from the database), recording the decision as a served selection.
        :param call: runs a sync database call off the event loop (the daemon's ``DatabaseLink.call``).
        :param on_slots: told how a provider's worker counts changed, ``(provider_id, reserved, active)``
            as differences, so selection's load follows without a query.
        :param on_failure: told when a provider failed to provision (the daemon checks its health at once;
            the failure itself counts toward the provider's cooldown, not its health).
        :param provider_of: finds a provider by id, for release.
        :param writes: how reservations and transitions reach the database (the daemon's batches them
            across concurrent requests); one by one through ``call`` by default.
        :param cooldowns: where provision outcomes are counted toward the provider's cooldown.
        :param on_cooldown: told the streak ``cooldowns`` wrote, ``(provider_id, streak)``, so selection
            skips (or readmits) the provider at once.
        """
        self.pm, self.records, self.settings = pm, records, settings
        self.selection = selection
        self._call = call or run_blocking
        self.on_slots = on_slots
        self.on_failure = on_failure
        self.provider_of = provider_of
        self.telemetry = telemetry
        self.writes = writes or WorkerWrites(records, self._call)
        self.cooldowns, self.on_cooldown = cooldowns, on_cooldown
        # Releases in flight in this process, by worker id: a second release (the API's, the reconciler's)
        # waits for the first instead of asking the backend again.
        self._releases: dict[str, anyio.Event] = {}

    async def slots_changed(self, provider_id: uuid.UUID, reserved: int, active: int) -> None:
        """Tell ``on_slots`` how a provider's worker counts changed (the placement queue's reservations too)."""
        if self.on_slots is not None:
            result = self.on_slots(provider_id, reserved, active)
            if hasattr(result, "__await__"):
                await result

    async def provision(self, job: Requirements) -> Provisioned:
        """One request on its own: reserve a slot on the best provider and start the worker there, the next
        provider on a failure. (The placement queue decides requests in rounds and calls :meth:`start`.)"""
        held = _Held()
        try:
            if self.telemetry is None:
                return await self._provision(job, held)
            with self.telemetry.provision_span() as span:
                provisioned = await self._provision(job, held)
                span.set_attribute("hodei.worker_id", provisioned.worker.id)
                return provisioned
        except anyio.get_cancelled_exc_class():
            # The caller went away (its deadline passed, it disconnected) while an attempt held a slot:
            # give the slot back now, not when the reservation expires.
            if held.provider is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(self.settings.release_timeout_seconds):
                    await self.give_back(held.provider, held.worker_id, held.handle)
            raise

    def _attempt_span(self, provider: Provider, attempt: int, worker_id: str) -> Any:
        if self.telemetry is None:
            return contextlib.nullcontext(_Outcome())
        return self.telemetry.attempt_span(provider.name, provider.provider_type, attempt=attempt,
                                           attributes={"hodei.worker_id": worker_id})

    async def _provision(self, job: Requirements, held: _Held) -> Provisioned:
        # Only as many as a request can try: ranking every provider of a large fleet per request is waste.
        candidates, why_none = self.selection.candidates(job, self.settings.max_attempts + MAX_REFUSALS)
        attempts: list[Attempt] = []
        tried = refused = 0
        for candidate in candidates:
            if tried >= self.settings.max_attempts or refused >= MAX_REFUSALS:
                break
            provider = candidate.provider
            worker_id, token = str(uuid.uuid4()), secrets.token_urlsafe(32)
            started = time.perf_counter()
            try:
                await self.writes.write(Reservation(provider.id, worker_id, token_digest(token), job.document(),
                                                    tuple(a.as_dict() for a in attempts)))
            except CapacityExhausted as exc:
                refused += 1
                attempts.append(Attempt(provider.name, "refused", str(exc), time.perf_counter() - started))
                continue
            await self.slots_changed(provider.id, 1, 0)
            tried += 1
            provisioned = await self._start(job, provider, worker_id, token, attempts, tried, started, held,
                                            streak=_has_streak(candidate))
            if provisioned is not None:
                return provisioned
        summary = ""
        if not candidates:
            summary = why_none()
            message = f"no provider fits: {summary}"
        else:
            message = "no provider could take the worker: " + "; ".join(
                f"{a.provider}: {a.reason}" for a in attempts)
        raise NoProviderAvailable(message, attempts, summary)

    async def _count(self, provider: Provider, error: str | None) -> None:
        """Record a provision's outcome for the provider's cooldown. Never fails the request: a database
        that cannot take it now loses one count, not the worker or the answer."""
        if self.cooldowns is None:
            return
        try:
            streak = await self._call(self.cooldowns.record, provider.id, error)
        except Exception as exc:
            log.warning("recording the provision outcome of %r for its cooldown failed: %s", provider.name, exc)
            return
        if streak is None:
            return
        if error is not None and streak.until is not None and streak.until > datetime.now(UTC):
            log.warning("provider %r cools down until %s after %d failed provisions in a row", provider.name,
                        streak.until.isoformat(timespec="seconds"), streak.failures)
        if self.on_cooldown is not None:
            self.on_cooldown(provider.id, streak)

    async def start(self, job: Requirements, provider: Provider, worker_id: str, token: str,
                    attempts: list[Attempt], attempt: int, *, streak: bool = False) -> Provisioned | None:
        """Start the worker on the slot reserved for it (``worker_id``, with ``token``; the reservation is
        made): the plugin is asked, the worker recorded as running. ``None``: the provider failed, its slot
        was given back and the failure counted toward its cooldown (``attempts`` says why): try another.
        ``streak``: the provider has failed provisions in a row that a success ends.
        :raises NoProviderAvailable: the job's own failure (no other provider is worth trying)."""
        held = _Held()
        try:
            return await self._start(job, provider, worker_id, token, attempts, attempt, time.perf_counter(), held,
                                     streak=streak)
        except anyio.get_cancelled_exc_class():
            if held.provider is not None:  # as in provision(): the slot is given back at once
                with anyio.CancelScope(shield=True), anyio.move_on_after(self.settings.release_timeout_seconds):
                    await self.give_back(held.provider, held.worker_id, held.handle)
            raise

    async def _start(self, job: Requirements, provider: Provider, worker_id: str, token: str,
                     attempts: list[Attempt], attempt: int, started: float, held: _Held, *,
                     streak: bool = False) -> Provisioned | None:
        held.provider, held.worker_id, held.handle = provider, worker_id, None
        request = WorkerRequest(worker_id=worker_id, server_address=self.settings.server_address, token=token,
                                cpu=job.cpu or None, memory=job.memory or None, gpu=job.gpu,
                                labels=dict(job.labels), image=job.image, command=job.command,
                                env=dict(job.env), secret_env=dict(job.secret_env),
                                timeout_seconds=job.timeout_seconds)
        timeout = self.settings.provision_timeout_seconds
        failure: Exception | None = None
        with self._attempt_span(provider, attempt, worker_id) as record, \
                HELD_SECRETS.hold(token, *job.secret_env.values()):
            try:
                handle = await self.pm.provider_hooks.provision(provider, request, timeout)
                held.handle = handle
            except Exception as exc:
                failure = exc
                record.outcome = "timeout" if isinstance(exc, TimeoutError) else "failed"
        if failure is not None:
            reason = _describe(failure, timeout, (token, *job.secret_env.values()))
            attempts.append(Attempt(provider.name, "failed", reason, time.perf_counter() - started))
            the_jobs = isinstance(failure, JobFailed)
            log.warning("provisioning on %r failed: %s; %s", provider.name, reason,
                        "the job's own failure" if the_jobs else "trying the next provider")
            await self.writes.write(Transition(worker_id, WorkerState.FAILED, f"provision failed: {reason}",
                                               attempts=tuple(a.as_dict() for a in attempts)))
            held.provider = None
            await self.slots_changed(provider.id, -1, 0)
            if the_jobs:
                # Not the provider's cooldown, and not another provider's slot: one tenant's bad job
                # must not take a shared provider away from everyone else.
                raise NoProviderAvailable(f"the job cannot start: {provider.name}: {reason} (the job's own "
                                          "failure: no other provider was tried)", attempts, the_jobs=True)
            await self._count(provider, reason)
            if self.on_failure is not None:
                self.on_failure(provider.id)
            return None
        attempts.append(Attempt(provider.name, "provisioned", "", time.perf_counter() - started))
        try:
            worker = await self.writes.write(Transition(
                worker_id, WorkerState.RUNNING, "provisioned", frozenset({WorkerState.PROVISIONING}),
                handle={"backend_id": handle.backend_id, "details": dict(handle.details)},
                backend_id=handle.backend_id, attempts=tuple(a.as_dict() for a in attempts)))
        except IllegalTransition:
            # The reconciler expired the reservation meanwhile: the worker must not run unrecorded.
            held.provider = None
            await self._deprovision(provider, handle)
            raise
        await self.slots_changed(provider.id, -1, 1)
        if streak:
            await self._count(provider, None)  # the success that ends a streak
        log.info("worker %s runs on %r (%s)", worker_id, provider.name, handle.backend_id)
        return Provisioned(worker, attempts)

    async def give_back(self, provider: Provider, worker_id: str, handle: WorkerHandle | None) -> None:
        """Undo a cancelled attempt: its reservation fails (freeing the slot), or the worker it started
        is stopped. A worker a plugin's abandoned thread starts later is an orphan the reconciler removes."""
        reason = "the request was cancelled while provisioning (its deadline passed or the client went away)"
        try:
            await self.writes.write(Transition(worker_id, WorkerState.FAILED, reason,
                                               frozenset({WorkerState.PROVISIONING})))
        except IllegalTransition:  # recorded as running just before the cancel (released), or ended already
            try:
                if (await self._call(self.records.get, worker_id)).state is WorkerState.RUNNING:
                    await self.slots_changed(provider.id, -1, 1)
                    await self.release(worker_id, reason)
            except Exception as exc:
                log.warning("releasing worker %s of a cancelled request failed: %s", worker_id, exc)
            return
        except Exception as exc:
            log.warning("giving back the slot of cancelled request %s failed: %s; it expires with its "
                        "reservation", worker_id, exc)
            return
        await self.slots_changed(provider.id, -1, 0)
        log.info("provisioning of worker %s on %r given up: %s", worker_id, provider.name, reason)
        if isinstance(handle, WorkerHandle):
            try:
                await self._deprovision(provider, handle)
            except Exception as exc:
                log.warning("stopping worker %s of a cancelled request failed: %s; the reconciler removes it "
                            "as an orphan", worker_id, exc)

    async def _deprovision(self, provider: Provider, handle: WorkerHandle) -> None:
        await self.pm.provider_hooks.deprovision(provider, handle, self.settings.release_timeout_seconds)

    def releasing(self, worker_id: str) -> bool:
        """Whether this process is releasing the worker right now (the reconciler leaves it alone)."""
        return worker_id in self._releases

    async def release(self, worker_id: str, reason: str = "released") -> Worker:
        """Stop the worker through its plugin and free its slot. Idempotent: an ended worker is returned as is,
        and a release of a worker this process is releasing already waits for that one (the backend is
        asked once)."""
        running = self._releases.get(worker_id)
        if running is not None:
            await running.wait()
            found: Worker = await self._call(self.records.get, worker_id)
            return found
        done = self._releases[worker_id] = anyio.Event()
        try:
            if self.telemetry is None:
                return await self._release(worker_id, reason)
            with self.telemetry.release_span(worker_id) as span:
                worker = await self._release(worker_id, reason)
                span.set_attributes({"hodei.provider": worker.provider_name,
                                     "hodei.outcome": worker.state.value.lower()})
                return worker
        finally:
            del self._releases[worker_id]
            done.set()

    async def _release(self, worker_id: str, reason: str) -> Worker:
        # One write finds the worker and, if it runs, marks it RELEASING (one still PROVISIONING is refused).
        asked = datetime.now(UTC)
        worker = await self.writes.write(Transition(worker_id, WorkerState.RELEASING, reason,
                                                    frozenset({WorkerState.RUNNING}), release=True))
        if worker.state in (WorkerState.TERMINATED, WorkerState.FAILED):
            log.info("worker %s on %r had already ended (%s); nothing to release", worker_id, worker.provider_name,
                     worker.state.value)
            return worker
        if worker.updated_at < asked and asked - worker.updated_at < timedelta(
                seconds=self.settings.release_timeout_seconds):
            # Another daemon started releasing it moments ago and may be asking the backend right now:
            # that release ends it, or the reconciler retries it once it could have.
            return worker
        provider = self.provider_of(worker.provider_id) if self.provider_of else None
        if provider is None:
            ended = await self._end_release(worker_id, WorkerState.FAILED, (
                f"{reason}; its provider {worker.provider_name!r} no longer exists, "
                "so the backend was not asked to stop it"))
        else:
            handle = WorkerHandle(worker.id, worker.backend_id or "", (worker.handle or {}).get("details") or {})
            try:
                await self._deprovision(provider, handle)
            except Exception as exc:
                text = _describe(exc, self.settings.release_timeout_seconds)
                await self._call(self.records.note, worker_id, f"{reason}; stopping it failed ({text}), will retry")
                raise HodeiError(f"releasing worker {worker_id} on {provider.name!r} failed: {text}; "
                                 "the reconciler retries") from None
            ended = await self._end_release(worker_id, WorkerState.TERMINATED, reason)
        if ended is None:  # another daemon's reconciler saw it gone and ended it first: released all the same
            found: Worker = await self._call(self.records.get, worker_id)
            log.info("worker %s on %r was ended meanwhile by another daemon (%s)", worker_id, found.provider_name,
                     found.state.value)
            return found
        await self.slots_changed(ended.provider_id, 0, -1)
        log.info("worker %s released from %r (%s): %s", worker_id, ended.provider_name, ended.backend_id or "-",
                 ended.state.value)
        return ended

    async def _end_release(self, worker_id: str, state: WorkerState, reason: str) -> Worker | None:
        """The release's last write; None when the worker had ended meanwhile (that freed its slot)."""
        try:
            worker: Worker = await self.writes.write(Transition(worker_id, state, reason,
                                                                frozenset({WorkerState.RELEASING})))
            return worker
        except IllegalTransition:
            current: Worker = await self._call(self.records.get, worker_id)
            if current.state in (WorkerState.TERMINATED, WorkerState.FAILED):
                return None
            raise


def _has_streak(candidate: Candidate) -> bool:
    """Whether a success on this provider ends a streak of failed provisions (other successes cost no write)."""
    return bool(candidate.provision_failures or candidate.cooldown_until is not None)
