"""The placement queue's policy on a :class:`FleetView`: jobs in queue order, each on the provider the
chain picks (across the region tiers, as provisioning asks), among those no job waiting ahead of it could
take. A job that fits nowhere now waits and keeps the providers it could use for itself; one that no
provider could ever take (every provider refused for a reason the load does not change) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hodei.planning.view import FleetView
from hodei.selection import Candidate, Requirements, Selector
from hodei.selection.index import mask_of
from hodei.selection.rules import depends_on


def load_dependent(rule: Any) -> bool:
    """Whether ``rule``'s verdict follows the load (status, health, cooldown, capacity): the rule says so
    (``depends_on``), as the placement queue reads it."""
    return depends_on(rule) == "load"


@dataclass(eq=False)
class Pending:
    """A job in the queue: its requirements, a key shared by jobs with the same requirements, its place."""

    job: Requirements
    key: str
    order: tuple[Any, ...]
    number: int = 0
    duration: float = 0.0  # a simulated job: how long its worker runs
    done: bool = False  # a simulated job: placed or expired (left in the queue until it is compacted)


class Placer:
    """Places jobs on a fleet view by the queue policy; remembers which providers each kind of job could ever use."""

    def __init__(self, view: FleetView):
        self.view = view
        self._fits: dict[str, int] = {}

    def could_fit(self, pending: Pending) -> int:
        """The providers that could take ``pending`` once the load allows (the selector's own answer, which
        the placement queue refuses a never-fitting request by; cached by its requirements)."""
        mask = self._fits.get(pending.key)
        if mask is None:
            fitting = self.view.selector.could_fit(pending.job)
            mask = self._fits[pending.key] = mask_of((c.index for c in fitting), len(self.view.index.candidates))
        return mask

    def place(self, pending: Pending, kept: int = 0) -> Candidate | None:
        """``pending`` on the best provider outside ``kept``, its slot taken; None when none can take it now."""
        view = self.view
        decision = view.selector.decide(pending.job, limit=1, across_tiers=True, within=~kept if kept else None)
        chosen = decision.selected
        if chosen is not None:
            view.take(chosen)
        return chosen

    def round(self, waiting: Iterable[Pending]) -> tuple[list[tuple[Pending, Candidate]], int]:
        """One pass over ``waiting`` (in queue order; those marked ``done`` are skipped): each placed where it
        can be, the providers of those that still wait kept from the ones behind. Returns the placements and
        the providers kept at the end."""
        placed: list[tuple[Pending, Candidate]] = []
        kept = 0
        view = self.view
        fits = self._fits
        open_slots = view.open_slots()
        # Requirements that found no provider this pass: neither more kept providers nor fewer free slots
        # can help a later job with the same ones, so it is passed over without a question.
        stuck: set[str] = set()
        for pending in waiting:
            if pending.done or pending.key in stuck:
                continue
            free = open_slots & ~kept
            if not free:
                break  # every free slot is kept for a job ahead: nobody behind can be placed
            fit = fits.get(pending.key)
            if fit is None:
                fit = self.could_fit(pending)
            if fit & free:
                chosen = self.place(pending, kept)
                if chosen is not None:
                    placed.append((pending, chosen))
                    open_slots = view.open_slots()
                    continue
            kept |= fit
            stuck.add(pending.key)
        return placed, kept


def sole_blocker(selector: Selector, job: Requirements) -> tuple[str, int] | None:
    """Among the filters that do not follow the load, the one that alone keeps out the most providers
    (those that pass every other such filter), and those providers; None when none does alone."""
    rules = [rule for rule in selector.chain.filters if not load_dependent(rule)]
    admitted = [selector._apply(rule, selector.index.all, job, []) for rule in rules]
    best: tuple[int, str, int] | None = None
    for position, rule in enumerate(rules):
        others = selector.index.all
        for other, mask in enumerate(admitted):
            if other != position:
                others &= mask
        only = others & ~admitted[position]
        if only and (best is None or only.bit_count() > best[0]):
            best = (only.bit_count(), rule.name, only)
    return None if best is None else (best[1], best[2])
