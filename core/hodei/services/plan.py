"""``hodei plan`` as every entry point serves it: a batch of jobs' requirements, checked, then placed on a
copy of the fleet the selection service decides on now (the daemon's live one, or the database's)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hodei.errors import InvalidInput, Problem
from hodei.planning.plan import Planner
from hodei.planning.report import PlanReport, plan_text
from hodei.selection import Requirements
from hodei.services.selection import LocalSelection

# A batch is read whole and answered in one message: bounded, as every input.
MOST_JOBS = 100_000
# Problems reported for a batch with many faulty jobs: the first ones, then a count.
PROBLEMS_SHOWN = 20

__all__ = ["MOST_JOBS", "LocalPlanning", "PlanReport", "plan_text"]


def parse_jobs(selection: LocalSelection, documents: Sequence[Any]) -> tuple[list[Requirements], list[str]]:
    """Each job's requirements checked by the chain (jobs written alike share one check), and a key per job
    (equal for equal requirements); every fault named by its job (``jobs[3].cpu``).

    :raises InvalidInput:"""
    if not documents:
        raise InvalidInput(Problem("jobs", "the batch holds no job"))
    if len(documents) > MOST_JOBS:
        raise InvalidInput(Problem("jobs", f"holds {len(documents):,} jobs; a plan takes at most {MOST_JOBS:,}"))
    jobs: list[Requirements] = []
    keys: list[str] = []
    parsed: dict[str, Requirements] = {}
    problems: list[Problem] = []
    shown: set[int] = set()
    faulty = 0
    for number, document in enumerate(documents):
        try:
            if not isinstance(document, dict):
                raise InvalidInput(Problem("", f"a job must be an object, got {type(document).__name__}"))
            key = json.dumps(document, sort_keys=True)
            job = parsed.get(key)
            if job is None:
                job = parsed[key] = selection.requirements(document)
            jobs.append(job)
            keys.append(key)
        except InvalidInput as exc:
            faulty += 1
            for problem in exc.problems:
                if len(problems) < PROBLEMS_SHOWN:
                    shown.add(number)
                    where = f"jobs[{number}].{problem.field}" if problem.field else f"jobs[{number}]"
                    problems.append(Problem(where, problem.reason))
    if faulty:
        more = faulty - len(shown)
        if more > 0:
            problems.append(Problem("jobs", f"and {more:,} more jobs with problems"))
        raise InvalidInput(problems, subject=f"{faulty:,} of {len(documents):,} jobs are invalid")
    return jobs, keys


class LocalPlanning:
    """Plans on the fleet ``selection`` decides on; nothing is provisioned or recorded."""

    def __init__(self, selection: LocalSelection):
        self.selection = selection

    def plan(self, documents: Sequence[Any]) -> PlanReport:
        """Where each job would run if the batch came now, why the others would wait, and what would place
        them. :raises InvalidInput: naming each job and field at fault."""
        jobs, keys = parse_jobs(self.selection, documents)
        return Planner(self.selection.selector()).plan(jobs, keys)
