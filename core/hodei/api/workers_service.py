"""WorkerService: provisioning, release and listing through the daemon (``hodei workers`` with --server).

Provisioning uses the daemon's provisioner: its live selection, its reservation in the database
(so max_workers holds across every daemon sharing it), failover, and its telemetry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from hodei.api import convert
from hodei.api.errors import DETAILS_KEY, answers, status_details
from hodei.api.v1 import workers_pb2 as wpb
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
from hodei.errors import InvalidInput, Problem
from hodei.workers import NoProviderAvailable, WorkerState
from hodei.workers.records import Worker

if TYPE_CHECKING:
    from hodei.daemon import Daemon

WORKER_SERVICE = wpb.DESCRIPTOR.services_by_name["WorkerService"].full_name
SLOT_STATES = (WorkerState.PROVISIONING, WorkerState.RUNNING, WorkerState.RELEASING)


def worker_message(worker: Worker) -> wpb.Worker:
    document = worker.document()
    message = wpb.Worker(
        id=worker.id, provider_id=str(worker.provider_id), provider=worker.provider_name, state=worker.state.value,
        reason=worker.reason, requirements=convert.to_struct(document["requirements"]),
        attempts=[attempt_message(a) for a in document["attempts"]],
        created_at=document["created_at"], updated_at=document["updated_at"])
    if worker.backend_id is not None:
        message.backend_id = worker.backend_id
    if document["ended_at"] is not None:
        message.ended_at = document["ended_at"]
    return message


def attempt_message(attempt: Any) -> wpb.Attempt:
    values = attempt if isinstance(attempt, dict) else attempt.as_dict()
    return wpb.Attempt(provider=values["provider"], outcome=values["outcome"], reason=values["reason"],
                       seconds=float(values["seconds"]))


class WorkerService(wpb_grpc.WorkerServiceServicer):
    def __init__(self, daemon: Daemon):
        self.daemon = daemon

    def _id(self, value: str) -> str:
        if not value:
            raise InvalidInput(Problem("worker_id", "is required"))
        return value

    @answers
    async def ProvisionWorker(self, request: wpb.ProvisionWorkerRequest, context: Any) -> wpb.Worker:
        document = convert.from_value(request.requirements) if request.HasField("requirements") else {}
        job = self.daemon.chain.parse_requirements(document)
        try:
            result = await self.daemon.provisioner.provision(job)
        except NoProviderAvailable as exc:
            failure = wpb.ProvisionFailure(attempts=[attempt_message(a) for a in exc.attempts], summary=exc.summary)
            code = grpc.StatusCode.FAILED_PRECONDITION
            details = status_details(code, str(exc), "NoProviderAvailable", extra=[failure])
            await context.abort(code, str(exc), trailing_metadata=((DETAILS_KEY, details),))
        return worker_message(result.worker)

    @answers
    async def ReleaseWorker(self, request: wpb.ReleaseWorkerRequest, context: Any) -> wpb.Worker:
        worker = await self.daemon.provisioner.release(self._id(request.worker_id), request.reason or "released")
        return worker_message(worker)

    @answers
    async def GetWorker(self, request: wpb.GetWorkerRequest, context: Any) -> wpb.Worker:
        return worker_message(await self.daemon.db.call(self.daemon.records.get, self._id(request.worker_id)))

    @answers
    async def ListWorkers(self, request: wpb.ListWorkersRequest, context: Any) -> wpb.ListWorkersResponse:
        problems = [Problem(f"states[{i}]", f"must be one of {', '.join(s.value for s in WorkerState)}")
                    for i, s in enumerate(request.states) if s not in WorkerState.__members__]
        if request.limit < 0:
            problems.append(Problem("limit", "must not be negative"))
        if problems:
            raise InvalidInput(problems)
        states = [WorkerState(s) for s in request.states] or (None if request.all else list(SLOT_STATES))
        provider_id = None
        if request.provider:
            provider_id = (await self.daemon.db.call(self.daemon.store.get, request.provider)).id
        found = await self.daemon.db.call(self.daemon.records.list, provider_id=provider_id, states=states,
                                          limit=request.limit or 200)
        return wpb.ListWorkersResponse(workers=[worker_message(w) for w in found])
