"""Selection speed: decisions per second and latency, by number of providers, on the paths the daemon serves.

Rerun: .venv/bin/python bench/selection.py [--sizes 10,100,500,1000,10000] [--seconds 2] [--seed 7]

Every decision goes through ``hodei.services.selection.LocalSelection`` with a real
``hodei.observability.telemetry.Telemetry()`` as its recorder (metrics and the ``hodei.selection``
span, tracing off: the daemon's defaults), as the daemon serves it. Two served paths ("path" column):

* provision: ``candidates(job, limit=max_attempts + 50)``, what provisioning asks for every worker
  (the default ``[workers] max_attempts`` 3 plus the 50 capacity refusals it may walk past: the best
  53 providers across the region tiers), on a job already parsed;
* Select: ``select(document)``, what gRPC ``Select`` and ``hodei select`` answer: the job's document
  checked, the first 10 of the tier ranked, the first 10 rejected providers with their reasons in
  words, every rejection counted by filter, the summary naming up to 10 providers per filter. The
  protobuf conversion of the answer is not included (bench/api.py measures it through gRPC).

Four ways to decide ("variant" column), on the same random but realistic fleets (8 regions,
environment/team/arch labels, tier/compliance annotations, mixed load and health; three providers in
five allow the jobs' registry, ``allowed_images = ["registry.example.com/jobs/*"]``, the others run
no job image) and the same 2,000 random jobs (``--images``: the share of them asking for an image of
that registry, default 0.3; ``--images 0`` measures jobs without a worker spec):

* chain: the default selection chain;
* chain+2: the default chain plus two third-party rules (a filter and a weighted ranker);
* chain+2i: the same, with the filter answering from the core's index (``IndexedFilter``);
* floor: the provision path's contract (the same 53 providers in the same order, checked against
  the chain) written inline as one plain Python loop over the providers, nothing recorded. The
  Select path's report has no floor.

Each row is one process core, single-threaded; latency is per decision.
"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import heapq
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from hodei import hookimpl
from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus, Resources
from hodei.observability.telemetry import Telemetry
from hodei.plugins import make_plugin_manager
from hodei.selection import (
    Candidate,
    Filter,
    IndexedFilter,
    Mask,
    ProviderIndex,
    Ranker,
    Requirements,
    SelectionChain,
    Selector,
    build_chain,
)
from hodei.services.selection import LocalSelection
from hodei.settings import WorkerSettings
from hodei.workers.provisioner import MAX_REFUSALS

# What provisioning asks selection for, per worker (``Provisioner``): as many as it may try or walk past.
PROVISION_LIMIT = WorkerSettings().max_attempts + MAX_REFUSALS

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1", "sa-east-1",
           "ca-central-1"]
TEAMS = [f"team-{i}" for i in range(20)]
GiB = 2**30
JOBS_REGISTRY = "registry.example.com/jobs/*"


def fleet(count: int, rng: random.Random) -> tuple[list[Provider], dict[uuid.UUID, ProviderState]]:
    providers, states = [], {}
    # Not drawn from rng: the fleets stay the ones measured before jobs had images.
    registry = {"type": "static", "allowed_images": [JOBS_REGISTRY]}
    for i in range(count):
        preferred = rng.choice(REGIONS) if rng.random() < 0.85 else None
        allowed = rng.sample([r for r in REGIONS if r != preferred], rng.choice([0, 0, 1, 2, 3]))
        labels = {"environment": rng.choices(["production", "staging", "development"], [60, 25, 15])[0],
                  "team": rng.choice(TEAMS), "arch": rng.choice(["amd64", "arm64"])}
        gpu = rng.random() < 0.1
        if gpu:
            labels["accelerator"] = "nvidia"
        max_workers = rng.choice([5, 10, 20, 50, 100, 200])
        provider = Provider(
            id=uuid.UUID(int=rng.getrandbits(128)), name=f"provider-{i:05d}", provider_type="static",
            config=registry if i % 5 < 3 else {"type": "static"}, status=rng.choices(list(ProviderStatus), [90, 4, 3, 3])[0],
            priority=rng.choices([0, 10, 20, 50, 100], [30, 30, 20, 15, 5])[0], max_workers=max_workers,
            preferred_region=preferred, allowed_regions=tuple(allowed), required_labels=labels,
            annotations={"tier": rng.choice(["gold", "silver", "bronze"]),
                         "compliance": rng.choices(["none", "gdpr", "hipaa"], [70, 20, 10])[0]})
        providers.append(provider)
        load = max_workers if rng.random() < 0.1 else rng.randrange(max_workers)
        states[provider.id] = ProviderState(
            health=rng.choices([HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY, None],
                               [87, 5, 3, 5])[0],
            active_workers=load, reserved_workers=0,
            per_worker=Resources(cpu=rng.choice([2, 4, 8, 16, 32, 64]), memory=rng.choice([4, 8, 16, 64, 256]) * GiB,
                                 gpu=rng.choice([1, 2, 8]) if gpu else 0))
    return providers, states


def jobs(count: int, rng: random.Random, images: float) -> list[dict[str, Any]]:
    result = []
    for number in range(count):
        labels = {}
        if rng.random() < 0.8:
            labels["environment"] = rng.choices(["production", "staging", "development"], [60, 25, 15])[0]
        if rng.random() < 0.3:
            labels["team"] = rng.choice(TEAMS)
        if rng.random() < 0.2:
            labels["arch"] = rng.choice(["amd64", "arm64"])
        gpu = 1 if rng.random() < 0.05 else 0
        if gpu:
            labels["accelerator"] = "nvidia"
        result.append({
            "cpu": rng.choice([0.5, 1, 2, 4, 8]), "memory": rng.choice([1, 2, 4, 8, 32]) * GiB, "gpu": gpu,
            "required_labels": labels,
            "required_annotations": {"compliance": "gdpr"} if rng.random() < 0.1 else {},
            "preferred_region": rng.choice(REGIONS) if rng.random() < 0.7 else None,
            "allowed_regions": rng.sample(REGIONS, rng.choice([1, 2, 3])) if rng.random() < 0.3 else [],
            "accepted_tiers": rng.sample(["gold", "silver", "bronze"], 2),
        })
        if number % 100 < images * 100:  # not drawn from rng, as above
            result[-1]["image"] = f"registry.example.com/jobs/job-{number % 7}:1"
    return result


# -- two third-party rules, as a plugin would write them ------------------------------------------


class AcceptedTiers(Filter):
    name = "accepted-tiers"
    requirement_fields = {"accepted_tiers": (list[str], [])}

    def admit(self, candidates: Sequence[Candidate], job: Requirements) -> list[bool]:
        accepted = set(job.extensions["accepted_tiers"])
        return [c.annotations.get("tier") in accepted for c in candidates] if accepted else [True] * len(candidates)


class TierPreference(Ranker):
    name = "tier-preference"
    weight = 0.5
    requirement_fields = {"accepted_tiers": (list[str], [])}

    def score(self, candidates: Sequence[Candidate], job: Requirements) -> list[float]:
        accepted = job.extensions["accepted_tiers"]
        points = {tier: (len(accepted) - i) / len(accepted) for i, tier in enumerate(accepted)}
        return [points.get(c.annotations.get("tier", ""), 0.0) for c in candidates]


class IndexedAcceptedTiers(IndexedFilter):
    """The same filter answered from the core's annotation index: what a plugin does when speed matters."""

    name = "accepted-tiers"
    requirement_fields = {"accepted_tiers": (list[str], [])}

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        accepted = job.extensions["accepted_tiers"]
        if not accepted:
            return index.mask_all()
        mask = Mask()
        for tier in accepted:
            mask |= index.mask_annotations({"tier": tier})
        return mask


class TiersPlugin:
    def __init__(self, indexed: bool = False):
        self.filter = IndexedAcceptedTiers() if indexed else AcceptedTiers()

    @hookimpl
    def hodei_selection_filters(self) -> list[Filter]:
        return [self.filter]

    @hookimpl
    def hodei_selection_rankers(self) -> list[Ranker]:
        return [TierPreference()]


# -- the floor: the provision path's contract as one plain loop ----------------------------------


# One loop with every rule written inline, on purpose: it is the floor the chain is measured against, so
# no function call per provider (which splitting it would add) may count in it.
def inline_floor(  # noqa: C901 - the inline loop is the point (above)
        providers: list[Provider], states: dict[uuid.UUID, ProviderState],
        limit: int) -> Callable[[dict], list[str]]:
    """The best ``limit`` providers for a job across the region tiers, best first, as provisioning asks."""
    rows = [(p, states[p.id]) for p in providers]
    smallest = heapq.nsmallest

    def decide(job: dict) -> list[str]:  # noqa: C901 - the inline loop is the point (above)
        labels, annotations = job["required_labels"].items(), job["required_annotations"].items()
        allowed, preferred = job["allowed_regions"], job["preferred_region"]
        image = job.get("image")
        tiers: list[list[tuple]] = [[], [], []]
        for p, s in rows:
            if p.status is not ProviderStatus.ACTIVE or s.health is HealthStatus.UNHEALTHY:
                continue
            load = s.active_workers + s.reserved_workers
            if load >= p.max_workers:
                continue
            r = s.per_worker
            if (job["cpu"] > 0 and (r.cpu is None or r.cpu < job["cpu"])) or \
               (job["memory"] > 0 and (r.memory is None or r.memory < job["memory"])) or \
               (job["gpu"] > 0 and (r.gpu is None or r.gpu < job["gpu"])):
                continue
            own = p.required_labels
            if any(own.get(k) != v for k, v in labels):
                continue
            own = p.annotations
            if any(own.get(k) != v for k, v in annotations):
                continue
            if image is not None:
                patterns = p.config.get("allowed_images")
                if not patterns or not any(fnmatch.fnmatchcase(image, pattern) for pattern in patterns):
                    continue
            if allowed:
                runs = set(p.allowed_regions)
                if p.preferred_region is not None:
                    runs.add(p.preferred_region)
                if runs and not runs.intersection(allowed):
                    continue
            entry = (-p.priority, load / p.max_workers, p.name)
            if preferred is not None and p.preferred_region == preferred:
                tiers[0].append(entry)
            elif preferred is not None and preferred in p.allowed_regions:
                tiers[1].append(entry)
            else:
                tiers[2].append(entry)
        # The preferred tier ranked, then the allowed tier, then the rest, until ``limit`` are found.
        chosen: list[str] = []
        for tier in tiers:
            if len(chosen) >= limit:
                break
            chosen += [entry[2] for entry in smallest(limit - len(chosen), tier)]
        return chosen

    return decide


# -- measuring ----------------------------------------------------------------------------------


def measure(decide: Callable[[Any], Any], inputs: list[Any], seconds: float,
            least: int = 20) -> tuple[float, float, float, int]:
    """Decisions per second (of time spent deciding), p50 and p99 in µs, and how many were made: for
    ``seconds``, and at least ``least`` decisions (a full report over 10,000 providers takes ~0.3 s)."""
    latencies: list[int] = []
    gc.collect()
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    turn = 0
    while clock() < deadline or len(latencies) < least:
        job = inputs[turn % len(inputs)]
        turn += 1
        started = clock()
        decide(job)
        latencies.append(clock() - started)
    total = sum(latencies) / 1e9
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / total, statistics.median(latencies) / 1e3, p99 / 1e3, len(latencies)


def served(chain: SelectionChain, providers: list[Provider],
           states: dict[uuid.UUID, ProviderState]) -> tuple[LocalSelection, float]:
    """The selection service as the daemon builds it over its live selector, and the index build time in ms."""
    started = time.perf_counter()
    selector = Selector(chain, providers, states)
    build_ms = (time.perf_counter() - started) * 1e3
    return LocalSelection(lambda: selector, lambda: chain, Telemetry()), build_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500,1000,10000")
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent measuring each row")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--images", type=float, default=0.3, help="share of the jobs asking for an image")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    job_docs = jobs(2000, rng, args.images)
    default_chain = build_chain(make_plugin_manager(load_entry_points=False))
    extended_chain = build_chain(make_plugin_manager(load_entry_points=False, plugins=[("tiers", TiersPlugin())]))
    indexed_chain = build_chain(make_plugin_manager(load_entry_points=False,
                                                    plugins=[("tiers", TiersPlugin(indexed=True))]))
    plain_docs = [{k: v for k, v in d.items() if k != "accepted_tiers"} for d in job_docs]
    plain_jobs = [default_chain.parse_requirements(d) for d in plain_docs]
    tier_jobs = [extended_chain.parse_requirements(d) for d in job_docs]

    print(f"bench/selection: python {sys.version.split()[0]}, {len(job_docs)} random jobs "
          f"({args.images:.0%} with an image), seed {args.seed}, "
          f"{args.seconds:g} s per row, one thread; through LocalSelection recorded in Telemetry()")
    print(f"  provision = candidates(job, limit={PROVISION_LIMIT}) as provisioning asks; "
          "Select = select(document): the full report gRPC Select answers; floor = the provision contract inline")
    header = (f"{'providers':>9}  {'variant':<8} {'path':<9} {'decisions/s':>12} {'p50 µs':>9} {'p99 µs':>9} "
              f"{'vs floor p50':>12} {'index build ms':>14}")
    print(header)
    print("-" * len(header))
    for size in [int(s) for s in args.sizes.split(",")]:
        providers, states = fleet(size, random.Random(args.seed + size))
        floor = inline_floor(providers, states, PROVISION_LIMIT)
        # The floor must agree with the path it is the floor of.
        check, _ = served(default_chain, providers, states)
        for doc, job in zip(job_docs[:300], plain_jobs[:300], strict=True):
            chosen, _ = check.candidates(job, PROVISION_LIMIT)
            assert [c.name for c in chosen] == floor(doc), "the floor and the chain disagree"
        floor_rate, floor_p50, floor_p99, _ = measure(floor, job_docs, args.seconds)
        rows = [("floor", "provision", floor_rate, floor_p50, floor_p99, None)]
        variants = (("chain", default_chain, plain_jobs, plain_docs), ("chain+2", extended_chain, tier_jobs, job_docs),
                    ("chain+2i", indexed_chain, tier_jobs, job_docs))
        for variant, chain, parsed, documents in variants:
            selection, build_ms = served(chain, providers, states)
            rate, p50, p99, _ = measure(lambda job, s=selection: s.candidates(job, PROVISION_LIMIT), parsed,
                                        args.seconds)
            rows.append((variant, "provision", rate, p50, p99, build_ms))
            rate, p50, p99, _ = measure(selection.select, documents, args.seconds)
            rows.append((variant, "Select", rate, p50, p99, None))
        for variant, path, rate, p50, p99, build_ms in rows:
            versus = f"{p50 / floor_p50:.2f}x" if variant != "floor" and path == "provision" else ""
            built = f"{build_ms:.1f}" if build_ms is not None else ""
            print(f"{size:>9}  {variant:<8} {path:<9} {rate:>12,.0f} {p50:>9.1f} {p99:>9.1f} {versus:>12} "
                  f"{built:>14}", flush=True)
    print("\nTargets (chain, provision path): >= 5,000 decisions/s at 500 providers, >= 1,000/s at 10,000, "
          "p50 within 2x of floor.")
    print(f"Rerun: .venv/bin/python bench/selection.py --sizes {args.sizes} --seconds {args.seconds:g} "
          f"--seed {args.seed} --images {args.images:g}")


if __name__ == "__main__":
    main()
