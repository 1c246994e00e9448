"""A third-party provider type, installed the way an operator installs one, works end to end.

docs/example-plugin (``hodei-localproc``) is pip-installed into a scratch directory, which is put
on ``sys.path``; from then on Hodei finds it only through its ``hodei`` entry point, exactly as
it finds a plugin installed from PyPI. Nothing here imports the example's source tree.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from hodei import HealthStatus, Provider, WorkerHandle, WorkerRequest
from hodei.calls import call_provider_hook
from hodei.masking import MASK, mask_secrets
from hodei.plugins import HodeiPluginManager, make_plugin_manager

# localproc signals process groups (os.killpg) and the tests run sh: POSIX only.
pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="localproc needs POSIX process groups")

PROVIDER_HOOKS = ["hodei_capacity", "hodei_deprovision", "hodei_health_check", "hodei_list_workers",
                  "hodei_provider_types", "hodei_provision", "hodei_validate_config"]


@pytest.fixture(scope="module")
def localproc_site(install_example) -> Path:
    return install_example("example-plugin", "hodei_localproc")


@pytest.fixture
def pm(localproc_site: Path) -> HodeiPluginManager:
    return make_plugin_manager()


def provider(pm: HodeiPluginManager, **config: Any) -> Provider:
    normalised = pm.validate_config("localproc", {"type": "localproc", **config})
    return Provider(id=uuid.uuid4(), name="localproc test", provider_type="localproc", config=normalised)


def wait_for(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {predicate}")
        time.sleep(0.02)


# -- loading ---------------------------------------------------------------------------------


def test_installed_plugin_serves_its_type_through_its_entry_point(pm, localproc_site) -> None:
    assert "localproc" in pm.provider_types, pm.load_errors
    assert not [e for e in pm.load_errors if e.name == "localproc"]
    info = next(i for i in pm.plugin_infos() if i.name == "localproc")
    assert (info.distribution, info.version) == ("hodei-localproc", "0.1.0")
    assert info.provider_types == ["localproc"]
    assert info.hooks == PROVIDER_HOOKS
    # Loaded from the installed copy, not from docs/example-plugin.
    module_file = Path(pm.get_plugin("localproc").__file__).resolve()
    assert module_file.is_relative_to(localproc_site.resolve())


def test_deny_leaves_it_out_and_records_it_skipped(localproc_site) -> None:
    pm = make_plugin_manager(deny=["localproc"])
    assert "localproc" not in pm.provider_types
    assert not pm.has_plugin("localproc")
    assert "localproc" in pm.skipped
    assert "docker" in pm.provider_types, "denying one plugin must not affect the others"


def test_allow_loads_only_it(localproc_site) -> None:
    pm = make_plugin_manager(allow=["localproc"])
    assert list(pm.provider_types) == ["localproc"]
    assert [name for name, _ in pm.list_name_plugin()] == ["hodei.selection", "localproc"]  # the core's own rules
    assert {"docker", "kubernetes", "lambda"} <= set(pm.skipped)


# -- the CLI, in a process of its own ----------------------------------------------------------


def run_hodei(site: Path, cwd: Path, *args: str) -> dict[str, Any]:
    hodei = Path(sys.executable).parent / "hodei"
    assert hodei.exists(), f"the hodei console script is not installed beside {sys.executable}"
    env = {k: v for k, v in os.environ.items() if k not in ("HODEI_CONFIG", "HODEI_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([str(hodei), *args, "plugins", "--output", "json"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cli_lists_the_installed_type(localproc_site, tmp_path) -> None:
    listed = run_hodei(localproc_site, tmp_path)
    entry = next(p for p in listed["plugins"] if p["name"] == "localproc")
    assert entry["provider_types"] == ["localproc"]
    assert (entry["distribution"], entry["version"]) == ("hodei-localproc", "0.1.0")
    assert entry["hooks"] == PROVIDER_HOOKS
    assert not [e for e in listed["errors"] if e["name"] == "localproc"]


def test_cli_honours_deny_in_hodei_toml(localproc_site, tmp_path) -> None:
    config = tmp_path / "hodei.toml"
    config.write_text('[plugins]\ndeny = ["localproc"]\n', encoding="utf-8")
    listed = run_hodei(localproc_site, tmp_path, "--config", str(config))
    assert "localproc" not in [p["name"] for p in listed["plugins"]]
    assert "localproc" in listed["skipped"]


# -- secrets -----------------------------------------------------------------------------------


def test_secret_env_is_masked(pm) -> None:
    config = provider(pm, env={"LOG_LEVEL": "debug"}, secret_env={"API_KEY": "hunter2-secret"}).config
    masked = mask_secrets(config, pm.provider_type("localproc").secret_fields)
    assert masked["secret_env"] == MASK
    assert "hunter2-secret" not in json.dumps(masked)
    assert masked["env"] == {"LOG_LEVEL": "debug"}, "only the declared secret fields are hidden"
    assert config["secret_env"] == {"API_KEY": "hunter2-secret"}, "masking works on a copy"


# -- behaviour beyond the contract -------------------------------------------------------------


def call(pm: HodeiPluginManager, hook: str, target: Provider, timeout: float = 30.0, **kwargs: Any) -> Any:
    return anyio.run(lambda: call_provider_hook(pm, hook, target, timeout, **kwargs))


def test_health_check_names_a_missing_command(pm) -> None:
    result = call(pm, "hodei_health_check", provider(pm, command=["surely-not-a-command-4a1b"]))
    assert result.status is HealthStatus.UNHEALTHY
    assert "surely-not-a-command-4a1b" in result.reason


def test_worker_gets_its_environment_in_a_session_of_its_own(pm, tmp_path) -> None:
    out = tmp_path / "env.txt"
    target = provider(pm, command=["sh", "-c", 'env > "$OUT.tmp" && mv "$OUT.tmp" "$OUT" && exec sleep 60'],
                      env={"OUT": str(out)}, secret_env={"API_KEY": "k-123"}, grace_seconds=1)
    request = WorkerRequest(worker_id="w-env", server_address="127.0.0.1:50051", token="tok-456")
    handle = call(pm, "hodei_provision", target, request=request)
    try:
        wait_for(out.exists)
        env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        assert os.getsid(int(handle.backend_id)) == int(handle.backend_id)
    finally:
        assert call(pm, "hodei_deprovision", target, handle=handle) is True
    assert {k: env.get(k) for k in ("HODEI_WORKER_ID", "HODEI_SERVER_ADDRESS", "HODEI_WORKER_TOKEN",
                                     "HODEI_PROVIDER_ID", "API_KEY")} == {
        "HODEI_WORKER_ID": "w-env", "HODEI_SERVER_ADDRESS": "127.0.0.1:50051", "HODEI_WORKER_TOKEN": "tok-456",
        "HODEI_PROVIDER_ID": str(target.id), "API_KEY": "k-123"}
    assert env.get("PATH") == os.environ.get("PATH"), "the daemon's environment is inherited"
    assert call(pm, "hodei_list_workers", target) == []


def test_worker_ignoring_sigterm_is_killed_after_the_grace_period(pm, tmp_path) -> None:
    ready = tmp_path / "ready"
    target = provider(pm, command=["sh", "-c", "trap '' TERM; touch \"$READY\"; while :; do sleep 0.05; done"],
                      env={"READY": str(ready)}, grace_seconds=0.5)
    handle = call(pm, "hodei_provision", target,
                  request=WorkerRequest(worker_id="w-stubborn", server_address="127.0.0.1:1", token="t"))
    wait_for(ready.exists)
    started = time.monotonic()
    assert call(pm, "hodei_deprovision", target, handle=handle) is True
    assert time.monotonic() - started >= 0.5, "SIGKILL must wait for the grace period"
    assert call(pm, "hodei_capacity", target).active_workers == 0

    def group_gone() -> bool:  # the whole process group, the sleeping grandchildren too
        try:
            os.killpg(int(handle.backend_id), 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(group_gone)


def test_deprovision_of_an_unknown_worker_is_success(pm) -> None:
    target = provider(pm)
    assert call(pm, "hodei_deprovision", target, handle=WorkerHandle("never-started", "999999")) is True


# -- the contract suite, through the entry point -----------------------------------------------


def _load_example_tests() -> Any:
    """The example's own test module, so its fixtures are proven here rather than copied."""
    path = Path(__file__).resolve().parents[1] / "docs" / "example-plugin" / "tests" / "test_localproc.py"
    spec = importlib.util.spec_from_file_location("hodei_localproc_example_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_example = _load_example_tests()


@pytest.mark.usefixtures("localproc_site")  # module-scoped: installed before hodei_pm is built
class TestLocalprocContract(_example.TestLocalprocContract):
    """The example's contract subclass (a ``ProviderContract``), run against the installed copy."""
