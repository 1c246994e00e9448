"""The pod and Secret built for a job, field by field, and how listed pods are read back. No cluster needed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hodei import BackendWorker, WorkerRequest
from hodei_k8s import hodei_validate_config
from hodei_k8s.names import check_dns1123_label, check_label_value
from hodei_k8s.pod import (
    backend_worker,
    belongs_to,
    build_pod,
    build_token_secret,
    is_active,
    pod_name,
    worker_label_value,
)
from hypothesis import given
from hypothesis import strategies as st

PROVIDER_ID = uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
FULL = {
    "namespace": "hodei-jobs", "service_account": "hodei-worker", "default_image": "registry.example/worker:v3",
    "node_selector": {"node-type": "worker", "topology.kubernetes.io/zone": "eu-west-1a"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                     "tolerationSeconds": 300},
                    {"operator": "Exists"}],
    "image_pull_secrets": ["regcred"], "image_pull_policy": "IfNotPresent",
    "default_resources": {"cpu": "500m", "memory": "768Mi"}, "gpu_resource": "nvidia.com/gpu",
}


def config(**overrides: Any) -> dict[str, Any]:
    return hodei_validate_config(provider_type="kubernetes", config={**FULL, **overrides})


def job(**fields: Any) -> WorkerRequest:
    return WorkerRequest(**{"worker_id": "w-7", "server_address": "hodei.internal:50051", "token": "tok-123",
                            **fields})


def test_every_field_of_the_pod_for_a_job() -> None:
    pod = build_pod(config(), PROVIDER_ID, job(cpu=2.5, memory=4 * 2**30, gpu=1,
                                               labels={"team": "data", "Bad Key": "x"}))
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "hodei-worker-w-7",
            "namespace": "hodei-jobs",
            "labels": {"team": "data", "hodei.io/managed": "true", "hodei.io/provider-id": str(PROVIDER_ID),
                       "hodei.io/worker-id": "w-7"},
            "annotations": {"hodei.io/worker-id": "w-7",
                            "hodei.io/labels": json.dumps({"Bad Key": "x", "team": "data"}, sort_keys=True)},
        },
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "hodei-worker",
            "nodeSelector": {"node-type": "worker", "topology.kubernetes.io/zone": "eu-west-1a"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300},
                {"operator": "Exists"},
            ],
            "imagePullSecrets": [{"name": "regcred"}],
            "containers": [{
                "name": "worker",
                "image": "registry.example/worker:v3",
                "imagePullPolicy": "IfNotPresent",
                "env": [
                    {"name": "HODEI_WORKER_ID", "value": "w-7"},
                    {"name": "HODEI_PROVIDER_ID", "value": str(PROVIDER_ID)},
                    {"name": "HODEI_SERVER_ADDRESS", "value": "hodei.internal:50051"},
                    {"name": "HODEI_WORKER_TOKEN",
                     "valueFrom": {"secretKeyRef": {"name": "hodei-worker-w-7", "key": "token"}}},
                ],
                "resources": {
                    "requests": {"cpu": "2500m", "memory": str(4 * 2**30), "nvidia.com/gpu": "1"},
                    "limits": {"cpu": "2500m", "memory": str(4 * 2**30), "nvidia.com/gpu": "1"},
                },
            }],
        },
    }


def test_the_token_is_nowhere_in_the_pod() -> None:
    assert "tok-123" not in json.dumps(build_pod(config(), PROVIDER_ID, job()))


def test_a_job_asking_for_nothing_gets_the_default_resources_and_no_gpu() -> None:
    resources = build_pod(config(), PROVIDER_ID, job())["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "500m", "memory": str(768 * 2**20)},
                         "limits": {"cpu": "500m", "memory": str(768 * 2**20)}}


def test_gpus_are_requested_as_the_configured_resource() -> None:
    limits = build_pod(config(gpu_resource="amd.com/gpu"), PROVIDER_ID, job(gpu=2))["spec"]["containers"][0][
        "resources"]["limits"]
    assert limits["amd.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in limits


def test_a_minimal_config_leaves_optional_fields_out() -> None:
    minimal = hodei_validate_config(provider_type="kubernetes", config={})
    pod = build_pod(minimal, PROVIDER_ID, job())
    assert set(pod["spec"]) == {"restartPolicy", "serviceAccountName", "containers"}
    assert "imagePullPolicy" not in pod["spec"]["containers"][0]
    assert "hodei.io/labels" not in pod["metadata"]["annotations"]
    assert (pod["metadata"]["namespace"], pod["spec"]["serviceAccountName"]) == ("default", "default")


def test_job_labels_cannot_pose_as_hodeis_own() -> None:
    labels = build_pod(config(), PROVIDER_ID, job(labels={"hodei.io/provider-id": "someone-else",
                                                          "hodei.io/extra": "x"}))["metadata"]["labels"]
    assert labels["hodei.io/provider-id"] == str(PROVIDER_ID)
    assert "hodei.io/extra" not in labels


def test_the_token_secret_is_owned_by_the_pod_and_carries_its_labels() -> None:
    pod = build_pod(config(), PROVIDER_ID, job())
    secret = build_token_secret(pod, "pod-uid-1", "tok-123")
    assert secret == {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "hodei-worker-w-7", "namespace": "hodei-jobs", "labels": pod["metadata"]["labels"],
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "hodei-worker-w-7",
                                          "uid": "pod-uid-1"}]},
        "stringData": {"token": "tok-123"},
    }


# -- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("worker_id, name", [
    ("w-7", "hodei-worker-w-7"),
    ("0f8fad5b-d9cb-469f-a165-70867728950e", "hodei-worker-0f8fad5b-d9cb-469f-a165-70867728950e"),
])
def test_a_worker_id_that_fits_is_the_pod_name_as_it_is(worker_id: str, name: str) -> None:
    assert pod_name(worker_id) == name


def test_altered_worker_ids_stay_apart() -> None:
    assert pod_name("Job_1") != pod_name("job-1")
    assert pod_name("x" * 100) != pod_name("x" * 101)


@given(st.text(min_size=1, max_size=300))
def test_any_worker_id_makes_a_valid_pod_name_and_label_value(worker_id: str) -> None:
    assert check_dns1123_label(pod_name(worker_id))
    check_label_value(worker_label_value(worker_id))


# -- reading pods back ------------------------------------------------------------------------

def test_a_listed_pod_is_read_back_as_a_backend_worker() -> None:
    pod = build_pod(config(), PROVIDER_ID, job(worker_id="Job 42"))
    pod["metadata"]["creationTimestamp"] = "2026-01-02T03:04:05Z"
    pod["status"] = {"phase": "Running"}
    assert backend_worker(pod) == BackendWorker("Job 42", pod_name("Job 42"), "running",
                                                datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


def test_a_pod_with_no_status_yet_is_pending() -> None:
    assert backend_worker(build_pod(config(), PROVIDER_ID, job())).state == "pending"


@pytest.mark.parametrize("labels, mine", [
    ({"hodei.io/managed": "true", "hodei.io/provider-id": str(PROVIDER_ID)}, True),
    ({"hodei.io/managed": "true", "hodei.io/provider-id": str(uuid.uuid4())}, False),
    ({"hodei.io/provider-id": str(PROVIDER_ID)}, False),
    ({}, False),
])
def test_a_pod_belongs_to_a_provider_only_by_both_labels(labels: dict[str, str], mine: bool) -> None:
    assert belongs_to({"metadata": {"labels": labels}}, PROVIDER_ID) is mine


@pytest.mark.parametrize("pod, active", [
    ({"status": {"phase": "Pending"}}, True),
    ({"status": {"phase": "Running"}}, True),
    ({}, True),
    ({"status": {"phase": "Succeeded"}}, False),
    ({"status": {"phase": "Failed"}}, False),
    ({"metadata": {"deletionTimestamp": "2026-01-02T03:04:05Z"}, "status": {"phase": "Running"}}, False),
])
def test_only_pods_still_running_a_worker_are_active(pod: dict[str, Any], active: bool) -> None:
    assert is_active(pod) is active
