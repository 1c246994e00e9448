"""Three replicas look like one daemon to Prometheus.

Three ``hodei serve`` on one PostgreSQL schema and one ``hodei serve`` alone on SQLite, with the same
providers, each scraped every second by a real Prometheus of its own (the shipped alerting rules
loaded). Every expression of the Grafana dashboard, of docs/metrics.md and of the alerting rules is
read from its file (a new panel is covered without touching this test) and evaluated through
Prometheus's HTTP API: no expression fails, and each gives the same answer for one daemon and for
three (the series without their ``instance`` label, and their values where they are state rather
than a rate or a time), with a worker running on each side. Then the replica that owns the UNHEALTHY
provider is killed: another takes the provider over, the pending alert keeps its start, and the
answers still match one daemon's.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from hodei import database
from hodei.api.v1 import workers_pb2 as wpb
from hodei.api.v1 import workers_pb2_grpc as wpb_grpc
from hodei.observability.metrics import SPECS
from hodei.plugins import make_plugin_manager
from hodei.store import Store
from hodei.testing import backend_unavailable
from hodei.testing.serve import Served, start

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "contrib" / "grafana" / "hodei-dashboard.json"
DOCS = ROOT / "docs" / "metrics.md"
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"

INTERVAL = 1.0  # health interval (and lease) of every daemon; Prometheus scrapes and evaluates every second
PROVIDERS = [
    {"name": "alpha", "provider_type": "static", "max_workers": 4},
    {"name": "beta", "provider_type": "static", "max_workers": 7, "config": {"health": "Degraded"}},
    {"name": "gamma", "provider_type": "static", "max_workers": 2,
     "config": {"health": "Unhealthy", "health_reason": "down for the test"}},
    {"name": "delta", "provider_type": "static", "max_workers": 3, "status": "MAINTENANCE"},
    {"name": "epsilon", "provider_type": "static", "status": "DISABLED"},
    {"name": "zeta", "provider_type": "static", "max_workers": 5},
]
# Grafana's variables, as a dashboard showing every provider sets them.
GRAFANA = {"$__rate_interval": "10s", "$provider_type": ".*", "$provider": ".*"}
# What depends on when it is asked (rates, durations, clocks): compared by its series, not its values.
TIMED = re.compile(r"\b(rate|increase|changes|histogram_quantile|time)\(")
# A count that grows with every check while a provider fails: compared as failing or not.
GROWING = re.compile(r"\bhodei_provider_consecutive_failures\b")


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    found += [annotation["expr"] for annotation in dashboard["annotations"]["list"] if "expr" in annotation]
    for variable in dashboard["templating"]["list"]:
        if "definition" in variable:  # label_values(SELECTOR, LABEL): the values of LABEL, as PromQL
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
            assert match, variable["definition"]
            found.append(f"group by ({match[2]}) ({match[1]})")
    for name, value in sorted(GRAFANA.items(), key=lambda item: -len(item[0])):
        found = [expr.replace(name, value) for expr in found]
    return found


def docs_expressions() -> list[str]:
    blocks = re.findall(r"```promql\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    return [line.split(" #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def alert_expressions() -> list[str]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


# -- the daemons ---------------------------------------------------------------------------------------------


def write_config(folder: Path, name: str, url: str) -> Path:
    """No reconcile round after the first: the workers are started and released through the daemon
    that owns their provider, whose own count is exact at once; a round would only race the release."""
    path = folder / f"{name}.toml"
    path.write_text(f"""
[database]
url = "{url}"
[api]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[health]
interval_seconds = {INTERVAL}
timeout_seconds = 1.0
unhealthy_after = 2
healthy_after = 2
max_backoff_seconds = {INTERVAL}
[daemon]
database_timeout_seconds = 3.0
shutdown_grace_seconds = 2.0
[workers]
reconcile_seconds = 3600
""")
    return path


def add_providers(url: str) -> None:
    engine = database.create_engine(url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.apply(PROVIDERS)
    store.close()


def target(daemon: Served) -> str:
    assert daemon.metrics_url is not None
    return urllib.parse.urlsplit(daemon.metrics_url).netloc


def provision(daemon: Served) -> Any:
    """A worker for a job that needs nothing, through the daemon's API."""
    with grpc.insecure_channel(str(daemon.address)) as channel:
        return wpb_grpc.WorkerServiceStub(channel).ProvisionWorker(wpb.ProvisionWorkerRequest(), timeout=30)


def release(daemon: Served, worker_id: str) -> None:
    with grpc.insecure_channel(str(daemon.address)) as channel:
        wpb_grpc.WorkerServiceStub(channel).ReleaseWorker(wpb.ReleaseWorkerRequest(worker_id=worker_id), timeout=30)


# -- Prometheus ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Prometheus:
    """A Prometheus scraping ``targets`` every second as job ``hodei``, with the shipped rules."""

    def __init__(self, binary: str, folder: Path, targets: list[str]):
        folder.mkdir()
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "hodei", "static_configs": [{"targets": targets}]}],
        }))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = (folder / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.log_path = folder / "prometheus.log"

    def wait_ready(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Prometheus did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                document = json.load(answer)
        except urllib.error.HTTPError as error:  # a bad query: Prometheus says why in the body
            document = json.load(error)
        assert document["status"] == "success", f"{params}: {document.get('error')}"
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/alerts")["alerts"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()


def answer(prometheus: Prometheus, expr: str) -> Counter[tuple[Any, ...]]:
    """The series an expression gives, without ``instance`` (which names a daemon, not a fact), with
    their values unless the expression is TIMED (GROWING: whether above 0). A TIMED series at 0 or NaN
    (no event in its window: a rate of 0, a ratio or a quantile of nothing) counts as none: an event
    counter's series exist where the events happened, so which of them show at 0 depends on which
    replica did what, and on which of them is still running."""
    found: Counter[tuple[Any, ...]] = Counter()
    timed, growing = TIMED.search(expr) is not None, GROWING.search(expr) is not None
    for series in prometheus.query(expr):
        labels = tuple(sorted((k, v) for k, v in series["metric"].items() if k != "instance"))
        value = float(series["value"][1])
        if timed and (value == 0 or math.isnan(value)):
            continue
        kept: Any = None if timed else value > 0 if growing else "NaN" if math.isnan(value) else value
        found[(labels, kept)] += 1
    return found


def differences(one: Prometheus, three: Prometheus, exprs: list[str]) -> dict[str, tuple[Any, Any]]:
    found = {}
    for expr in exprs:
        alone, replicas = answer(one, expr), answer(three, expr)
        if alone != replicas:
            found[expr] = (sorted(alone.items()), sorted(replicas.items()))
    return found


def alert_labels(prometheus: Prometheus) -> Counter[tuple[Any, ...]]:
    return Counter((alert["state"], tuple(sorted((k, v) for k, v in alert["labels"].items() if k != "instance")))
                   for alert in prometheus.alerts())


def eventually_the_same(one: Prometheus, three: Prometheus, exprs: list[str], seconds: float, *,
                        alerts: bool) -> None:
    """Until every expression (and the alerts, if ``alerts``) gives the same answer on both."""
    started = time.monotonic()
    deadline = started + seconds
    while True:
        found = differences(one, three, exprs)
        if alerts and alert_labels(one) != alert_labels(three):
            found["ALERTS"] = (sorted(alert_labels(one).items()), sorted(alert_labels(three).items()))
        if not found:
            print(f"the same answers after {time.monotonic() - started:.1f} s")
            return
        if time.monotonic() > deadline:
            text = "\n".join(f"{expr}\n  one daemon:     {a}\n  three replicas: {b}" for expr, (a, b) in found.items())
            raise AssertionError(f"{len(found)} answers differ between one daemon and three replicas:\n{text}")
        time.sleep(0.5)


def wait_for(prometheus: Prometheus, expr: str, seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while not (found := prometheus.query(expr)):
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer within {seconds:g} s: {expr}")
        time.sleep(0.2)
    return found


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        backend_unavailable("prometheus not installed (Debian package prometheus)")
    return found


@pytest.fixture
def fleets(hodei_postgres_url: str, tmp_path: Path) -> Iterator[tuple[Served, list[Served]]]:
    """One daemon alone on SQLite, and three replicas on PostgreSQL, with the same providers."""
    sqlite_url = f"sqlite:///{tmp_path / 'alone.db'}"
    add_providers(sqlite_url)
    add_providers(hodei_postgres_url)
    alone = start(write_config(tmp_path, "alone", sqlite_url))
    replicas = [start(write_config(tmp_path, f"replica{i}", hodei_postgres_url)) for i in range(3)]
    try:
        for daemon in (alone, *replicas):
            daemon.wait_ready(metrics=True)
        yield alone, replicas
    finally:
        for daemon in (alone, *replicas):
            daemon.stop(10)


def test_three_replicas_give_the_dashboard_docs_and_alerts_the_answers_of_one_daemon(
        prometheus_binary: str, fleets: tuple[Served, list[Served]], tmp_path: Path) -> None:
    alone, replicas = fleets
    exprs = dashboard_expressions() + docs_expressions()
    rules = alert_expressions()
    assert len(exprs) >= 30 and len(rules) >= 10
    one = Prometheus(prometheus_binary, tmp_path / "one", [target(alone)])
    three = Prometheus(prometheus_binary, tmp_path / "three", [target(d) for d in replicas])
    try:
        one.wait_ready()
        three.wait_ready()
        for prometheus, count in ((one, 1), (three, 3)):
            wait_for(prometheus, f'count(up{{job="hodei"}} == 1) == {count}', 30)
        # Settled: the replicas share the providers, and gamma's checks have made it UNHEALTHY on both.
        wait_for(three, f'sum(hodei_daemon_providers_owned) == {len(PROVIDERS)} '
                        f'and count(hodei_daemons_live == 3) == 3', 30)
        unhealthy = 'hodei_provider_status{provider="gamma",status="UNHEALTHY"} == 1'
        for prometheus in (one, three):
            wait_for(prometheus, unhealthy, 30)
        # A worker on each side, started by the daemon that checks its provider (a static provider's
        # backend is the memory of the process that started the worker; a real backend is shared).
        alone_worker = provision(alone)
        chosen = three.query(f'hodei_provider_max_workers{{provider="{alone_worker.provider}"}}')
        starter = next(d for d in replicas if target(d) == chosen[0]["metric"]["instance"])
        replica_worker = provision(starter)
        assert replica_worker.provider == alone_worker.provider and replica_worker.state == "RUNNING"
        # Rates have their two samples (the first scrapes are over); then the answers, and the pending alert.
        for prometheus in (one, three):
            wait_for(prometheus, "sum(rate(hodei_health_checks_total[10s])) > 0", 30)
            wait_for(prometheus, 'sum(hodei_provider_workers{state="active"}) == 1', 30)
        eventually_the_same(one, three, exprs + rules, 30, alerts=True)

        # Each provider's state is exported once, by one replica, not by each.
        assert three.query("count(hodei_provider_max_workers)")[0]["value"][1] == str(len(PROVIDERS))
        for spec in SPECS:
            if spec.type == "gauge" and "provider" in spec.labels:
                assert three.query(f"count without (instance) ({spec.name}) > 1") == [], spec.name
        # Not vacuous: the answers are the fleet's, and the UNHEALTHY alert is pending once.
        assert answer(three, "count(max by (provider) (hodei_provider_max_workers))") == Counter(
            {((), float(len(PROVIDERS))): 1})
        pending = [a for a in three.alerts() if a["labels"]["alertname"] == "HodeiProviderUnhealthy"]
        assert [a["labels"]["provider"] for a in pending] == ["gamma"], pending
        assert "instance" not in pending[0]["labels"]
        empty = [expr for expr in exprs if not TIMED.search(expr) and not three.query(expr)]
        assert not empty, f"state that the three replicas do not show: {empty}"
        release(alone, alone_worker.id)
        release(starter, replica_worker.id)

        # The owner of gamma is killed: another replica takes gamma over; the alert keeps its start.
        owner = three.query(unhealthy)
        assert len(owner) == 1, owner  # one replica exports gamma's state
        killed = next(d for d in replicas if target(d) == owner[0]["metric"]["instance"])
        killed.process.kill()
        wait_for(three, f'hodei_provider_status{{provider="gamma",status="UNHEALTHY",instance!="{target(killed)}"}} == 1',
                 30)
        time.sleep(2 * INTERVAL)  # a few evaluations of the rules after the hand-over
        after = [a for a in three.alerts() if a["labels"]["alertname"] == "HodeiProviderUnhealthy"]
        assert [(a["labels"]["provider"], a["activeAt"]) for a in after] == [("gamma", pending[0]["activeAt"])]
        # Two replicas left, every provider's state exported once again: the answers are one daemon's.
        eventually_the_same(one, three, exprs, 30, alerts=False)
    finally:
        one.stop()
        three.stop()
