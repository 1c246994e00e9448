"""The backend hooks against a Kubernetes API served over HTTP (see conftest.py), through the plugin manager."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from typing import Any

import anyio
import pytest
from hodei import Capacity, HealthStatus, Provider, Resources, WorkerHandle, WorkerRequest
from hodei.calls import call_provider_hook
from hodei.errors import JobFailed
from hodei_k8s.backend import BackendError

TIMEOUT = 5.0


def call(pm, hook: str, provider: Provider, timeout: float = TIMEOUT, **kwargs: Any) -> Any:
    """Call a hook as the core does: routed by the plugin manager, under ``call_provider_hook``'s timeout."""
    return anyio.run(functools.partial(call_provider_hook, pm, hook, provider, timeout, **kwargs))


def request(worker_id: str = "w-1", **fields: Any) -> WorkerRequest:
    return WorkerRequest(worker_id=worker_id, server_address="hodei.example:50051", token="one-time-s3cret", **fields)


def foreign_pod(name: str, labels: dict[str, str], namespace: str = "hodei-jobs", phase: str = "Running") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": phase}}


def node(name: str, cpu: str, memory: str, labels: dict[str, str] | None = None, **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec, "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}}


# -- health -----------------------------------------------------------------------------------

def test_health_is_healthy_when_pods_can_be_listed_and_every_verb_is_allowed(hodei_pm, cluster, provider) -> None:
    result = call(hodei_pm, "hodei_health_check", provider)
    assert result.status is HealthStatus.HEALTHY, result.reason
    [listing] = [r for r in cluster.requests() if r.resource is not None and r.resource.plural == "pods"]
    assert (listing.method.value, listing.namespace, listing.params.get("limit")) == ("GET", "hodei-jobs", "1")
    assert listing.headers["Authorization"] == "Bearer kubeconfig-bearer-token-do-not-log"


def test_health_is_degraded_naming_verb_and_resource_when_listing_pods_is_forbidden(
        hodei_pm, cluster, provider) -> None:
    cluster.forbidden.add(("list", "pods"))
    result = call(hodei_pm, "hodei_health_check", provider)
    assert result.status is HealthStatus.DEGRADED
    assert result.reason.startswith("may not list pods in namespace 'hodei-jobs': ")
    assert 'cannot list resource "pods"' in result.reason


@pytest.mark.parametrize("verb, resource, status", [("create", "pods", HealthStatus.UNHEALTHY),
                                                    ("create", "secrets", HealthStatus.UNHEALTHY),
                                                    ("delete", "pods", HealthStatus.DEGRADED)])
def test_health_when_a_verb_provisioning_needs_is_denied(hodei_pm, cluster, provider, verb, resource,
                                                         status) -> None:
    # No pod or no token secret: no worker can start, so selection must leave it out (Unhealthy); workers
    # that start but cannot be deleted still work (Degraded).
    cluster.forbidden.add((verb, resource))
    result = call(hodei_pm, "hodei_health_check", provider)
    assert result.status is status
    denied = f"the API answers, but these credentials may not {verb} {resource} in namespace 'hodei-jobs'"
    assert result.reason == (f"no worker can start: {denied}" if status is HealthStatus.UNHEALTHY else denied)


def test_health_is_healthy_when_the_server_will_not_review_access(hodei_pm, cluster, provider) -> None:
    cluster.forbidden.add(("create", "selfsubjectaccessreviews"))
    assert call(hodei_pm, "hodei_health_check", provider).status is HealthStatus.HEALTHY


def test_health_is_unhealthy_when_the_credentials_are_refused(hodei_pm, cluster, provider) -> None:
    cluster.unauthenticated = True
    result = call(hodei_pm, "hodei_health_check", provider)
    assert (result.status, result.reason) == (
        HealthStatus.UNHEALTHY, "the API server refused the credentials (401 Unauthorized)")


def test_health_is_unhealthy_when_the_server_is_unreachable(hodei_pm, cluster, provider) -> None:
    cluster.stop()
    result = call(hodei_pm, "hodei_health_check", provider)
    assert result.status is HealthStatus.UNHEALTHY
    port = cluster.url.rsplit(":", 1)[1]
    assert result.reason.startswith(f"the API server is unreachable: HTTPConnection(host='127.0.0.1', port={port}): ")
    assert result.reason.endswith("Connection refused")


def test_a_hung_api_server_is_unhealthy_within_the_timeout_and_never_blocks_the_event_loop(
        hodei_pm, cluster, provider) -> None:
    cluster.hanging.add(("list", "pods"))
    ticks = 0

    async def scenario():
        nonlocal ticks

        async def tick() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(0.01)
                ticks += 1

        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            started = time.monotonic()
            result = await call_provider_hook(hodei_pm, "hodei_health_check", provider, 1.0)
            elapsed = time.monotonic() - started
            group.cancel_scope.cancel()
        return result, elapsed

    result, elapsed = anyio.run(scenario)
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason == "the API server did not answer within 1s"  # before the core's own cut-off
    assert elapsed < 1.0
    assert ticks > 30, "the event loop was blocked while the API server hung"


def test_a_hung_provision_is_cut_off_within_the_timeout_as_a_timeout(hodei_pm, cluster, provider) -> None:
    cluster.hanging.add(("create", "pods"))
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # hodei.DeadlineExceeded, just before the core's own cut-off
        call(hodei_pm, "hodei_provision", provider, timeout=0.5, request=request())
    assert time.monotonic() - started < 1.0


def test_in_cluster_config_outside_a_cluster_is_unhealthy_with_the_reason(hodei_pm, monkeypatch) -> None:
    from hodei_k8s import hodei_validate_config

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    config = hodei_validate_config(provider_type="kubernetes", config={"kubeconfig_path": None})
    provider = Provider(id=uuid.uuid4(), name="in-cluster", provider_type="kubernetes", config=config)
    result = call(hodei_pm, "hodei_health_check", provider)
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason.startswith("cannot load in-cluster configuration: ")


def test_a_missing_kubeconfig_is_unhealthy_naming_the_file(hodei_pm, cluster, make_provider, tmp_path) -> None:
    provider = make_provider(kubeconfig_path=str(tmp_path / "nope.yaml"))
    result = call(hodei_pm, "hodei_health_check", provider)
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason.startswith(f"cannot load kubeconfig {str(tmp_path / 'nope.yaml')!r}: ")


def test_kubeconfig_context_selects_the_cluster(hodei_pm, cluster, make_provider, tmp_path) -> None:
    import json

    config = cluster.kubeconfig(context="real")
    config["clusters"].append({"name": "elsewhere", "cluster": {"server": "http://127.0.0.1:9"}})
    config["contexts"].append({"name": "broken", "context": {"cluster": "elsewhere", "user": "hodei"}})
    config["current-context"] = "broken"
    path = tmp_path / "two-contexts.json"
    path.write_text(json.dumps(config))
    chosen = make_provider(kubeconfig_path=str(path), kubeconfig_context="real")
    current = make_provider(kubeconfig_path=str(path))
    assert call(hodei_pm, "hodei_health_check", chosen).status is HealthStatus.HEALTHY
    assert call(hodei_pm, "hodei_health_check", current).status is HealthStatus.UNHEALTHY


# -- provision, list, deprovision ---------------------------------------------------------------

def test_provision_creates_the_pod_and_a_token_secret_owned_by_it(hodei_pm, cluster, provider) -> None:
    handle = call(hodei_pm, "hodei_provision", provider, request=request("w-1", cpu=2.0, memory=2**30))
    pods = cluster.objects("pods", "hodei-jobs")
    assert list(pods) == ["hodei-worker-w-1"] == [handle.backend_id]
    pod = pods["hodei-worker-w-1"]
    assert pod["metadata"]["labels"] == {"hodei.io/managed": "true", "hodei.io/provider-id": str(provider.id),
                                         "hodei.io/worker-id": "w-1"}
    assert pod["spec"]["serviceAccountName"] == "hodei-worker"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "2000m", "memory": str(2**30)}
    assert "one-time-s3cret" not in str(pod), "the token must not be in the pod spec"
    secret = cluster.objects("secrets", "hodei-jobs")["hodei-worker-w-1"]
    assert secret["stringData"] == {"token": "one-time-s3cret"}
    assert secret["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "hodei-worker-w-1", "uid": pod["metadata"]["uid"]}]
    assert handle == WorkerHandle("w-1", "hodei-worker-w-1",
                                  {"namespace": "hodei-jobs", "pod_uid": pod["metadata"]["uid"]})


def test_the_token_is_never_logged(hodei_pm, cluster, provider, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    call(hodei_pm, "hodei_provision", provider, request=request())
    cluster.forbidden.add(("create", "secrets"))
    with pytest.raises(BackendError) as info:
        call(hodei_pm, "hodei_provision", provider, request=request("w-2"))
    for text in (caplog.text, str(info.value), repr(info.value)):
        assert "one-time-s3cret" not in text
        assert "kubeconfig-bearer-token-do-not-log" not in text


def test_a_refused_token_secret_removes_the_pod_and_says_why(hodei_pm, cluster, provider) -> None:
    cluster.forbidden.add(("create", "secrets"))
    with pytest.raises(BackendError, match=r"creating the token Secret of pod 'hodei-worker-w-1' failed "
                                        r"\(403 Forbidden\); pod deleted"):
        call(hodei_pm, "hodei_provision", provider, request=request("w-1"))
    assert cluster.objects("pods", "hodei-jobs") == {}


def test_a_refused_pod_is_an_error_with_the_server_message(hodei_pm, cluster, provider) -> None:
    cluster.forbidden.add(("create", "pods"))
    with pytest.raises(BackendError, match=r"creating pod 'hodei-worker-w-1' in namespace 'hodei-jobs' failed: the "
                                        r"API server answered 403: pods is forbidden"):
        call(hodei_pm, "hodei_provision", provider, request=request("w-1"))


def test_a_pod_the_api_server_finds_invalid_is_the_jobs_failure(hodei_pm, cluster, provider) -> None:
    cluster.invalid.add(("create", "pods"))
    with pytest.raises(JobFailed, match=r"the cluster refused the job's pod 'hodei-worker-w-1': .*422.*is invalid"):
        call(hodei_pm, "hodei_provision", provider, request=request("w-1"))


def test_a_worker_id_taken_already_is_refused_not_adopted(hodei_pm, cluster, provider) -> None:
    call(hodei_pm, "hodei_provision", provider, request=request("w-1"))
    with pytest.raises(BackendError, match="answered 409"):
        call(hodei_pm, "hodei_provision", provider, request=request("w-1"))


def test_list_workers_returns_only_this_providers_pods_even_when_the_server_ignores_selectors(
        hodei_pm, cluster, make_provider) -> None:
    mine, other = make_provider(), make_provider()
    call(hodei_pm, "hodei_provision", mine, request=request("w-mine"))
    call(hodei_pm, "hodei_provision", other, request=request("w-other"))
    cluster.put("pods", foreign_pod("unrelated", {"app": "web"}))
    cluster.put("pods", foreign_pod("impostor", {"hodei.io/provider-id": str(mine.id)}))  # not managed
    listed = call(hodei_pm, "hodei_list_workers", mine)
    assert [(w.worker_id, w.backend_id, w.state) for w in listed] == [("w-mine", "hodei-worker-w-mine", "pending")]
    assert listed[0].created_at is not None
    selectors = {r.params.get("labelSelector") for r in cluster.requests()
                 if r.resource is not None and r.resource.plural == "pods" and r.method.value == "GET"}
    assert f"hodei.io/managed=true,hodei.io/provider-id={mine.id}" in selectors


def test_list_workers_reports_the_exact_worker_id_and_phase(hodei_pm, cluster, provider) -> None:
    worker_id = "Job 42/Attempt#1"  # not a label value: the annotation keeps it exactly
    call(hodei_pm, "hodei_provision", provider, request=request(worker_id))
    [listed] = call(hodei_pm, "hodei_list_workers", provider)
    assert listed.worker_id == worker_id
    assert listed.backend_id.startswith("hodei-worker-job-42-attempt-1-")


def test_deprovision_deletes_the_pod_and_a_second_time_is_success(hodei_pm, cluster, provider) -> None:
    handle = call(hodei_pm, "hodei_provision", provider, request=request())
    assert call(hodei_pm, "hodei_deprovision", provider, handle=handle) is True
    assert cluster.objects("pods", "hodei-jobs") == {}
    assert call(hodei_pm, "hodei_deprovision", provider, handle=handle) is True
    assert call(hodei_pm, "hodei_list_workers", provider) == []


def test_deprovision_of_a_pod_never_seen_is_success(hodei_pm, cluster, provider) -> None:
    handle = WorkerHandle("ghost", "hodei-worker-ghost", {"namespace": "hodei-jobs"})
    assert call(hodei_pm, "hodei_deprovision", provider, handle=handle) is True


def test_deprovision_that_is_refused_raises(hodei_pm, cluster, provider) -> None:
    handle = call(hodei_pm, "hodei_provision", provider, request=request())
    cluster.forbidden.add(("delete", "pods"))
    with pytest.raises(BackendError, match="deleting pod 'hodei-worker-w-1' in namespace 'hodei-jobs' failed"):
        call(hodei_pm, "hodei_deprovision", provider, handle=handle)
    assert list(cluster.objects("pods", "hodei-jobs")) == ["hodei-worker-w-1"]


def test_a_pod_being_deleted_is_neither_listed_nor_counted(hodei_pm, cluster, provider) -> None:
    call(hodei_pm, "hodei_provision", provider, request=request("w-1"))
    call(hodei_pm, "hodei_provision", provider, request=request("w-2"))
    cluster.mark_deleting("hodei-jobs", "hodei-worker-w-1")
    assert [w.worker_id for w in call(hodei_pm, "hodei_list_workers", provider)] == ["w-2"]
    assert call(hodei_pm, "hodei_capacity", provider).active_workers == 1


# -- capacity ---------------------------------------------------------------------------------

def test_capacity_counts_only_this_providers_running_workers(hodei_pm, cluster, make_provider) -> None:
    mine, other = make_provider(), make_provider()
    for worker in ("a", "b"):
        call(hodei_pm, "hodei_provision", mine, request=request(worker))
    call(hodei_pm, "hodei_provision", other, request=request("c"))
    labels = {"hodei.io/managed": "true", "hodei.io/provider-id": str(mine.id), "hodei.io/worker-id": "done"}
    cluster.put("pods", foreign_pod("hodei-worker-done", labels, phase="Succeeded"))
    cluster.put("pods", foreign_pod("unrelated", {"app": "web"}))
    assert call(hodei_pm, "hodei_capacity", mine).active_workers == 2
    assert call(hodei_pm, "hodei_capacity", other).active_workers == 1


def test_capacity_reports_the_largest_node_a_worker_can_land_on(hodei_pm, cluster, make_provider) -> None:
    provider = make_provider(node_selector={"node-type": "worker"}, tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}])
    cluster.put("nodes", node("small", "2", "4Gi", {"node-type": "worker"}))
    cluster.put("nodes", node("tainted-ok", "8", "32Gi", {"node-type": "worker"},
                              taints=[{"key": "dedicated", "value": "worker", "effect": "NoSchedule"}]))
    cluster.put("nodes", node("other-pool", "64", "256Gi", {"node-type": "db"}))
    cluster.put("nodes", node("tainted-no", "32", "64Gi", {"node-type": "worker"},
                              taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}]))
    cluster.put("nodes", node("cordoned", "16", "64Gi", {"node-type": "worker"}, unschedulable=True))
    assert call(hodei_pm, "hodei_capacity", provider) == Capacity(0, Resources(cpu=8.0, memory=32 * 2**30, gpu=0))


def test_capacity_without_permission_to_read_nodes_reports_them_unknown(hodei_pm, cluster, provider) -> None:
    cluster.forbidden.add(("list", "nodes"))
    cluster.put("nodes", node("n", "8", "32Gi"))
    assert call(hodei_pm, "hodei_capacity", provider) == Capacity(0, Resources())


def test_capacity_fails_when_pods_cannot_be_listed(hodei_pm, cluster, provider) -> None:
    cluster.forbidden.add(("list", "pods"))
    with pytest.raises(BackendError, match="listing pods in namespace 'hodei-jobs' failed: the API server answered "
                                           '403: pods is forbidden: User "system:serviceaccount:hodei:hodei"'):
        call(hodei_pm, "hodei_capacity", provider)


def test_full_capabilities_in_config_spare_the_node_listing(hodei_pm, cluster, make_provider) -> None:
    provider = make_provider(capabilities={"cpu": 4, "memory": "8Gi", "gpu": 0})
    cluster.put("nodes", node("n", "8", "32Gi"))
    call(hodei_pm, "hodei_capacity", provider)
    assert not [r for r in cluster.requests() if r.resource is not None and r.resource.plural == "nodes"]


def test_one_client_serves_every_call_of_a_provider(hodei_pm, cluster, provider) -> None:
    from hodei_k8s import client

    call(hodei_pm, "hodei_health_check", provider)
    first = client._clients[provider.id][1]
    call(hodei_pm, "hodei_capacity", provider)
    call(hodei_pm, "hodei_list_workers", provider)
    assert client._clients[provider.id][1] is first


def test_a_changed_kubeconfig_builds_a_new_client(hodei_pm, cluster, provider, tmp_path) -> None:
    import dataclasses
    import json

    from hodei_k8s import client

    call(hodei_pm, "hodei_health_check", provider)
    first = client._clients[provider.id][1]
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(cluster.kubeconfig()))
    changed = dataclasses.replace(provider, config={**provider.config, "kubeconfig_path": str(moved)})
    assert call(hodei_pm, "hodei_health_check", changed).status is HealthStatus.HEALTHY
    assert client._clients[provider.id][1] is not first


def test_requests_name_this_plugin_as_user_agent(hodei_pm, cluster, provider) -> None:
    call(hodei_pm, "hodei_list_workers", provider)
    assert {r.headers.get("User-Agent") for r in cluster.requests()} == {"hodei-k8s"}

