"""The core's `static` provider type passes the same contract every provider plugin runs."""

from __future__ import annotations

import uuid

import pytest
from hodei.domain import Provider
from hodei.testing.contract import ProviderContract


class TestStaticContract(ProviderContract):
    provider_type = "static"
    timeout = 5.0

    @pytest.fixture
    def valid_config(self):
        return {"type": "static", "health": "Healthy", "latency_ms": 1, "latency_jitter_ms": 2}

    @pytest.fixture
    def invalid_configs(self):
        return [
            ({"health": "Fine"}, "health"),
            ({"latency_ms": -1}, "latency_ms"),
            ({"latency_ms": "1"}, "latency_ms"),
            ({"latency_jitter_ms": -0.5}, "latency_jitter_ms"),
            ({"hang": 1}, "hang"),
            ({"fail_provision": 3}, "fail_provision"),
        ]

    @pytest.fixture
    def live_provider(self, hodei_pm, valid_config):
        config = hodei_pm.validate_config("static", valid_config)
        return Provider(id=uuid.uuid4(), name="static-contract", provider_type="static", config=config)
