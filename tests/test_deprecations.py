"""What is deprecated says so when used, and still works until it is removed."""

from __future__ import annotations

import uuid

import anyio
import pytest
from hodei import ProviderType, hookimpl, provider_hook
from hodei.calls import call_provider_hook
from hodei.domain import HealthResult, Provider


def test_provider_hook_warns_and_still_answers_for_its_type(register_plugin, hodei_pm) -> None:
    with pytest.warns(DeprecationWarning, match="provider_hook is deprecated.*hookimpl"):
        class Old:
            @hookimpl
            def hodei_provider_types(self) -> list[ProviderType]:
                return [ProviderType("old-style")]

            @provider_hook("old-style")
            def hodei_health_check(self, provider: Provider, timeout: float) -> HealthResult:
                return HealthResult.healthy("routed")

    register_plugin(Old(), "old-style")
    provider = Provider(id=uuid.uuid4(), name="p", provider_type="old-style", config={})
    assert anyio.run(call_provider_hook, hodei_pm, "hodei_health_check", provider, 1.0).reason == "routed"
