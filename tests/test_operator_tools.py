"""What an operator's tools meet: grpcurl-style reflection with a token set, the gRPC panels, the process
metrics, the alerting rules, the systemd unit and its notify protocol, the start-up log."""

from __future__ import annotations

import asyncio
import queue
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hodei.daemon.systemd import Notifier
from hodei.observability.grpc import _code_of
from hodei.testing import backend_unavailable
from hodei.testing.serve import Served, clean_environment, hodei_command, serve

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-operator-token"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real `hodei serve` with a bearer token, its API and metrics on free loopback ports."""
    folder = tmp_path_factory.mktemp("operator")
    (folder / "api-token").write_text(TOKEN + "\n", encoding="utf-8")
    config = folder / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///hodei.db"\n[api]\nlisten = "127.0.0.1:0"\ntoken_file = "api-token"\n'
                      '[metrics]\nlisten = "127.0.0.1:0"\n', encoding="utf-8")
    subprocess.run([*hodei_command(), "--config", str(config), "db", "upgrade"], check=True, capture_output=True,
                   env=clean_environment(), timeout=60)
    with serve(config, metrics=True) as served:
        yield served


def scrape(served: Served) -> str:
    assert served.metrics_url is not None
    with urllib.request.urlopen(served.metrics_url, timeout=10) as response:
        return str(response.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a scrape (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] != name:
            continue
        found = ",".join(sorted(re.findall(r'[a-z_]+="[^"]*"', series)))
        if found == wanted:
            return float(value)
    return 0.0


# -- reflection and health without a token; everything else with it ---------------------------------------


def test_reflection_and_health_answer_without_the_token_and_nothing_else_does(daemon: Served) -> None:
    assert daemon.address is not None
    with grpc.insecure_channel(daemon.address) as channel:
        # A real reflection client (what grpcurl does before `grpcurl ... grpc.health.v1.Health/Check`).
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"hodei.api.v1.ProviderService", "grpc.health.v1.Health",
                "grpc.reflection.v1alpha.ServerReflection"} <= services
        described = database.FindFileContainingSymbol("hodei.api.v1.ProviderService")
        assert described.package == "hodei.api.v1"
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary("/hodei.api.v1.ProviderService/ListProviders")(b"", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        allowed = channel.unary_unary("/hodei.api.v1.ProviderService/ListProviders")(
            b"", metadata=[("authorization", f"Bearer {TOKEN}")], timeout=5)
        assert allowed == b""  # an empty list


def test_reflection_is_labelled_as_itself_and_a_cancelled_stream_as_cancelled(daemon: Served) -> None:
    method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

    def counted(text: str, code: str) -> float:
        return sample(text, "hodei_grpc_requests_total", method=method, code=code)

    def calls(text: str) -> float:
        return sum(counted(text, code) for code in ("OK", "CANCELLED", "UNKNOWN"))

    # Streams of earlier tests may still be closing: start from a count that holds still for a second.
    before, settled = scrape(daemon), time.monotonic()
    while time.monotonic() - settled < 1.0:
        time.sleep(0.2)
        now = scrape(daemon)
        if calls(now) != calls(before):
            before, settled = now, time.monotonic()
    assert daemon.address is not None
    requests: queue.Queue[reflection_pb2.ServerReflectionRequest | None] = queue.Queue()
    requests.put(reflection_pb2.ServerReflectionRequest(list_services=""))
    try:
        with grpc.insecure_channel(daemon.address) as channel:
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter(requests.get, None))
            assert next(call).list_services_response.service
            # grpcurl cancels its reflection stream once it has what it needs (no half-close before it).
            call.cancel()
            deadline = time.monotonic() + 30
            after = scrape(daemon)
            while calls(after) == calls(before) and time.monotonic() < deadline:
                time.sleep(0.1)
                after = scrape(daemon)
    finally:
        requests.put(None)  # lets the client's request thread end
    # Counted once, under its own name, as the client's doing: CANCELLED, or OK when the server's handler
    # saw the request stream end before the cancellation reached it. Never UNKNOWN (a server fault).
    assert calls(after) == calls(before) + 1
    assert counted(after, "UNKNOWN") == 0
    assert sample(after, "hodei_grpc_request_duration_seconds_count", method=method) > 0
    assert 'method="unknown"' not in after
    assert "Failed to detach context" not in daemon.log()


@pytest.mark.parametrize("ending", [GeneratorExit(), asyncio.CancelledError()], ids=["closed-at-yield", "cancelled"])
def test_a_stream_ended_by_its_client_is_cancelled_not_unknown(ending: BaseException) -> None:
    """A stream closed at a ``yield`` (GeneratorExit, what a cancelled reflection stream got) or cancelled while
    it waits is the client's doing; any other exception is a server fault."""

    class Context:
        def code(self) -> None:
            return None

        def cancelled(self) -> bool:
            return False

    assert _code_of(Context(), ending) is grpc.StatusCode.CANCELLED
    assert _code_of(Context(), RuntimeError("bug")) is grpc.StatusCode.UNKNOWN
    assert _code_of(Context(), None) is grpc.StatusCode.OK


# -- /metrics: the process collectors, and promtool's view of the exposition ----------------------------


def test_metrics_carry_the_process_and_python_collectors(daemon: Served) -> None:
    text = scrape(daemon)
    resident = sample(text, "process_resident_memory_bytes")
    assert resident > 10 * 2**20  # a Python daemon with gRPC loaded holds more than 10 MiB
    assert sample(text, "process_start_time_seconds") > 1.6e9
    assert sample(text, "process_open_fds") > 0
    assert "python_info{" in text
    assert sample(text, "python_gc_collections_total", generation="0") >= 0
    assert "python_gc_objects_collected_total" in text


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        backend_unavailable("promtool not installed (Debian package prometheus)")
    return found


def test_promtool_finds_nothing_wrong_with_a_real_scrape(daemon: Served) -> None:
    tool = promtool()
    done = subprocess.run([tool, "check", "metrics"], input=scrape(daemon), capture_output=True, text=True,
                          timeout=60)
    # promtool prints lint findings (a help text missing, a counter without _total) and exits 1 on them.
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", done.stdout + done.stderr


# -- the alerting rules ----------------------------------------------------------------------------------------

ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"


def documented_metrics() -> set[str]:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    # The process collectors are named in prose, in their own section.
    names = set(re.findall(r"`((?:process|python)_[a-z_]+)", text.split("### The process")[1].split("###")[0]))
    for line in text.splitlines():
        if match := re.match(r"^\| `([a-z_]+)` \| (gauge|counter|histogram) \|", line):
            names.add(match[1])
            if match[2] == "histogram":
                names |= {match[1] + suffix for suffix in ("_bucket", "_sum", "_count")}
    return names


def test_the_alerting_rules_pass_promtool() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_alerting_rules_fire_on_the_series_they_are_meant_for() -> None:
    """promtool's rule unit tests (alerts_test.yml): a lost database, an unhealthy provider, nothing fitting."""
    done = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"], cwd=ALERTS.parent, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_alerting_rules_use_only_documented_metrics_and_cover_what_operators_page_on() -> None:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"HodeiDown", "HodeiDatabaseUnavailable", "HodeiProviderUnhealthy", "HodeiNothingFits",
            "HodeiProvisioningFailures", "HodeiRestarting", "HodeiMemoryHigh"} <= names
    known = documented_metrics() | {"up"}
    for rule in rules:
        used = set(re.findall(r"\b(hodei_[a-z_]+|process_[a-z_]+|python_[a-z_]+|up)\b", rule["expr"]))
        assert used, rule["alert"]
        assert used <= known, (rule["alert"], used - known)
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# -- the systemd unit --------------------------------------------------------------------------------------------

UNIT = ROOT / "contrib" / "systemd" / "hodei.service"
HARDENING = {
    "SystemCallFilter": ["@system-service", "~@privileged @resources"],
    "ProtectProc": ["invisible"], "ProcSubset": ["pid"], "RemoveIPC": ["yes"], "PrivateMounts": ["yes"],
    "DevicePolicy": ["closed"],
}


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key}", []).append(value)
    return settings


def test_the_unit_carries_the_hardening_a_security_review_asks_for() -> None:
    settings = unit_settings()
    for key, values in HARDENING.items():
        assert settings.get(f"Service.{key}") == values, key
    # What a Python gRPC daemon on Docker's socket, PostgreSQL and the network still needs.
    assert settings["Service.RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "Service.MemoryDenyWriteExecute" not in settings  # cffi and some wheels map executable memory


def test_systemd_analyze_verifies_the_unit_and_finds_the_settings(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        backend_unavailable("systemd-analyze not installed (Debian package systemd)")
    unit = tmp_path / "hodei.service"
    # verify needs ExecStart's binary to exist: point it at one that does.
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/hodei/bin/hodei", "/bin/true"), encoding="utf-8")
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (verify.stdout + verify.stderr).splitlines()
                if "hodei.service" in line and ("Unknown" in line or "Failed" in line or "Invalid" in line)]
    assert problems == [], verify.stdout + verify.stderr
    security = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)],
                              capture_output=True, text=True, timeout=60)
    if "--offline" in security.stderr and "unrecognized" in security.stderr:
        pytest.skip("this systemd-analyze has no --offline")
    report = security.stdout
    flagged = [line for line in report.splitlines() if line.lstrip().startswith("✗")]
    for key in ("SystemCallFilter=", "ProtectProc=", "ProcSubset=", "RemoveIPC=", "PrivateMounts=",
                "DevicePolicy="):
        assert not [line for line in flagged if key in line], (key, flagged)


DROP_IN = ROOT / "contrib" / "systemd" / "hodei.service.d" / "docker.conf"


def test_systemd_analyze_reads_the_docker_drop_in_and_finds_nothing_wrong(tmp_path: Path) -> None:
    """The drop-in an operator installs beside the unit for Docker's socket: it gives the service group
    docker, and systemd reads it as a drop-in of hodei.service (a broken copy of it is reported, naming it)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        backend_unavailable("systemd-analyze not installed (Debian package systemd)")
    text = DROP_IN.read_text(encoding="utf-8")
    assert re.search(r"^\[Service\]\nSupplementaryGroups=docker$", text, re.MULTILINE)
    unit = tmp_path / "hodei.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/hodei/bin/hodei", "/bin/true"), encoding="utf-8")
    folder = tmp_path / "hodei.service.d"
    folder.mkdir()

    def verify() -> list[str]:
        result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
        return [line for line in (result.stdout + result.stderr).splitlines()
                if ("hodei.service" in line or "docker.conf" in line)
                and ("Unknown" in line or "Failed" in line or "Invalid" in line)]

    (folder / "docker.conf").write_text(text.replace("SupplementaryGroups=", "SupplementaryGroupz="), encoding="utf-8")
    assert [line for line in verify() if "docker.conf" in line and "SupplementaryGroupz" in line], \
        "systemd-analyze did not read the drop-in: the check below would prove nothing"
    (folder / "docker.conf").write_text(text, encoding="utf-8")
    assert verify() == []


# -- systemd's notify protocol: RELOADING=1 with MONOTONIC_USEC ----------------------------------------------


def test_reloading_carries_monotonic_usec(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(5)
    notifier = Notifier(str(tmp_path / "notify.sock"))
    try:
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert notifier.reloading("reloading configuration")
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        fields = dict(line.split("=", 1) for line in listener.recv(4096).decode().splitlines())
    finally:
        notifier.close()
        listener.close()
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after
    assert fields["STATUS"] == "reloading configuration"


# -- the start-up log: no Alembic set-up lines; `db upgrade` says what it applied, once -------------------


def test_alembic_set_up_lines_never_reach_the_log(tmp_path: Path) -> None:
    config = tmp_path / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///hodei.db"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = ""\n', encoding="utf-8")
    upgrade = subprocess.run([*hodei_command(), "--config", str(config), "--log-level", "info", "db", "upgrade"],
                             capture_output=True, text=True, timeout=60, env=clean_environment())
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Context impl" not in upgrade.stderr and "Will assume" not in upgrade.stderr
    applied = [line for line in upgrade.stderr.splitlines() if "Running upgrade" in line]
    assert applied and len(applied) == len(set(applied))
    assert "schema migrated from empty" in upgrade.stdout
    again = subprocess.run([*hodei_command(), "--config", str(config), "--log-level", "info", "db", "upgrade"],
                           capture_output=True, text=True, timeout=60, env=clean_environment())
    assert "Running upgrade" not in again.stderr and "Context impl" not in again.stderr
    with serve(config) as served:  # the daemon logs at INFO: "API listening on ..."
        pass
    log = served.log()
    assert "Context impl" not in log and "Will assume" not in log
    assert '"logger": "alembic' not in log


# -- `hodei config init` writes what the example shows --------------------------------------------------------


def test_config_init_and_the_example_show_the_same_examples(tmp_path: Path) -> None:
    from hodei.config_template import render_default_config

    example_line = re.compile(r"^# ([a-z_]+) = (\S.*)$")
    rendered = {m[1]: m[2] for line in render_default_config().splitlines() if (m := example_line.match(line))}
    shipped = {m[1]: m[2] for line in (ROOT / "config" / "hodei.toml").read_text(encoding="utf-8").splitlines()
               if (m := example_line.match(line))}
    assert rendered["token_file"] == '"api-token"'
    for key, value in rendered.items():
        if value.endswith("["):
            continue  # a list written over several lines in one, on one line in the other
        if key == "url":
            continue  # config init leaves [database] url unset; the shipped file sets the checkout's
        assert shipped.get(key) == value, key
