"""What a dry run and ``hodei explain`` show: as JSON for programs and as text for operators."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hodei.selection.candidates import Candidate
from hodei.selection.requirements import Requirements
from hodei.selection.rules import Reason

# How many ranked and rejected providers an answer shows unless asked for more, and how many providers
# the summary names per filter: a report's size must not grow with the fleet.
SHOWN = 10
# The most one page of an answer carries (``hodei select --all`` and the API page through the rest).
MAX_PAGE = 1000


@dataclass(frozen=True)
class Page:
    """Which part of a report's two lists (the ranking, the rejected providers by name) to show:
    ``size`` of each from position ``offset`` on; ``size=None``: every one."""

    offset: int = 0
    size: int | None = SHOWN

    @property
    def end(self) -> int | None:
        return None if self.size is None else self.offset + self.size


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
                "health": c.health.value if c.health else None, "notes": list(self.notes),
                "position": self.position}


@dataclass(frozen=True)
class Rejection:
    name: str
    reasons: list[tuple[str, Reason]]  # (filter name, reason), in chain order

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reasons": [{"filter": f, "message": r.message, "hint": r.hint}
                                               for f, r in self.reasons]}


@dataclass(frozen=True)
class Cause:
    """One filter's part of the summary: how many providers it rejected, and the first of them by name
    with their reasons (all of them when ``count`` is no more than :data:`SHOWN`)."""

    filter: str
    count: int
    examples: list[tuple[str, Reason]]

    @property
    def hint(self) -> str:
        return self.examples[0][1].hint if self.examples else ""

    def as_dict(self) -> dict[str, Any]:
        return {"filter": self.filter, "count": self.count, "hint": self.hint}

    def parts(self) -> list[str]:
        """The summary's words for this filter: the seed's checklist ("2 not ACTIVE (b: DISABLED, c:
        MAINTENANCE)"), or, past :data:`SHOWN` providers, the count and the first few."""
        entries = [f"{name}: {reason.detail}" if reason.detail else name for name, reason in self.examples]
        if self.count > len(self.examples):
            return [f"{self.count} rejected by {self.filter} ({', '.join(entries)}, and "
                    f"{self.count - len(entries)} more)"]
        groups: dict[str, list[str]] = {}
        for entry, (_, reason) in zip(entries, self.examples, strict=True):
            groups.setdefault(reason.group or f"rejected by {self.filter}", []).append(entry)
        return [f"{len(found)} {group} ({', '.join(found)})" for group, found in groups.items()]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Report:
    """A decision as a dry run shows it. ``ranking`` and ``rejected`` are one page of the whole lists
    (``in_tier`` ranked, ``rejected_total`` rejected), from position ``offset``; ``causes`` count every
    rejection by filter, whatever the page."""

    selected: str | None
    tier: str | None
    ranking: list[Ranked]
    rejected: list[Rejection]
    total: int
    eligible: int
    filters: list[str]
    job: Requirements
    warnings: tuple[str, ...] = ()
    causes: list[Cause] = field(default_factory=list)
    in_tier: int = 0
    rejected_total: int = 0
    offset: int = 0
    next_page_token: str = ""  # empty: this page is the last

    @property
    def summary(self) -> str:
        causes = ", ".join(part for cause in self.causes for part in cause.parts())
        if self.selected is None:
            if self.total == 0:
                return "0/0 providers available: no providers are configured"
            return f"0/{self.total} providers available: {causes}"
        text = (f"selected {self.selected} (tier {self.tier}; {_plural(self.in_tier, 'candidate')} in the tier, "
                f"{self.eligible}/{self.total} providers eligible)")
        return f"{text}; rejected: {causes}" if causes else text

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON, keys in the order of the API's SelectResponse (the CLI prints the same in
        both modes)."""
        return {
            "selected": self.selected, "tier": self.tier,
            "ranking": [r.as_dict() for r in self.ranking],
            "rejected": [r.as_dict() for r in self.rejected],
            "summary": self.summary, "warnings": list(self.warnings),
            "rejection_counts": [c.as_dict() for c in self.causes],
            "total": self.total, "eligible": self.eligible, "in_tier": self.in_tier,
            "rejected_total": self.rejected_total, "offset": self.offset, "next_page_token": self.next_page_token,
        }

    def text(self) -> str:
        return report_text(self.as_dict())


def _span(offset: int, shown: int, total: int) -> str:
    return f"{offset + 1}-{offset + shown} of {total:,}" if shown else f"none of {total:,}"


def report_text(report: Mapping[str, Any]) -> str:
    """A report (:meth:`Report.as_dict`, or the API's answer as a dict) as ``hodei select`` prints it."""
    lines = [report["summary"]]
    ranking, rejected = report["ranking"], report["rejected"]
    if ranking:
        lines.append("")
        lines.append(f"ranking (tier {report['tier']}):")
        width = max(len(r["name"]) for r in ranking)
        for r in ranking:
            notes = f"  [{'; '.join(r['notes'])}]" if r["notes"] else ""
            used, _, limit = r["workers"].partition("/")
            lines.append(f"  {r['position']:>3}. {r['name']:<{width}}  priority {r['priority']:<5} "
                         f"workers {used}/{limit:<6} score {r['score']:.3f}{notes}")
    if rejected:
        lines.append("")
        lines.append("rejected:")
        width = max(len(r["name"]) for r in rejected)
        for rejection in rejected:
            for i, reason in enumerate(rejection["reasons"]):
                head = rejection["name"] if i == 0 else ""
                lines.append(f"  {head:<{width}}  [{reason['filter']}] {reason['message']}")
    offset, in_tier, rejected_total = report["offset"], report["in_tier"], report["rejected_total"]
    if offset or len(ranking) < in_tier or len(rejected) < rejected_total:
        lines.append("")
        lines.append(f"shown: ranked {_span(offset if ranking else 0, len(ranking), in_tier)}, rejected "
                     f"{_span(offset if rejected else 0, len(rejected), rejected_total)}; "
                     "`hodei select --all` lists every one")
    for warning in report["warnings"]:
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
        return f"{self.name} fits, ranked {self.ranked.position} of {self.report.in_tier}: {self.behind}"

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
