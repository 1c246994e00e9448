"""Selection rules on the providers' ``tier`` annotation.

A job may say ``accepted_tiers = ["gold", "silver"]``:

* filter ``accepted-tiers`` rejects providers whose ``annotations.tier`` is not in that list;
* scoring ranker ``tier-preference`` scores the first accepted tier 1.0, the next ones less, so
  with its weight (``[selection.weights] tier-preference`` in hodei.toml) it weighs the job's
  preference against the built-in utilization score.

A job that names no tiers is not affected by either rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from hodei import hookimpl
from hodei.selection import Candidate, Filter, Ranker, Reason, Requirements

# The hook API these rules are built for (docs/plugin-authors.md, "Stability"): another major is refused.
HODEI_API_VERSION = "1.0"

FIELDS = {"accepted_tiers": (list[str], [])}


def _accepted(job: Requirements) -> list[str]:
    return list(job.extensions.get("accepted_tiers") or [])


class AcceptedTiers(Filter):
    name = "accepted-tiers"
    requirement_fields = FIELDS

    def admit(self, candidates: Sequence[Candidate], job: Requirements) -> list[bool]:
        accepted = set(_accepted(job))
        if not accepted:
            return [True] * len(candidates)
        return [c.annotations.get("tier") in accepted for c in candidates]

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        tier = candidate.annotations.get("tier")
        accepted = ", ".join(_accepted(job))
        shown = f"tier {tier}" if tier is not None else "no tier annotation"
        return Reason(message=f"{shown}; the job accepts {accepted}", group="tier not accepted",
                      detail=tier or "no tier",
                      hint="annotate the provider with an accepted tier, or accept its tier in the job")


class TierPreference(Ranker):
    name = "tier-preference"
    weight = 0.5
    requirement_fields = FIELDS

    def score(self, candidates: Sequence[Candidate], job: Requirements) -> list[float]:
        accepted = _accepted(job)
        if not accepted:
            return [0.0] * len(candidates)
        # The first accepted tier scores 1.0, the last 1/n; any other tier 0.
        points = {tier: (len(accepted) - i) / len(accepted) for i, tier in enumerate(accepted)}
        return [points.get(c.annotations.get("tier", ""), 0.0) for c in candidates]


# Called once each time the chain is built, through pluggy, on this plugin alone: hook wrappers and
# pm.enable_tracing() see the calls, the rules are credited to this plugin, and if a hook raised,
# only its own rules would be left out (reported in the chain's problems).
@hookimpl
def hodei_selection_filters() -> list[Filter]:
    return [AcceptedTiers()]


@hookimpl
def hodei_selection_rankers() -> list[Ranker]:
    return [TierPreference()]
