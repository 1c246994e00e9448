"""A third-party selection plugin, pip-installed, extends the chain through its entry point.

docs/example-selection-plugin (``hodei-tiers``) adds a filter (``accepted-tiers``: reject providers
whose ``annotations.tier`` the job does not accept) and a scoring ranker (``tier-preference``,
weight from hodei.toml). Nothing here imports its source tree: Hodei finds it as it would find a
package from PyPI, and both rules show up in decisions and explanations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from hodei.plugins import make_plugin_manager
from hodei.selection import build_chain
from hodei.testing.contract import SelectionContract
from hodei.testing.selection import provider, selector, state
from hodei.testing.strategies import fleets
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def tiers_site(install_example) -> Path:
    return install_example("example-selection-plugin", "hodei_tiers")


@pytest.fixture
def pm(tiers_site):
    return make_plugin_manager(allow=["tiers"])


def fleet() -> tuple[list, dict]:
    providers = [provider("gold-busy", annotations={"tier": "gold"}), provider("silver-idle", annotations={"tier": "silver"}),
                 provider("bronze-idle", annotations={"tier": "bronze"}, priority=50), provider("untiered", priority=50)]
    states = {"gold-busy": state(active=6), "silver-idle": state(active=0)}
    return providers, states


def test_the_package_adds_its_rules_through_its_entry_point(pm, tiers_site) -> None:
    info = next(i for i in pm.plugin_infos() if i.name == "tiers")
    assert (info.distribution, info.version) == ("hodei-tiers", "0.1.0")
    assert info.hooks == ["hodei_selection_filters", "hodei_selection_rankers"]
    assert Path(pm.get_plugin("tiers").__file__).resolve().is_relative_to(tiers_site.resolve())
    chain = build_chain(pm)
    assert chain.filter_names[-1] == "accepted-tiers"
    assert chain.ranker_names == ["priority", "utilization", "tier-preference", "name"]
    assert chain.origins["filter:accepted-tiers"] == "tiers"


def test_the_filter_rejects_unaccepted_tiers_and_says_why(pm) -> None:
    providers, states = fleet()
    s = selector(providers, states, pm=pm)
    job = s.chain.parse_requirements({"accepted_tiers": ["gold", "silver"]})
    report = s.report(job)
    assert {r.name: [rule for rule, _ in r.reasons] for r in report.rejected} == {
        "bronze-idle": ["accepted-tiers"], "untiered": ["accepted-tiers"]}
    assert "2 tier not accepted (bronze-idle: bronze, untiered: no tier)" in report.summary
    explanation = s.explain("bronze-idle", job).as_dict()
    failed = [c for c in explanation["checks"] if not c["passed"]]
    assert failed == [{"filter": "accepted-tiers", "passed": False,
                       "message": "tier bronze; the job accepts gold, silver",
                       "hint": "annotate the provider with an accepted tier, or accept its tier in the job"}]


def test_a_job_naming_no_tiers_is_not_affected(pm) -> None:
    providers, states = fleet()
    s = selector(providers, states, pm=pm)
    assert s.report(s.chain.parse_requirements({})).rejected == []


def test_the_weight_decides_between_preference_and_utilization(pm) -> None:
    providers, states = fleet()
    providers = providers[:2]
    job = {"accepted_tiers": ["gold", "silver"]}
    # Default weight 0.5: gold 0.4 + 0.5 = 0.9 against silver 1.0 + 0.25 = 1.25; utilization wins.
    s = selector(providers, states, pm=pm)
    ranking = s.report(s.chain.parse_requirements(job)).ranking
    assert [(r.candidate.name, round(r.score, 3)) for r in ranking] == [("silver-idle", 1.25), ("gold-busy", 0.9)]
    # Weight 2 from hodei.toml: gold 0.4 + 2.0 = 2.4 against silver 1.0 + 1.0 = 2.0; the preference wins.
    s = selector(providers, states, pm=pm, weights={"tier-preference": 2.0})
    assert s.select(s.chain.parse_requirements(job)).selected.name == "gold-busy"


def test_hodei_select_uses_the_plugin_and_the_weight_in_hodei_toml(tiers_site, tmp_path) -> None:
    config = tmp_path / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///h.db"\n[selection.weights]\ntier-preference = 2.0\n')
    providers = tmp_path / "providers.toml"
    providers.write_text(
        '[[providers]]\nname = "gold-busy"\nprovider_type = "static"\nmax_workers = 10\n'
        'config = { capabilities = { cpu = 8 } }\nannotations = { tier = "gold" }\n'
        '[[providers]]\nname = "silver-idle"\nprovider_type = "static"\nannotations = { tier = "silver" }\n'
        '[[providers]]\nname = "bronze"\nprovider_type = "static"\nannotations = { tier = "bronze" }\n')
    env = {**os.environ, "HODEI_CONFIG": str(config),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tiers_site), os.environ.get("PYTHONPATH")]))}
    env.pop("HODEI_DATABASE_URL", None)

    def hodei(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hodei", *args], env=env, cwd=tmp_path, input=input,
                              capture_output=True, text=True, timeout=120)

    for command in (["db", "upgrade"], ["providers", "apply", "-f", str(providers)]):
        assert hodei(*command).returncode == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.begin() as connection:  # six of gold's ten slots busy with running workers
        for i in range(6):
            connection.exec_driver_sql(
                "INSERT INTO workers (id, provider_id, provider_name, state, reason, requirements, attempts, "
                "token_sha256, created_at, updated_at) SELECT ?, id, name, 'RUNNING', '', '{}', '[]', '', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM provider_configs WHERE name = 'gold-busy'", (f"w{i}",))
    engine.dispose()

    done = hodei("select", "-r", "-", "-o", "json", input='{"accepted_tiers": ["gold", "silver"]}')
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["selected"] == "gold-busy"
    assert [(r["name"], r["score"]) for r in result["ranking"]] == [("gold-busy", 2.4), ("silver-idle", 2.0)]
    assert result["rejected"] == [{"name": "bronze", "reasons": [{
        "filter": "accepted-tiers", "message": "tier bronze; the job accepts gold, silver",
        "hint": "annotate the provider with an accepted tier, or accept its tier in the job"}]}]

    bad = hodei("select", "-r", "-", input='{"accepted_tiers": "gold"}')
    assert bad.returncode == 1 and "accepted_tiers" in bad.stderr and "Traceback" not in bad.stderr


class TestTheExampleRulesPassTheSelectionContract(SelectionContract):
    """The suite ``hodei plugin new`` gives every selection plugin, on the example's rules."""

    plugin_name = "tiers"
    requirement_values = {"accepted_tiers": st.lists(st.sampled_from(["gold", "silver", "bronze"]), unique=True,
                                                     max_size=3)}
    fleet = fleets(annotations=st.fixed_dictionaries(
        {}, optional={"tier": st.sampled_from(["gold", "silver", "bronze", "lead"])}))

    @pytest.fixture(autouse=True)
    def _installed(self, tiers_site: Path) -> None:
        """The example pip-installed before ``hodei_pm`` loads the entry points."""
