from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProvisionWorkerRequest(_message.Message):
    __slots__ = ("requirements", "wait_seconds", "request_id")
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    requirements: _struct_pb2.Struct
    wait_seconds: float
    request_id: str
    def __init__(self, requirements: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., wait_seconds: _Optional[float] = ..., request_id: _Optional[str] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("provider", "outcome", "reason", "seconds")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    outcome: str
    reason: str
    seconds: float
    def __init__(self, provider: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ("id", "provider_id", "provider", "state", "reason", "backend_id", "requirements", "attempts", "created_at", "updated_at", "ended_at", "requirements_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BACKEND_ID_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    provider_id: str
    provider: str
    state: str
    reason: str
    backend_id: str
    requirements: _struct_pb2.Struct
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    created_at: str
    updated_at: str
    ended_at: str
    requirements_json: str
    def __init__(self, id: _Optional[str] = ..., provider_id: _Optional[str] = ..., provider: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., backend_id: _Optional[str] = ..., requirements: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., ended_at: _Optional[str] = ..., requirements_json: _Optional[str] = ...) -> None: ...

class ProvisionFailure(_message.Message):
    __slots__ = ("attempts", "summary")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    summary: str
    def __init__(self, attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., summary: _Optional[str] = ...) -> None: ...

class ReleaseWorkerRequest(_message.Message):
    __slots__ = ("worker_id", "reason")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    reason: str
    def __init__(self, worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetWorkerRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ("provider", "states", "all", "limit", "page_token")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    provider: str
    states: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    limit: int
    page_token: str
    def __init__(self, provider: _Optional[str] = ..., states: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers", "next_page_token")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    next_page_token: str
    def __init__(self, workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListQueueRequest(_message.Message):
    __slots__ = ("limit", "page_token")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    limit: int
    page_token: str
    def __init__(self, limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class QueuedRequest(_message.Message):
    __slots__ = ("position", "id", "priority", "enqueued_at", "deadline", "waits_at", "reasons")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    WAITS_AT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    position: int
    id: str
    priority: int
    enqueued_at: str
    deadline: str
    waits_at: str
    reasons: str
    def __init__(self, position: _Optional[int] = ..., id: _Optional[str] = ..., priority: _Optional[int] = ..., enqueued_at: _Optional[str] = ..., deadline: _Optional[str] = ..., waits_at: _Optional[str] = ..., reasons: _Optional[str] = ...) -> None: ...

class ListQueueResponse(_message.Message):
    __slots__ = ("requests", "next_page_token")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[QueuedRequest]
    next_page_token: str
    def __init__(self, requests: _Optional[_Iterable[_Union[QueuedRequest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class CancelRequestResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
