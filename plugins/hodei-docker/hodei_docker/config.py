"""The ``docker`` provider's config: which daemon to use and what each worker container gets."""

from __future__ import annotations

from typing import Annotated, Literal

from hodei import CpuQuantity, MemoryQuantity, NonEmptyStr, ProviderConfigModel, StrictModel
from pydantic import AfterValidator, Field

from hodei_docker.image import check_image_reference

TYPE = "docker"

MIB = 2**20
GIB = 2**30
# `docker run --memory` refuses less than this (moby's linuxMinMemory).
DOCKER_MIN_MEMORY = 6 * MIB
# A Unix socket address holds 108 bytes, the terminating NUL included: a longer path cannot be dialled.
UNIX_SOCKET_PATH_MAX_BYTES = 107


def _check_socket_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"must be an absolute path, got {path!r}")
    if "\0" in path:
        raise ValueError("must not contain a NUL character")
    if len(path.encode()) > UNIX_SOCKET_PATH_MAX_BYTES:
        raise ValueError(f"must be at most {UNIX_SOCKET_PATH_MAX_BYTES} bytes long (the limit of a Unix socket path)")
    return path


def _check_docker_accepts_memory(size: int) -> int:
    if size < DOCKER_MIN_MEMORY:
        raise ValueError(f"must be at least 6Mi ({DOCKER_MIN_MEMORY} bytes), Docker's minimum, got {size} bytes")
    return size


SocketPath = Annotated[NonEmptyStr, AfterValidator(_check_socket_path)]
ImageReference = Annotated[NonEmptyStr, AfterValidator(check_image_reference)]


class DockerResources(StrictModel):
    """Limits given to each worker container unless the job asks for others."""

    cpu_limit: Annotated[CpuQuantity, Field(gt=0)] = 1.0
    """Cores (``"2"``, ``0.5``, ``"500m"``); Docker refuses more than the host has when the container starts."""

    memory_limit: Annotated[MemoryQuantity, AfterValidator(_check_docker_accepts_memory)] = GIB
    """Bytes or a quantity (``"4Gi"``); at least 6Mi, Docker's minimum."""


class DockerConfig(ProviderConfigModel):
    """A Docker daemon reached through its Unix socket; each worker is one container on it."""

    type: Literal["docker"] = TYPE
    socket_path: SocketPath = "/var/run/docker.sock"
    default_image: ImageReference = "hodei-jobs-worker:latest"
    network: NonEmptyStr = "bridge"
    """``"bridge"``, ``"host"``, ``"none"`` or the name of a user-defined network."""
    default_resources: DockerResources = DockerResources()
