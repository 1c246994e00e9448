"""Group commit of worker writes: the reservations and transitions of concurrent requests, one
transaction for all that arrived while the previous one was committing.

Nothing waits on purpose: a write that finds no batch in flight is committed at once (a batch of one);
under load, the writes that queue up during a commit go together in the next one, so the number of
commits per second stays about the database's commit rate while the writes per second grow with the
concurrency. Every write is still its own decision (:meth:`WorkerRecords.write_many`: a reservation
refused for capacity does not affect the others), and each caller goes on only once its write is
committed, so the guarantees of a single write hold: ``max_workers`` is counted under the provider's
lock, and a reservation is in the database before its plugin is called.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus

from hodei.calls import run_blocking
from hodei.errors import HodeiError
from hodei.workers.records import Worker, WorkerRecords, Write

log = logging.getLogger(__name__)


class WriteNotConfirmed(HodeiError):
    """The daemon stopped before a write's batch was confirmed: it may or may not have been made
    (a reservation left behind expires; a transition is retried by the reconciler)."""


@dataclass(eq=False)
class _Pending:
    write: Write
    done: anyio.Event = field(default_factory=anyio.Event)
    taken: bool = False
    result: Worker | BaseException | None = None

    def settle(self, result: Worker | BaseException) -> None:
        self.result = result
        self.done.set()


class WorkerWrites:
    """Worker writes, batched while :meth:`run` runs (a part of the daemon's task group), made one by one
    otherwise (the CLI on the database).

    :param call: runs a blocking database call off the event loop (the daemon's database link).
    :param max_batch: the most writes one transaction takes.
    :param flushers: how many transactions may be committing at once (1 on SQLite, which has one writer;
        a few on PostgreSQL, where a commit's wait for the disk need not hold back the next batch).
    """

    name = "worker writes"

    def __init__(self, records: WorkerRecords, call: Callable[..., Any] | None = None, *, max_batch: int = 64,
                 flushers: int | None = None):
        self.records = records
        self.flushers = flushers or (1 if records.engine.dialect.name == "sqlite" else 4)
        self._call = call or run_blocking
        self.max_batch = max_batch
        self._queue: deque[_Pending] = deque()
        self._wake = anyio.Event()
        self._running = False
        self.batches = 0  # transactions committed (or tried) while batching
        self.batched = 0  # writes they carried

    async def write(self, write: Write) -> Worker:
        """Make ``write`` and answer with the worker as written. :raises HodeiError: the write's refusal
        (:class:`CapacityExhausted`, :class:`IllegalTransition`, :class:`NotFound`) or the database's."""
        if not self._running:
            result: Worker | BaseException = (await self._call(self.records.write_many, [write]))[0]
        else:
            pending = _Pending(write)
            self._queue.append(pending)
            self._wake.set()
            try:
                await pending.done.wait()
            except BaseException:
                if not pending.taken:  # cancelled before its batch left: it is not made at all
                    self._queue.remove(pending)
                raise
            assert pending.result is not None
            result = pending.result
        if isinstance(result, BaseException):
            raise result
        return result

    def stop(self) -> None:
        """Nothing to do: writes keep being made until the daemon's task group ends, so requests still in
        flight during the shutdown grace complete."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._running = True
        try:
            async with anyio.create_task_group() as group:
                for _ in range(self.flushers):
                    group.start_soon(self._flush_forever)
                task_status.started()
        finally:
            self._running = False
            while self._queue:
                self._queue.popleft().settle(WriteNotConfirmed("the daemon stopped before this write was made"))

    async def _flush_forever(self) -> None:
        batch: list[_Pending] = []
        try:
            while True:
                if not self._queue:
                    await self._wake.wait()
                    self._wake = anyio.Event()
                    continue
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                for pending in batch:
                    pending.taken = True
                self.batches += 1
                self.batched += len(batch)
                try:
                    results: list[Worker | BaseException] = list(
                        await self._call(self.records.write_many, [p.write for p in batch]))
                except Exception as exc:  # the database's failure is each write's failure
                    results = [exc] * len(batch)
                for pending, result in zip(batch, results, strict=True):
                    pending.settle(result)
                batch = []
        finally:
            for pending in batch:
                pending.settle(WriteNotConfirmed("the daemon stopped before this write was confirmed"))
