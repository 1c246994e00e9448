"""Replicas: three ``hodei serve`` processes on one PostgreSQL divide 300 providers among themselves.

Checks are counted from each daemon's own metrics (``hodei_health_checks_total``), so what is
measured is what the backends would see: how often each provider is checked, fleet-wide. The health
interval is 2 s (the lease is one interval); each scenario runs a few intervals.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from hodei import database
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.plugins import make_plugin_manager
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.testing.daemon import run_sql
from hodei.testing.proxy import Proxy
from hodei.testing.serve import Served, serve, start
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

INTERVAL = 2.0
PROVIDERS = 300
WINDOW = 3 * INTERVAL


def write_config(folder: Path, name: str, url: str) -> Path:
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
unhealthy_after = 3
healthy_after = 2
max_backoff_seconds = {INTERVAL}
[daemon]
database_timeout_seconds = 3.0
shutdown_grace_seconds = 2.0
[workers]
reconcile_seconds = 30.0
""")
    return path


def scrape(daemon: Served) -> list[tuple[str, dict[str, str], float]]:
    assert daemon.metrics_url is not None
    with urllib.request.urlopen(daemon.metrics_url, timeout=5) as answer:
        text = answer.read().decode()
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def checks(daemons: list[Served]) -> Counter[str]:
    """Health checks run so far, by provider, summed over ``daemons``."""
    total: Counter[str] = Counter()
    for daemon in daemons:
        for name, labels, value in scrape(daemon):
            if name == "hodei_health_checks_total":
                total[labels["provider"]] += int(value)
    return total


def gauge(daemon: Served, metric: str) -> float:
    return next(value for name, _, value in scrape(daemon) if name == metric)


def owned(daemons: list[Served]) -> list[int]:
    return [int(gauge(d, "hodei_daemon_providers_owned")) for d in daemons]


def wait_until(predicate, seconds: float, what: str) -> float:
    """Poll until true; the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds:.1f} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def settled(daemons: list[Served]) -> bool:
    shares = owned(daemons)
    return (all(shares) and sum(shares) == PROVIDERS
            and all(gauge(d, "hodei_daemons_live") == len(daemons) for d in daemons))


def measure(daemons: list[Served], seconds: float = WINDOW) -> tuple[float, Counter[str], float]:
    """Checks per provider per interval fleet-wide over about ``seconds``, the checks of each provider,
    and the longest window. Each daemon's count is divided by its own window, from the middle of one
    scrape to the middle of the next (a scrape on a loaded machine takes a while)."""
    def timed(daemon: Served) -> tuple[float, Counter[str]]:
        started = time.monotonic()
        counted = checks([daemon])
        return (started + time.monotonic()) / 2, counted

    before = [timed(d) for d in daemons]
    time.sleep(seconds)
    after = [timed(d) for d in daemons]
    each: Counter[str] = Counter()
    rate, longest = 0.0, 0.0
    for (t0, c0), (t1, c1) in zip(before, after, strict=True):
        counted = {name: c1[name] - c0[name] for name in c1}
        each.update(counted)
        rate += sum(counted.values()) / (PROVIDERS * (t1 - t0) / INTERVAL)
        longest = max(longest, t1 - t0)
    return rate, each, longest


def assert_checked_once_per_interval(daemons: list[Served]) -> None:
    rate, each, window = measure(daemons)
    assert 0.8 <= rate <= 1.3, f"{rate:.2f} checks per provider per interval fleet-wide"
    # Once per interval, give or take the check at either end of the window: never twice as often.
    most = window // INTERVAL + 1
    assert max(each.values()) <= most, f"checked more than {most:g} times in {window:.1f} s: {each.most_common(3)}"
    unchecked = [f"p-{i:03d}" for i in range(PROVIDERS) if each[f"p-{i:03d}"] == 0]
    assert not unchecked, f"{len(unchecked)} providers not checked in {window:.1f} s, e.g. {unchecked[:3]}"


def first_checks_after(url: str, names: Iterable[str], since: datetime, seconds: float) -> dict[str, float]:
    """Seconds from ``since`` to each provider's first check after it, as recorded in the database
    (the check's own start time, whichever daemon ran it); polled for up to ``seconds``."""
    wanted, found = set(names), {}
    engine = sa.create_engine(url)
    deadline = time.monotonic() + seconds
    try:
        while wanted - set(found) and time.monotonic() < deadline:
            with engine.connect() as connection:
                rows = connection.execute(sa.text(
                    "SELECT c.name, s.checked_at FROM provider_state s JOIN provider_configs c ON c.id = s.provider_id "
                    "WHERE c.name = ANY(:names) AND s.checked_at > :since"),
                    {"names": sorted(wanted - set(found)), "since": since}).all()
            for name, checked_at in rows:
                found[name] = (checked_at - since).total_seconds()
            time.sleep(0.05)
    finally:
        engine.dispose()
    missing = sorted(wanted - set(found))
    assert not missing, f"{len(missing)} providers not checked within {seconds:g} s, e.g. {missing[:3]}"
    return found


def logged_at(daemon: Served, fragment: str) -> list[datetime]:
    """When ``daemon`` logged a message containing ``fragment`` (its JSON log lines carry the time)."""
    times = []
    for line in daemon.stderr:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if fragment in entry.get("message", ""):
            times.append(datetime.fromisoformat(entry["time"].replace("Z", "+00:00")))
    return times


def mine(daemon: Served) -> set[str]:
    """The providers ``daemon`` checks: those its own counter moves for over one interval and a half."""
    before = checks([daemon])
    time.sleep(INTERVAL * 1.5)
    after = checks([daemon])
    return {name for name in after if after[name] > before[name]}


@pytest.fixture
def fleet(hodei_postgres_url: str) -> Iterator[str]:
    engine = database.create_engine(hodei_postgres_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.apply([{"name": f"p-{i:03d}", "provider_type": "static"} for i in range(PROVIDERS)])
    store.close()
    yield hodei_postgres_url


@pytest.fixture
def replicas(fleet: str, tmp_path: Path) -> Iterator[list[Served]]:
    daemons = [start(write_config(tmp_path, f"d{i}", fleet)) for i in range(3)]
    try:
        for daemon in daemons:
            daemon.wait_ready(metrics=True)
        wait_until(lambda: settled(daemons), 10 * INTERVAL, "three daemons sharing the providers")
        yield daemons
    finally:
        codes = [daemon.stop(10) for daemon in daemons]
    assert all(code in (0, -signal.SIGKILL) for code in codes), codes


def test_three_replicas_check_each_provider_once_per_interval_and_hand_over_on_sigterm(replicas, fleet) -> None:
    assert_checked_once_per_interval(replicas)
    leaving, staying = replicas[0], replicas[1:]
    its = mine(leaving)
    assert its and len(its) < PROVIDERS
    stopping = datetime.now(UTC)
    assert leaving.stop() == 0
    # Each of its providers is checked an interval after its last check, by one of the others.
    late = first_checks_after(fleet, its, stopping, 3 * INTERVAL)
    assert max(late.values()) <= INTERVAL + 0.5, sorted(late.values())[-3:]
    # At once: the clean stop deletes its row, and the others hear it (NOTIFY); the lease (one interval,
    # renewed every quarter) would have taken at least three quarters of one.
    left = logged_at(leaving, "left the replicas")[-1]
    took = [min(t for t in logged_at(d, "taken") if t >= left) - left for d in staying]
    assert max(took).total_seconds() < 0.75 * INTERVAL, took
    assert sum(owned(staying)) == PROVIDERS
    assert_checked_once_per_interval(staying)


def test_a_killed_replica_loses_its_providers_within_two_intervals_and_health_is_counted_once(
        replicas, fleet) -> None:
    victim, survivors = replicas[0], replicas[1:]
    its = sorted(mine(victim))
    # Broken backends, some of them the victim's: their failures are counted across the handover.
    broken = its[:3] + sorted(set(f"p-{i:03d}" for i in range(PROVIDERS)) - set(its))[:3]
    run_sql(fleet, "UPDATE provider_configs SET config = config || '{\"health\": \"Unhealthy\", "
                   "\"health_reason\": \"disk full\"}'::jsonb WHERE name = ANY(:names)", names=broken)
    time.sleep(INTERVAL)  # a failure or so counted by the victim
    killed = datetime.now(UTC)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(5)
    late = first_checks_after(fleet, its, killed, 4 * INTERVAL)
    assert max(late.values()) <= 2 * INTERVAL, sorted(late.values())[-3:]
    assert sum(owned(survivors)) == PROVIDERS
    assert_checked_once_per_interval(survivors)

    states = ProviderStates(database.create_engine(fleet))
    wait_until(lambda: all(states.of(name).consecutive_failures >= 3 for name in broken), 4 * INTERVAL,
               "three failures of each broken provider")
    for name in broken:
        history = [(h.kind, h.old_value, h.new_value) for h in states.history(name)]
        assert history.count(("health", "Healthy", "Unhealthy")) == 1, (name, history)
        assert history.count(("status", "ACTIVE", "UNHEALTHY")) == 1, (name, history)
        assert [h.cause for h in states.history(name) if h.kind == "status"] == [
            "3 consecutive failed health checks: disk full"], name
    # Every replica's view has the health the owner found (selection leaves them out everywhere); its
    # metrics show only the providers it owns, so each is asked through the API.
    for daemon in survivors:
        with grpc.insecure_channel(str(daemon.address)) as channel:
            explain = spb_grpc.SelectionServiceStub(channel).Explain
            for name in broken:
                checks = {c.filter: c for c in explain(spb.ExplainRequest(provider=name), timeout=30).checks}
                assert not checks["health"].passed and "disk full" in checks["health"].message, (daemon.address, name)
    states.engine.dispose()


def test_a_replica_cut_from_the_database_hands_over_and_does_not_double_check_when_back(
        fleet, tmp_path: Path) -> None:
    direct = make_url(fleet)
    proxy = Proxy((direct.host or "127.0.0.1", direct.port or 5432))
    via_proxy = direct.set(port=proxy.port).render_as_string(hide_password=False)
    daemons = [start(write_config(tmp_path, "cut", via_proxy))]
    daemons += [start(write_config(tmp_path, f"d{i}", fleet)) for i in range(2)]
    cut, others = daemons[0], daemons[1:]
    try:
        for daemon in daemons:
            daemon.wait_ready(metrics=True)
        wait_until(lambda: settled(daemons), 10 * INTERVAL, "three daemons sharing the providers")
        its = mine(cut)
        cut_at = datetime.now(UTC)
        proxy.cut()
        late = first_checks_after(fleet, its, cut_at, 4 * INTERVAL)
        assert max(late.values()) <= 2 * INTERVAL, sorted(late.values())[-3:]
        wait_until(lambda: sum(owned(others)) == PROVIDERS, INTERVAL, "the others to own every provider")
        # Cut off, it stopped checking when its lease lapsed: no provider is checked by two daemons.
        stopped = checks([cut])
        time.sleep(INTERVAL)
        assert checks([cut]) == stopped
        assert owned([cut]) == [0]
        assert_checked_once_per_interval(others)

        proxy.restore()
        wait_until(lambda: settled(daemons), 10 * INTERVAL, "the cut daemon back among the replicas")
        assert_checked_once_per_interval(daemons)
    finally:
        codes = [daemon.stop(10) for daemon in daemons]
        proxy.close()
    assert codes == [0, 0, 0], codes


# -- SQLite: one daemon --------------------------------------------------------------------------


def test_a_second_daemon_on_one_sqlite_file_refuses_and_names_the_holder(tmp_path: Path) -> None:
    import subprocess

    from hodei.testing.serve import clean_environment, hodei_command

    config = tmp_path / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///hodei.db"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = ""\n[health]\ninterval_seconds = 60.0\n')
    first = start(config)
    try:
        first.wait_ready()
        second = subprocess.run([*hodei_command(), "serve"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60, env=clean_environment(HODEI_CONFIG=str(config)))
        assert second.returncode == 1, second.stderr
        assert "another hodei serve runs on SQLite database" in second.stderr
        assert f"pid {first.process.pid} on " in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        # The CLI keeps working beside the daemon, and sees it.
        cli = subprocess.run([*hodei_command(), "daemons", "-o", "json"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, env=clean_environment(HODEI_CONFIG=str(config)))
        assert cli.returncode == 0, cli.stderr
        [listed] = json.loads(cli.stdout)
        assert listed["pid"] == first.process.pid and listed["address"] == first.address
    finally:
        assert first.stop() == 0
    # Released with the process: the next daemon starts.
    with serve(config) as third:
        assert third.address
