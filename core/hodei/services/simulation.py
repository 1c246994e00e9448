"""``hodei simulate`` as the CLI serves it: a trace replayed on one or more fleets (provider documents, as
``providers apply`` takes them, or today's fleet from the database), each in virtual time through the chain
and the placement queue's policy; and the example trace and fleet ``--generate`` writes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hodei.documents import provider_list
from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus
from hodei.errors import InvalidInput, Problem
from hodei.planning.chart import svg
from hodei.planning.simulate import Outcome, simulate, simulation_text
from hodei.planning.trace import generate, parse_trace
from hodei.planning.view import FleetView
from hodei.plugins import HodeiPluginManager, make_plugin_manager
from hodei.provider_spec import parse_provider
from hodei.selection import SelectionChain, Selector
from hodei.settings import Settings

__all__ = ["Fleet", "SimulationReport", "fleet_from_documents", "fleet_from_selector", "generate", "knows_priority", "run", "simulation_plugins"]


@dataclass(frozen=True)
class Fleet:
    name: str
    providers: list[Provider]
    states: dict[uuid.UUID, ProviderState]


def fleet_from_documents(name: str, document: Any, pm: HodeiPluginManager) -> Fleet:
    """A fleet file: providers as ``providers apply -f`` takes them, each validated through its plugin.
    They start healthy and empty; what one worker gets is their ``config.capabilities``.

    :raises InvalidInput: naming each provider and field at fault."""
    providers: list[Provider] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, entry in enumerate(provider_list(document)):
        try:
            spec, config = parse_provider(entry, pm)
        except InvalidInput as exc:
            problems += [p.nested(f"providers[{number}]") for p in exc.problems]
            continue
        if spec.name in seen:
            problems.append(Problem(f"providers[{number}].name", f"{spec.name!r} is named twice"))
            continue
        seen.add(spec.name)
        providers.append(Provider(
            id=spec.id or uuid.uuid5(uuid.NAMESPACE_URL, f"hodei-simulate:{spec.name}"), name=spec.name,
            provider_type=spec.provider_type, config=config, status=ProviderStatus(spec.status),
            priority=spec.priority, max_workers=spec.max_workers, preferred_region=spec.preferred_region,
            allowed_regions=tuple(spec.allowed_regions), required_labels=dict(spec.required_labels),
            annotations=dict(spec.annotations)))
    if problems:
        raise InvalidInput(problems, subject=f"fleet {name}")
    return Fleet(name, providers, {p.id: ProviderState(health=HealthStatus.HEALTHY) for p in providers})


def fleet_from_selector(name: str, selector: Selector) -> Fleet:
    """Today's fleet as the selection sees it (health, what one worker gets), with none of its slots taken:
    the trace brings the load."""
    view = FleetView.copy_of(selector)
    states = {pid: ProviderState(health=s.health, health_reason=s.health_reason, per_worker=s.per_worker)
              for pid, s in view.states().items()}
    return Fleet(name, view.providers(), states)


@dataclass(frozen=True)
class SimulationReport:
    outcomes: list[Outcome]

    def as_dict(self) -> dict[str, Any]:
        return {"fleets": [o.as_dict() for o in self.outcomes]}

    def text(self) -> str:
        return simulation_text(self.outcomes)

    def svg(self) -> str:
        return svg(self.outcomes)


def run(records: Sequence[Any], fleets: Sequence[Fleet], chain: SelectionChain, *, wait: float,
        seed: int) -> SimulationReport:
    """The trace on each fleet. :raises InvalidInput: naming each record and field at fault."""
    trace = parse_trace(records, chain)
    if not trace.jobs:
        raise InvalidInput(Problem("trace", "holds no job"))
    return SimulationReport([simulate(f.name, chain, f.providers, f.states, trace, wait=wait, seed=seed)
                             for f in fleets])


def simulation_plugins(settings: Settings) -> HodeiPluginManager:
    """The plugins ``[plugins]`` allows, and the ``static`` type always: a simulation provisions nothing,
    so fleets written for it (the examples) need no other plugin."""
    plugins = settings.plugins
    return make_plugin_manager(allow=plugins.allow, deny=plugins.deny, enable=[*plugins.enable, "static"])


def knows_priority(chain: SelectionChain) -> bool:
    """Whether jobs may carry a queue ``priority`` with this chain (a generated trace uses it if so)."""
    try:
        chain.parse_requirements({"priority": 1})
    except InvalidInput:
        return False
    return True
