"""The backend hooks: health, capacity, provision, deprovision and listing, against the Kubernetes API.

Blocking, and imports the ``kubernetes`` SDK (through :mod:`hodei_k8s.client`): each hook runs one
of these functions in a worker thread with ``hodei.run_sdk_call``, which imports this module in
that thread and passes the call's :class:`hodei.Deadline` last, so no request outlives the hook's
timeout and the event loop never waits on the API server.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from hodei import (
    BackendWorker,
    Capacity,
    Deadline,
    HealthResult,
    JobFailed,
    Provider,
    Resources,
    WorkerHandle,
    WorkerRequest,
)

from hodei_k8s import nodes
from hodei_k8s.client import ApiException, api_for, describe, status_message
from hodei_k8s.pod import (
    backend_worker,
    belongs_to,
    build_pod,
    build_token_secret,
    is_active,
    is_terminating,
    label_selector,
)

log = logging.getLogger(__name__)

# Verbs provisioning and deprovisioning use besides listing pods, which the health check does itself.
NEEDED_PERMISSIONS = (("create", "pods"), ("delete", "pods"), ("create", "secrets"))
# Without these no worker can start (a pod and its token secret are created per worker): Unhealthy, the
# seed's "cannot accept new workers". Without delete pods, workers start but cannot be released: Degraded.
TO_START = {"create pods", "create secrets"}
# Node shapes change with the cluster's node pools, not from one job to the next.
NODE_CACHE_SECONDS = 60.0


class BackendError(Exception):
    """A call to the API server failed; the message is safe to log (it never holds the token)."""


# -- health -----------------------------------------------------------------------------------

def health_check(provider: Provider, deadline: Deadline) -> HealthResult:
    """Unhealthy when pods cannot be listed, or no worker can start (creating pods or secrets is denied);
    Degraded when workers can start but something else is denied (listing or deleting pods).

    The deadline ends a little before the core's timeout, so a slow API server is reported with
    this plugin's reason instead of the core's bare timeout.
    """
    namespace = provider.config["namespace"]
    seconds = deadline.timeout
    try:
        api = api_for(provider.id, provider.config, deadline)
        api.list_pods(namespace, deadline, limit=1)
    except ApiException as error:
        if error.status == 403:
            return HealthResult.degraded(f"may not list pods in namespace {namespace!r}: {status_message(error)}")
        return HealthResult.unhealthy(describe(error, seconds))
    except Exception as error:  # a health check reports; it does not raise
        return HealthResult.unhealthy(describe(error, seconds))
    try:
        denied = [f"{verb} {resource}" for verb, resource in NEEDED_PERMISSIONS
                  if api.can_i(verb, resource, namespace, deadline) is False]
    except ApiException as error:
        if error.status in (403, 404):  # the server will not say; provisioning will find out
            return HealthResult.healthy()
        return HealthResult.unhealthy(describe(error, seconds))
    except Exception as error:
        return HealthResult.unhealthy(describe(error, seconds))
    if denied:
        problem = f"the API answers, but these credentials may not {', '.join(denied)} in namespace {namespace!r}"
        if TO_START & set(denied):
            return HealthResult.unhealthy(f"no worker can start: {problem}")
        return HealthResult.degraded(problem)
    return HealthResult.healthy()


# -- capacity ---------------------------------------------------------------------------------

_node_cache: dict[uuid.UUID, tuple[float, tuple[Any, ...], Resources]] = {}
_node_cache_lock = threading.Lock()


def _node_key(config: Mapping[str, Any]) -> tuple[Any, ...]:
    return (config["kubeconfig_path"], config["kubeconfig_context"], tuple(sorted(config["node_selector"].items())),
            repr(config["tolerations"]), config["gpu_resource"])


def _per_worker(provider: Provider, deadline: Deadline) -> Resources:
    config = provider.config
    capabilities = config.get("capabilities") or {}
    if all(capabilities.get(name) is not None for name in ("cpu", "memory", "gpu")):
        return Resources()  # the config says it all and the core applies it: nothing to discover
    key = _node_key(config)
    with _node_cache_lock:
        cached = _node_cache.get(provider.id)
    if cached is not None and cached[1] == key and cached[0] > time.monotonic():
        return cached[2]
    api = api_for(provider.id, config, deadline)
    selector = ",".join(f"{k}={v}" for k, v in config["node_selector"].items()) or None
    try:
        found = nodes.largest_worker(api.list_nodes(selector, deadline), config)
    except ApiException as error:
        if error.status not in (403, 404):
            raise
        # Nodes are cluster-scoped: a namespaced Role cannot grant reading them. Unknown is an answer.
        log.debug("provider %s may not list nodes (%s); per-worker resources unknown", provider.id, error.status)
        found = Resources()
    with _node_cache_lock:
        _node_cache[provider.id] = (time.monotonic() + NODE_CACHE_SECONDS, key, found)
    return found


def forget_nodes() -> None:
    """Drop what capacity learned about nodes (tests; a cluster whose node pools just changed)."""
    with _node_cache_lock:
        _node_cache.clear()


def _workers(provider: Provider, deadline: Deadline) -> list[dict[str, Any]]:
    namespace = provider.config["namespace"]
    api = api_for(provider.id, provider.config, deadline)
    try:
        pods = api.list_all_pods(namespace, label_selector(provider.id), deadline)
    except ApiException as error:
        raise BackendError(f"listing pods in namespace {namespace!r} failed: {describe(error, deadline.timeout)}") \
            from None
    return [pod for pod in pods if belongs_to(pod, provider.id)]


def capacity(provider: Provider, deadline: Deadline) -> Capacity:
    active = sum(1 for pod in _workers(provider, deadline) if is_active(pod))
    return Capacity(active_workers=active, per_worker=_per_worker(provider, deadline))


# -- provision --------------------------------------------------------------------------------

def provision(provider: Provider, request: WorkerRequest, deadline: Deadline) -> WorkerHandle:
    seconds = deadline.timeout
    config = provider.config
    namespace = config["namespace"]
    api = api_for(provider.id, config, deadline)
    pod = build_pod(config, provider.id, request)
    name = pod["metadata"]["name"]
    try:
        created = api.create_pod(namespace, pod, deadline)
    except ApiException as error:
        if error.status == 422:
            # The API server refused the pod built from the job's spec (image, command, env, labels): the
            # job's failure, not the cluster's (hodei.JobFailed).
            raise JobFailed(f"the cluster refused the job's pod {name!r}: {describe(error, seconds)}") from None
        raise BackendError(f"creating pod {name!r} in namespace {namespace!r} failed: "
                             f"{describe(error, seconds)}") from None
    uid = (created.get("metadata") or {}).get("uid")
    try:
        if not uid:
            raise BackendError("the API server returned the pod without a uid")
        api.create_secret(namespace, build_token_secret(pod, uid, request.token, request.secret_env), deadline)
    except Exception as error:
        # The pod would wait for its token forever: remove it now rather than leave it to reconciliation.
        _delete_quietly(provider, name, seconds)
        # Only the status: the SDK's own errors can carry the request body, and this body is the token.
        status = f"{error.status} {error.reason}" if isinstance(error, ApiException) else type(error).__name__
        raise BackendError(f"creating the token Secret of pod {name!r} failed ({status}); pod deleted") from None
    log.info("provider %s started worker %s as pod %s/%s", provider.id, request.worker_id, namespace, name)
    return WorkerHandle(request.worker_id, backend_id=name, details={"namespace": namespace, "pod_uid": uid})


def _delete_quietly(provider: Provider, name: str, seconds: float) -> None:
    # A deadline of its own: the provision's may be spent, and the pod must not be left behind.
    cleanup = Deadline(seconds)
    try:
        api_for(provider.id, provider.config, cleanup).delete_pod(provider.config["namespace"], name, cleanup)
    except Exception as error:
        log.warning("could not delete pod %s after a failed provision: %s; reconciliation will find it",
                    name, describe(error, seconds))


# -- deprovision and listing --------------------------------------------------------------------

def deprovision(provider: Provider, handle: WorkerHandle, deadline: Deadline) -> bool:
    namespace = handle.details.get("namespace") or provider.config["namespace"]
    try:
        api_for(provider.id, provider.config, deadline).delete_pod(namespace, handle.backend_id, deadline)
    except ApiException as error:
        if error.status != 404:  # already gone is what we wanted
            raise BackendError(f"deleting pod {handle.backend_id!r} in namespace {namespace!r} failed: "
                                 f"{describe(error, deadline.timeout)}") from None
    return True


def list_workers(provider: Provider, deadline: Deadline) -> list[BackendWorker]:
    # A pod being deleted was deprovisioned already: listing it would have reconciliation delete it again.
    return [backend_worker(pod) for pod in _workers(provider, deadline) if not is_terminating(pod)]
