from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SelectRequest(_message.Message):
    __slots__ = ("requirements", "page_size", "page_token")
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requirements: _struct_pb2.Struct
    page_size: int
    page_token: str
    def __init__(self, requirements: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class RankedProvider(_message.Message):
    __slots__ = ("name", "priority", "utilization", "score", "workers", "health", "notes", "position")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    name: str
    priority: int
    utilization: float
    score: float
    workers: str
    health: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    position: int
    def __init__(self, name: _Optional[str] = ..., priority: _Optional[int] = ..., utilization: _Optional[float] = ..., score: _Optional[float] = ..., workers: _Optional[str] = ..., health: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ..., position: _Optional[int] = ...) -> None: ...

class RejectionReason(_message.Message):
    __slots__ = ("filter", "message", "hint")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    filter: str
    message: str
    hint: str
    def __init__(self, filter: _Optional[str] = ..., message: _Optional[str] = ..., hint: _Optional[str] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("name", "reasons")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    reasons: _containers.RepeatedCompositeFieldContainer[RejectionReason]
    def __init__(self, name: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[RejectionReason, _Mapping]]] = ...) -> None: ...

class SelectResponse(_message.Message):
    __slots__ = ("selected", "tier", "ranking", "rejected", "summary", "warnings", "text", "rejection_counts", "total", "eligible", "in_tier", "rejected_total", "offset", "next_page_token")
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REJECTION_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    IN_TIER_FIELD_NUMBER: _ClassVar[int]
    REJECTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    selected: str
    tier: str
    ranking: _containers.RepeatedCompositeFieldContainer[RankedProvider]
    rejected: _containers.RepeatedCompositeFieldContainer[Rejection]
    summary: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    text: str
    rejection_counts: _containers.RepeatedCompositeFieldContainer[SelectRejectionCount]
    total: int
    eligible: int
    in_tier: int
    rejected_total: int
    offset: int
    next_page_token: str
    def __init__(self, selected: _Optional[str] = ..., tier: _Optional[str] = ..., ranking: _Optional[_Iterable[_Union[RankedProvider, _Mapping]]] = ..., rejected: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ..., summary: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., text: _Optional[str] = ..., rejection_counts: _Optional[_Iterable[_Union[SelectRejectionCount, _Mapping]]] = ..., total: _Optional[int] = ..., eligible: _Optional[int] = ..., in_tier: _Optional[int] = ..., rejected_total: _Optional[int] = ..., offset: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SelectRejectionCount(_message.Message):
    __slots__ = ("filter", "count", "hint")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    filter: str
    count: int
    hint: str
    def __init__(self, filter: _Optional[str] = ..., count: _Optional[int] = ..., hint: _Optional[str] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("provider", "requirements")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    requirements: _struct_pb2.Struct
    def __init__(self, provider: _Optional[str] = ..., requirements: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Check(_message.Message):
    __slots__ = ("filter", "passed", "message", "hint")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    filter: str
    passed: bool
    message: str
    hint: str
    def __init__(self, filter: _Optional[str] = ..., passed: _Optional[bool] = ..., message: _Optional[str] = ..., hint: _Optional[str] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("provider", "fits", "selected", "decision_tier", "tier", "rank", "checks", "summary", "text")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    provider: str
    fits: bool
    selected: str
    decision_tier: str
    tier: str
    rank: int
    checks: _containers.RepeatedCompositeFieldContainer[Check]
    summary: str
    text: str
    def __init__(self, provider: _Optional[str] = ..., fits: _Optional[bool] = ..., selected: _Optional[str] = ..., decision_tier: _Optional[str] = ..., tier: _Optional[str] = ..., rank: _Optional[int] = ..., checks: _Optional[_Iterable[_Union[Check, _Mapping]]] = ..., summary: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class PlannedJob(_message.Message):
    __slots__ = ("index", "provider", "tier", "reasons")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    index: int
    provider: str
    tier: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, index: _Optional[int] = ..., provider: _Optional[str] = ..., tier: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class PlannedProvider(_message.Message):
    __slots__ = ("name", "max_workers", "before", "after")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKERS_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    max_workers: int
    before: int
    after: int
    def __init__(self, name: _Optional[str] = ..., max_workers: _Optional[int] = ..., before: _Optional[int] = ..., after: _Optional[int] = ...) -> None: ...

class PlanAdvice(_message.Message):
    __slots__ = ("kind", "text", "places", "change")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PLACES_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    text: str
    places: int
    change: _struct_pb2.Struct
    def __init__(self, kind: _Optional[str] = ..., text: _Optional[str] = ..., places: _Optional[int] = ..., change: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PlanResponse(_message.Message):
    __slots__ = ("placed", "waiting", "jobs", "providers", "advice")
    PLACED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    placed: int
    waiting: int
    jobs: _containers.RepeatedCompositeFieldContainer[PlannedJob]
    providers: _containers.RepeatedCompositeFieldContainer[PlannedProvider]
    advice: _containers.RepeatedCompositeFieldContainer[PlanAdvice]
    def __init__(self, placed: _Optional[int] = ..., waiting: _Optional[int] = ..., jobs: _Optional[_Iterable[_Union[PlannedJob, _Mapping]]] = ..., providers: _Optional[_Iterable[_Union[PlannedProvider, _Mapping]]] = ..., advice: _Optional[_Iterable[_Union[PlanAdvice, _Mapping]]] = ...) -> None: ...
