"""The cooldown policy (hodei.cooldown): failures in a row and the time in, the cooldown's end out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hodei import cooldown
from hodei.cooldown import Streak
from hodei.errors import InvalidInput
from hodei.settings import CooldownSettings
from hypothesis import given
from hypothesis import strategies as st

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Policy:
    after_failures: int = 3
    initial_seconds: float = 60.0
    max_seconds: float = 600.0


def fail(times: int, policy: Policy, now: datetime = NOW) -> Streak:
    streak = Streak()
    for i in range(times):
        streak = cooldown.after_failure(streak, f"error {i + 1}", now, policy)
    return streak


def test_no_cooldown_before_the_threshold_then_it_doubles_up_to_the_cap() -> None:
    policy = Policy()
    assert fail(2, policy) == Streak(2, None, "error 2")
    ends = [fail(n, policy).until for n in range(3, 8)]
    assert ends == [NOW + timedelta(seconds=s) for s in (60, 120, 240, 480, 600)]
    assert not cooldown.cooling(fail(2, policy).until, NOW)
    assert cooldown.cooling(fail(3, policy).until, NOW)
    assert not cooldown.cooling(fail(3, policy).until, NOW + timedelta(seconds=60))  # ends exactly then
    assert cooldown.remaining(fail(3, policy).until, NOW + timedelta(seconds=45)) == 15.0


def test_a_success_ends_the_streak_and_the_cooldown() -> None:
    assert cooldown.after_success() == Streak()
    assert not cooldown.cooling(cooldown.after_success().until, NOW)


def test_a_failure_below_the_threshold_keeps_no_stale_end() -> None:
    assert cooldown.after_failure(Streak(), "x", NOW, Policy()).until is None


@given(failures=st.integers(0, 10_000), after=st.integers(1, 50),
       initial=st.floats(0.001, 86400), cap=st.floats(0.001, 604800))
def test_the_length_is_zero_below_the_threshold_then_within_initial_and_the_cap(
        failures: int, after: int, initial: float, cap: float) -> None:
    policy = Policy(after, initial, max(cap, initial))
    seconds = cooldown.length(failures, policy)
    if failures < after:
        assert seconds == 0.0
    else:
        assert min(initial, policy.max_seconds) <= seconds <= policy.max_seconds


@given(failures=st.integers(0, 500), after=st.integers(1, 20),
       initial=st.floats(0.01, 3600), extra=st.floats(0, 86400))
def test_each_further_failure_never_shortens_the_cooldown(failures: int, after: int, initial: float,
                                                          extra: float) -> None:
    policy = Policy(after, initial, initial + extra)
    assert cooldown.length(failures + 1, policy) >= cooldown.length(failures, policy)


@given(failures=st.integers(1, 300), seconds=st.integers(0, 10**6))
def test_the_cooldown_counts_from_the_last_failure(failures: int, seconds: int) -> None:
    policy = Policy()
    when = NOW + timedelta(seconds=seconds)
    streak = cooldown.after_failure(fail(failures - 1, policy), "last", when, policy)
    assert streak.failures == failures and streak.last_error == "last"
    if failures >= policy.after_failures:
        assert streak.until == when + timedelta(seconds=cooldown.length(failures, policy))
        assert cooldown.cooling(streak.until, when)
    else:
        assert streak.until is None


@given(failures=st.integers(0, 100), then=st.integers(0, 100))
def test_after_a_success_the_count_starts_afresh(failures: int, then: int) -> None:
    """However long the streak was, the failures after a success count as if it had never been."""
    policy = Policy()
    fail(failures, policy)
    streak = cooldown.after_success()
    for i in range(then):
        streak = cooldown.after_failure(streak, f"error {i + 1}", NOW, policy)
    assert streak == fail(then, policy)
    assert (streak.until is not None) == (then >= policy.after_failures)


def test_the_settings_have_sane_defaults_and_refuse_a_cap_below_the_start() -> None:
    settings = CooldownSettings()
    assert (settings.after_failures, settings.initial_seconds, settings.max_seconds) == (3, 60.0, 1800.0)
    with pytest.raises((InvalidInput, ValueError), match="max_seconds"):
        CooldownSettings(initial_seconds=600, max_seconds=60)
