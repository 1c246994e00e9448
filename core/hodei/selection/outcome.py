"""What a served selection tells the telemetry: one record per decision, made after it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SelectionOutcome:
    """One decision: when it started (ns since the epoch), how long it took, what it found, and, when
    it found nothing, how many providers each filter rejected."""

    started_ns: int
    seconds: float
    tier: str | None
    provider: str | None
    provider_type: str | None
    candidates: int
    warnings: tuple[str, ...] = ()
    rejections: Mapping[str, int] = field(default_factory=dict)


class SelectionRecorder(Protocol):
    def record_selection(self, outcome: SelectionOutcome) -> None:
        """Count and trace one served selection (span ``hodei.selection``, ``hodei_selection_*``)."""
        ...


class NotRecorded:
    """For a command run on the database: there is no daemon's telemetry to record in."""

    def record_selection(self, outcome: SelectionOutcome) -> None:
        pass
