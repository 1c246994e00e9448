"""The contract suites plugins run from their own ``tests/``: :class:`ProviderContract` for a provider
type, :class:`SelectionContract` for selection rules.

Subclass in a test module (pytest collects the inherited tests)::

    from hodei.testing.contract import ConfigContract

    class TestDockerConfig(ConfigContract):
        provider_type = "docker"

        @pytest.fixture
        def valid_config(self):
            return {"type": "docker", "socket_path": "/var/run/docker.sock", ...}

        @pytest.fixture
        def invalid_configs(self):
            return [({"type": "docker", "network": 3}, "network"), ...]

:class:`LifecycleContract` adds the backend hooks; its ``live_provider`` fixture returns a
:class:`hodei.Provider` whose backend is reachable (skip with
:func:`hodei.testing.backend_unavailable` when it is not).

Every hook is called the way the core calls it: routed to the plugin serving the type
(``pm.provider_hooks``, typed), never through ``pm.hook`` directly.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hodei.domain import (
    BackendWorker,
    Capacity,
    HealthResult,
    HealthStatus,
    Provider,
    ProviderState,
    WorkerHandle,
    WorkerRequest,
)
from hodei.errors import ConfigError, InvalidInput
from hodei.hookspecs import PROVIDER_HOOKS
from hodei.plugins import HodeiPluginManager
from hodei.selection import (
    FilterRule,
    IndexedFilterRule,
    Mask,
    OrderingRule,
    Reason,
    Requirements,
    ScoringRule,
    Selector,
    build_chain,
)
from hodei.selection.rules import checked_scores, is_scoring
from hodei.testing.strategies import fleets, jobs

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


def with_field(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``config`` with the value at ``a.b`` set (parents created as needed)."""
    changed = copy.deepcopy(config)
    *parents, leaf = dotted.split(".")
    target = changed
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value
    return changed


class ConfigContract:
    """What ``hodei_provider_types`` and ``hodei_validate_config`` must do for a provider type.

    Class attributes a subclass sets:

    * ``provider_type``: the type under test.
    * ``config_fields``: dotted paths of the config's fields; a property test puts random JSON in
      each and expects it accepted, or refused naming that field (never another, never a crash).
    * ``sdk_modules``: modules validation must not import (the backend SDK): validation runs for
      every row read and must stay pure and cheap.
    """

    provider_type: ClassVar[str]
    config_fields: ClassVar[Sequence[str]] = ("capabilities",)
    sdk_modules: ClassVar[Sequence[str]] = ()

    @pytest.fixture
    def valid_config(self) -> dict[str, Any]:
        raise NotImplementedError("define a valid_config fixture returning a valid config")

    @pytest.fixture
    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        """``(config, field)`` pairs: each config must be refused with ``field`` named."""
        return []

    def _validate(self, pm: HodeiPluginManager, config: Any) -> Any:
        return pm.validate_config(self.provider_type, config)

    def test_type_is_declared_by_an_installed_plugin(self, hodei_pm: HodeiPluginManager) -> None:
        assert self.provider_type in hodei_pm.provider_types, hodei_pm.load_errors

    def test_valid_config_is_accepted_and_normalised(self, hodei_pm: HodeiPluginManager, valid_config: dict[str, Any]) -> None:
        given = copy.deepcopy(valid_config)
        normalised = self._validate(hodei_pm, given)
        assert normalised is not None
        assert normalised["type"] == self.provider_type
        json.dumps(normalised)  # the core stores and sends it as JSON
        assert given == valid_config, "validation must not change its input"
        assert self._validate(hodei_pm, normalised) == normalised, "normalising twice must change nothing"

    def test_type_key_may_be_left_out(self, hodei_pm: HodeiPluginManager, valid_config: dict[str, Any]) -> None:
        without = {k: v for k, v in valid_config.items() if k != "type"}
        assert self._validate(hodei_pm, without) == self._validate(hodei_pm, valid_config)

    def test_type_key_must_match_provider_type(self, hodei_pm: HodeiPluginManager, valid_config: dict[str, Any]) -> None:
        with pytest.raises(ConfigError) as info:
            self._validate(hodei_pm, {**valid_config, "type": f"not-{self.provider_type}"})
        assert [p.field for p in info.value.problems] == ["type"]

    def test_unknown_key_is_refused_by_name(self, hodei_pm: HodeiPluginManager, valid_config: dict[str, Any]) -> None:
        with pytest.raises(ConfigError) as info:
            self._validate(hodei_pm, {**valid_config, "surely_not_a_key": 1})
        assert [(p.field, p.reason) for p in info.value.problems] == [("surely_not_a_key", "unknown key")]

    def test_config_must_be_an_object(self, hodei_pm: HodeiPluginManager) -> None:
        value: Any
        for value in ([], "docker", 3, None):
            with pytest.raises(ConfigError):
                self._validate(hodei_pm, value)

    @pytest.mark.parametrize("capabilities, field", [
        ({"cpu": -1}, "capabilities.cpu"),
        ({"memory": "lots"}, "capabilities.memory"),
        ({"gpu": 1.5}, "capabilities.gpu"),
        ({"gpu": -1}, "capabilities.gpu"),
        ({"disk": 1}, "capabilities.disk"),
    ])
    def test_bad_capabilities_are_refused_by_name(self, hodei_pm: HodeiPluginManager, valid_config: dict[str, Any], capabilities: dict[str, Any], field: str) -> None:
        with pytest.raises(ConfigError) as info:
            self._validate(hodei_pm, {**valid_config, "capabilities": capabilities})
        assert field in [p.field for p in info.value.problems]

    def test_capabilities_are_parsed(self, hodei_pm: HodeiPluginManager, valid_config: dict[str, Any]) -> None:
        normalised = self._validate(hodei_pm, {**valid_config, "capabilities": {"cpu": "500m", "memory": "16Gi", "gpu": 1}})
        assert normalised["capabilities"] == {"cpu": 0.5, "memory": 16 * 2**30, "gpu": 1}

    def test_invalid_configs_are_refused_by_field(self, hodei_pm: HodeiPluginManager, invalid_configs: list[tuple[Any, str]]) -> None:
        for config, field in invalid_configs:
            with pytest.raises(InvalidInput) as info:
                self._validate(hodei_pm, config)
            named = [p.field for p in info.value.problems]
            assert field in named, f"{config!r} should be refused naming {field!r}, named {named!r}"

    def test_provider_hooks_are_routed_to_this_plugin_for_its_type_only(self, hodei_pm: HodeiPluginManager) -> None:
        """The core asks this plugin about its own type and never about another plugin's (it routes
        by the types each plugin declares), so a plain ``@hookimpl`` needs no type check."""
        owner = hodei_pm.provider_type(self.provider_type).plugin_name

        def reached(hook: str, provider_type: str) -> set[str]:
            return {impl.plugin_name for impl in hodei_pm.provider_hook_caller(hook, provider_type).get_hookimpls()}

        assert owner in reached("hodei_validate_config", self.provider_type)
        for other, ptype in hodei_pm.provider_types.items():
            if ptype.plugin_name == owner:
                continue
            for hook in PROVIDER_HOOKS:
                assert owner not in reached(hook, other), f"{hook} for {other!r} providers reaches {owner!r}"

    # Each plugin's subclass runs this same method; the fixtures are read-only here.
    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
              deadline=None)
    @given(data=st.data())
    def test_any_json_in_any_field_is_accepted_or_refused_naming_that_field(
            self, hodei_pm: HodeiPluginManager, valid_config: dict[str, Any], data: st.DataObject) -> None:
        field = data.draw(st.sampled_from(sorted(set(self.config_fields) | {"capabilities"})), label="field")
        config = with_field(valid_config, field, data.draw(JSON_VALUES, label="value"))
        try:
            normalised = self._validate(hodei_pm, config)
        except ConfigError as error:
            for problem in error.problems:
                assert problem.field == field or problem.field.startswith((f"{field}.", f"{field}[")), problem
        else:
            assert self._validate(hodei_pm, normalised) == normalised

    def test_validation_does_not_import_the_backend_sdk(self, valid_config: dict[str, Any]) -> None:
        script = (
            "import json, sys\n"
            "from hodei.plugins import OPTIONAL_PLUGINS, make_plugin_manager\n"
            # The core's own optional types (static) load only when enabled.
            f"pm = make_plugin_manager(allow=[{self.provider_type!r}], "
            f"enable=[n for n in OPTIONAL_PLUGINS if n == {self.provider_type!r}])\n"
            f"pm.validate_config({self.provider_type!r}, json.loads(sys.argv[1]))\n"
            f"print(json.dumps(sorted(m for m in {list(self.sdk_modules)!r} if m in sys.modules)))\n"
        )
        # The same import path as this process, so the fresh interpreter finds the same plugins.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
        done = subprocess.run([sys.executable, "-c", script, json.dumps(valid_config)],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [], "validation imported the backend SDK"


class LifecycleContract:
    """What the backend hooks must do: health, capacity, provision, list, deprovision."""

    provider_type: ClassVar[str]
    timeout: ClassVar[float] = 30.0

    @pytest.fixture
    def live_provider(self) -> Provider:
        raise NotImplementedError("define a live_provider fixture returning a Provider on a reachable backend")

    def _run(self, coro_fn, *args):
        return anyio.run(coro_fn, *args)

    def test_health_check_answers_healthy_or_degraded(self, hodei_pm: HodeiPluginManager, live_provider: Provider) -> None:
        result = self._run(hodei_pm.provider_hooks.health_check, live_provider, self.timeout)
        assert isinstance(result, HealthResult)
        assert result.status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED), result.reason

    def test_capacity_reports_a_count(self, hodei_pm: HodeiPluginManager, live_provider: Provider) -> None:
        result = self._run(hodei_pm.provider_hooks.capacity, live_provider, self.timeout)
        assert isinstance(result, Capacity)
        assert result.active_workers >= 0

    def test_provision_list_deprovision_round_trip(self, hodei_pm: HodeiPluginManager, live_provider: Provider) -> None:
        hooks, timeout = hodei_pm.provider_hooks, self.timeout
        worker_id = f"contract-{uuid.uuid4().hex[:12]}"
        request = WorkerRequest(worker_id=worker_id, server_address="127.0.0.1:50051", token="s3cr3t-token")

        async def scenario() -> tuple[WorkerHandle, list[BackendWorker], list[BackendWorker], int, int]:
            before = (await hooks.capacity(live_provider, timeout)).active_workers
            handle = await hooks.provision(live_provider, request, timeout)
            try:
                listed = await hooks.list_workers(live_provider, timeout)
                during = (await hooks.capacity(live_provider, timeout)).active_workers
            finally:
                await hooks.deprovision(live_provider, handle, timeout)
            await hooks.deprovision(live_provider, handle, timeout)
            after = await hooks.list_workers(live_provider, timeout)
            return handle, listed, after, before, during

        handle, listed, after, before, during = self._run(scenario)
        assert isinstance(handle, WorkerHandle) and handle.worker_id == worker_id and handle.backend_id
        assert worker_id in [w.worker_id for w in listed]
        assert during == before + 1
        assert worker_id not in [w.worker_id for w in after], "deprovision must remove the worker"
        assert "s3cr3t-token" not in repr(request), "the worker token is a secret"


class ProviderContract(ConfigContract, LifecycleContract):
    """The whole contract: config validation and the backend lifecycle."""


class SelectionContract:
    """What a plugin's selection rules must do, checked on random fleets and jobs (Hypothesis).

    Class attributes a subclass sets:

    * ``plugin_name``: the plugin's entry point name (it is loaded as the daemon loads it).
    * ``requirement_values``: a Hypothesis strategy for each job field the rules declare
      (``requirement_fields``); a field left out keeps its default.
    * ``fleet``: the strategy for ``(providers, states by name)``; ``hodei.testing.strategies.fleets(...)``
      with the annotations and labels your rules read.
    """

    plugin_name: ClassVar[str]
    requirement_values: ClassVar[Mapping[str, st.SearchStrategy[Any]]] = {}
    fleet: ClassVar[st.SearchStrategy[tuple[list[Provider], dict[str, ProviderState]]]] = fleets()

    def _own_rules(self, pm: HodeiPluginManager) -> tuple[list[Any], list[Any]]:
        chain = build_chain(pm)
        mine = {name for name, plugin in chain.origins.items() if plugin == self.plugin_name}
        return ([f for f in chain.filters if f"filter:{f.name}" in mine],
                [s.ranker for s in chain.steps if f"ranker:{s.name}" in mine])

    def test_plugin_is_loaded_and_its_rules_join_the_chain(self, hodei_pm: HodeiPluginManager) -> None:
        assert hodei_pm.has_plugin(self.plugin_name), [e.error for e in hodei_pm.load_errors]
        chain = build_chain(hodei_pm)
        own = [p for p in chain.problems if f"plugin {self.plugin_name!r}" in p]
        assert own == [], own
        filters, rankers = self._own_rules(hodei_pm)
        assert filters or rankers, "the plugin contributes no selection rule"

    def test_every_rule_implements_a_protocol(self, hodei_pm: HodeiPluginManager) -> None:
        filters, rankers = self._own_rules(hodei_pm)
        for rule in filters:
            assert isinstance(rule, (FilterRule, IndexedFilterRule)), rule
            assert getattr(rule, "on_error", "open") in ("open", "closed"), rule.name
        for rule in rankers:
            assert isinstance(rule, ScoringRule if is_scoring(rule) else OrderingRule), rule.name

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
              deadline=None, max_examples=60)
    @given(data=st.data())
    def test_rules_answer_any_fleet_and_job_within_the_contract(
            self, hodei_pm: HodeiPluginManager, data: st.DataObject) -> None:
        """One verdict, key or score per candidate, scores finite and in [0, 1] once normalised, reasons for
        the refused, candidates left unchanged, the same answer twice, and a decision without warnings."""
        chain = build_chain(hodei_pm)
        providers, states = data.draw(self.fleet, label="fleet")
        base = data.draw(jobs, label="job")
        extra = {name: data.draw(strategy, label=name) for name, strategy in self.requirement_values.items()}
        job = chain.parse_requirements({**base.document(), **extra})
        selector = Selector(chain, providers, {p.id: states[p.name] for p in providers})
        candidates = selector.index.candidates
        before = copy.deepcopy([vars(c) for c in candidates])
        filters, rankers = self._own_rules(hodei_pm)
        for rule in filters:
            verdicts = self._verdicts(rule, selector, job)
            assert verdicts == self._verdicts(rule, selector, job), f"filter {rule.name!r} answers differently twice"
            for candidate, admitted in zip(candidates, verdicts, strict=True):
                if not admitted and callable(getattr(rule, "explain", None)):
                    reason = rule.explain(candidate, job)
                    assert reason is None or isinstance(reason, (Reason, str)), (rule.name, reason)
                elif admitted and callable(getattr(rule, "note", None)):
                    note = rule.note(candidate, job)
                    assert note is None or isinstance(note, str), (rule.name, note)
        for rule in rankers:
            if is_scoring(rule):
                checked_scores(rule, candidates, job)  # raises naming the score that breaks the contract
            else:
                assert len(list(rule.key(candidates, job))) == len(candidates), rule.name
        assert [vars(c) for c in candidates] == before, "a rule changed a candidate"
        decision = selector.decide(job, limit=None, scored=True)
        assert decision.warnings == [], decision.warnings

    @staticmethod
    def _verdicts(rule: Any, selector: Selector, job: Requirements) -> list[bool]:
        candidates = selector.index.candidates
        if isinstance(rule, IndexedFilterRule):
            mask = rule.mask(selector.index, job)
            assert isinstance(mask, Mask), f"filter {rule.name!r}: mask() returned {type(mask).__name__}, not a Mask"
            return [c in mask for c in candidates]
        verdicts = [bool(v) for v in rule.admit(candidates, job)]
        assert len(verdicts) == len(candidates), f"filter {rule.name!r}: {len(verdicts)} verdicts, {len(candidates)} candidates"
        return verdicts
