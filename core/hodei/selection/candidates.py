"""A provider as the selection rules see it: its row, parsed once, and its latest state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hodei.domain import HealthStatus, Provider, ProviderState, Resources
from hodei.worker_spec import allowed_images


def effective_resources(provider: Provider, discovered: Resources) -> Resources:
    """What one worker can get: the config's ``capabilities`` where given, else what was discovered."""
    override = provider.config.get("capabilities") if isinstance(provider.config, Mapping) else None
    override = override if isinstance(override, Mapping) else {}

    def pick(name: str) -> Any:
        value = override.get(name)
        return value if value is not None else getattr(discovered, name)

    return Resources(cpu=pick("cpu"), memory=pick("memory"), gpu=pick("gpu"))


@dataclass(eq=False)
class Candidate:
    """One provider in a selection index. Rules read it and must not change it.

    ``index`` is the provider's bit in the index's masks. The state fields (health, workers,
    resources) are refreshed in place as the daemon learns them.
    """

    index: int
    provider: Provider
    name: str
    status: str
    priority: int
    max_workers: int
    preferred_region: str | None
    allowed_regions: frozenset[str]
    labels: dict[str, str]
    annotations: dict[str, str]
    health: HealthStatus | None = None
    health_reason: str = ""
    active_workers: int = 0
    reserved_workers: int = 0
    resources: Resources = field(default_factory=Resources)
    # The job images its config allows (references and globs); None: its type runs no job image or command.
    images: tuple[str, ...] | None = None
    # Failed provisions in a row, the cooldown they earned (skipped until then) and the last error.
    provision_failures: int = 0
    cooldown_until: datetime | None = None
    last_provision_error: str = ""

    @classmethod
    def build(cls, index: int, provider: Provider, state: ProviderState) -> Candidate:
        candidate = cls(
            index=index, provider=provider, name=provider.name, status=provider.status.value,
            priority=provider.priority, max_workers=provider.max_workers,
            preferred_region=provider.preferred_region, allowed_regions=frozenset(provider.allowed_regions),
            labels=dict(provider.required_labels), annotations=dict(provider.annotations),
            images=allowed_images(provider.config),
        )
        candidate.apply_state(state)
        return candidate

    def apply_state(self, state: ProviderState) -> None:
        self.health = state.health
        self.health_reason = state.health_reason
        self.active_workers = state.active_workers
        self.reserved_workers = state.reserved_workers
        self.resources = effective_resources(self.provider, state.per_worker)
        self.provision_failures = state.provision_failures
        self.cooldown_until = state.cooldown_until
        self.last_provision_error = state.last_provision_error

    @property
    def load(self) -> int:
        return self.active_workers + self.reserved_workers

    @property
    def utilization(self) -> float:
        return self.load / self.max_workers

    @property
    def unrestricted(self) -> bool:
        """A provider with no regions at all can run anywhere."""
        return not self.allowed_regions and self.preferred_region is None
