"""The gRPC API of ``hodei serve``: providers and selection, with the standard health service and
server reflection (so ``grpc_health_probe`` and ``grpcurl`` work).

A part of the daemon's task group (``grpc.aio`` on the daemon's asyncio loop). The servicers only
translate between messages and the application services (:mod:`hodei.services`), which the daemon
hands over in :class:`ApiServices` with a way to run blocking calls off the loop and a way to refresh
its view of a provider after a write, so the next selection sees it.

Security: the API listens on loopback by default. With ``[api] token_file`` every call but the health
and reflection services (probes; the schema, which the shipped .proto files tell anyway) must carry ``authorization: Bearer TOKEN`` (compared in constant time, never logged); beyond
loopback the settings refuse to load without it. ``tls_cert_file``/``tls_key_file`` make it TLS only,
``client_ca_file`` mutual TLS.
"""

from __future__ import annotations

import hmac
import logging
import resource
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import grpc
import grpc.aio
from anyio.abc import TaskStatus
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2

from hodei import actors, limits
from hodei.api import convert
from hodei.api.daemons import DAEMONS_SERVICE, DaemonsServicer
from hodei.api.errors import DETAILS_KEY, MESSAGE_CHARS, answers, status_details
from hodei.api.v1 import daemons_pb2 as dpb
from hodei.api.v1 import daemons_pb2_grpc as dpb_grpc
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.api.v1 import workers_pb2 as wpb
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
from hodei.errors import InvalidInput, Problem, StartupFailure
from hodei.observability.address import cannot_listen, parse_listen
from hodei.provider_change import ProviderChange
from hodei.redaction import quote, shorten
from hodei.services.daemons import LocalDaemons
from hodei.services.plan import LocalPlanning
from hodei.services.providers import LocalProviders
from hodei.services.selection import LocalSelection, Report, page_token
from hodei.services.views import Change, CooldownReset, ProviderView
from hodei.services.workers import LocalWorkers, NoProviderAvailable

if TYPE_CHECKING:
    from hodei.settings import ApiSettings

log = logging.getLogger("hodei.api")

PROVIDER_SERVICE = pb.DESCRIPTOR.services_by_name["ProviderService"].full_name
SELECTION_SERVICE = spb.DESCRIPTOR.services_by_name["SelectionService"].full_name
WORKER_SERVICE = wpb.DESCRIPTOR.services_by_name["WorkerService"].full_name
HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIX = f"/{reflection.SERVICE_NAME}/"
# Answered without a token: probes (grpc_health_probe, a load balancer) and schema discovery (grpcurl
# without -proto). Reflection tells only what the .proto files shipped with Hodei tell anyone.
OPEN_PREFIXES = (HEALTH_PREFIX, REFLECTION_PREFIX)
# Every method this server answers: the metrics' method label takes no other value.
METHODS = tuple(f"/{service.full_name}/{method.name}"
                for descriptor in (pb.DESCRIPTOR, spb.DESCRIPTOR, wpb.DESCRIPTOR, dpb.DESCRIPTOR,
                                   health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR)
                for service in descriptor.services_by_name.values() for method in service.methods)


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidInput(Problem(field, "is required"))
    return value


@dataclass(frozen=True)
class ApiServices:
    """What the API serves, and how: the application services, and the daemon's two hooks into them.

    :param call: runs a blocking service call off the event loop (the daemon's database link: a worker
        thread, bounded in time).
    :param changed: told after a write, with the provider's id, so the next selection sees it.
    :param checked: told after a check through the API, with the providers checked, so the next selection
        sees what they answered.
    """

    providers: LocalProviders
    selection: LocalSelection
    workers: LocalWorkers
    call: Callable[..., Awaitable[Any]]
    changed: Callable[[uuid.UUID], Awaitable[None]]
    daemons: LocalDaemons | None = None
    checked: Callable[[set[uuid.UUID]], Awaitable[None]] | None = None


# -- providers ------------------------------------------------------------------------------------


def _change(request: pb.UpdateProviderRequest) -> ProviderChange:
    """An UpdateProviderRequest as the service takes it."""
    message = request.config
    paths = list(request.update_mask.paths) if request.HasField("update_mask") else []
    if paths == ["*"]:
        paths = list(convert.CONFIG_FIELDS)
    unknown = [p for p in paths if p not in convert.CONFIG_FIELDS]
    if unknown:
        raise InvalidInput([Problem("update_mask", f"{quote(p)} is not a field of ProviderConfig (one of "
                                                   f"{', '.join(convert.CONFIG_FIELDS)}, or *)") for p in unknown])
    if not paths:
        paths = convert.populated_fields(message)
    fields = {field: convert.config_value(message, field) for field in dict.fromkeys(paths)}
    merge = None
    if request.merge_config:
        if "config" not in fields or fields["config"] is None:
            raise InvalidInput(Problem("merge_config", "needs config.config: the keys to merge into the config"))
        merge = fields.pop("config")
        if not isinstance(merge, dict):
            raise InvalidInput(Problem("config", "a config merge must be an object"))
    change = ProviderChange(
        fields=fields, merge_config=merge, labels=dict(request.merge_labels),
        remove_labels=tuple(request.remove_labels), annotations=dict(request.merge_annotations),
        remove_annotations=tuple(request.remove_annotations),
        expected_version=convert.parse_version(request.expected_version) if request.expected_version else None)
    if not change:
        raise InvalidInput(Problem("update_mask", "nothing to change: set fields of config, or name them here"))
    return change


def caller(context: Any, token: str | None) -> str:
    """The actor of a call (:func:`hodei.actors.api`): its peer, its mutual-TLS client's common name, and the
    identity of the token it carried (``token``: None when the server asks for none)."""
    auth = context.auth_context() or {}
    names = auth.get("x509_common_name") or []
    client = names[0].decode("utf-8", "replace") if names and isinstance(names[0], bytes) else None
    return actors.api(context.peer(), token, client)


class ProviderServicer(pb_grpc.ProviderServiceServicer):
    def __init__(self, services: ApiServices, token: str | None = None):
        """:param token: the identity of the token every call carries (:func:`hodei.actors.token_identity`)."""
        self.services = services
        self.providers = services.providers
        self.token = token

    async def _write(self, method: Callable[..., ProviderView], *args: Any, **kwargs: Any) -> pb.Provider:
        view: ProviderView = await self.services.call(method, *args, **kwargs)
        try:
            await self.services.changed(view.id)
        except Exception as exc:  # the daemon catches up on its own
            log.warning("could not refresh provider %s after a change: %s", view.id, exc)
        return convert.provider_message(view)

    @answers
    async def CreateProvider(self, request: pb.CreateProviderRequest, context: Any) -> pb.Provider:
        message = request.config
        document: dict[str, Any] = {"name": message.name, "provider_type": message.provider_type}
        for field in convert.populated_fields(message):
            document[field] = convert.config_value(message, field)
        return await self._write(self.providers.create, document, actor=caller(context, self.token))

    @answers
    async def GetProvider(self, request: pb.GetProviderRequest, context: Any) -> pb.Provider:
        ref = _required(request.provider_id, "provider_id")
        return convert.provider_message(await self.services.call(self.providers.get, ref))

    @answers
    async def ListProviders(self, request: pb.ListProvidersRequest, context: Any) -> pb.ListProvidersResponse:
        def page() -> pb.ListProvidersResponse:
            views, token = self.providers.page(
                provider_type=request.provider_type or None, status=request.status or None,
                region=request.region or None, labels=dict(request.labels), page_size=request.page_size,
                page_token=request.page_token)
            return pb.ListProvidersResponse(providers=[convert.provider_message(v) for v in views],
                                            next_page_token=token)

        return await self.services.call(page)

    @answers
    async def UpdateProvider(self, request: pb.UpdateProviderRequest, context: Any) -> pb.Provider:
        ref = _required(request.provider_id, "provider_id")
        return await self._write(self.providers.update, ref, _change(request), actor=caller(context, self.token))

    @answers
    async def DeleteProvider(self, request: pb.DeleteProviderRequest, context: Any) -> pb.Provider:
        ref = _required(request.provider_id, "provider_id")
        return await self._write(self.providers.delete, ref, actor=caller(context, self.token))

    @answers
    async def SetProviderStatus(self, request: pb.SetProviderStatusRequest, context: Any) -> pb.Provider:
        ref = _required(request.provider_id, "provider_id")
        return await self._write(self.providers.set_status, ref, request.status,
                                 request.cause or "set through the API", actor=caller(context, self.token))

    @answers
    async def ResetProviderCooldown(self, request: pb.ResetProviderCooldownRequest,
                                    context: Any) -> pb.ResetProviderCooldownResponse:
        ref = _required(request.provider_id, "provider_id")
        reset: CooldownReset = await self.services.call(self.providers.reset_cooldown, ref,
                                                        actor=caller(context, self.token))
        try:
            await self.services.changed(reset.provider.id)  # the daemon's selection takes the provider back now
        except Exception as exc:  # the daemon catches up on its own
            log.warning("could not refresh provider %s after a change: %s", reset.provider.id, exc)
        return convert.cooldown_reset_message(reset)

    @answers
    async def GetProviderHistory(self, request: pb.GetProviderHistoryRequest,
                                 context: Any) -> pb.GetProviderHistoryResponse:
        ref = _required(request.provider_id, "provider_id")
        if request.limit < 0:
            raise InvalidInput(Problem("limit", f"must be at least 1 (or 0 for 50), got {request.limit}"))
        entries, token = await self.services.call(self.providers.history_page, ref, request.limit or 50,
                                                  request.page_token)
        return pb.GetProviderHistoryResponse(entries=[convert.history_message(e) for e in entries],
                                             next_page_token=token)

    @answers
    async def ApplyProviders(self, request: pb.ApplyProvidersRequest, context: Any) -> pb.ApplyProvidersResponse:
        actor = caller(context, self.token)

        def apply() -> list[Change]:  # reading the documents is proportional to the request: off the loop too
            return self.providers.apply(convert.apply_documents(request), dry_run=request.dry_run,
                                        prune=request.prune, actor=actor)

        changes = await self.services.call(apply)
        if not request.dry_run:
            for change in changes:
                if change.action != "unchanged" and change.id is not None:
                    try:
                        await self.services.changed(change.id)
                    except Exception as exc:  # the daemon catches up on its own
                        log.warning("could not refresh provider %s after apply: %s", change.id, exc)
        return convert.apply_message(changes, request.dry_run)

    @answers
    async def CheckProviders(self, request: pb.CheckProvidersRequest, context: Any) -> pb.CheckProvidersResponse:
        timeout = request.timeout_seconds if request.HasField("timeout_seconds") else None
        report = await self.providers.check_now(list(request.providers), timeout, actor=caller(context, self.token),
                                                call=self.services.call)
        if self.services.checked is not None and report.results:
            try:
                await self.services.checked({uuid.UUID(r.provider_id) for r in report.results})
            except Exception as exc:  # the daemon catches up on its own
                log.warning("could not refresh the providers' state after a check: %s", exc)
        return convert.check_message(report)


# -- selection ------------------------------------------------------------------------------------

# What the report sent with a refused Select may take: with grpc-message (at most 1,000 characters) and
# the base64 a -bin trailer travels in, it stays under the 8 KiB of trailers every gRPC client accepts.
REFUSAL_BYTES = 4 * 1024
# A reason cut to fit them, when even one rejected provider's reasons do not.
REASON_CHARS = 300


def _requirements(request: Any) -> dict[str, Any]:
    document = convert.from_value(request.requirements, "requirements") if request.HasField("requirements") else {}
    if not isinstance(document, dict):
        raise InvalidInput(Problem("requirements", f"must be an object, got {type(document).__name__}"))
    return document


def _no_fit(report: Report) -> tuple[spb.SelectResponse, str, bytes]:
    """The answer, message and details of a Select no provider fits. They travel in trailers, which
    every gRPC client caps (8 KiB by default): past :data:`REFUSAL_BYTES` the answer goes without its
    ``text`` (the same fields in words, which the client makes itself), then with fewer rejected
    providers, its ``next_page_token`` asking for the rest, and as a last resort with its summary and
    each reason cut short."""
    code = grpc.StatusCode.FAILED_PRECONDITION
    message = shorten(report.summary, MESSAGE_CHARS)
    answer = convert.select_message(report)
    details = status_details(code, message, "NoProviderFits", extra=[answer])
    if len(details) > REFUSAL_BYTES:
        answer.text = ""
        details = status_details(code, message, "NoProviderFits", extra=[answer])
    while len(details) > REFUSAL_BYTES and len(report.rejected) > 1:
        keep = len(report.rejected) // 2
        report = replace(report, rejected=report.rejected[:keep],
                         next_page_token=page_token(report.job, report.offset + keep))
        answer = convert.select_message(report)
        answer.text = ""
        details = status_details(code, message, "NoProviderFits", extra=[answer])
    if len(details) > REFUSAL_BYTES:
        answer.summary = shorten(answer.summary, MESSAGE_CHARS)
        for rejection in answer.rejected:
            for reason in rejection.reasons:
                reason.message = shorten(reason.message, REASON_CHARS)
        details = status_details(code, message, "NoProviderFits", extra=[answer])
    return answer, message, details


class SelectionServicer(spb_grpc.SelectionServiceServicer):
    def __init__(self, services: ApiServices):
        self.selection = services.selection
        self.planning = LocalPlanning(services.selection)

    @answers
    async def Select(self, request: spb.SelectRequest, context: grpc.aio.ServicerContext) -> spb.SelectResponse:
        def select() -> tuple[spb.SelectResponse, str, bytes | None]:
            report = self.selection.select(_requirements(request), page_size=request.page_size,
                                           page_token=request.page_token)
            return _no_fit(report) if report.selected is None else (convert.select_message(report), "", None)

        # Reading the requirements, selecting and building the answer grow with the request and the fleet:
        # never on the event loop, which answers every other call (and health checks).
        answer, message, details = await anyio.to_thread.run_sync(select)
        if details is not None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, message,
                                trailing_metadata=((DETAILS_KEY, details),))
        return answer

    @answers
    async def Explain(self, request: spb.ExplainRequest, context: Any) -> spb.ExplainResponse:
        name = _required(request.provider, "provider")
        return await anyio.to_thread.run_sync(
            lambda: convert.explain_message(self.selection.explain(name, _requirements(request))))

    @answers
    async def Plan(self, request: spb.PlanRequest, context: Any) -> spb.PlanResponse:
        def plan() -> spb.PlanResponse:
            jobs = [convert.from_value(job, f"jobs[{number}]") for number, job in enumerate(request.jobs)]
            return convert.plan_message(self.planning.plan(jobs).as_dict())

        # A plan grows with the batch and the fleet: never on the event loop.
        return await anyio.to_thread.run_sync(plan)


# -- workers --------------------------------------------------------------------------------------


class WorkerServicer(wpb_grpc.WorkerServiceServicer):
    def __init__(self, services: ApiServices):
        self.workers = services.workers

    @answers
    async def ProvisionWorker(self, request: wpb.ProvisionWorkerRequest, context: Any) -> wpb.Worker:
        try:
            worker = await self.workers.provision(await anyio.to_thread.run_sync(_requirements, request),
                                                  wait_seconds=request.wait_seconds, request_id=request.request_id)
        except NoProviderAvailable as exc:
            failure = wpb.ProvisionFailure(attempts=[convert.attempt_message(a) for a in exc.attempts],
                                           summary=exc.summary)
            code, message = grpc.StatusCode.FAILED_PRECONDITION, shorten(str(exc), MESSAGE_CHARS)
            details = status_details(code, message, "NoProviderAvailable", extra=[failure])
            if len(details) > REFUSAL_BYTES:  # each attempt's reason may be a long error: cut to fit the trailers
                for attempt in failure.attempts:
                    attempt.reason = shorten(attempt.reason, REASON_CHARS)
                failure.summary = shorten(failure.summary, REASON_CHARS)
                details = status_details(code, message, "NoProviderAvailable", extra=[failure])
            await context.abort(code, message, trailing_metadata=((DETAILS_KEY, details),))
        return convert.worker_message(worker)

    @answers
    async def ReleaseWorker(self, request: wpb.ReleaseWorkerRequest, context: Any) -> wpb.Worker:
        return convert.worker_message(await self.workers.release(request.worker_id, request.reason))

    @answers
    async def GetWorker(self, request: wpb.GetWorkerRequest, context: Any) -> wpb.Worker:
        return convert.worker_message(await self.workers.get(request.worker_id))

    @answers
    async def ListWorkers(self, request: wpb.ListWorkersRequest, context: Any) -> wpb.ListWorkersResponse:
        if request.limit < 0:
            raise InvalidInput(Problem("limit", "must not be negative"))
        found, token = await self.workers.page(provider=request.provider or None, states=list(request.states),
                                               everything=request.all, limit=request.limit or 200,
                                               page_token=request.page_token)
        return wpb.ListWorkersResponse(workers=[convert.worker_message(w) for w in found], next_page_token=token)

    @answers
    async def ListQueue(self, request: wpb.ListQueueRequest, context: Any) -> wpb.ListQueueResponse:
        found, token = await self.workers.queue_page(limit=request.limit or 200, page_token=request.page_token)
        return wpb.ListQueueResponse(requests=[convert.queued_message(e) for e in found], next_page_token=token)

    @answers
    async def CancelRequest(self, request: wpb.CancelRequestRequest, context: Any) -> wpb.CancelRequestResponse:
        await self.workers.cancel(request.request_id)
        return wpb.CancelRequestResponse()


# -- authentication -------------------------------------------------------------------------------


class TokenAuth(grpc.aio.ServerInterceptor):
    """Every call but the health and reflection services carries ``authorization: Bearer TOKEN``."""

    def __init__(self, token: str):
        self._token = token.encode("utf-8")

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        if details.method.startswith(OPEN_PREFIXES):
            return await continuation(details)
        given = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                scheme, _, token = text.partition(" ")
                given = token.strip().encode("utf-8") if scheme.lower() == "bearer" else b""
        if given and hmac.compare_digest(given, self._token):
            return await continuation(details)
        handler = await continuation(details)
        reason = ("the bearer token is not valid" if given else
                  "this server requires a bearer token (metadata authorization: Bearer TOKEN)")
        return _refusal(handler, reason)


def _refusal(handler: Any, reason: str) -> Any:
    async def deny(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

    if handler is None:
        return None
    # The request is not read: a refused call answers UNAUTHENTICATED whatever bytes it sent (with the
    # handler's deserializer, bytes that are not the message would answer UNKNOWN before the refusal).
    kwargs = {"request_deserializer": None, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(deny, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(deny, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(deny, **kwargs)
    return grpc.stream_stream_rpc_method_handler(deny, **kwargs)


# -- the daemon's part ----------------------------------------------------------------------------


def file_limit() -> int:
    """The process's limit of open files, raised to its hard limit first (systemd's default soft limit is
    1,024 while the hard one is far higher): connections must never take the database's descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connection_options() -> list[tuple[str, int]]:
    """gRPC server options that bound what connections hold: at most :data:`hodei.limits.API_CONNECTIONS`
    at once (fewer when the file limit leaves less than :data:`hodei.limits.RESERVED_FILES` for the
    database and the rest: a connection past it is closed at once, never a descriptor the database
    needs), a handshake that does not finish in time closed, an idle connection closed, a dead peer
    found by keepalive pings."""
    limit = file_limit()
    connections = max(1, min(limits.API_CONNECTIONS, limit - limits.RESERVED_FILES))
    if connections < limits.API_CONNECTIONS:
        log.warning("the file limit (%d) leaves room for %d API connections; raise LimitNOFILE for more",
                    limit, connections)
    return [
        ("grpc.max_allowed_incoming_connections", connections),
        ("grpc.max_concurrent_streams", limits.API_STREAMS),
        # Calls that arrived faster than the event loop takes them wait in gRPC's own queue; past its default
        # (1,000) it cancels them. A burst of waiting provisions is normal here (the placement queue holds them).
        ("grpc.server.max_pending_requests", limits.API_PENDING_CALLS),
        ("grpc.server.max_pending_requests_hard_limit", limits.API_PENDING_CALLS),
        ("grpc.server_handshake_timeout_ms", limits.HANDSHAKE_SECONDS * 1000),
        ("grpc.max_connection_idle_ms", limits.IDLE_CONNECTION_SECONDS * 1000),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
    ]


def _read(base: Path, name: str, setting: str) -> bytes:
    path = Path(name)
    path = path if path.is_absolute() else base / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(Problem(f"api.{setting}", f"cannot read {path}: {exc.strerror or exc}")) from None


def _unbindable(listen: str) -> str | None:
    """Why ``listen`` cannot be bound now, or None."""
    host, port = parse_listen(listen)
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return str(exc.strerror or exc)
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                return str(exc.strerror or exc)
    return None


class ApiServer:
    """The daemon's gRPC server: providers, selection, health and reflection on ``[api] listen``."""

    name = "API server"

    def __init__(self, settings: ApiSettings, services: ApiServices, *, base: Path, serving: Callable[[], bool],
                 interceptors: Sequence[Any] = (), grace_seconds: float = 5.0):
        """
        :param base: the folder relative file names in ``settings`` start from (hodei.toml's).
        :param serving: whether the daemon is ready and not stopping (the health service's answer).
        :param interceptors: run before authentication (the telemetry's).
        """
        self.settings = settings
        self.services = services
        self.base = base
        self.serving = serving
        self.interceptors = list(interceptors)
        self.grace_seconds = grace_seconds
        self.port: int | None = None
        self.health = health_aio.HealthServicer()
        self.stopping = False
        self._stop = anyio.Event()
        self._serving: bool | None = None

    @property
    def tls(self) -> bool:
        return self.settings.tls_cert_file is not None

    @property
    def url(self) -> str | None:
        if self.port is None:
            return None
        host, _ = parse_listen(self.settings.listen)
        host = f"[{host}]" if ":" in host else host
        return f"{'grpcs' if self.tls else 'grpc'}://{host}:{self.port}"

    @property
    def address(self) -> str | None:
        """``HOST:PORT`` as bound, for clients (``hodei --server``)."""
        url = self.url
        return url.split("://", 1)[1] if url else None

    def stop(self) -> None:
        self.stopping = True
        self._stop.set()

    def _credentials(self) -> grpc.ServerCredentials | None:
        if not self.tls:
            return None
        base, api = self.base, self.settings
        assert api.tls_cert_file is not None and api.tls_key_file is not None
        key, cert = _read(base, api.tls_key_file, "tls_key_file"), _read(base, api.tls_cert_file, "tls_cert_file")
        ca = _read(base, api.client_ca_file, "client_ca_file") if api.client_ca_file else None
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)

    def certificate_files(self) -> tuple[str, str] | None:
        """The TLS certificate and key as paths (a relative one from hodei.toml's folder), or None: plaintext."""
        api = self.settings
        if api.tls_cert_file is None or api.tls_key_file is None:
            return None
        return tuple(str(path if path.is_absolute() else self.base / path)  # type: ignore[return-value]
                     for path in (Path(api.tls_cert_file), Path(api.tls_key_file)))

    def token(self) -> str | None:
        """The bearer token every call must carry (``[api] token_file``, read now), or None: no token.
        :raises InvalidInput: a token file that cannot be read, or is empty."""
        return self._token()

    def _token(self) -> str | None:
        if self.settings.token_file is None:
            return None
        token = _read(self.base, self.settings.token_file, "token_file").decode("utf-8", "replace").strip()
        if not token:
            raise InvalidInput(Problem("api.token_file", f"{self.settings.token_file} is empty"))
        return token

    def _server(self, token: str | None) -> grpc.aio.Server:
        interceptors = list(self.interceptors)
        if token is not None:
            interceptors.append(TokenAuth(token))
        # so_reuseport off: a second daemon on the same port must fail, not share it.
        server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0), *connection_options()])
        identity = actors.token_identity(token) if token is not None else None
        pb_grpc.add_ProviderServiceServicer_to_server(ProviderServicer(self.services, identity), server)
        spb_grpc.add_SelectionServiceServicer_to_server(SelectionServicer(self.services), server)
        wpb_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(self.services), server)
        if self.services.daemons is not None:
            dpb_grpc.add_DaemonsServicer_to_server(DaemonsServicer(self.services.daemons, self.services.call), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (PROVIDER_SERVICE, SELECTION_SERVICE, WORKER_SERVICE, DAEMONS_SERVICE,
             health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        return server

    async def _set_health(self) -> None:
        serving = bool(self.serving() and not self.stopping)
        if serving == self._serving:
            return
        self._serving = serving
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", PROVIDER_SERVICE, SELECTION_SERVICE, WORKER_SERVICE, DAEMONS_SERVICE):
            await self.health.set(service, status)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if not self.settings.listen:
            log.info("API off ([api] listen is empty)")
            task_status.started()
            return
        token, credentials = self._token(), self._credentials()
        await self._set_health()
        # Asked first of the OS, so a busy port is reported here, once, not by gRPC's C core on stderr.
        problem = _unbindable(self.settings.listen)
        port = 0
        if problem is None:
            server = self._server(token)
            try:
                port = (server.add_secure_port(self.settings.listen, credentials) if credentials is not None
                        else server.add_insecure_port(self.settings.listen))
            except RuntimeError as exc:
                problem = str(exc)
        if not port:
            # The address is not reloadable: a daemon that cannot take it now never will, so it must not
            # look ready (systemd restarts a failed unit; a second `hodei serve` learns who holds the port).
            raise StartupFailure(cannot_listen("API ([api] listen)", self.settings.listen,
                                               problem or "the address is in use or not available"))
        await server.start()
        self.port = port
        log.info("API listening on %s (%s, %s)", self.url, "mutual TLS" if self.settings.client_ca_file else
                 "TLS" if credentials is not None else "plaintext",
                 "bearer token required" if token else "no token")
        task_status.started()
        try:
            while not self._stop.is_set():
                await self._set_health()
                with anyio.move_on_after(0.1):
                    await self._stop.wait()
        finally:
            with anyio.CancelScope(shield=True):
                await self._set_health()
                await server.stop(self.grace_seconds)
                self.port = None
