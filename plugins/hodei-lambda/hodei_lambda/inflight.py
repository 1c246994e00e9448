"""The invocations this process started, per provider, counted as in flight until they must have ended.

Lambda has no API that lists the asynchronous invocations of a function that are running, so
the plugin keeps its own account: an invocation is in flight from the moment Lambda accepted it
until the function's timeout has passed (no invocation runs longer) or until it is deprovisioned,
whichever comes first. The account lives in memory and is lost when the daemon restarts; the
core's workers table is the durable record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Invocation:
    worker_id: str
    request_id: str
    """Lambda's id of the invocation: the worker sees it as its context's request id."""
    accepted_at: datetime
    ends_by: float
    """On the registry's monotonic clock: when the function's timeout has surely stopped it."""


class InFlight:
    """A thread-safe registry: provisioning records from the worker thread that made the call."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._by_provider: dict[str, dict[str, Invocation]] = {}

    def record(self, provider_id: object, worker_id: str, request_id: str, lifetime_seconds: float) -> Invocation:
        invocation = Invocation(worker_id, request_id, self._now(), self._clock() + lifetime_seconds)
        with self._lock:
            self._by_provider.setdefault(str(provider_id), {})[worker_id] = invocation
        return invocation

    def live(self, provider_id: object) -> list[Invocation]:
        """The provider's invocations that may still run, oldest first; forgets the others."""
        now = self._clock()
        with self._lock:
            invocations = self._by_provider.get(str(provider_id), {})
            for worker_id in [w for w, invocation in invocations.items() if invocation.ends_by <= now]:
                del invocations[worker_id]
            return sorted(invocations.values(), key=lambda invocation: invocation.accepted_at)

    def end(self, provider_id: object, worker_id: str) -> Invocation | None:
        """Stop counting the worker; ``None`` when it was not counted (ended, never ours, or a restart)."""
        with self._lock:
            return self._by_provider.get(str(provider_id), {}).pop(worker_id, None)


IN_FLIGHT = InFlight()
"""The daemon's registry, shared by every plugin manager in the process."""
