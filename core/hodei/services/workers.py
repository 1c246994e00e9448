"""Workers as every entry point handles them: provisioning through the selection service and the
provisioner, release, and the workers table read."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from hodei import limits
from hodei.calls import run_blocking
from hodei.domain import SLOT_HOLDING, WorkerState
from hodei.errors import InvalidInput, NotFound, Problem
from hodei.redaction import quote
from hodei.services import listing
from hodei.services.decisions import provision_entries
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
        decisions = self.selection.decisions
        if decisions is None:
            return (await self.queue.place(job, float(wait_seconds), request_id or str(uuid.uuid4()))).worker
        # Its selections (one per attempt, a waiting request's too) are kept in the recent decisions: each is
        # told how the provision ended.
        with provision_entries() as numbers:
            try:
                result = await self.queue.place(job, float(wait_seconds), request_id or str(uuid.uuid4()))
            except NoProviderAvailable as exc:
                for number in numbers:
                    decisions.provisioned(number, exc.attempts, str(exc))
                raise
        for number in numbers:
            decisions.provisioned(number, result.attempts, f"provisioned on {result.worker.provider_name}")
        return result.worker

    async def waiting(self, limit: int = 200) -> list[QueueEntry]:
        """The first ``limit`` requests waiting in the placement queue, in order, read a page at a time."""
        if limit < 1:
            raise InvalidInput(Problem("limit", f"must be at least 1, got {limit}"))
        found: list[QueueEntry] = []
        token = ""
        while len(found) < limit:
            page, token = await self.queue_page(limit=min(limits.LISTED, limit - len(found)), page_token=token)
            found += page
            if not token:
                break
        return found

    async def queue_page(self, *, limit: int = 200, page_token: str = "") -> tuple[list[QueueEntry], str]:
        """One page of :meth:`waiting`'s list: ``limit`` requests after where ``page_token`` says, and the next
        page's token ("" after the last)."""
        if not 1 <= limit <= limits.LISTED:
            raise InvalidInput(Problem("limit", f"must be between 1 and {limits.LISTED}, got {limit}"))
        key = listing.after_key("queue", page_token, (int, str, str))
        after = None
        if key is not None:
            try:
                arrived = datetime.fromisoformat(key[1])
                if arrived.tzinfo is None:
                    raise ValueError("no time zone")
                after = (key[0], arrived, key[2])
            except ValueError:
                raise InvalidInput(Problem("page_token", "is not a token this server gave: pass a previous "
                                                         "answer's next_page_token unchanged")) from None
        found = await self.queue.entries(limit + 1, after)
        if len(found) <= limit:
            return found, ""
        last = found[limit - 1]
        return found[:limit], listing.key_token("queue", [last.priority, last.enqueued_at.isoformat(), last.id])

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
        """Workers, newest first: those holding a slot, or in ``states``, or all with ``everything``; the
        first ``limit``, read a page at a time."""
        if limit < 1:
            raise InvalidInput(Problem("limit", f"must be at least 1, got {limit}"))
        found: list[Worker] = []
        token = ""
        while len(found) < limit:
            page, token = await self.page(provider=provider, states=states, everything=everything,
                                          limit=min(limits.LISTED, limit - len(found)), page_token=token)
            found += page
            if not token:
                break
        return found

    async def page(self, *, provider: str | None = None, states: Sequence[str] = (), everything: bool = False,
                   limit: int = 200, page_token: str = "") -> tuple[list[Worker], str]:
        """One page of :meth:`find`'s list: ``limit`` workers after where ``page_token`` says, and the next
        page's token ("" after the last)."""
        allowed = ", ".join(s.value for s in WorkerState)
        problems = [Problem(f"states[{i}]", f"must be one of {allowed}, got {quote(s)}")
                    for i, s in enumerate(states) if s not in WorkerState.__members__]
        if not 1 <= limit <= limits.LISTED:
            problems.append(Problem("limit", f"must be between 1 and {limits.LISTED}, got {limit}"))
        if problems:
            raise InvalidInput(problems)
        after = listing.after_row("workers", page_token, str)
        chosen = [WorkerState(s) for s in states] or (None if everything else list(SLOT_HOLDING))
        provider_id = await self._call(self.provider_id, provider) if provider else None
        found: list[Worker] = await self._call(self.records.find, provider_id=provider_id, states=chosen,
                                               limit=limit + 1, after=after)
        more = len(found) > limit
        return found[:limit], listing.row_token("workers", found[limit - 1].id) if more else ""


def _required(worker_id: str, field: str = "worker_id") -> str:
    if not worker_id:
        raise InvalidInput(Problem(field, "is required"))
    return worker_id
