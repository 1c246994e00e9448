"""Health as every entry point records it: the one write path for what checks find.

``hodei providers check`` and the daemon's health monitor record through :meth:`LocalHealth.record`
(a failed provision is not a health result: it counts toward the cooldown, :mod:`hodei.cooldown`).
The counts, the change of health in the history and the status the policy (:mod:`hodei.health`) asks
for are decided in the transaction that records a result, under the provider row's lock, with the stale-result guard
(:func:`hodei.storage.health_results.record_results`). So the same results make the same history,
whichever entry point found them.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from hodei import health
from hodei.calls import run_blocking
from hodei.checks import CheckResult, check_provider
from hodei.domain import Provider, ProviderState, ProviderStatus
from hodei.errors import InvalidInput, Problem
from hodei.plugins import HodeiPluginManager
from hodei.storage.health_results import Recorded, Result, read_states, record_results
from hodei.store import Store, StoredProvider

__all__ = ["CheckResult", "LocalHealth", "Recorded", "Result"]


class LocalHealth:
    """Checks providers and records the results. Sync except :meth:`probe`: the daemon runs
    :meth:`record` in its database threads.

    :param thresholds: the status rules' thresholds (``[health]`` of hodei.toml); :meth:`configure`
        replaces them (a reload).
    """

    def __init__(self, store: Store, pm: HodeiPluginManager, thresholds: health.Thresholds):
        self.store, self.pm, self.thresholds = store, pm, thresholds

    def configure(self, thresholds: health.Thresholds) -> None:
        self.thresholds = thresholds

    async def probe(self, provider: Provider, timeout: float) -> CheckResult:
        """One provider's health check and capacity report, bounded by ``timeout``, never raising."""
        return await check_provider(self.pm, provider, timeout)

    def decide(self, status: ProviderStatus, state: ProviderState) -> tuple[ProviderStatus, str] | None:
        """The status ``state``'s counts ask for, with its cause (None: leave it), by the current thresholds."""
        return health.decide(status, state, self.thresholds)

    def record(self, results: Sequence[Result], *, actor: str | None = None) -> list[Recorded]:
        """Count ``results`` (in their order) in one transaction; see :mod:`hodei.storage.health_results`.
        A result no newer than the provider's last counted one is not counted again. The changes of health
        and status they make go to the history as ``actor``'s."""
        return record_results(self.store.engine, results, self.decide, actor=actor)

    def _targets(self, names: Sequence[str]) -> tuple[list[Provider], list[StoredProvider]]:
        rows = [self.store.get(name) for name in names] if names else self.store.all()
        invalid = [row for row in rows if not row.valid]
        if names and invalid:
            raise InvalidInput([Problem(row.name, "is not valid, so it cannot be checked: "
                                        + "; ".join(map(str, row.problems))) for row in invalid])
        return [row.to_provider() for row in rows if row.valid], invalid

    async def check_now(self, names: Sequence[str], timeout: float, *, actor: str | None = None,
                        call: Callable[..., Awaitable[Any]] = run_blocking,
                        ) -> tuple[list[CheckResult], list[StoredProvider]]:
        """Check the named providers (every valid one when none are named) now, at once, and record what
        they answer as ``actor``'s. Returns the results by name, and the invalid rows that were left out.
        ``call`` runs the database work off the event loop (the daemon's database link); the checks run on
        the loop, as the daemon's monitor runs them with :meth:`probe`."""
        targets, invalid = await call(self._targets, names)
        results: list[CheckResult] = []

        async def one(provider: Provider) -> None:
            results.append(await self.probe(provider, timeout))

        async with anyio.create_task_group() as group:
            for provider in targets:
                group.start_soon(one, provider)
        results.sort(key=lambda r: r.provider.name)
        await call(functools.partial(self.record, [Result(r.provider.id, r.health, r.capacity) for r in results],
                                     actor=actor))
        return results, invalid

    def check(self, names: Sequence[str], timeout: float, *, actor: str | None = None,
              ) -> tuple[list[CheckResult], list[StoredProvider]]:
        """:meth:`check_now` in an event loop of its own (``hodei providers check`` on the database)."""
        return anyio.run(functools.partial(self.check_now, names, timeout, actor=actor))

    def states(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProviderState]:
        """The recorded state of these providers (those never checked are left out)."""
        return read_states(self.store.engine, ids)
