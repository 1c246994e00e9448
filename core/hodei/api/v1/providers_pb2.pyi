import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProviderConfig(_message.Message):
    __slots__ = ("name", "provider_type", "config", "status", "priority", "max_workers", "preferred_region", "allowed_regions", "required_labels", "annotations")
    class RequiredLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKERS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_REGION_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_REGIONS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_LABELS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider_type: str
    config: _struct_pb2.Value
    status: str
    priority: int
    max_workers: int
    preferred_region: str
    allowed_regions: _containers.RepeatedScalarFieldContainer[str]
    required_labels: _containers.ScalarMap[str, str]
    annotations: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., provider_type: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., status: _Optional[str] = ..., priority: _Optional[int] = ..., max_workers: _Optional[int] = ..., preferred_region: _Optional[str] = ..., allowed_regions: _Optional[_Iterable[str]] = ..., required_labels: _Optional[_Mapping[str, str]] = ..., annotations: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FieldProblem(_message.Message):
    __slots__ = ("field", "reason")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    field: str
    reason: str
    def __init__(self, field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Resources(_message.Message):
    __slots__ = ("cpu", "memory", "gpu")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    cpu: float
    memory: int
    gpu: int
    def __init__(self, cpu: _Optional[float] = ..., memory: _Optional[int] = ..., gpu: _Optional[int] = ...) -> None: ...

class ProviderState(_message.Message):
    __slots__ = ("health", "health_reason", "checked_at", "check_duration_seconds", "active_workers", "reserved_workers", "per_worker", "capacity_reported_at", "consecutive_failures", "consecutive_successes", "backend_workers", "provision_failures", "cooldown_until", "last_provision_error")
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_REASON_FIELD_NUMBER: _ClassVar[int]
    CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    CHECK_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_WORKERS_FIELD_NUMBER: _ClassVar[int]
    PER_WORKER_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    BACKEND_WORKERS_FIELD_NUMBER: _ClassVar[int]
    PROVISION_FAILURES_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_UNTIL_FIELD_NUMBER: _ClassVar[int]
    LAST_PROVISION_ERROR_FIELD_NUMBER: _ClassVar[int]
    health: str
    health_reason: str
    checked_at: _timestamp_pb2.Timestamp
    check_duration_seconds: float
    active_workers: int
    reserved_workers: int
    per_worker: Resources
    capacity_reported_at: _timestamp_pb2.Timestamp
    consecutive_failures: int
    consecutive_successes: int
    backend_workers: int
    provision_failures: int
    cooldown_until: _timestamp_pb2.Timestamp
    last_provision_error: str
    def __init__(self, health: _Optional[str] = ..., health_reason: _Optional[str] = ..., checked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., check_duration_seconds: _Optional[float] = ..., active_workers: _Optional[int] = ..., reserved_workers: _Optional[int] = ..., per_worker: _Optional[_Union[Resources, _Mapping]] = ..., capacity_reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consecutive_failures: _Optional[int] = ..., consecutive_successes: _Optional[int] = ..., backend_workers: _Optional[int] = ..., provision_failures: _Optional[int] = ..., cooldown_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_provision_error: _Optional[str] = ...) -> None: ...

class Provider(_message.Message):
    __slots__ = ("id", "config", "created_at", "updated_at", "version", "valid", "problems", "state", "config_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    config: ProviderConfig
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    version: str
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[FieldProblem]
    state: ProviderState
    config_json: str
    def __init__(self, id: _Optional[str] = ..., config: _Optional[_Union[ProviderConfig, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[str] = ..., valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[FieldProblem, _Mapping]]] = ..., state: _Optional[_Union[ProviderState, _Mapping]] = ..., config_json: _Optional[str] = ...) -> None: ...

class CreateProviderRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: ProviderConfig
    def __init__(self, config: _Optional[_Union[ProviderConfig, _Mapping]] = ...) -> None: ...

class GetProviderRequest(_message.Message):
    __slots__ = ("provider_id",)
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    def __init__(self, provider_id: _Optional[str] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ("provider_type", "status", "region", "labels", "page_size", "page_token")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROVIDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    provider_type: str
    status: str
    region: str
    labels: _containers.ScalarMap[str, str]
    page_size: int
    page_token: str
    def __init__(self, provider_type: _Optional[str] = ..., status: _Optional[str] = ..., region: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers", "next_page_token")
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[Provider]
    next_page_token: str
    def __init__(self, providers: _Optional[_Iterable[_Union[Provider, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateProviderRequest(_message.Message):
    __slots__ = ("provider_id", "config", "update_mask", "merge_config", "expected_version", "merge_labels", "remove_labels", "merge_annotations", "remove_annotations")
    class MergeLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MergeAnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    MERGE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    MERGE_LABELS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_LABELS_FIELD_NUMBER: _ClassVar[int]
    MERGE_ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    config: ProviderConfig
    update_mask: _field_mask_pb2.FieldMask
    merge_config: bool
    expected_version: str
    merge_labels: _containers.ScalarMap[str, str]
    remove_labels: _containers.RepeatedScalarFieldContainer[str]
    merge_annotations: _containers.ScalarMap[str, str]
    remove_annotations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, provider_id: _Optional[str] = ..., config: _Optional[_Union[ProviderConfig, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., merge_config: _Optional[bool] = ..., expected_version: _Optional[str] = ..., merge_labels: _Optional[_Mapping[str, str]] = ..., remove_labels: _Optional[_Iterable[str]] = ..., merge_annotations: _Optional[_Mapping[str, str]] = ..., remove_annotations: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteProviderRequest(_message.Message):
    __slots__ = ("provider_id",)
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    def __init__(self, provider_id: _Optional[str] = ...) -> None: ...

class SetProviderStatusRequest(_message.Message):
    __slots__ = ("provider_id", "status", "cause")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    status: str
    cause: str
    def __init__(self, provider_id: _Optional[str] = ..., status: _Optional[str] = ..., cause: _Optional[str] = ...) -> None: ...

class GetProviderHistoryRequest(_message.Message):
    __slots__ = ("provider_id", "limit", "page_token")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    limit: int
    page_token: str
    def __init__(self, provider_id: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("at", "kind", "old_value", "new_value", "cause", "provider_name", "actor")
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    kind: str
    old_value: str
    new_value: str
    cause: str
    provider_name: str
    actor: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., old_value: _Optional[str] = ..., new_value: _Optional[str] = ..., cause: _Optional[str] = ..., provider_name: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class GetProviderHistoryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApplyProvidersRequest(_message.Message):
    __slots__ = ("providers_json", "dry_run", "prune")
    PROVIDERS_JSON_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    providers_json: str
    dry_run: bool
    prune: bool
    def __init__(self, providers_json: _Optional[str] = ..., dry_run: _Optional[bool] = ..., prune: _Optional[bool] = ...) -> None: ...

class ApplyProvidersFieldChange(_message.Message):
    __slots__ = ("field", "before_json", "after_json")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    BEFORE_JSON_FIELD_NUMBER: _ClassVar[int]
    AFTER_JSON_FIELD_NUMBER: _ClassVar[int]
    field: str
    before_json: str
    after_json: str
    def __init__(self, field: _Optional[str] = ..., before_json: _Optional[str] = ..., after_json: _Optional[str] = ...) -> None: ...

class ApplyProvidersChange(_message.Message):
    __slots__ = ("name", "action", "fields", "provider_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    action: str
    fields: _containers.RepeatedCompositeFieldContainer[ApplyProvidersFieldChange]
    provider_id: str
    def __init__(self, name: _Optional[str] = ..., action: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[ApplyProvidersFieldChange, _Mapping]]] = ..., provider_id: _Optional[str] = ...) -> None: ...

class ApplyProvidersResponse(_message.Message):
    __slots__ = ("dry_run", "changes")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    changes: _containers.RepeatedCompositeFieldContainer[ApplyProvidersChange]
    def __init__(self, dry_run: _Optional[bool] = ..., changes: _Optional[_Iterable[_Union[ApplyProvidersChange, _Mapping]]] = ...) -> None: ...

class CheckProvidersRequest(_message.Message):
    __slots__ = ("providers", "timeout_seconds")
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedScalarFieldContainer[str]
    timeout_seconds: float
    def __init__(self, providers: _Optional[_Iterable[str]] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class ProviderCheck(_message.Message):
    __slots__ = ("provider_id", "name", "health", "reason", "duration_seconds", "active_workers", "max_workers", "capacity_error")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKERS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_ERROR_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    name: str
    health: str
    reason: str
    duration_seconds: float
    active_workers: int
    max_workers: int
    capacity_error: str
    def __init__(self, provider_id: _Optional[str] = ..., name: _Optional[str] = ..., health: _Optional[str] = ..., reason: _Optional[str] = ..., duration_seconds: _Optional[float] = ..., active_workers: _Optional[int] = ..., max_workers: _Optional[int] = ..., capacity_error: _Optional[str] = ...) -> None: ...

class SkippedProvider(_message.Message):
    __slots__ = ("name", "problems")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    problems: _containers.RepeatedCompositeFieldContainer[FieldProblem]
    def __init__(self, name: _Optional[str] = ..., problems: _Optional[_Iterable[_Union[FieldProblem, _Mapping]]] = ...) -> None: ...

class CheckProvidersResponse(_message.Message):
    __slots__ = ("results", "skipped")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ProviderCheck]
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedProvider]
    def __init__(self, results: _Optional[_Iterable[_Union[ProviderCheck, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[SkippedProvider, _Mapping]]] = ...) -> None: ...

class ResetProviderCooldownRequest(_message.Message):
    __slots__ = ("provider_id",)
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    def __init__(self, provider_id: _Optional[str] = ...) -> None: ...

class ResetProviderCooldownResponse(_message.Message):
    __slots__ = ("provider", "ended_failures", "ended_until")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ENDED_FAILURES_FIELD_NUMBER: _ClassVar[int]
    ENDED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    ended_failures: int
    ended_until: _timestamp_pb2.Timestamp
    def __init__(self, provider: _Optional[_Union[Provider, _Mapping]] = ..., ended_failures: _Optional[int] = ..., ended_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
