"""Ways a scoring rule may map its raw numbers into ``[0, 1]`` (best 1.0), as the Kubernetes scheduler's
``NormalizeScore`` does. Use one from a rule's ``normalize``::

    class Cheapest(Ranker):
        name = "cheapest"
        weight = 1.0

        def score(self, candidates, job):
            return [hourly_price(c) for c in candidates]   # any finite numbers, lower is better

        def normalize(self, scores):
            return min_max(scores, reverse=True)

Both take finite numbers (the core checks them before) and return numbers in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence


def min_max(scores: Sequence[float], *, reverse: bool = False) -> list[float]:
    """The lowest score maps to 0, the highest to 1, linearly (``reverse``: the other way round); all
    equal: every one is 1 (none is worse than another)."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    span = high - low
    # Clamped: float rounding must not put an end point a hair outside [0, 1].
    values = [min(1.0, max(0.0, (s - low) / span)) for s in scores]
    return [1.0 - v for v in values] if reverse else values


def by_max(scores: Sequence[float], *, reverse: bool = False) -> list[float]:
    """Each score as a fraction of the highest (``reverse``: one minus that), for scores that are never
    negative, so a provider scoring half the best gets 0.5 whatever the others do; negative scores
    count as 0; all zero: every one is 1."""
    if not scores:
        return []
    clipped = [max(0.0, s) for s in scores]
    high = max(clipped)
    if high == 0:
        return [1.0] * len(scores)
    values = [min(1.0, s / high) for s in clipped]
    return [1.0 - v for v in values] if reverse else values
