"""The ``kubernetes`` provider type's config: the shared contract, Kubernetes' name rules, properties."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hodei import ConfigError
from hodei.testing.contract import ConfigContract
from hodei_k8s import hodei_validate_config
from hypothesis import given
from hypothesis import strategies as st

SEED = {
    "type": "kubernetes", "kubeconfig_path": None, "namespace": "hodei-jobs", "service_account": "hodei-worker",
    "default_image": "hodei-jobs-worker:latest", "node_selector": {"node-type": "worker"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}],
}

# The seed's SQL example: what a row written before node_selector and tolerations existed holds.
SEED_SQL_ROW = {"type": "kubernetes", "namespace": "hodei-jobs", "service_account": "hodei-worker",
                "default_image": "hodei-jobs-worker:v3"}

# What a real deployment needs beyond the seed's keys, at their defaults.
DEPLOYMENT_DEFAULTS = {
    "kubeconfig_context": None, "image_pull_secrets": [], "image_pull_policy": None,
    "default_resources": {"cpu": 1.0, "memory": 2**30}, "gpu_resource": "nvidia.com/gpu",
}

DEFAULTS = {
    "type": "kubernetes", "capabilities": None, "kubeconfig_path": None, "namespace": "default",
    "service_account": "default", "default_image": "hodei-jobs-worker:latest", "node_selector": {},
    "tolerations": [], "allowed_images": ["hodei-jobs-worker:latest"], **DEPLOYMENT_DEFAULTS,
}


def validate(config: Any) -> dict[str, Any]:
    return hodei_validate_config(provider_type="kubernetes", config=config)


def refused(config: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate(config)
    return [(p.field, p.reason) for p in info.value.problems]


def refused_fields(config: Any) -> list[str]:
    return [field for field, _ in refused(config)]


def with_toleration(**toleration: Any) -> dict[str, Any]:
    return {**SEED, "tolerations": [toleration]}


def with_selector(selector: Any) -> dict[str, Any]:
    return {**SEED, "node_selector": selector}


class TestKubernetesConfigContract(ConfigContract):
    config_fields = ("kubeconfig_path", "kubeconfig_context", "namespace", "service_account", "default_image",
                     "node_selector", "tolerations", "image_pull_secrets", "image_pull_policy", "default_resources",
                     "default_resources.cpu", "default_resources.memory", "gpu_resource")
    sdk_modules = ("kubernetes",)
    provider_type = "kubernetes"

    @pytest.fixture
    def valid_config(self) -> dict[str, Any]:
        return copy.deepcopy(SEED)

    @pytest.fixture
    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        bad_values = {
            "kubeconfig_path": [3, "", " ", "/etc/\0kubeconfig", ["~/.kube/config"], False],
            "namespace": [None, 3, "", "Hodei-Jobs", "hodei_jobs", "hodei.jobs", "-hodei", "hodei-", "a" * 64],
            "service_account": [None, 3, "", "Hodei", "hodei_worker", "hodei..worker", ".hodei", "a" * 254,
                                "hodei-worker-"],
            "default_image": [None, 3, "", " hodei", "hodei worker:latest", "hodei\tworker"],
            "node_selector": [None, [], "node-type=worker"],
            "tolerations": [None, {}, "dedicated=worker:NoSchedule"],
            "image_pull_secrets": [None, "regcred", {}],
            "image_pull_policy": ["always", "", 3],
            "default_resources": [None, [], "1Gi"],
            "gpu_resource": [None, "", "gpu", "nvidia.com/", "kubernetes.io/gpu", "node.kubernetes.io/gpu",
                             "Nvidia.com/gpu", "nvidia.com/g pu"],
        }
        cases = [({**SEED, field: value}, field) for field, values in bad_values.items() for value in values]
        cases += [({**SEED, "tolerations": [None]}, "tolerations[0]"),
                  ({**SEED, "tolerations": ["dedicated"]}, "tolerations[0]"),
                  ({**SEED, "image_pull_secrets": ["regcred", "Reg_Cred"]}, "image_pull_secrets[1]"),
                  ({**SEED, "kubeconfig_context": "prod"}, "kubeconfig_context"),
                  ({**SEED, "kubeconfig_path": "/k", "kubeconfig_context": ""}, "kubeconfig_context"),
                  ({**SEED, "kubeconfig_path": "/k", "kubeconfig_context": 3}, "kubeconfig_context")]
        resource_cases = [
            ({"cpu": 0}, "cpu"), ({"cpu": "0.5m"}, "cpu"), ({"cpu": 0.0015}, "cpu"), ({"cpu": "2Gi"}, "cpu"),
            ({"cpu": True}, "cpu"), ({"memory": 0}, "memory"), ({"memory": "lots"}, "memory"),
            ({"memory": -1}, "memory"), ({"gpu": 1}, "gpu"),
        ]
        cases += [({**SEED, "default_resources": resources}, f"default_resources.{field}")
                  for resources, field in resource_cases]
        # A bad key is reported on the map itself, the key quoted in the reason.
        selector_cases = [
            ({"Node Type": "worker"}, "node_selector"),
            ({"-node": "worker"}, "node_selector"),
            ({"/node": "worker"}, "node_selector"),
            ({"example.com/": "worker"}, "node_selector"),
            ({"Example.com/node": "worker"}, "node_selector"),
            ({"a/b/c": "worker"}, "node_selector"),
            ({"n" * 64: "worker"}, "node_selector"),
            ({"node-type": "worker!"}, "node_selector.node-type"),
            ({"node-type": "-worker"}, "node_selector.node-type"),
            ({"node-type": "w" * 64}, "node_selector.node-type"),
            ({"node-type": 3}, "node_selector.node-type"),
            ({"node-type": None}, "node_selector.node-type"),
        ]
        cases += [(with_selector(selector), field) for selector, field in selector_cases]
        toleration_cases = [
            ({"key": "dedicated", "operator": "In", "value": "worker"}, "operator"),
            ({"key": "dedicated", "operator": "equal", "value": "worker"}, "operator"),
            ({"key": "dedicated", "operator": "Exists", "value": "worker"}, "value"),
            ({"key": "", "operator": "Equal", "value": "worker"}, "operator"),
            ({"value": "worker"}, "operator"),
            ({"key": "Bad Key", "operator": "Exists"}, "key"),
            ({"key": "dedicated", "value": "bad value"}, "value"),
            ({"key": "dedicated", "value": "v" * 64}, "value"),
            ({"key": "dedicated", "value": "worker", "effect": "NoSchedules"}, "effect"),
            ({"key": "dedicated", "value": "worker", "effect": ""}, "effect"),
            ({"key": "dedicated", "value": "worker", "effect": "NoSchedule", "tolerationSeconds": 60},
             "tolerationSeconds"),
            ({"key": "dedicated", "operator": "Exists", "tolerationSeconds": 60}, "tolerationSeconds"),
            ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": -1},
             "tolerationSeconds"),
            ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2**63},
             "tolerationSeconds"),
            ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": "60"},
             "tolerationSeconds"),
            ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60.0},
             "tolerationSeconds"),
            ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": True},
             "tolerationSeconds"),
            ({"key": "dedicated", "operator": "Exists", "toleration_seconds": 60}, "toleration_seconds"),
            ({"key": 3, "operator": "Exists"}, "key"),
            ({"key": "dedicated", "value": None}, "value"),
        ]
        cases += [(with_toleration(**toleration), f"tolerations[0].{field}")
                  for toleration, field in toleration_cases]
        return cases


def test_seed_config_validates_and_is_normalised() -> None:
    assert validate(SEED) == {
        **SEED, "capabilities": None, **DEPLOYMENT_DEFAULTS,
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule",
                         "tolerationSeconds": None}],
        "allowed_images": [SEED["default_image"]],
    }


def test_seed_sql_row_validates_with_defaults_for_the_rest() -> None:
    expected = {**DEFAULTS, **SEED_SQL_ROW}
    assert validate(SEED_SQL_ROW) == {**expected, "allowed_images": [expected["default_image"]]}


def test_every_key_has_the_documented_default() -> None:
    assert validate({"type": "kubernetes"}) == DEFAULTS


def test_kubeconfig_path_may_name_a_file() -> None:
    assert validate({"kubeconfig_path": "~/.kube/config"})["kubeconfig_path"] == "~/.kube/config"


def test_a_kubeconfig_context_is_kept_with_its_kubeconfig() -> None:
    normalised = validate({"kubeconfig_path": "/etc/hodei/kubeconfig", "kubeconfig_context": "prod-eu"})
    assert normalised["kubeconfig_context"] == "prod-eu"


def test_a_kubeconfig_context_without_a_kubeconfig_is_refused_naming_the_context() -> None:
    assert refused({"kubeconfig_context": "prod-eu"}) == [
        ("kubeconfig_context", "needs kubeconfig_path: in-cluster configuration has no contexts")]


def test_deployment_settings_are_normalised() -> None:
    normalised = validate({"image_pull_secrets": ["regcred", "mirror.creds"], "image_pull_policy": "IfNotPresent",
                           "default_resources": {"cpu": "250m", "memory": "512Mi"}, "gpu_resource": "amd.com/gpu"})
    assert normalised["image_pull_secrets"] == ["regcred", "mirror.creds"]
    assert normalised["image_pull_policy"] == "IfNotPresent"
    assert normalised["default_resources"] == {"cpu": 0.25, "memory": 512 * 2**20}
    assert normalised["gpu_resource"] == "amd.com/gpu"


def test_default_resources_keep_the_default_of_a_key_left_out() -> None:
    assert validate({"default_resources": {"cpu": 2}})["default_resources"] == {"cpu": 2.0, "memory": 2**30}


def test_cpu_below_a_millicore_is_refused_with_kubernetes_resolution() -> None:
    assert refused({"default_resources": {"cpu": "0.5m"}}) == [
        ("default_resources.cpu", "must be at least 1m (0.001 cores), Kubernetes' CPU resolution, got 0.0005")]


def test_gpu_resource_must_be_domain_prefixed() -> None:
    [(field, reason)] = refused({"gpu_resource": "gpu"})
    assert field == "gpu_resource"
    assert "domain-prefixed" in reason


# -- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("namespace", ["default", "hodei-jobs", "a", "0", "a" * 63, "1-2-3", "x--y"])
def test_dns1123_label_namespaces_are_accepted(namespace: str) -> None:
    assert validate({"namespace": namespace})["namespace"] == namespace


def test_uppercase_namespace_is_refused_with_the_rule() -> None:
    [(field, reason)] = refused({"namespace": "Hodei-Jobs"})
    assert field == "namespace"
    assert "DNS-1123 label" in reason


def test_namespace_of_64_characters_is_refused_with_the_length() -> None:
    assert refused({"namespace": "a" * 64}) == [
        ("namespace", "must be at most 63 characters (a DNS-1123 label), got 64")]


@pytest.mark.parametrize("account", ["default", "hodei-worker", "hodei.worker", "a.b.c", "a" * 253,
                                     ".".join(["a" * 63] * 4)[:253].rstrip(".")])
def test_dns1123_subdomain_service_accounts_are_accepted(account: str) -> None:
    assert validate({"service_account": account})["service_account"] == account


def test_service_account_of_254_characters_is_refused() -> None:
    assert refused_fields({"service_account": "a" * 254}) == ["service_account"]


@pytest.mark.parametrize("key", [
    "node-type", "kubernetes.io/hostname", "node.kubernetes.io/instance-type", "example.com/GPU_Model.v2",
    "a", "A", "n" * 63, "p" * 253 + "/name", "topology.kubernetes.io/zone",
])
def test_label_keys_with_and_without_prefix_are_accepted(key: str) -> None:
    assert validate(with_selector({key: "worker"}))["node_selector"] == {key: "worker"}


@pytest.mark.parametrize("value", ["", "worker", "Worker_1.2-b", "w" * 63, "0"])
def test_label_values_up_to_63_characters_are_accepted(value: str) -> None:
    assert validate(with_selector({"node-type": value}))["node_selector"] == {"node-type": value}


def test_label_key_prefix_longer_than_a_subdomain_is_refused() -> None:
    key = "p" * 254 + "/name"
    [(field, reason)] = refused(with_selector({key: "worker"}))
    assert field == "node_selector"
    assert reason.startswith(f"key {key!r} prefix must be at most 253 characters")


def test_every_bad_selector_entry_is_reported() -> None:
    problems = refused(with_selector({"Bad Key": "ok", "good": "bad value", "fine": "ok"}))
    assert [field for field, _ in problems] == ["node_selector", "node_selector.good"]
    assert "'Bad Key'" in problems[0][1]


# -- tolerations ------------------------------------------------------------------------------

@pytest.mark.parametrize("toleration", [
    {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},
    {"key": "dedicated", "value": "worker"},
    {"key": "dedicated", "operator": "Exists"},
    {"key": "dedicated", "operator": "Equal"},
    {"operator": "Exists"},
    {"key": "", "operator": "Exists", "effect": "NoExecute"},
    {"key": "example.com/gpu", "operator": "Exists", "effect": "PreferNoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "dedicated", "value": "worker", "effect": "NoExecute", "tolerationSeconds": 0},
    {"key": "dedicated", "value": "worker", "effect": "NoExecute", "tolerationSeconds": 2**63 - 1},
    {"key": "dedicated", "value": "worker", "effect": None, "tolerationSeconds": None},
])
def test_kubernetes_valid_tolerations_are_accepted(toleration: dict[str, Any]) -> None:
    [normalised] = validate(with_toleration(**toleration))["tolerations"]
    assert normalised == {"key": "", "operator": "Equal", "value": "", "effect": None, "tolerationSeconds": None,
                          **toleration}


def test_exists_with_a_value_is_refused_naming_the_value() -> None:
    assert refused(with_toleration(key="dedicated", operator="Exists", value="worker")) == [
        ("tolerations[0].value", "must be empty when operator is 'Exists', got 'worker'")]


def test_empty_key_with_equal_is_refused_naming_the_operator() -> None:
    assert refused_fields(with_toleration(key="", value="worker")) == ["tolerations[0].operator"]


def test_toleration_seconds_without_no_execute_is_refused_naming_it() -> None:
    assert refused(with_toleration(key="dedicated", operator="Exists", effect="NoSchedule", tolerationSeconds=5)) == [
        ("tolerations[0].tolerationSeconds", "is allowed only with effect 'NoExecute', got effect 'NoSchedule'")]


def test_each_bad_toleration_is_named_by_its_index() -> None:
    tolerations = [{"key": "ok", "operator": "Exists"}, {"key": "bad", "operator": "Exists", "value": "x"},
                   {"key": "ok", "value": "ok"}, {"key": "Bad Key", "value": "ok"}]
    assert refused_fields({"tolerations": tolerations}) == ["tolerations[1].value", "tolerations[3].key"]


# -- properties -------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70)
toleration_values = st.fixed_dictionaries({}, optional={
    "key": json_scalars | st.sampled_from(["", "dedicated", "example.com/gpu"]),
    "operator": json_scalars | st.sampled_from(["Exists", "Equal"]),
    "value": json_scalars | st.sampled_from(["", "worker"]),
    "effect": json_scalars | st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
    "tolerationSeconds": json_scalars,
})

def assert_accepted_or_refused_naming(field: str, config: dict[str, Any]) -> None:
    try:
        normalised = validate(config)
    except ConfigError as error:
        for problem in error.problems:
            assert problem.field == field or problem.field.startswith((f"{field}.", f"{field}[")), problem
    else:
        assert validate(normalised) == normalised


@given(st.lists(toleration_values, max_size=3))
def test_any_tolerations_are_accepted_or_refused_naming_the_tolerations(tolerations: list[dict[str, Any]]) -> None:
    assert_accepted_or_refused_naming("tolerations", {**SEED, "tolerations": tolerations})


_label = st.from_regex(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
_label_name = st.from_regex(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True)
_prefix = st.lists(_label, min_size=1, max_size=4).map(".".join).filter(lambda prefix: len(prefix) <= 253)
_label_keys = st.tuples(st.none() | _prefix, _label_name).map(
    lambda parts: parts[1] if parts[0] is None else f"{parts[0]}/{parts[1]}")
_label_values = st.just("") | _label_name


@given(namespace=_label, selector=st.dictionaries(_label_keys, _label_values, max_size=4))
def test_names_kubernetes_accepts_are_accepted(namespace: str, selector: dict[str, str]) -> None:
    normalised = validate({"namespace": namespace, "node_selector": selector})
    assert (normalised["namespace"], normalised["node_selector"]) == (namespace, selector)
