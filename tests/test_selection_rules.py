"""Every built-in rule and every region tier of the selection contract, one behaviour at a time."""

from __future__ import annotations

import pytest
from hodei.testing.selection import job, provider, selector, state


def selected(s, j) -> str | None:
    decision = s.select(j)
    return decision.selected.name if decision.selected else None


def reasons(report, name: str) -> dict[str, str]:
    rejection = next((r for r in report.rejected if r.name == name), None)
    return {} if rejection is None else {rule: reason.message for rule, reason in rejection.reasons}


# -- hard filters -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["DISABLED", "MAINTENANCE", "UNHEALTHY"])
def test_only_active_providers_are_selected(status: str) -> None:
    s = selector([provider("a", status=status, priority=9), provider("b")])
    assert selected(s, job()) == "b"
    assert reasons(s.report(job()), "a") == {"status": f"status is {status}, not ACTIVE"}


def test_unhealthy_is_excluded_but_degraded_and_never_checked_pass_with_a_note() -> None:
    s = selector([provider("bad", priority=3), provider("meh", priority=2), provider("new", priority=1)],
                 {"bad": state(health="Unhealthy", reason="socket refused"),
                  "meh": state(health="Degraded", reason="image missing"), "new": state(health=None)})
    report = s.report(job())
    assert [r.candidate.name for r in report.ranking] == ["meh", "new"]
    assert reasons(report, "bad") == {"health": "last health check was Unhealthy: socket refused"}
    notes = {r.candidate.name: r.notes for r in report.ranking}
    assert notes == {"meh": ("health Degraded: image missing",), "new": ("health never checked",)}


def test_capacity_counts_active_plus_reserved_against_max_workers() -> None:
    s = selector([provider("full", max_workers=20, priority=5), provider("room", max_workers=20)],
                 {"full": state(active=15, reserved=5), "room": state(active=19, reserved=0)})
    assert selected(s, job()) == "room"
    assert reasons(s.report(job()), "full")["capacity"] == "at capacity: 20/20 workers (15 active, 5 reserved)"
    assert "1 at capacity (full: 20/20)" in s.report(job()).summary


def test_over_capacity_is_also_at_capacity() -> None:
    s = selector([provider("over", max_workers=2)], {"over": state(active=5)})
    assert selected(s, job()) is None


@pytest.mark.parametrize("field, amount, have, fits", [
    ("cpu", 4.0, 4.0, True), ("cpu", 4.0, 3.5, False), ("cpu", 0.5, None, False), ("cpu", 0.0, None, True),
    ("memory", 4 * 2**30, 4 * 2**30, True), ("memory", 4 * 2**30 + 1, 4 * 2**30, False),
    ("memory", 1, None, False), ("gpu", 1, 0, False), ("gpu", 2, 2, True), ("gpu", 0, None, True),
])
def test_resources_fit_what_one_worker_can_get(field: str, amount, have, fits: bool) -> None:
    s = selector([provider("p")], {"p": state(**{field: have})})
    assert (selected(s, job(**{field: amount})) == "p") is fits


def test_capabilities_in_config_override_what_was_discovered() -> None:
    s = selector([provider("p", capabilities={"cpu": 16, "memory": 2**34, "gpu": None})],
                 {"p": state(cpu=2, memory=2**30, gpu=1)})
    assert selected(s, job(cpu=8, memory=2**34, gpu=1)) == "p"  # cpu, memory overridden; gpu discovered
    assert selected(s, job(cpu=17)) is None


def test_resource_reasons_say_what_is_missing_and_how_to_learn_it() -> None:
    s = selector([provider("p")], {"p": state(cpu=2, memory=None)})
    message = reasons(s.report(job(cpu=4, memory=2**30)), "p")["resources"]
    assert "cpu: needs 4 cores, one worker can get 2 cores" in message
    assert "memory: needs 1Gi, unknown what one worker can get" in message


def test_labels_must_all_match_exactly() -> None:
    s = selector([provider("both", labels={"env": "prod", "team": "ml"}),
                  provider("one", labels={"env": "prod"}, priority=9)])
    assert selected(s, job(required_labels={"env": "prod", "team": "ml"})) == "both"
    assert reasons(s.report(job(required_labels={"env": "prod", "team": "ml"})), "one") == {
        "labels": "missing label team=ml (has no team)"}


@pytest.mark.parametrize("wanted", [{"env": "Prod"}, {"Env": "prod"}, {"env": "prod "}, {"env": " prod"}])
def test_label_matching_is_case_sensitive_and_space_sensitive(wanted) -> None:
    s = selector([provider("p", labels={"env": "prod"})])
    assert selected(s, job(required_labels=wanted)) is None


def test_a_trailing_space_is_shown_in_the_reason() -> None:
    s = selector([provider("p", labels={"env": "prod"})])
    assert reasons(s.report(job(required_labels={"env": "prod "})), "p") == {
        "labels": "missing label env='prod ' (has env=prod)"}


def test_empty_requirements_match_providers_without_labels() -> None:
    s = selector([provider("bare"), provider("labelled", labels={"a": "b"})])
    assert s.report(job(required_labels={})).rejected == []


def test_annotations_are_matched_like_labels() -> None:
    s = selector([provider("gdpr", annotations={"compliance": "gdpr"}), provider("none", priority=5)])
    assert selected(s, job(required_annotations={"compliance": "gdpr"})) == "gdpr"
    assert reasons(s.report(job(required_annotations={"compliance": "gdpr"})), "none") == {
        "annotations": "missing annotation compliance=gdpr (has no compliance)"}


def test_labels_are_not_annotations() -> None:
    s = selector([provider("p", annotations={"env": "prod"})])
    assert selected(s, job(required_labels={"env": "prod"})) is None


def test_allowed_regions_need_one_region_in_common() -> None:
    s = selector([provider("east", preferred_region="us-east-1"),
                  provider("west", allowed_regions=("us-west-2",)),
                  provider("eu", preferred_region="eu-west-1", allowed_regions=("eu-central-1",)),
                  provider("anywhere")])
    report = s.report(job(allowed_regions=["us-east-1", "us-west-2"]))
    assert sorted(r.candidate.name for r in report.ranking) == ["anywhere", "east", "west"]
    assert reasons(report, "eu") == {
        "allowed-regions": "runs only in eu-central-1, eu-west-1; the job allows us-east-1, us-west-2"}


def test_no_allowed_regions_means_anywhere() -> None:
    s = selector([provider("eu", preferred_region="eu-west-1")])
    assert selected(s, job(allowed_regions=[])) == "eu"


def test_every_failing_filter_is_reported_not_only_the_first() -> None:
    s = selector([provider("p", status="DISABLED", labels={"env": "dev"}, max_workers=1)], {"p": state(active=1)})
    assert list(reasons(s.report(job(required_labels={"env": "prod"})), "p")) == ["status", "capacity", "labels"]


# -- region tiers -----------------------------------------------------------------------------


def test_tier_preferred_wins_over_higher_priority_elsewhere() -> None:
    s = selector([provider("home", preferred_region="eu", priority=1),
                  provider("away", preferred_region="us", allowed_regions=("eu",), priority=99)])
    decision = s.select(job(preferred_region="eu"))
    assert (decision.selected.name, decision.tier) == ("home", "preferred")


def test_tier_allowed_when_no_provider_prefers_the_region() -> None:
    s = selector([provider("lists", preferred_region="us", allowed_regions=("eu",), priority=1),
                  provider("anywhere", priority=99)])
    decision = s.select(job(preferred_region="eu"))
    assert (decision.selected.name, decision.tier) == ("lists", "allowed")


def test_unrestricted_providers_are_only_in_tier_any() -> None:
    s = selector([provider("anywhere", priority=99), provider("elsewhere", preferred_region="us")])
    decision = s.select(job(preferred_region="eu"))
    assert (decision.selected.name, decision.tier) == ("anywhere", "any")
    assert [r.candidate.name for r in s.report(job(preferred_region="eu")).ranking] == ["anywhere", "elsewhere"]


def test_tier_any_without_a_preferred_region() -> None:
    s = selector([provider("a", preferred_region="eu")])
    assert s.select(job()).tier == "any"


def test_tiers_apply_after_the_hard_filters() -> None:
    s = selector([provider("home-full", preferred_region="eu", max_workers=1, priority=9),
                  provider("away", preferred_region="us")], {"home-full": state(active=1)})
    decision = s.select(job(preferred_region="eu"))
    assert (decision.selected.name, decision.tier) == ("away", "any")


def test_region_names_match_exactly() -> None:
    s = selector([provider("p", preferred_region="eu-west-1")])
    assert s.select(job(preferred_region="EU-WEST-1")).tier == "any"


# -- ranking ----------------------------------------------------------------------------------


def test_priority_then_utilization_then_name() -> None:
    s = selector([provider("c", priority=5), provider("b", priority=5), provider("a", priority=5),
                  provider("low", priority=1)],
                 {"a": state(active=5), "b": state(active=1), "c": state(active=1)})
    report = s.report(job())
    assert [r.candidate.name for r in report.ranking] == ["b", "c", "a", "low"]
    assert s.select(job()).selected.name == "b"


def test_utilization_is_relative_to_max_workers() -> None:
    s = selector([provider("big", max_workers=100), provider("small", max_workers=4)],
                 {"big": state(active=30), "small": state(active=1)})
    assert selected(s, job()) == "small"  # 25% < 30%


def test_exact_ties_go_to_the_first_name() -> None:
    s = selector([provider(name) for name in ("b", "a", "C", "B")])
    assert [r.candidate.name for r in s.report(job()).ranking] == ["B", "C", "a", "b"]  # code point order
    assert selected(s, job()) == "B"


def test_negative_priorities_rank_below_zero() -> None:
    s = selector([provider("neg", priority=-5), provider("zero")])
    assert selected(s, job()) == "zero"


def test_score_is_one_minus_utilization_with_default_weights() -> None:
    s = selector([provider("p", max_workers=4)], {"p": state(active=1)})
    ranked = s.report(job()).ranking[0]
    assert ranked.score == pytest.approx(0.75)
    assert ranked.as_dict() | {} == {"name": "p", "priority": 0, "utilization": 0.25, "score": 0.75,
                                     "workers": "1/4", "health": "Healthy", "notes": [], "position": 1}


# -- no provider --------------------------------------------------------------------------------


def test_nothing_fits_gives_the_operator_checklist() -> None:
    s = selector([
        provider("a", labels={"environment": "production"}),
        provider("b", status="DISABLED", labels={"environment": "production"}),
        provider("c", status="MAINTENANCE", labels={"environment": "production"}),
        provider("d", max_workers=20, labels={"environment": "production"}),
        provider("e", labels={"environment": "staging"}),
        provider("f", preferred_region="eu", labels={"environment": "production"}),
    ], {"a": state(health="Unhealthy", reason="timed out"), "d": state(active=20)})
    report = s.report(job(required_labels={"environment": "production"}, allowed_regions=["us"]))
    assert report.selected is None and report.tier is None and report.ranking == []
    assert report.summary == (
        "0/6 providers available: 2 not ACTIVE (b: DISABLED, c: MAINTENANCE), 1 unhealthy (a: timed out), "
        "1 at capacity (d: 20/20), 1 missing label environment=production (e: has environment=staging), "
        "1 outside allowed regions (f)")


def test_no_providers_at_all() -> None:
    s = selector([])
    assert s.select(job()).selected is None
    assert s.report(job()).summary == "0/0 providers available: no providers are configured"


def test_fast_path_and_report_agree() -> None:
    s = selector([provider(f"p{i}", priority=i % 3, max_workers=5, preferred_region=["eu", "us", None][i % 3])
                  for i in range(30)], {f"p{i}": state(active=i % 6) for i in range(30)})
    for j in (job(), job(preferred_region="eu"), job(preferred_region="us", allowed_regions=["us"])):
        decision, report = s.select(j), s.report(j)
        assert (decision.selected.name if decision.selected else None, decision.tier) == (report.selected, report.tier)


# -- explain ----------------------------------------------------------------------------------


def test_explain_names_every_failed_filter_with_a_hint() -> None:
    s = selector([provider("e", labels={"environment": "staging"}, status="DISABLED"), provider("ok")])
    explanation = s.explain("e", job(required_labels={"environment": "production"}))
    assert not explanation.fits
    failed = {c.filter: c for c in explanation.checks if not c.passed}
    assert set(failed) == {"status", "labels"}
    assert "hodei providers enable e" in failed["status"].hint
    assert "required_labels" in failed["labels"].hint
    assert explanation.as_dict()["summary"] == "e does not fit: rejected by status, labels"


def test_explain_a_provider_that_fits_but_ranks_lower() -> None:
    s = selector([provider("hi", priority=10), provider("lo", priority=5)])
    explanation = s.explain("lo", job())
    assert explanation.fits and explanation.ranked.position == 2
    assert explanation.verdict == "lo fits, ranked 2 of 2: hi ranks first on priority, 10 against 5"


def test_explain_a_provider_in_a_lower_tier() -> None:
    s = selector([provider("home", preferred_region="eu"), provider("away", preferred_region="us", priority=9)])
    explanation = s.explain("away", job(preferred_region="eu"))
    assert explanation.tier == "any" and explanation.ranked is None
    assert "set its preferred_region to 'eu'" in explanation.verdict


def test_explain_an_unknown_provider() -> None:
    from hodei.errors import NotFound

    with pytest.raises(NotFound):
        selector([provider("a")]).explain("nope", job())
