"""An operator's first session with the real ``hodei`` console script, as separate processes.

Runs in a temporary folder holding copies of the checkout's hodei.toml and config/providers.example.toml;
``hodei`` finds the copy as ./hodei.toml (no HODEI_CONFIG), so its ``sqlite:///var/hodei.db`` lands in
that folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
HODEI = Path(sys.executable).parent / "hodei"


class Session:
    def __init__(self, folder: Path):
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(HODEI), *args], cwd=self.folder, env=self.env, input=input,
                              capture_output=True, text=True, timeout=120)

    def ok(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = self(*args, input=input)
        assert done.returncode == 0, f"hodei {' '.join(args)} exited {done.returncode}: {done.stderr}"
        assert "Traceback" not in done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json").stdout)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    assert HODEI.is_file(), f"the console script {HODEI} is not installed"
    shutil.copy(ROOT / "hodei.toml", tmp_path / "hodei.toml")
    shutil.copy(ROOT / "config" / "providers.example.toml", tmp_path / "providers.example.toml")
    return Session(tmp_path)


def test_database_lands_beside_the_config_copy(session: Session) -> None:
    upgraded = session.json("db", "upgrade")
    database = session.folder / "var" / "hodei.db"
    assert upgraded["database"] == f"sqlite:///{database}"
    assert database.is_file()
    assert session.json("db", "current")["up_to_date"] is True
    assert session.json("providers", "list") == []


def test_first_session_with_the_example_providers(session: Session) -> None:
    plugins = session.json("plugins")
    types = {t for p in plugins["plugins"] for t in p["provider_types"]}
    missing = {"docker", "kubernetes", "lambda"} - types
    assert not missing, f"provider plugins not loaded: {sorted(missing)}; errors: {plugins['errors']}"

    session.ok("db", "upgrade")
    applied = session.ok("providers", "apply", "-f", "providers.example.toml")
    assert "3 created, 0 updated, 0 unchanged" in applied.stdout

    listed = {p["name"]: p for p in session.json("providers", "list")}
    assert set(listed) == {"Production Kubernetes", "Local Docker", "Lambda us-east-1"}
    assert all(p["valid"] and p["status"] == "ACTIVE" for p in listed.values()), listed

    k8s = listed["Production Kubernetes"]
    assert (k8s["provider_type"], k8s["priority"], k8s["max_workers"]) == ("kubernetes", 100, 20)
    assert k8s["preferred_region"] == "us-east-1"
    assert k8s["allowed_regions"] == ["us-east-1", "us-west-2"]
    assert k8s["required_labels"] == {"environment": "production", "tier": "high-performance"}
    assert k8s["annotations"] == {"compliance": "soc2", "audit": "enabled"}
    assert k8s["config"] == {"type": "kubernetes", "namespace": "hodei-jobs", "service_account": "hodei-worker",
                             "default_image": "hodei-jobs-worker:v3"}

    docker = listed["Local Docker"]
    assert (docker["provider_type"], docker["priority"], docker["max_workers"]) == ("docker", 50, 10)
    assert (docker["preferred_region"], docker["allowed_regions"]) == ("local", [])
    assert docker["required_labels"] == {"environment": "development"}
    assert docker["annotations"] == {}
    assert docker["config"] == {"type": "docker", "socket_path": "/var/run/docker.sock",
                                "default_image": "hodei-jobs-worker:latest", "network": "host",
                                "default_resources": {"cpu_limit": "2", "memory_limit": "4Gi"}}

    lam = listed["Lambda us-east-1"]
    assert (lam["provider_type"], lam["priority"], lam["max_workers"]) == ("lambda", 10, 100)
    assert (lam["preferred_region"], lam["allowed_regions"]) == ("us-east-1", [])
    assert lam["required_labels"] == {"environment": "production"}
    assert lam["annotations"] == {"compliance": "soc2"}
    assert lam["config"] == {"type": "lambda", "region": "us-east-1", "runtime": "provided.al2",
                             "timeout_seconds": 900, "memory_mb": 1024,
                             "layers": ["arn:aws:lambda:us-east-1:123456789:layer:common:1"]}

    again = session.ok("providers", "apply", "-f", "providers.example.toml")
    assert "0 created, 0 updated, 3 unchanged" in again.stdout
    assert {p["name"]: p for p in session.json("providers", "list")} == listed

    session.ok("providers", "disable", "Local Docker")
    table = session.ok("providers", "list").stdout
    assert "Production Kubernetes" in table and "DISABLED" in table


def test_bad_input_never_shows_a_stack_trace(session: Session) -> None:
    session.ok("db", "upgrade")
    session.ok("providers", "add", "edge", "--type", "static")
    (session.folder / "broken.toml").write_text("[[providers]\n", encoding="utf-8")
    bad = [
        ["providers", "add", "x", "--type", "static", "--config", "{not json"],
        ["providers", "add", "x", "--type", "static", "--max-workers", "0"],
        ["providers", "add", "x", "--type", "no-such-type"],
        ["providers", "add", "edge", "--type", "static"],
        ["providers", "add", "x", "--type", "static", "--status", "BOGUS"],
        ["providers", "update", "ghost", "--priority", "1"],
        ["providers", "apply", "-f", "broken.toml"],
        ["providers", "apply", "-f", "absent.toml"],
        ["--config", "absent/hodei.toml", "providers", "list"],
        ["--database-url", "postgresql+psycopg://hodei:pw@127.0.0.1:1/hodei", "providers", "list"],
        ["--database-url", "::::", "providers", "list"],
        ["--database-url", "nosuchdialect://x/y", "providers", "list"],
    ]
    failures = []
    for args in bad:
        done = session(*args)
        if done.returncode not in (1, 2) or "Traceback" in done.stderr or not done.stderr.strip():
            last = (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
            failures.append(f"hodei {' '.join(args)} -> exit {done.returncode}: {last}")
    assert not failures, "\n\n".join(failures)
    assert [p["name"] for p in session.json("providers", "list")] == ["edge"]
