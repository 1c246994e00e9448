"""Providers, states and selectors for testing selection rules, without a database.

For plugin authors too: a third-party filter or ranker can be tested against the built-in chain::

    from hodei.testing.selection import job, provider, selector

    s = selector([provider("a", annotations={"tier": "gold"})], pm=my_plugin_manager)
    assert s.select(job(extensions={"accepted_tiers": ["gold"]})).selected.name == "a"
"""

from __future__ import annotations

import uuid
from typing import Any

from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus, Resources
from hodei.plugins import make_plugin_manager
from hodei.selection import Requirements, Selector, build_chain

NAMESPACE = uuid.UUID("00000000-0000-0000-0000-00000000abcd")


def provider(name: str, *, status: str = "ACTIVE", priority: int = 0, max_workers: int = 10,
             preferred_region: str | None = None, allowed_regions: tuple[str, ...] = (),
             labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
             capabilities: dict[str, Any] | None = None) -> Provider:
    config: dict[str, Any] = {"type": "static"}
    if capabilities is not None:
        config["capabilities"] = capabilities
    return Provider(id=uuid.uuid5(NAMESPACE, name), name=name, provider_type="static", config=config,
                    status=ProviderStatus(status), priority=priority, max_workers=max_workers,
                    preferred_region=preferred_region, allowed_regions=tuple(allowed_regions),
                    required_labels=labels or {}, annotations=annotations or {})


def state(*, health: str | None = "Healthy", reason: str = "", active: int = 0, reserved: int = 0,
          cpu: float | None = 64, memory: int | None = 2**40, gpu: int | None = 8) -> ProviderState:
    return ProviderState(health=HealthStatus(health) if health else None, health_reason=reason,
                         active_workers=active, reserved_workers=reserved,
                         per_worker=Resources(cpu=cpu, memory=memory, gpu=gpu))


def selector(providers: list[Provider], states: dict[str, ProviderState] | None = None, *,
             pm: Any = None, **chain_settings: Any) -> Selector:
    """A selector on ``providers``; every provider healthy with room and resources unless ``states`` says."""
    chain = build_chain(pm or make_plugin_manager(load_entry_points=False), **chain_settings)
    by_name = states or {}
    return Selector(chain, providers, {p.id: by_name.get(p.name, state()) for p in providers})


def job(**fields: Any) -> Requirements:
    """Requirements from keyword arguments (lists become tuples)."""
    fields["allowed_regions"] = tuple(fields.get("allowed_regions", ()))
    return Requirements(**fields)
