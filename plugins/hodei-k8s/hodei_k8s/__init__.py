"""The ``kubernetes`` provider type: job workers as pods in one namespace of a cluster.

Validation is pure and this module must not import the ``kubernetes`` SDK: the backend hooks import
:mod:`hodei_k8s.backend`, which does, on first use.
"""

from __future__ import annotations

from typing import Any

from hodei import (
    BackendWorker,
    Capacity,
    HealthResult,
    Provider,
    ProviderType,
    WorkerHandle,
    WorkerRequest,
    hookimpl,
    provider_hook,
    validate_config_model,
)

from hodei_k8s.config import TYPE, KubernetesConfig


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as pods in a Kubernetes namespace")]


@provider_hook(TYPE)
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_config_model(KubernetesConfig, provider_type, config)


@provider_hook(TYPE)
async def hodei_health_check(provider: Provider, timeout: float) -> HealthResult:
    from hodei_k8s import backend

    return await backend.health_check(provider, timeout)


@provider_hook(TYPE)
async def hodei_capacity(provider: Provider, timeout: float) -> Capacity:
    from hodei_k8s import backend

    return await backend.capacity(provider, timeout)


@provider_hook(TYPE)
async def hodei_provision(provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
    from hodei_k8s import backend

    return await backend.provision(provider, request, timeout)


@provider_hook(TYPE)
async def hodei_deprovision(provider: Provider, handle: WorkerHandle, timeout: float) -> bool:
    from hodei_k8s import backend

    return await backend.deprovision(provider, handle, timeout)


@provider_hook(TYPE)
async def hodei_list_workers(provider: Provider, timeout: float) -> list[BackendWorker]:
    from hodei_k8s import backend

    return await backend.list_workers(provider, timeout)
