"""One decision code: the same trace replayed against a real daemon (``hodei serve``, static providers whose
workers start at once) and through ``hodei simulate`` gives the same placements: jobs that may not wait
(the chain and the capacity rules), then jobs that wait in the daemon's placement queue (its order and
policy too).

The first traces' jobs arrive one at a time (distinct instants) and may not wait (``wait: 0``), so the
daemon's answer to each ``workers provision`` is the whole decision: a provider, or none fits now. The
replay keeps virtual time: a worker is released when its duration has passed, before any job arriving at
that instant, as the simulator orders them. The queue traces' jobs wait: each request is a ProvisionWorker
with a wait in a thread of its own, and after each instant the replay lets the daemon settle (every
request placed or listed in its queue) before virtual time moves on.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
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


# -- through the placement queue: jobs that wait ------------------------------------------------------------

QUEUE_FLEET = [
    {"name": "big", "provider_type": "static", "max_workers": 2, "priority": 5, "config": {"capabilities": {"cpu": 8}}},
    {"name": "small", "provider_type": "static", "max_workers": 2, "config": {"capabilities": {"cpu": 2}}},
]


def queue_trace(seed: int, jobs: int = 24) -> list[dict[str, Any]]:
    """A fleet of four slots and jobs arriving faster than they end: most wait their turn, bigger ones
    (only `big` takes them) among them, some at a higher priority."""
    rng = random.Random(seed)
    records, at = [], 0.0
    for _ in range(jobs):
        at += rng.choice([1.0, 2.0, 3.0])
        requirements: dict[str, Any] = {"cpu": rng.choice([1, 1, 2, 4])}
        if rng.random() < 0.25:
            requirements["priority"] = 1
        records.append({"at": at, "requirements": requirements, "duration": rng.choice([4.0, 7.0, 11.0]),
                        "wait": 3600})
    records.append({"at": at + 1, "requirements": {"cpu": 64}, "duration": 1.0, "wait": 3600})  # never fits
    return records


class Queued:
    """Requests of a daemon's placement queue, each in a thread of its own (a ProvisionWorker with a wait)."""

    def __init__(self, address: str):
        import grpc
        from hodei.api.v1 import workers_pb2_grpc

        self.channel = grpc.insecure_channel(address)
        self.api = workers_pb2_grpc.WorkerServiceStub(self.channel)
        self.answers: dict[int, tuple[str, str] | None] = {}  # job -> (worker id, provider), None: refused
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def provision(self, number: int, requirements: dict[str, Any]) -> None:
        import grpc
        from google.protobuf import json_format, struct_pb2
        from hodei.api.v1 import workers_pb2

        request = workers_pb2.ProvisionWorkerRequest(
            requirements=json_format.ParseDict(requirements, struct_pb2.Struct()), wait_seconds=120,
            request_id=f"job-{number}")

        def call() -> None:
            answer: tuple[str, str] | None = None
            for _ in range(20):
                try:
                    worker = self.api.ProvisionWorker(request, timeout=150)
                    answer = (worker.id, worker.provider)
                    break
                except grpc.RpcError as exc:
                    # UNAVAILABLE: asked again with the same id, as `hodei workers provision --wait` does (the
                    # request keeps its place); anything else is the answer (refused: it never fits).
                    if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                        break
                    time.sleep(0.1)
            with self.lock:
                self.answers[number] = answer

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        self.threads.append(thread)

    def waiting(self) -> set[int]:
        from hodei.api.v1 import workers_pb2

        listed = self.api.ListQueue(workers_pb2.ListQueueRequest(limit=1000), timeout=20).requests
        return {int(entry.id.removeprefix("job-")) for entry in listed}

    def release(self, worker_id: str) -> None:
        from hodei.api.v1 import workers_pb2

        self.api.ReleaseWorker(workers_pb2.ReleaseWorkerRequest(worker_id=worker_id, reason="done"), timeout=20)

    def settle(self, started: set[int], expected: set[int], seconds: float = 10.0) -> set[int]:
        """Until every request started has its answer or waits in the queue, and the placed ones are
        ``expected`` (or the time is up: the comparison after says what differs)."""
        deadline = time.monotonic() + seconds
        while True:
            with self.lock:
                answered = set(self.answers)
                placed = {n for n, answer in self.answers.items() if answer is not None}
            if answered | self.waiting() >= started and placed >= expected:
                time.sleep(0.2)  # and nothing more is placed meanwhile
                with self.lock:
                    if {n for n, answer in self.answers.items() if answer is not None} == placed:
                        return placed
            if time.monotonic() > deadline:
                return placed
            time.sleep(0.05)


@pytest.mark.parametrize("seed", [3, 4])
def test_the_daemon_s_queue_and_the_simulator_place_waiting_jobs_alike(tmp_path: Path, seed: int) -> None:
    from hodei.plugins import make_plugin_manager
    from hodei.selection import build_chain
    from hodei.services import simulation

    records = queue_trace(seed)
    pm = make_plugin_manager(enable=["static"])
    fleet = simulation.fleet_from_documents("fleet", QUEUE_FLEET, pm)
    expected = simulation.run(records, [fleet], build_chain(pm), wait=3600, seed=0).outcomes[0]
    assert len(expected.waits) > len([w for w in expected.waits if w == 0]) >= 1  # jobs did wait

    config = tmp_path / "hodei.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "hodei.db"}"\n[plugins]\nenable = ["static"]\n'
                      '[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                      '[health]\ninterval_seconds = 3600.0\n[workers]\nreconcile_seconds = 3600.0\n',
                      encoding="utf-8")
    (tmp_path / "fleet.json").write_text(json.dumps(QUEUE_FLEET), encoding="utf-8")
    runner = CliRunner()
    local = {"HODEI_CONFIG": str(config), "HODEI_SERVER": None, "HODEI_DATABASE_URL": None}
    for args in (["db", "upgrade"], ["providers", "apply", "-f", str(tmp_path / "fleet.json")]):
        assert runner.invoke(main, args, env=local).exit_code == 0
    with serve(config) as daemon:
        deadline = time.monotonic() + 30
        while not all(p["state"]["health"] == "Healthy"
                      for p in json.loads(runner.invoke(main, ["providers", "list", "-o", "json"], env=local).stdout)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        queue = Queued(daemon.address)
        events = [(r["at"], 1, number) for number, r in enumerate(records)]
        heapq.heapify(events)
        started: set[int] = set()
        seen: set[int] = set()
        while events:
            now, kind, number = heapq.heappop(events)
            if kind == 0:
                answer = queue.answers[number]
                assert answer is not None
                queue.release(answer[0])
            else:
                started.add(number)
                queue.provision(number, records[number]["requirements"])
            if events and events[0][0] == now:
                continue  # everything of this instant first, as the simulator takes it
            placed = queue.settle(started, {n for n, at in expected.placed_at.items() if at <= now})
            for newly in sorted(placed - seen):  # each runs for its duration from this instant
                heapq.heappush(events, (now + records[newly]["duration"], 0, newly))
            seen |= placed
        for thread in queue.threads:
            thread.join(10)
        queue.channel.close()
    served = {n: (answer[1] if answer else None) for n, answer in queue.answers.items()}
    assert served == {n: expected.placements.get(n) for n in range(len(records))}
