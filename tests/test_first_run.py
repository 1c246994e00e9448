"""``./scripts/run``'s demo, as a new user meets it, run twice: it reaches a ready daemon every time.

The demo (scripts/demo, which scripts/run starts once .venv is set up) runs in a copy of the checkout's
config/ (config/hodei.toml, its embedded default, among it) and scripts/demo, with this test run's .venv linked in and the daemon's ports
moved to free ones. With a Docker engine, it provisions and releases a real worker on the example
Docker provider; without one it says how to get Docker, and still reaches the daemon.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from hodei.testing import backends_required
from hodei.testing.serve import Served, clean_environment

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent


def docker_engine() -> bool:
    import docker

    try:
        docker.APIClient(base_url="unix:///var/run/docker.sock", version="auto", timeout=10).close()
        return True
    except docker.errors.DockerException:
        return False


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    folder = tmp_path / "hodei"
    (folder / "scripts").mkdir(parents=True)
    shutil.copytree(ROOT / "config", folder / "config")
    shutil.copy(ROOT / "scripts" / "demo", folder / "scripts" / "demo")
    settings = (ROOT / "config" / "hodei.toml").read_text(encoding="utf-8")
    # A developer's own daemon may hold the default ports: the copy listens on free ones.
    settings = re.sub(r'(?m)^listen = "127\.0\.0\.1:\d+"$', 'listen = "127.0.0.1:0"', settings)
    (folder / "config" / "hodei.toml").write_text(settings, encoding="utf-8")
    (folder / ".venv").symlink_to(VENV)
    return folder


def run_demo(folder: Path) -> tuple[str, Served]:
    """The demo up to the daemon's readiness: what it printed before, and the running daemon."""
    process = subprocess.Popen([str(folder / "scripts" / "demo")], cwd=folder, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # Set on purpose, to show the demo ignores them: its own settings win.
                               env=clean_environment(HODEI_DATABASE_URL="sqlite:////nonexistent/x.db",
                                                     HODEI_CONFIG="/nonexistent/hodei.toml"))
    served = Served(process)
    served.wait_ready(300, ui=True)
    return "".join(served.stdout), served


def test_the_demo_reaches_a_ready_daemon_every_time(checkout: Path) -> None:
    with_docker = docker_engine()
    if not with_docker and backends_required():
        pytest.fail("no Docker engine at /var/run/docker.sock (HODEI_REQUIRE_BACKENDS is set)")
    for attempt in (1, 2):
        shown, served = run_demo(checkout)
        try:
            assert "Traceback" not in shown + served.log(), served.log()
            assert "created Local Docker" in shown if attempt == 1 else "unchanged Local Docker" in shown
            # The status page's address is printed, and the page shows the demo's fleet.
            assert "the status page, in a browser: http://127.0.0.1:" in shown
            assert served.ui_url is not None
            with urllib.request.urlopen(served.ui_url, timeout=30) as answer:
                page = answer.read().decode("utf-8")
            for name in ("Production Kubernetes", "Local Docker", "Lambda us-east-1"):
                assert f'data-provider="{name}"' in page, page
            # The production job: nothing fits here, and the demo says why (the Docker one lacks the label).
            production = shown.split("a production job preferring us-east-1")[1]
            assert "0/3 providers available" in production and "environment=production" in production
            assert "(exit 3: nothing fits; the lines above say why)" in production
            development = shown.split("a development job")[1].split("a production job")[0]
            if with_docker:
                assert "hodei-jobs-worker:latest: " in shown
                assert "selected Local Docker" in development, development
                provisioned = shown.split("a real worker for the development job")[1]
                assert "state       RUNNING" in provisioned or "RUNNING" in provisioned, provisioned
                assert "TERMINATED" in provisioned, provisioned
                assert "(exit" not in provisioned, provisioned
            else:
                assert "install Docker Engine" in served.log()
                assert "Local Docker" in development and "Unhealthy" in development
        finally:
            assert served.stop() == 0, served.log()
    assert (checkout / "var" / "hodei.db").is_file()
    env = clean_environment(HODEI_CONFIG=str(checkout / "config" / "hodei.toml"))
    workers = json.loads(subprocess.run([str(checkout / ".venv" / "bin" / "hodei"), "workers", "list", "--all",
                                         "-o", "json"], cwd=checkout, env=env, capture_output=True, text=True,
                                        check=True).stdout)
    if with_docker:  # one worker per run, each released: no container left behind
        assert [w["state"] for w in workers] == ["TERMINATED", "TERMINATED"], workers
        import docker

        api = docker.APIClient(base_url="unix:///var/run/docker.sock", version="auto", timeout=10)
        for worker in workers:
            assert not api.containers(all=True, filters={"label": f"hodei.worker-id={worker['id']}"})
        api.close()
    assert not os.path.exists("/nonexistent/x.db")


def test_without_an_engine_the_worker_image_step_says_how_to_get_docker(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "hodei_docker.demo_image", "--socket", str(tmp_path / "none.sock")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"no Docker engine answers at unix://{tmp_path / 'none.sock'}" in done.stderr
    assert "install Docker Engine" in done.stderr and "Traceback" not in done.stderr
