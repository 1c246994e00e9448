"""A plugin author's first hour: ``hodei plugin new`` writes a package that works as generated.

End to end, as an author meets it: the command (a process of its own) writes a provider package and
a selection package; both are pip-installed (not editable) into a fresh virtual environment that sees
this Hodei; each passes its own tests unchanged; ``hodei plugins`` of that environment lists them.
A copy built for another hook API version is refused there, with the reason. No network: pip builds
without an index or build isolation, with the setuptools Hodei's own environment has.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hodei.cli import main
from hodei.hookspecs import API_VERSION

HODEI = Path(sys.executable).parent / "hodei"


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def authored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("author")
    made = run(HODEI, "plugin", "new", "acme", cwd=root)  # a provider type, in ./hodei-acme
    assert made.returncode == 0, made.stderr
    assert "wrote hodei-acme (provider plugin) in hodei-acme" in made.stdout
    made = run(HODEI, "plugin", "new", "gpu-pool", "--kind", "selection", "--dir", root / "rules", cwd=root)
    assert made.returncode == 0, made.stderr
    made = run(HODEI, "plugin", "new", "future", "--dir", root / "future", cwd=root)
    assert made.returncode == 0, made.stderr
    module = root / "future" / "hodei_future" / "__init__.py"
    major = int(API_VERSION.split(".")[0])
    module.write_text(module.read_text().replace(f'HODEI_API_VERSION = "{API_VERSION}"',
                                                 f'HODEI_API_VERSION = "{major + 1}.0"'))

    written = {folder: sorted(str(p.relative_to(root / folder)) for p in (root / folder).rglob("*") if p.is_file())
               for folder in ("hodei-acme", "rules")}  # before pip builds in the trees

    # A fresh environment that sees this Hodei (and its test tools) through a .pth file, so nothing
    # is fetched; the plugins are installed into it as an author installs them.
    env = root / "venv"
    created = run(sys.executable, "-m", "venv", "--without-pip", env)
    assert created.returncode == 0, created.stderr
    python = env / "bin" / "python"
    own_site = sysconfig.get_paths()["purelib"]
    new_site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    Path(new_site, "hodei-under-test.pth").write_text(f"import site; site.addsitedir({own_site!r})\n")
    installed = run(python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--quiet", root / "hodei-acme", root / "rules", root / "future")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return {"root": root, "python": python, "site": Path(new_site), "written": written}


def test_the_packages_are_complete_and_installed_from_their_wheels(authored: dict[str, Any]) -> None:
    root, site = authored["root"], authored["site"]
    for folder, module in (("hodei-acme", "hodei_acme"), ("rules", "hodei_gpu_pool")):
        assert authored["written"][folder] == [
            "README.md", f"{module}/__init__.py", "pyproject.toml", f"tests/test_{module}.py"]
        assert (site / module / "__init__.py").is_file(), "installed, not linked to the source tree"
    assert 'acme = "hodei_acme"' in (root / "hodei-acme" / "pyproject.toml").read_text()
    assert f'HODEI_API_VERSION = "{API_VERSION}"' in (root / "rules" / "hodei_gpu_pool" / "__init__.py").read_text()


@pytest.mark.parametrize("folder, tests", [("hodei-acme", "TestAcmeContract"), ("rules", "TestGpuPoolContract")])
def test_each_package_passes_its_own_tests_unchanged(authored: dict[str, Any], folder: str, tests: str) -> None:
    done = run(authored["python"], "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-rA",
               cwd=authored["root"] / folder)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed[1]) >= 5, done.stdout[-2000:]
    assert "PASSED tests/test_" in done.stdout and f"::{tests}::" in done.stdout, "the contract suite ran"
    assert "skipped" not in done.stdout.splitlines()[-1]


def test_hodei_plugins_lists_them_and_refuses_the_one_built_for_another_api(authored: dict[str, Any]) -> None:
    listed = run(authored["python"], "-m", "hodei", "plugins", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert (plugins["acme"]["distribution"], plugins["acme"]["version"], plugins["acme"]["provider_types"]) == (
        "hodei-acme", "0.1.0", ["acme"])
    assert set(plugins["acme"]["hooks"]) == {
        "hodei_provider_types", "hodei_validate_config", "hodei_health_check", "hodei_capacity", "hodei_provision",
        "hodei_deprovision", "hodei_list_workers"}
    assert plugins["gpu-pool"]["hooks"] == ["hodei_selection_filters", "hodei_selection_rankers"]
    assert "future" not in plugins
    errors = {e["name"]: e for e in json.loads(listed.stdout)["errors"]}
    assert errors["future"]["distribution"] == "hodei-future"
    major = int(API_VERSION.split(".")[0])
    assert errors["future"]["error"].startswith(f"refused: built for Hodei plugin API {major + 1}.0; this Hodei "
                                                f"speaks {API_VERSION}")
    text = run(authored["python"], "-m", "hodei", "plugins")
    assert "failed to load:\n  future (hodei-future): refused: built for Hodei plugin API" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["Acme"], "NAME: 'Acme' must be 1 to 40 lower-case letters"),
    (["acme-"], "NAME: 'acme-' must be 1 to 40"),
    (["static"], "NAME: 'static' is a name of the core's own plugins or rules"),
    (["acme", "--kind", "scheduler"], "Invalid value for '--kind'"),
])
def test_a_bad_name_or_kind_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["plugin", "new", *args, "--dir", str(tmp_path / "out")])
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_a_folder_that_holds_something_is_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text("keep me")
    result = CliRunner().invoke(main, ["plugin", "new", "acme", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"--dir: {str(tmp_path)!r} exists and is not an empty folder; nothing was written" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]

