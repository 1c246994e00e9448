"""The ``docker`` provider type: job workers as containers on a Docker daemon.

Registration and config validation only, for now; the backend hooks come with the Docker client.
Validation is pure, so this module must not import the ``docker`` SDK.
"""

from __future__ import annotations

from typing import Any

from hodei import ProviderType, hookimpl, provider_hook, validate_config_model

from hodei_docker.config import TYPE, DockerConfig


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as containers on a Docker daemon")]


@provider_hook(TYPE)
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_config_model(DockerConfig, provider_type, config)
