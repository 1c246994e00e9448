"""The suite never reads or writes the host's or the user's Hodei settings and databases.

A part of the suite that runs ``hodei`` every way a test does (in-process, as a child, the daemon) runs
again here in a child pytest, on a machine made to look like a system install: every ``HODEI_*``
variable a user might have set, a ``~/.config/hodei/hodei.toml``, a per-user database, and a system-wide
``hodei.toml`` (on CI, the real ``/etc/hodei/hodei.toml`` too, when none is there).
Each of those names databases that would make a test fail if read, and none of them may change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Config search and database creation as a child process; the CLI in-process; the daemon as a user starts it.
PART = ["tests/test_config_search.py", "tests/test_cli.py", "tests/test_serve_subprocess.py"]
# What a poisoned hodei.toml says: a test that read it would find the three provider types denied and a
# database that is not one.
POISON_TOML = '[plugins]\ndeny = ["docker", "kubernetes", "lambda", "static"]\n[database]\nurl = "sqlite:///{db}"\n'
NOT_A_DATABASE = b"this is the user's own database: a test that opens it fails, one that writes it is caught\n"


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def poisoned_install(root: Path) -> tuple[dict[str, str], list[Path]]:
    """The environment and files of a user with a system install; returns (environment, files to watch)."""
    files = []

    def put(path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files.append(path)
        return path

    user_db = put(root / "data" / "hodei" / "hodei.db", NOT_A_DATABASE)
    put(root / "config" / "hodei" / "hodei.toml", POISON_TOML.format(db=user_db).encode())
    system = put(root / "etc" / "hodei" / "hodei.toml", POISON_TOML.format(db=put(root / "var" / "hodei.db",
                                                                                  NOT_A_DATABASE)).encode())
    named = put(root / "named.toml", POISON_TOML.format(db=user_db).encode())
    token = put(root / "token", b"the user's own token\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HODEI_", "XDG_", "PYTEST_"))}
    environment.update({
        "XDG_CONFIG_HOME": str(root / "config"), "XDG_DATA_HOME": str(root / "data"),
        "HODEI_SYSTEM_CONFIG": str(system), "HODEI_CONFIG": str(named),
        "HODEI_DATABASE_URL": f"sqlite:///{user_db}", "HODEI_SERVER": "127.0.0.1:9",
        "HODEI_TOKEN_FILE": str(token), "HODEI_PLUGINS_ENABLE": "no-such-plugin",
    })
    return environment, files


def test_a_system_install_and_a_users_settings_change_nothing_in_the_suite(tmp_path: Path) -> None:
    root = tmp_path / "install"
    environment, files = poisoned_install(root)
    before = snapshot(root)
    etc = Path("/etc/hodei/hodei.toml")
    made_etc = False
    # A real one on CI, as root (not on a workstation, where other runs of older checkouts might see it).
    if os.environ.get("CI") and not etc.parent.exists() and os.access("/etc", os.W_OK):
        etc.parent.mkdir()
        etc.write_text(POISON_TOML.format(db=root / "var" / "hodei.db"), encoding="utf-8")
        made_etc = True
    inner = Path(tempfile.mkdtemp(prefix="hodei-h-"))  # short: the daemon tests bind AF_UNIX sockets in it
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "--basetemp",
             str(inner / "t"), "-k", "not postgres", *PART],
            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900)
        etc_after = etc.read_text(encoding="utf-8") if made_etc else None
    finally:
        shutil.rmtree(inner, ignore_errors=True)
        if made_etc:
            shutil.rmtree(etc.parent)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
    assert snapshot(root) == before, "a test wrote the user's or the system's Hodei files"
    assert sorted(p for p in root.rglob("*") if p.is_file()) == sorted(files)
    if made_etc:
        assert etc_after == POISON_TOML.format(db=root / "var" / "hodei.db")


def test_isolation_keeps_only_the_suites_own_variables() -> None:
    # The outer run was isolated by the plugin's hook, before this module was imported: nothing of the
    # caller's survives here (HODEI_SYSTEM_CONFIG exists only if the hook ran).
    names = {name for name in os.environ if name.startswith("HODEI_")}
    allowed = {"HODEI_REQUIRE_BACKENDS", "HODEI_SYSTEM_CONFIG", "HODEI_PLUGINS_ENABLE"}
    assert {name for name in names if not name.startswith("HODEI_TEST_")} <= allowed
    assert os.environ["HODEI_PLUGINS_ENABLE"] == "static"  # tests/conftest.py's, set after the clean-up
    assert not Path(os.environ["HODEI_SYSTEM_CONFIG"]).exists()
