"""The ``docker`` provider's config: which engine to use and what each worker container gets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from hodei import (
    ConfigError,
    CpuQuantity,
    ImageList,
    MemoryQuantity,
    NonEmptyStr,
    ProviderConfigModel,
    StrictModel,
    normalised_allowed_images,
    validate_config_model,
)
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from hodei_docker.image import check_image_reference
from hodei_docker.labels import RESERVED_PREFIX
from hodei_docker.secret import Redacted

TYPE: Final = "docker"

MIB = 2**20
GIB = 2**30
# `docker run --memory` refuses less than this (moby's linuxMinMemory).
DOCKER_MIN_MEMORY = 6 * MIB
# A Unix socket address holds 108 bytes, the terminating NUL included: a longer path cannot be dialled.
UNIX_SOCKET_PATH_MAX_BYTES = 107
DEFAULT_SOCKET_PATH = "/var/run/docker.sock"
# Dotted paths the core shows as *** (hodei.ProviderType.secret_fields).
SECRET_FIELDS = ("registry_auth.password",)


def _check_socket_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"must be an absolute path, got {path!r}")
    if "\0" in path:
        raise ValueError("must not contain a NUL character")
    if len(path.encode()) > UNIX_SOCKET_PATH_MAX_BYTES:
        raise ValueError(f"must be at most {UNIX_SOCKET_PATH_MAX_BYTES} bytes long (the limit of a Unix socket path)")
    return path


def _check_absolute_path(path: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise ValueError(f"must be an absolute file path, got {path!r}")
    return path


def _check_tcp_endpoint(url: str) -> str:
    expected = "must be tcp://HOST:PORT (TLS is set with `tls`; a local socket with `socket_path`)"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None or port == 0:
        raise ValueError(f"{expected}, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{expected}, without a path, query or user, got {url!r}")
    return url


def _check_docker_accepts_memory(size: int) -> int:
    if size < DOCKER_MIN_MEMORY:
        raise ValueError(f"must be at least 6Mi ({DOCKER_MIN_MEMORY} bytes), Docker's minimum, got {size} bytes")
    return size


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key in labels:
        if not key.strip() or key != key.strip():
            raise ValueError(f"label key {key!r} must not be empty or start or end with white space")
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(f"label key {key!r}: keys starting with {RESERVED_PREFIX!r} are Hodei's own")
    return labels


def _check_allowed(entries: list[str] | None) -> list[str] | None:
    # A pattern is matched as a glob; a plain entry must be an image reference Docker accepts.
    for entry in entries or ():
        if not any(c in "*?[" for c in entry):
            check_image_reference(entry)
    return entries


def _secret_text(value: Any) -> Any:
    # Checked before pydantic so that no error message can quote the value.
    if not isinstance(value, str):
        raise ValueError("must be a string (the value is a secret and is not shown)")
    if not value:
        raise ValueError("must not be empty")
    return value


def _object_of_secrets(value: Any) -> Any:
    # pydantic's "must be an object, got ..." would quote a mistyped credential such as "user:pass".
    if not isinstance(value, Mapping) and value is not None:
        raise ValueError("must be an object with username and password (the value is a secret and is not shown)")
    return value


SocketPath = Annotated[NonEmptyStr, AfterValidator(_check_socket_path)]
FilePath = Annotated[NonEmptyStr, AfterValidator(_check_absolute_path)]
TcpEndpoint = Annotated[NonEmptyStr, AfterValidator(_check_tcp_endpoint)]
ImageReference = Annotated[NonEmptyStr, AfterValidator(check_image_reference)]
Argument = Annotated[str, Field(min_length=1)]  # not NonEmptyStr: white space inside an argument can matter
SecretText = Annotated[str, BeforeValidator(_secret_text)]


class DockerResources(StrictModel):
    """Limits given to each worker container unless the job asks for others."""

    cpu_limit: Annotated[CpuQuantity, Field(gt=0)] = 1.0
    """Cores (``"2"``, ``0.5``, ``"500m"``); Docker refuses more than the host has when the container starts."""

    memory_limit: Annotated[MemoryQuantity, AfterValidator(_check_docker_accepts_memory)] = GIB
    """Bytes or a quantity (``"4Gi"``); at least 6Mi, Docker's minimum."""


class DockerTLS(StrictModel):
    """TLS for a ``tcp://`` endpoint, as ``dockerd --tlsverify`` expects it (files on the Hodei host)."""

    ca_cert: FilePath | None = None
    """CA bundle the engine's certificate must chain to; ``null``: the system's CAs."""
    client_cert: FilePath | None = None
    client_key: FilePath | None = None
    verify: bool = True
    """``false`` accepts any server certificate: encryption without authentication of the engine."""

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> DockerTLS:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key must be given together")
        return self


class RegistryAuth(StrictModel):
    """Credentials for pulling worker images from a private registry."""

    username: NonEmptyStr
    password: SecretText


class DockerConfig(ProviderConfigModel):
    """A Docker engine reached through its Unix socket or a TCP endpoint; each worker is one container on it."""

    type: Literal["docker"] = TYPE
    socket_path: SocketPath | None = DEFAULT_SOCKET_PATH
    """``null`` (the default when ``endpoint`` is given) when the engine is reached over TCP."""
    endpoint: TcpEndpoint | None = None
    tls: DockerTLS | None = None
    default_image: ImageReference = "hodei-jobs-worker:latest"
    allowed_images: Annotated[ImageList | None, AfterValidator(_check_allowed)] = None
    """Images a job may ask for: references or glob patterns (``registry.example.com/jobs/*``);
    ``null``: only ``default_image``."""
    network: NonEmptyStr = "bridge"
    """``"bridge"``, ``"host"``, ``"none"`` or the name of a user-defined network."""
    default_resources: DockerResources = DockerResources()
    command: Annotated[list[Argument], Field(min_length=1)] | None = None
    """The worker container's command; ``null``: the image's own ENTRYPOINT/CMD."""
    init: bool = True
    """Run Docker's init as PID 1, so the worker gets SIGTERM on deprovision and zombies are reaped."""
    stop_grace_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    labels: Annotated[dict[str, str], AfterValidator(_check_labels)] = {}
    registry_auth: Annotated[RegistryAuth | None, BeforeValidator(_object_of_secrets)] = None

    @model_validator(mode="before")
    @classmethod
    def _endpoint_replaces_the_default_socket(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("endpoint") is not None and "socket_path" not in data:
            return {**data, "socket_path": None}
        return data


def validate_docker_config(provider_type: str, config: Any) -> dict[str, Any]:
    """``config`` checked and normalised; secrets come back as :class:`Redacted` text."""
    normalised = validate_config_model(DockerConfig, provider_type, config)
    if normalised["endpoint"] is not None and normalised["socket_path"] is not None:
        raise ConfigError("endpoint", "cannot be combined with socket_path: leave socket_path out or set it to null")
    if normalised["endpoint"] is None and normalised["socket_path"] is None:
        raise ConfigError("socket_path", "must be set unless endpoint is set")
    if normalised["tls"] is not None and normalised["endpoint"] is None:
        raise ConfigError("tls", "applies to a tcp:// endpoint only: set endpoint too, or remove tls")
    normalised["allowed_images"] = normalised_allowed_images(normalised["allowed_images"],
                                                             normalised["default_image"])
    if normalised["registry_auth"] is not None:
        auth = normalised["registry_auth"]
        auth["password"] = Redacted(auth["password"])
    return normalised
