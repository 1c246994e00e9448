from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListDaemonsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Daemon(_message.Message):
    __slots__ = ("id", "host", "pid", "address", "version", "started_at", "heartbeat_at", "lease_seconds", "providers_owned")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_OWNED_FIELD_NUMBER: _ClassVar[int]
    id: str
    host: str
    pid: int
    address: str
    version: str
    started_at: str
    heartbeat_at: str
    lease_seconds: float
    providers_owned: int
    def __init__(self, id: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ..., address: _Optional[str] = ..., version: _Optional[str] = ..., started_at: _Optional[str] = ..., heartbeat_at: _Optional[str] = ..., lease_seconds: _Optional[float] = ..., providers_owned: _Optional[int] = ...) -> None: ...

class ListDaemonsResponse(_message.Message):
    __slots__ = ("daemons",)
    DAEMONS_FIELD_NUMBER: _ClassVar[int]
    daemons: _containers.RepeatedCompositeFieldContainer[Daemon]
    def __init__(self, daemons: _Optional[_Iterable[_Union[Daemon, _Mapping]]] = ...) -> None: ...
