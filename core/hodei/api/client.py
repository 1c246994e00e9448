"""The CLI's connection to a running daemon: the channel, the token, TLS, and errors turned back
into the Hodei errors the local services raise (see :mod:`hodei.api.errors`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from hodei.api.errors import error_from
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
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
        self.workers = wpb_grpc.WorkerServiceStub(self.channel)

    def call(self, method: Any, request: Any, *, timeout: float | None = None) -> Any:
        """``method(request)``, within ``timeout`` seconds (default: the connection's; a provisioning or a
        check asks for longer)."""
        try:
            return method(request, metadata=self.metadata, timeout=timeout or self.options.timeout)
        except grpc.RpcError as exc:
            raise error_from(exc, self.options.address) from None

    def close(self) -> None:
        self.channel.close()
