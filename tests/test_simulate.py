"""``hodei simulate`` as a user runs it: a trace in virtual time through the chain and the placement queue's
order, fleets side by side, the same result for the same seed, a chart, and traces to start from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from hodei.testing.serve import clean_environment, hodei_command

ROOT = Path(__file__).resolve().parents[1]

SMALL = [{"name": "a", "provider_type": "static", "max_workers": 1, "priority": 1,
          "config": {"capabilities": {"cpu": 2}}},
         {"name": "b", "provider_type": "static", "max_workers": 1, "config": {"capabilities": {"cpu": 2}}}]
BIGGER = [*SMALL, {"name": "c", "provider_type": "static", "max_workers": 2, "config": {"capabilities": {"cpu": 8}}}]


def hodei(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hodei_command(), *args], cwd=folder, env=clean_environment(**(env or {})),
                          capture_output=True, text=True, timeout=120)


def write(folder: Path, name: str, records: list[dict[str, Any]]) -> str:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(folder / name)


def fleets(folder: Path) -> tuple[str, str]:
    (folder / "small.json").write_text(json.dumps(SMALL), encoding="utf-8")
    (folder / "bigger.json").write_text(json.dumps(BIGGER), encoding="utf-8")
    return str(folder / "small.json"), str(folder / "bigger.json")


def job(at: float, duration: float, wait: float = 600, **requirements: Any) -> dict[str, Any]:
    return {"at": at, "requirements": {"cpu": 1, **requirements}, "duration": duration, "wait": wait}


def test_waits_refusals_and_expiries_are_counted_in_virtual_time(tmp_path: Path) -> None:
    small, bigger = fleets(tmp_path)
    trace = write(tmp_path, "trace.jsonl", [
        job(0, 100), job(0, 100), job(10, 50),  # the third waits for the first slot: 90 s
        job(20, 10, wait=30),  # waits behind it, expires at 50 on the small fleet
        job(30, 10, cpu=64),  # never fits: refused at once
    ])
    done = hodei(tmp_path, "simulate", "--trace", trace, "--fleet", small, "--fleet", bigger, "-o", "json")
    assert done.returncode == 0, done.stderr
    small_run, bigger_run = json.loads(done.stdout)["fleets"]
    assert (small_run["fleet"], small_run["placed"], small_run["refused"], small_run["expired"]) == ("small", 3, 1, 1)
    assert small_run["wait_seconds"] == {"p50": 0.0, "p90": 90.0, "p99": 90.0, "max": 90.0}
    assert small_run["placements"] == {"a": 2, "b": 1}  # a ranks first (priority) and takes the one that waited
    assert (bigger_run["placed"], bigger_run["refused"], bigger_run["expired"]) == (4, 1, 0)
    assert bigger_run["wait_seconds"]["max"] == 0.0
    assert max(s["queue_depth"] for s in small_run["samples"]) == small_run["peak_queue_depth"] == 2
    text = hodei(tmp_path, "simulate", "--trace", trace, "--fleet", small, "--fleet", bigger)
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["small", "bigger"]
    assert lines[2].split() == ["placed", "3", "4"] and lines[4].split()[-2:] == ["1", "0"]


def test_health_events_and_fleet_changes_apply_on_the_way(tmp_path: Path) -> None:
    small, _ = fleets(tmp_path)
    trace = write(tmp_path, "trace.jsonl", [
        {"at": 0, "provider": "a", "health": "Unhealthy"},
        job(1, 5),  # a is down: b takes it
        {"at": 10, "provider": "a", "health": "Healthy"},
        job(11, 5),  # a is back and ranks first
        {"at": 20, "provider": "b", "max_workers": 3},
        {"at": 20, "provider": "a", "status": "DISABLED"},
        job(21, 50), job(21, 50), job(21, 50), job(21, 50),  # b takes three, the fourth waits to its end
    ])
    done = hodei(tmp_path, "simulate", "--trace", trace, "--fleet", small, "-o", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["fleets"][0]
    assert run["placements"] == {"a": 1, "b": 5}
    assert run["wait_seconds"]["max"] == 50.0


def test_the_same_seed_gives_the_same_result_and_a_chart(tmp_path: Path) -> None:
    small, bigger = fleets(tmp_path)
    # Many jobs arriving at the same instants: the seed orders them.
    trace = write(tmp_path, "trace.jsonl", [job(float(t // 5), 7.0 + t % 4, cpu=1 + t % 2) for t in range(60)])
    runs = [hodei(tmp_path, "simulate", "--trace", trace, "--fleet", small, "--fleet", bigger, "--seed", "3",
                  "--chart", str(tmp_path / f"chart{n}.svg"), "-o", "json") for n in (1, 2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert (tmp_path / "chart1.svg").read_bytes() == (tmp_path / "chart2.svg").read_bytes()
    root = ElementTree.parse(tmp_path / "chart1.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 4  # utilization and queue depth, for each of the two fleets
    assert all(len(line.get("points", "").split()) > 100 for line in lines)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "small" in texts and "bigger" in texts


def test_generate_writes_a_trace_and_a_fleet_to_simulate_and_never_overwrites(tmp_path: Path) -> None:
    args = ["simulate", "--generate", "300", "--trace", "t.jsonl", "--fleet", "f.yaml", "--seed", "5"]
    made = hodei(tmp_path, *args)
    assert made.returncode == 0, made.stderr
    assert "300 jobs" not in made.stdout and "to t.jsonl" in made.stdout
    first = (tmp_path / "t.jsonl").read_bytes()
    again = hodei(tmp_path, *args)
    assert again.returncode == 1 and "t.jsonl exists already" in again.stderr
    assert (tmp_path / "t.jsonl").read_bytes() == first
    (tmp_path / "t.jsonl").unlink()
    (tmp_path / "f.yaml").unlink()
    assert hodei(tmp_path, *args).returncode == 0 and (tmp_path / "t.jsonl").read_bytes() == first
    run = hodei(tmp_path, "simulate", "--trace", "t.jsonl", "--fleet", "f.yaml", "-o", "json")
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout)["fleets"][0]
    assert outcome["jobs"] == 300 and outcome["placed"] > 250


def test_the_shipped_example_runs_in_one_command_without_any_setting(tmp_path: Path) -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ").split())
    command = ("hodei simulate --trace docs/examples/trace.jsonl --fleet docs/examples/fleet.yaml "
               "--fleet docs/examples/fleet-bigger.yaml --chart simulation.svg")
    assert command in readme, "the README no longer shows the one-command try"
    # Run from elsewhere (the checkout is not written to), the example files named from the checkout.
    args = [str(ROOT / word) if word.startswith("docs/") else word for word in command.split()[2:]]
    done = hodei(tmp_path, "simulate", *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["fleet", "fleet-bigger"] and lines[1].split() == ["jobs", "1,200", "1,200"]
    assert (tmp_path / "simulation.svg").is_file()


def test_without_a_fleet_today_s_fleet_is_read_from_the_database(tmp_path: Path) -> None:
    env = {"HODEI_DATABASE_URL": f"sqlite:///{tmp_path / 'hodei.db'}", "HODEI_PLUGINS_ENABLE": "static"}
    small, _ = fleets(tmp_path)
    assert hodei(tmp_path, "db", "upgrade", env=env).returncode == 0
    assert hodei(tmp_path, "providers", "apply", "-f", small, env=env).returncode == 0
    trace = write(tmp_path, "trace.jsonl", [job(0, 10), job(0, 10), job(0, 10)])
    done = hodei(tmp_path, "simulate", "--trace", trace, "-o", "json", env=env)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["fleets"][0]
    assert (run["fleet"], run["placed"], run["wait_seconds"]["max"]) == ("today", 3, 10.0)


@pytest.mark.parametrize(("records", "field"), [
    ([{"at": 0, "requirements": {"cpu": 1}}], "trace[0].duration"),
    ([{"at": -1, "requirements": {"cpu": 1}, "duration": 1}], "trace[0].at"),
    ([{"at": 0, "requirements": {"cpu": "lots"}, "duration": 1}], "trace[0].requirements.cpu"),
    ([{"at": 0, "provider": "a"}], "trace[0]"),
    ([{"at": 0, "requirements": {"cpu": 1}, "duration": 1, "colour": "red"}], "trace[0].colour"),
])
def test_a_trace_at_fault_is_refused_naming_the_record(tmp_path: Path, records: list[dict[str, Any]],
                                                       field: str) -> None:
    small, _ = fleets(tmp_path)
    done = hodei(tmp_path, "simulate", "--trace", write(tmp_path, "bad.jsonl", records), "--fleet", small)
    assert done.returncode == 1
    assert field in done.stderr and "Traceback" not in done.stderr
