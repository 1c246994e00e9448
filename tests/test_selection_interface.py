"""The selection plugin interface as third parties pin it: the protocols the core checks rules against,
opaque masks, scores checked finite and in range after a rule's own normalisation, and what a decision
does when a filter raises (fail open, the default, or closed)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hodei import hookimpl
from hodei.builtin_plugins.selection_rules import DEFAULT_FILTERS, DEFAULT_RANKERS
from hodei.plugins import make_plugin_manager
from hodei.selection import (
    Filter,
    FilterRule,
    IndexedFilter,
    IndexedFilterRule,
    Mask,
    OrderingRule,
    ProviderIndex,
    Ranker,
    Requirements,
    ScoringRule,
    build_chain,
)
from hodei.selection.normalize import by_max, min_max
from hodei.testing.contract import SelectionContract
from hodei.testing.selection import job, provider, selector, state
from hodei.testing.strategies import fleets, jobs
from hypothesis import given, settings
from hypothesis import strategies as st


class Plugin:
    def __init__(self, filters: Any = (), rankers: Any = ()) -> None:
        self._filters, self._rankers = filters, rankers

    @hookimpl
    def hodei_selection_filters(self) -> Any:
        return self._filters

    @hookimpl
    def hodei_selection_rankers(self) -> Any:
        return self._rankers


def pm_with(plugin: Plugin) -> Any:
    return make_plugin_manager(load_entry_points=False, plugins=[("third-party", plugin)])


# -- the protocols ------------------------------------------------------------------------------------


def test_the_built_in_rules_implement_the_protocols() -> None:
    assert all(isinstance(f, IndexedFilterRule) for f in DEFAULT_FILTERS)
    for ranker in DEFAULT_RANKERS:
        assert isinstance(ranker, ScoringRule if ranker.weight is not None else OrderingRule), ranker.name


def test_any_object_with_the_protocols_members_is_a_rule() -> None:
    class Duck:  # no base class: a name and admit() make a filter
        name = "duck"

        def admit(self, candidates, job):
            return [c.name != "b" for c in candidates]

    class Keys:
        name = "keys"

        def key(self, candidates, job):
            return [-len(c.name) for c in candidates]

    duck, keys = Duck(), Keys()
    assert isinstance(duck, FilterRule) and not isinstance(duck, IndexedFilterRule)
    s = selector([provider("a"), provider("b"), provider("ccc")], pm=pm_with(Plugin([duck], [keys])))
    assert s.chain.problems == []
    assert [c.name for c, _ in s.decide(job(), limit=None).ranking] == ["ccc", "a"]


@pytest.mark.parametrize("filters, rankers, problem", [
    ([object()], [], "a filter has no valid name (None; expected [a-z0-9][a-z0-9._-]{0,62})"),
    ([type("NoAdmit", (), {"name": "no-admit"})()], [], "filter 'no-admit' has neither admit() nor mask()"),
    ([type("Bad", (Filter,), {"name": "bad", "on_error": "sideways"})()], [],
     "filter 'bad' has on_error 'sideways' (expected one of 'open', 'closed')"),
    ([], [type("NoKey", (), {"name": "no-key"})()], "ordering ranker 'no-key' has no key()"),
    ([], [type("NoScore", (), {"name": "no-score", "weight": 1.0})()],
     "scoring ranker 'no-score' needs a finite weight and a score()"),
    ([], [type("NanWeight", (Ranker,), {"name": "nan-weight", "weight": math.nan})()],
     "scoring ranker 'nan-weight' needs a finite weight and a score()"),
    ("accepted-tiers", [], "hodei_selection_filters failed: TypeError: returned str, not a list of filters"),
    ([], {"name": 1}, "hodei_selection_rankers failed: TypeError: returned dict, not a list of rankers"),
])
def test_a_rule_that_breaks_the_interface_is_left_out_and_reported(filters: Any, rankers: Any, problem: str) -> None:
    chain = build_chain(pm_with(Plugin(filters, rankers)))
    assert [p.removeprefix("plugin 'third-party': ") for p in chain.problems] == [problem]
    builtin = [f.name for f in DEFAULT_FILTERS]
    assert chain.filter_names[:len(builtin)] == builtin, "the built-in rules are unaffected"


# -- masks ----------------------------------------------------------------------------------------------


def test_a_mask_is_a_set_of_one_index_providers() -> None:
    index = ProviderIndex([provider("a", annotations={"tier": "gold"}), provider("b"), provider("c")], {})
    gold = index.mask_annotations({"tier": "gold"})
    everyone = index.mask_all()
    a, b, c = (index.by_name[n] for n in "abc")
    assert (a in gold, b in gold, len(gold), len(everyone)) == (True, False, 1, 3)
    assert everyone - gold == index.mask_where(lambda candidate: candidate.name != "a")
    assert (gold | (everyone - gold)) == everyone and not (gold & (everyone - gold))
    assert c in everyone - gold and repr(gold) == "Mask(1 providers)"
    assert not Mask()


@settings(max_examples=150, deadline=None)
@given(given_providers=fleets(), job=jobs)
def test_an_indexed_filters_admit_agrees_with_its_mask(given_providers, job: Requirements) -> None:
    ps, states = given_providers
    s = selector(ps, states)
    for rule in DEFAULT_FILTERS:
        passing = rule.mask(s.index, job)
        assert rule.admit(s.index.candidates, job) == [c in passing for c in s.index.candidates], rule.name


def test_an_indexed_filter_returning_bare_bits_still_works() -> None:
    class Legacy(IndexedFilter):  # written when masks were ints
        name = "legacy"

        def mask(self, index, job):
            return index.annotations.get(("tier", "gold"), 0)

    s = selector([provider("a"), provider("b", annotations={"tier": "gold"})], pm=pm_with(Plugin([Legacy()])))
    decision = s.select(job())
    assert (decision.selected.name, decision.warnings) == ("b", [])


# -- failing filters: open by default, or closed -----------------------------------------------------------


class Raises(Filter):
    name = "raises"

    def admit(self, candidates, job):
        raise RuntimeError("licence server down")


class RaisesClosed(Raises):
    name = "raises-closed"
    on_error = "closed"


class WrongMask(IndexedFilter):
    name = "wrong-mask"
    on_error = "closed"

    def mask(self, index, job):
        return ["a"]


def test_a_failing_filter_fails_open_by_default() -> None:
    assert Filter.on_error == "open"
    s = selector([provider("a"), provider("b")], pm=pm_with(Plugin([Raises()])))
    decision = s.select(job())
    assert decision.selected.name == "a"
    assert decision.warnings == ["filter 'raises' failed and was skipped: RuntimeError: licence server down"]
    assert s.rejections(decision)["raises"] == 0


@pytest.mark.parametrize("rule, error", [
    (RaisesClosed(), "RuntimeError: licence server down"),
    (WrongMask(), "TypeError: mask() returned list, not a hodei.selection.Mask"),
])
def test_a_filter_that_fails_closed_rejects_every_provider_it_was_asked_about(rule: Filter, error: str) -> None:
    s = selector([provider("a"), provider("b"), provider("off", status="DISABLED")], pm=pm_with(Plugin([rule])))
    decision = s.select(job())
    assert decision.selected is None
    assert decision.warnings == [f"filter {rule.name!r} failed and rejected every provider it was asked about: {error}"]
    assert {name: count for name, count in s.rejections(decision).items() if count} == {"status": 1, rule.name: 3}
    assert list(s.report(job()).as_dict()["warnings"]) == decision.warnings


# -- scores ---------------------------------------------------------------------------------------------


def scoring(values: list[Any], normalize: Any = None) -> Ranker:
    attrs: dict[str, Any] = {"name": "given", "weight": 1.0, "score": lambda self, candidates, job: values}
    if normalize is not None:
        attrs["normalize"] = lambda self, scores: normalize(scores)
    return type("Given", (Ranker,), attrs)()


NAMES = ["p0", "p1", "p2", "p3"]
any_number = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-3, 3) | st.booleans() | st.just("0.5")


@settings(max_examples=300, deadline=None)
@given(values=st.lists(any_number, min_size=4, max_size=4), utilization=st.lists(st.integers(0, 4), min_size=4, max_size=4))
def test_scores_outside_the_contract_leave_the_rule_out_and_say_so(values: list[Any], utilization: list[int]) -> None:
    ps = [provider(n, max_workers=5) for n in NAMES]
    states = {n: state(active=u) for n, u in zip(NAMES, utilization, strict=True)}
    s = selector(ps, states, pm=pm_with(Plugin([], [scoring(values)])))
    decision = s.decide(job(), limit=None, scored=True)
    valid = all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in values)  # a bool is a number too
    by_name = {c.name: score for c, score in decision.ranking}
    utilisation_score = {n: 1 - u / 5 for n, u in zip(NAMES, utilization, strict=True)}
    if valid:
        assert decision.warnings == []
        for n, v in zip(NAMES, values, strict=True):
            assert by_name[n] == pytest.approx(utilisation_score[n] + v)
    else:
        assert len(decision.warnings) == 1 and decision.warnings[0].startswith("ranker 'given' failed and was left out")
        assert by_name == pytest.approx(utilisation_score), "ranked as if the rule were not there"
    assert all(math.isfinite(score) for score in by_name.values())


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(scores=st.lists(finite, max_size=12), reverse=st.booleans())
def test_the_normalisations_map_finite_scores_into_the_unit_interval_keeping_their_order(
        scores: list[float], reverse: bool) -> None:
    for normalise in (min_max, by_max):
        values = normalise(scores, reverse=reverse)
        assert len(values) == len(scores)
        assert all(0.0 <= v <= 1.0 for v in values), (normalise.__name__, values)
        for (a, va) in zip(scores, values, strict=True):
            for (b, vb) in zip(scores, values, strict=True):
                if a < b:  # never out of order (ties allowed: by_max counts negatives as 0)
                    assert (va >= vb) if reverse else (va <= vb), (normalise.__name__, a, b, va, vb)
    if scores and len(set(scores)) > 1:
        values = min_max(scores, reverse=reverse)
        assert (min(values), max(values)) == (0.0, 1.0)


def test_a_rule_that_normalises_its_own_numbers_joins_the_weighted_score() -> None:
    prices = {"cheap": 0.5, "middle": 2.0, "dear": 8.0}

    class Cheapest(Ranker):
        name = "cheapest"
        weight = 2.0

        def score(self, candidates, job):
            return [prices[c.name] for c in candidates]  # raw prices: outside [0, 1], lower is better

        def normalize(self, scores):
            return min_max(scores, reverse=True)

    s = selector([provider(n) for n in prices], pm=pm_with(Plugin([], [Cheapest()])))
    decision = s.decide(job(), limit=None, scored=True)
    assert decision.warnings == []
    assert [(c.name, round(score, 6)) for c, score in decision.ranking] == [
        ("cheap", 3.0), ("middle", round(1 + 2 * (6 / 7.5), 6)), ("dear", 1.0)]


def test_a_normalisation_that_leaves_the_range_is_refused() -> None:
    s = selector([provider("a"), provider("b")], pm=pm_with(Plugin([], [scoring([1, 2], normalize=lambda v: v)])))
    decision = s.select(job())
    assert decision.selected.name == "a"
    assert decision.warnings == ["ranker 'given' failed and was left out: ValueError: score 2 for 'b' is outside "
                                 "[0, 1] (scores are normalised into [0, 1]: return them in range, or override "
                                 "normalize())"]


class TestTheBuiltInRulesPassTheSelectionContract(SelectionContract):
    """The suite third-party rules run (``hodei.testing.contract``), on the core's own rules."""

    plugin_name = "hodei.selection"



def per_candidate(value: float) -> Ranker:
    return type("Over", (Ranker,), {"name": "over", "weight": 1.0,
                                    "score": lambda self, candidates, job: [value] * len(candidates)})()


@pytest.mark.parametrize("rules", [
    Plugin([], [per_candidate(2.0)]),
    Plugin([type("Short", (Filter,), {"name": "short", "admit": lambda self, candidates, job: [True]})()], []),
], ids=["score-out-of-range", "too-few-verdicts"])
def test_the_selection_contract_fails_a_broken_rule(hodei_pm, register_plugin, rules: Plugin) -> None:
    register_plugin(rules, name="broken-rules")
    contract = type("Contract", (SelectionContract,), {
        "plugin_name": "broken-rules", "fleet": fleets(max_size=8).filter(lambda f: len(f[0]) >= 2)})()
    with pytest.raises((AssertionError, ValueError)):
        contract.test_rules_answer_any_fleet_and_job_within_the_contract(hodei_pm=hodei_pm)
