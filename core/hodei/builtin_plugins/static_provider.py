"""The ``static`` provider type: health, capacity and latency come from its config.

For tests, benchmarks and dry runs. It runs nothing: its workers live in this process's memory.
No entry point loads it: it is there only with ``[plugins] enable = ["static"]`` in ``hodei.toml``
(or ``HODEI_PLUGINS_ENABLE=static``), so production installs never offer it. The core routes the
provider hooks to this plugin for ``static`` providers only, so they are plain ``@hookimpl``.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, Final, Literal

import anyio
from pydantic import Field

from hodei import (
    BackendWorker,
    Capacity,
    HealthResult,
    HealthStatus,
    ImageList,
    JobFailed,
    Provider,
    ProviderConfigModel,
    ProviderType,
    Resources,
    WorkerHandle,
    WorkerRequest,
    hookimpl,
    validate_config_model,
)

TYPE: Final = "static"

NonNegative = Annotated[float, Field(ge=0)]


class StaticConfig(ProviderConfigModel):
    type: Literal["static"] = TYPE
    health: Literal["Healthy", "Degraded", "Unhealthy"] = "Healthy"
    health_reason: str = ""
    latency_ms: NonNegative = 0.0
    latency_jitter_ms: NonNegative = 0.0
    hang: bool = False
    fail_provision: str | None = None
    # Job images it "runs" (it runs nothing); left out: none, like a type that runs no image.
    allowed_images: ImageList | None = None
    # Allowed job images it "cannot pull": provisioning one fails as the job's own failure (JobFailed).
    missing_images: list[str] = []


# provider id -> worker id -> worker; shared by every plugin manager in the process.
_WORKERS: dict[str, dict[str, BackendWorker]] = {}
# worker id -> what hodei_provision was asked (until it is deprovisioned), so tests can see what a plugin receives.
REQUESTS: dict[str, WorkerRequest] = {}


async def _answer_after_latency(provider: Provider) -> None:
    config = provider.config
    if config["hang"]:
        await anyio.sleep_forever()
    delay = config["latency_ms"] + random.uniform(0, config["latency_jitter_ms"])
    await anyio.sleep(delay / 1000)


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "in-memory provider whose behaviour comes from its config (tests, benchmarks)")]


@hookimpl
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    return validate_config_model(StaticConfig, provider_type, config)


@hookimpl
async def hodei_health_check(provider: Provider, timeout: float) -> HealthResult:
    await _answer_after_latency(provider)
    return HealthResult(HealthStatus(provider.config["health"]), provider.config["health_reason"])


@hookimpl
async def hodei_capacity(provider: Provider, timeout: float) -> Capacity:
    await _answer_after_latency(provider)
    return Capacity(active_workers=len(_WORKERS.get(str(provider.id), {})), per_worker=Resources())


@hookimpl
async def hodei_provision(provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
    await _answer_after_latency(provider)
    if provider.config["fail_provision"]:
        raise RuntimeError(provider.config["fail_provision"])
    if request.image in provider.config["missing_images"]:
        raise JobFailed(f"the job's image {request.image!r} cannot be pulled: not found")
    backend_id = f"static-{request.worker_id}"
    REQUESTS[request.worker_id] = request
    _WORKERS.setdefault(str(provider.id), {})[request.worker_id] = BackendWorker(request.worker_id, backend_id)
    return WorkerHandle(request.worker_id, backend_id)


@hookimpl
async def hodei_deprovision(provider: Provider, handle: WorkerHandle, timeout: float) -> bool:
    await _answer_after_latency(provider)
    _WORKERS.get(str(provider.id), {}).pop(handle.worker_id, None)
    REQUESTS.pop(handle.worker_id, None)
    return True


@hookimpl
async def hodei_list_workers(provider: Provider, timeout: float) -> list[BackendWorker]:
    await _answer_after_latency(provider)
    return list(_WORKERS.get(str(provider.id), {}).values())
