"""What a served daemon holds per provider, and whether a large fleet's listing and health probes stay
answered: the served path, as an operator's probes and `hodei --server providers list` meet it.

Rerun: .venv/bin/python bench/fleet_memory.py [--providers 0,1000,10000,50000] [--postgres URL] [--seconds 5]

For each fleet size: a fresh database filled with that many ``static`` providers (as bench/api.py makes
them), one ``hodei serve`` on it (health interval an hour: one round at start, awaited), then:

* RSS: the daemon's resident memory once idle (VmRSS from /proc), and per provider against the empty fleet;
* list: one client reads every provider through ``ListProviders``, page after page (the CLI's path),
  the time for all of them and the largest answer;
* health: the gRPC health ``Check`` every 20 ms for --seconds while that client lists in a loop,
  p50 / max latency and how many were not answered within 1 s;
* /metrics: one scrape's size (uncompressed) and time, then 20 scrapers that never read held open for
  20 s (past the endpoint's write timeout, counted from when the metrics were written): the daemon's
  largest RSS meanwhile, health p50 meanwhile, and how many of the 20 the daemon had let go at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import documents  # bench/ is not a package: its folder is on the path above


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def list_everything(address: str) -> tuple[int, float, int]:
    import grpc
    from hodei.api.v1 import providers_pb2 as pb
    from hodei.api.v1 import providers_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel:
        api = pb_grpc.ProviderServiceStub(channel)
        request, count, largest, started = pb.ListProvidersRequest(page_size=1000), 0, 0, time.perf_counter()
        while True:
            answer = api.ListProviders(request, timeout=60)
            count += len(answer.providers)
            largest = max(largest, answer.ByteSize())
            if not answer.next_page_token:
                return count, time.perf_counter() - started, largest
            request.page_token = answer.next_page_token


def health_while_listing(address: str, seconds: float) -> tuple[list[float], int]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stop = threading.Event()

    def lister() -> None:
        while not stop.is_set():
            list_everything(address)

    thread = threading.Thread(target=lister, daemon=True)
    thread.start()
    latencies, missed = [], 0
    with grpc.insecure_channel(address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            started = time.perf_counter()
            try:
                check(health_pb2.HealthCheckRequest(), timeout=1.0)
                latencies.append(time.perf_counter() - started)
            except grpc.RpcError:
                missed += 1
            time.sleep(0.02)
    stop.set()
    thread.join(120)
    return latencies, missed


def start_daemon(url: str, folder: Path) -> Any:
    from hodei.testing.serve import start

    config = folder / "hodei.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n'
                      "[health]\ninterval_seconds = 3600\ntimeout_seconds = 5\n"
                      "[workers]\nreconcile_seconds = 3600\n[plugins]\nenable = [\"static\"]\n")
    daemon = start(config)
    daemon.wait_ready(300, metrics=True)
    return daemon


def scrape(url: str) -> tuple[int, float]:
    import urllib.request

    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        return len(answer.read()), time.perf_counter() - started


def stalled_scrapers(daemon: Any, count: int = 20, seconds: float = 20.0) -> tuple[int, float, int]:
    """``count`` scrapers that send a request and never read: the daemon's peak RSS, health p50 meanwhile,
    and how many the daemon closed by the end."""
    import socket
    from urllib.parse import urlparse

    target = urlparse(daemon.metrics_url)
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((target.hostname, target.port))
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        sockets.append(sock)
    peak, ends, latencies = 0, time.monotonic() + seconds, []
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(daemon.address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        while time.monotonic() < ends:
            peak = max(peak, rss_bytes(daemon.process.pid))
            started = time.perf_counter()
            try:
                check(health_pb2.HealthCheckRequest(), timeout=1.0)
                latencies.append(time.perf_counter() - started)
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    closed = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            while sock.recv(1 << 20):
                pass
            closed += 1  # end of stream: the daemon let it go
        except BlockingIOError:
            pass  # still open, waiting for its reader
        except OSError:
            closed += 1
        sock.close()
    return peak, statistics.median(latencies) * 1e3 if latencies else float("nan"), closed


def apply_with_cli(url: str, docs: list[dict[str, Any]], folder: Path, chunk: int = 20_000) -> float:
    """``hodei providers apply -f`` as an operator runs it, on the database (files of ``chunk`` providers:
    each under the 16 MiB a document may hold). The seconds it took."""
    import json
    import subprocess

    from hodei.testing.serve import clean_environment, hodei_command

    config = folder / "cli.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[plugins]\nenable = ["static"]\n')
    environment = clean_environment(HODEI_CONFIG=str(config))
    started = time.perf_counter()
    subprocess.run([*hodei_command(), "db", "upgrade"], env=environment, check=True, capture_output=True)
    for first in range(0, len(docs), chunk):
        path = folder / f"providers-{first}.json"
        path.write_text(json.dumps(docs[first:first + chunk]))
        subprocess.run([*hodei_command(), "providers", "apply", "-f", str(path)], env=environment,
                       check=True, capture_output=True)
        path.unlink()
    return time.perf_counter() - started


def probes_from_ready(daemon: Any, seconds: float, deadline: float = 10.0) -> tuple[list[float], int, int, int]:
    """What a supervisor's probe meets from the moment the daemon is ready: a gRPC health ``Check`` every
    second (each in its own thread, as a kubelet sends them, whether or not the last one came back) with a
    ``deadline``; the answered latencies, how many were not answered in time, how many were sent, and the
    daemon's largest RSS meanwhile."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    latencies: list[float] = []
    missed = [0]
    lock = threading.Lock()

    def probe(channel: Any) -> None:
        started = time.perf_counter()
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=deadline)
            with lock:
                latencies.append(time.perf_counter() - started)
        except grpc.RpcError:
            with lock:
                missed[0] += 1

    threads, peak = [], 0
    with grpc.insecure_channel(daemon.address) as channel:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            thread = threading.Thread(target=probe, args=(channel,), daemon=True)
            thread.start()
            threads.append(thread)
            peak = max(peak, rss_bytes(daemon.process.pid))
            time.sleep(1.0)
        for thread in threads:
            thread.join(deadline + 5)
    return latencies, missed[0], len(threads), peak


def list_with_cli(address: str) -> tuple[int, float]:
    """``hodei --server ADDRESS providers list -o json``, as an operator runs it: providers listed, seconds."""
    import json
    import subprocess

    from hodei.testing.serve import clean_environment, hodei_command

    started = time.perf_counter()
    listed = subprocess.run([*hodei_command(), "--server", address, "providers", "list", "-o", "json"],
                            env=clean_environment(), check=True, capture_output=True, text=True, timeout=600)
    return len(json.loads(listed.stdout)), time.perf_counter() - started


def cold_start(args: argparse.Namespace) -> None:
    """``--cli``: the fleet applied with the CLI, the daemon's first minutes probed, then listed with the CLI."""
    from hodei.testing.databases import scratch_database

    print(f"rerun: .venv/bin/python bench/fleet_memory.py --cli --providers {args.providers}"
          f"{' --postgres URL' if args.postgres else ''} --probe-seconds {args.probe_seconds:g}")
    header = (f"{'providers':>9} {'apply s':>8} | {'ready s':>7} {'probes':>6} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'missed 10s':>10} {'peak MB':>8} | {'settled MB':>10} {'KB/provider':>11} | {'cli list s':>10}")
    print(header)
    print("-" * len(header))
    baseline = None
    for size in [int(s) for s in args.providers.split(",")]:
        with scratch_database(args.postgres, "bench") as url, tempfile.TemporaryDirectory() as folder:
            applied = apply_with_cli(url, documents(size, random.Random(args.seed)), Path(folder))
            started = time.perf_counter()
            daemon = start_daemon(url, Path(folder))
            try:
                ready = time.perf_counter() - started
                latencies, missed, sent, peak = probes_from_ready(daemon, args.probe_seconds)
                rss = rss_bytes(daemon.process.pid)
                baseline = rss if baseline is None and size == 0 else baseline
                per = (rss - baseline) / size / 1024 if baseline is not None and size else float("nan")
                count, took = list_with_cli(daemon.address or "")
                assert count == size, (count, size)
            finally:
                daemon.stop(60)
        ordered = sorted(latencies) or [float("nan")]
        p50, p99 = ordered[len(ordered) // 2] * 1e3, ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] * 1e3
        print(f"{size:>9,} {applied:>8.1f} | {ready:>7.1f} {sent:>6} {p50:>8.1f} {p99:>8.1f} {missed:>10} "
              f"{peak / 2**20:>8.0f} | {rss / 2**20:>10.0f} {per:>11.1f} | {took:>10.1f}", flush=True)
    print("\nTargets: every probe answered within 10 s from ready (p99 well under a second); the settled RSS "
          "a few KB per provider; the CLI lists every provider without a timeout.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default="0,1000,10000,50000")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database (a fresh schema); SQLite otherwise")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cli", action="store_true",
                        help="apply with the CLI, probe the first --probe-seconds from ready, list with the CLI")
    parser.add_argument("--probe-seconds", type=float, default=90.0)
    args = parser.parse_args()
    if args.cli:
        cold_start(args)
        return

    from hodei.testing.databases import fill, scratch_database

    print(f"bench/fleet_memory: {'PostgreSQL' if args.postgres else 'SQLite'}; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    print(f"rerun: .venv/bin/python bench/fleet_memory.py --providers {args.providers}"
          f"{' --postgres URL' if args.postgres else ''} --seconds {args.seconds:g}")
    header = (f"{'providers':>9} {'RSS MB':>8} {'KB/provider':>11} | {'list all s':>10} {'largest B':>10} | "
              f"{'health p50 ms':>13} {'max ms':>8} {'missed':>6} | {'/metrics B':>10} {'scrape s':>8} "
              f"{'20 stalled: peak MB':>19} {'health p50':>10} {'let go':>6}")
    print(header)
    print("-" * len(header))
    baseline = None
    for size in [int(s) for s in args.providers.split(",")]:
        with scratch_database(args.postgres, "bench") as url, tempfile.TemporaryDirectory() as folder:
            fill(url, documents(size, random.Random(args.seed)))
            daemon = start_daemon(url, Path(folder))
            try:
                assert daemon.address is not None
                time.sleep(2 + size / 20_000)  # the first health round and a reload settle
                rss = rss_bytes(daemon.process.pid)
                baseline = rss if baseline is None and size == 0 else baseline
                per = (rss - baseline) / size / 1024 if baseline is not None and size else float("nan")
                count, took, largest = list_everything(daemon.address)
                assert count == size, (count, size)
                latencies, missed = health_while_listing(daemon.address, args.seconds)
                body, scraped = scrape(daemon.metrics_url)
                peak, stalled_p50, let_go = stalled_scrapers(daemon)
            finally:
                daemon.stop()
        p50 = statistics.median(latencies) * 1e3 if latencies else float("nan")
        most = max(latencies) * 1e3 if latencies else float("nan")
        print(f"{size:>9,} {rss / 2**20:>8.0f} {per:>11.1f} | {took:>10.2f} {largest:>10,} | "
              f"{p50:>13.1f} {most:>8.1f} {missed:>6} | {body:>10,} {scraped:>8.2f} {peak / 2**20:>19.0f} "
              f"{stalled_p50:>10.1f} {let_go:>6}", flush=True)
    print("\nTargets: every answer at most one page (1,000 providers); health p50 under 10 ms and none missed "
          "while a client lists; memory per provider bounded (a few KB: the fleet's rows, index and state); "
          "stalled scrapers all let go, RSS not growing with them.")


if __name__ == "__main__":
    main()
