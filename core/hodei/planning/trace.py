"""A trace for ``hodei simulate``: jobs (arrival, requirements, duration, how long each may wait) and,
optionally, provider events (health, status, max_workers) at given times; and a generator of realistic
ones (``hodei simulate --generate``)."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from hodei.config_schema import StrictModel, problems_from
from hodei.errors import InvalidInput, Problem
from hodei.selection import Requirements, SelectionChain

# A trace is bounded like every input: a year of virtual time, a million records.
MOST_SECONDS = 366 * 24 * 3600.0
MOST_RECORDS = 1_000_000
Seconds = Annotated[float, Field(ge=0, le=MOST_SECONDS, allow_inf_nan=False)]


class TraceRecord(StrictModel):
    at: Seconds = Field(description="seconds from the start of the trace")
    requirements: dict[str, Any] | None = Field(None, description="a job: its requirements, as `hodei select -r`")
    duration: Annotated[float, Field(gt=0, le=MOST_SECONDS, allow_inf_nan=False)] | None = Field(
        None, description="a job: how long its worker runs once placed")
    wait: Seconds | None = Field(None, description="a job: how long it may wait for a slot (default: --wait)")
    provider: str | None = Field(None, description="a provider event: the provider's name")
    health: Literal["Healthy", "Degraded", "Unhealthy"] | None = None
    status: Literal["ACTIVE", "DISABLED", "MAINTENANCE"] | None = None
    max_workers: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


@dataclass(frozen=True)
class TraceJob:
    number: int
    at: float
    job: Requirements
    key: str
    duration: float
    wait: float | None


@dataclass(frozen=True)
class ProviderEvent:
    number: int
    at: float
    provider: str
    health: str | None = None
    status: str | None = None
    max_workers: int | None = None


@dataclass(frozen=True)
class Trace:
    jobs: list[TraceJob]
    events: list[ProviderEvent]

    @property
    def end(self) -> float:
        return max([j.at for j in self.jobs] + [e.at for e in self.events] + [0.0])


def parse_trace(records: Sequence[Any], chain: SelectionChain) -> Trace:
    """The records checked: each job's requirements through ``chain``, every fault named by its record
    (``trace[12].requirements.cpu``). Jobs with the same requirements share one parse.

    :raises InvalidInput:"""
    if len(records) > MOST_RECORDS:
        raise InvalidInput(Problem("trace", f"holds {len(records):,} records; at most {MOST_RECORDS:,}"))
    jobs: list[TraceJob] = []
    events: list[ProviderEvent] = []
    parsed: dict[str, Requirements] = {}
    problems: list[Problem] = []
    for number, document in enumerate(records):
        where = f"trace[{number}]"
        try:
            record = TraceRecord.model_validate(document)
            if record.requirements is not None:
                jobs.append(_job(number, record, parsed, chain))
            elif record.provider is not None:
                if record.health is None and record.status is None and record.max_workers is None:
                    raise InvalidInput(Problem("", "a provider event changes its health, status or max_workers"))
                events.append(ProviderEvent(number, record.at, record.provider, record.health, record.status,
                                            record.max_workers))
            else:
                raise InvalidInput(Problem("", "a record is a job (requirements, duration) or a provider event "
                                               "(provider and its health, status or max_workers)"))
        except ValidationError as exc:
            problems += [p.nested(where) for p in problems_from(exc)]
        except InvalidInput as exc:
            problems += [p.nested(where) for p in exc.problems]
        if len(problems) >= 20:
            break
    if problems:
        raise InvalidInput(problems[:20], subject="the trace is invalid")
    return Trace(jobs, events)


def _job(number: int, record: TraceRecord, parsed: dict[str, Requirements], chain: SelectionChain) -> TraceJob:
    if record.duration is None:
        raise InvalidInput(Problem("duration", "a job needs its duration (seconds its worker runs)"))
    if record.provider is not None:
        raise InvalidInput(Problem("provider", "a job names no provider; a provider event has no requirements"))
    key = json.dumps(record.requirements, sort_keys=True)
    job = parsed.get(key)
    if job is None:
        try:
            job = parsed[key] = chain.parse_requirements(record.requirements)
        except InvalidInput as exc:
            raise InvalidInput([p.nested("requirements") for p in exc.problems]) from None
    return TraceJob(number, record.at, job, key, record.duration, record.wait)


# -- a generated trace ----------------------------------------------------------------------------------

_REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-1")
_SHAPES = (  # (weight, requirements, mean duration in seconds)
    (50, {"cpu": 1, "memory": "2Gi"}, 300),
    (25, {"cpu": 2, "memory": "4Gi"}, 900),
    (10, {"cpu": 4, "memory": "8Gi", "priority": 1}, 1800),
    (5, {"gpu": 1, "cpu": 4, "memory": "16Gi", "required_labels": {"accelerator": "gpu"}}, 3600),
)


def generate(jobs: int, seed: int, *, providers: int = 12, hours: float = 4.0,
             with_priority: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A trace of ``jobs`` jobs over ``hours`` (a day's curve: quiet, a peak, quiet) and a fleet of
    ``providers`` across three regions, a tenth of them with GPUs; the same ``seed``, the same files."""
    rng = random.Random(seed)
    span = hours * 3600
    weights = [w for w, _, _ in _SHAPES]
    records: list[dict[str, Any]] = []
    for _ in range(jobs):
        # Arrivals bunch towards the middle of the span (a working day's peak).
        at = min(span, max(0.0, rng.gauss(span / 2, span / 5)))
        _, requirements, mean = rng.choices(_SHAPES, weights)[0]
        requirements = dict(requirements)
        if not with_priority:
            requirements.pop("priority", None)
        requirements["preferred_region"] = rng.choice(_REGIONS)
        duration = max(10.0, rng.expovariate(1 / mean))
        records.append({"at": round(at, 1), "requirements": requirements, "duration": round(duration, 1),
                        "wait": 1800})
    records.sort(key=lambda r: r["at"])
    fleet = []
    for number in range(providers):
        region = _REGIONS[number % len(_REGIONS)]
        gpu = number % 10 == 9
        fleet.append({
            "name": f"{'gpu' if gpu else 'pool'}-{region}-{number // len(_REGIONS) + 1}", "provider_type": "static",
            "max_workers": 4 if gpu else 8 + 4 * (number % 3), "priority": 1 if number % 4 == 0 else 0,
            "preferred_region": region, "required_labels": {"accelerator": "gpu"} if gpu else {},
            "config": {"capabilities": {"cpu": 16, "memory": "64Gi", "gpu": 2 if gpu else 0}},
        })
    if records:  # one provider goes down for a while at the peak: the simulator shows what it costs
        down = fleet[0]["name"]
        records.append({"at": round(span * 0.45, 1), "provider": down, "health": "Unhealthy"})
        records.append({"at": round(span * 0.6, 1), "provider": down, "health": "Healthy"})
        records.sort(key=lambda r: r["at"])
    return records, fleet


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted ``values`` (0 for none)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, math.ceil(fraction * len(values)) - 1))]
