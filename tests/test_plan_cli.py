"""``hodei plan`` as an operator runs it (a process), on SQLite and PostgreSQL: the batch is placed on the
fleet as it is, slots already taken included, and nothing is provisioned."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from hodei.testing.serve import clean_environment, hodei_command

FLEET = [
    {"name": "eu-a", "provider_type": "static", "max_workers": 2, "preferred_region": "eu-west-1",
     "config": {"capabilities": {"cpu": 4, "memory": "8Gi"}}},
    {"name": "us-a", "provider_type": "static", "max_workers": 2, "preferred_region": "us-east-1",
     "config": {"capabilities": {"cpu": 4, "memory": "8Gi"}}},
]


def hodei(url: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_environment(HODEI_DATABASE_URL=url, HODEI_PLUGINS_ENABLE="static")
    return subprocess.run([*hodei_command(), *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)


def ok(url: str, folder: Path, *args: str) -> Any:
    done = hodei(url, folder, *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_plan_places_the_batch_on_the_fleet_as_it_is_and_provisions_nothing(hodei_database_url: str,
                                                                            tmp_path: Path) -> None:
    url = hodei_database_url
    (tmp_path / "fleet.json").write_text(json.dumps(FLEET), encoding="utf-8")
    (tmp_path / "job.json").write_text(json.dumps({"preferred_region": "eu-west-1"}), encoding="utf-8")
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps({"cpu": 1, "preferred_region": "eu-west-1"}) + "\n"
                                                 for _ in range(4)) + '{"cpu": 8}\n', encoding="utf-8")
    assert hodei(url, tmp_path, "db", "upgrade").returncode == 0
    ok(url, tmp_path, "providers", "apply", "-f", str(tmp_path / "fleet.json"))
    worker = ok(url, tmp_path, "workers", "provision", "-r", str(tmp_path / "job.json"))
    assert worker["provider"] == "eu-a"

    done = hodei(url, tmp_path, "plan", "-f", str(tmp_path / "jobs.jsonl"), "-o", "json")
    assert done.returncode == 3, done.stderr  # some would wait
    planned = json.loads(done.stdout)
    assert list(planned) == ["placed", "waiting", "jobs", "providers", "advice"]
    assert (planned["placed"], planned["waiting"]) == (3, 2)
    assert [(j["provider"], j["tier"]) for j in planned["jobs"]] == [
        ("eu-a", "preferred"), ("us-a", "any"), ("us-a", "any"), (None, None), (None, None)]
    assert planned["providers"] == [{"name": "eu-a", "max_workers": 2, "before": 1, "after": 2},
                                    {"name": "us-a", "max_workers": 2, "before": 0, "after": 2}]
    assert planned["jobs"][3]["reasons"][0] == "no capacity"
    assert planned["jobs"][4]["reasons"][0] == "no provider is big enough (cpu 8)"
    assert [a["kind"] for a in planned["advice"]] == ["new_provider", "max_workers"]

    text = hodei(url, tmp_path, "plan", "-f", str(tmp_path / "jobs.jsonl"))
    assert text.returncode == 3
    assert "3 of 5 placed; 2 would wait: 1 no capacity, 1 no provider is big enough (cpu 8)" in text.stdout
    assert "  - raise max_workers of eu-a by 1 (2 to 3): places 1 more" in text.stdout
    # Nothing was provisioned or reserved: the one worker is still the only one.
    assert [w["id"] for w in ok(url, tmp_path, "workers", "list", "--all")] == [worker["id"]]


def test_a_batch_that_fits_exits_0_and_one_at_fault_names_the_job(hodei_database_url: str, tmp_path: Path) -> None:
    url = hodei_database_url
    (tmp_path / "fleet.json").write_text(json.dumps(FLEET), encoding="utf-8")
    (tmp_path / "jobs.yaml").write_text("- {cpu: 1}\n- {cpu: 2, memory: 1Gi}\n", encoding="utf-8")
    (tmp_path / "jobs.toml").write_text('[[jobs]]\ncpu = 1\n[[jobs]]\ncpu = "lots"\n', encoding="utf-8")
    assert hodei(url, tmp_path, "db", "upgrade").returncode == 0
    ok(url, tmp_path, "providers", "apply", "-f", str(tmp_path / "fleet.json"))
    fits = hodei(url, tmp_path, "plan", "-f", str(tmp_path / "jobs.yaml"))
    assert fits.returncode == 0, fits.stderr
    assert fits.stdout.rstrip().endswith("2 of 2 placed")
    faulty = hodei(url, tmp_path, "plan", "-f", str(tmp_path / "jobs.toml"))
    assert faulty.returncode == 1
    assert "jobs[1].cpu" in faulty.stderr and "Traceback" not in faulty.stderr


def test_the_example_batch_plans_on_the_seed_s_providers(hodei_database_url: str, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    readme = " ".join((root / "README.md").read_text(encoding="utf-8").split())
    assert "hodei plan -f docs/examples/jobs.jsonl" in readme
    url = hodei_database_url
    assert hodei(url, tmp_path, "db", "upgrade").returncode == 0
    ok(url, tmp_path, "providers", "apply", "-f", str(root / "config" / "providers.example.toml"))
    done = hodei(url, tmp_path, "plan", "-f", str(root / "docs" / "examples" / "jobs.jsonl"))
    assert done.returncode == 3, done.stderr
    assert ("35 of 39 placed; 4 would wait: 2 no capacity with label environment=development, 2 no provider "
            "could ever take it in eu-west-1 with label environment=staging") in done.stdout
    assert "  - raise max_workers of Local Docker by 2 (10 to 12): places 2 more" in done.stdout
