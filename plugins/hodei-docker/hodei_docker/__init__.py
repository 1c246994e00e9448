"""The ``docker`` provider type: job workers as containers on a Docker engine.

Validation is pure and must not import the ``docker`` SDK; the backend hooks run the SDK's
blocking calls in worker threads (``hodei.run_blocking``), and only those threads import it.
"""

from __future__ import annotations

import importlib
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
    run_blocking,
)

from hodei_docker.config import SECRET_FIELDS, TYPE, validate_docker_config
from hodei_docker.deadline import Deadline


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as containers on a Docker engine", secret_fields=SECRET_FIELDS)]


@provider_hook(TYPE)
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_docker_config(provider_type, config)


async def _in_thread(module: str, function: str, *args: Any, timeout: float) -> Any:
    # The deadline starts now, not when a thread picks the call up: waiting for a thread counts too.
    deadline = Deadline(timeout)

    def call() -> Any:
        # Imported in the thread: the first import of the SDK takes long enough to stall the event loop.
        target = getattr(importlib.import_module(f"hodei_docker.{module}"), function)
        return target(*args, deadline)

    return await run_blocking(call)


@provider_hook(TYPE)
async def hodei_health_check(provider: Provider, timeout: float) -> HealthResult:
    return await _in_thread("health", "check", provider, timeout=timeout)


@provider_hook(TYPE)
async def hodei_capacity(provider: Provider, timeout: float) -> Capacity:
    return await _in_thread("workers", "capacity", provider, timeout=timeout)


@provider_hook(TYPE)
async def hodei_provision(provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
    return await _in_thread("workers", "provision", provider, request, timeout=timeout)


@provider_hook(TYPE)
async def hodei_deprovision(provider: Provider, handle: WorkerHandle, timeout: float) -> bool:
    return await _in_thread("workers", "deprovision", provider, handle, timeout=timeout)


@provider_hook(TYPE)
async def hodei_list_workers(provider: Provider, timeout: float) -> list[BackendWorker]:
    return await _in_thread("workers", "list_workers", provider, timeout=timeout)
