"""The health monitor's rules on their own: when status follows health, and how often to check."""

from __future__ import annotations

import random

import pytest
from hodei.domain import ProviderState, ProviderStatus
from hodei.health import next_delay, next_status
from hodei.settings import HealthSettings
from hypothesis import given
from hypothesis import strategies as st

SETTINGS = HealthSettings(interval_seconds=10.0, unhealthy_after=3, healthy_after=2, max_backoff_seconds=300.0)


def state(failures: int = 0, successes: int = 0) -> ProviderState:
    return ProviderState(consecutive_failures=failures, consecutive_successes=successes)


@pytest.mark.parametrize("status, failures, successes, expected", [
    (ProviderStatus.ACTIVE, 2, 0, None),
    (ProviderStatus.ACTIVE, 3, 0, ProviderStatus.UNHEALTHY),
    (ProviderStatus.ACTIVE, 0, 9, None),
    (ProviderStatus.UNHEALTHY, 0, 1, None),
    (ProviderStatus.UNHEALTHY, 0, 2, ProviderStatus.ACTIVE),
    (ProviderStatus.UNHEALTHY, 7, 0, None),
])
def test_status_follows_health_after_the_configured_counts(status, failures, successes, expected) -> None:
    assert next_status(status, state(failures, successes), SETTINGS) is expected


@given(status=st.sampled_from([ProviderStatus.DISABLED, ProviderStatus.MAINTENANCE]),
       failures=st.integers(0, 1000), successes=st.integers(0, 1000),
       unhealthy_after=st.integers(1, 10), healthy_after=st.integers(1, 10))
def test_operators_statuses_are_never_changed(status, failures, successes, unhealthy_after, healthy_after) -> None:
    settings = HealthSettings(unhealthy_after=unhealthy_after, healthy_after=healthy_after)
    assert next_status(status, state(failures, successes), settings) is None


def test_a_passing_provider_is_checked_every_interval() -> None:
    assert next_delay(state(0, 5), SETTINGS, random.Random(1)) == 10.0


@given(failures=st.integers(1, 60), seed=st.integers(0, 2**32))
def test_failing_providers_back_off_with_jitter_up_to_the_maximum(failures, seed) -> None:
    delay = next_delay(state(failures), SETTINGS, random.Random(seed))
    base = min(300.0, 10.0 * 2 ** (failures - 1))
    assert 0.8 * base <= delay <= 1.2 * base


def test_jitter_spreads_providers_that_failed_together() -> None:
    delays = {round(next_delay(state(4), SETTINGS, random.Random(seed)), 6) for seed in range(20)}
    assert len(delays) > 10
