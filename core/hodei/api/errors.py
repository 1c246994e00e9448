"""Hodei's errors as gRPC statuses, and back.

The server answers every refused call with a standard code and a one-line message; the details
(``grpc-status-details-bin``, the rich error model) say more: a ``google.rpc.BadRequest`` naming
each field at fault, and a ``google.rpc.ErrorInfo`` whose reason is Hodei's error type, so the
CLI turns a refusal back into the same error, and prints the same message, as without a server.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from hodei.errors import (
    AlreadyExists,
    Conflict,
    DatabaseNotReady,
    HodeiError,
    InvalidInput,
    NotFound,
    Problem,
    StaleVersion,
    UnknownProviderType,
)
from hodei.redaction import scrub, shorten

log = logging.getLogger("hodei.api")

DOMAIN = "hodei.api"
DETAILS_KEY = "grpc-status-details-bin"
# What a refusal may carry (see _message_of and _violations).
MESSAGE_CHARS = 1000
DETAILS_BYTES = 2000


class ServerError(HodeiError):
    """The server refused a call, or could not be reached."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None, details: Sequence[Any] = ()):
        super().__init__(message)
        self.code = code
        self.details = list(details)


def code_of(exc: HodeiError) -> grpc.StatusCode:
    if isinstance(exc, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, AlreadyExists):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(exc, Conflict):
        return grpc.StatusCode.ABORTED
    if isinstance(exc, DatabaseNotReady) or type(exc).__name__ == "DatabaseUnavailable":
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, UnknownProviderType):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.FAILED_PRECONDITION


def status_details(code: grpc.StatusCode, message: str, reason: str, *, problems: Sequence[Problem] = (),
                   subject: str | None = None, extra: Sequence[Message] = ()) -> bytes:
    """A serialized ``google.rpc.Status`` for the ``grpc-status-details-bin`` trailer."""
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    if subject:
        info.metadata["subject"] = subject
    details: list[Message] = [info]
    if problems:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=p.field, description=p.reason) for p in problems]))
    details += list(extra)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status.SerializeToString()


def _message_of(exc: HodeiError) -> str:
    # It may quote what the caller sent: never a credential. It travels twice (grpc-message, percent-
    # encoded, and inside the details), and all trailers together must stay under gRPC's 8 KiB.
    message = scrub(str(exc))
    return shorten(message, MESSAGE_CHARS if message.isascii() else MESSAGE_CHARS // 4)


def _violations(problems: Sequence[Problem]) -> list[Problem]:
    """As many field violations as fit :data:`DETAILS_BYTES`, each reason cut short, then a count of the rest."""
    kept: list[Problem] = []
    size = 0
    for problem in problems:
        short = Problem(problem.field, shorten(problem.reason, 300))
        size += len(short.field.encode()) + len(short.reason.encode()) + 8
        if size > DETAILS_BYTES:
            kept.append(Problem("", f"and {len(problems) - len(kept)} more problem(s)"))
            break
        kept.append(short)
    return kept


def describe(exc: HodeiError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """The code, message and trailing metadata for a Hodei error."""
    code = code_of(exc)
    message = _message_of(exc)
    problems = _violations(exc.problems) if isinstance(exc, InvalidInput) else []
    subject = exc.subject if isinstance(exc, InvalidInput) else None
    reason = type(exc).__name__
    return code, message, ((DETAILS_KEY, status_details(code, message, reason, problems=problems,
                                                        subject=subject)),)


def answers(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Decorates a servicer method: Hodei's errors become their gRPC codes; anything else INTERNAL,
    logged here, never sent."""

    @functools.wraps(method)
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except HodeiError as exc:
            code, message, trailers = describe(exc)
            await context.abort(code, message, trailing_metadata=trailers)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("%s failed", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__} failed inside the server "
                                                          "(the daemon's log has the details)")

    return handler


# -- client side ----------------------------------------------------------------------------------


def _details(error: grpc.RpcError) -> list[Any]:
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for item in trailers or ():
        if item.key == DETAILS_KEY:
            status = status_pb2.Status.FromString(item.value)
            return list(status.details)
    return []


M = TypeVar("M", bound=Message)


def unpack(details: Sequence[any_pb2.Any], kind: type[M]) -> M | None:
    for packed in details:
        if packed.Is(kind.DESCRIPTOR):  # type: ignore[arg-type]  # the stubs type DESCRIPTOR as a union
            message = kind()
            packed.Unpack(message)
            return message
    return None


def error_from(error: grpc.RpcError, address: str) -> HodeiError:
    """The Hodei error a refused call stands for."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else None) or str(code)
    details = _details(error)
    info = unpack(details, error_details_pb2.ErrorInfo)
    reason = info.reason if info is not None and info.domain == DOMAIN else ""
    if code is grpc.StatusCode.INVALID_ARGUMENT and reason:
        bad = unpack(details, error_details_pb2.BadRequest)
        problems = [Problem(v.field, v.description) for v in bad.field_violations] if bad else []
        subject = info.metadata.get("subject") if info is not None else None
        return InvalidInput(problems or [Problem("", message)], subject=subject or None)
    if code is grpc.StatusCode.NOT_FOUND and reason:
        return NotFound(message)
    if code is grpc.StatusCode.ALREADY_EXISTS and reason:
        return AlreadyExists(message)
    if code is grpc.StatusCode.ABORTED and reason:
        return StaleVersion(message) if reason == "StaleVersion" else Conflict(message)
    if code is grpc.StatusCode.UNAVAILABLE and not reason:
        return ServerError(f"cannot reach the Hodei server at {address}: {message}", code)
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return ServerError(f"the Hodei server at {address} refused the call: {message}", code)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return ServerError(f"the Hodei server at {address} did not answer in time", code)
    return ServerError(message, code, details)


