"""Cooldowns as every entry point records them: a provision's outcome, and a reset by hand.

The provisioner (in the CLI and in the daemon) records each failed provision that was not the job's own
failure, and the success that ends a streak; ``hodei providers reset-cooldown`` (locally or through the
API) ends one by hand. The policy (:mod:`hodei.cooldown`) is applied in the transaction that records,
under the provider row's lock (:mod:`hodei.storage.cooldowns`), so replicas count one streak.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from hodei import actors
from hodei.cooldown import Policy, Streak
from hodei.storage import cooldowns
from hodei.store import Store


class LocalCooldowns:
    """Records provision outcomes and resets. Sync: the daemon runs it in its database threads.

    :param policy: ``[cooldown]`` of hodei.toml; :meth:`configure` replaces it (a reload).
    :param clock: the time a failure is counted at (UTC).
    :param actor: who a cooldown that provisions start or end is recorded as (:mod:`hodei.actors`; the
        CLI: its user, the default; a daemon: its own, as its health monitor); a reset names its own.
    """

    def __init__(self, store: Store, policy: Policy, clock: Callable[[], datetime] | None = None, *,
                 actor: str | None = None):
        self.store, self.policy = store, policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self.actor = actor or actors.cli()

    def configure(self, policy: Policy) -> None:
        self.policy = policy

    def record(self, provider_id: uuid.UUID, error: str | None) -> Streak | None:
        """Count a provision that failed with ``error`` (None: succeeded); the streak as written, or
        None when nothing was written (a success with no streak, a provider deleted meanwhile)."""
        return cooldowns.record_outcome(self.store.engine, provider_id, error, self.clock(), self.policy,
                                        actor=self.actor)

    def reset(self, ref: str | uuid.UUID, *, actor: str | None = None) -> tuple[uuid.UUID, Streak]:
        """End a provider's streak and cooldown by hand, as ``actor`` (default: this service's): its id and
        the streak it had. :raises NotFound:"""
        provider_id, _, ended = cooldowns.reset(self.store.engine, ref, actor=actor or self.actor)
        return provider_id, ended
