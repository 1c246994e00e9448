"""Selection against a small, obviously correct reference of the contract, on random inputs.

The reference below is the contract read literally, one provider at a time, with exact fractions
for utilization. The implementation (bit masks, cached indexes, batch rules, only the best
static-rank group ranked on the fast path) must agree with it on the selected provider, the tier,
the full ranking and the set of rejected providers with the filters that rejected each.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hodei.domain import HealthStatus, Provider, ProviderState, Resources
from hodei.selection import Requirements
from hodei.selection.report import Page
from hodei.testing.selection import selector
from hodei.testing.strategies import fleets, jobs, maybe_amount
from hypothesis import given, settings
from hypothesis import strategies as st

FILTERS = ["status", "health", "cooldown", "capacity", "resources", "labels", "annotations", "allowed-regions", "image"]
RANKERS = ["priority", "utilization", "name"]

providers = fleets


# -- the reference ------------------------------------------------------------------------------


def capability(p: Provider, s: ProviderState, name: str) -> Any:
    override = (p.config.get("capabilities") or {}).get(name)
    return override if override is not None else getattr(s.per_worker, name)


def failed_filters(p: Provider, s: ProviderState, job: Requirements, enabled: list[str]) -> set[str]:
    failed = set()
    if p.status.value != "ACTIVE":
        failed.add("status")
    if s.health is HealthStatus.UNHEALTHY:
        failed.add("health")
    if s.active_workers + s.reserved_workers >= p.max_workers:
        failed.add("capacity")
    unknown = too_small = False
    for name in ("cpu", "memory", "gpu"):
        wanted, have = getattr(job, name), capability(p, s, name)
        if wanted > 0 and have is None:
            unknown = True
        elif wanted > 0 and have < wanted:
            too_small = True
    # A provider whose last check failed reported no size: that is its health's rejection, not "too small"
    # (when health is a filter of the chain); a size known to be too small still counts.
    health_says_it = "health" in enabled and "health" in failed
    if too_small or (unknown and not health_says_it):
        failed.add("resources")
    if any(p.required_labels.get(k) != v for k, v in job.required_labels.items()):
        failed.add("labels")
    if any(p.annotations.get(k) != v for k, v in job.required_annotations.items()):
        failed.add("annotations")
    can_run_in = set(p.allowed_regions) | ({p.preferred_region} if p.preferred_region else set())
    if job.allowed_regions and can_run_in and not can_run_in & set(job.allowed_regions):
        failed.add("allowed-regions")
    return failed & set(enabled)


def reference(ps: list[Provider], states: dict[str, ProviderState], job: Requirements,
              enabled: list[str] = FILTERS, rankers: list[str] = RANKERS, weight: float = 1.0):
    rejected = {p.name: failed_filters(p, states[p.name], job, enabled) for p in ps}
    survivors = [p for p in ps if not rejected[p.name]]
    rejected = {name: failed for name, failed in rejected.items() if failed}
    tier, members = None, []
    if job.preferred_region is not None:
        members = [p for p in survivors if p.preferred_region == job.preferred_region]
        tier = "preferred" if members else None
        if not members:
            members = [p for p in survivors if job.preferred_region in p.allowed_regions]
            tier = "allowed" if members else None
    if not members and survivors:
        tier, members = "any", survivors

    def key(p: Provider) -> tuple:
        s = states[p.name]
        parts = {"priority": -p.priority, "name": p.name,
                 # A score is in [0, 1]: a provider over its max_workers (no capacity filter) is as full as full.
                 "utilization": min(Fraction(s.active_workers + s.reserved_workers, p.max_workers), 1) if weight else 0}
        return (*(parts[r] for r in rankers), p.name)

    ranking = [p.name for p in sorted(members, key=key)]
    return (ranking[0] if ranking else None), tier, ranking, rejected


def observed(s, job: Requirements):
    report = s.report(job, page=Page(size=None))
    decision = s.select(job)
    fast = (decision.selected.name if decision.selected else None, decision.tier)
    assert fast == (report.selected, report.tier), "the fast path and the report disagree"
    rejected = {r.name: {rule for rule, _ in r.reasons} for r in report.rejected}
    return report.selected, report.tier, [r.candidate.name for r in report.ranking], rejected


# -- properties -----------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(given_providers=providers(), job=jobs)
def test_default_chain_agrees_with_the_contract(given_providers, job) -> None:
    ps, states = given_providers
    assert observed(selector(ps, states), job) == reference(ps, states, job)


@settings(max_examples=200, deadline=None)
@given(given_providers=providers(), job=jobs, data=st.data())
def test_reordered_and_reduced_chains_agree_with_the_contract(given_providers, job, data) -> None:
    ps, states = given_providers
    enabled = data.draw(st.lists(st.sampled_from(FILTERS), unique=True), label="filters")
    rankers = data.draw(st.permutations(RANKERS).flatmap(lambda r: st.integers(1, 3).map(lambda n: r[:n])),
                        label="rankers")
    weight = data.draw(st.sampled_from([0.0, 1.0, 2.5]), label="utilization weight")
    weights = {"utilization": weight} if "utilization" in rankers else {}
    s = selector(ps, states, filters=enabled, rankers=rankers, weights=weights)
    assert observed(s, job) == reference(ps, states, job, enabled, rankers, weight if weights else 1.0)


@settings(max_examples=200, deadline=None)
@given(given_providers=providers(), job=jobs, data=st.data())
def test_state_updates_give_the_same_answers_as_a_fresh_index(given_providers, job, data) -> None:
    ps, states = given_providers
    s = selector(ps, states)
    s.select(job)  # warm the caches an update must invalidate
    for p in ps:
        if data.draw(st.booleans(), label=f"change {p.name}"):
            new = ProviderState(
                health=data.draw(st.none() | st.sampled_from(list(HealthStatus))),
                active_workers=data.draw(st.integers(0, 6)), reserved_workers=data.draw(st.integers(0, 2)),
                per_worker=Resources(cpu=data.draw(maybe_amount), memory=data.draw(st.none() | st.just(2**31)),
                                     gpu=data.draw(maybe_amount)))
            states[p.name] = new
            assert s.update_state(p.id, new)
    assert observed(s, job) == reference(ps, states, job)
