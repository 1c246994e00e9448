"""The ``kubernetes`` provider type: job workers as pods in one namespace of a cluster.

Validation is pure and this module must not import the ``kubernetes`` SDK. The backend hooks run
the blocking functions of :mod:`hodei_k8s.backend`, which imports it, through
``hodei.run_sdk_call``: the module is imported in a worker thread, never on the event loop, and
each call gets a ``hodei.Deadline``. The core routes the hooks to this plugin for ``kubernetes``
providers only, so they are plain ``@hookimpl``.
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
    normalised_allowed_images,
    run_sdk_call,
    validate_config_model,
)

from hodei_k8s.config import TYPE, KubernetesConfig


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as pods in a Kubernetes namespace")]


@hookimpl
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    normalised = validate_config_model(KubernetesConfig, provider_type, config)
    normalised["allowed_images"] = normalised_allowed_images(normalised["allowed_images"], normalised["default_image"])
    return normalised


@hookimpl
async def hodei_health_check(provider: Provider, timeout: float) -> HealthResult:
    return await run_sdk_call("hodei_k8s.backend:health_check", provider, timeout=timeout)


@hookimpl
async def hodei_capacity(provider: Provider, timeout: float) -> Capacity:
    return await run_sdk_call("hodei_k8s.backend:capacity", provider, timeout=timeout)


@hookimpl
async def hodei_provision(provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
    return await run_sdk_call("hodei_k8s.backend:provision", provider, request, timeout=timeout)


@hookimpl
async def hodei_deprovision(provider: Provider, handle: WorkerHandle, timeout: float) -> bool:
    return await run_sdk_call("hodei_k8s.backend:deprovision", provider, handle, timeout=timeout)


@hookimpl
async def hodei_list_workers(provider: Provider, timeout: float) -> list[BackendWorker]:
    return await run_sdk_call("hodei_k8s.backend:list_workers", provider, timeout=timeout)
