"""Meta-tests in datasette's style: every hook is documented for plugin authors and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from hodei import hookspecs

ROOT = Path(__file__).parents[1]
HOOKS = sorted(name for name, value in vars(hookspecs).items()
               if name.startswith("hodei_") and inspect.isfunction(value))


def test_there_are_hooks() -> None:
    assert {"hodei_validate_config", "hodei_health_check", "hodei_provision", "hodei_capacity",
            "hodei_deprovision", "hodei_list_workers", "hodei_selection_filters",
            "hodei_selection_rankers", "hodei_provider_types"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring_with_its_return(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert ":returns:" in doc, f"{hook} must say what it returns"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_for_plugin_authors(hook: str) -> None:
    guide = (ROOT / "docs" / "plugin-authors.md").read_text(encoding="utf-8")
    assert re.search(rf"^### `?{hook}\(", guide, re.M), f"docs/plugin-authors.md needs a '### {hook}(...)' heading"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook: str) -> None:
    sources = [p for p in (ROOT / "tests").glob("test_*.py") if p.name != Path(__file__).name]
    sources.append(ROOT / "core" / "hodei" / "testing" / "contract.py")
    callers = [p.name for p in sources if re.search(rf"\bhook\.{hook}\b|\b{hook}\b", p.read_text(encoding="utf-8"))]
    assert callers, f"no test calls {hook}"


@pytest.mark.parametrize("firstresult, hook", [
    (True, "hodei_validate_config"), (True, "hodei_health_check"), (True, "hodei_capacity"),
    (True, "hodei_provision"), (True, "hodei_deprovision"), (True, "hodei_list_workers"),
    (False, "hodei_provider_types"), (False, "hodei_selection_filters"), (False, "hodei_selection_rankers"),
])
def test_provider_hooks_stop_at_the_first_answer_and_registration_hooks_fan_out(hodei_pm, firstresult, hook):
    assert getattr(hodei_pm.hook, hook).spec.opts["firstresult"] is firstresult
