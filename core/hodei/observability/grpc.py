"""A ``grpc.aio`` server interceptor: the caller's trace continues in Hodei, and every call is counted.

The W3C ``traceparent`` (and ``tracestate``) metadata of a call is the parent of a SERVER span named
after the method (``hodei.v1.Scheduler/Select``); the handler runs inside it, so its selection and
provisioning spans, and its log lines, carry the caller's trace id. The span ends with the call's
status code (``rpc.grpc.status_code``); codes that mean a server fault (UNKNOWN, DEADLINE_EXCEEDED,
UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS) mark it as an error, as the OpenTelemetry
conventions ask. ``hodei_grpc_requests_total{method,code}`` and
``hodei_grpc_request_duration_seconds{method}`` count and time the calls. A client cannot invent
label values: a method no handler answers is counted as ``method="unknown"``, and so is any method
outside ``methods`` when it is given (pass the full names of the services the server registers;
without it, at most :data:`MAX_METHODS` distinct names are kept, the rest are ``unknown``). Give
``methods`` when another interceptor (authentication) may answer calls to methods that do not exist.

Handlers must be ``async`` (coroutine functions or async generators); others are passed through
untraced. Usage::

    methods = [f"/{service.full_name}/{m.name}" for service in descriptors for m in service.methods]
    server = grpc.aio.server(interceptors=[daemon.telemetry.grpc_interceptor(methods)])
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from hodei.observability.telemetry import Telemetry

_PROPAGATOR = TraceContextTextMapPropagator()
_SERVER_FAULTS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
                  grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS}
_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
MAX_METHODS = 200


def parent_context(metadata: Iterable[Any] | None) -> Context:
    """The trace context a call's metadata carries (an empty context when it carries none)."""
    carrier: dict[str, str] = {}
    for item in metadata or ():
        key, value = item[0], item[1]
        if isinstance(key, str) and isinstance(value, str):
            carrier[key.lower()] = value
    return _PROPAGATOR.extract(carrier)


def _code_of(context: Any, exc: BaseException | None) -> grpc.StatusCode:
    code = None
    with suppress(Exception):
        code = context.code()
    if isinstance(code, int):
        code = _BY_VALUE.get(code)
    if isinstance(code, grpc.StatusCode):
        return code
    if _cancelled(context):
        return grpc.StatusCode.CANCELLED
    if exc is None:
        return grpc.StatusCode.OK
    # A stream the client cancelled (grpcurl closing its reflection stream) is closed at a ``yield``
    # (GeneratorExit) or cancelled while it waits (CancelledError): the client's doing, not a fault.
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _cancelled(context: Any) -> bool:
    with suppress(Exception):
        return context.cancelled() is True
    return False


def _when_done(context: Any, callback: Callable[[], None]) -> bool:
    """Run ``callback`` once the call is over; ``False`` when the context cannot say (then: now)."""
    try:
        if context.done():
            return False
        context.add_done_callback(lambda _context: callback())
    except Exception:
        return False
    return True


def _current(span: Any) -> Any:
    """``span`` as the current span while the handler runs (its spans and log lines carry the trace)."""
    return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)


class TelemetryInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, telemetry: Telemetry, methods: Iterable[str] | None = None):
        self.telemetry = telemetry
        self.methods = frozenset(methods) if methods is not None else None
        self._seen: set[str] = set()

    def _label(self, method: str) -> str:
        """The ``method`` label for a call: the method's name, or ``unknown``."""
        if self.methods is not None:
            return method if method in self.methods else "unknown"
        if method in self._seen:
            return method
        if len(self._seen) < MAX_METHODS:
            self._seen.add(method)
            return method
        return "unknown"

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            self.telemetry.metrics.observe_grpc("unknown", grpc.StatusCode.UNIMPLEMENTED.name, None)
            return None
        method = self._label(handler_call_details.method)
        metadata = handler_call_details.invocation_metadata
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._wrap(handler.unary_unary, method, metadata),
                                                       handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(self._wrap(handler.unary_stream, method, metadata),
                                                        handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._wrap(handler.stream_unary, method, metadata),
                                                        handler.request_deserializer, handler.response_serializer)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(self._wrap(handler.stream_stream, method, metadata),
                                                         handler.request_deserializer, handler.response_serializer)
        return handler

    @contextmanager
    def _span(self, method: str, metadata: Any, context: Any, *, stream: bool = False) -> Any:
        name = method.lstrip("/") if method != "unknown" else "unknown"
        service, _, rpc = name.rpartition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc}
        started = time.perf_counter()
        error: BaseException | None = None
        # Not made current here: the handler runs inside it (_current), and a stream's span must not stay
        # attached across its yields (a cancelled stream is closed from another context).
        span = self.telemetry.tracer.start_span(
            name, context=parent_context(metadata), kind=SpanKind.SERVER, attributes=attributes,
            record_exception=False, set_status_on_exception=False)

        def finish(code: grpc.StatusCode, seconds: float) -> None:
            if span.is_recording():
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code in _SERVER_FAULTS:
                    if error is not None and isinstance(error, Exception) and code is grpc.StatusCode.UNKNOWN:
                        span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()
            self.telemetry.metrics.observe_grpc(method, code.name, seconds)

        try:
            yield span
        except BaseException as exc:
            error = exc
            raise
        finally:
            code, seconds = _code_of(context, error), time.perf_counter() - started
            # A stream whose handler ended as its client cancelled (the request stream just stops) is
            # known as cancelled only once the call is over: decided then.
            if not (stream and code is grpc.StatusCode.OK and _when_done(context, lambda: finish(
                    grpc.StatusCode.CANCELLED if _cancelled(context) else code, seconds))):
                finish(code, seconds)

    def _wrap(self, behavior: Callable[..., Any], method: str, metadata: Any) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):
            async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
                with self._span(method, metadata, context, stream=True) as span:
                    responses = behavior(request, context).__aiter__()
                    while True:
                        with _current(span):
                            try:
                                response = await responses.__anext__()
                            except StopAsyncIteration:
                                return
                        yield response

            return streaming
        if inspect.iscoroutinefunction(behavior):
            async def unary(request: Any, context: Any) -> Any:
                with self._span(method, metadata, context) as span, _current(span):
                    return await behavior(request, context)

            return unary
        return behavior
