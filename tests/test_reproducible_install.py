"""A fresh clone installs the same set whatever the package index serves that day: scripts/setup installs
requirements/dev.txt (made by scripts/lock), which must satisfy every pyproject.toml; the committed gRPC
stubs are what the pinned generator makes of proto/, up to the version stamps, which must not ask for
more than the core's own lower bounds."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "dev.txt"
STUBS = ROOT / "core" / "hodei" / "api" / "v1"
PYPROJECTS = [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]
LOCAL = {"hodei", "hodei-docker", "hodei-k8s", "hodei-lambda"}

# What the generator stamps with its own version; everything else it writes must match byte for byte.
GRPC_STAMP = re.compile(r"^GRPC_GENERATED_VERSION = '([0-9.]+)'$", re.M)
PROTOBUF_COMMENT = re.compile(r"^# Protobuf Python Version: ([0-9.]+)$", re.M)
PROTOBUF_CHECK = re.compile(r"(ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*)"
                            r"(\d+),\s*(\d+),\s*(\d+),")


def marker_environment(python: str) -> dict[str, str]:
    """Where the lock is read for: the Python version given, on Linux (this project's platform)."""
    return {**default_environment(), "python_version": python, "python_full_version": f"{python}.0",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}


def lock_pins(python: str = "3.11") -> dict[str, Version]:
    environment = marker_environment(python)
    found: dict[str, Version] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-e ")):
            continue
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{line}: the lock pins exact versions"
        found[canonicalize_name(requirement.name)] = Version(spec.version)
    return found


def declared(path: Path) -> list[Requirement]:
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project.get("optional-dependencies", {})
                                     .get("test", [])]]


def normalised(text: str) -> str:
    text = GRPC_STAMP.sub("GRPC_GENERATED_VERSION = '<generator>'", text)
    text = PROTOBUF_COMMENT.sub("# Protobuf Python Version: <generator>", text)
    return PROTOBUF_CHECK.sub(r"\1<major>, <minor>, <patch>,", text)


# -- the lock ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(ROOT)) or "core")
def test_the_lock_satisfies_every_requirement_of_every_package(pyproject: Path, python: str) -> None:
    locked = lock_pins(python)
    environment = marker_environment(python)
    unmet = []
    for requirement in declared(pyproject):
        name = canonicalize_name(requirement.name)
        if name in LOCAL or (requirement.marker and not requirement.marker.evaluate(environment)):
            continue
        if name not in locked or not requirement.specifier.contains(locked[name], prereleases=True):
            unmet.append(f"{requirement} (locked: {locked.get(name, 'nothing')})")
    assert not unmet, f"requirements/dev.txt is out of date with {pyproject}: run scripts/lock\n" + "\n".join(unmet)


def test_the_lock_pins_the_installer_and_the_build_backend() -> None:
    locked = lock_pins()
    assert {"pip", "setuptools", "wheel", "uv", "grpcio-tools"} <= set(locked)
    # setuptools builds the editables without isolation: it must be one the packages' build-system allows.
    for pyproject in PYPROJECTS:
        for requirement in tomllib.loads(pyproject.read_text(encoding="utf-8"))["build-system"]["requires"]:
            parsed = Requirement(requirement)
            assert parsed.specifier.contains(locked[canonicalize_name(parsed.name)]), (pyproject, requirement)


def test_the_environment_scripts_setup_made_is_the_lock() -> None:
    if not (Path(sys.prefix) / ".hodei-installed").is_file():
        pytest.skip(f"{sys.prefix} was not made by scripts/setup")
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()}
    differs = {name: (str(version), str(installed.get(name))) for name, version in lock_pins(
        f"{sys.version_info.major}.{sys.version_info.minor}").items() if installed.get(name) != version}
    assert not differs, f"installed differs from requirements/dev.txt (pin, installed): {differs}"


# -- the gRPC stubs ---------------------------------------------------------------------------------


def test_the_committed_stubs_are_what_the_proto_files_generate(tmp_path: Path) -> None:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gen-proto"), str(tmp_path)], capture_output=True,
                            text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr
    generated = sorted((tmp_path / "hodei" / "api" / "v1").iterdir())
    assert [p.name for p in generated] == sorted(p.name for p in STUBS.iterdir()
                                                 if p.name.endswith((".py", ".pyi")) and "_pb2" in p.name)
    for path in generated:
        committed = STUBS / path.name
        assert normalised(committed.read_text(encoding="utf-8")) == normalised(path.read_text(encoding="utf-8")), (
            f"{committed.name} is out of date: run scripts/gen-proto")


def test_a_newer_generator_alone_does_not_count_as_a_change() -> None:
    text = (STUBS / "daemons_pb2_grpc.py").read_text(encoding="utf-8")
    bumped = GRPC_STAMP.sub("GRPC_GENERATED_VERSION = '99.0.0'", text)
    assert bumped != text and normalised(bumped) == normalised(text)
    assert normalised(text.replace("class DaemonsStub", "class OtherStub")) != normalised(text)


def lower_bound(name: str) -> Version:
    for requirement in declared(ROOT / "pyproject.toml"):
        if canonicalize_name(requirement.name) == name:
            (bound,) = [s for s in requirement.specifier if s.operator == ">="]
            return Version(bound.version)
    raise AssertionError(f"the core does not depend on {name}")


@pytest.mark.parametrize("path", sorted(STUBS.glob("*_pb2*.py")), ids=lambda p: p.name)
def test_the_stubs_ask_for_no_more_than_the_cores_lower_bounds(path: Path) -> None:
    # A user with grpcio/protobuf at the core's declared minimum must be able to import the stubs.
    text = path.read_text(encoding="utf-8")
    if grpc := GRPC_STAMP.search(text):
        assert Version(grpc[1]) <= lower_bound("grpcio"), f"{path.name}: raise grpcio's bound in pyproject.toml"
    if protobuf := PROTOBUF_CHECK.search(text):
        stamped = Version(".".join(protobuf.group(2, 3, 4)))
        assert stamped <= lower_bound("protobuf"), f"{path.name}: raise protobuf's bound in pyproject.toml"
    assert GRPC_STAMP.search(text) or PROTOBUF_CHECK.search(text), f"{path.name} carries no version stamp"
