"""The ``lambda`` provider type: job workers as asynchronous invocations of one AWS Lambda function.

Validation is pure and this module must not import ``boto3``. The hooks that call AWS run the
blocking functions of ``hodei_lambda.health`` and ``hodei_lambda.invoke`` (which import boto3,
through ``hodei_lambda.aws``) with ``hodei.run_sdk_call``: those modules are imported in a worker
thread, never on the event loop. The core routes the hooks to this plugin for ``lambda``
providers only, so they are plain ``@hookimpl``.
"""

from __future__ import annotations

from typing import Any

import anyio
from hodei import (
    BackendWorker,
    Capacity,
    Deadline,
    HealthResult,
    Provider,
    ProviderType,
    WorkerHandle,
    WorkerRequest,
    hookimpl,
    run_sdk_call,
    validate_config_model,
)

from hodei_lambda import inflight
from hodei_lambda.config import TYPE, LambdaConfig, endpoint
from hodei_lambda.resources import per_worker


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as AWS Lambda invocations")]


@hookimpl
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_config_model(LambdaConfig, provider_type, config)


@hookimpl
async def hodei_health_check(provider: Provider, timeout: float) -> HealthResult:
    # botocore's timeouts are per request, fixed when a client is made: should the calls still run
    # when the deadline passes, answer with this plugin's reason before the core's timeout.
    deadline = Deadline(timeout)
    with anyio.move_on_after(deadline.remaining()):
        return await run_sdk_call("hodei_lambda.health:check", provider, timeout=deadline)
    return HealthResult.unhealthy(f"{endpoint(provider.config)} did not answer within {timeout:g}s")


@hookimpl
def hodei_capacity(provider: Provider, timeout: float) -> Capacity:
    # Counted from this process's own record: Lambda cannot list running invocations.
    return Capacity(active_workers=len(inflight.IN_FLIGHT.live(provider.id)), per_worker=per_worker(provider.config))


@hookimpl
async def hodei_provision(provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
    return await run_sdk_call("hodei_lambda.invoke:provision", provider, request, timeout=timeout)


@hookimpl
def hodei_deprovision(provider: Provider, handle: WorkerHandle, timeout: float) -> bool:
    # Lambda cannot stop a running invocation: the worker ends on its own (its job done, its token
    # revoked, or the function's timeout). Deprovisioning stops counting it.
    inflight.IN_FLIGHT.end(provider.id, handle.worker_id)
    return True


@hookimpl
def hodei_list_workers(provider: Provider, timeout: float) -> list[BackendWorker]:
    return [BackendWorker(invocation.worker_id, invocation.request_id, "running", invocation.accepted_at)
            for invocation in inflight.IN_FLIGHT.live(provider.id)]
