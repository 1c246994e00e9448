"""What a dry run and ``hodei explain`` show: as JSON for programs and as text for operators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hodei.selection.candidates import Candidate
from hodei.selection.requirements import Requirements
from hodei.selection.rules import Reason


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    position: int
    score: float
    key: tuple[Any, ...] = field(repr=False)
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {"name": c.name, "priority": c.priority, "utilization": round(c.utilization, 6),
                "score": round(self.score, 6), "workers": f"{c.load}/{c.max_workers}",
                "health": c.health.value if c.health else None, "notes": list(self.notes)}


@dataclass(frozen=True)
class Rejection:
    name: str
    reasons: list[tuple[str, Reason]]  # (filter name, reason), in chain order

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reasons": [{"filter": f, "message": r.message, "hint": r.hint}
                                               for f, r in self.reasons]}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Report:
    selected: str | None
    tier: str | None
    ranking: list[Ranked]
    rejected: list[Rejection]
    total: int
    eligible: int
    filters: list[str]
    job: Requirements
    warnings: tuple[str, ...] = ()

    def _groups(self) -> list[tuple[str, list[str]]]:
        order = {name: i for i, name in enumerate([*self.filters, "config"])}
        groups: dict[tuple[int, str], list[str]] = {}
        for rejection in self.rejected:
            for rule, reason in rejection.reasons:
                entry = f"{rejection.name}: {reason.detail}" if reason.detail else rejection.name
                groups.setdefault((order.get(rule, len(order)), reason.group or f"rejected by {rule}"), []).append(entry)
        return [(group, entries) for (_, group), entries in sorted(groups.items(), key=lambda item: item[0][0])]

    @property
    def summary(self) -> str:
        causes = ", ".join(f"{len(entries)} {group} ({', '.join(entries)})" for group, entries in self._groups())
        if self.selected is None:
            if self.total == 0:
                return "0/0 providers available: no providers are configured"
            return f"0/{self.total} providers available: {causes}"
        text = (f"selected {self.selected} (tier {self.tier}; {_plural(len(self.ranking), 'candidate')} in the tier, "
                f"{self.eligible}/{self.total} providers eligible)")
        return f"{text}; rejected: {causes}" if causes else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "selected": self.selected, "tier": self.tier,
            "ranking": [r.as_dict() for r in self.ranking],
            "rejected": [r.as_dict() for r in self.rejected],
            "summary": self.summary, "warnings": list(self.warnings),
        }

    def text(self) -> str:
        lines = [self.summary]
        if self.ranking:
            lines.append("")
            lines.append(f"ranking (tier {self.tier}):")
            width = max(len(r.candidate.name) for r in self.ranking)
            for r in self.ranking:
                c = r.candidate
                notes = f"  [{'; '.join(r.notes)}]" if r.notes else ""
                lines.append(f"  {r.position:>3}. {c.name:<{width}}  priority {c.priority:<5} "
                             f"workers {c.load}/{c.max_workers:<6} score {r.score:.3f}{notes}")
        if self.rejected:
            lines.append("")
            lines.append("rejected:")
            for rejection in self.rejected:
                for i, (rule, reason) in enumerate(rejection.reasons):
                    head = rejection.name if i == 0 else ""
                    lines.append(f"  {head:<{max(len(r.name) for r in self.rejected)}}  [{rule}] {reason.message}")
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Check:
    filter: str
    passed: bool
    message: str
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"filter": self.filter, "passed": self.passed, "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class Explanation:
    """One provider against one job: each filter's verdict, its tier, its rank, what would change it."""

    name: str
    report: Report
    checks: list[Check]
    tier: str | None  # the provider's own region tier, when it passes every filter
    ranked: Ranked | None  # its place in the ranking, when it is in the tier used
    behind: str = ""  # why the provider ranked first beats it

    @property
    def fits(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def selected(self) -> str | None:
        """The provider the job would get (whichever it is)."""
        return self.report.selected

    @property
    def verdict(self) -> str:
        if not self.fits:
            failed = [c.filter for c in self.checks if not c.passed]
            return f"{self.name} does not fit: rejected by {', '.join(failed)}"
        if self.report.selected == self.name:
            return f"{self.name} is selected (tier {self.tier})"
        if self.ranked is None:
            return (f"{self.name} fits but is in tier {self.tier}, and tier {self.report.tier} has candidates: "
                    f"{self._tier_hint()}")
        return f"{self.name} fits, ranked {self.ranked.position} of {len(self.report.ranking)}: {self.behind}"

    def _tier_hint(self) -> str:
        region = self.report.job.preferred_region
        if self.report.tier == "preferred":
            return f"set its preferred_region to {region!r} to compete with them"
        return f"list {region!r} in its allowed_regions, or make it its preferred_region, to compete with them"

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.name, "fits": self.fits, "selected": self.report.selected,
            "decision_tier": self.report.tier, "tier": self.tier,
            "rank": self.ranked.position if self.ranked else None,
            "checks": [c.as_dict() for c in self.checks], "summary": self.verdict,
        }

    def text(self) -> str:
        width = max((len(c.filter) for c in self.checks), default=0)
        lines = [self.verdict, ""]
        for check in self.checks:
            mark = "ok  " if check.passed else "FAIL"
            lines.append(f"  {mark} {check.filter:<{width}}  {check.message}")
            if check.hint and not check.passed:
                lines.append(f"       {'':<{width}}  to fit: {check.hint}")
        lines += ["", f"decision: {self.report.summary}"]
        return "\n".join(lines)
