"""The ``kubernetes`` provider type: job workers as pods in one namespace of a cluster.

Registration and config validation only, for now; the backend hooks come with the Kubernetes
client. Validation is pure, so this module must not import the ``kubernetes`` SDK.
"""

from __future__ import annotations

from typing import Any

from hodei import ProviderType, hookimpl, provider_hook, validate_config_model

from hodei_k8s.config import TYPE, KubernetesConfig


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as pods in a Kubernetes namespace")]


@provider_hook(TYPE)
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_config_model(KubernetesConfig, provider_type, config)
