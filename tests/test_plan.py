"""``hodei plan``'s decisions (:class:`hodei.planning.plan.Planner`) on a fleet held in memory: the same
chain and capacity rules as the daemon, the batch's own jobs taking slots in queue order, why the others
wait, and advice that, applied by hand, places as many more as it says."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hodei.domain import HealthStatus, Provider, ProviderState
from hodei.planning.order import queue_order
from hodei.planning.plan import Planner
from hodei.planning.report import PlanReport, plan_text
from hodei.plugins import make_plugin_manager
from hodei.selection import SelectionChain, Selector, build_chain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHAIN: SelectionChain = build_chain(make_plugin_manager(enable=["static"]))


def provider(name: str, *, max_workers: int = 2, cpu: float = 4, gpu: int = 0, priority: int = 0,
             region: str | None = None, labels: dict[str, str] | None = None,
             images: list[str] | None = None) -> Provider:
    config: dict[str, Any] = {"type": "static", "capabilities": {"cpu": cpu, "memory": 2**34, "gpu": gpu}}
    if images is not None:
        config["allowed_images"] = images
    return Provider(id=uuid.uuid5(uuid.NAMESPACE_URL, name), name=name, provider_type="static", config=config,
                    priority=priority, max_workers=max_workers, preferred_region=region,
                    required_labels=labels or {})


def selector(providers: Sequence[Provider], states: dict[uuid.UUID, ProviderState] | None = None) -> Selector:
    states = states or {}
    return Selector(CHAIN, providers, {p.id: states.get(p.id, ProviderState(health=HealthStatus.HEALTHY))
                                       for p in providers})


def plan(providers: Sequence[Provider], jobs: Sequence[dict[str, Any]],
         states: dict[uuid.UUID, ProviderState] | None = None) -> PlanReport:
    return Planner(selector(providers, states)).plan([CHAIN.parse_requirements(job) for job in jobs])


def test_the_batch_fills_the_fleet_as_the_daemon_would_one_job_at_a_time() -> None:
    fleet = [provider("eu-a", region="eu-west-1", max_workers=3), provider("eu-b", region="eu-west-1", priority=5),
             provider("us-a", region="us-east-1", max_workers=4)]
    jobs = [{"cpu": 1, "preferred_region": "eu-west-1"}] * 6 + [{"cpu": 2}] * 2
    report = plan(fleet, jobs)
    # The same decisions, made one by one on the daemon's own selector, each slot taken before the next.
    live = selector(fleet)
    expected = []
    for job in jobs:
        chosen = live.decide(CHAIN.parse_requirements(job), limit=1, across_tiers=True).selected
        expected.append(chosen.name if chosen else None)
        if chosen is not None:
            live.update_state(chosen.provider.id, ProviderState(health=HealthStatus.HEALTHY,
                                                                reserved_workers=chosen.reserved_workers + 1))
    assert [job.provider for job in report.jobs] == expected
    assert expected[:2] == ["eu-b", "eu-b"]  # priority first, then the preferred region, then us-a
    assert {p.name: (p.before, p.after) for p in report.providers} == {"eu-a": (0, 3), "eu-b": (0, 2), "us-a": (0, 3)}
    assert report.jobs[0].tier == "preferred" and report.jobs[5].tier == "any"


def test_slots_already_taken_and_unhealthy_providers_count() -> None:
    busy, down = provider("busy", max_workers=4), provider("down", max_workers=4)
    states = {busy.id: ProviderState(health=HealthStatus.HEALTHY, active_workers=3),
              down.id: ProviderState(health=HealthStatus.UNHEALTHY, health_reason="unreachable")}
    report = plan([busy, down], [{"cpu": 1}] * 3, states)
    assert (report.placed, report.waiting) == (1, 2)
    assert {p.name: (p.before, p.after, p.max_workers) for p in report.providers} == {
        "busy": (3, 4, 4), "down": (0, 0, 4)}
    waiting = report.jobs[1]
    assert waiting.provider is None and waiting.reasons[0] == "no capacity"
    assert "capacity: 1 at capacity" in waiting.reasons and "health: 1 unhealthy" in waiting.reasons


def test_higher_priority_jobs_are_placed_first_whatever_their_place_in_the_file() -> None:
    assert queue_order(5, 10) < queue_order(0, 1) < queue_order(0, 2)
    report = plan([provider("only", max_workers=1)], [{"cpu": 1}, {"cpu": 2}])
    assert [job.provider for job in report.jobs] == ["only", None]


def test_the_summary_counts_why_jobs_would_wait_and_the_advice_is_checked() -> None:
    fleet = [provider("eu-a", region="eu-west-1", max_workers=2),
             provider("plain", region="us-east-1", max_workers=1, images=["alpine:*"])]
    jobs = ([{"cpu": 1, "allowed_regions": ["eu-west-1"]}] * 4 + [{"gpu": 1}] * 2
            + [{"cpu": 1, "image": "nginx:1"}])
    report = plan(fleet, jobs)
    document = report.as_dict()
    assert list(document) == ["placed", "waiting", "jobs", "providers", "advice"]
    assert all(list(job) == ["index", "provider", "tier", "reasons"] for job in document["jobs"])
    lines = plan_text(document).splitlines()
    assert ("2 of 7 placed; 5 would wait: 2 no capacity in eu-west-1, 2 no provider is big enough (gpu 1), "
            "1 no provider allows image nginx:1") in lines
    assert lines[-4:] == [
        "advice (each checked by planning again with it applied):",
        "  - add a static provider (one worker of gpu 1; max_workers 2): places 2 more",
        "  - raise max_workers of eu-a by 2 (2 to 4): places 2 more",
        "  - allow image nginx:1 on plain: places 1 more",
    ]
    kinds = {a.kind: a for a in report.advice}
    assert kinds["max_workers"].change == {"provider": "eu-a", "max_workers": 4}
    assert kinds["new_provider"].change["provider"]["config"] == {"capabilities": {"gpu": 1}}
    assert kinds["allow_image"].change == {"provider": "plain", "image": "nginx:1"}
    assert kinds["allow_image"].places == 1


def test_a_job_no_provider_could_ever_take_says_what_is_missing() -> None:
    report = plan([provider("a"), provider("b")], [{"required_labels": {"team": "nobody"}}])
    assert report.jobs[0].reasons[0] == "no provider has label team=nobody"
    assert report.advice and report.advice[0].kind == "new_provider" and report.advice[0].places == 1
    assert report.advice[0].change["provider"]["required_labels"] == {"team": "nobody"}


# -- properties ------------------------------------------------------------------------------------------


def applied(fleet: list[Provider], states: dict[uuid.UUID, ProviderState],
            change: dict[str, Any]) -> tuple[list[Provider], dict[uuid.UUID, ProviderState]]:
    """The advice's change made by hand, as an operator would (not through the planner's own code)."""
    if isinstance(change["provider"], dict):
        document = change["provider"]
        added = Provider(id=uuid.uuid4(), name=document["name"], provider_type=document["provider_type"],
                         config=document["config"], max_workers=document["max_workers"],
                         preferred_region=document["preferred_region"],
                         allowed_regions=tuple(document["allowed_regions"]),
                         required_labels=document["required_labels"], annotations=document["annotations"])
        return [*fleet, added], {**states, added.id: ProviderState(health=HealthStatus.HEALTHY)}
    changed = []
    for p in fleet:
        if p.name == change["provider"]:
            if "max_workers" in change:
                p = dataclasses.replace(p, max_workers=change["max_workers"])
            else:
                p = dataclasses.replace(p, config={**p.config, "allowed_images": [
                    *p.config.get("allowed_images", []), change["image"]]})
        changed.append(p)
    return changed, states


REGIONS = st.sampled_from([None, "eu-west-1", "us-east-1"])
LABELS = st.sampled_from([{}, {"gpu": "yes"}, {"team": "a"}])
FLEETS = st.lists(st.builds(lambda i, m, c, g, r, lab, busy, sick: (i, m, c, g, r, lab, busy, sick),
                            st.integers(0, 10**6), st.integers(1, 4), st.sampled_from([1, 2, 8]),
                            st.sampled_from([0, 1]), REGIONS, LABELS, st.integers(0, 5), st.booleans()),
                  min_size=1, max_size=6)
JOBS = st.lists(st.fixed_dictionaries({"cpu": st.sampled_from([0, 1, 4])}, optional={
    "gpu": st.sampled_from([1]), "required_labels": LABELS, "preferred_region": st.sampled_from(["eu-west-1"]),
    "allowed_regions": st.sampled_from([["us-east-1"]]), "image": st.sampled_from(["alpine:3"])}),
    min_size=1, max_size=25)


def build(spec: list[tuple[Any, ...]]) -> tuple[list[Provider], dict[uuid.UUID, ProviderState]]:
    fleet, states = [], {}
    for number, (_, max_workers, cpu, gpu, region, labels, busy, sick) in enumerate(spec):
        p = provider(f"p{number}", max_workers=max_workers, cpu=cpu, gpu=gpu, region=region, labels=labels,
                     images=["alpine:*"] if number % 2 else None)
        fleet.append(p)
        states[p.id] = ProviderState(health=HealthStatus.UNHEALTHY if sick else HealthStatus.HEALTHY,
                                     active_workers=busy)
    return fleet, states


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=FLEETS, documents=JOBS)
def test_a_plan_never_exceeds_max_workers_and_accounts_for_every_job(spec: list[tuple[Any, ...]],
                                                                     documents: list[dict[str, Any]]) -> None:
    fleet, states = build(spec)
    report = plan(fleet, documents, states)
    assert report.placed + report.waiting == len(documents) == len(report.jobs)
    assert [job.index for job in report.jobs] == list(range(len(documents)))
    taken = {p.name: 0 for p in fleet}
    for job, document in zip(report.jobs, documents, strict=True):
        if job.provider is None:
            assert job.reasons, "a job left waiting says why"
            continue
        taken[job.provider] += 1
        chosen = next(p for p in fleet if p.name == job.provider)
        assert states[chosen.id].health is not HealthStatus.UNHEALTHY
        assert set(document.get("required_labels", {}).items()) <= set(chosen.required_labels.items())
        assert chosen.config["capabilities"]["cpu"] >= document["cpu"]
    for slots in report.providers:
        assert slots.after - slots.before == taken[slots.name]
        assert slots.after <= max(slots.max_workers, slots.before)  # a plan never fills past max_workers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=FLEETS, documents=JOBS)
def test_each_piece_of_advice_applied_by_hand_places_as_many_more_as_it_says(
        spec: list[tuple[Any, ...]], documents: list[dict[str, Any]]) -> None:
    fleet, states = build(spec)
    report = plan(fleet, documents, states)
    for advice in report.advice:
        assert advice.places > 0
        changed, changed_states = applied(fleet, states, dict(advice.change))
        assert plan(changed, documents, changed_states).placed == report.placed + advice.places, advice.text


@pytest.mark.parametrize("document", [[], [{"cpu": "lots"}], ["not an object"]])
def test_a_batch_at_fault_is_refused_naming_the_job(document: list[Any]) -> None:
    from hodei.errors import InvalidInput
    from hodei.services.plan import LocalPlanning
    from hodei.services.selection import LocalSelection

    planning = LocalPlanning(LocalSelection(lambda: selector([provider("a")]), lambda: CHAIN))
    with pytest.raises(InvalidInput) as refused:
        planning.plan([{"cpu": 1}, *document] if document else document)
    fields = [p.field for p in refused.value.problems]
    assert fields == (["jobs"] if not document else [f"jobs[1]{'.cpu' if document[0] != 'not an object' else ''}"])


def test_a_provider_cooling_down_takes_nothing_until_its_cooldown_ends() -> None:
    from datetime import UTC, datetime, timedelta

    cooling, other = provider("cooling", priority=9), provider("other", max_workers=1)
    until = datetime.now(UTC) + timedelta(minutes=5)
    states = {cooling.id: ProviderState(health=HealthStatus.HEALTHY, provision_failures=3, cooldown_until=until,
                                        last_provision_error="quota exceeded")}
    report = plan([cooling, other], [{"cpu": 1}, {"cpu": 1}], states)
    assert [job.provider for job in report.jobs] == ["other", None]
    assert report.jobs[1].reasons[0] == "no capacity" and "cooldown: 1 cooling down" in report.jobs[1].reasons
    ended = {cooling.id: dataclasses.replace(states[cooling.id], cooldown_until=datetime.now(UTC) - timedelta(seconds=1))}
    assert [job.provider for job in plan([cooling, other], [{"cpu": 1}], ended).jobs] == ["cooling"]


def _knows_priority() -> bool:
    from hodei.services.simulation import knows_priority

    return knows_priority(CHAIN)


@pytest.mark.skipif(not _knows_priority(), reason="the requirements have no priority field before the placement queue")
def test_a_higher_priority_job_later_in_the_file_is_placed_first() -> None:
    report = plan([provider("only", max_workers=1)], [{"cpu": 1}, {"cpu": 1, "priority": 5}])
    assert [job.provider for job in report.jobs] == [None, "only"]
