"""The CLI's side of the API: a store and a selector that ask a running daemon.

:class:`RemoteStore` has the methods of :class:`hodei.store.Store` the commands use, and returns
the same objects, so ``hodei --server ADDRESS providers list`` runs the same command code and prints
the same output as without ``--server``. A refused call raises the same Hodei error as the store
would (see :mod:`hodei.api.errors`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from hodei.api import convert
from hodei.api.errors import ServerError, error_from, unpack
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.domain import ProviderState, ProviderType
from hodei.errors import InvalidInput, Problem

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServerOptions:
    """How to reach the daemon: ``hodei --server`` and its companions."""

    address: str
    token_file: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def secure(self) -> bool:
        return self.tls or any((self.ca_file, self.cert_file, self.key_file))


def _read(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(Problem(option, f"cannot read {path}: {exc.strerror or exc}")) from None


class Connection:
    """One channel to the daemon, the token sent with every call, errors turned back into Hodei's."""

    def __init__(self, options: ServerOptions):
        self.options = options
        self.metadata: tuple[tuple[str, str], ...] = ()
        if options.token_file:
            token = _read(options.token_file, "--token-file").decode("utf-8", "replace").strip()
            if not token:
                raise InvalidInput(Problem("--token-file", f"{options.token_file} is empty"))
            self.metadata = (("authorization", f"Bearer {token}"),)
        if options.secure:
            if bool(options.cert_file) != bool(options.key_file):
                raise InvalidInput(Problem("--tls-cert-file", "--tls-cert-file and --tls-key-file go together"))
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(options.ca_file, "--tls-ca-file") if options.ca_file else None,
                private_key=_read(options.key_file, "--tls-key-file") if options.key_file else None,
                certificate_chain=_read(options.cert_file, "--tls-cert-file") if options.cert_file else None)
            self.channel = grpc.secure_channel(options.address, credentials)
        else:
            self.channel = grpc.insecure_channel(options.address)
        self.providers = pb_grpc.ProviderServiceStub(self.channel)
        self.selection = spb_grpc.SelectionServiceStub(self.channel)

    def call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=self.metadata, timeout=self.options.timeout)
        except grpc.RpcError as exc:
            raise error_from(exc, self.options.address) from None

    def close(self) -> None:
        self.channel.close()


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str
    old_value: str | None
    new_value: str | None
    cause: str
    provider_name: str


def _direct_only(what: str) -> ServerError:
    return ServerError(f"{what} has no API call: it works on the database directly; run it without --server")


class RemoteStore:
    """The provider store, through the daemon's API."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.call = connection.call
        self.api = connection.providers

    def list(self) -> list[Any]:
        return [convert.stored_from(p) for p in self._list()]

    def _list(self) -> list[pb.Provider]:
        return list(self.call(self.api.ListProviders, pb.ListProvidersRequest()).providers)

    def states(self) -> dict[uuid.UUID, ProviderState]:
        return {uuid.UUID(p.id): convert.state_from(p.state) for p in self._list()}

    def get(self, ref: str | uuid.UUID) -> Any:
        return convert.stored_from(self.call(self.api.GetProvider, pb.GetProviderRequest(provider_id=str(ref))))

    def state(self, ref: str | uuid.UUID) -> ProviderState:
        provider = self.call(self.api.GetProvider, pb.GetProviderRequest(provider_id=str(ref)))
        return convert.state_from(provider.state)

    def create(self, document: Mapping[str, Any]) -> Any:
        request = pb.CreateProviderRequest(config=convert.config_message(document))
        return convert.stored_from(self.call(self.api.CreateProvider, request))

    def update(self, ref: str | uuid.UUID, changes: Mapping[str, Any] | None = None, *,
               merge_config: Mapping[str, Any] | None = None, expected_updated_at: datetime | None = None) -> Any:
        changes = dict(changes or {})
        merge = False
        if merge_config is not None:
            if not isinstance(merge_config, Mapping):
                raise InvalidInput(Problem("config", "a config merge must be an object"))
            if "config" in changes:  # replaced, then merged: one replacement
                current = changes["config"]
                changes["config"] = {**(current if isinstance(current, Mapping) else {}), **merge_config}
            else:
                changes["config"], merge = dict(merge_config), True
        request = pb.UpdateProviderRequest(
            provider_id=str(ref), config=convert.config_message(changes), merge_config=merge,
            update_mask=field_mask_pb2.FieldMask(paths=list(changes)),
            expected_version=convert.version_of(expected_updated_at) if expected_updated_at else "")
        return convert.stored_from(self.call(self.api.UpdateProvider, request))

    def set_status(self, ref: str | uuid.UUID, status: Any, *, cause: str = "set by an operator") -> Any:
        value = getattr(status, "value", status)
        request = pb.SetProviderStatusRequest(provider_id=str(ref), status=str(value), cause=cause)
        return convert.stored_from(self.call(self.api.SetProviderStatus, request))

    def delete(self, ref: str | uuid.UUID) -> Any:
        return convert.stored_from(self.call(self.api.DeleteProvider, pb.DeleteProviderRequest(provider_id=str(ref))))

    def history(self, ref: str | uuid.UUID, limit: int = 50) -> list[HistoryEntry]:
        answer = self.call(self.api.GetProviderHistory, pb.GetProviderHistoryRequest(provider_id=str(ref),
                                                                                    limit=limit))
        return [HistoryEntry(at=e.at.ToDatetime(tzinfo=convert.timezone.utc), kind=e.kind,
                             old_value=e.old_value if e.HasField("old_value") else None,
                             new_value=e.new_value if e.HasField("new_value") else None,
                             cause=e.cause, provider_name=e.provider_name) for e in answer.entries]

    def apply(self, *_args: Any, **_kwargs: Any) -> Any:
        raise _direct_only("`hodei providers apply`")

    def record_check(self, *_args: Any, **_kwargs: Any) -> Any:
        raise _direct_only("recording health (`hodei providers check`)")

    def close(self) -> None:
        self.connection.close()


class RemoteChain:
    """Requirements are checked by the server's chain: here they are only carried there."""

    def parse_requirements(self, document: Any) -> Any:
        return document


class _Answer:
    """A report or explanation as the server gave it: ``as_dict()`` and ``text()`` as the local ones."""

    def __init__(self, message: Any):
        self.message = message
        self.selected = message.selected if message.HasField("selected") else None

    def as_dict(self) -> dict[str, Any]:
        return convert.message_dict(self.message, skip=("text",))

    def text(self) -> str:
        return str(self.message.text)


class RemoteSelection:
    def __init__(self, connection: Connection):
        self.connection = connection

    def _requirements(self, document: Any) -> Any:
        if document is None:
            return None
        if not isinstance(document, Mapping):
            raise InvalidInput(Problem("requirements", f"must be an object, got {type(document).__name__}"))
        return convert.to_struct(document)

    def report(self, document: Any) -> _Answer:
        """The dry run; when no provider fits, the report the server sent with FAILED_PRECONDITION."""
        request = spb.SelectRequest(requirements=self._requirements(document))
        try:
            return _Answer(self.connection.call(self.connection.selection.Select, request))
        except ServerError as exc:
            if exc.code is grpc.StatusCode.FAILED_PRECONDITION:
                report = unpack(exc.details, spb.SelectResponse)
                if report is not None:
                    return _Answer(report)
            raise

    def explain(self, name: str, document: Any) -> _Answer:
        request = spb.ExplainRequest(provider=name, requirements=self._requirements(document))
        return _Answer(self.connection.call(self.connection.selection.Explain, request))


class ServerMaskedTypes:
    """Stands in for the plugin manager where the CLI masks configs: the server masked them already
    (and hid a config whose type it has not loaded), so nothing more is hidden here."""

    class _Types(dict[str, ProviderType]):
        def get(self, key: Any, default: Any = None) -> ProviderType:  # type: ignore[override]
            return ProviderType(str(key))

    provider_types = _Types()


