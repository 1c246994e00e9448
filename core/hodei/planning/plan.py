"""``hodei plan``: a batch of jobs placed on a copy of the fleet as it is now (health, cooldowns, the slots
taken, and the slots the batch itself takes, in queue order), nothing provisioned; why each job that does
not fit waits; and advice, each piece checked by planning again with it applied."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hodei.domain import Provider, ProviderState
from hodei.planning.advice import advise
from hodei.planning.order import priority_of, queue_order
from hodei.planning.placement import Pending, Placer, load_dependent, sole_blocker
from hodei.planning.report import PlannedJob, PlanReport, ProviderSlots
from hodei.planning.view import FleetView
from hodei.selection import InvalidRow, Requirements, SelectionChain, Selector

# What the summary says of a job a load-dependent filter keeps out, by the filter rejecting most of the
# providers it could otherwise use.
_WAITS_FOR = {"capacity": "no capacity", "health": "no healthy provider", "status": "no active provider",
              "cooldown": "providers cooling down"}


def job_key(job: Requirements) -> str:
    """Jobs with equal keys ask the chain the same question."""
    return json.dumps(job.document(), sort_keys=True, default=str)


def scope(job: Requirements) -> str:
    """Where a job may run and what it asks of a provider, in words: " in eu-west-1 with label gpu=true"."""
    words = ""
    if job.allowed_regions:  # a preferred region alone is no constraint: the job runs elsewhere too
        words += f" in {', '.join(job.allowed_regions)}"
    if job.required_labels:
        pairs = ", ".join(f"{k}={v}" for k, v in sorted(job.required_labels.items()))
        words += f" with label{'s' if len(job.required_labels) > 1 else ''} {pairs}"
    return words


@dataclass
class Batch:
    """The outcome of placing a batch: per job (by index) the provider and tier, and the view after it."""

    view: FleetView
    placer: Placer
    pending: list[Pending]
    chosen: dict[int, tuple[str, str | None]]

    @property
    def placed(self) -> int:
        return len(self.chosen)


def queued(jobs: Sequence[Requirements], keys: Sequence[str] | None = None) -> list[Pending]:
    """The batch in queue order: priority, then its place in the batch. ``keys``: each job's
    :func:`job_key`, when the caller knows them already (jobs read from the same document share one)."""
    pending = [Pending(job, keys[number] if keys is not None else job_key(job),
                       queue_order(priority_of(job), number), number)
               for number, job in enumerate(jobs)]
    pending.sort(key=lambda p: p.order)
    return pending


def place_batch(chain: SelectionChain, providers: Sequence[Provider], states: Mapping[uuid.UUID, ProviderState],
                pending: list[Pending], invalid: Sequence[InvalidRow] = ()) -> Batch:
    """Every job of ``pending`` (in queue order) placed by the queue policy."""
    view = FleetView(chain, providers, states, invalid)
    placer = Placer(view)
    placed, _ = placer.round(pending)
    chosen = {p.number: (c.name, view.selector.tier_of(c, p.job)) for p, c in placed}
    return Batch(view, placer, pending, chosen)


class Planner:
    """Plans a batch on a copy of ``selector``'s fleet."""

    def __init__(self, selector: Selector):
        self.chain = selector.chain
        self.invalid = list(selector.invalid)
        base = FleetView.copy_of(selector)
        self.providers = base.providers()
        self.states = base.states()

    def place(self, pending: list[Pending], providers: Sequence[Provider] | None = None,
              states: Mapping[uuid.UUID, ProviderState] | None = None) -> Batch:
        return place_batch(self.chain, self.providers if providers is None else providers,
                           self.states if states is None else states, pending, self.invalid)

    def plan(self, jobs: Sequence[Requirements], keys: Sequence[str] | None = None, *,
             advice: bool = True) -> PlanReport:
        batch = self.place(queued(jobs, keys))
        reasons = self._reasons(batch)
        planned = []
        for pending in sorted(batch.pending, key=lambda p: p.number):
            provider, tier = batch.chosen.get(pending.number, (None, None))
            planned.append(PlannedJob(pending.number, provider, tier, () if provider else reasons[pending.key]))
        before = {c.provider.id: c.load for c in FleetView(self.chain, self.providers, self.states).index.candidates}
        slots = [ProviderSlots(c.name, c.max_workers, before.get(c.provider.id, 0), c.load)
                 for c in sorted(batch.view.index.candidates, key=lambda c: c.name)]
        found = advise(self, batch) if advice and batch.placed < len(jobs) else []
        return PlanReport(planned, slots, found)

    def _reasons(self, batch: Batch) -> dict[str, tuple[str, ...]]:
        """Why each kind of job left waiting waits, against the fleet once the batch is placed."""
        reasons: dict[str, tuple[str, ...]] = {}
        selector = batch.view.selector
        for pending in batch.pending:
            if pending.number in batch.chosen or pending.key in reasons:
                continue
            job = pending.job
            fit = batch.placer.could_fit(pending)
            report = selector.report(job)
            details = tuple(f"{cause.filter}: {cause.count} {cause.examples[0][1].group or 'rejected'}"
                            if cause.examples else f"{cause.filter}: {cause.count} rejected" for cause in report.causes)
            if not fit:
                reasons[pending.key] = (self.never(job, selector), "the placement queue refuses it at once: no "
                                        "provider could ever take it, whatever the load", *details)
            elif report.selected is not None:
                reasons[pending.key] = (f"kept for jobs ahead{scope(job)}",
                                        f"{fit.bit_count()} providers could take it; those with a free slot are kept "
                                        "for jobs ahead of it in the queue", *details)
            else:
                decision = selector.decide(job, limit=0)
                failing = selector.failing_filters(decision, fit)
                counts = [(mask.bit_count(), rule.name) for rule, mask in zip(selector.chain.filters, failing, strict=True)
                          if load_dependent(rule) and mask]
                # The filter keeping out most of them (capacity on a tie: the most common and actionable).
                name = max(counts, key=lambda c: (c[0], c[1] == "capacity", c[1]))[1] if counts else "capacity"
                reasons[pending.key] = (f"{_WAITS_FOR.get(name, f'refused by {name}')}{scope(job)}", *details)
        return reasons

    def never(self, job: Requirements, selector: Selector) -> str:
        """The summary's words for a job no provider could ever take: the requirement that alone keeps out the
        most providers."""
        if not selector.index.candidates:
            return "no providers are configured"
        blocker = sole_blocker(selector, job)
        if blocker is None:
            return f"no provider could ever take it{scope(job)}"
        name, _ = blocker
        if name == "resources":
            sizes = [f"{what} {getattr(job, what):g}" for what in ("cpu", "memory", "gpu") if getattr(job, what)]
            return f"no provider is big enough ({', '.join(sizes)}){scope(job)}"
        if name == "labels":
            pairs = ", ".join(f"{k}={v}" for k, v in sorted(job.required_labels.items()))
            return f"no provider has label{'s' if len(job.required_labels) > 1 else ''} {pairs}"
        if name == "allowed-regions":
            return f"no provider runs in {', '.join(job.allowed_regions)}"
        if name == "image":
            return f"no provider allows image {job.image}"
        return f"every provider refused by {name}{scope(job)}"

