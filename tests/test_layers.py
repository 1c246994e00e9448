"""The core's layer contracts hold: `lint-imports` (import-linter, configured under [tool.importlinter] in
pyproject.toml) finds no import that breaks them, so the suite fails on a broken contract as scripts/lint
does. The contracts themselves are declared there, not here."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_layer_contracts_are_kept() -> None:
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    # Every declared contract was checked (a contract misnamed or dropped would not be).
    assert f"Contracts: {len(contracts)} kept, 0 broken." in done.stdout, done.stdout[-2000:]


def test_a_broken_contract_fails(tmp_path: Path) -> None:
    """The check can fail: the same contracts over a copy of the core in which the API imports the daemon."""
    core = tmp_path / "hodei"
    subprocess.run(["cp", "-r", str(ROOT / "core" / "hodei"), str(core)], check=True)
    with (core / "api" / "__init__.py").open("a", encoding="utf-8") as file:
        file.write("\nimport hodei.daemon.service  # noqa: F401\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)})
    assert done.returncode != 0
    assert "hodei.api is not allowed to import hodei.daemon" in done.stdout, done.stdout[-3000:]


def test_the_daemon_reaching_past_the_services_fails(tmp_path: Path) -> None:
    """The daemon's contract can fail too: its live view importing the store, as it did before it read
    through the fleet reads service."""
    core = tmp_path / "hodei"
    subprocess.run(["cp", "-r", str(ROOT / "core" / "hodei"), str(core)], check=True)
    with (core / "daemon" / "fleet.py").open("a", encoding="utf-8") as file:
        file.write("\nimport hodei.store  # noqa: F401\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)})
    assert done.returncode != 0
    assert "hodei.daemon.fleet -> hodei.store" in done.stdout, done.stdout[-3000:]
