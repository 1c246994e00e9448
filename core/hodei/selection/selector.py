"""Decisions: requirements through the filters, then the region tiers, then the rankers.

``select`` is the fast path the daemon takes for every job: bit-mask filters, one call per rule,
and only the best static-rank group ranked. ``report`` and ``explain`` are for people: every
filter's verdict on every provider, in words, computed only when asked for.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hodei.domain import Provider, ProviderState
from hodei.errors import NotFound, Problem
from hodei.selection.candidates import Candidate
from hodei.selection.chain import SelectionChain
from hodei.selection.index import ProviderIndex, mask_of
from hodei.selection.report import Check, Explanation, Ranked, Rejection, Report
from hodei.selection.requirements import Requirements
from hodei.selection.rules import Reason, as_reason

log = logging.getLogger(__name__)

TIERS = ("preferred", "allowed", "any")


@dataclass(frozen=True)
class Decision:
    """The fast answer: the provider to use (or ``None``) and the region tier it came from."""

    selected: Candidate | None
    tier: str | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class InvalidRow:
    """A provider row selection cannot use, shown in reports with its problems."""

    name: str
    problems: tuple[Problem, ...] = field(default=())


class Selector:
    """Holds a chain and the index of the current providers; answers decisions against them."""

    def __init__(self, chain: SelectionChain, providers: Sequence[Provider] = (),
                 states: Mapping[uuid.UUID, ProviderState] | None = None, invalid: Iterable[InvalidRow] = ()):
        self.chain = chain
        self.load(providers, states, invalid)

    def load(self, providers: Sequence[Provider], states: Mapping[uuid.UUID, ProviderState] | None = None,
             invalid: Iterable[InvalidRow] = ()) -> None:
        """Rebuild the index: call it when provider rows change, not for every decision."""
        self.index = ProviderIndex(providers, states or {}, self.chain.static_keys)
        self.invalid = list(invalid)

    @classmethod
    def from_store(cls, store: Any, chain: SelectionChain) -> Selector:
        providers, invalid = [], []
        for row in store.list():
            if row.valid:
                providers.append(row.to_provider())
            else:
                invalid.append(InvalidRow(row.name, tuple(row.problems)))
        return cls(chain, providers, store.states(), invalid)

    def update_state(self, provider_id: uuid.UUID, state: ProviderState) -> bool:
        return self.index.update_state(provider_id, state)

    # -- the fast path ----------------------------------------------------------------------

    def _apply(self, rule: Any, mask: int, job: Requirements, warnings: list[str]) -> int:
        """``mask`` narrowed to the providers ``rule`` admits. A failing rule admits all, and says so."""
        try:
            if rule.name in self.chain.indexed:
                return mask & rule.mask(self.index, job)
            members = self.index.members(mask)
            verdicts = list(rule.admit(members, job))
            if len(verdicts) != len(members):
                raise ValueError(f"returned {len(verdicts)} verdicts for {len(members)} candidates")
            return mask_of((c.index for c, admitted in zip(members, verdicts, strict=True) if admitted),
                           len(self.index.candidates))
        except Exception as exc:
            # Failing open keeps jobs placed when a third-party rule breaks; the warning makes it visible.
            message = f"filter {rule.name!r} failed and was skipped: {type(exc).__name__}: {exc}"
            log.error(message)
            warnings.append(message)
            return mask

    def _filtered(self, job: Requirements, warnings: list[str]) -> int:
        mask = self.index.all
        for rule in self.chain.filters:
            if not mask:
                break
            mask = self._apply(rule, mask, job, warnings)
        return mask

    def _tiers(self, mask: int, job: Requirements) -> list[tuple[str, int]]:
        """``mask`` split into the region tiers, best first, each without the ones before it."""
        region = job.preferred_region
        if region is None:
            return [("any", mask)]
        preferred = mask & self.index.preferred_in.get(region, 0)
        allowed = mask & self.index.allowed_in.get(region, 0) & ~preferred
        return [("preferred", preferred), ("allowed", allowed), ("any", mask & ~preferred & ~allowed)]

    def _tier(self, mask: int, job: Requirements) -> tuple[str | None, int]:
        """The first non-empty tier. When it is ``any``, the others were empty: it is every survivor."""
        return next(((name, members) for name, members in self._tiers(mask, job) if members), (None, 0))

    def select(self, job: Requirements) -> Decision:
        warnings: list[str] = []
        tier, mask = self._tier(self._filtered(job, warnings), job)
        if not mask:
            return Decision(None, None, tuple(warnings))
        # Every static ranking key ties within the top group, so only it needs ranking.
        group = self.index.top_group(mask) if self.chain.static_prefix else mask
        members = self.index.members(group)
        if len(members) > 1:
            keys, _ = self.chain.rank_keys(members, job, self.chain.dynamic_steps, warnings)
            best = min(range(len(members)), key=lambda i: (keys[i], members[i].index))
            return Decision(members[best], tier, tuple(warnings))
        return Decision(members[0], tier, tuple(warnings))

    def ordered(self, job: Requirements, limit: int | None = None) -> tuple[list[Candidate], tuple[str, ...]]:
        """Every provider that passes the filters, best first: the preferred tier ranked, then the
        allowed tier, then the rest. Its first is :meth:`select`'s choice; provisioning tries the
        next ones when a provider fails."""
        warnings: list[str] = []
        tiers = [members for _, members in self._tiers(self._filtered(job, warnings), job)]
        result: list[Candidate] = []
        for tier in tiers:
            members = self.index.members(tier)
            if members:
                keys, _ = self.chain.rank_keys(members, job, self.chain.steps, warnings)
                result += [members[i] for i in sorted(range(len(members)), key=lambda i: (keys[i], members[i].index))]
            if limit is not None and len(result) >= limit:
                break
        return (result if limit is None else result[:limit]), tuple(warnings)

    def tier_of(self, candidate: Candidate, job: Requirements) -> str | None:
        """The region tier ``candidate`` falls in for ``job`` (it must pass the filters to be used in it)."""
        return self._tier(1 << candidate.index, job)[0]

    # -- for people -------------------------------------------------------------------------

    def _verdicts(self, job: Requirements, warnings: list[str]) -> list[int]:
        """Each filter's passing mask over every provider."""
        return [self._apply(rule, self.index.all, job, warnings) for rule in self.chain.filters]

    def _reason(self, rule: Any, candidate: Candidate, job: Requirements) -> Reason:
        try:
            return as_reason(rule.explain(candidate, job), rule.name)
        except Exception as exc:
            return as_reason(f"rejected by {rule.name} (its explanation failed: {type(exc).__name__})", rule.name)

    def _notes(self, candidate: Candidate, job: Requirements) -> list[str]:
        notes = []
        for rule in self.chain.filters:
            note = getattr(rule, "note", None)
            if note is None:
                continue
            try:
                text = note(candidate, job)
            except Exception:
                continue
            if text:
                notes.append(text)
        return notes

    def _ranking(self, mask: int, job: Requirements, warnings: list[str]) -> list[Ranked]:
        members = self.index.members(mask)
        if not members:
            return []
        keys, scores = self.chain.rank_keys(members, job, self.chain.steps, warnings)
        order = sorted(range(len(members)), key=lambda i: (keys[i], members[i].index))
        return [Ranked(members[i], position + 1, scores[i], keys[i], tuple(self._notes(members[i], job)))
                for position, i in enumerate(order)]

    def report(self, job: Requirements) -> Report:
        """The whole decision, as a dry run shows it: ranking, every rejection with its reasons."""
        warnings: list[str] = []
        verdicts = self._verdicts(job, warnings)
        survivors = self.index.all
        for passing in verdicts:
            survivors &= passing
        rejected = []
        for candidate in self.index.candidates:
            bit = 1 << candidate.index
            if survivors & bit:
                continue
            reasons = [(rule.name, self._reason(rule, candidate, job))
                       for rule, passing in zip(self.chain.filters, verdicts, strict=True) if not passing & bit]
            rejected.append(Rejection(candidate.name, reasons))
        for row in self.invalid:
            text = "; ".join(str(p) for p in row.problems) or "invalid"
            rejected.append(Rejection(row.name, [("config", Reason(
                f"the row is invalid: {text}", "invalid", text, "fix the row (`hodei providers show NAME`)"))]))
        tier, mask = self._tier(survivors, job)
        ranking = self._ranking(mask, job, warnings)
        return Report(
            selected=ranking[0].candidate.name if ranking else None, tier=tier, ranking=ranking,
            rejected=sorted(rejected, key=lambda r: r.name), total=len(self.index.candidates) + len(self.invalid),
            eligible=bin(survivors).count("1"), filters=self.chain.filter_names, job=job, warnings=tuple(warnings),
        )

    def explain(self, name: str, job: Requirements) -> Explanation:
        """Why ``name`` was or was not chosen for ``job``, and what would make it fit."""
        report = self.report(job)
        candidate = self.index.by_name.get(name)
        if candidate is None:
            invalid = next((row for row in self.invalid if row.name == name), None)
            if invalid is None:
                raise NotFound(f"no provider named {name!r}")
            rejection = next(r for r in report.rejected if r.name == name)
            _, reason = rejection.reasons[0]
            return Explanation(name, report, [Check("config", False, reason.message, reason.hint)], None, None)
        warnings: list[str] = []
        checks = []
        for rule in self.chain.filters:
            bit = 1 << candidate.index
            passed = bool(self._apply(rule, bit, job, warnings) & bit)
            if passed:
                note = None
                try:
                    note = rule.note(candidate, job) if hasattr(rule, "note") else None
                except Exception:
                    pass
                checks.append(Check(rule.name, True, note or "passes", ""))
            else:
                reason = self._reason(rule, candidate, job)
                checks.append(Check(rule.name, False, reason.message, reason.hint))
        own_tier = None
        if all(check.passed for check in checks):
            own_tier, _ = self._tier(1 << candidate.index, job)
        ranked = next((r for r in report.ranking if r.candidate is candidate), None)
        behind = ""
        if ranked is not None and ranked.position > 1:
            behind = self._behind(report.ranking[0], ranked, job)
        return Explanation(name, report, checks, own_tier, ranked, behind)

    def _behind(self, first: Ranked, other: Ranked, job: Requirements) -> str:
        """The rank step that puts ``first`` ahead of ``other``, in words."""
        a, b = first.candidate, other.candidate
        scored = False
        for step in self.chain.steps:
            if step.weight is not None:
                if scored:
                    continue
                scored = True
                if first.score != other.score:
                    return (f"{a.name} ranks first on the weighted score, {first.score:.3f} against {other.score:.3f} "
                            f"(utilization {a.utilization:.0%} against {b.utilization:.0%})")
                continue
            try:
                mine, theirs = step.ranker.key([a, b], job)
            except Exception:
                continue
            if mine != theirs:
                if step.name == "priority":
                    return f"{a.name} ranks first on priority, {a.priority} against {b.priority}"
                if step.name == "name":
                    return f"{a.name} ranks first on name (everything else ties)"
                return f"{a.name} ranks first on {step.name}"
        return f"{a.name} ranks first"
