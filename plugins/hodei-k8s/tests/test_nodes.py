"""Which nodes a worker pod can land on, and what the largest of them offers."""

from __future__ import annotations

from typing import Any

import pytest
from hodei import Resources
from hodei_k8s import hodei_validate_config
from hodei_k8s.nodes import largest_worker, schedulable, tolerates


def config(**overrides: Any) -> dict[str, Any]:
    return hodei_validate_config(provider_type="kubernetes", config=overrides)


def node(cpu: str = "4", memory: str = "16Gi", labels: dict[str, str] | None = None, **extra: Any) -> dict:
    allocatable = {"cpu": cpu, "memory": memory, **extra.pop("allocatable", {})}
    return {"metadata": {"labels": labels or {}}, "spec": extra, "status": {"allocatable": allocatable}}


@pytest.mark.parametrize("toleration, taint, expected", [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
     {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
     {"key": "k", "value": "w", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
     {"key": "k", "value": "v", "effect": "NoExecute"}, False),
    ({"key": "k", "operator": "Equal", "value": "v", "effect": None},
     {"key": "k", "value": "v", "effect": "NoExecute"}, True),
    ({"key": "k", "operator": "Exists", "value": "", "effect": None},
     {"key": "k", "value": "any", "effect": "NoSchedule"}, True),
    ({"key": "", "operator": "Exists", "value": "", "effect": None},
     {"key": "x", "value": "y", "effect": "NoSchedule"}, True),
    ({"key": "other", "operator": "Exists", "value": "", "effect": None}, {"key": "k", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Equal", "value": "", "effect": None}, {"key": "k", "effect": "NoSchedule"}, True),
])
def test_tolerations_match_taints_as_kubernetes_does(toleration: dict, taint: dict, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


def test_prefer_no_schedule_taints_do_not_keep_a_worker_off() -> None:
    assert schedulable(node(taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]), config())


def test_a_node_missing_a_selected_label_is_not_a_candidate() -> None:
    cfg = config(node_selector={"node-type": "worker", "zone": "a"})
    assert schedulable(node(labels={"node-type": "worker", "zone": "a"}), cfg)
    assert not schedulable(node(labels={"node-type": "worker"}), cfg)


def test_the_node_with_most_cpu_is_reported_whole() -> None:
    nodes = [node("4", "64Gi"), node("8", "16Gi", allocatable={"nvidia.com/gpu": "2"}), node("3920m", "8Gi")]
    assert largest_worker(nodes, config()) == Resources(cpu=8.0, memory=16 * 2**30, gpu=2)


def test_no_candidate_node_means_unknown() -> None:
    assert largest_worker([node(unschedulable=True)], config()) == Resources()
    assert largest_worker([], config()) == Resources()


def test_a_quantity_this_plugin_cannot_read_is_unknown_not_wrong() -> None:
    assert largest_worker([node("4", "1e9")], config()) == Resources(cpu=4.0, memory=None, gpu=0)


def test_kubelet_style_quantities_are_read() -> None:
    assert largest_worker([node("7910m", "32765940Ki")], config()) == Resources(cpu=7.91, memory=32765940 * 1024, gpu=0)
