"""The CLI's side of WorkerService: ``hodei --server ADDRESS workers ...`` with the same output as direct."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import grpc

from hodei.api import convert
from hodei.api.client import Connection
from hodei.api.errors import error_from, unpack
from hodei.api.v1 import workers_pb2 as wpb
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
from hodei.workers import Attempt, NoProviderAvailable, Worker, WorkerState


def worker_from(message: wpb.Worker) -> Worker:
    return Worker(
        id=message.id, provider_id=uuid.UUID(message.provider_id), provider_name=message.provider,
        state=WorkerState(message.state), reason=message.reason,
        backend_id=message.backend_id if message.HasField("backend_id") else None, handle=None,
        requirements=convert.from_value(message.requirements),
        attempts=[{"provider": a.provider, "outcome": a.outcome, "reason": a.reason, "seconds": a.seconds}
                  for a in message.attempts],
        created_at=datetime.fromisoformat(message.created_at), updated_at=datetime.fromisoformat(message.updated_at),
        ended_at=datetime.fromisoformat(message.ended_at) if message.HasField("ended_at") else None)


class RemoteWorkers:
    def __init__(self, connection: Connection):
        self.connection = connection
        self.stub = wpb_grpc.WorkerServiceStub(connection.channel)

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=self.connection.metadata, timeout=self.connection.options.timeout)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.FAILED_PRECONDITION:
                from hodei.api.errors import _details

                failure = unpack(_details(error), wpb.ProvisionFailure)
                if failure is not None:
                    attempts = [Attempt(a.provider, a.outcome, a.reason, a.seconds) for a in failure.attempts]
                    raise NoProviderAvailable(error.details(), attempts, failure.summary) from None
            raise error_from(error, self.connection.options.address) from None

    def provision(self, requirements: dict[str, Any]) -> Worker:
        return worker_from(self._call(self.stub.ProvisionWorker, wpb.ProvisionWorkerRequest(
            requirements=convert.to_struct(requirements))))

    def release(self, worker_id: str, reason: str) -> Worker:
        return worker_from(self._call(self.stub.ReleaseWorker, wpb.ReleaseWorkerRequest(worker_id=worker_id,
                                                                                       reason=reason)))

    def get(self, worker_id: str) -> Worker:
        return worker_from(self._call(self.stub.GetWorker, wpb.GetWorkerRequest(worker_id=worker_id)))

    def list(self, *, provider: str | None, states: list[str], everything: bool, limit: int) -> list[Worker]:
        answer = self._call(self.stub.ListWorkers, wpb.ListWorkersRequest(
            provider=provider or "", states=states, all=everything, limit=limit))
        return [worker_from(w) for w in answer.workers]
