"""The selection chain: which filters and rankers run, in which order, with which weights.

Rules come from every plugin's ``hodei_selection_filters`` / ``hodei_selection_rankers``, each
plugin called through pluggy on its own (so wrappers and tracing see the calls); the built-in
ones first. ``[selection]`` in ``hodei.toml`` may list the filters and rankers to use
(that order, only those) and set the weights of scoring rankers. A plugin whose rule hook fails,
or whose rule is malformed or reuses a taken name, loses that rule, which is reported in
``problems``; the others keep working.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel

from hodei.errors import InvalidInput, Problem
from hodei.selection.candidates import Candidate
from hodei.selection.requirements import BUILTIN_FIELDS, Requirements, parse_requirements, requirements_model
from hodei.selection.rules import (
    ON_ERROR,
    AnyFilter,
    AnyRanker,
    FilterRule,
    IndexedFilterRule,
    OrderingRule,
    ScoringRule,
    checked_scores,
    is_scoring,
)

log = logging.getLogger(__name__)

BUILTIN_PLUGIN = "hodei.selection"
RULE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# A third-party ordering rule goes before this one by default, so names stay the last tie-break.
LAST_RANKER = "name"


@dataclass(frozen=True)
class RankStep:
    ranker: AnyRanker
    weight: float | None  # None: an ordering rule

    @property
    def name(self) -> str:
        return self.ranker.name


class SelectionChain:
    """An ordered list of filters and rank steps, and the requirements model they accept."""

    def __init__(self, filters: Sequence[AnyFilter], steps: Sequence[RankStep], *,
                 problems: Sequence[str] = (), origins: Mapping[str, str] | None = None):
        self.filters = list(filters)
        self.steps = list(steps)
        self.problems = list(problems)
        self.origins = dict(origins or {})  # rule name -> plugin name
        # A filter with mask() answers from the index; otherwise admit() is called with the candidates.
        self.indexed = {f.name for f in self.filters if isinstance(f, IndexedFilterRule)}
        fields: dict[str, tuple[Any, Any]] = {}
        for rule in [*self.filters, *(s.ranker for s in self.steps)]:
            fields.update(getattr(rule, "requirement_fields", None) or {})
        self.requirement_fields = fields
        self.requirements_model: type[BaseModel] = requirements_model(fields)
        # Leading ordering rules that depend only on provider rows: the index sorts by them once.
        self.static_prefix: list[RankStep] = []
        for step in self.steps:
            if step.weight is not None or getattr(step.ranker, "static", False) is not True:
                break
            self.static_prefix.append(step)
        self.dynamic_steps = self.steps[len(self.static_prefix):]

    @property
    def filter_names(self) -> list[str]:
        return [f.name for f in self.filters]

    @property
    def ranker_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def parse_requirements(self, document: Any) -> Requirements:
        return parse_requirements(document, self.requirements_model)

    # -- ranking ----------------------------------------------------------------------------

    def static_keys(self, candidates: Sequence[Candidate]) -> list[tuple[Any, ...]]:
        columns = []
        for step in self.static_prefix:
            try:
                columns.append(list(_ordering(step).key(candidates, Requirements())))
            except Exception:
                log.exception("ranker %r failed while ordering providers; it is left out", step.name)
        return list(zip(*columns, strict=True)) if columns else [()] * len(candidates)

    def rank_keys(self, candidates: Sequence[Candidate], job: Requirements, steps: Sequence[RankStep],
                  warnings: list[str] | None = None) -> tuple[list[tuple[Any, ...]], list[float]]:
        """Each candidate's sort key (lower first) under ``steps``, and its weighted score."""
        count = len(candidates)
        columns: list[Sequence[Any]] = []
        scores = [0.0] * count
        score_column: int | None = None
        for step in steps:
            try:
                values: list[Any]
                if step.weight is None:
                    values = list(_ordering(step).key(candidates, job))
                    if len(values) != count:
                        raise ValueError(f"returned {len(values)} keys for {count} candidates")
                else:
                    values = checked_scores(step.ranker, candidates, job)
            except Exception as exc:
                # One broken rule must not stop placement: rank without it and say so.
                message = f"ranker {step.name!r} failed and was left out: {type(exc).__name__}: {exc}"
                log.error(message)
                if warnings is not None:
                    warnings.append(message)
                continue
            if step.weight is None:
                columns.append(values)
                continue
            if score_column is None:
                score_column = len(columns)
                columns.append(scores)  # filled in place as scoring rules add to it
            weight = step.weight
            for i, value in enumerate(values):
                scores[i] += weight * value
        if score_column is not None:
            columns[score_column] = [-s for s in scores]
        return (list(zip(*columns, strict=True)) if columns else [()] * count), scores


def _ordering(step: RankStep) -> OrderingRule:
    return cast(OrderingRule, step.ranker)  # checked when the chain was built (isinstance is too slow here)


def _rule_problem(kind: str, rule: Any, plugin: str, taken: Mapping[str, str]) -> str | None:
    name = getattr(rule, "name", None)
    if not isinstance(name, str) or not RULE_NAME.fullmatch(name):
        return f"plugin {plugin!r}: a {kind} has no valid name ({name!r}; expected {RULE_NAME.pattern})"
    if name in taken:
        return f"plugin {plugin!r}: {kind} {name!r} is already provided by plugin {taken[name]!r}"
    if kind == "filter":
        if not isinstance(rule, (FilterRule, IndexedFilterRule)):
            return f"plugin {plugin!r}: filter {name!r} has neither admit() nor mask()"
        policy = getattr(rule, "on_error", "open")
        if policy not in ON_ERROR:
            return (f"plugin {plugin!r}: filter {name!r} has on_error {policy!r} "
                    f"(expected one of {', '.join(map(repr, ON_ERROR))})")
    if kind == "ranker":
        weight = getattr(rule, "weight", None)
        if weight is None and not isinstance(rule, OrderingRule):
            return f"plugin {plugin!r}: ordering ranker {name!r} has no key()"
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))
                                   or not math.isfinite(weight) or not isinstance(rule, ScoringRule)):
            return f"plugin {plugin!r}: scoring ranker {name!r} needs a finite weight and a score()"
    fields = getattr(rule, "requirement_fields", None) or {}
    clash = sorted(set(fields) & set(BUILTIN_FIELDS))
    if clash:
        return f"plugin {plugin!r}: {kind} {name!r} redefines built-in requirement field(s) {', '.join(clash)}"
    return None


def _collect(pm: Any, hook_name: str, kind: str, problems: list[str],
             origins: dict[str, str], fields_owner: dict[str, str]) -> list[Any]:
    """Every plugin's rules from ``hook_name``, the built-in plugin's first, then by plugin name.

    Each contributing plugin is called on its own, through pluggy (a subset hook caller without
    the other contributors), so the rules are attributed to it and its failure costs only its own
    rules, while hook wrappers, ``pm.enable_tracing()`` and hook-call monitors see every call.
    """
    contributors = {impl.plugin_name: impl.plugin for impl in getattr(pm.hook, hook_name).get_hookimpls()
                    if not (impl.wrapper or impl.hookwrapper)}
    rules: list[Any] = []
    taken: dict[str, str] = {}
    for plugin_name in sorted(contributors, key=lambda name: (name != BUILTIN_PLUGIN, name)):
        # A plugin's wrapper of this hook goes with its implementation: pluggy leaves out whole plugins.
        others = [plugin for name, plugin in contributors.items() if name != plugin_name]
        try:
            answers = pm.subset_hook_caller(hook_name, remove_plugins=others)()
            for answer in answers:
                if answer is not None and (isinstance(answer, (str, bytes, Mapping)) or not isinstance(answer, Iterable)):
                    raise TypeError(f"returned {type(answer).__name__}, not a list of {kind}s")
            contributed = [rule for answer in answers for rule in (answer or ())]
        except Exception as exc:
            problems.append(f"plugin {plugin_name!r}: {hook_name} failed: {type(exc).__name__}: {exc}")
            continue
        for rule in contributed:
            problem = _rule_problem(kind, rule, plugin_name, taken)
            fields = getattr(rule, "requirement_fields", None) or {}
            if problem is None:
                owned = [f for f in fields if fields_owner.get(f, plugin_name) != plugin_name]
                if owned:
                    problem = (f"plugin {plugin_name!r}: {kind} {rule.name!r} declares requirement field(s) "
                               f"{', '.join(owned)} that plugin {fields_owner[owned[0]]!r} declares already")
            if problem is not None:
                problems.append(problem)
                continue
            for field_name in fields:
                fields_owner[field_name] = plugin_name
            taken[rule.name] = plugin_name
            origins[f"{kind}:{rule.name}"] = plugin_name
            rules.append(rule)
    return rules


def _pick(names: Sequence[str] | None, available: Mapping[str, Any], field: str, kind: str) -> list[Any] | None:
    if names is None:
        return None
    problems, seen = [], set()
    for position, name in enumerate(names):
        if name in seen:
            problems.append(Problem(f"{field}[{position}]", f"{name!r} is listed twice"))
        elif name not in available:
            installed = ", ".join(available) or "none"
            problems.append(Problem(f"{field}[{position}]", f"no {kind} named {name!r} is installed "
                                                              f"(installed: {installed})"))
        seen.add(name)
    if problems:
        raise InvalidInput(problems, subject="invalid [selection] in hodei.toml")
    return [available[name] for name in names]


def build_chain(pm: Any, filters: Sequence[str] | None = None, rankers: Sequence[str] | None = None,
                weights: Mapping[str, float] | None = None) -> SelectionChain:
    """The chain from the installed plugins and the ``[selection]`` settings.

    :raises InvalidInput: when the settings name a rule that is not installed, or set the
        weight of an ordering rule.
    """
    problems: list[str] = []
    origins: dict[str, str] = {}
    fields_owner: dict[str, str] = {}
    all_filters = _collect(pm, "hodei_selection_filters", "filter", problems, origins, fields_owner)
    all_rankers = _collect(pm, "hodei_selection_rankers", "ranker", problems, origins, fields_owner)
    for problem in problems:
        log.warning("selection rule left out: %s", problem)

    chosen_filters = _pick(filters, {f.name: f for f in all_filters}, "selection.filters", "filter")
    if chosen_filters is None:
        chosen_filters = all_filters  # built-ins first, then third parties by plugin name
    chosen_rankers = _pick(rankers, {r.name: r for r in all_rankers}, "selection.rankers", "ranker")
    if chosen_rankers is None:
        chosen_rankers = [r for r in all_rankers if r.name != LAST_RANKER]
        chosen_rankers += [r for r in all_rankers if r.name == LAST_RANKER]

    weights = dict(weights or {})
    bad = []
    by_name = {r.name: r for r in chosen_rankers}
    for name, value in weights.items():
        ranker = by_name.get(name)
        if ranker is None:
            bad.append(Problem(f"selection.weights.{name}", "no scoring ranker of that name is in the chain"))
        elif not is_scoring(ranker):
            bad.append(Problem(f"selection.weights.{name}", f"{name!r} is an ordering rule; it takes no weight"))
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            bad.append(Problem(f"selection.weights.{name}", f"must be a finite number >= 0, got {value!r}"))
    if bad:
        raise InvalidInput(bad, subject="invalid [selection] in hodei.toml")
    steps = [RankStep(r, float(weights.get(r.name, r.weight)) if isinstance(r, ScoringRule) and is_scoring(r)
                      else None) for r in chosen_rankers]
    return SelectionChain(chosen_filters, steps, problems=problems, origins=origins)
