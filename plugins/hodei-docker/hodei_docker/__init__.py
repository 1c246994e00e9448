"""The ``docker`` provider type: job workers as containers on a Docker engine.

Validation is pure and must not import the ``docker`` SDK. The backend hooks run their blocking
SDK calls in worker threads through ``hodei.run_sdk_call``, which imports the modules that use
the SDK (``hodei_docker.health``, ``hodei_docker.workers``) in the thread, never on the event
loop, and hands each call a ``hodei.Deadline``. The core routes the hooks to this plugin for
``docker`` providers only, so they are plain ``@hookimpl``.
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
    run_sdk_call,
)

from hodei_docker.config import SECRET_FIELDS, TYPE, validate_docker_config


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as containers on a Docker engine", secret_fields=SECRET_FIELDS)]


@hookimpl
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_docker_config(provider_type, config)


@hookimpl
async def hodei_health_check(provider: Provider, timeout: float) -> HealthResult:
    return await run_sdk_call("hodei_docker.health:check", provider, timeout=timeout)


@hookimpl
async def hodei_capacity(provider: Provider, timeout: float) -> Capacity:
    return await run_sdk_call("hodei_docker.workers:capacity", provider, timeout=timeout)


@hookimpl
async def hodei_provision(provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
    return await run_sdk_call("hodei_docker.workers:provision", provider, request, timeout=timeout)


@hookimpl
async def hodei_deprovision(provider: Provider, handle: WorkerHandle, timeout: float) -> bool:
    return await run_sdk_call("hodei_docker.workers:deprovision", provider, handle, timeout=timeout)


@hookimpl
async def hodei_list_workers(provider: Provider, timeout: float) -> list[BackendWorker]:
    return await run_sdk_call("hodei_docker.workers:list_workers", provider, timeout=timeout)
