"""The chain as operators configure it and as plugins extend it; the requirements it accepts."""

from __future__ import annotations

import pytest
from hodei import hookimpl
from hodei.errors import InvalidInput
from hodei.plugins import make_plugin_manager
from hodei.selection import Filter, Ranker, Reason, build_chain, parse_requirements
from hodei.testing.selection import job, provider, selector, state

DEFAULT_FILTERS = ["status", "health", "cooldown", "capacity", "resources", "labels", "annotations", "allowed-regions", "image"]


def pm_with(*plugins):
    return make_plugin_manager(load_entry_points=False, plugins=[(f"p{i}", p) for i, p in enumerate(plugins)])


class Plugin:
    def __init__(self, filters=(), rankers=()):
        self._filters, self._rankers = list(filters), list(rankers)

    @hookimpl
    def hodei_selection_filters(self):
        return self._filters

    @hookimpl
    def hodei_selection_rankers(self):
        return self._rankers


class OddOut(Filter):
    name = "odd-out"
    calls = 0

    def admit(self, candidates, job):
        type(self).calls += 1
        return [len(c.name) % 2 == 0 for c in candidates]

    def explain(self, candidate, job):
        return Reason("odd name length", "odd", str(len(candidate.name)), "rename it")


class Broken(Filter):
    name = "broken"

    def admit(self, candidates, job):
        raise RuntimeError("bug in plugin")


class Longest(Ranker):
    name = "longest"
    weight = 1.0

    def score(self, candidates, job):
        return [len(c.name) / 10 for c in candidates]


# -- the default chain and hodei.toml -----------------------------------------------------------


def test_default_chain_is_the_contract() -> None:
    chain = build_chain(make_plugin_manager(load_entry_points=False))
    assert chain.filter_names == DEFAULT_FILTERS
    assert chain.ranker_names == ["priority", "utilization", "name"]
    assert [s.weight for s in chain.steps] == [None, 1.0, None]
    assert chain.problems == []


def test_a_filter_left_out_of_hodei_toml_does_not_run() -> None:
    s = selector([provider("off", status="DISABLED")], filters=[f for f in DEFAULT_FILTERS if f != "status"])
    assert s.select(job()).selected.name == "off"


def test_rankers_are_reordered_from_hodei_toml() -> None:
    ps = [provider("busy-high", priority=9), provider("idle-low", priority=1)]
    states = {"busy-high": state(active=9), "idle-low": state()}
    assert selector(ps, states).select(job()).selected.name == "busy-high"
    assert selector(ps, states, rankers=["utilization", "priority", "name"]).select(job()).selected.name == "idle-low"


@pytest.mark.parametrize("settings, field, words", [
    ({"filters": ["status", "helth"]}, "selection.filters[1]", "no filter named 'helth'"),
    ({"filters": ["status", "status"]}, "selection.filters[1]", "listed twice"),
    ({"rankers": ["priority", "cost"]}, "selection.rankers[1]", "no ranker named 'cost'"),
    ({"weights": {"priority": 2.0}}, "selection.weights.priority", "ordering rule"),
    ({"weights": {"cost": 2.0}}, "selection.weights.cost", "no scoring ranker"),
    ({"weights": {"utilization": -1.0}}, "selection.weights.utilization", ">= 0"),
    ({"weights": {"utilization": float("inf")}}, "selection.weights.utilization", "finite"),
])
def test_bad_selection_settings_name_the_key(settings, field, words) -> None:
    with pytest.raises(InvalidInput) as info:
        build_chain(make_plugin_manager(load_entry_points=False), **settings)
    assert [p.field for p in info.value.problems] == [field]
    assert words in info.value.problems[0].reason


def test_selection_settings_are_read_from_hodei_toml(tmp_path) -> None:
    from hodei.settings import load_settings

    path = tmp_path / "hodei.toml"
    path.write_text('[selection]\nfilters = ["status"]\nrankers = ["name"]\n[selection.weights]\n')
    settings = load_settings(path).selection
    chain = build_chain(make_plugin_manager(load_entry_points=False), settings.filters, settings.rankers,
                        settings.weights)
    assert (chain.filter_names, chain.ranker_names) == (["status"], ["name"])
    path.write_text("[selection]\nfliters = []\n")
    with pytest.raises(InvalidInput) as info:
        load_settings(path)
    assert info.value.problems[0].field == "selection.fliters"


# -- third-party rules --------------------------------------------------------------------------


def test_third_party_filter_runs_after_the_built_in_ones_once_per_decision() -> None:
    pm = pm_with(Plugin(filters=[OddOut()]))
    s = selector([provider(n) for n in ("ab", "abc", "abcd", "x")], pm=pm)
    assert s.chain.filter_names == [*DEFAULT_FILTERS, "odd-out"]
    OddOut.calls = 0
    assert s.select(job()).selected.name == "ab"
    assert OddOut.calls == 1, "a filter sees the whole candidate set in one call"
    rejected = {r.name: r.reasons for r in s.report(job()).rejected}
    assert {name: [rule for rule, _ in reasons] for name, reasons in rejected.items()} == {
        "abc": ["odd-out"], "x": ["odd-out"]}
    assert "2 odd (abc: 3, x: 1)" in s.report(job()).summary


def test_a_filter_only_sees_what_earlier_filters_let_through() -> None:
    seen = []

    class Spy(Filter):
        name = "spy"

        def admit(self, candidates, job):
            seen.append(sorted(c.name for c in candidates))
            return [True] * len(candidates)

    s = selector([provider("on"), provider("off", status="DISABLED")], pm=pm_with(Plugin(filters=[Spy()])))
    s.select(job())
    assert seen == [["on"]]


def test_a_scoring_plugin_joins_utilization_in_one_weighted_score() -> None:
    pm = pm_with(Plugin(rankers=[Longest()]))
    ps = [provider("a"), provider("abcdefgh")]
    states = {"a": state(active=2), "abcdefgh": state(active=5)}  # utilization 20% vs 50%
    assert selector(ps, states, pm=pm).chain.ranker_names == ["priority", "utilization", "longest", "name"]
    # 0.8 + 0.1 = 0.9 against 0.5 + 0.8 = 1.3
    report = selector(ps, states, pm=pm).report(job())
    assert [(r.candidate.name, round(r.score, 6)) for r in report.ranking] == [("abcdefgh", 1.3), ("a", 0.9)]
    lighter = selector(ps, states, pm=pm, weights={"longest": 0.1})
    assert lighter.select(job()).selected.name == "a"  # 0.8 + 0.01 against 0.5 + 0.08


def test_a_failing_filter_is_skipped_and_the_decision_says_so() -> None:
    s = selector([provider("a"), provider("b", status="DISABLED")], pm=pm_with(Plugin(filters=[Broken()])))
    decision = s.select(job())
    assert decision.selected.name == "a"
    assert decision.warnings == ["filter 'broken' failed and was skipped: RuntimeError: bug in plugin"]
    assert s.report(job()).as_dict()["warnings"] == list(decision.warnings)


def test_a_failing_ranker_is_left_out() -> None:
    class Crash(Ranker):
        name = "crash"
        weight = 1.0

        def score(self, candidates, job):
            raise ValueError("nope")

    s = selector([provider("b"), provider("a")], pm=pm_with(Plugin(rankers=[Crash()])))
    decision = s.select(job())
    assert decision.selected.name == "a"
    assert "ranker 'crash' failed and was left out" in decision.warnings[0]


def test_broken_rule_plugins_lose_their_rules_and_the_rest_works() -> None:
    class Raises:
        @hookimpl
        def hodei_selection_filters(self):
            raise RuntimeError("boom")

    class Nameless(Filter):
        name = "Bad Name"

        def admit(self, candidates, job):
            return []

    class Impostor(Filter):
        name = "status"

        def admit(self, candidates, job):
            return [True] * len(candidates)

    class Clash(Filter):
        name = "clash"
        requirement_fields = {"cpu": (str, "")}

        def admit(self, candidates, job):
            return [True] * len(candidates)

    chain = build_chain(pm_with(Raises(), Plugin(filters=[Nameless(), Impostor(), Clash(), OddOut()])))
    assert chain.filter_names == [*DEFAULT_FILTERS, "odd-out"]
    problems = "\n".join(chain.problems)
    assert "hodei_selection_filters failed: RuntimeError: boom" in problems
    assert "has no valid name ('Bad Name'" in problems
    assert "filter 'status' is already provided by plugin 'hodei.selection'" in problems
    assert "redefines built-in requirement field(s) cpu" in problems


def test_rule_hooks_are_called_through_pluggy_one_plugin_at_a_time() -> None:
    seen: list[tuple[str, int]] = []

    class Audit:  # contributes nothing; wraps the rule hooks of every plugin
        @hookimpl(wrapper=True)
        def hodei_selection_filters(self):
            answers = yield
            seen.append(("filters", len(answers)))
            return answers

        @hookimpl(wrapper=True)
        def hodei_selection_rankers(self):
            answers = yield
            seen.append(("rankers", len(answers)))
            return answers

    class Raises:
        @hookimpl
        def hodei_selection_filters(self):
            raise RuntimeError("boom")

    # Registered before the built-in rules' plugin would be, by name: the order must not depend on it.
    pm = make_plugin_manager(load_entry_points=False, builtin_rules=False, plugins=[
        ("z-third", Plugin(filters=[OddOut()], rankers=[Longest()])), ("audit", Audit()), ("a-raises", Raises())])
    from hodei.builtin_plugins import selection_rules as builtin

    pm.register(builtin, name="hodei.selection")
    traced: list[str] = []
    pm.trace.root.setwriter(traced.append)
    undo = pm.enable_tracing()
    try:
        chain = build_chain(pm)
    finally:
        undo()
    # The wrapper saw each contributing plugin's call on its own (one answer each); the failing call
    # raised through it. pluggy's tracing saw all three calls of the filters hook.
    assert seen == [("filters", 1), ("filters", 1), ("rankers", 1), ("rankers", 1)]
    assert [line.split()[0] for line in traced if not line.strip().startswith("finish")] == \
        ["hodei_selection_filters"] * 3 + ["hodei_selection_rankers"] * 2, traced
    assert chain.filter_names == [*DEFAULT_FILTERS, "odd-out"]
    assert chain.ranker_names == ["priority", "utilization", "longest", "name"]
    assert chain.origins["filter:odd-out"] == "z-third" and chain.origins["filter:status"] == "hodei.selection"
    assert chain.problems == ["plugin 'a-raises': hodei_selection_filters failed: RuntimeError: boom"]


# -- requirements ---------------------------------------------------------------------------------


@pytest.mark.parametrize("given, expected", [
    ("4Gi", 4 * 2**30), ("512Mi", 512 * 2**20), ("2G", 2 * 10**9), (1024, 1024), ("1.5Gi", 3 * 2**29),
])
def test_memory_accepts_quantities_and_bytes(given, expected) -> None:
    assert parse_requirements({"memory": given}).memory == expected


def test_requirements_defaults_and_cpu_forms() -> None:
    parsed = parse_requirements({"cpu": "500m"})
    assert (parsed.cpu, parsed.memory, parsed.gpu, parsed.allowed_regions, parsed.preferred_region) == (
        0.5, 0, 0, (), None)
    assert parse_requirements({"cpu": 2}).cpu == 2.0


@pytest.mark.parametrize("document, field", [
    ({"cpus": 2}, "cpus"),
    ({"cpu": "two"}, "cpu"),
    ({"cpu": -1}, "cpu"),
    ({"memory": "4GB"}, "memory"),
    ({"memory": True}, "memory"),
    ({"gpu": 1.5}, "gpu"),
    ({"gpu": -1}, "gpu"),
    ({"gpu": True}, "gpu"),
    ({"required_labels": {"env": 1}}, "required_labels.env"),
    ({"required_labels": ["env=prod"]}, "required_labels"),
    ({"required_annotations": {"tier": None}}, "required_annotations.tier"),
    ({"preferred_region": 5}, "preferred_region"),
    ({"allowed_regions": "us-east-1"}, "allowed_regions"),
    ({"allowed_regions": ["us", 3]}, "allowed_regions[1]"),
])
def test_bad_requirements_name_the_field(document, field) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_requirements(document)
    assert field in [p.field for p in info.value.problems], info.value.problems


def test_requirements_must_be_an_object() -> None:
    with pytest.raises(InvalidInput, match="must be an object"):
        parse_requirements(["cpu", 2])


def test_fields_declared_by_rules_are_accepted_and_checked() -> None:
    class Tiers(Filter):
        name = "tiers"
        requirement_fields = {"accepted_tiers": (list[str], [])}

        def admit(self, candidates, job):
            return [True] * len(candidates)

    chain = build_chain(pm_with(Plugin(filters=[Tiers()])))
    assert chain.parse_requirements({"accepted_tiers": ["gold"]}).extensions == {"accepted_tiers": ["gold"]}
    assert chain.parse_requirements({}).extensions == {"accepted_tiers": []}
    with pytest.raises(InvalidInput) as info:
        chain.parse_requirements({"accepted_tiers": "gold"})
    assert [p.field for p in info.value.problems] == ["accepted_tiers"]
    with pytest.raises(InvalidInput):
        build_chain(make_plugin_manager(load_entry_points=False)).parse_requirements({"accepted_tiers": []})
