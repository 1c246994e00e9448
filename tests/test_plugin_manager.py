"""The plugin manager: entry points loaded one by one, broken plugins reported, allow/deny honoured."""

from __future__ import annotations

import importlib.metadata
import sys
import types

import anyio
import hodei
import pytest
from hodei import ProviderType, hookimpl, provider_hook
from hodei.calls import call_provider_hook
from hodei.domain import HealthResult, HealthStatus, Provider
from hodei.errors import UnknownProviderType
from hodei.plugins import make_plugin_manager


def module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed entry points with in-test modules: ``install(name, module_or_exc)``."""
    points: list[importlib.metadata.EntryPoint] = []

    def install(name: str, target) -> None:
        module_name = f"hodei_test_plugin_{name.replace('-', '_')}"
        if isinstance(target, types.ModuleType):
            monkeypatch.setitem(sys.modules, module_name, target)
        else:  # importing it raises
            monkeypatch.setitem(sys.modules, module_name, None)
        points.append(importlib.metadata.EntryPoint(name, module_name, "hodei"))

    monkeypatch.setattr("hodei.plugins._entry_points", lambda: list(points))
    return install


def type_plugin(type_name: str, **extra):
    @hookimpl
    def hodei_provider_types():
        return [ProviderType(type_name, f"{type_name} provider")]

    @provider_hook(type_name)
    def hodei_validate_config(provider_type, config):
        return {"type": type_name, **config}

    return module(f"plugin_{type_name}", hodei_provider_types=hodei_provider_types,
                  hodei_validate_config=hodei_validate_config, **extra)


def test_installed_provider_plugins_are_loaded() -> None:
    pm = make_plugin_manager()
    assert pm.load_errors == []
    assert {"static", "docker", "kubernetes", "lambda"} <= set(pm.provider_types)
    infos = {i.name: i for i in pm.plugin_infos()}
    assert infos["docker"].distribution == "hodei-docker"
    assert infos["kubernetes"].provider_types == ["kubernetes"]
    assert "hodei_validate_config" in infos["lambda"].hooks


def test_each_call_builds_a_fresh_manager() -> None:
    first, second = make_plugin_manager(), make_plugin_manager()
    assert first is not second
    first.unregister(name="static")
    assert "static" not in first.provider_types
    assert "static" in second.provider_types


def test_a_broken_plugin_is_reported_and_the_others_load(fake_entry_points) -> None:
    fake_entry_points("good", type_plugin("good"))
    fake_entry_points("unimportable", ImportError)

    @hookimpl
    def hodei_provider_types():
        raise RuntimeError("boom at registration")

    fake_entry_points("raises", module("raises", hodei_provider_types=hodei_provider_types))

    @hookimpl
    def hodei_health_chek(provider):  # a typo: no such hook
        return None

    fake_entry_points("typo", module("typo", hodei_health_chek=hodei_health_chek))

    @hookimpl
    def hodei_validate_config(provider_type, config, surprise):  # an argument the spec does not have
        return None

    fake_entry_points("badargs", module("badargs", hodei_validate_config=hodei_validate_config))
    fake_entry_points("zdup", type_plugin("good"))  # loaded after "good": names are sorted

    pm = make_plugin_manager()
    assert set(pm.provider_types) == {"good"}
    errors = {e.name: e.error for e in pm.load_errors}
    assert set(errors) == {"unimportable", "raises", "typo", "badargs", "zdup"}
    assert "cannot import" in errors["unimportable"]
    assert "boom at registration" in errors["raises"]
    assert "hodei_health_chek" in errors["typo"]
    assert "surprise" in errors["badargs"]
    assert "already served by plugin 'good'" in errors["zdup"]
    assert [name for name, _ in pm.list_name_plugin()] == ["hodei.selection", "good"]


def test_allow_and_deny_lists(fake_entry_points) -> None:
    for name in ("a", "b", "c"):
        fake_entry_points(name, type_plugin(name))
    assert set(make_plugin_manager(allow=["a", "b"]).provider_types) == {"a", "b"}
    assert set(make_plugin_manager(deny=["b"]).provider_types) == {"a", "c"}
    pm = make_plugin_manager(allow=["a", "b"], deny=["b"])
    assert set(pm.provider_types) == {"a"}
    assert sorted(pm.skipped) == ["b", "c"]


def test_unknown_type_error_lists_installed_types(fake_entry_points) -> None:
    fake_entry_points("a", type_plugin("a"))
    with pytest.raises(UnknownProviderType, match=r"'zzz' \(installed: a\)"):
        make_plugin_manager().provider_type("zzz")


def test_invalid_provider_type_names_are_refused(fake_entry_points) -> None:
    fake_entry_points("caps", type_plugin("Not Valid"))
    pm = make_plugin_manager()
    assert pm.provider_types == {}
    assert "must match" in pm.load_errors[0].error


def test_in_test_plugin_registration(register_plugin, hodei_pm) -> None:
    register_plugin(type_plugin("intest"), name="intest")
    assert hodei_pm.hook.hodei_validate_config(provider_type="intest", config={"a": 1}) == {"type": "intest", "a": 1}


def test_provider_hook_dispatches_on_type_and_supports_async(hodei_pm, register_plugin) -> None:
    calls = []

    @provider_hook("asyncy")
    async def hodei_health_check(provider, timeout):
        calls.append(provider.name)
        await anyio.sleep(0)
        return HealthResult.degraded("half there")

    register_plugin(module("asyncy", hodei_health_check=hodei_health_check), name="asyncy")
    mine = Provider(id=hodei.domain.uuid.uuid4(), name="p", provider_type="asyncy", config={})
    theirs = Provider(id=hodei.domain.uuid.uuid4(), name="q", provider_type="nobody", config={})

    result = anyio.run(call_provider_hook, hodei_pm.hook.hodei_health_check, mine, 1.0)
    assert result.status is HealthStatus.DEGRADED and result.reason == "half there"
    with pytest.raises(UnknownProviderType):
        anyio.run(call_provider_hook, hodei_pm.hook.hodei_health_check, theirs, 1.0)
    assert calls == ["p"]


def test_a_hung_hook_is_cut_off_by_the_timeout(hodei_pm) -> None:
    config = hodei_pm.hook.hodei_validate_config(provider_type="static", config={"hang": True})
    hung = Provider(id=hodei.domain.uuid.uuid4(), name="h", provider_type="static", config=config)

    async def check():
        started = anyio.current_time()
        with pytest.raises(TimeoutError):
            await call_provider_hook(hodei_pm.hook.hodei_health_check, hung, 0.2)
        return anyio.current_time() - started

    assert anyio.run(check) < 2.0


def test_run_blocking_is_abandoned_on_timeout() -> None:
    import threading

    release = threading.Event()

    async def main():
        with pytest.raises(TimeoutError), anyio.fail_after(0.1):
            await hodei.run_blocking(release.wait, 10)

    anyio.run(main)
    release.set()


def test_provider_hook_needs_a_provider_argument() -> None:
    with pytest.raises(TypeError, match="provider"):
        provider_hook("x")(lambda timeout: None)


def test_selection_rule_hooks_collect_every_plugins_rules(hodei_pm, register_plugin) -> None:
    class Tier:
        name = "tier"

    class Cost:
        name = "cost"

    class ThirdParty:
        @hookimpl
        def hodei_selection_filters(self):
            return [Tier()]

        @hookimpl
        def hodei_selection_rankers(self):
            return [Cost()]

    register_plugin(ThirdParty(), name="third-party")
    filters = [rule.name for rules in hodei_pm.hook.hodei_selection_filters() for rule in rules]
    rankers = [rule.name for rules in hodei_pm.hook.hodei_selection_rankers() for rule in rules]
    assert "tier" in filters and "cost" in rankers


def test_a_type_belongs_to_the_plugin_whose_entry_point_carries_its_name(fake_entry_points) -> None:
    fake_entry_points("aaa-impostor", type_plugin("docker"))
    fake_entry_points("docker", type_plugin("docker"))
    pm = make_plugin_manager()
    assert pm.provider_type("docker").plugin_name == "docker"
    assert [e.name for e in pm.load_errors] == ["aaa-impostor"]


def test_core_plugins_load_without_pytest_installed() -> None:
    # Production installs carry no test tools; the `static` type lives in hodei.testing all the same.
    import json
    import subprocess

    script = ("import json, sys\n"
              "sys.modules['pytest'] = None\n"
              "from hodei.plugins import make_plugin_manager\n"
              "pm = make_plugin_manager()\n"
              "print(json.dumps({'types': sorted(pm.provider_types), 'errors': [e.error for e in pm.load_errors]}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["errors"] == []
    assert "static" in result["types"]
