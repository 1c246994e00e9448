"""Hodei: decides where a job's worker runs, and puts it there.

Plugin authors import everything they need from here::

    from hodei import hookimpl, run_sdk_call, Deadline, ProviderType, HealthResult, ConfigError
"""

from hodei.calls import run_blocking, run_sdk_call
from hodei.config_schema import (
    Capabilities,
    CpuQuantity,
    MemoryQuantity,
    NonEmptyStr,
    ProviderConfigModel,
    StrictModel,
    validate_config_model,
)
from hodei.deadline import Deadline, DeadlineExceeded
from hodei.domain import (
    BackendWorker,
    Capacity,
    HealthResult,
    HealthStatus,
    Provider,
    ProviderStatus,
    ProviderType,
    Resources,
    WorkerHandle,
    WorkerRequest,
)
from hodei.errors import ConfigError, HodeiError, InvalidInput, JobFailed, Problem
from hodei.hookspecs import hookimpl
from hodei.plugins import provider_hook
from hodei.worker_spec import ImageList, normalised_allowed_images

__version__ = "0.1.0"

__all__ = [
    "BackendWorker",
    "Capabilities",
    "Capacity",
    "ConfigError",
    "CpuQuantity",
    "Deadline",
    "DeadlineExceeded",
    "HealthResult",
    "HealthStatus",
    "HodeiError",
    "ImageList",
    "InvalidInput",
    "JobFailed",
    "MemoryQuantity",
    "NonEmptyStr",
    "Problem",
    "Provider",
    "ProviderConfigModel",
    "ProviderStatus",
    "ProviderType",
    "Resources",
    "StrictModel",
    "WorkerHandle",
    "WorkerRequest",
    "hookimpl",
    "normalised_allowed_images",
    "provider_hook",
    "run_blocking",
    "run_sdk_call",
    "validate_config_model",
]
