"""Workers as every entry point handles them: provisioning through the selection service and the
provisioner, release, and the workers table read."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hodei import limits
from hodei.calls import run_blocking
from hodei.domain import SLOT_HOLDING, WorkerState
from hodei.errors import InvalidInput, Problem
from hodei.redaction import quote
from hodei.services import listing
from hodei.services.decisions import provision_entries
from hodei.services.selection import LocalSelection
from hodei.workers import NoProviderAvailable, Provisioner, Worker, WorkerRecords

__all__ = ["LocalWorkers", "NoProviderAvailable"]


class LocalWorkers:
    """The workers service on the database.

    :param call: runs a blocking database call off the event loop (the daemon's ``DatabaseLink.call``,
        bounded in time; a worker thread by default).
    :param provider_id: a provider's id from its name or id (for listing one provider's workers).
    """

    def __init__(self, provisioner: Provisioner, records: WorkerRecords, selection: LocalSelection, *,
                 provider_id: Callable[[str], uuid.UUID], call: Callable[..., Any] | None = None):
        self.provisioner, self.records, self.selection = provisioner, records, selection
        self.provider_id = provider_id
        self._call = call or run_blocking

    async def provision(self, requirements: Mapping[str, Any]) -> Worker:
        job = self.selection.requirements(requirements)
        decisions = self.selection.decisions
        if decisions is None:
            return (await self.provisioner.provision(job)).worker
        with provision_entries() as numbers:  # its selection is kept in the recent decisions: add how it ended
            try:
                result = await self.provisioner.provision(job)
            except NoProviderAvailable as exc:
                for number in numbers:
                    decisions.provisioned(number, exc.attempts, str(exc))
                raise
        for number in numbers:
            decisions.provisioned(number, result.attempts, f"provisioned on {result.worker.provider_name}")
        return result.worker

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


def _required(worker_id: str) -> str:
    if not worker_id:
        raise InvalidInput(Problem("worker_id", "is required"))
    return worker_id
