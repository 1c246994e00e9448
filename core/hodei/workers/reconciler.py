"""Makes the workers table and the backends agree, whatever happened in between.

Every ``reconcile_seconds``, for each provider: a worker the backend no longer has is marked
TERMINATED (its slot freed); a backend worker with Hodei's labels and no live row (an orphan, e.g.
after a crash mid-provision) is removed once it has been seen for ``orphan_grace_seconds``; a
reservation whose provisioning never finished expires; a worker past its job's ``timeout_seconds`` or
``max_lifetime_seconds``, whichever is shorter, is released; a release that failed is retried. Safe with several daemons on one database: every
change is a conditional transition, and losing a race changes nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskStatus

from hodei.domain import BackendWorker, Provider, WorkerHandle
from hodei.settings import WorkerSettings
from hodei.workers.provisioner import Provisioner
from hodei.workers.records import ENDED, IllegalTransition, Worker, WorkerRecords, WorkerState

log = logging.getLogger(__name__)

LIVE = (WorkerState.PROVISIONING, WorkerState.RUNNING, WorkerState.RELEASING)


class Reconciler:
    name = "reconciler"

    def __init__(self, pm: Any, records: WorkerRecords, provisioner: Provisioner, settings: WorkerSettings, *,
                 providers: Callable[[], dict[uuid.UUID, Provider]], call: Callable[..., Any],
                 on_slots: Callable[[], Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 telemetry: Any = None):
        self.pm, self.records, self.provisioner, self.settings = pm, records, provisioner, settings
        self.providers = providers
        self._call = call
        self.on_slots = on_slots
        self.clock = clock
        self.telemetry = telemetry
        self.first_seen: dict[tuple[uuid.UUID, str], float] = {}  # orphans, by (provider, worker id)
        self.unreachable: set[uuid.UUID] = set()
        self.actions: dict[str, int] = {}
        self.rounds = 0
        self.stopping = False
        self._wake = anyio.Event()

    def configure(self, settings: WorkerSettings) -> None:
        self.settings = settings

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while not self.stopping:
            with anyio.move_on_after(self.settings.reconcile_seconds):
                await self._wake.wait()
            self._wake = anyio.Event()
            if self.stopping:
                return
            try:
                await self.reconcile()
            except Exception:  # one bad round must not end reconciliation
                log.exception("reconciliation round failed")

    def _count(self, action: str, what: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1
        if self.telemetry is not None:
            self.telemetry.record_reconcile(action)
        log.info("reconcile: %s", what)

    async def reconcile(self) -> None:
        """One round over every provider (concurrently, each bounded by the release timeout)."""
        await self._expire_reservations()
        providers = self.providers()
        async with anyio.create_task_group() as group:
            # Every status: a DISABLED provider's workers still run, and still need watching.
            for provider in providers.values():
                group.start_soon(self._reconcile_provider, provider)
        self.first_seen = {k: v for k, v in self.first_seen.items() if k[0] in providers}
        if self.on_slots is not None:
            result = self.on_slots()
            if hasattr(result, "__await__"):
                await result
        self.rounds += 1

    async def _expire_reservations(self) -> None:
        stale = await self._call(self.records.stale_reservations,
                                 timedelta(seconds=self.settings.reservation_timeout_seconds))
        for worker in stale:
            try:
                await self._call(self.records.transition, worker.id, WorkerState.FAILED,
                                 expected=[WorkerState.PROVISIONING],
                                 reason="the reservation expired: provisioning never finished (a daemon stopped "
                                        "mid-way?)")
                self._count("reservation_expired", f"reservation {worker.id} on {worker.provider_name!r} expired")
            except IllegalTransition:
                pass  # it finished meanwhile

    async def _reconcile_provider(self, provider: Provider) -> None:
        backend = await self._listed(provider)
        if backend is None:
            return
        rows = await self._call(self.records.find, provider_id=provider.id)
        for worker in rows:
            await self._reconcile_worker(worker, worker.id in backend)
        ours = {w.id for w in rows if w.state not in ENDED}
        for worker_id, found in backend.items():
            if worker_id not in ours:
                await self._remove_orphan(provider, worker_id, found)

    async def _listed(self, provider: Provider) -> dict[str, BackendWorker] | None:
        """The provider's workers as its backend lists them, or None when it cannot say."""
        timeout = self.settings.release_timeout_seconds
        try:
            with anyio.fail_after(timeout):
                listed = await self.pm.provider_hooks.list_workers(provider, timeout)
            backend: dict[str, BackendWorker] = {w.worker_id: w for w in listed}
        except Exception as exc:
            # Said once, not every round: the health monitor reports the backend's state already.
            level = logging.DEBUG if provider.id in self.unreachable else logging.WARNING
            self.unreachable.add(provider.id)
            log.log(level, "reconcile: cannot list the workers of %r (%s: %s); skipped until it answers",
                    provider.name, type(exc).__name__, exc)
            return None
        if provider.id in self.unreachable:
            self.unreachable.discard(provider.id)
            log.info("reconcile: the workers of %r can be listed again", provider.name)
        return backend

    async def _reconcile_worker(self, worker: Worker, present: bool) -> None:
        """One row of the workers table against whether the backend has it."""
        if self.provisioner.releasing(worker.id):
            return  # its release is in flight here: what the backend lists is that release half done
        if worker.state is WorkerState.RUNNING and not present:
            await self._end(worker, WorkerState.TERMINATED, "the backend no longer has it", "terminated")
        elif worker.state is WorkerState.RELEASING:
            if present and self._release_given_up(worker):
                await self._retry_release(worker)
            elif present:
                pass  # another daemon may be releasing it right now: retried once that could have ended
            else:
                await self._end(worker, WorkerState.TERMINATED, worker.reason or "released", "terminated")
        elif worker.state is WorkerState.RUNNING and (why := self._past_lifetime(worker)):
            try:
                await self.provisioner.release(worker.id, reason=why)
                self._count("lifetime_released", f"worker {worker.id} released: {why}")
            except Exception as exc:
                log.warning("reconcile: releasing %s failed: %s", worker.id, exc)

    def _release_given_up(self, worker: Worker) -> bool:
        """Whether a release that is not this process's has had the time to finish (it would have
        ended the worker or noted its failure by now): only then is it retried, so a release in flight
        on another daemon is not asked of the backend a second time."""
        quiet = datetime.now(UTC) - worker.updated_at
        return quiet > timedelta(seconds=self.settings.release_timeout_seconds)

    def _past_lifetime(self, worker: Worker) -> str:
        """Why the worker has lived long enough, or "" while it has not (or when its row's created_at
        cannot be read: its age is not known, and a guess must not stop a running job)."""
        if worker.unreadable("created_at"):
            return ""
        age = datetime.now(UTC) - worker.created_at
        own = worker.requirements.get("timeout_seconds")
        if isinstance(own, int) and own > 0 and age > timedelta(seconds=own):
            return f"its job's timeout_seconds ({own} s) ended"
        limit = self.settings.max_lifetime_seconds
        return "past its maximum lifetime" if limit and age > timedelta(seconds=limit) else ""

    async def _remove_orphan(self, provider: Provider, worker_id: str, found: BackendWorker) -> None:
        """A worker the backend has and the table does not (or has ended): removed once it has been seen
        for ``orphan_grace_seconds`` (a provision in flight is not an orphan)."""
        key = (provider.id, worker_id)
        seen = self.first_seen.setdefault(key, self.clock())
        if self.clock() - seen < self.settings.orphan_grace_seconds:
            return
        timeout = self.settings.release_timeout_seconds
        try:
            with anyio.fail_after(timeout):
                await self.pm.provider_hooks.deprovision(provider, WorkerHandle(worker_id, found.backend_id), timeout)
            self.first_seen.pop(key, None)
            self._count("orphan_removed", f"removed orphan {worker_id} ({found.backend_id}) from {provider.name!r}")
        except Exception as exc:
            log.warning("reconcile: removing orphan %s from %r failed: %s", worker_id, provider.name, exc)

    async def _end(self, worker: Worker, state: WorkerState, reason: str, action: str) -> None:
        try:
            await self._call(self.records.transition, worker.id, state, reason=reason, expected=[worker.state])
            self._count(action, f"worker {worker.id} on {worker.provider_name!r}: {state.value} ({reason})")
        except IllegalTransition:
            pass

    async def _retry_release(self, worker: Worker) -> None:
        try:
            await self.provisioner.release(worker.id, reason=worker.reason.split(";")[0] or "released")
            self._count("release_retried", f"worker {worker.id}: release retried")
        except Exception as exc:
            log.warning("reconcile: retrying the release of %s failed: %s", worker.id, exc)
