"""Decisions: requirements through the filters, then the region tiers, then the rankers.

Every caller takes the same path (:meth:`Selector.decide`): the filters narrow a bit mask of
candidates one rule at a time (one call per rule), the first non-empty region tier is taken, and
only as much of it is ranked as the caller will use (one provider to serve a job, a few to fail over
to, the whole tier for a report). Reasons in words (``report``, ``explain``) are computed afterwards,
and only for the providers they show.
"""

from __future__ import annotations

import heapq
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hodei.domain import Provider, ProviderState
from hodei.errors import NotFound, Problem
from hodei.hints import command
from hodei.redaction import quote
from hodei.selection.candidates import Candidate
from hodei.selection.chain import SelectionChain
from hodei.selection.index import ProviderIndex, mask_of
from hodei.selection.pages import page_token
from hodei.selection.report import SHOWN, Cause, Check, Explanation, Page, Ranked, Rejection, Report
from hodei.selection.requirements import Requirements
from hodei.selection.rules import (
    AnyFilter,
    Filter,
    FilterRule,
    IndexedFilterRule,
    Mask,
    OrderingRule,
    Reason,
    as_reason,
    depends_on,
    mask_bits,
    on_error,
)

log = logging.getLogger(__name__)

TIERS = ("preferred", "allowed", "any")


@dataclass(frozen=True)
class InvalidRow:
    """A provider row selection cannot use, shown in reports with its problems."""

    name: str
    problems: tuple[Problem, ...] = field(default=())


@dataclass
class Decision:
    """One pass of a job through the chain: what passed each filter, the tier, and the ranking.

    ``ranking`` holds the best ``limit`` providers of the tier (all of it for ``limit=None``), best first,
    with their weighted scores; ``selected`` is the first. ``tiers`` lists every tier's survivors, best first.
    """

    job: Requirements
    passed: list[int]  # per filter: of the providers it was asked about, those it admitted
    asked: list[int]  # per filter: the providers it was asked about (the survivors of the filters before it,
    #                   and any a report or the rejection counts asked about since)
    survivors: int
    tier: str | None
    tiers: list[tuple[str, int]]
    ranking: list[tuple[Candidate, float]]
    candidates: int
    warnings: list[str] = field(default_factory=list)

    @property
    def selected(self) -> Candidate | None:
        return self.ranking[0][0] if self.ranking else None


def _best(count: int, keys: Sequence[tuple[Any, int]]) -> list[int]:
    """The positions of the ``count`` lowest ``keys``, lowest first: the best few of a large group without
    sorting all of it (a job wants one provider)."""
    positions = range(len(keys))
    if count >= len(keys):
        return sorted(positions, key=keys.__getitem__)
    return heapq.nsmallest(count, positions, key=keys.__getitem__)


class Selector:
    """Holds a chain and the index of the current providers; answers decisions against them."""

    def __init__(self, chain: SelectionChain, providers: Sequence[Provider] = (),
                 states: Mapping[uuid.UUID, ProviderState] | None = None, invalid: Iterable[InvalidRow] = ()):
        self.chain = chain
        self._noting: list[Any] | None = None
        self.load(providers, states, invalid)

    def load(self, providers: Sequence[Provider], states: Mapping[uuid.UUID, ProviderState] | None = None,
             invalid: Iterable[InvalidRow] = ()) -> None:
        """Rebuild the index: call it when provider rows change, not for every decision."""
        self.index = ProviderIndex(providers, states or {}, self.chain.static_keys)
        self.invalid = list(invalid)

    def update_state(self, provider_id: uuid.UUID, state: ProviderState) -> bool:
        return self.index.update_state(provider_id, state)

    def update_status(self, provider: Provider) -> bool:
        return self.index.update_status(provider)

    # -- the one decision path ----------------------------------------------------------------

    def _apply(self, rule: AnyFilter, mask: int, job: Requirements, warnings: list[str]) -> int:
        """``mask`` narrowed to the providers ``rule`` admits. A failing rule admits all of ``mask`` (it fails
        open, the default) or none (``on_error = "closed"``), and says so."""
        try:
            # The chain sorted its filters when it was built (the protocols' isinstance is too slow here).
            if rule.name in self.chain.indexed:
                answer = cast(IndexedFilterRule, rule).mask(self.index, job)
                if isinstance(answer, Mask):
                    return mask & mask_bits(answer)
                if isinstance(answer, int) and not isinstance(answer, bool) and answer >= 0:
                    return mask & answer  # a plugin written before masks were opaque: the bits themselves
                raise TypeError(f"mask() returned {type(answer).__name__}, not a hodei.selection.Mask")
            members = self.index.members(mask)
            verdicts = list(cast(FilterRule, rule).admit(members, job))
            if len(verdicts) != len(members):
                raise ValueError(f"returned {len(verdicts)} verdicts for {len(members)} candidates")
            return mask_of((c.index for c, admitted in zip(members, verdicts, strict=True) if admitted),
                           len(self.index.candidates))
        except Exception as exc:
            # Failing open (the default) keeps jobs placed when a third-party rule breaks; a filter that
            # guards something that must hold (a licence, a data residency rule) fails closed instead.
            # Either way the warning makes it visible.
            closed = on_error(rule) == "closed"
            outcome = "rejected every provider it was asked about" if closed else "was skipped"
            message = f"filter {rule.name!r} failed and {outcome}: {type(exc).__name__}: {exc}"
            log.error(message)
            if message not in warnings:
                warnings.append(message)
            return 0 if closed else mask

    def _tiers(self, mask: int, job: Requirements) -> list[tuple[str, int]]:
        """``mask`` split into the region tiers, best first, each without the ones before it."""
        region = job.preferred_region
        if region is None:
            return [("any", mask)]
        preferred = mask & self.index.preferred_in.get(region, 0)
        allowed = mask & self.index.allowed_in.get(region, 0) & ~preferred
        return [("preferred", preferred), ("allowed", allowed), ("any", mask & ~preferred & ~allowed)]

    def _rank(self, mask: int, job: Requirements, limit: int | None,
              warnings: list[str], scored: bool = False) -> list[tuple[Candidate, float]]:
        """The best ``limit`` of ``mask`` (all for None), best first, with their weighted scores (a lone
        member of its static-rank group is scored only when ``scored`` or ``limit`` is None: reports show it).

        Candidates are numbered in static-rank order, so the groups that tie on every static key come
        in order: rank them one at a time with the dynamic rules, and stop once ``limit`` are ranked.
        """
        ranked: list[tuple[Candidate, float]] = []
        remaining = mask
        while remaining and (limit is None or len(ranked) < limit):
            group = self.index.top_group(remaining) if self.chain.static_prefix else remaining
            remaining &= ~group
            members = self.index.members(group)
            if len(members) == 1 and limit is not None and not scored:  # a lone member needs no ordering
                ranked.append((members[0], 0.0))
                continue
            keys, scores = self.chain.rank_keys(members, job, self.chain.dynamic_steps, warnings)
            wanted = len(members) if limit is None else min(len(members), limit - len(ranked))
            order = _best(wanted, [(key, member.index) for key, member in zip(keys, members, strict=True)])
            ranked += [(members[i], scores[i]) for i in order]
        return ranked if limit is None else ranked[:limit]

    def decide(self, job: Requirements, *, limit: int | None = 1, across_tiers: bool = False,
               scored: bool = False, within: int | None = None) -> Decision:
        """Filter, pick the tier, rank. ``limit``: how many to rank (None: the whole tier).
        ``across_tiers``: rank on into the next tiers until ``limit`` are found (failover).
        ``scored``: every ranked provider gets its weighted score (a report shows them).
        ``within``: only these providers (a mask) are considered: a plan leaves out those the placement
        queue keeps for jobs ahead."""
        warnings: list[str] = []
        mask = self.index.all if within is None else self.index.all & within
        passed: list[int] = []
        asked: list[int] = []
        for rule in self.chain.filters:
            asked.append(mask)
            mask = self._apply(rule, mask, job, warnings) if mask else 0
            passed.append(mask)
        tiers = self._tiers(mask, job)
        chosen = next(((name, members) for name, members in tiers if members), (None, 0))
        ranking: list[tuple[Candidate, float]] = []
        if across_tiers:
            for _, members in tiers:
                if limit is not None and len(ranking) >= limit:
                    break
                ranking += self._rank(members, job, None if limit is None else limit - len(ranking), warnings,
                                      scored)
        else:
            ranking = self._rank(chosen[1], job, limit, warnings, scored)
        return Decision(job, passed, asked, mask, chosen[0], tiers, ranking, len(self.index.candidates), warnings)

    def could_fit(self, job: Requirements) -> list[Candidate]:
        """The providers that could take ``job`` once the load allows: every filter but those that declare
        ``depends_on = "load"`` (status, health, capacity). Empty: the job can never fit as the fleet is
        configured, whatever it waits for."""
        warnings: list[str] = []
        mask = self.index.all
        for rule in self.chain.filters:
            if mask and depends_on(rule) == "static":
                mask = self._apply(rule, mask, job, warnings)
        return self.index.members(mask)

    def failing_filters(self, decision: Decision, mask: int) -> list[int]:
        """For the providers in ``mask``: per filter, those it rejects. A filter not asked about a provider
        during the decision (an earlier one rejected it) is asked now, for those providers only, and the
        answer is kept in the decision, so the rejection counts and the report never ask twice."""
        failing = []
        for position, rule in enumerate(self.chain.filters):
            unasked = mask & ~decision.asked[position]
            if unasked:
                decision.passed[position] |= self._apply(rule, unasked, decision.job, decision.warnings)
                decision.asked[position] |= unasked
            failing.append(mask & ~decision.passed[position])
        self._leave_to_health(failing, decision.job)
        return failing

    def _leave_to_health(self, failing: list[int], job: Requirements) -> None:
        """A provider whose last health check failed has reported no capacity: the resources filter would
        reject it for sizes nobody knows and count it as well, as if it were too small. Its health is the
        reason; a size known to be too small still counts. The built-in rules are known by their names
        (a chain's names are unique), so this layer does not import the plugins that provide them."""
        positions = {rule.name: position for position, rule in enumerate(self.chain.filters)}
        health, resources = positions.get("health"), positions.get("resources")
        if health is None or resources is None:
            return
        failing[resources] &= ~(failing[health] & _only_unknown_size(self.index, job))

    def rejections(self, decision: Decision) -> dict[str, int]:
        """How many providers each filter rejected (a provider failing two filters counts for both, but an
        Unhealthy one of unknown size only for health; invalid rows count as filter ``config``)."""
        counts: dict[str, int] = {}
        for rule, rejected in zip(self.chain.filters,
                                  self.failing_filters(decision, self.index.all & ~decision.survivors), strict=True):
            counts[rule.name] = counts.get(rule.name, 0) + rejected.bit_count()
        if self.invalid:
            counts["config"] = counts.get("config", 0) + len(self.invalid)
        return counts

    def select(self, job: Requirements) -> Decision:
        """The provider to use for ``job`` (``decision.selected``), or none."""
        return self.decide(job, limit=1)

    def tier_of(self, candidate: Candidate, job: Requirements) -> str | None:
        """The region tier ``candidate`` falls in for ``job`` (it must pass the filters to be used in it)."""
        return next((name for name, members in self._tiers(1 << candidate.index, job) if members), None)

    # -- for people -------------------------------------------------------------------------

    def _reason(self, rule: Any, candidate: Candidate, job: Requirements) -> Reason:
        try:
            return as_reason(rule.explain(candidate, job), rule.name)
        except Exception as exc:
            return as_reason(f"rejected by {rule.name} (its explanation failed: {type(exc).__name__})", rule.name)

    def _note(self, rule: Any, candidate: Candidate, job: Requirements) -> str | None:
        note = getattr(rule, "note", None)
        if note is None:
            return None
        try:
            return note(candidate, job) or None
        except Exception:
            return None

    def _notes(self, candidate: Candidate, job: Requirements) -> list[str]:
        noting = self._noting
        if noting is None:  # the filters that say something of the providers they pass (the base class's is silent)
            noting = self._noting = [rule for rule in self.chain.filters
                                     if getattr(note := getattr(rule, "note", None), "__func__", note)
                                     not in (None, Filter.note)]
        return [text for rule in noting if (text := self._note(rule, candidate, job))]

    def _tier_mask(self, decision: Decision) -> int:
        return next((members for name, members in decision.tiers if name == decision.tier), 0)

    def _invalid_reason(self, row: InvalidRow) -> Reason:
        text = "; ".join(str(p) for p in row.problems) or "invalid"
        return Reason(f"the row is invalid: {text}", "invalid", text, f"fix the row ({command('providers', 'show', row.name)})")

    def report(self, job: Requirements, decision: Decision | None = None, page: Page | None = None) -> Report:
        """The decision as a dry run shows it: the tier, one page of the ranking and of the rejected
        providers (by name) with their reasons, and every rejection counted by filter. Its cost grows with
        the page, not the fleet: reasons in words are computed only for the providers shown.

        :param decision: the decision for ``job``, made with ``limit=page.end`` or more; made here if not given.
        """
        page = page or Page()
        end = page.end
        decision = decision or self.decide(job, limit=end, scored=True)
        tier_mask = self._tier_mask(decision)
        in_tier = tier_mask.bit_count()
        ranking_pairs = decision.ranking
        if len(ranking_pairs) < (in_tier if end is None else min(end, in_tier)):  # a decision that ranked fewer
            ranking_pairs = self._rank(tier_mask, job, end, decision.warnings, scored=True)
        rejected_mask = self.index.all & ~decision.survivors
        failing = self.failing_filters(decision, rejected_mask)
        reasons: dict[tuple[int, int], Reason] = {}

        def reason(position: int, candidate: Candidate) -> Reason:
            key = (position, candidate.index)
            if key not in reasons:
                reasons[key] = self._reason(self.chain.filters[position], candidate, job)
            return reasons[key]

        causes = []
        for position, (rule, mask) in enumerate(zip(self.chain.filters, failing, strict=True)):
            if mask:
                examples = [(c.name, reason(position, c)) for c in self.index.first_by_name(mask, SHOWN)]
                causes.append(Cause(rule.name, mask.bit_count(), examples))
        invalid = sorted(self.invalid, key=lambda row: row.name)
        if invalid:
            causes.append(Cause("config", len(invalid), [(row.name, self._invalid_reason(row))
                                                         for row in invalid[:SHOWN]]))
        # The page of rejected providers by name: valid ones from the index, invalid rows merged in.
        valid = self.index.first_by_name(rejected_mask, end)
        named: list[Candidate | InvalidRow] = sorted([*valid, *(invalid if end is None else invalid[:end])],
                                                     key=lambda item: item.name)
        rejected = []
        for item in named[page.offset:end]:
            if isinstance(item, InvalidRow):
                rejected.append(Rejection(item.name, [("config", self._invalid_reason(item))]))
                continue
            bit = 1 << item.index
            rejected.append(Rejection(item.name, [(rule.name, reason(position, item))
                                                  for position, (rule, mask) in enumerate(
                                                      zip(self.chain.filters, failing, strict=True)) if mask & bit]))
        ranking = [Ranked(candidate, position, score, (), tuple(self._notes(candidate, job)))
                   for position, (candidate, score) in enumerate(ranking_pairs[page.offset:end], page.offset + 1)]
        rejected_total = rejected_mask.bit_count() + len(invalid)
        more = end is not None and (end < in_tier or end < rejected_total)
        return Report(
            selected=ranking_pairs[0][0].name if ranking_pairs else None, tier=decision.tier, ranking=ranking,
            rejected=rejected, total=len(self.index.candidates) + len(self.invalid),
            eligible=decision.survivors.bit_count(), filters=self.chain.filter_names, job=job,
            warnings=tuple(decision.warnings), causes=causes, in_tier=in_tier, rejected_total=rejected_total,
            offset=page.offset, next_page_token=page_token(job, end) if more and end is not None else "",
        )

    def explain(self, name: str, job: Requirements, decision: Decision | None = None) -> Explanation:
        """Why ``name`` was or was not chosen for ``job``, and what would make it fit."""
        decision = decision or self.decide(job, limit=SHOWN, scored=True)
        report = self.report(job, decision)
        candidate = self.index.by_name.get(name)
        if candidate is None:
            invalid = next((row for row in self.invalid if row.name == name), None)
            if invalid is None:
                raise NotFound(f"no provider named {quote(name)}")
            reason = self._invalid_reason(invalid)
            return Explanation(name, report, [Check("config", False, reason.message, reason.hint)], None, None)
        bit = 1 << candidate.index
        warnings: list[str] = []
        checks = []
        for rule in self.chain.filters:
            if self._apply(rule, bit, job, warnings) & bit:
                checks.append(Check(rule.name, True, self._note(rule, candidate, job) or "passes", ""))
            else:
                reason = self._reason(rule, candidate, job)
                checks.append(Check(rule.name, False, reason.message, reason.hint))
        own_tier = self.tier_of(candidate, job) if all(check.passed for check in checks) else None
        ranked = self._ranked(candidate, decision) if own_tier == decision.tier else None
        behind = ""
        if ranked is not None and ranked.position > 1:
            behind = self._behind(report.ranking[0], ranked, job)
        return Explanation(name, report, checks, own_tier, ranked, behind)

    def _ranked(self, candidate: Candidate, decision: Decision) -> Ranked | None:
        """``candidate``'s place in the decision's tier: only the providers up to its static-rank group
        are ranked (those in better groups rank ahead of it whatever the dynamic rules say)."""
        tier_mask = self._tier_mask(decision)
        if not tier_mask >> candidate.index & 1:
            return None
        if self.chain.static_prefix:
            _, group_end = self.index.groups[self.index.group_of[candidate.index]]
            limit: int | None = (tier_mask & ((1 << group_end) - 1)).bit_count()
        else:
            limit = None
        ranking = decision.ranking
        if limit is None or len(ranking) < limit:
            ranking = self._rank(tier_mask, decision.job, limit, decision.warnings, scored=True)
        for position, (member, score) in enumerate(ranking, 1):
            if member is candidate:
                return Ranked(candidate, position, score, (), tuple(self._notes(candidate, decision.job)))
        return None

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
                mine, theirs = cast(OrderingRule, step.ranker).key([a, b], job)
            except Exception:
                continue
            if mine != theirs:
                if step.name == "priority":
                    return f"{a.name} ranks first on priority, {a.priority} against {b.priority}"
                if step.name == "name":
                    return f"{a.name} ranks first on name (everything else ties)"
                return f"{a.name} ranks first on {step.name}"
        return f"{a.name} ranks first"


def _only_unknown_size(index: ProviderIndex, job: Requirements) -> int:
    """The providers the resources filter rejects only for sizes nobody reported, none known to be too small."""
    unknown = known_short = 0
    for name in ("cpu", "memory", "gpu"):
        wanted = getattr(job, name)
        if wanted <= 0:
            continue
        missing = index.of_unknown(name)
        unknown |= missing
        known_short |= index.all & ~missing & ~index.with_resource(name, wanted)
    return unknown & ~known_short
