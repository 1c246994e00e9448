"""What a selection rule is: the interface built-in and third-party filters and rankers share.

A rule sees a whole decision's candidates in one call (``admit``, ``key``, ``score``), so a
decision costs one call per rule rather than one per provider. Reasons are asked for only when
somebody reads them (a dry run, ``hodei explain``, or a decision that found nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from hodei.selection.candidates import Candidate
    from hodei.selection.index import ProviderIndex
    from hodei.selection.requirements import Requirements


@dataclass(frozen=True)
class Reason:
    """Why a filter excluded one provider, in words an operator can act on.

    :param message: the whole sentence, for ``hodei explain`` and the ``rejected`` list.
    :param group: how the summary line counts it (``"not ACTIVE"``, ``"at capacity"``).
    :param detail: what the summary shows after the provider's name (``"DISABLED"``, ``"20/20"``).
    :param hint: what would make the provider fit.
    """

    message: str
    group: str = ""
    detail: str = ""
    hint: str = ""


class Filter:
    """A hard filter. Subclass it (or write any object with the same attributes).

    ``name`` is how ``hodei.toml`` orders or removes the filter and how explanations cite it.
    ``requirement_fields`` declares job fields the filter reads, beyond the built-in ones:
    ``{"accepted_tiers": (list[str], [])}`` (a type pydantic understands, and its default); the
    job's value arrives in ``job.extensions``.
    """

    name: ClassVar[str] = ""
    requirement_fields: ClassVar[Mapping[str, tuple[Any, Any]]] = {}

    def admit(self, candidates: Sequence[Candidate], job: Requirements) -> Iterable[bool]:
        """For each candidate, in order, whether it passes."""
        raise NotImplementedError

    def explain(self, candidate: Candidate, job: Requirements) -> Reason | str | None:
        """Why ``candidate`` fails (it is only asked for candidates ``admit`` refused)."""
        return None

    def note(self, candidate: Candidate, job: Requirements) -> str | None:
        """Something worth saying about a candidate that passes (health never checked)."""
        return None


class IndexedFilter(Filter):
    """A filter that answers from the core's indexes: a bit mask of the passing providers.

    The core keeps a :class:`~hodei.selection.index.ProviderIndex` between decisions; ``mask``
    returns an ``int`` whose bit ``candidate.index`` is set for every provider that passes.
    """

    def mask(self, index: ProviderIndex, job: Requirements) -> int:
        raise NotImplementedError

    def admit(self, candidates: Sequence[Candidate], job: Requirements) -> Iterable[bool]:
        raise NotImplementedError("the core calls mask() for an IndexedFilter")


class Ranker:
    """A rank rule: an ordering rule (``weight = None``) or a weighted scoring rule.

    Ordering rules compare one after another in chain order, each breaking the ties the ones
    before it leave; ``key`` returns sort keys, lower first. Scoring rules are summed,
    ``weight * score``, into one score (higher first) compared at the place of the first scoring
    rule in the chain; ``score`` returns numbers, best 1.0, worst 0.0. ``hodei.toml`` may change
    a scoring rule's weight. ``static = True`` says an ordering key depends on nothing but the
    provider's row, so the core may sort by it once instead of on every decision.
    """

    name: ClassVar[str] = ""
    weight: ClassVar[float | None] = None
    static: ClassVar[bool] = False
    requirement_fields: ClassVar[Mapping[str, tuple[Any, Any]]] = {}

    def key(self, candidates: Sequence[Candidate], job: Requirements) -> Sequence[Any]:
        raise NotImplementedError

    def score(self, candidates: Sequence[Candidate], job: Requirements) -> Sequence[float]:
        raise NotImplementedError


def as_reason(value: Reason | str | None, rule: str) -> Reason:
    if isinstance(value, Reason):
        return value
    if isinstance(value, str) and value:
        return Reason(message=value, group=f"rejected by {rule}")
    return Reason(message=f"rejected by {rule}", group=f"rejected by {rule}")
