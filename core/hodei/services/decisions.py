"""The recent decisions of a running daemon: its last selections and provisions, in a bounded ring in
memory (the status page's decisions page reads it).

A selection is kept as what was known when it was made: the winner, the region tier, the runners-up
with their scores, and how many providers each filter rejected with a few of their names. Everything
is taken from the decision the selector already made (bit counts of its masks, the names of a few
lowest bits), so keeping it costs a selection next to nothing, whatever the fleet's size; no selector
or index is held, so the ring's memory follows its length, not the fleet. A provision adds the
attempts (provider, outcome, reason: already masked of the job's secrets by the provisioner).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hodei.redaction import shorten
from hodei.selection import Selector
from hodei.selection.selector import Decision

# How many runners-up, and names per rejecting filter, one entry keeps.
RUNNERS_UP = 5
NAMES_PER_FILTER = 3
# What an entry keeps of a job's requirements, as text: bounded, whatever the job sent.
JOB_CHARS = 300


@dataclass(frozen=True)
class Rejected:
    """One filter's rejections in a decision: how many it rejected first, and the first few by name."""

    filter: str
    count: int
    names: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """One selection (``kind`` "selection": ``hodei select``, gRPC Select) or the selection of a
    provision (``kind`` "provision", with its ``attempts`` and ``outcome`` once it ends)."""

    number: int
    at: datetime
    kind: str
    job: str
    winner: str | None
    tier: str | None
    candidates: int
    runners_up: tuple[tuple[str, float], ...]
    rejected: tuple[Rejected, ...]
    warnings: tuple[str, ...] = ()
    attempts: tuple[tuple[str, str, str], ...] = ()  # (provider, outcome, reason)
    outcome: str = ""  # a provision's end: "provisioned on X", "no provider could take it: ..."


def _lowest_bits(mask: int, count: int) -> list[int]:
    found: list[int] = []
    while mask and len(found) < count:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return found


def _job_text(document: Mapping[str, Any]) -> str:
    # The job as a reader recognises it; secret variables are never kept (the requirements' document
    # names them only as ***, and this keeps none of env's values either).
    parts = []
    for key, value in document.items():
        if key in ("env", "secret_env") or value in (None, "", [], {}, ()):
            continue
        parts.append(f"{key}={value}")
    return shorten(" ".join(parts) or "any provider", JOB_CHARS)


class Decisions:
    """The last ``size`` decisions, newest first; safe to note from any thread."""

    def __init__(self, size: int = 200):
        self._entries: deque[Entry] = deque(maxlen=size)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """How many decisions are kept."""
        return self._entries.maxlen or 0

    def resize(self, size: int) -> None:
        with self._lock:
            self._entries = deque(self._entries, maxlen=size)

    def latest(self, limit: int | None = None) -> list[Entry]:
        with self._lock:
            entries = list(self._entries)
        entries.reverse()
        return entries if limit is None else entries[:limit]

    def note(self, selector: Selector, decision: Decision, kind: str) -> int:
        """Keep ``decision`` (made by ``selector``); returns its number, for :meth:`provisioned`."""
        filters = selector.chain.filters
        candidates = selector.index.candidates
        rejected = []
        for rule, asked, passed in zip(filters, decision.asked, decision.passed, strict=False):
            mask = asked & ~passed  # rejected by this filter first (earlier filters asked them nothing more)
            if mask:
                names = tuple(candidates[i].name for i in _lowest_bits(mask, NAMES_PER_FILTER))
                rejected.append(Rejected(rule.name, mask.bit_count(), names))
        if selector.invalid:
            rejected.append(Rejected("config", len(selector.invalid),
                                     tuple(row.name for row in list(selector.invalid)[:NAMES_PER_FILTER])))
        chosen = decision.selected
        entry = Entry(
            number=next(self._numbers), at=datetime.now(UTC), kind=kind, job=_job_text(decision.job.document()),
            winner=chosen.name if chosen is not None else None, tier=decision.tier, candidates=decision.candidates,
            runners_up=tuple((c.name, score) for c, score in decision.ranking[1:1 + RUNNERS_UP]),
            rejected=tuple(rejected), warnings=tuple(decision.warnings))
        with self._lock:
            self._entries.append(entry)
        return entry.number

    def provisioned(self, number: int, attempts: Sequence[Any], outcome: str) -> None:
        """A provision's attempts (each with ``provider``, ``outcome``, ``reason``) and how it ended."""
        tried = tuple((str(a.provider), str(a.outcome), shorten(str(a.reason), JOB_CHARS)) for a in attempts)
        with self._lock:
            for position, entry in enumerate(self._entries):
                if entry.number == number:
                    self._entries[position] = replace(entry, attempts=tried, outcome=shorten(outcome, JOB_CHARS))
                    return


# The numbers of the entries noted for the provision running in this task (its selection is made deep in
# the provisioner, which knows nothing of the ring).
_provision: ContextVar[list[int] | None] = ContextVar("hodei_provision_decisions", default=None)


@contextmanager
def provision_entries() -> Iterator[list[int]]:
    """While a provision runs: the numbers of the decisions noted for it (see :func:`noted`)."""
    numbers: list[int] = []
    token = _provision.set(numbers)
    try:
        yield numbers
    finally:
        _provision.reset(token)


def noted(number: int) -> None:
    """Tell the provision running in this task (if any) that its selection is entry ``number``."""
    numbers = _provision.get()
    if numbers is not None:
        numbers.append(number)


__all__ = ["Decisions", "Entry", "Rejected", "noted", "provision_entries"]
