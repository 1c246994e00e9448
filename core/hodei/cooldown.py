"""Cooldown policy: when a provider whose provisions keep failing is skipped, as pure functions.

Health checks ask a provider whether it is well; a provision asks it to do the work. A provider can
answer Healthy and still fail every provision (a quota, an expired image pull secret, a full subnet):
after ``after_failures`` failed provisions in a row it is skipped for ``initial_seconds``, doubling with
each further failure up to ``max_seconds``. The first provision after the cooldown ends is its trial: a
success ends the streak, a failure starts a longer cooldown. A failure the job caused
(:class:`hodei.JobFailed`) is the job's, never counted here.

No settings are read and nothing is stored here: :mod:`hodei.storage.cooldowns` applies the policy
under the provider row's lock, so every replica counts the same streak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class Policy(Protocol):
    """What the policy reads (``[cooldown]`` of hodei.toml has these fields)."""

    @property
    def after_failures(self) -> int: ...

    @property
    def initial_seconds(self) -> float: ...

    @property
    def max_seconds(self) -> float: ...


@dataclass(frozen=True)
class Streak:
    """A provider's failed provisions in a row, the cooldown they earned (None: none) and the last error."""

    failures: int = 0
    until: datetime | None = None
    last_error: str = ""


def length(failures: int, policy: Policy) -> float:
    """Seconds of cooldown ``failures`` in a row earn: none below ``after_failures``, then
    ``initial_seconds`` doubling with each further failure, capped at ``max_seconds``."""
    if failures < policy.after_failures:
        return 0.0
    # The exponent is bounded so a streak of millions stays a float, not an overflow.
    return min(policy.max_seconds, policy.initial_seconds * 2.0 ** min(failures - policy.after_failures, 64))


def after_failure(streak: Streak, error: str, now: datetime, policy: Policy) -> Streak:
    """The streak once one more provision failed at ``now`` with ``error``."""
    failures = streak.failures + 1
    seconds = length(failures, policy)
    until = now + timedelta(seconds=seconds) if seconds > 0 else streak.until
    return Streak(failures, until, error)


def after_success() -> Streak:
    """A provision succeeded: the streak and any cooldown end."""
    return Streak()


def cooling(until: datetime | None, now: datetime) -> bool:
    """Whether a cooldown ending at ``until`` still holds at ``now``."""
    return until is not None and until > now


def remaining(until: datetime | None, now: datetime) -> float:
    """Seconds of cooldown left at ``now`` (0 when none holds)."""
    return max(0.0, (until - now).total_seconds()) if until is not None else 0.0
