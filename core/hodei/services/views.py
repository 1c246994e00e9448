"""What the services answer with: the same values whichever implementation (local or over gRPC)
gave them, so every entry point shows them alike."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hodei.columns import Unreadable
from hodei.cooldown import Streak
from hodei.domain import ProviderState
from hodei.errors import Problem
from hodei.redaction import quote
from hodei.storage.membership import DaemonInfo
from hodei.storage.provider_state import HistoryEntry
from hodei.storage.rows import as_uuid, row_key
from hodei.store import Change
from hodei.workers import Attempt, Worker

# The values the services answer with, defined where they are made and named here, so the entry points
# (hodei.api, hodei.cli) import them from the services alone.
__all__ = ["Attempt", "Change", "CheckOutcome", "CheckReport", "CooldownReset", "DaemonInfo", "HistoryEntry",
           "ProviderView", "Streak", "Worker", "sorted_pairs", "state_document"]


def sorted_pairs(value: Any) -> Any:
    """Labels and annotations by key: a JSON object's order is not data (PostgreSQL's jsonb and the
    API's maps do not keep it), so every output shows them sorted."""
    return dict(sorted(value.items())) if isinstance(value, Mapping) else value


def state_document(state: ProviderState) -> dict[str, Any]:
    """A provider's run-time state as every command prints it in JSON."""
    return {
        "health": state.health.value if state.health else None,
        "health_reason": state.health_reason or None,
        "checked_at": state.checked_at.isoformat() if state.checked_at else None,
        "active_workers": state.active_workers, "reserved_workers": state.reserved_workers,
        "per_worker": {"cpu": state.per_worker.cpu, "memory": state.per_worker.memory, "gpu": state.per_worker.gpu},
        "cooldown": {"until": state.cooldown_until.isoformat() if state.cooldown_until else None,
                     "provision_failures": state.provision_failures,
                     "last_error": state.last_provision_error or None},
    }


@dataclass(frozen=True)
class ProviderView:
    """A provider as shown: the seed's fields (secret config values masked), ``id``, ``created_at``,
    ``updated_at``, ``valid`` and ``problems`` in ``document``, and its run-time ``state``."""

    document: Mapping[str, Any]
    state: ProviderState

    @property
    def id(self) -> uuid.UUID:
        """The id as a UUID; for an id edited in SQL into something else, the UUID Hodei knows that row by."""
        return row_key(as_uuid(self.document["id"]) or Unreadable(self.document["id"], ""))

    @property
    def name(self) -> str:
        return str(self.document["name"])

    @property
    def updated_at(self) -> datetime:
        return datetime.fromisoformat(self.document["updated_at"])

    def as_json(self) -> dict[str, Any]:
        return {**self.document, "state": state_document(self.state)}


@dataclass(frozen=True)
class CheckOutcome:
    """What one provider answered to a check made now (``hodei providers check``, ``CheckProviders``)."""

    provider_id: str
    name: str
    health: str  # Healthy, Degraded or Unhealthy
    reason: str
    duration_seconds: float
    active_workers: int | None  # None: no capacity report
    max_workers: int
    capacity_error: str = ""


@dataclass(frozen=True)
class CheckReport:
    """A check of some providers: their answers by name, and the invalid rows left out of a check of all."""

    results: tuple[CheckOutcome, ...]
    skipped: tuple[tuple[str, tuple[Problem, ...]], ...] = ()

    def document(self) -> list[dict[str, Any]]:
        """As ``hodei providers check -o json`` prints it."""
        return [{"name": r.name, "health": r.health, "reason": r.reason, "duration_seconds": r.duration_seconds,
                 "active_workers": r.active_workers, "capacity_error": r.capacity_error or None}
                for r in self.results]


@dataclass(frozen=True)
class CooldownReset:
    """What ``hodei providers reset-cooldown`` did: the provider after it, and the streak it ended
    (``Streak()``: it had none, so nothing changed)."""

    provider: ProviderView
    ended: Streak

    def message(self) -> str:
        name = self.provider.name
        if self.ended.failures == 0 and self.ended.until is None:
            return f"provider {quote(name)} was not cooling down and had no failed provisions; nothing changed"
        # When the cooldown would have ended is in the history (`hodei providers history NAME`).
        was = "its cooldown ended" if self.ended.until is not None else "it was not cooling down yet"
        return (f"cooldown of provider {quote(name)} reset after {self.ended.failures} failed provisions in a row: "
                f"{was}; selection tries it again")
