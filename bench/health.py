"""Health monitor under load: one full round over many static providers, and selection latency meanwhile.

Rerun: .venv/bin/python bench/health.py [--providers 1000] [--hang 0.1] [--timeout 5] [--concurrency 200,500,1000]
       [--postgres URL] [--period-ms 1] [--idle-seconds 3] [--seed 7]

Each row runs a real daemon (``hodei.daemon.Daemon``) in this process, on a fresh database (SQLite
file in a temp dir; with --postgres, also a fresh schema in that database), over --providers
``static`` providers: a fraction --hang of them never answer, the rest answer each call in 50 to
200 ms (``latency_ms`` 50 plus up to 150 of jitter; a passing check is two calls, health then
capacity). The health interval is an hour, so exactly one round runs, at start.

* round: from the first check started to the last one recorded (the hanging ones cut at
  --timeout), i.e. until ``monitor.checks`` holds every provider. "answered" is when the last
  check gave its answer (or timed out) and left its concurrency slot, before its result was
  written to the database; "cpu" is the process's CPU time during the round (all threads).
* selection: one served decision is due every --period-ms, on a fixed set of requirements: the one
  provisioning asks for, ``daemon.selection.candidates(job, limit=max_attempts + 50)`` (the
  daemon's ``LocalSelection``, recorded in its telemetry), and the daemon's event loop answers it:
  asked by a task on that loop (--arrivals loop, the default: as a request read from a socket is),
  or by a thread of this process calling ``call_soon_threadsafe`` (--arrivals thread: that thread's
  own waits for the interpreter count too). Latency is from the moment the decision was due to its
  answer, so time spent waiting for the event loop (the health checks' tasks, their database
  writes, the monitor's scans, and the worker threads holding the GIL) counts; "call" is the
  ``candidates`` call alone. Measured during the round, then for --idle-seconds once the round is
  over and the daemon has settled (the idle daemon). A larger --period-ms asks less.

The daemon's API listens on a free loopback port and its metrics endpoint is off, so a run does
not depend on (or disturb) a daemon already using the default ports.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from typing import Any

import anyio
from hodei.daemon import Daemon
from hodei.settings import Settings
from hodei.testing.databases import fill, scratch_database
from hodei.workers.provisioner import MAX_REFUSALS

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1"]
REQUIREMENTS = [
    {"cpu": 1},
    {"cpu": 2, "memory": "4Gi", "preferred_region": "eu-west-1"},
    {"required_labels": {"environment": "production"}, "preferred_region": "us-east-1"},
    {"required_labels": {"environment": "staging", "team": "team-3"}},
    {"allowed_regions": ["ap-south-1", "ap-northeast-1"], "preferred_region": "ap-south-1"},
    {"required_labels": {"arch": "arm64"}, "allowed_regions": ["us-west-2"]},
]


def documents(count: int, hang: float, rng: random.Random) -> list[dict[str, Any]]:
    hanging = set(rng.sample(range(count), round(count * hang)))
    docs = []
    for i in range(count):
        config: dict[str, Any] = {"latency_ms": 50, "latency_jitter_ms": 150}
        if i in hanging:
            config["hang"] = True
        region = rng.choice(REGIONS)
        docs.append({
            "name": f"h{i:05d}", "provider_type": "static", "config": config,
            "priority": rng.choice([0, 10, 20, 50]), "max_workers": rng.choice([5, 10, 50, 100]),
            "preferred_region": region, "allowed_regions": rng.sample([r for r in REGIONS if r != region], 1),
            "required_labels": {"environment": rng.choice(["production", "staging", "development"]),
                                "team": f"team-{rng.randrange(10)}", "arch": rng.choice(["amd64", "arm64"])},
        })
    return docs


class CountingHandler(logging.Handler):
    """Keeps the daemon's log records off the terminal, counting them by level."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1


# -- one run --------------------------------------------------------------------------------------


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max, in microseconds."""
    if not values:
        return float("nan"), float("nan"), float("nan")
    ordered = sorted(values)
    return (statistics.median(ordered) * 1e6, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
            ordered[-1] * 1e6)


async def observe(daemon: Daemon, marks: dict[str, float]) -> None:
    """Marks the round's milestones in ``marks``: a cheap look at the monitor every millisecond."""
    monitor, clock = daemon.monitor, time.perf_counter
    seen, busy = -1, False
    limiter = monitor._limiter  # read only: a check holds a slot from its start to its answer (or timeout)
    while "all" not in marks:
        if "start" not in marks and (monitor.in_flight or monitor.checks):
            marks["start"], marks["cpu"] = clock(), time.process_time()
        slots = limiter.statistics()
        if slots.borrowed_tokens or slots.tasks_waiting:
            busy = True
        elif busy and "answered" not in marks:
            marks["answered"] = clock()
        count = len(monitor.checks)
        if count != seen:
            seen = count
            if count and count >= len(daemon.fleet.providers):
                marks["all"], marks["cpu"] = clock(), time.process_time() - marks["cpu"]
        await anyio.sleep(0.001)


async def measure(url: str, args: argparse.Namespace, concurrency: int) -> dict[str, Any]:
    settings = Settings.model_validate({
        "database": {"url": url}, "plugins": {"enable": ["static"]},
        "health": {"interval_seconds": 3600.0, "timeout_seconds": args.timeout, "concurrency": concurrency},
        "daemon": {"poll_seconds": 1.0, "resync_seconds": 3600.0},
        "api": {"listen": "127.0.0.1:0"}, "metrics": {"listen": ""},
    })
    daemon = Daemon(settings)
    monitor, clock = daemon.monitor, time.perf_counter
    jobs = [daemon.selection.requirements(doc) for doc in REQUIREMENTS]
    limit = settings.workers.max_attempts + MAX_REFUSALS  # as the provisioner asks
    period = args.period_ms / 1000
    marks: dict[str, float] = {}
    samples: list[tuple[float, float, float]] = []  # (due, latency, call)

    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def answer(due: float, turn: int) -> None:
        started = clock()
        daemon.selection.candidates(jobs[turn % len(jobs)], limit)
        done = clock()
        samples.append((due, done - due, done - started))

    def arrive() -> None:
        """Decisions asked for from outside the loop, one due every ``period``, however busy the loop is."""
        due, turn = clock() + period, 0
        while not stop.is_set():
            time.sleep(max(0.0, due - clock()))
            loop.call_soon_threadsafe(answer, due, turn)
            due += period
            turn += 1

    async def arrive_in_loop() -> None:
        """The same decisions asked for from inside the loop: as a request read from a socket by the
        loop is, with no extra Python thread of this process competing for the interpreter."""
        due, turn = clock() + period, 0
        while not stop.is_set():
            await anyio.sleep(max(0.0, due - clock()))
            answer(due, turn)
            due += period
            turn += 1

    async with anyio.create_task_group() as group:
        group.start_soon(daemon.run)
        group.start_soon(observe, daemon, marks)
        arrivals = threading.Thread(target=arrive, name="bench-arrivals", daemon=True)
        if args.arrivals == "thread":
            arrivals.start()
        else:
            group.start_soon(arrive_in_loop)
        with anyio.fail_after(args.timeout * 10 + 120):
            while "all" not in marks:
                await anyio.sleep(0.01)
        # Settle: the last writes, and on SQLite the re-read they cause (data_version changed).
        settled = -1
        while settled != daemon.watcher.resyncs:
            settled = daemon.watcher.resyncs
            await anyio.sleep(max(0.5, 2 * settings.daemon.poll_seconds + 0.2))
        marks["idle"] = clock()
        await anyio.sleep(args.idle_seconds)
        idle_resyncs = daemon.watcher.resyncs - settled
        marks["idle-end"] = clock()
        stop.set()
        daemon.shutdown()
    if arrivals.is_alive():
        arrivals.join()
    round_samples = [(lat, call) for due, lat, call in samples if marks["start"] <= due < marks["all"]]
    idle_samples = [(lat, call) for due, lat, call in samples if marks["idle"] <= due < marks["idle-end"]]
    unchecked = len(daemon.fleet.providers) - len(monitor.checks)
    return {
        "answered": marks.get("answered", float("nan")) - marks["start"],
        "round": marks["all"] - marks["start"], "cpu": marks["cpu"], "resyncs": idle_resyncs,
        "round_latency": quantiles([s[0] for s in round_samples]), "round_call": quantiles([s[1] for s in round_samples]),
        "idle_latency": quantiles([s[0] for s in idle_samples]), "idle_call": quantiles([s[1] for s in idle_samples]),
        "unchecked": unchecked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--hang", type=float, default=0.1, help="fraction of providers that never answer")
    parser.add_argument("--timeout", type=float, default=5.0, help="[health] timeout_seconds")
    parser.add_argument("--concurrency", default="200,500,1000", help="[health] concurrency values, one row each")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database (a fresh schema)")
    parser.add_argument("--period-ms", type=float, default=1.0, help="one selection due every this many ms")
    parser.add_argument("--arrivals", choices=("loop", "thread"), default="loop",
                        help="ask for decisions from a task on the daemon's loop (a request read from a socket), "
                             "or from a thread of this process (adds that thread's own waits for the interpreter)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="selection measured idle for this long")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    counting = CountingHandler()
    logger = logging.getLogger("hodei")
    logger.setLevel(logging.INFO)  # as `hodei serve` runs: its log records are part of the cost
    logger.addHandler(counting)
    logger.propagate = False
    logging.getLogger("alembic").setLevel(logging.WARNING)

    docs = documents(args.providers, args.hang, random.Random(args.seed))
    backends: list[tuple[str, str | None]] = [("sqlite", None)] + ([("postgresql", args.postgres)]
                                                                 if args.postgres else [])
    target = args.timeout + 0.5
    print(f"bench/health: python {sys.version.split()[0]}, {args.providers} static providers, "
          f"{round(args.providers * args.hang)} hang, the rest answer each call in 50-200 ms; timeout {args.timeout:g} s; "
          f"one selection due every {args.period_ms:g} ms; {os.cpu_count()} CPUs")
    header = (f"{'backend':<10} {'conc.':>5} {'answered s':>10} {'round s':>8} {'met':>4} {'cpu s':>6} | "
              f"{'select µs: round p50':>20} {'p99':>9} {'max':>9} | {'idle p50':>8} {'p99':>7} {'max':>7} | "
              f"{'p99 ratio':>9} {'met':>4} | {'call p99 round/idle µs':>22}")
    print(header)
    print("-" * len(header))
    verdicts = []
    for backend, postgres in backends:
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            with scratch_database(postgres, "bench") as url:
                fill(url, docs)
                result = anyio.run(measure, url, args, concurrency, backend="asyncio")
            round_ok = result["round"] <= target and not result["unchecked"]
            ratio = result["round_latency"][1] / result["idle_latency"][1]
            latency_ok = ratio <= 1.5
            verdicts.append((backend, concurrency, round_ok, latency_ok, result["resyncs"]))
            (r50, r99, rmax), (i50, i99, imax) = result["round_latency"], result["idle_latency"]
            print(f"{backend:<10} {concurrency:>5} {result['answered']:>10.2f} {result['round']:>8.2f} "
                  f"{'yes' if round_ok else 'NO':>4} {result['cpu']:>6.1f} | {r50:>20,.0f} {r99:>9,.0f} {rmax:>9,.0f} | "
                  f"{i50:>8,.0f} {i99:>7,.0f} {imax:>7,.0f} | {ratio:>8.1f}x {'yes' if latency_ok else 'NO':>4} | "
                  f"{result['round_call'][1]:>10,.0f} / {result['idle_call'][1]:<9,.0f}", flush=True)
    print(f"\nLog records from the daemon, all rows: {dict(counting.counts)}")
    print(f"Targets: one full round within timeout + 0.5 s = {target:g} s; selection p99 during the round within 1.5x "
          "of the idle daemon's.")
    for backend, concurrency, round_ok, latency_ok, resyncs in verdicts:
        print(f"  {backend}, concurrency {concurrency}: round {'met' if round_ok else 'NOT met'}, "
              f"selection p99 {'met' if latency_ok else 'NOT met'}"
              + (f" ({resyncs} full re-reads of provider_configs during the idle window)" if resyncs else ""))

if __name__ == "__main__":
    main()
