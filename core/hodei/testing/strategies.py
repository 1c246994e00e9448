"""Hypothesis strategies for selection: random fleets and jobs, for Hodei's properties and plugin authors'.

Few distinct values, so that matches, near misses (case, spaces) and ties are all common::

    from hypothesis import given
    from hodei.testing.strategies import fleets, jobs
    from hodei.testing.selection import selector

    @given(fleet=fleets(), job=jobs)
    def test_my_filter_never_admits_a_disabled_provider(fleet, job):
        providers, states = fleet
        ...
"""

from __future__ import annotations

from hypothesis import strategies as st

from hodei.domain import HealthStatus, Provider, ProviderState, Resources
from hodei.selection import Requirements
from hodei.testing.selection import provider

names = st.text(alphabet="abAB", min_size=1, max_size=3)
regions = st.sampled_from(["eu", "us", "ap", "EU"])
keys = st.sampled_from(["env", "team", "Env"])
values = st.sampled_from(["prod", "dev", "Prod", "prod "])
pairs = st.dictionaries(keys, values, max_size=2)
maybe_amount = st.none() | st.sampled_from([0, 1, 2, 4])


@st.composite
def fleets(draw: st.DrawFn, max_size: int = 8, labels: st.SearchStrategy[dict[str, str]] = pairs,
           annotations: st.SearchStrategy[dict[str, str]] = pairs) -> tuple[list[Provider], dict[str, ProviderState]]:
    """Up to ``max_size`` providers (of the ``static`` type) and their states, by name; ``labels`` and
    ``annotations`` draw each provider's."""
    chosen = draw(st.lists(names, unique=True, max_size=max_size))
    result, states = [], {}
    for name in chosen:
        capabilities = draw(st.none() | st.fixed_dictionaries(
            {}, optional={"cpu": st.sampled_from([1, 4]), "memory": st.sampled_from([2**30, 2**32]),
                          "gpu": st.sampled_from([0, 2])}))
        preferred = draw(st.none() | regions)
        allowed = [r for r in draw(st.lists(regions, unique=True, max_size=2)) if r != preferred]
        result.append(provider(
            name, status=draw(st.sampled_from(["ACTIVE", "ACTIVE", "DISABLED", "MAINTENANCE", "UNHEALTHY"])),
            priority=draw(st.integers(-2, 3)), max_workers=draw(st.sampled_from([1, 2, 3, 5, 1000])),
            preferred_region=preferred, allowed_regions=tuple(allowed), labels=draw(labels),
            annotations=draw(annotations), capabilities=capabilities))
        states[name] = ProviderState(
            health=draw(st.none() | st.sampled_from(list(HealthStatus))),
            active_workers=draw(st.integers(0, 6)), reserved_workers=draw(st.integers(0, 2)),
            per_worker=Resources(cpu=draw(maybe_amount), memory=draw(st.none() | st.sampled_from([0, 2**30, 2**31])),
                                 gpu=draw(maybe_amount)))
    return result, states


jobs = st.builds(
    Requirements,
    cpu=st.sampled_from([0.0, 0.5, 2.0, 4.0]), memory=st.sampled_from([0, 2**30, 2**31]),
    gpu=st.sampled_from([0, 1, 2]), required_labels=pairs, required_annotations=pairs,
    preferred_region=st.none() | regions, allowed_regions=st.lists(regions, unique=True, max_size=2).map(tuple))
