"""Selection as every entry point serves it: one decision path (:meth:`Selector.decide`), each served
decision recorded once (span, duration, result, tier, rejections by filter)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from hodei.selection import Requirements, SelectionChain, Selector, pages
from hodei.selection.candidates import Candidate
from hodei.selection.outcome import NotRecorded, SelectionOutcome, SelectionRecorder
from hodei.selection.report import MAX_PAGE, SHOWN, Explanation, Page, Report, report_text
from hodei.selection.selector import Decision
from hodei.services.decisions import Decisions, noted

page_token = pages.page_token

# The page sizes and the one rendering of a report, for the entry points (both CLI modes print with it).
__all__ = ["MAX_PAGE", "SHOWN", "LocalSelection", "Report", "page_token", "report_text"]


class LocalSelection:
    """Decisions against a selector: the daemon's live one, or one read from the database.

    :param selector: the current selector (called for every decision: the daemon replaces it when
        providers change).
    :param chain: the current chain, whose requirements model checks a job's requirements.
    :param recorder: where served decisions are counted and traced.
    :param decisions: where served decisions are kept for the status page (the daemon's recent ones).
    """

    def __init__(self, selector: Callable[[], Selector], chain: Callable[[], SelectionChain],
                 recorder: SelectionRecorder | None = None, decisions: Decisions | None = None):
        self._selector = selector
        self._chain = chain
        self.recorder: SelectionRecorder = recorder or NotRecorded()
        self.decisions = decisions

    def selector(self) -> Selector:
        """The selector decisions are made on now (a plan copies its fleet)."""
        return self._selector()

    def requirements(self, document: Mapping[str, Any] | Requirements | None) -> Requirements:
        """A job's requirements, checked. :raises InvalidInput: naming each field at fault."""
        if isinstance(document, Requirements):
            return document
        return self._chain().parse_requirements({} if document is None else document)

    def decide(self, job: Requirements, *, limit: int | None = 1, across_tiers: bool = False,
               scored: bool = False, selector: Selector | None = None, kind: str = "selection") -> Decision:
        """One recorded decision (the path every served selection takes); ``kind``: "selection", or
        "provision" for the candidates of a provision."""
        selector = selector or self._selector()
        started_ns, started = time.time_ns(), time.perf_counter()
        decision = selector.decide(job, limit=limit, across_tiers=across_tiers, scored=scored)
        seconds = time.perf_counter() - started
        chosen = decision.selected
        self.recorder.record_selection(SelectionOutcome(
            started_ns=started_ns, seconds=seconds, tier=decision.tier, provider=chosen.name if chosen else None,
            provider_type=chosen.provider.provider_type if chosen else None, candidates=decision.candidates,
            warnings=tuple(decision.warnings),
            rejections=selector.rejections(decision) if chosen is None else {}))
        if self.decisions is not None:
            noted(self.decisions.note(selector, decision, kind))
        return decision

    def select(self, requirements: Mapping[str, Any] | Requirements, *, everything: bool = False,
               page_size: int = 0, page_token: str = "") -> Report:
        """The decision for a job and why, as ``hodei select`` and gRPC ``Select`` show it: the first
        ``page_size`` (default :data:`SHOWN`) ranked and rejected providers, or the page ``page_token``
        asks for; ``everything``: the whole lists in one report. :raises InvalidInput:"""
        selector = self._selector()
        job = self.requirements(requirements)
        page = Page(size=None) if everything else pages.page(job, page_size, page_token)
        return selector.report(job, self.decide(job, limit=page.end, scored=True, selector=selector), page)

    def explain(self, name: str, requirements: Mapping[str, Any] | Requirements) -> Explanation:
        """Why provider ``name`` would or would not run the job (not counted as a served selection)."""
        return self._selector().explain(name, self.requirements(requirements))

    def snapshot(self) -> Selector:
        """The selector to decide a round of placements with (the daemon's live one, kept current)."""
        return self._selector()

    def could_fit(self, job: Requirements, selector: Selector | None = None) -> list[Candidate]:
        """The providers that could take ``job`` once the load allows (see :meth:`Selector.could_fit`)."""
        return (selector or self._selector()).could_fit(job)

    def candidates(self, job: Requirements, limit: int,
                   selector: Selector | None = None) -> tuple[list[Candidate], Callable[[], str]]:
        """For provisioning: the best ``limit`` providers across the region tiers, best first, and a way to
        say why none fit (computed only when asked)."""
        selector = selector or self._selector()
        decision = self.decide(job, limit=limit, across_tiers=True, selector=selector, kind="provision")
        return [c for c, _ in decision.ranking], lambda: selector.report(job).summary
