"""The first ``./scripts/run`` says what it is doing during the minutes of installation: ``scripts/setup``
prints a line before each long step and how far the long one is, and nothing at all once .venv is in
place. Run on a copy of the checkout with a stand-in Python whose pip prints what the real one prints
(no package index is needed), so the script's own logic is what is tested."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What `python -m venv DIR` makes: a python whose `-m pip install` logs its arguments and answers like pip.
FAKE_VENV_PYTHON = r"""#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../pip-calls"
if [[ " $* " == *" -r "* ]]; then
  lock=${@: -1}
  grep -E '^(-e )?[A-Za-z0-9./]' "$lock" | while read -r line _; do
    case $line in -e) echo "Obtaining file:///x";; *) echo "Collecting $line";; esac
  done
  echo "Installing collected packages: a, b"
  echo "Successfully installed a b"
fi
"""

FAKE_PYTHON = r"""#!/usr/bin/env bash
if [ "$1" = "--version" ]; then echo "Python 3.12.0"; exit 0; fi
[ "$1 $2" = "-m venv" ] || exit 9
mkdir -p "$3/bin"
cp "$(dirname "$0")/venv-python" "$3/bin/python"
"""


def checkout(tmp_path: Path) -> Path:
    copy = tmp_path / "checkout"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup", copy / "scripts" / "setup")
    (copy / "requirements").mkdir()
    shutil.copy2(ROOT / "requirements" / "dev.txt", copy / "requirements" / "dev.txt")
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for plugin in (ROOT / "plugins").iterdir():
        if (plugin / "pyproject.toml").exists():
            (copy / "plugins" / plugin.name).mkdir(parents=True)
            shutil.copy2(plugin / "pyproject.toml", copy / "plugins" / plugin.name / "pyproject.toml")
    for name, text in (("python3", FAKE_PYTHON), ("venv-python", FAKE_VENV_PYTHON)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return copy


def setup(copy: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(copy / "scripts" / "setup")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": str(tmp_path / "python3")})


def test_the_first_setup_says_what_it_does_before_each_long_step(tmp_path: Path) -> None:
    copy = checkout(tmp_path)
    first = setup(copy, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    lines = first.stderr.splitlines()
    calls = (copy / ".venv" / "pip-calls").read_text(encoding="utf-8").splitlines()
    assert len(calls) == 3
    total = sum(1 for line in (copy / "requirements" / "dev.txt").read_text(encoding="utf-8").splitlines()
                if line[:1].isalnum() or line[:1] in "./" or line.startswith("-e "))
    assert total > 100
    assert lines[0].startswith("setup: creating .venv with Python 3.12.0, then installing Hodei")
    assert "2-3 minutes the first time" in lines[0]
    assert lines[1].startswith("setup: 1/3 the installer: pip==")
    assert lines[2].startswith("setup: 2/3 the build backend: setuptools==")
    assert lines[3] == (f"setup: 3/3 Hodei and its {total} pinned requirements from requirements/dev.txt (the long "
                        "step; pip's own lines are hidden, its errors are not)")
    progress = [line for line in lines if line.endswith(" fetched")]
    assert progress == [f"setup:     {n}/{total} fetched" for n in range(25, total + 1, 25)]
    assert lines[-2] == "setup:     all fetched; installing them into .venv"
    assert lines[-1].startswith("setup: done in ") and lines[-1].endswith("s: .venv is ready")

    # Once installed, nothing to do and nothing said; a changed lock says why it installs again.
    again = setup(copy, tmp_path)
    assert (again.returncode, again.stderr) == (0, "")
    with (copy / "requirements" / "dev.txt").open("a", encoding="utf-8") as lock:
        lock.write("# touched\n")
    changed = setup(copy, tmp_path)
    assert changed.stderr.splitlines()[0] == ("setup: requirements/dev.txt or a pyproject.toml changed since .venv "
                                              "was installed: installing again")


def test_a_failing_install_fails_the_setup(tmp_path: Path) -> None:
    copy = checkout(tmp_path)
    failing = tmp_path / "venv-python"
    failing.write_text(FAKE_VENV_PYTHON.replace('echo "Successfully installed a b"',
                                                'echo "ERROR: no such version" >&2; exit 1'), encoding="utf-8")
    result = setup(copy, tmp_path)
    assert result.returncode != 0
    assert "ERROR: no such version" in result.stderr
    assert not (copy / ".venv" / ".hodei-installed").exists()
