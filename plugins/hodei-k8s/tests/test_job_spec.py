"""The job's own worker as a pod, on the API served by the fake cluster (conftest.py): the job's image,
command, env, labels and lifetime in the pod spec; its secret variables only in the pod's Secret, read
through secretKeyRef like the token; Hodei's own variables last and unchanged; allowed_images."""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Any

import anyio
import pytest
from hodei import ConfigError, Provider, WorkerRequest
from hodei.builtin_plugins.selection_rules import ImageFilter
from hodei.calls import call_provider_hook
from hodei.selection import Requirements
from hodei.selection.index import ProviderIndex
from hodei_k8s import hodei_validate_config

SECRET = "k8s-s3cret-value-31c7"


def provision(pm: Any, provider: Provider, request: WorkerRequest) -> Any:
    return anyio.run(functools.partial(call_provider_hook, pm, "hodei_provision", provider, 5.0, request=request))


def request(worker_id: str = "w-1", **spec: Any) -> WorkerRequest:
    return WorkerRequest(worker_id=worker_id, server_address="hodei.example:50051", token="one-time-token", **spec)


def test_the_pod_runs_the_jobs_image_command_env_and_lifetime(hodei_pm, cluster, make_provider,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    provider = make_provider(allowed_images=["registry.example.com/jobs/*"])
    caplog.set_level(logging.DEBUG)
    provision(hodei_pm, provider, request(
        image="registry.example.com/jobs/etl:7", command=("python", "-m", "etl", "--day", "2026-11-30"),
        env={"MODE": "batch", "LEVEL": "3"}, secret_env={"DB_PASSWORD": SECRET}, labels={"team": "data"},
        timeout_seconds=900))
    pod = cluster.objects("pods", "hodei-jobs")["hodei-worker-w-1"]
    [container] = pod["spec"]["containers"]
    assert container["image"] == "registry.example.com/jobs/etl:7"
    assert container["command"] == ["python", "-m", "etl", "--day", "2026-11-30"]
    assert "args" not in container
    assert pod["spec"]["activeDeadlineSeconds"] == 900
    assert pod["metadata"]["labels"]["team"] == "data"
    env = container["env"]
    assert [e["name"] for e in env] == ["MODE", "LEVEL", "DB_PASSWORD", "HODEI_WORKER_ID", "HODEI_PROVIDER_ID",
                                        "HODEI_SERVER_ADDRESS", "HODEI_WORKER_TOKEN"]
    by_name = {e["name"]: e for e in env}
    assert by_name["MODE"] == {"name": "MODE", "value": "batch"}
    # The secret value is read from the pod's Secret, as the token is: never in the pod spec.
    assert by_name["DB_PASSWORD"] == {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "hodei-worker-w-1", "key": "env.DB_PASSWORD"}}}
    assert by_name["HODEI_SERVER_ADDRESS"]["value"] == "hodei.example:50051"
    assert SECRET not in str(pod)
    secret = cluster.objects("secrets", "hodei-jobs")["hodei-worker-w-1"]
    assert secret["stringData"] == {"token": "one-time-token", "env.DB_PASSWORD": SECRET}
    assert SECRET not in caplog.text


def test_without_a_spec_the_pod_is_the_providers_default(hodei_pm, cluster, provider) -> None:
    provision(hodei_pm, provider, request())
    pod = cluster.objects("pods", "hodei-jobs")["hodei-worker-w-1"]
    [container] = pod["spec"]["containers"]
    assert container["image"] == "hodei-jobs-worker:latest"
    assert "command" not in container and "activeDeadlineSeconds" not in pod["spec"]
    assert cluster.objects("secrets", "hodei-jobs")["hodei-worker-w-1"]["stringData"] == {"token": "one-time-token"}


def config(**overrides: Any) -> dict[str, Any]:
    return hodei_validate_config(provider_type="kubernetes", config={"type": "kubernetes", **overrides})


def test_allowed_images_default_to_the_default_image_and_feed_the_image_filter() -> None:
    assert config()["allowed_images"] == ["hodei-jobs-worker:latest"]
    assert config(default_image="acme/worker:2")["allowed_images"] == ["acme/worker:2"]
    with pytest.raises(ConfigError) as refused:
        config(allowed_images=["a b"])
    assert [p.field for p in refused.value.problems] == ["allowed_images"]

    providers = [Provider(id=uuid.uuid4(), name=name, provider_type="kubernetes", config=config(**c))
                 for name, c in (("default", {}), ("jobs", {"allowed_images": ["registry.example.com/jobs/*"]}))]
    index = ProviderIndex(providers, {})
    mask = ImageFilter().mask(index, Requirements(image="registry.example.com/jobs/etl:7"))
    assert [c.name for c in index.candidates if c in mask] == ["jobs"]
    refused_by = index.by_name["default"]
    reason = ImageFilter().explain(refused_by, Requirements(image="registry.example.com/jobs/etl:7"))
    assert reason.message == ("does not allow image registry.example.com/jobs/etl:7: its allowed_images are "
                              "hodei-jobs-worker:latest")
