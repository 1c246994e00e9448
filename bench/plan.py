"""``hodei plan`` and ``hodei simulate`` as a user runs them: the CLI, in a process of its own, timed whole
(start-up, reading the files and the database, planning or simulating, printing).

Rerun: .venv/bin/python bench/plan.py [--providers 1000] [--plan-jobs 10000] [--trace-jobs 100000]
       [--runs 3] [--seed 7]

* plan: a fresh SQLite database with --providers ``static`` providers (six regions, a tenth with GPUs and
  a label, ``config.capabilities``, max_workers 10, so the fleet has about as many slots as the batch
  has jobs), then ``hodei plan -f JOBS -o json`` of --plan-jobs jobs (JSON Lines: a mix of sizes and
  regions, some asking for a GPU; some wait, so the advice is computed and checked by re-planning).
* simulate: ``hodei simulate --trace TRACE --fleet FLEET`` of a generated trace of --trace-jobs jobs
  (``hodei simulate --generate``'s generator, over 4 hours of virtual time) on a fleet of --providers
  providers, with a provider event at the peak.

Targets (issue 27): plan of 10,000 jobs over 1,000 providers in at most 5 s; a 100,000-job trace over
1,000 providers simulated in at most 60 s. The table gives the median wall-clock time of --runs runs, the slowest, and the median CPU time
(user + system) of the command's process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1"]
HODEI = [sys.executable, "-m", "hodei"]


def fleet(count: int, rng: random.Random) -> list[dict[str, Any]]:
    return [{"name": f"p{i:05d}", "provider_type": "static", "max_workers": 10,
             "priority": rng.choice([0, 10, 20]), "preferred_region": REGIONS[i % len(REGIONS)],
             "required_labels": {"accelerator": "gpu"} if i % 10 == 9 else {},
             "config": {"capabilities": {"cpu": 16, "memory": "64Gi", "gpu": 2 if i % 10 == 9 else 0}}}
            for i in range(count)]


def jobs(count: int, rng: random.Random) -> list[dict[str, Any]]:
    found = []
    for _ in range(count):
        job: dict[str, Any] = {"cpu": rng.choice([1, 2, 4]), "memory": rng.choice(["2Gi", "8Gi"]),
                               "preferred_region": rng.choice(REGIONS)}
        if rng.random() < 0.05:
            job.update(gpu=1, required_labels={"accelerator": "gpu"})
        found.append(job)
    return found


def timed(args: list[str], env: dict[str, str], ok: tuple[int, ...]) -> tuple[float, float]:
    """Wall-clock seconds, and CPU seconds of the process (user + system): on a shared machine the wall
    clock includes waiting for a core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--plan-jobs", type=int, default=10_000)
    parser.add_argument("--trace-jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        config = folder / "hodei.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{folder / "hodei.db"}"\n[plugins]\nenable = ["static"]\n',
                          encoding="utf-8")
        env = {key: value for key, value in os.environ.items() if not key.startswith("HODEI_")}
        env["HODEI_CONFIG"] = str(config)
        providers = fleet(options.providers, rng)
        (folder / "fleet.json").write_text(json.dumps(providers), encoding="utf-8")
        batch = jobs(options.plan_jobs, rng)
        (folder / "jobs.jsonl").write_text("".join(json.dumps(j) + "\n" for j in batch), encoding="utf-8")
        timed([*HODEI, "db", "upgrade"], env, (0,))
        timed([*HODEI, "providers", "apply", "-f", str(folder / "fleet.json")], env, (0,))

        from hodei.planning.trace import generate

        records, _ = generate(options.trace_jobs, options.seed, providers=options.providers)
        (folder / "trace.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        _, generated_fleet = generate(1, options.seed, providers=options.providers)
        (folder / "sim-fleet.json").write_text(json.dumps(generated_fleet), encoding="utf-8")

        cases = [
            ("plan", f"{options.plan_jobs:,} jobs, {options.providers:,} providers", 5.0,
             [*HODEI, "plan", "-f", str(folder / "jobs.jsonl"), "-o", "json"], (0, 3)),
            ("simulate", f"{options.trace_jobs:,} jobs, {options.providers:,} providers", 60.0,
             [*HODEI, "simulate", "--trace", str(folder / "trace.jsonl"), "--fleet", str(folder / "sim-fleet.json")],
             (0,)),
        ]
        for name, size, target, args, ok in cases:
            runs = [timed(args, env, ok) for _ in range(options.runs)]
            walls = [wall for wall, _ in runs]
            rows.append((name, size, statistics.median(walls), max(walls), statistics.median(c for _, c in runs),
                         target))
    print(f"{'command':<10} {'size':<32} {'median s':>9} {'slowest s':>10} {'cpu s':>7} {'target s':>9}")
    for name, size, median, slowest, cpu, target in rows:
        print(f"{name:<10} {size:<32} {median:>9.2f} {slowest:>10.2f} {cpu:>7.2f} {target:>9.0f}")
    print(f"\nrerun: .venv/bin/python bench/plan.py --providers {options.providers} --plan-jobs {options.plan_jobs} "
          f"--trace-jobs {options.trace_jobs} --runs {options.runs} --seed {options.seed}")


if __name__ == "__main__":
    main()
