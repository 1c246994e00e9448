"""What ``hodei plan`` shows: per job, per provider, the summary line and the advice. One JSON shape (the API
answers with it, ``-o json`` prints it) and one rendering of it, so both CLI modes print the same bytes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PlannedJob:
    """Job ``index`` (its place in the file, from 0): the provider and tier it gets, or why it waits (the
    first reason is the summary's words for it)."""

    index: int
    provider: str | None
    tier: str | None
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "provider": self.provider, "tier": self.tier, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class ProviderSlots:
    """A provider's slots in use before the batch and after it."""

    name: str
    max_workers: int
    before: int
    after: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "max_workers": self.max_workers, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Advice:
    """One change that places more of the batch, with how many more it placed when re-planned with it."""

    kind: str  # "max_workers", "new_provider", "allow_image"
    text: str
    places: int
    # The change itself, for programs: {"provider", "max_workers"}, {"provider", "image"}, or {"provider": a
    # provider document, as `providers apply` takes it}.
    change: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        # Keys sorted at every level, as the API's Struct gives them back: both CLI modes print the same.
        change = json.loads(json.dumps(self.change, sort_keys=True))
        return {"kind": self.kind, "text": self.text, "places": self.places, "change": change}


@dataclass(frozen=True)
class PlanReport:
    jobs: Sequence[PlannedJob]
    providers: Sequence[ProviderSlots]
    advice: Sequence[Advice] = ()

    @property
    def placed(self) -> int:
        return sum(1 for job in self.jobs if job.provider is not None)

    @property
    def waiting(self) -> int:
        return len(self.jobs) - self.placed

    def as_dict(self) -> dict[str, Any]:
        return {"placed": self.placed, "waiting": self.waiting, "jobs": [job.as_dict() for job in self.jobs],
                "providers": [p.as_dict() for p in self.providers], "advice": [a.as_dict() for a in self.advice]}

    def text(self) -> str:
        return plan_text(self.as_dict())


def summary(document: Mapping[str, Any]) -> str:
    """"812 of 1,000 placed; 188 would wait: 150 no capacity in eu-west-1, 38 no provider has a gpu"."""
    jobs = document["jobs"]
    text = f"{document['placed']:,} of {len(jobs):,} placed"
    if not document["waiting"]:
        return text
    why = Counter(job["reasons"][0] if job["reasons"] else "no reason given" for job in jobs if job["provider"] is None)
    parts = ", ".join(f"{count:,} {reason}" for reason, count in sorted(why.items(), key=lambda item: (-item[1], item[0])))
    return f"{text}; {document['waiting']:,} would wait: {parts}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [list(headers), *rows]]


def _cell(value: Any) -> str:
    return "-" if value is None else "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in str(value))


def plan_text(document: Mapping[str, Any]) -> str:
    """The plan for people, from its JSON (both CLI modes render it with this)."""
    lines = _table(("JOB", "PROVIDER", "TIER", "WHY NOT"),
                   [(str(job["index"]), _cell(job["provider"]), _cell(job["tier"]),
                     _cell("; ".join(job["reasons"])) if job["reasons"] else "")
                    for job in document["jobs"]])
    changed = [p for p in document["providers"] if p["before"] != p["after"]]
    if changed:
        lines.append("")
        lines += _table(("PROVIDER", "BEFORE", "AFTER", "MAX"),
                        [(_cell(p["name"]), str(p["before"]), str(p["after"]), str(p["max_workers"])) for p in changed])
    unchanged = len(document["providers"]) - len(changed)
    if unchanged:
        if not changed:
            lines.append("")
        lines.append(f"{unchanged:,} other provider{'' if unchanged == 1 else 's'} take{'s' if unchanged == 1 else ''} "
                     "no job of the batch")
    lines += ["", summary(document)]
    if document["advice"]:
        lines.append("advice (each checked by planning again with it applied):")
        lines += [f"  - {_cell(a['text'])}: places {a['places']:,} more" for a in document["advice"]]
    return "\n".join(lines)
