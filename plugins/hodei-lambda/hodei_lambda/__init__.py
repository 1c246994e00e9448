"""The ``lambda`` provider type: job workers as asynchronous invocations of one AWS Lambda function.

Validation is pure and this module must not import ``boto3``: the calls to AWS live in
``hodei_lambda.aws``, which loads in the worker threads that make them.
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

from hodei_lambda import health, inflight, invoke
from hodei_lambda.config import TYPE, LambdaConfig
from hodei_lambda.resources import per_worker


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as AWS Lambda invocations")]


@provider_hook(TYPE)
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_config_model(LambdaConfig, provider_type, config)


@provider_hook(TYPE)
async def hodei_health_check(provider: Provider, timeout: float) -> HealthResult:
    return await health.check(provider, timeout)


@provider_hook(TYPE)
def hodei_capacity(provider: Provider, timeout: float) -> Capacity:
    # Counted from this process's own record: Lambda cannot list running invocations.
    return Capacity(active_workers=len(inflight.IN_FLIGHT.live(provider.id)), per_worker=per_worker(provider.config))


@provider_hook(TYPE)
async def hodei_provision(provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
    return await invoke.provision(provider, request, timeout)


@provider_hook(TYPE)
def hodei_deprovision(provider: Provider, handle: WorkerHandle, timeout: float) -> bool:
    # Lambda cannot stop a running invocation: the worker ends on its own (its job done, its token
    # revoked, or the function's timeout). Deprovisioning stops counting it.
    inflight.IN_FLIGHT.end(provider.id, handle.worker_id)
    return True


@provider_hook(TYPE)
def hodei_list_workers(provider: Provider, timeout: float) -> list[BackendWorker]:
    return [BackendWorker(invocation.worker_id, invocation.request_id, "running", invocation.accepted_at)
            for invocation in inflight.IN_FLIGHT.live(provider.id)]
