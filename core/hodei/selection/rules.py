"""What a selection rule is: the typed interface built-in and third-party filters and rankers share.

A rule sees a whole decision's candidates in one call (``admit``, ``mask``, ``key``, ``score``), so a
decision costs one call per rule rather than one per provider. Reasons are asked for only when
somebody reads them (a dry run, ``hodei explain``, or a decision that found nothing).

The protocols (:class:`FilterRule`, :class:`IndexedFilterRule`, :class:`OrderingRule`,
:class:`ScoringRule`) are the contract the core checks, at run time (``isinstance``) when it builds
the chain and statically for code that is type-checked; the base classes (:class:`Filter`,
:class:`IndexedFilter`, :class:`Ranker`) implement them with the optional parts filled in.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol, final, runtime_checkable

if TYPE_CHECKING:
    from hodei.selection.candidates import Candidate
    from hodei.selection.index import ProviderIndex
    from hodei.selection.requirements import Requirements

OnError = Literal["open", "closed"]
ON_ERROR: Final[tuple[OnError, ...]] = ("open", "closed")
DEFAULT_ON_ERROR: Final[OnError] = "open"
# What a filter's verdict depends on: "static" (the provider's configuration and the job: a provider it
# refuses stays refused, whatever the fleet does) or "load" (status, health, capacity, cooldown: it may
# change while a request waits). The placement queue refuses at once a request every provider refuses for
# a static reason; one refused only for load-dependent reasons waits. Unknown filters count as static,
# so a third-party filter never makes a request wait for something that cannot change.
DependsOn = Literal["static", "load"]
DEPENDS_ON: Final[tuple[DependsOn, ...]] = ("static", "load")


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


@final
class Mask:
    """A set of the providers of one :class:`~hodei.selection.index.ProviderIndex`, as an indexed filter
    answers. Opaque: get masks from the index's ``mask_*`` lookups and combine them with ``&`` (both),
    ``|`` (either) and ``-`` (the first without the second); ``candidate in mask``, ``len(mask)`` and
    ``bool(mask)`` read one; ``Mask()`` is the empty set. How the core stores the set is not part of the
    interface.
    """

    __slots__ = ("_bits",)

    def __init__(self, bits: int = 0) -> None:
        self._bits = bits

    def __and__(self, other: Mask) -> Mask:
        return Mask(self._bits & other._bits)

    def __or__(self, other: Mask) -> Mask:
        return Mask(self._bits | other._bits)

    def __sub__(self, other: Mask) -> Mask:
        return Mask(self._bits & ~other._bits)

    def __bool__(self) -> bool:
        return bool(self._bits)

    def __len__(self) -> int:
        return self._bits.bit_count()

    def __contains__(self, candidate: Candidate) -> bool:
        return bool(self._bits >> candidate.index & 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mask) and other._bits == self._bits

    def __hash__(self) -> int:
        return hash(self._bits)

    def __repr__(self) -> str:
        return f"Mask({len(self)} providers)"


def mask_bits(mask: Mask) -> int:
    """The core's view of a mask: bit ``candidate.index`` set for each member."""
    return mask._bits


# -- the protocols: what the core checks a rule against ------------------------------------------------


@runtime_checkable
class FilterRule(Protocol):
    """A hard filter that judges the candidates it is given.

    Optional members, read when present: ``explain(candidate, job) -> Reason | str | None`` (why a
    refused candidate fails), ``note(candidate, job) -> str | None`` (something worth saying about one
    that passes), ``requirement_fields`` (job fields it reads), ``depends_on`` (``"static"``, the default,
    or ``"load"``: see :data:`DependsOn`) and ``on_error`` (``"open"``, the default:
    a failing filter admits every provider it was asked about; ``"closed"``: it admits none).
    """

    @property
    def name(self) -> str: ...

    def admit(self, candidates: Sequence[Candidate], job: Requirements) -> Iterable[bool]:
        """For each candidate, in order, whether it passes."""
        ...


@runtime_checkable
class IndexedFilterRule(Protocol):
    """A hard filter that answers from the core's index (kept between decisions) with a :class:`Mask`.
    The same optional members as :class:`FilterRule`."""

    @property
    def name(self) -> str: ...

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        """The providers of ``index`` that pass."""
        ...


@runtime_checkable
class OrderingRule(Protocol):
    """A rank rule that orders by sort keys, lower first (its ``weight`` is ``None`` or absent).
    Optional: ``static = True`` when a key depends on the provider's row alone."""

    @property
    def name(self) -> str: ...

    def key(self, candidates: Sequence[Candidate], job: Requirements) -> Sequence[Any]:
        """One sort key per candidate, in order."""
        ...


@runtime_checkable
class ScoringRule(Protocol):
    """A rank rule whose scores are summed, ``weight * score``, into one score (higher first).

    ``score`` returns one finite number per candidate; after ``normalize`` (optional; without it the
    scores are taken as they are) each must be in ``[0, 1]``, best 1. A rule whose numbers are not is
    left out of that decision's ranking, with a warning, like a rule that raises.
    """

    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> float: ...

    def score(self, candidates: Sequence[Candidate], job: Requirements) -> Sequence[float]:
        """One finite number per candidate, in order."""
        ...


AnyFilter = FilterRule | IndexedFilterRule
AnyRanker = OrderingRule | ScoringRule


# -- the base classes: the protocols with their optional parts -----------------------------------------


class Filter:
    """A hard filter (:class:`FilterRule`). Subclass it, or write any object with ``name`` and ``admit``.

    ``name`` is how ``hodei.toml`` orders or removes the filter and how explanations cite it.
    ``requirement_fields`` declares job fields the filter reads, beyond the built-in ones:
    ``{"accepted_tiers": (list[str], [])}`` (a type pydantic understands, and its default); the
    job's value arrives in ``job.extensions``. ``on_error`` says what a decision does when the
    filter raises: ``"open"`` (the default) skips it, ``"closed"`` rejects every provider it was
    asked about; either way the decision carries a warning naming it. ``depends_on`` says whether a
    refusal can change while a request waits: ``"static"`` (the default) or ``"load"`` (see
    :data:`DependsOn`).
    """

    name: ClassVar[str] = ""
    requirement_fields: ClassVar[Mapping[str, tuple[Any, Any]]] = {}
    on_error: ClassVar[OnError] = DEFAULT_ON_ERROR
    depends_on: ClassVar[DependsOn] = "static"

    def admit(self, candidates: Sequence[Candidate], job: Requirements) -> Iterable[bool]:
        """For each candidate, in order, whether it passes."""
        raise NotImplementedError(f"filter {self.name!r} defines neither admit() nor mask()")

    def explain(self, candidate: Candidate, job: Requirements) -> Reason | str | None:
        """Why ``candidate`` fails (it is only asked for candidates ``admit`` refused)."""
        return None

    def note(self, candidate: Candidate, job: Requirements) -> str | None:
        """Something worth saying about a candidate that passes (health never checked)."""
        return None


class IndexedFilter(Filter):
    """A filter that answers from the core's indexes (:class:`IndexedFilterRule`).

    The core keeps a :class:`~hodei.selection.index.ProviderIndex` between decisions and calls ``mask``;
    ``admit`` answers the same question for a list of candidates (the core never needs it; tests and
    tools may call it), through a throwaway index of those candidates.
    """

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        raise NotImplementedError(f"indexed filter {self.name!r} defines no mask()")

    def admit(self, candidates: Sequence[Candidate], job: Requirements) -> list[bool]:
        from hodei.selection.index import ProviderIndex

        index = ProviderIndex.of_candidates(candidates)
        passing = self.mask(index, job)
        by_id = index.by_id
        return [by_id[c.provider.id] in passing for c in candidates]


class Ranker:
    """A rank rule: an ordering rule (``weight = None``, :class:`OrderingRule`) or a weighted scoring
    rule (:class:`ScoringRule`).

    Ordering rules compare one after another in chain order, each breaking the ties the ones
    before it leave; ``key`` returns sort keys, lower first. Scoring rules are summed,
    ``weight * score``, into one score (higher first) compared at the place of the first scoring
    rule in the chain; ``score`` returns finite numbers, and ``normalize`` maps them into
    ``[0, 1]``, best 1.0 (as given by default: return them in range, or override ``normalize``, e.g.
    with :func:`hodei.selection.normalize.min_max`). ``hodei.toml`` may change a scoring rule's weight.
    ``static = True`` says an ordering key depends on nothing but the provider's row, so the core may
    sort by it once instead of on every decision.
    """

    name: ClassVar[str] = ""
    weight: ClassVar[float | None] = None
    static: ClassVar[bool] = False
    requirement_fields: ClassVar[Mapping[str, tuple[Any, Any]]] = {}

    def key(self, candidates: Sequence[Candidate], job: Requirements) -> Sequence[Any]:
        raise NotImplementedError(f"ordering rule {self.name!r} defines no key()")

    def score(self, candidates: Sequence[Candidate], job: Requirements) -> Sequence[float]:
        raise NotImplementedError(f"scoring rule {self.name!r} defines no score()")

    def normalize(self, scores: Sequence[float]) -> Sequence[float]:
        """The scores mapped into ``[0, 1]``, best 1.0: as they are, unless a rule says otherwise."""
        return scores


def is_scoring(rule: object) -> bool:
    """A ranker with a weight is a scoring rule; one without, an ordering rule."""
    return getattr(rule, "weight", None) is not None


def on_error(rule: object) -> OnError:
    value = getattr(rule, "on_error", DEFAULT_ON_ERROR)
    return value if value in ON_ERROR else DEFAULT_ON_ERROR


def depends_on(rule: object) -> DependsOn:
    """``"load"`` only for a filter that declares it; anything else is static (the conservative answer)."""
    return "load" if getattr(rule, "depends_on", "static") == "load" else "static"


def checked_scores(rule: Any, candidates: Sequence[Candidate], job: Requirements) -> list[float]:
    """``rule``'s scores for ``candidates``, normalised and checked: one finite number per candidate, each
    in ``[0, 1]`` once normalised.

    :raises ValueError: naming the first score that breaks the contract (the caller leaves the rule out).
    """
    values = _numbers(list(rule.score(candidates, job)), candidates, "returned")
    normalize = getattr(rule, "normalize", None)
    if normalize is not None:
        values = _numbers(list(normalize(values)), candidates, "normalised to")
    # On every decision, so in C (sum, min, max): words only for a rule that breaks the contract.
    if values and not (min(values) >= 0.0 and max(values) <= 1.0):
        value, name = next((v, c.name) for v, c in zip(values, candidates, strict=True) if not 0.0 <= v <= 1.0)
        raise ValueError(f"score {value!r} for {name!r} is outside [0, 1] (scores are normalised into [0, 1]: "
                         "return them in range, or override normalize())")
    return values


def _numbers(values: list[Any], candidates: Sequence[Candidate], verb: str) -> list[float]:
    """``values`` if they are one finite number per candidate. :raises ValueError: naming the first that is not."""
    if len(values) != len(candidates):
        raise ValueError(f"{verb} {len(values)} scores for {len(candidates)} candidates")
    try:
        if math.isfinite(sum(values)):  # NaN and infinities make the sum not finite; a string raises
            return values
    except TypeError:
        pass
    for value, candidate in zip(values, candidates, strict=True):  # numpy's numbers are Real too
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{verb} {value!r} for {candidate.name!r}, not a finite number")
    return [float(v) for v in values]  # finite numbers whose sum overflowed


def as_reason(value: Reason | str | None, rule: str) -> Reason:
    if isinstance(value, Reason):
        return value
    if isinstance(value, str) and value:
        return Reason(message=value, group=f"rejected by {rule}")
    return Reason(message=f"rejected by {rule}", group=f"rejected by {rule}")
