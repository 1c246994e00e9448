"""The ``hodei.testing`` lifecycle contract, against the Kubernetes API of conftest.py."""

from __future__ import annotations

import pytest
from hodei import Provider
from hodei.testing.contract import LifecycleContract


class TestKubernetesLifecycleContract(LifecycleContract):
    provider_type = "kubernetes"
    timeout = 10.0

    @pytest.fixture
    def live_provider(self, provider: Provider) -> Provider:
        return provider
