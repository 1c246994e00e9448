"""The stability statement of docs/plugin-authors.md holds: every name it promises a plugin can import
exists, the hook API version it states is the code's, and the example plugins declare the version
they are built for."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import hodei
import pytest
from hodei.hookspecs import API_VERSION

ROOT = Path(__file__).parents[1]
GUIDE = (ROOT / "docs" / "plugin-authors.md").read_text(encoding="utf-8")
STABLE = {
    "hodei": hodei.__all__,
    "hodei.selection": ["Candidate", "Filter", "IndexedFilter", "Ranker", "Reason", "Requirements", "Mask",
                        "ProviderIndex", "FilterRule", "IndexedFilterRule", "OrderingRule", "ScoringRule"],
    "hodei.selection.normalize": ["min_max", "by_max"],
    "hodei.hookspecs": ["API_VERSION", "PROVIDER_HOOKS"],
    "hodei.calls": ["ProviderHooks", "call_provider_hook"],
    "hodei.testing": ["backend_unavailable"],
    "hodei.testing.contract": ["ProviderContract", "ConfigContract", "LifecycleContract", "SelectionContract"],
    "hodei.testing.selection": ["provider", "state", "selector", "job"],
    "hodei.testing.strategies": ["fleets", "jobs"],
    "hodei.testing.pytest_plugin": ["hodei_pm", "hodei_pm_factory", "register_plugin"],
}


def stability_section() -> str:
    return GUIDE.split("\n## Stability\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("module", sorted(STABLE))
def test_every_stable_name_exists_and_is_named_in_the_statement(module: str) -> None:
    imported = importlib.import_module(module)
    section = stability_section()
    assert f"`{module}" in section
    for name in STABLE[module]:
        assert hasattr(imported, name), f"{module}.{name} is promised but missing"
        if module != "hodei":  # `hodei` promises its __all__ as a whole
            assert re.search(rf"\b{name}\b", section), f"{module}.{name} is not in the statement"


def test_the_statement_gives_the_codes_hook_api_version() -> None:
    assert re.fullmatch(r"\d+\.\d+", API_VERSION)
    assert f"(now `{API_VERSION}`)" in stability_section()


@pytest.mark.parametrize("module", ["example-plugin/hodei_localproc", "example-selection-plugin/hodei_tiers"])
def test_the_examples_declare_the_api_version_they_are_built_for(module: str) -> None:
    tree = ast.parse((ROOT / "docs" / module / "__init__.py").read_text(encoding="utf-8"))
    declared = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["HODEI_API_VERSION"]
                and isinstance(node.value, ast.Constant)]
    assert declared == [API_VERSION]
