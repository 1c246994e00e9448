"""The plugin manager: entry points loaded one by one, broken plugins reported, allow/deny honoured."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from collections.abc import Callable
from typing import Any

import anyio
import hodei
import pytest
from hodei import ProviderType, hookimpl, provider_hook
from hodei.calls import call_provider_hook
from hodei.domain import HealthResult, HealthStatus, Provider
from hodei.errors import UnknownProviderType
from hodei.hookspecs import API_VERSION, PROVIDER_HOOKS
from hodei.plugins import HodeiPluginManager, make_plugin_manager


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
    assert {"docker", "kubernetes", "lambda"} <= set(pm.provider_types)
    assert "static" not in pm.provider_types  # the core's test-only type waits to be enabled
    infos = {i.name: i for i in pm.plugin_infos()}
    assert infos["docker"].distribution == "hodei-docker"
    assert infos["kubernetes"].provider_types == ["kubernetes"]
    assert "hodei_validate_config" in infos["lambda"].hooks


def test_each_call_builds_a_fresh_manager() -> None:
    first, second = make_plugin_manager(enable=["static"]), make_plugin_manager(enable=["static"])
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
    assert hodei_pm.validate_config("intest", {"a": 1}) == {"type": "intest", "a": 1}


def test_provider_hook_dispatches_on_type_and_supports_async(hodei_pm, register_plugin) -> None:
    calls = []

    @provider_hook("asyncy")
    async def hodei_health_check(provider, timeout):
        calls.append(provider.name)
        await anyio.sleep(0)
        return HealthResult.degraded("half there")

    @hookimpl
    def hodei_provider_types():
        return [ProviderType("asyncy")]  # routing sends a type's calls to the plugin declaring it

    register_plugin(module("asyncy", hodei_provider_types=hodei_provider_types, hodei_health_check=hodei_health_check),
                    name="asyncy")
    mine = Provider(id=hodei.domain.uuid.uuid4(), name="p", provider_type="asyncy", config={})
    theirs = Provider(id=hodei.domain.uuid.uuid4(), name="q", provider_type="nobody", config={})

    result = anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", mine, 1.0)
    assert result.status is HealthStatus.DEGRADED and result.reason == "half there"
    with pytest.raises(UnknownProviderType):
        anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", theirs, 1.0)
    assert calls == ["p"]
    # Called for another type (routing never does that), the wrapper still answers None, creating no coroutine.
    assert hodei_health_check(provider=theirs, timeout=1.0) is None


def answering_plugin(type_name: str, calls: list[str]) -> types.ModuleType:
    """A plugin serving ``type_name`` whose hooks answer for *any* provider (plain ``@hookimpl``,
    no type check), recording each call: only routing keeps it out of other types' calls."""

    @hookimpl
    def hodei_provider_types():
        return [ProviderType(type_name)]

    @hookimpl
    def hodei_validate_config(provider_type, config):
        calls.append(f"{type_name}:validate")
        return {"type": provider_type, "validated_by": type_name}

    @hookimpl
    async def hodei_health_check(provider):
        calls.append(f"{type_name}:health")
        return HealthResult.healthy(f"answered by {type_name}")

    return module(f"plugin_{type_name}", hodei_provider_types=hodei_provider_types,
                  hodei_validate_config=hodei_validate_config, hodei_health_check=hodei_health_check)


def provider_of(type_name: str) -> Provider:
    return Provider(id=hodei.domain.uuid.uuid4(), name=f"a {type_name}", provider_type=type_name, config={})


def test_provider_hooks_reach_only_the_plugin_serving_the_type(hodei_pm: HodeiPluginManager, register_plugin: Callable[..., Any]) -> None:
    calls: list[str] = []
    register_plugin(answering_plugin("alpha", calls), name="alpha")
    register_plugin(answering_plugin("beta", calls), name="beta")  # last registered: pluggy would ask it first

    result = anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", provider_of("alpha"), 1.0)
    assert result.reason == "answered by alpha"
    assert hodei_pm.validate_config("alpha", {}) == {"type": "alpha", "validated_by": "alpha"}
    assert calls == ["alpha:health", "alpha:validate"], "beta answers any type, yet must never be asked"

    calls.clear()
    result = anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", provider_of("beta"), 1.0)
    assert (result.reason, calls) == ("answered by beta", ["beta:health"])
    assert {i.plugin_name for i in hodei_pm.provider_hook_caller("hodei_health_check", "alpha").get_hookimpls()} \
        == {"alpha"}, "static, docker and the others serve other types: left out too"


def test_a_plugin_serving_no_type_sees_routed_calls_only_through_wrappers(hodei_pm: HodeiPluginManager, register_plugin: Callable[..., Any]) -> None:
    calls: list[str] = []
    seen: list[tuple[str, str]] = []

    class Audit:  # serves no provider type: a hook wrapper (timing, audit) sees every call
        @hookimpl(wrapper=True)
        def hodei_health_check(self, provider):
            seen.append(("wrapper", provider.provider_type))
            return (yield)

    class Observer:  # serves no type and implements a plain provider hook: it would answer for every type
        @hookimpl
        def hodei_health_check(self, provider):
            seen.append(("observer", provider.provider_type))

    register_plugin(answering_plugin("alpha", calls), name="alpha")
    register_plugin(answering_plugin("beta", calls), name="beta")
    register_plugin(Audit(), name="audit")
    register_plugin(Observer(), name="observer")
    traced: list[str] = []
    hodei_pm.trace.root.setwriter(traced.append)
    undo = hodei_pm.enable_tracing()
    try:
        result = anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", provider_of("alpha"), 1.0)
    finally:
        undo()
    assert result.reason == "answered by alpha"
    assert seen == [("wrapper", "alpha")], "a plain implementation of a plugin serving no type is never called"
    assert calls == ["alpha:health"]
    assert any("hodei_health_check" in line for line in traced), traced


def test_a_plugin_serving_no_type_cannot_take_over_another_types_hooks(
        hodei_pm: HodeiPluginManager, register_plugin: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    """The hole a review reproduced: a plugin declaring no provider type, with a plain (even ``tryfirst``)
    ``hodei_validate_config``, answered for ``static`` and every other type."""

    class Hijacker:
        @hookimpl(tryfirst=True)
        def hodei_validate_config(self, provider_type, config):
            return {"type": provider_type, "hijacked": True}

        @hookimpl(tryfirst=True)
        async def hodei_health_check(self, provider):
            return HealthResult.unhealthy("hijacked")

    register_plugin(Hijacker(), name="hijacker")
    assert "hijacker" in caplog.text and "never called" in caplog.text, "the author is told, not left guessing"
    normalised = hodei_pm.validate_config("static", {})
    assert "hijacked" not in normalised and normalised["type"] == "static"
    config = hodei_pm.validate_config("static", {"health": "Degraded", "health_reason": "own answer"})
    provider = Provider(id=hodei.domain.uuid.uuid4(), name="s", provider_type="static", config=config)
    result = anyio.run(hodei_pm.provider_hooks.health_check, provider, 1.0)
    assert (result.status, result.reason) == (HealthStatus.DEGRADED, "own answer")
    for hook in PROVIDER_HOOKS:
        reached = {i.plugin_name for i in hodei_pm.provider_hook_caller(hook, "static").get_hookimpls()}
        assert "hijacker" not in reached, hook


def test_routes_are_rebuilt_when_plugins_come_and_go(hodei_pm: HodeiPluginManager, register_plugin: Callable[..., Any]) -> None:
    calls: list[str] = []
    alpha = register_plugin(answering_plugin("alpha", calls), name="alpha")

    def reached(provider_type: str) -> set[str]:
        return {i.plugin_name for i in hodei_pm.provider_hook_caller("hodei_health_check", provider_type).get_hookimpls()}

    route = hodei_pm.provider_hook_caller("hodei_health_check", "alpha")
    assert hodei_pm.provider_hook_caller("hodei_health_check", "alpha") is route, "built once, then reused"
    assert reached("alpha") == {"alpha"}

    # A plugin serving another type arrives: the cached route must not let it in.
    register_plugin(answering_plugin("beta", calls), name="beta")
    assert reached("alpha") == {"alpha"}
    assert reached("beta") == {"beta"}
    assert anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", provider_of("alpha"), 1.0).reason \
        == "answered by alpha"
    assert calls == ["alpha:health"]

    # The owner goes: its type is unknown again, not served by a stale route.
    hodei_pm.unregister(alpha)
    with pytest.raises(UnknownProviderType):
        hodei_pm.provider_hook_caller("hodei_health_check", "alpha")
    with pytest.raises(UnknownProviderType):
        anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", provider_of("alpha"), 1.0)
    # And a new plugin for the type is reached.
    register_plugin(answering_plugin("alpha", calls), name="alpha-again")
    assert reached("alpha") == {"alpha-again"}


def test_an_unhashable_plugin_object_is_refused_and_reported() -> None:
    @hookimpl
    def hodei_provider_types():
        return [ProviderType("unhashable")]

    # A SimpleNamespace defines __eq__ and so has no hash: pluggy's subset_hook_caller could not route around it.
    pm = make_plugin_manager(load_entry_points=False, plugins=[
        ("unhashable", types.SimpleNamespace(hodei_provider_types=hodei_provider_types))])
    assert [(e.name, "not hashable" in e.error) for e in pm.load_errors] == [("unhashable", True)]
    assert "unhashable" not in pm.provider_types


def test_only_provider_hooks_are_routed(hodei_pm: HodeiPluginManager) -> None:
    with pytest.raises(ValueError, match="not a provider hook"):
        hodei_pm.provider_hook_caller("hodei_selection_filters", "static")


def test_a_plugin_without_the_hook_is_an_unknown_answer(hodei_pm: HodeiPluginManager, register_plugin: Callable[..., Any]) -> None:
    register_plugin(type_plugin("validates-only"), name="validates-only")  # no hodei_health_check
    with pytest.raises(UnknownProviderType, match="gave no answer to hodei_health_check"):
        anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", provider_of("validates-only"), 1.0)


def test_a_hung_hook_is_cut_off_by_the_timeout(hodei_pm) -> None:
    config = hodei_pm.validate_config("static", {"hang": True})
    hung = Provider(id=hodei.domain.uuid.uuid4(), name="h", provider_type="static", config=config)

    async def check():
        started = anyio.current_time()
        with pytest.raises(TimeoutError):
            await call_provider_hook(hodei_pm, "hodei_health_check", hung, 0.2)
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
              "pm = make_plugin_manager(enable=['static'])\n"
              "print(json.dumps({'types': sorted(pm.provider_types), 'errors': [e.error for e in pm.load_errors]}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["errors"] == []
    assert "static" in result["types"]


def test_static_loads_only_when_enabled_and_deny_wins() -> None:
    assert "static" not in make_plugin_manager().provider_types
    enabled = make_plugin_manager(enable=["static"])
    assert enabled.provider_type("static").plugin_name == "static"
    info = {i.name: i for i in enabled.plugin_infos()}["static"]
    assert (info.distribution, info.version) == ("hodei", hodei.__version__)
    denied = make_plugin_manager(enable=["static"], deny=["static"])
    assert "static" not in denied.provider_types


def test_enabling_an_unknown_core_plugin_is_reported_not_fatal() -> None:
    pm = make_plugin_manager(enable=["statik"])
    assert [(e.name, e.distribution) for e in pm.load_errors] == [("statik", "hodei")]
    assert "no optional plugin of the core is called 'statik'" in pm.load_errors[0].error
    assert {"docker", "kubernetes", "lambda"} <= set(pm.provider_types)


def test_the_core_s_own_plugins_show_the_core_s_version() -> None:
    infos = {i.name: i for i in make_plugin_manager().plugin_infos()}
    assert infos["hodei.selection"].version == hodei.__version__


@pytest.mark.parametrize("names", [["nope"], ["static", "Static"], [""], ["hodei.selection"], ["docker"]])
def test_enable_names_only_the_core_s_optional_plugins(tmp_path, names) -> None:
    from hodei.errors import InvalidInput
    from hodei.settings import load_settings

    config = tmp_path / "hodei.toml"
    config.write_text(f"[plugins]\nenable = {json.dumps(names)}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        load_settings(config)
    assert [p.field for p in refused.value.problems] == ["plugins.enable"]
    assert "is not a plugin of the core (there are: static)" in str(refused.value)


def test_the_environment_adds_to_enable_and_is_checked(tmp_path, monkeypatch) -> None:
    from hodei.errors import InvalidInput
    from hodei.settings import load_settings

    config = tmp_path / "hodei.toml"
    config.write_text("[plugins]\nenable = []\n", encoding="utf-8")
    monkeypatch.setenv("HODEI_PLUGINS_ENABLE", " static , ")
    assert load_settings(config).plugins.enable == ["static"]
    monkeypatch.setenv("HODEI_PLUGINS_ENABLE", "static,statik")
    with pytest.raises(InvalidInput) as refused:
        load_settings(config)
    assert [p.field for p in refused.value.problems] == ["HODEI_PLUGINS_ENABLE"]
    monkeypatch.delenv("HODEI_PLUGINS_ENABLE")
    assert load_settings(config).plugins.enable == []


# -- the typed facade and the hook API version ----------------------------------------------------


def test_the_typed_facade_checks_what_a_plugin_answers(hodei_pm: HodeiPluginManager, register_plugin: Callable[..., Any]) -> None:
    @hookimpl
    def hodei_provider_types():
        return [ProviderType("sloppy")]

    @hookimpl
    async def hodei_health_check(provider):
        return "fine"  # not a HealthResult

    @hookimpl
    def hodei_list_workers(provider):
        return ("not-a-worker",)

    register_plugin(module("sloppy", hodei_provider_types=hodei_provider_types, hodei_health_check=hodei_health_check,
                           hodei_list_workers=hodei_list_workers), name="sloppy")
    hooks = hodei_pm.provider_hooks
    assert hodei_pm.provider_hooks is hooks
    with pytest.raises(TypeError, match="'sloppy' answered hodei_health_check with str, not a HealthResult"):
        anyio.run(hooks.health_check, provider_of("sloppy"), 1.0)
    with pytest.raises(TypeError, match="answered hodei_list_workers with str, not a BackendWorker"):
        anyio.run(hooks.list_workers, provider_of("sloppy"), 1.0)
    with pytest.raises(UnknownProviderType):
        anyio.run(hooks.capacity, provider_of("sloppy"), 1.0)


@pytest.mark.parametrize("declared, loaded, reason", [
    (None, True, ""),  # plugins written before the declaration: taken to be built for this version
    (API_VERSION, True, ""),
    (f"{API_VERSION.split('.')[0]}.0", True, ""),
    (f"{int(API_VERSION.split('.')[0]) + 1}.0", False, "a new major version is a breaking change"),
    ("0.9", False, "a new major version is a breaking change"),
    (f"{API_VERSION.split('.')[0]}.{int(API_VERSION.split('.')[1]) + 1}", False, "upgrade Hodei"),
    ("1", False, "must be a string 'MAJOR.MINOR'"),
    (1.0, False, "must be a string 'MAJOR.MINOR'"),
])
def test_a_plugin_built_for_another_api_version_is_refused_with_the_reason(
        declared: Any, loaded: bool, reason: str) -> None:
    plugin = type_plugin("versioned")
    if declared is not None:
        plugin.HODEI_API_VERSION = declared
    pm = make_plugin_manager(load_entry_points=False, plugins=[("versioned", plugin)])
    assert ("versioned" in pm.provider_types) is loaded
    errors = [e.error for e in pm.load_errors if e.name == "versioned"]
    if loaded:
        assert errors == []
    else:
        assert len(errors) == 1 and errors[0].startswith("refused: ") and reason in errors[0], errors
