"""The ``localproc`` provider type against Hodei's contract suite.

Run with the plugin installed (``pip install -e docs/example-plugin``): the ``hodei_pm`` fixture,
from Hodei's pytest plugin, loads it through its entry point like the daemon does.
"""

from __future__ import annotations

import shutil
import uuid
from typing import Any

import pytest
from hodei import Provider
from hodei.testing import backend_unavailable
from hodei.testing.contract import ProviderContract


class TestLocalprocContract(ProviderContract):
    provider_type = "localproc"
    config_fields = ("command", "env", "secret_env", "grace_seconds")

    @pytest.fixture
    def valid_config(self) -> dict[str, Any]:
        return {"type": "localproc", "command": ["sleep", "3600"], "env": {"LOG_LEVEL": "debug"},
                "secret_env": {"API_KEY": "not-a-real-key"}, "grace_seconds": 2}

    @pytest.fixture
    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [
            ({"type": "localproc", "command": []}, "command"),
            ({"type": "localproc", "command": "sleep 3600"}, "command"),
            ({"type": "localproc", "command": ["sleep", ""]}, "command[1]"),
            ({"type": "localproc", "env": {"PORT": 8080}}, "env.PORT"),
            ({"type": "localproc", "secret_env": ["API_KEY"]}, "secret_env"),
            ({"type": "localproc", "grace_seconds": 0}, "grace_seconds"),
            ({"type": "localproc", "grace_seconds": 61}, "grace_seconds"),
        ]

    @pytest.fixture
    def live_provider(self, hodei_pm, valid_config) -> Provider:
        # The "backend" is the local host: without `sleep` there is nothing to run workers with.
        if shutil.which(valid_config["command"][0]) is None:
            backend_unavailable(f"{valid_config['command'][0]!r} not found on PATH")
        config = hodei_pm.validate_config(self.provider_type, valid_config)  # as the core does: routed
        return Provider(id=uuid.uuid4(), name="localproc contract", provider_type=self.provider_type,
                        config=config)
