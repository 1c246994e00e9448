"""What one worker can get: the largest node a worker pod could be scheduled on.

Pure functions of node objects (API JSON) and the provider's config: a node counts when it matches
``node_selector``, is schedulable, and every ``NoSchedule``/``NoExecute`` taint on it is tolerated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hodei import Resources
from hodei.quantity import parse_cpu, parse_memory

# Taints that keep a pod off a node; PreferNoSchedule only makes the scheduler reluctant.
_REPELLING_EFFECTS = ("NoSchedule", "NoExecute")


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' own rule (k8s.io/api/core/v1 Toleration.ToleratesTaint)."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def schedulable(node: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    metadata, spec = node.get("metadata") or {}, node.get("spec") or {}
    labels = metadata.get("labels") or {}
    if any(labels.get(key) != value for key, value in config["node_selector"].items()):
        return False
    if spec.get("unschedulable"):
        return False
    return all(any(tolerates(t, taint) for t in config["tolerations"])
               for taint in spec.get("taints") or () if taint.get("effect") in _REPELLING_EFFECTS)


def _quantity(parse: Any, value: Any) -> Any:
    try:
        return parse(value) if value is not None else None
    except ValueError:  # a form hodei.quantity does not read ("1e3"): unknown rather than wrong
        return None


def allocatable(node: Mapping[str, Any], gpu_resource: str) -> Resources:
    amounts = (node.get("status") or {}).get("allocatable") or {}
    return Resources(cpu=_quantity(parse_cpu, amounts.get("cpu")),
                     memory=_quantity(parse_memory, amounts.get("memory")),
                     # A count; parse_memory reads plain integers, and "0" when the node has none.
                     gpu=_quantity(parse_memory, amounts.get(gpu_resource, "0")))


def largest_worker(nodes: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> Resources:
    """The allocatable resources of the node with the most CPU (then memory, then GPUs) a worker may use.

    One node, not the maximum of each resource over all nodes: a worker gets one node's resources.
    No eligible node: nothing is known (``Resources()``), so selection only sends jobs asking for nothing.
    """
    candidates = [allocatable(node, config["gpu_resource"]) for node in nodes if schedulable(node, config)]
    if not candidates:
        return Resources()
    return max(candidates, key=lambda r: (r.cpu or 0.0, r.memory or 0, r.gpu or 0))
