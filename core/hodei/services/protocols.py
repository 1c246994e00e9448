"""What the CLI asks of the services. Two implementations each: the local services (on the database)
and the daemon's API (:mod:`hodei.api.remote`); the type checker holds both to these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from hodei.provider_change import ProviderChange
from hodei.services.views import Change, CheckReport, CooldownReset, HistoryEntry, ProviderView, Worker
from hodei.workers.queue import QueueEntry


class Providers(Protocol):
    def find(self, *, provider_type: str | None = None, status: str | None = None,
             limit: int | None = None) -> list[ProviderView]:
        """Every provider (by name), or those of one type and/or status; the first ``limit`` of them."""
        ...

    def get(self, ref: str) -> ProviderView:
        """One provider by name or id. :raises NotFound:"""
        ...

    def create(self, document: Mapping[str, Any]) -> ProviderView:
        """Add one. :raises InvalidInput: naming each field at fault; :raises AlreadyExists:"""
        ...

    def update(self, ref: str, change: ProviderChange) -> ProviderView:
        """Change one in one transaction. :raises StaleVersion: :raises Conflict:"""
        ...

    def set_status(self, ref: str, status: str, cause: str) -> ProviderView:
        """ACTIVE, DISABLED or MAINTENANCE (UNHEALTHY is the health monitor's)."""
        ...

    def delete(self, ref: str) -> ProviderView:
        """Remove one; answers with the row and state it had."""
        ...

    def reset_cooldown(self, ref: str) -> CooldownReset:
        """End a provider's cooldown and its streak of failed provisions now. :raises NotFound:"""
        ...

    def history(self, ref: str, limit: int = 50) -> list[HistoryEntry]:
        """Every change (status, health, created, changed, deleted, cooldown), newest first (a deleted
        provider's too, by id)."""
        ...

    def apply(self, documents: Sequence[Any], *, dry_run: bool = False, prune: bool = False) -> list[Change]:
        """Make ``documents`` the providers as written, by name, in one transaction (all or nothing); with
        ``prune``, delete those they do not name. Secret config values masked in the changes."""
        ...

    def check(self, names: Sequence[str], timeout: float | None = None) -> CheckReport:
        """Check these providers (every valid one when none are named) now, each within ``timeout`` (default:
        ``[health] timeout_seconds`` of whoever runs the checks), and record what they answer."""
        ...


class Answer(Protocol):
    """A selection report or an explanation: JSON for programs, text for people."""

    @property
    def selected(self) -> str | None: ...

    def as_dict(self) -> dict[str, Any]: ...

    def text(self) -> str: ...


class Selection(Protocol):
    def select(self, requirements: Mapping[str, Any], *, everything: bool = False) -> Answer:
        """Which provider a job with these requirements gets, and why (a dry run): the first few ranked
        and rejected providers, or with ``everything`` the whole lists."""
        ...

    def explain(self, name: str, requirements: Mapping[str, Any]) -> Answer:
        """Why provider ``name`` would or would not run the job."""
        ...


class Workers(Protocol):
    async def provision(self, requirements: Mapping[str, Any], *, wait_seconds: float = 0.0,
                        request_id: str = "") -> Worker:
        """Start a worker on the best provider, waiting up to ``wait_seconds`` in the placement queue.
        :raises NoProviderAvailable:"""
        ...

    async def waiting(self, limit: int = 200) -> list[QueueEntry]:
        """The first ``limit`` requests waiting in the placement queue, in order."""
        ...

    async def cancel(self, request_id: str) -> None:
        """Cancel a waiting request. :raises NotFound:"""
        ...

    async def release(self, worker_id: str, reason: str) -> Worker: ...

    async def get(self, worker_id: str) -> Worker: ...

    async def find(self, *, provider: str | None = None, states: Sequence[str] = (), everything: bool = False,
                   limit: int = 200) -> list[Worker]: ...
