"""Workers as every entry point handles them: provisioning through the selection service and the
provisioner, release, and the workers table read."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hodei import limits
from hodei.calls import run_blocking
from hodei.domain import SLOT_HOLDING, WorkerState
from hodei.errors import InvalidInput, NotFound, Problem
from hodei.redaction import quote
from hodei.services.selection import LocalSelection
from hodei.workers import NoProviderAvailable, Provisioner, Worker, WorkerRecords
from hodei.workers.queue import PlacementQueue, QueueEntry, WaitCancelled

__all__ = ["MAX_WAIT_SECONDS", "LocalWorkers", "NoProviderAvailable", "QueueEntry", "WaitCancelled"]

# The longest a request may wait for a provider: a day (a longer wait is a scheduler's job, not a client's).
MAX_WAIT_SECONDS = 86400.0
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class LocalWorkers:
    """The workers service on the database.

    :param call: runs a blocking database call off the event loop (the daemon's ``DatabaseLink.call``,
        bounded in time; a worker thread by default).
    :param provider_id: a provider's id from its name or id (for listing one provider's workers).
    """

    def __init__(self, provisioner: Provisioner, records: WorkerRecords, selection: LocalSelection, *,
                 provider_id: Callable[[str], uuid.UUID], queue: PlacementQueue,
                 call: Callable[..., Any] | None = None):
        self.provisioner, self.records, self.selection = provisioner, records, selection
        self.provider_id = provider_id
        self.queue = queue
        self._call = call or run_blocking

    async def provision(self, requirements: Mapping[str, Any], *, wait_seconds: float = 0.0,
                        request_id: str = "") -> Worker:
        """A worker for the job. ``wait_seconds``: how long it may wait in the placement queue for a provider
        to be free (0: fail at once); ``request_id``: the request's id in the queue (a client that
        reconnects with the same id keeps its place); one is made up when empty.
        :raises InvalidInput: :raises NoProviderAvailable:"""
        problems = []
        if not isinstance(wait_seconds, (int, float)) or not math.isfinite(wait_seconds) \
                or not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            problems.append(Problem("wait_seconds", f"must be between 0 and {MAX_WAIT_SECONDS:g}, got "
                                                    f"{quote(str(wait_seconds))}"))
        if request_id and not REQUEST_ID.fullmatch(request_id):
            problems.append(Problem("request_id", f"must match {REQUEST_ID.pattern}, got {quote(request_id)}"))
        if problems:
            raise InvalidInput(problems)
        job = self.selection.requirements(requirements)
        result = await self.queue.place(job, float(wait_seconds), request_id or str(uuid.uuid4()))
        return result.worker

    async def waiting(self) -> list[QueueEntry]:
        """The requests waiting in the placement queue, in order."""
        return await self.queue.entries()

    async def cancel(self, request_id: str) -> None:
        """Cancel a waiting request. :raises NotFound: when none of that id waits."""
        if not await self.queue.cancel(_required(request_id, "request_id")):
            raise NotFound(f"no request {quote(request_id)} waits in the placement queue (placed, expired or "
                           "cancelled already?)")

    async def release(self, worker_id: str, reason: str) -> Worker:
        return await self.provisioner.release(_required(worker_id), reason or "released")

    async def get(self, worker_id: str) -> Worker:
        worker: Worker = await self._call(self.records.get, _required(worker_id))
        return worker

    async def find(self, *, provider: str | None = None, states: Sequence[str] = (), everything: bool = False,
                   limit: int = 200) -> list[Worker]:
        """Workers, newest first: those holding a slot, or in ``states``, or all with ``everything``."""
        allowed = ", ".join(s.value for s in WorkerState)
        problems = [Problem(f"states[{i}]", f"must be one of {allowed}, got {quote(s)}")
                    for i, s in enumerate(states) if s not in WorkerState.__members__]
        if not 1 <= limit <= limits.LISTED:
            problems.append(Problem("limit", f"must be between 1 and {limits.LISTED}, got {limit}"))
        if problems:
            raise InvalidInput(problems)
        chosen = [WorkerState(s) for s in states] or (None if everything else list(SLOT_HOLDING))
        provider_id = await self._call(self.provider_id, provider) if provider else None
        found: list[Worker] = await self._call(self.records.find, provider_id=provider_id, states=chosen,
                                               limit=limit)
        return found


def _required(worker_id: str, field: str = "worker_id") -> str:
    if not worker_id:
        raise InvalidInput(Problem(field, "is required"))
    return worker_id
