"""One decision code: the same trace replayed against a real daemon (``hodei serve``, static providers whose
workers start at once) and through ``hodei simulate`` gives the same placements.

The trace's jobs arrive one at a time (distinct instants) and may not wait (``wait: 0``), so the daemon's
answer to each ``workers provision`` is the whole decision: a provider, or none fits now. The replay keeps
virtual time: a worker is released when its duration has passed, before any job arriving at that instant,
as the simulator orders them. The daemon then decides with its live view of the slots, the simulator with
its copy; both with the chain, the capacity rules and the region tiers.
"""

from __future__ import annotations

import heapq
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hodei.cli import main
from hodei.testing.serve import serve

REGIONS = ["eu-west-1", "us-east-1"]
FLEET = [
    {"name": "eu-big", "provider_type": "static", "max_workers": 3, "priority": 5, "preferred_region": "eu-west-1",
     "config": {"capabilities": {"cpu": 8, "memory": "16Gi"}}},
    {"name": "eu-small", "provider_type": "static", "max_workers": 4, "preferred_region": "eu-west-1",
     "config": {"capabilities": {"cpu": 2, "memory": "4Gi"}}},
    {"name": "us-any", "provider_type": "static", "max_workers": 3, "preferred_region": "us-east-1",
     "required_labels": {"zone": "us"}, "config": {"capabilities": {"cpu": 4, "memory": "8Gi"}}},
    {"name": "anywhere", "provider_type": "static", "max_workers": 2, "config": {"capabilities": {"cpu": 4}}},
]


def trace(seed: int, jobs: int = 40) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records, at = [], 0.0
    for _ in range(jobs):
        at += rng.choice([1.0, 2.0, 5.0, 10.0])
        requirements: dict[str, Any] = {"cpu": rng.choice([1, 2, 4]), "preferred_region": rng.choice(REGIONS)}
        if rng.random() < 0.2:
            requirements["required_labels"] = {"zone": "us"}
        if rng.random() < 0.05:
            requirements["cpu"] = 64  # never fits
        records.append({"at": at, "requirements": requirements, "duration": rng.choice([3.0, 8.0, 20.0, 40.0]),
                        "wait": 0})
    return records


def simulated(records: list[dict[str, Any]]) -> dict[int, str | None]:
    from hodei.plugins import make_plugin_manager
    from hodei.selection import build_chain
    from hodei.services import simulation

    pm = make_plugin_manager(enable=["static"])
    fleet = simulation.fleet_from_documents("fleet", FLEET, pm)
    outcome = simulation.run(records, [fleet], build_chain(pm), wait=0, seed=0).outcomes[0]
    return {number: outcome.placements.get(number) for number in range(len(records))}


def replayed(records: list[dict[str, Any]], address: str, folder: Path) -> dict[int, str | None]:
    runner = CliRunner()
    env = {"HODEI_SERVER": address, "HODEI_CONFIG": None, "HODEI_DATABASE_URL": None}

    def hodei(*args: str) -> Any:
        return runner.invoke(main, [*args, "-o", "json"], env=env, catch_exceptions=False)

    placements: dict[int, str | None] = {}
    events = [(r["at"], 1, number) for number, r in enumerate(records)]
    heapq.heapify(events)
    workers: dict[int, str] = {}
    while events:
        at, kind, number = heapq.heappop(events)
        if kind == 0:  # a worker's duration has passed: it ends before anything arriving at this instant
            done = hodei("workers", "release", workers.pop(number))
            assert done.exit_code == 0, done.stderr
            continue
        job = folder / f"job-{number}.json"
        job.write_text(json.dumps(records[number]["requirements"]), encoding="utf-8")
        done = hodei("workers", "provision", "-r", str(job))
        if done.exit_code == 3:  # nothing fits now (or ever): the job would not wait
            placements[number] = None
            continue
        assert done.exit_code == 0, done.stderr
        worker = json.loads(done.stdout)
        placements[number] = worker["provider"]
        workers[number] = worker["id"]
        heapq.heappush(events, (at + records[number]["duration"], 0, number))
    return placements


@pytest.mark.parametrize("seed", [1, 2])
def test_the_daemon_and_the_simulator_place_the_same_trace_alike(tmp_path: Path, seed: int) -> None:
    records = trace(seed)
    config = tmp_path / "hodei.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "hodei.db"}"\n[plugins]\nenable = ["static"]\n'
                      '[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                      '[health]\ninterval_seconds = 3600.0\n[workers]\nreconcile_seconds = 3600.0\n',
                      encoding="utf-8")
    (tmp_path / "fleet.json").write_text(json.dumps(FLEET), encoding="utf-8")
    runner = CliRunner()
    local = {"HODEI_CONFIG": str(config), "HODEI_SERVER": None, "HODEI_DATABASE_URL": None}
    for args in (["db", "upgrade"], ["providers", "apply", "-f", str(tmp_path / "fleet.json")]):
        assert runner.invoke(main, args, env=local).exit_code == 0
    with serve(config) as daemon:
        deadline = time.monotonic() + 30
        while True:  # the daemon's first health round: every provider Healthy, as the simulator assumes
            listed = json.loads(runner.invoke(main, ["providers", "list", "-o", "json"], env=local).stdout)
            if all(p["state"]["health"] == "Healthy" for p in listed):
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.1)
        served = replayed(records, daemon.address, tmp_path)
    expected = simulated(records)
    assert served == expected
    # The trace is worth comparing: jobs went to several providers, some found none.
    assert len({p for p in served.values() if p}) >= 3
    assert None in served.values()
