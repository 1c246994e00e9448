"""The files of a selection plugin package (``string.Template``: ``$name``, ``$field``, ...; ``$$`` is a ``$``)."""

from __future__ import annotations

from hodei.scaffold.package_template import pyproject

PYPROJECT = pyproject("Hodei selection rules '$name'.",
                      "How Hodei finds the rules: the entry point's name is how [plugins] allow/deny in hodei.toml name them.")

MODULE = '''\
"""Hodei selection rules ``$name``, on the providers' ``$name`` annotation.

A job may say ``$field = ["a", "b"]``:

* filter ``$name`` keeps only providers whose ``annotations.$name`` is one of them;
* scoring rule ``$name-preference`` prefers the first (weight 0.5; ``[selection.weights]`` in
  hodei.toml changes it).

A job that names none is not affected. Change the rules to yours; the contract suite in tests/ keeps
checking them on random fleets and jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hodei import hookimpl
from hodei.selection import Candidate, Filter, Ranker, Reason, Requirements
from hodei.selection.normalize import by_max

# The hook API these rules are built for: a Hodei whose API differs in its major version (or is older
# than this minor version) refuses the plugin and says why in `hodei plugins`.
HODEI_API_VERSION = "$api_version"

ANNOTATION = "$name"
# The job field both rules read: its type (pydantic) and default. Jobs are checked against it.
FIELDS: dict[str, tuple[Any, Any]] = {"$field": (list[str], [])}


def _wanted(job: Requirements) -> list[str]:
    return list(job.extensions.get("$field") or [])


class ${title}Filter(Filter):
    name = "$name"
    requirement_fields = FIELDS
    # When admit() raises, a decision skips this filter ("open", the default) or rejects every
    # provider it was asked about ("closed": for rules that must hold, such as data residency).
    on_error = "open"

    def admit(self, candidates: Sequence[Candidate], job: Requirements) -> list[bool]:
        wanted = set(_wanted(job))
        if not wanted:
            return [True] * len(candidates)
        return [c.annotations.get(ANNOTATION) in wanted for c in candidates]

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        # Asked only when somebody reads the reason (dry run, hodei explain, nothing fits).
        value = candidate.annotations.get(ANNOTATION)
        shown = f"$name {value}" if value is not None else "no $name annotation"
        return Reason(message=f"{shown}; the job accepts {', '.join(_wanted(job))}", group="$name not accepted",
                      detail=value or "none", hint="annotate the provider with an accepted value, or accept its value")


class ${title}Preference(Ranker):
    name = "$name-preference"
    weight = 0.5
    requirement_fields = FIELDS

    def score(self, candidates: Sequence[Candidate], job: Requirements) -> list[float]:
        wanted = _wanted(job)
        # Raw points: the job's first value scores len(wanted), the last 1, anything else 0 ...
        points = {value: float(len(wanted) - i) for i, value in enumerate(wanted)}
        return [points.get(c.annotations.get(ANNOTATION, ""), 0.0) for c in candidates]

    def normalize(self, scores: Sequence[float]) -> list[float]:
        # ... mapped into [0, 1] (the core checks it): the best of these candidates scores 1.
        return by_max(scores)


@hookimpl
def hodei_selection_filters() -> list[Filter]:
    return [${title}Filter()]


@hookimpl
def hodei_selection_rankers() -> list[Ranker]:
    return [${title}Preference()]
'''

TESTS = '''\
"""The ``$name`` rules against Hodei's selection contract suite, and what they are for (install the
package first: the ``hodei_pm`` fixture loads it through its entry point, as the daemon does)."""

from __future__ import annotations

from hodei.testing.contract import SelectionContract
from hodei.testing.selection import provider, selector
from hodei.testing.strategies import fleets
from hypothesis import strategies as st

VALUES = ["a", "b", "c"]


class Test${title}Contract(SelectionContract):
    plugin_name = "$name"
    requirement_values = {"$field": st.lists(st.sampled_from(VALUES), unique=True, max_size=3)}
    fleet = fleets(annotations=st.fixed_dictionaries({}, optional={"$name": st.sampled_from([*VALUES, "other"])}))


def test_the_filter_keeps_the_accepted_and_the_ranker_prefers_the_first(hodei_pm) -> None:
    fleet = [provider("p-a", annotations={"$name": "a"}), provider("p-b", annotations={"$name": "b"}),
             provider("p-none")]
    s = selector(fleet, pm=hodei_pm)
    decision = s.decide(s.chain.parse_requirements({"$field": ["b", "a"]}), limit=None)
    assert [c.name for c, _ in decision.ranking] == ["p-b", "p-a"]


def test_a_job_naming_no_value_is_not_affected(hodei_pm) -> None:
    s = selector([provider("p-a", annotations={"$name": "a"}), provider("p-none")], pm=hodei_pm)
    assert len(s.decide(s.chain.parse_requirements({}), limit=None).ranking) == 2
'''

README = '''\
# $distribution

[Hodei](https://pypi.org/project/hodei/) selection rules, `$name`, generated by `hodei plugin new`:
a filter `$name` and a scoring rule `$name-preference` on the providers' `$name` annotation, for
jobs that set `$field`.

The tests run Hodei's selection contract suite (`hodei.testing.contract.SelectionContract`) on random
fleets and jobs. Change the rules to yours, keeping the tests green:

```console
$$ pip install -e '.[test]'
$$ pytest
$$ hodei plugins          # lists $name, from $distribution
$$ hodei select -r job.json   # a dry run; job.json holds {"$field": ["a"]}
```

- `$module/__init__.py`: the rules. A filter sees all candidates of a decision in one call and gives a
  reason only when asked; a scoring rule's scores are normalised into [0, 1] (checked by the core).
- `HODEI_API_VERSION` says which hook API the plugin is built for; Hodei refuses a plugin built for
  another major version, and says so in `hodei plugins`.

What a plugin may import from Hodei, and how breaking changes are announced: "Stability" in Hodei's
docs/plugin-authors.md.
'''

FILES = {
    "pyproject.toml": PYPROJECT,
    "$module/__init__.py": MODULE,
    "tests/test_$module.py": TESTS,
    "README.md": README,
}
