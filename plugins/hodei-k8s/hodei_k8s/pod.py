"""The objects a worker is made of, as plain Kubernetes API JSON: its pod and the Secret holding its token.

Pure functions of the provider's config and the request, so every field can be checked without a
cluster, and the same dicts go to the API server unchanged (the client accepts dicts as bodies).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hodei import BackendWorker, WorkerRequest

from hodei_k8s.names import check_label_key, check_label_value

MANAGED_LABEL = "hodei.io/managed"
PROVIDER_LABEL = "hodei.io/provider-id"
WORKER_LABEL = "hodei.io/worker-id"
WORKER_ANNOTATION = "hodei.io/worker-id"
"""The exact worker id: a label value cannot hold every id (63 characters, a restricted alphabet)."""
LABELS_ANNOTATION = "hodei.io/labels"
"""The request's labels as JSON, all of them, including those Kubernetes would not take as labels."""

CONTAINER_NAME = "worker"
TOKEN_KEY = "token"
# A job's secret variable NAME is the Secret's key env.NAME (env names are valid Secret keys).
SECRET_ENV_KEY_PREFIX = "env."
NAME_PREFIX = "hodei-worker-"
# A pod's hostname is its name cut to 63 characters: keep the whole name within a DNS label.
NAME_MAX_LENGTH = 63
_HASH_LENGTH = 10
_NOT_IN_LABEL = re.compile(r"[^a-z0-9-]+")
_NOT_IN_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")

# Pod phases a worker no longer runs in: it holds no resources, though its pod is still there.
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]


def pod_name(worker_id: str) -> str:
    """``hodei-worker-<worker id>``, made a DNS-1123 label; a digest keeps altered ids apart."""
    readable = _NOT_IN_LABEL.sub("-", worker_id.lower()).strip("-")
    name = NAME_PREFIX + readable
    if readable == worker_id and len(name) <= NAME_MAX_LENGTH:
        return name
    keep = NAME_MAX_LENGTH - len(NAME_PREFIX) - _HASH_LENGTH - 1
    readable = readable[:keep].rstrip("-")
    return f"{NAME_PREFIX}{readable}-{_digest(worker_id)}" if readable else f"{NAME_PREFIX}{_digest(worker_id)}"


def worker_label_value(worker_id: str) -> str:
    """The worker id when it is a valid label value, else a valid value derived from it."""
    try:
        return check_label_value(worker_id)
    except ValueError:
        readable = _NOT_IN_LABEL_VALUE.sub("-", worker_id).strip("-_.")[:63 - _HASH_LENGTH - 1].rstrip("-_.")
        return f"{readable}-{_digest(worker_id)}" if readable else _digest(worker_id)


def selector_labels(provider_id: uuid.UUID) -> dict[str, str]:
    """The labels every worker pod of this provider carries, and nothing else's does."""
    return {MANAGED_LABEL: "true", PROVIDER_LABEL: str(provider_id)}


def label_selector(provider_id: uuid.UUID) -> str:
    return ",".join(f"{key}={value}" for key, value in selector_labels(provider_id).items())


def _extra_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The request's labels that Kubernetes takes as pod labels and that do not pose as Hodei's own."""
    kept = {}
    for key, value in labels.items():
        try:
            check_label_key(key)
            check_label_value(value)
        except ValueError:
            continue
        if key.split("/")[0] != "hodei.io":
            kept[key] = value
    return kept


def millicores(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def resources(config: Mapping[str, Any], request: WorkerRequest) -> dict[str, dict[str, str]]:
    """Requests equal to limits: the worker gets exactly what selection counted on (QoS ``Guaranteed``)."""
    defaults = config["default_resources"]
    cpu = request.cpu if request.cpu is not None else defaults["cpu"]
    memory = request.memory if request.memory is not None else defaults["memory"]
    amounts = {"cpu": millicores(cpu), "memory": str(memory)}
    if request.gpu:
        # Extended resources cannot be overcommitted: Kubernetes wants the limit, and the request equal to it.
        amounts[config["gpu_resource"]] = str(request.gpu)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _toleration(toleration: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in toleration.items() if value is not None and value != ""}


def build_pod(config: Mapping[str, Any], provider_id: uuid.UUID, request: WorkerRequest) -> dict[str, Any]:
    """The worker's pod. Its token is not in it: the pod reads it from the Secret of :func:`build_token_secret`."""
    name = pod_name(request.worker_id)
    labels = {**_extra_labels(request.labels), **selector_labels(provider_id),
              WORKER_LABEL: worker_label_value(request.worker_id)}
    annotations = {WORKER_ANNOTATION: request.worker_id}
    if request.labels:
        annotations[LABELS_ANNOTATION] = json.dumps(dict(request.labels), sort_keys=True)
    # The job's variables first; Hodei's own last, so they win (the core refuses HODEI_* job variables anyway).
    job_env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in request.env.items()]
    job_env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": name, "key": SECRET_ENV_KEY_PREFIX + key}}}
                for key in request.secret_env]
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": request.image or config["default_image"],
        "env": [
            *job_env,
            {"name": "HODEI_WORKER_ID", "value": request.worker_id},
            {"name": "HODEI_PROVIDER_ID", "value": str(provider_id)},
            {"name": "HODEI_SERVER_ADDRESS", "value": request.server_address},
            {"name": "HODEI_WORKER_TOKEN", "valueFrom": {"secretKeyRef": {"name": name, "key": TOKEN_KEY}}},
        ],
        "resources": resources(config, request),
    }
    if request.command:
        container["command"] = list(request.command)
    if config["image_pull_policy"] is not None:
        container["imagePullPolicy"] = config["image_pull_policy"]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": config["service_account"],
        "containers": [container],
    }
    if request.timeout_seconds is not None:
        spec["activeDeadlineSeconds"] = request.timeout_seconds
    if config["node_selector"]:
        spec["nodeSelector"] = dict(config["node_selector"])
    if config["tolerations"]:
        spec["tolerations"] = [_toleration(t) for t in config["tolerations"]]
    if config["image_pull_secrets"]:
        spec["imagePullSecrets"] = [{"name": secret} for secret in config["image_pull_secrets"]]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": config["namespace"], "labels": labels, "annotations": annotations},
        "spec": spec,
    }


def build_token_secret(pod: Mapping[str, Any], pod_uid: str, token: str,
                       secret_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Secret the pod reads its token (and the job's secret variables) from, owned by the pod so
    Kubernetes deletes it with the pod."""
    metadata = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "labels": dict(metadata["labels"]),
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": metadata["name"], "uid": pod_uid}],
        },
        "stringData": {TOKEN_KEY: token,
                       **{SECRET_ENV_KEY_PREFIX + key: value for key, value in (secret_env or {}).items()}},
    }


def belongs_to(pod: Mapping[str, Any], provider_id: uuid.UUID) -> bool:
    """Checked on every listed pod: the API server applies our label selector, but nothing here relies on it."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector_labels(provider_id).items())


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: Mapping[str, Any]) -> bool:
    """A worker that holds its share of the provider: not being deleted, not finished."""
    return not is_terminating(pod) and (pod.get("status") or {}).get("phase") not in FINISHED_PHASES


def backend_worker(pod: Mapping[str, Any]) -> BackendWorker:
    metadata = pod.get("metadata") or {}
    worker_id = (metadata.get("annotations") or {}).get(WORKER_ANNOTATION) \
        or (metadata.get("labels") or {}).get(WORKER_LABEL, "")
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    return BackendWorker(worker_id=worker_id, backend_id=metadata.get("name", ""), state=phase.lower(),
                         created_at=_timestamp(metadata.get("creationTimestamp")))


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None
