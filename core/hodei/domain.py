"""The values that cross the hook boundary between the core and provider plugins.

They are plain frozen dataclasses so plugins depend on nothing but this module, and so the core
can hand the same objects to many plugins without fear of one changing them for another.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ProviderStatus(str, enum.Enum):
    """The operator-facing status column. ``UNHEALTHY`` is set by the health monitor."""

    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"
    MAINTENANCE = "MAINTENANCE"
    UNHEALTHY = "UNHEALTHY"


class WorkerState(str, enum.Enum):
    """Where a worker is in its life. PROVISIONING, RUNNING and RELEASING hold one of its provider's
    ``max_workers`` slots."""

    PROVISIONING = "PROVISIONING"
    RUNNING = "RUNNING"
    RELEASING = "RELEASING"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"


SLOT_HOLDING = (WorkerState.PROVISIONING, WorkerState.RUNNING, WorkerState.RELEASING)


class HealthStatus(str, enum.Enum):
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    UNHEALTHY = "Unhealthy"


@dataclass(frozen=True)
class ProviderType:
    """A provider type a plugin serves, returned from ``hodei_provider_types``.

    :param name: the value of ``provider_type`` (and of ``config.type``) it answers to.
    :param description: one line for ``hodei plugins``.
    :param secret_fields: dotted paths inside ``config`` whose values are secrets; the core
        shows them as ``***`` in every output, log and API response.
    """

    name: str
    description: str = ""
    secret_fields: tuple[str, ...] = ()
    plugin_name: str = ""


@dataclass(frozen=True)
class Provider:
    """A provider as hooks see it: a valid row, its ``config`` already normalised by its plugin."""

    id: uuid.UUID
    name: str
    provider_type: str
    # Left out of repr: a plugin's config may hold secrets, and a repr ends up in logs and tracebacks.
    config: Mapping[str, Any] = field(repr=False)
    status: ProviderStatus = ProviderStatus.ACTIVE
    priority: int = 0
    max_workers: int = 10
    preferred_region: str | None = None
    allowed_regions: tuple[str, ...] = ()
    required_labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthResult:
    """The answer of one health check."""

    status: HealthStatus
    reason: str = ""
    checked_at: datetime | None = None
    duration_seconds: float | None = None

    @classmethod
    def healthy(cls, reason: str = "") -> HealthResult:
        return cls(HealthStatus.HEALTHY, reason)

    @classmethod
    def degraded(cls, reason: str) -> HealthResult:
        return cls(HealthStatus.DEGRADED, reason)

    @classmethod
    def unhealthy(cls, reason: str) -> HealthResult:
        return cls(HealthStatus.UNHEALTHY, reason)


@dataclass(frozen=True)
class Resources:
    """What one worker can get. ``None`` means unknown: it passes only for a job that asks for none."""

    cpu: float | None = None
    memory: int | None = None
    gpu: int | None = None


@dataclass(frozen=True)
class Capacity:
    """A provider's own view of its load and of the largest worker it can run."""

    active_workers: int
    per_worker: Resources = Resources()


@dataclass(frozen=True)
class WorkerRequest:
    """What ``hodei_provision`` is asked to start. ``token`` and ``secret_env`` are secrets, never printed.

    The job's own spec: ``image`` (``None``: the provider's ``default_image``; selection has already
    checked it against the provider's ``allowed_images``), ``command`` (empty: the image's or the
    provider's own), ``env`` and ``secret_env`` (the worker's environment beside Hodei's own
    ``HODEI_*`` variables, which a plugin sets last so a job can never override them; the core refuses
    job variables named ``HODEI_*``), ``labels`` (for the worker, beside Hodei's own) and
    ``timeout_seconds`` (the worker's own lifetime; ``None``: until released).
    """

    worker_id: str
    server_address: str
    token: str = field(repr=False)
    cpu: float | None = None
    memory: int | None = None
    gpu: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class WorkerHandle:
    """What a backend calls the worker it started (a container id, a pod name, a request id)."""

    worker_id: str
    backend_id: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendWorker:
    """One worker as the backend lists it, for reconciliation against the workers table."""

    worker_id: str
    backend_id: str
    state: str = "running"
    created_at: datetime | None = None


@dataclass(frozen=True)
class ProviderState:
    """What Hodei last learned about a provider at run time: health, load, discovered capacity.

    ``health`` is ``None`` for a provider never checked. ``active_workers`` (RUNNING or RELEASING)
    and ``reserved_workers`` (PROVISIONING) count the workers table, which is what ``max_workers``
    limits. ``per_worker`` is what the plugin's capacity report discovered; a ``capabilities``
    object in the config overrides it.
    """

    health: HealthStatus | None = None
    health_reason: str = ""
    checked_at: datetime | None = None
    check_duration_seconds: float | None = None
    active_workers: int = 0
    reserved_workers: int = 0
    per_worker: Resources = Resources()
    capacity_reported_at: datetime | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    backend_workers: int | None = None  # what the backend itself counted at its last capacity report
    # Failed provisions in a row (not the job's own failures), the cooldown they earned, the last error.
    provision_failures: int = 0
    cooldown_until: datetime | None = None
    last_provision_error: str = ""
