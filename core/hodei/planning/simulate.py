"""``hodei simulate``: a trace replayed in virtual time through the chain and the placement queue's policy.

Each instant, in this order: workers that end free their slots, provider events apply (health, status,
max_workers), jobs arrive (a job no provider could ever take is refused at once; the others join the
queue), one placement round runs over the queue in its order (the same policy as ``hodei plan`` and the
daemon: a job is placed only on providers no job waiting ahead of it could take), and jobs whose wait
ended leave the queue, expired. Workers start at once and run for their duration.
"""

from __future__ import annotations

import bisect
import heapq
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus
from hodei.planning.order import priority_of, queue_order
from hodei.planning.placement import Pending, Placer
from hodei.planning.trace import ProviderEvent, Trace, TraceJob, percentile
from hodei.planning.view import FleetView
from hodei.selection import SelectionChain

# Utilization and queue depth are sampled at this many instants, evenly over the trace.
SAMPLES = 240

_FINISH, _EVENT, _ARRIVE, _EXPIRE = range(4)


@dataclass
class Outcome:
    """What one fleet did with the trace."""

    name: str
    jobs: int = 0
    placed: int = 0
    refused: int = 0
    expired: int = 0
    waits: list[float] = field(default_factory=list)
    per_provider: Counter[str] = field(default_factory=Counter)
    placements: dict[int, str] = field(default_factory=dict)  # trace record number -> provider
    placed_at: dict[int, float] = field(default_factory=dict)  # trace record number -> when it was placed
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (time, utilization, queue depth)
    still_waiting: int = 0

    def wait_percentiles(self) -> dict[str, float]:
        waits = sorted(self.waits)
        return {"p50": percentile(waits, 0.5), "p90": percentile(waits, 0.9), "p99": percentile(waits, 0.99),
                "max": waits[-1] if waits else 0.0}

    def mean_utilization(self) -> float:
        return sum(u for _, u, _ in self.samples) / len(self.samples) if self.samples else 0.0

    def as_dict(self) -> dict[str, object]:
        return {"fleet": self.name, "jobs": self.jobs, "placed": self.placed, "refused": self.refused,
                "expired": self.expired, "still_waiting": self.still_waiting,
                "wait_seconds": {k: round(v, 3) for k, v in self.wait_percentiles().items()},
                "mean_utilization": round(self.mean_utilization(), 4),
                "peak_queue_depth": max((d for _, _, d in self.samples), default=0),
                "placements": dict(sorted(self.per_provider.items())),
                "samples": [{"at": round(t, 3), "utilization": round(u, 4), "queue_depth": d}
                            for t, u, d in self.samples]}


class Simulation:
    """One fleet, one trace. ``wait``: how long a job may wait when the trace does not say."""

    def __init__(self, name: str, chain: SelectionChain, providers: Sequence[Provider],
                 states: Mapping[uuid.UUID, ProviderState], trace: Trace, *, wait: float, seed: int):
        self.chain = chain
        self.providers = list(providers)
        self.view = FleetView(chain, self.providers, states)
        self.placer = Placer(self.view)
        self.trace = trace
        self.wait = wait
        self.seed = seed
        self.outcome = Outcome(name, jobs=len(trace.jobs))
        self.used = sum(c.load for c in self.view.index.candidates)
        self.slots = self.view.slots()
        self.heap: list[tuple[float, int, int]] = []
        self.jobs: dict[int, TraceJob] = {}
        self.tiebreak: dict[int, float] = {}
        self.running: dict[int, uuid.UUID] = {}  # job -> the provider its worker runs on
        self.queued: dict[int, tuple[Pending, float]] = {}  # job -> its place in the queue, and when it arrived
        self.waiting: list[Pending] = []  # in queue order; placed and expired ones stay until it is compacted
        self.live = 0  # jobs waiting

    def run(self) -> Outcome:
        trace = self.trace
        self.jobs = {job.number: job for job in trace.jobs}
        events = {event.number: event for event in trace.events}
        # Jobs arriving at the same instant with the same priority queue in an order the seed decides.
        ties = random.Random(self.seed)
        self.tiebreak = {job.number: ties.random() for job in trace.jobs}
        heap = [(job.at, _ARRIVE, job.number) for job in trace.jobs]
        heap += [(event.at, _EVENT, event.number) for event in trace.events]
        heapq.heapify(heap)
        self.heap = heap
        end = trace.end
        step = end / SAMPLES if end > 0 else 1.0
        next_sample = 0.0
        while heap:
            now = heap[0][0]
            while next_sample <= min(now, end + step / 2):
                self._sample(next_sample)
                next_sample += step
            expiring: list[int] = []
            while heap and heap[0][0] == now:
                _, kind, number = heapq.heappop(heap)
                if kind == _FINISH:
                    self._finish(self.running.pop(number))
                elif kind == _EVENT:
                    self._event(events[number])
                elif kind == _ARRIVE:
                    self._arrive(number, now)
                else:
                    expiring.append(number)
            if self.live:
                self._place(now)
            self._expire(expiring)
        while next_sample <= end + step / 2:
            self._sample(next_sample)
            next_sample += step
        self.outcome.still_waiting = self.live
        return self.outcome

    def _arrive(self, number: int, now: float) -> None:
        job = self.jobs[number]
        pending = Pending(job.job, job.key, queue_order(priority_of(job.job), now, self.tiebreak[number]), number,
                          duration=job.duration)
        if not self.placer.could_fit(pending):
            self.outcome.refused += 1
            return
        bisect.insort(self.waiting, pending, key=lambda p: p.order)
        self.queued[number] = (pending, now)
        self.live += 1
        heapq.heappush(self.heap, (now + (job.wait if job.wait is not None else self.wait), _EXPIRE, number))

    def _place(self, now: float) -> None:
        outcome = self.outcome
        placed, _ = self.placer.round(self.waiting)
        for pending, chosen in placed:
            pending.done = True
            self.live -= 1
            self.used += 1
            outcome.placed += 1
            outcome.waits.append(now - self.queued.pop(pending.number)[1])
            outcome.per_provider[chosen.name] += 1
            outcome.placements[pending.number] = chosen.name
            outcome.placed_at[pending.number] = now
            self.running[pending.number] = chosen.provider.id
            heapq.heappush(self.heap, (now + pending.duration, _FINISH, pending.number))

    def _expire(self, numbers: list[int]) -> None:
        for number in numbers:
            entry = self.queued.pop(number, None)
            if entry is not None:
                entry[0].done = True
                self.live -= 1
                self.outcome.expired += 1
        if len(self.waiting) > 64 and len(self.waiting) > 2 * self.live:
            self.waiting = [p for p in self.waiting if not p.done]

    def _sample(self, at: float) -> None:
        self.outcome.samples.append((at, self.used / self.slots if self.slots else 0.0, self.live))

    def _finish(self, provider_id: uuid.UUID) -> None:
        candidate = self.view.index.by_id.get(provider_id)
        if candidate is not None:
            self.view.free(candidate)
        self.used -= 1

    def _event(self, event: ProviderEvent) -> None:
        candidate = self.view.index.by_name.get(event.provider)
        if candidate is None:
            return  # a provider this fleet does not have: the event is about another fleet
        health, status, max_workers = event.health, event.status, event.max_workers
        if health is not None:
            self.view.change(candidate, health=HealthStatus(health))
        if status is None and max_workers is None:
            return
        # A change of the provider's row: the index is built again over the same states.
        states = self.view.states()
        provider = candidate.provider
        changed = replace(provider, status=ProviderStatus(status) if status else provider.status,
                          max_workers=max_workers or provider.max_workers)
        self.providers = [changed if p.id == provider.id else p for p in self.providers]
        self.view = FleetView(self.chain, self.providers, states)
        self.placer = Placer(self.view)
        self.slots = self.view.slots()


def simulate(name: str, chain: SelectionChain, providers: Sequence[Provider],
             states: Mapping[uuid.UUID, ProviderState], trace: Trace, *, wait: float, seed: int) -> Outcome:
    return Simulation(name, chain, providers, states, trace, wait=wait, seed=seed).run()


def _seconds(value: float) -> str:
    return f"{value:,.1f} s"


def simulation_text(outcomes: Sequence[Outcome]) -> str:
    """The fleets side by side: what happened to the jobs, how long they waited, how busy the fleet was,
    and where the jobs ran."""
    names = [o.name for o in outcomes]
    rows: list[tuple[str, list[str]]] = [
        ("jobs", [f"{o.jobs:,}" for o in outcomes]),
        ("placed", [f"{o.placed:,}" for o in outcomes]),
        ("refused (never fit)", [f"{o.refused:,}" for o in outcomes]),
        ("expired (waited too long)", [f"{o.expired:,}" for o in outcomes]),
        ("still waiting at the end", [f"{o.still_waiting:,}" for o in outcomes]),
    ]
    for key in ("p50", "p90", "p99", "max"):
        rows.append((f"wait {key}", [_seconds(o.wait_percentiles()[key]) for o in outcomes]))
    rows.append(("mean utilization", [f"{o.mean_utilization():.1%}" for o in outcomes]))
    rows.append(("peak queue depth", [f"{max((d for _, _, d in o.samples), default=0):,}" for o in outcomes]))
    width = max(len(label) for label, _ in rows)
    columns = [max(len(name), *(len(values[i]) for _, values in rows)) for i, name in enumerate(names)]
    lines = [" " * width + "".join(f"  {name:>{w}}" for name, w in zip(names, columns, strict=True))]
    lines += [label.ljust(width) + "".join(f"  {v:>{w}}" for v, w in zip(values, columns, strict=True))
              for label, values in rows]
    providers = sorted({name for o in outcomes for name in o.per_provider})
    if providers:
        lines += ["", "placements per provider:"]
        head = max(len("PROVIDER"), *(len(p) for p in providers))
        counts = [[f"{o.per_provider.get(p, 0):,}" for o in outcomes] for p in providers]
        widths = [max(len(name), *(len(row[i]) for row in counts)) for i, name in enumerate(names)]
        lines.append("PROVIDER".ljust(head) + "".join(f"  {n:>{w}}" for n, w in zip(names, widths, strict=True)))
        lines += [p.ljust(head) + "".join(f"  {v:>{w}}" for v, w in zip(row, widths, strict=True))
                  for p, row in zip(providers, counts, strict=True)]
    return "\n".join(lines)
