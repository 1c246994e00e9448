"""The lifecycle contract against a real cluster, when ``$KUBECONFIG`` names one.

It creates and deletes one pod (and its token Secret) in ``$HODEI_TEST_K8S_NAMESPACE`` (default
``default``), running ``$HODEI_TEST_K8S_IMAGE`` (default the tiny ``pause`` image). Without
``KUBECONFIG`` it is skipped, even under ``HODEI_REQUIRE_BACKENDS=1``: no CI machine has a cluster,
and the fake API of conftest.py covers the same contract. A ``KUBECONFIG`` that is set but does not
reach a healthy cluster is a missing backend (a failure under ``HODEI_REQUIRE_BACKENDS=1``).
"""

from __future__ import annotations

import os
import uuid

import anyio
import pytest
from hodei import HealthStatus, Provider
from hodei.calls import call_provider_hook
from hodei.testing import backend_unavailable
from hodei.testing.contract import LifecycleContract


class TestRealClusterLifecycle(LifecycleContract):
    provider_type = "kubernetes"
    timeout = 30.0

    @pytest.fixture
    def live_provider(self, hodei_pm) -> Provider:
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig:
            pytest.skip("no real cluster: set KUBECONFIG to run the lifecycle contract against one")
        config = hodei_pm.validate_config("kubernetes", {
            "kubeconfig_path": kubeconfig,
            "namespace": os.environ.get("HODEI_TEST_K8S_NAMESPACE", "default"),
            "default_image": os.environ.get("HODEI_TEST_K8S_IMAGE", "registry.k8s.io/pause:3.10"),
            "default_resources": {"cpu": "10m", "memory": "16Mi"},
        })
        provider = Provider(id=uuid.uuid4(), name="real cluster", provider_type="kubernetes", config=config)
        health = anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", provider, self.timeout)
        if health.status is HealthStatus.UNHEALTHY:
            backend_unavailable(f"the cluster of KUBECONFIG={kubeconfig} is unhealthy: {health.reason}")
        return provider
