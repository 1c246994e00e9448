"""The services' protocols (:mod:`hodei.services.protocols`) over a running daemon's gRPC API: what
``hodei --server ADDRESS`` uses instead of the local services, answering with the same values."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import grpc
from google.protobuf import field_mask_pb2

from hodei.api import convert
from hodei.api.client import Connection
from hodei.api.errors import ServerError, unpack
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import workers_pb2 as wpb
from hodei.errors import InvalidInput, Problem
from hodei.provider_change import ProviderChange
from hodei.services import listing
from hodei.services.providers import MAX_CHECK_TIMEOUT
from hodei.services.selection import MAX_PAGE, report_text
from hodei.services.views import Attempt, Change, CheckReport, CooldownReset, HistoryEntry, ProviderView, Worker
from hodei.services.workers import NoProviderAvailable, QueueEntry

T = TypeVar("T")

class RemoteProviders:
    def __init__(self, connection: Connection):
        self.connection = connection
        self.call = connection.call
        self.api = connection.providers

    def find(self, *, provider_type: str | None = None, status: str | None = None,
             limit: int | None = None) -> list[ProviderView]:
        """Page after page (each one call within its own deadline), up to ``limit`` providers."""
        request = pb.ListProvidersRequest(provider_type=provider_type or "", status=status or "")
        views: list[ProviderView] = []
        while limit is None or len(views) < limit:
            request.page_size = listing.MAX_PAGE if limit is None else min(listing.MAX_PAGE, limit - len(views))
            answer = self.call(self.api.ListProviders, request)
            views += [convert.provider_view(p) for p in answer.providers]
            if not answer.next_page_token:
                break
            request.page_token = answer.next_page_token
        return views

    def get(self, ref: str) -> ProviderView:
        return convert.provider_view(self.call(self.api.GetProvider, pb.GetProviderRequest(provider_id=ref)))

    def create(self, document: Mapping[str, Any]) -> ProviderView:
        request = pb.CreateProviderRequest(config=convert.config_message(document))
        return convert.provider_view(self.call(self.api.CreateProvider, request))

    def update(self, ref: str, change: ProviderChange) -> ProviderView:
        fields = dict(change.fields)
        merge = False
        if change.merge_config is not None:
            if "config" in fields:  # replaced, then merged: one replacement
                current = fields["config"]
                fields["config"] = {**(current if isinstance(current, Mapping) else {}), **change.merge_config}
            else:
                fields["config"], merge = dict(change.merge_config), True
        request = pb.UpdateProviderRequest(
            provider_id=ref, config=convert.config_message(fields), merge_config=merge,
            update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
            merge_labels=dict(change.labels), remove_labels=list(change.remove_labels),
            merge_annotations=dict(change.annotations), remove_annotations=list(change.remove_annotations),
            expected_version=convert.version_of(change.expected_version) if change.expected_version else "")
        return convert.provider_view(self.call(self.api.UpdateProvider, request))

    def reset_cooldown(self, ref: str) -> CooldownReset:
        request = pb.ResetProviderCooldownRequest(provider_id=ref)
        return convert.cooldown_reset_from(self.call(self.api.ResetProviderCooldown, request))

    def set_status(self, ref: str, status: str, cause: str) -> ProviderView:
        request = pb.SetProviderStatusRequest(provider_id=ref, status=status, cause=cause)
        return convert.provider_view(self.call(self.api.SetProviderStatus, request))

    def delete(self, ref: str) -> ProviderView:
        return convert.provider_view(self.call(self.api.DeleteProvider, pb.DeleteProviderRequest(provider_id=ref)))

    def history(self, ref: str, limit: int = 50) -> list[HistoryEntry]:
        """Page after page (each one call within its own deadline), up to ``limit`` changes."""
        return _pages(self.call, self.api.GetProviderHistory, pb.GetProviderHistoryRequest(provider_id=ref), limit,
                      lambda answer: [convert.history_from(e) for e in answer.entries])

    def apply(self, documents: Sequence[Any], *, dry_run: bool = False, prune: bool = False) -> list[Change]:
        request = convert.apply_request(documents, dry_run=dry_run, prune=prune)
        return convert.changes_from(self.call(self.api.ApplyProviders, request))

    def check(self, names: Sequence[str], timeout: float | None = None) -> CheckReport:
        """The daemon checks, with its plugins and credentials, and records what they answer."""
        request = pb.CheckProvidersRequest(providers=list(names), timeout_seconds=timeout)
        # A health check and a capacity report, each within the timeout (the server's own when not given).
        deadline = self.connection.options.timeout + 2 * (timeout if timeout is not None else MAX_CHECK_TIMEOUT)
        return convert.check_from(self.call(self.api.CheckProviders, request, timeout=deadline))


class RemoteAnswer:
    """A report or an explanation as the server made it: its JSON and its text."""

    def __init__(self, message: spb.SelectResponse | spb.ExplainResponse):
        self.message = message

    @property
    def selected(self) -> str | None:
        return self.message.selected if self.message.HasField("selected") else None

    def as_dict(self) -> dict[str, Any]:
        return convert.message_dict(self.message, skip=("text",))

    def text(self) -> str:
        # A refused Select too large for its trailers comes without its text, made here from the same fields.
        if not self.message.text and isinstance(self.message, spb.SelectResponse):
            return report_text(self.as_dict())
        return str(self.message.text)


def _requirements(document: Mapping[str, Any]) -> Any:
    if not isinstance(document, Mapping):
        raise InvalidInput(Problem("requirements", f"must be an object, got {type(document).__name__}"))
    return convert.to_struct(document)


class RemoteSelection:
    def __init__(self, connection: Connection):
        self.call = connection.call
        self.api = connection.selection

    def _select(self, request: spb.SelectRequest) -> spb.SelectResponse:
        try:
            answer: spb.SelectResponse = self.call(self.api.Select, request)
            return answer
        except ServerError as exc:
            report = unpack(exc.details, spb.SelectResponse) if exc.code is grpc.StatusCode.FAILED_PRECONDITION \
                else None
            if isinstance(report, spb.SelectResponse):
                return report
            raise

    def select(self, requirements: Mapping[str, Any], *, everything: bool = False) -> RemoteAnswer:
        """The dry run (when no provider fits, the report the server sent with FAILED_PRECONDITION);
        ``everything``: every page of the lists, joined into one answer."""
        request = spb.SelectRequest(requirements=_requirements(requirements), page_size=MAX_PAGE if everything else 0)
        answer = self._select(request)
        if not everything:
            return RemoteAnswer(answer)
        while answer.next_page_token:
            request.page_token = answer.next_page_token
            page = self._select(request)
            answer.ranking.extend(page.ranking)
            answer.rejected.extend(page.rejected)
            answer.next_page_token = page.next_page_token
        answer.text = report_text(convert.message_dict(answer, skip=("text",)))
        return RemoteAnswer(answer)

    def explain(self, name: str, requirements: Mapping[str, Any]) -> RemoteAnswer:
        request = spb.ExplainRequest(provider=name, requirements=_requirements(requirements))
        return RemoteAnswer(self.call(self.api.Explain, request))


class RemoteWorkers:
    def __init__(self, connection: Connection, *, provision_seconds: float | None = None):
        """:param provision_seconds: how long a provisioning is waited for (the server's budget for it,
            :attr:`hodei.settings.WorkerSettings.provision_budget_seconds`), when longer than the usual deadline."""
        self.call = connection.call
        self.api = connection.workers
        self.provision_seconds = max(provision_seconds or 0.0, connection.options.timeout)

    async def provision(self, requirements: Mapping[str, Any], *, wait_seconds: float = 0.0,
                        request_id: str = "") -> Worker:
        """A request that may wait has an id: when the daemon goes away while it waits (a restart), it asks
        again with the same id until its wait is over, and keeps its place in the queue."""
        request_id = request_id or (str(uuid.uuid4()) if wait_seconds > 0 else "")
        until = time.monotonic() + wait_seconds
        while True:
            left = max(0.0, until - time.monotonic())
            request = wpb.ProvisionWorkerRequest(requirements=_requirements(requirements), wait_seconds=left
                                                 if wait_seconds > 0 else 0.0, request_id=request_id)
            try:
                return self._provision(request, left)
            except ServerError as exc:
                if wait_seconds <= 0 or exc.code is not grpc.StatusCode.UNAVAILABLE or time.monotonic() >= until:
                    raise
            await anyio.sleep(min(1.0, max(0.0, until - time.monotonic())))

    def _provision(self, request: wpb.ProvisionWorkerRequest, wait_seconds: float) -> Worker:
        try:
            return convert.worker_from(self.call(self.api.ProvisionWorker, request,
                                                 timeout=self.provision_seconds + wait_seconds))
        except ServerError as exc:
            failure = unpack(exc.details, wpb.ProvisionFailure) if exc.code is grpc.StatusCode.FAILED_PRECONDITION \
                else None
            if isinstance(failure, wpb.ProvisionFailure):
                attempts = [Attempt(a.provider, a.outcome, a.reason, a.seconds) for a in failure.attempts]
                raise NoProviderAvailable(str(exc), attempts, failure.summary) from None
            raise

    async def waiting(self, limit: int = 200) -> list[QueueEntry]:
        """Page after page (each one call within its own deadline), up to ``limit`` requests."""
        return _pages(self.call, self.api.ListQueue, wpb.ListQueueRequest(), limit,
                      lambda answer: [convert.queued_from(q) for q in answer.requests])

    async def cancel(self, request_id: str) -> None:
        self.call(self.api.CancelRequest, wpb.CancelRequestRequest(request_id=request_id))

    async def release(self, worker_id: str, reason: str) -> Worker:
        request = wpb.ReleaseWorkerRequest(worker_id=worker_id, reason=reason)
        return convert.worker_from(self.call(self.api.ReleaseWorker, request))

    async def get(self, worker_id: str) -> Worker:
        return convert.worker_from(self.call(self.api.GetWorker, wpb.GetWorkerRequest(worker_id=worker_id)))

    async def find(self, *, provider: str | None = None, states: Sequence[str] = (), everything: bool = False,
                   limit: int = 200) -> list[Worker]:
        """Page after page (each one call within its own deadline), up to ``limit`` workers."""
        request = wpb.ListWorkersRequest(provider=provider or "", states=list(states), all=everything)
        return _pages(self.call, self.api.ListWorkers, request, limit,
                      lambda answer: [convert.worker_from(w) for w in answer.workers])


def _pages(call: Callable[..., Any], method: Any, request: Any, limit: int,
           items: Callable[[Any], list[T]]) -> list[T]:
    """``limit`` items of ``method``'s answers, page after page (each one call within its own deadline),
    following ``next_page_token`` until the last page."""
    found: list[T] = []
    while len(found) < limit:
        request.limit = min(listing.MAX_PAGE, limit - len(found))
        answer = call(method, request)
        found += items(answer)
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    return found
