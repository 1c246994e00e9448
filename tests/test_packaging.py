"""What a package index and a `pip install` give a new user: the four wheels, built from this tree.

The wheels (core, hodei-docker, hodei-k8s, hodei-lambda) are built without network into a temporary
folder and installed into a fresh virtual environment that sees no checkout: its dependencies come
from this test run's environment (a .pth line after the new venv's own site-packages, whose copies of
Hodei win), nothing from the index. The installed Hodei then serves, lists exactly the three provider
types, and loads no pytest plugin into other projects' test runs.
"""

from __future__ import annotations

import email.parser
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from hodei.testing.serve import Served, clean_environment

ROOT = Path(__file__).resolve().parents[1]
# Every .proto of the repository: the wheel ships them all, for clients in other languages.
PROTOS = sorted(path.name for path in (ROOT / "proto" / "hodei" / "api" / "v1").glob("*.proto"))
SOURCES = {"hodei": ROOT, "hodei-docker": ROOT / "plugins/hodei-docker", "hodei-k8s": ROOT / "plugins/hodei-k8s",
           "hodei-lambda": ROOT / "plugins/hodei-lambda"}
# Everything a build must not see or copy: tools' state and other builds.
_IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                  ".hypothesis", ".mypy_cache", ".ruff_cache", "var", "*.db")
_LINK = re.compile(r"\]\(([^)\s]+)")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four wheels, built from a copy of the tree (a build writes build/ and *.egg-info where it runs)."""
    scratch = tmp_path_factory.mktemp("wheels")
    source = scratch / "src"
    shutil.copytree(ROOT, source, ignore=_IGNORED, symlinks=True)
    out = scratch / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "--wheel-dir", str(out),
         *(str(source / path.relative_to(ROOT)) for path in SOURCES.values())],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"building the wheels failed:\n{done.stdout}\n{done.stderr}"
    built = {}
    for wheel in out.glob("*.whl"):
        name = wheel.name.split("-")[0].replace("_", "-")
        built[name] = wheel
    assert set(built) == set(SOURCES)
    return built


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_the_wheels_pass_twine_check_strict(wheels: dict[str, Path]) -> None:
    # twine renders the long description as the index would, and --strict fails on any warning.
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels.values())],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 4


@pytest.mark.parametrize("name", list(SOURCES))
def test_each_wheel_carries_its_license_and_the_metadata_an_index_shows(wheels: dict[str, Path], name: str) -> None:
    meta = metadata(wheels[name])
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    with zipfile.ZipFile(wheels[name]) as archive:
        license_text = next(archive.read(n) for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
    assert b"Apache License" in license_text and b"Version 2.0" in license_text
    assert meta["Author"] or meta["Author-email"]
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    assert meta["Description-Content-Type"] == "text/markdown"


@pytest.mark.parametrize("name", list(SOURCES))
def test_no_relative_link_in_a_long_description(wheels: dict[str, Path], name: str) -> None:
    """On a package index a relative link points nowhere: absolute links or anchors in the page."""
    description = metadata(wheels[name]).get_payload()
    assert isinstance(description, str) and description.strip()
    relative = [link for link in _LINK.findall(description) if not link.startswith(("https://", "http://", "#"))]
    assert relative == []


def test_the_core_wheel_ships_the_proto_files_and_no_test_plugin_entry_points(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["hodei"]) as archive:
        names = archive.namelist()
        protos = sorted(n for n in names if n.endswith(".proto"))
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert protos == [f"hodei/api/proto/hodei/api/v1/{name}" for name in PROTOS]
    with zipfile.ZipFile(wheels["hodei"]) as archive:
        for proto in protos:
            shipped = archive.read(proto)
            assert shipped == (ROOT / "proto" / proto.removeprefix("hodei/api/proto/")).read_bytes()
    assert "[pytest11]" not in entry_points
    assert "[hodei]" not in entry_points  # `static` loads only when enabled
    assert "[console_scripts]" in entry_points and "hodei = hodei.cli:main" in entry_points


def test_the_core_wheel_ships_the_status_pages_templates_and_static_files(wheels: dict[str, Path]) -> None:
    ui = ROOT / "core" / "hodei" / "ui"
    expected = sorted(f"hodei/ui/{path.relative_to(ui).as_posix()}" for folder in ("templates", "static")
                      for path in (ui / folder).iterdir())
    with zipfile.ZipFile(wheels["hodei"]) as archive:
        shipped = sorted(n for n in archive.namelist() if n.startswith(("hodei/ui/templates/", "hodei/ui/static/")))
        assert shipped == expected and expected
        for name in shipped:  # as they are: no build step
            assert archive.read(name) == (ui / name.removeprefix("hodei/ui/")).read_bytes()


@pytest.fixture(scope="module")
def venv(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the four wheels; the rest of its dependencies are this environment's."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         "--disable-pip-version-check", "--quiet", *map(str, wheels.values())],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"installing the wheels failed:\n{done.stdout}\n{done.stderr}"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # A path line, not a site dir: the editable installs' .pth hooks of this environment stay inactive.
    (site / "zz-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return root


def production_environment() -> dict[str, str]:
    """No Hodei variable at all: not even the test run's HODEI_PLUGINS_ENABLE."""
    return {k: v for k, v in clean_environment().items() if not k.startswith("HODEI_")}


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=production_environment())


def test_the_installed_hodei_comes_from_the_wheel_with_its_protos(venv: Path, tmp_path: Path) -> None:
    done = run(venv, "python", "-c",
               "import hodei, hodei.api, importlib.metadata as m, json; print(json.dumps({"
               "'file': hodei.__file__, 'protos': sorted(p.name for p in hodei.api.PROTO_DIR.glob('hodei/api/v1/*')),"
               "'pytest11': sorted(e.name for e in m.entry_points(group='pytest11') if 'hodei' in e.value)}))",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["file"]).is_relative_to(venv)
    assert found["protos"] == PROTOS
    assert found["pytest11"] == []


def test_a_wheel_installed_hodei_lists_the_three_provider_types_and_serves(venv: Path, tmp_path: Path) -> None:
    config = tmp_path / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///hodei.db"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = "127.0.0.1:0"\n', encoding="utf-8")
    listed = run(venv, "hodei", "--config", str(config), "plugins", "-o", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    plugins = json.loads(listed.stdout)
    assert sorted(t for p in plugins["plugins"] for t in p["provider_types"]) == ["docker", "kubernetes", "lambda"]
    assert plugins["errors"] == []
    versions = {p["name"]: p["version"] for p in plugins["plugins"]}
    assert versions["hodei.selection"] == versions["docker"] == "0.1.0"

    upgraded = run(venv, "hodei", "--config", str(config), "db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    process = subprocess.Popen([str(venv / "bin" / "hodei"), "--config", str(config), "serve"], cwd=tmp_path,
                               env=production_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    served = Served(process)
    try:
        served.wait_ready(60, metrics=True)
        assert served.address is not None
        listed = run(venv, "hodei", "--server", served.address, "providers", "list", "-o", "json", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == []
    finally:
        assert served.stop() == 0, served.log()


def test_a_plugin_author_s_suite_gets_the_fixtures_only_when_it_asks(tmp_path: Path) -> None:
    """No pytest11 entry point: Hodei's fixtures are absent from a test run until `-p hodei.testing.pytest_plugin`."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_author.py").write_text(
        "def test_types(hodei_pm):\n    assert 'static' in hodei_pm.provider_types\n", encoding="utf-8")

    def pytest_run(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, "test_author.py"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env=clean_environment(PYTEST_ADDOPTS=""))

    without = pytest_run()
    assert without.returncode == 1 and "fixture 'hodei_pm' not found" in without.stdout, without.stdout
    with_plugin = pytest_run("-p", "hodei.testing.pytest_plugin")
    assert with_plugin.returncode == 0, with_plugin.stdout + with_plugin.stderr
