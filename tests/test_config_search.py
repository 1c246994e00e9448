"""Where is my config? Which hodei.toml and which database a command uses, from any folder.

hodei.toml is the first of: --config, $HODEI_CONFIG, ./hodei.toml, $XDG_CONFIG_HOME/hodei/hodei.toml,
/etc/hodei/hodei.toml, else built-in defaults; with no [database] url the database is
$XDG_DATA_HOME/hodei/hodei.db. Only `hodei db upgrade` and `hodei serve` create a database. Each test
runs the real console script in its own folders, with its own XDG homes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hodei import settings as settings_module
from hodei.settings import load_settings
from hodei.testing.serve import clean_environment, hodei_command


class Homes:
    """A user's XDG folders and a few working folders, and ``hodei`` run in one of them."""

    def __init__(self, root: Path):
        self.root = root
        self.config_home = root / "xdg-config"
        self.data_home = root / "xdg-data"
        self.env = clean_environment(XDG_CONFIG_HOME=str(self.config_home), XDG_DATA_HOME=str(self.data_home))

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def user_config(self) -> Path:
        return self.config_home / "hodei" / "hodei.toml"

    @property
    def user_database(self) -> Path:
        return self.data_home / "hodei" / "hodei.db"

    def run(self, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*hodei_command(), *args], cwd=cwd, env={**self.env, **env}, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)

    def ok(self, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = self.run(cwd, *args, **env)
        assert done.returncode == 0, f"hodei {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return done

    def show(self, cwd: Path, *args: str, **env: str) -> Any:
        return json.loads(self.ok(cwd, *args, "config", "show", "-o", "json", **env).stdout)


@pytest.fixture
def homes(tmp_path: Path) -> Homes:
    return Homes(tmp_path)


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def test_the_search_order(homes: Homes) -> None:
    work = homes.folder("work")
    elsewhere = homes.folder("elsewhere")
    user = write(homes.user_config, '[health]\ntimeout_seconds = 2.0\n')
    local = write(work / "hodei.toml", '[health]\ntimeout_seconds = 3.0\n')
    named = write(homes.root / "named.toml", '[health]\ntimeout_seconds = 4.0\n')
    option = write(homes.root / "option.toml", '[health]\ntimeout_seconds = 5.5\n')

    shown = homes.show(elsewhere)  # no ./hodei.toml here: the user's file
    assert (shown["source"], shown["settings"]["health"]["timeout_seconds"]) == (str(user), 2.0)
    assert "XDG_CONFIG_HOME" in shown["found_by"]
    shown = homes.show(work)  # ./hodei.toml wins over the user's
    assert (shown["source"], shown["found_by"]) == (str(local), "the working directory")
    shown = homes.show(work, HODEI_CONFIG=str(named))
    assert (shown["source"], shown["found_by"]) == (str(named), "HODEI_CONFIG")
    shown = json.loads(homes.ok(work, "--config", str(option), "config", "show", "-o", "json",
                                HODEI_CONFIG=str(named)).stdout)
    assert (shown["source"], shown["found_by"]) == (str(option), "--config")
    assert shown["searched"][:2] == [str(work / "hodei.toml"), str(user)]
    # The test run keeps the host's /etc/hodei/hodei.toml out of reach (hodei.testing.hermetic).
    assert shown["searched"][-1] == os.environ["HODEI_SYSTEM_CONFIG"] != "/etc/hodei/hodei.toml"


def test_the_system_file_is_etc_hodei_unless_the_variable_names_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HODEI_SYSTEM_CONFIG")
    assert settings_module.search_path()[-1] == Path("/etc/hodei/hodei.toml")
    monkeypatch.setenv("HODEI_SYSTEM_CONFIG", "relative/hodei.toml")  # not a place: ignored
    assert settings_module.search_path()[-1] == Path("/etc/hodei/hodei.toml")
    monkeypatch.setenv("HODEI_SYSTEM_CONFIG", "/opt/hodei/etc/hodei.toml")
    assert settings_module.search_path()[-1] == Path("/opt/hodei/etc/hodei.toml")


def test_a_relative_xdg_config_home_is_ignored(homes: Homes) -> None:
    folder = homes.folder("work")
    write(folder / "rel" / "hodei" / "hodei.toml", "[health]\ntimeout_seconds = 2.0\n")
    shown = homes.show(folder, XDG_CONFIG_HOME="rel", HOME=str(homes.root / "home"))
    assert shown["source"] is None  # the XDG spec: a relative path is invalid
    assert str(homes.root / "home" / ".config" / "hodei" / "hodei.toml") in shown["searched"]


def test_the_system_file_comes_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = write(tmp_path / "etc" / "hodei" / "hodei.toml", "[health]\ntimeout_seconds = 7.0\n")
    monkeypatch.setenv("HODEI_SYSTEM_CONFIG", str(system))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HODEI_CONFIG", raising=False)
    loaded = load_settings()
    assert loaded.source == system and loaded.origin is not None
    assert loaded.origin.config_from == "the system location"
    user = write(tmp_path / "xdg" / "hodei" / "hodei.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_settings().source == user  # the user's file comes before the system's


def test_without_settings_every_folder_shares_the_per_user_database(homes: Homes) -> None:
    first, second = homes.folder("a"), homes.folder("b")
    shown = homes.show(first)
    assert shown["source"] is None and shown["found_by"] == "built-in defaults"
    assert shown["database"] == {"url": f"sqlite:///{homes.user_database}", "exists": False,
                                 "from": "the per-user default ([database] url not set)"}
    homes.ok(first, "db", "upgrade")
    assert homes.user_database.is_file()
    homes.ok(first, "providers", "add", "shared", "--type", "docker")
    listed = json.loads(homes.ok(second, "providers", "list", "-o", "json").stdout)
    assert [p["name"] for p in listed] == ["shared"]
    assert files_under(first) == files_under(second) == set()


@pytest.mark.parametrize("args", [
    ["providers", "list"], ["providers", "show", "x"], ["select"], ["explain", "x"], ["workers", "list"],
    ["providers", "check"], ["db", "current"], ["providers", "history", "x"],
])
def test_a_missing_database_is_named_with_the_settings_and_never_created(homes: Homes, args: list[str]) -> None:
    folder = homes.folder("somewhere")
    done = homes.run(folder, *args)
    assert done.returncode == 1, done
    message = done.stderr.strip()
    assert message.count("\n") == 0 and message.startswith("hodei: error: "), message
    assert f"{homes.user_database} does not exist" in message
    assert "`hodei db upgrade` creates it" in message
    # ... and says which settings named it, so `db upgrade` is not run in the wrong place.
    assert "built-in defaults" in message and str(folder) in message and str(homes.config_home / "hodei") in message
    assert files_under(folder) == set()
    assert not homes.data_home.exists()


def test_read_only_commands_leave_no_database_beside_a_config_file(homes: Homes) -> None:
    folder = homes.folder("project")
    write(folder / "hodei.toml", '[database]\nurl = "sqlite:///var/hodei.db"\n')
    for args in (["providers", "list"], ["config", "show"], ["db", "current"], ["plugins"]):
        homes.run(folder, *args)
    assert files_under(folder) == {"hodei.toml"}
    upgraded = homes.ok(folder, "db", "upgrade")
    assert str(folder / "var" / "hodei.db") in upgraded.stdout
    assert str(folder / "hodei.toml") in upgraded.stdout  # which settings named it


def test_a_relative_database_path_is_taken_from_the_config_files_folder(homes: Homes) -> None:
    project = homes.folder("project")
    config = write(project / "etc" / "hodei.toml", '[database]\nurl = "sqlite:///../var/hodei.db"\n')
    expected = f"sqlite:///{project / 'var' / 'hodei.db'}"
    for cwd in (project, homes.folder("elsewhere"), project / "etc"):
        shown = homes.show(cwd, HODEI_CONFIG=str(config))
        assert shown["database"]["url"] == expected, cwd
        assert shown["database"]["from"] == f"[database] url of {config}"
    # One given on the command line or in the environment is taken from the working directory.
    elsewhere = homes.folder("elsewhere")
    shown = homes.show(elsewhere, HODEI_CONFIG=str(config), HODEI_DATABASE_URL="sqlite:///mine.db")
    assert shown["database"]["url"] == f"sqlite:///{elsewhere / 'mine.db'}"
    assert shown["database"]["from"] == "HODEI_DATABASE_URL"


def test_config_show_in_words(homes: Homes) -> None:
    folder = homes.folder("work")
    text = homes.ok(folder, "config", "show").stdout
    assert text.startswith(f"# settings: built-in defaults, no hodei.toml in {folder}, ")
    assert f"# database: sqlite:///{homes.user_database} (from the per-user default" in text
    assert "does not exist yet: `hodei db upgrade` creates it" in text
    system = os.environ["HODEI_SYSTEM_CONFIG"]
    assert f"--config, HODEI_CONFIG, {folder / 'hodei.toml'}, {homes.user_config}, {system}" in text


def test_serve_without_migrating_creates_no_database(homes: Homes) -> None:
    folder = homes.folder("daemon")
    done = homes.run(folder, "serve", "--no-migrate")
    assert done.returncode == 1
    assert "does not exist" in done.stderr and str(homes.user_database) in done.stderr
    assert not homes.data_home.exists() and files_under(folder) == set()
