"""With ``--server`` (or HODEI_SERVER) no command runs on this machine: each goes through the API, or is
refused with exit 2 and says why.

Every command of the ``hodei`` app is run (they are listed from the click tree, so a new command is
covered the day it is added) with a local hodei.toml naming a working database that would answer, and a
server that does not: a command going through the API fails to reach it (exit 1, naming the server),
one without an API call is refused (exit 2), and nothing on this machine is read into an answer or
changed (no file of the folder changes, none is written).
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hodei.api.cli import REMOTE
from hodei.cli import main

# What each command needs to get past its own argument checks: a new command must be added here.
ARGUMENTS: dict[tuple[str, ...], list[str]] = {
    ("plugins",): [],
    ("plugin", "new"): ["demo", "--dir", "{folder}/scaffold"],
    ("db", "upgrade"): [],
    ("db", "current"): [],
    ("config", "init"): ["{folder}/written.toml", "--database-url", "postgresql+psycopg://u:PW@db.example/hodei"],
    ("config", "show"): [],
    ("providers", "list"): [],
    ("providers", "show"): ["local-only"],
    ("providers", "add"): ["added", "--type", "static"],
    ("providers", "update"): ["local-only", "--priority", "5"],
    ("providers", "delete"): ["local-only"],
    ("providers", "enable"): ["local-only"],
    ("providers", "disable"): ["local-only"],
    ("providers", "maintenance"): ["local-only"],
    ("providers", "apply"): ["-f", "{folder}/providers.json"],
    ("providers", "check"): [],
    ("providers", "history"): ["local-only"],
    ("providers", "reset-cooldown"): ["local-only"],
    ("select",): [],
    ("explain",): ["local-only"],
    ("serve",): [],
    ("workers", "provision"): ["--wait", "1s"],  # a waiting client retries an unreachable server, then says so
    ("workers", "release"): ["w-1"],
    ("workers", "list"): [],
    ("workers", "show"): ["w-1"],
    ("workers", "cancel"): ["r-1"],
    ("queue",): [],
    ("daemons",): [],
}


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command of the app (not its groups), by path."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


COMMANDS = sorted(commands(main))


def test_every_command_is_tried() -> None:
    missing = [" ".join(path) for path in COMMANDS if path not in ARGUMENTS]
    assert not missing, f"add the arguments of these commands to ARGUMENTS: {missing}"
    assert not REMOTE - set(COMMANDS), f"REMOTE names commands that do not exist: {REMOTE - set(COMMANDS)}"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | None]]:
    """A machine whose own settings and database work (a command run locally would succeed), the
    environment naming them, and a --server that nobody answers."""
    folder = tmp_path_factory.mktemp("local")
    database = folder / "hodei.db"
    busy = socket.socket()  # `serve`, were it to run, would stop at once on its metrics port
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    (folder / "hodei.toml").write_text(
        f'[database]\nurl = "sqlite:///{database}"\n[plugins]\nenable = ["static"]\n'
        f'[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:{busy.getsockname()[1]}"\n',
        encoding="utf-8")
    (folder / "providers.json").write_text(json.dumps([{"name": "applied", "provider_type": "static"}]),
                                           encoding="utf-8")
    env: dict[str, str | None] = {"HODEI_CONFIG": str(folder / "hodei.toml"), "HODEI_DATABASE_URL": None,
                                  "HODEI_SERVER": None, "HODEI_TOKEN_FILE": None, "HODEI_TLS": None}
    runner = CliRunner()
    for args in (["db", "upgrade"], ["providers", "add", "local-only", "--type", "static"]):
        result = runner.invoke(main, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
    shown = runner.invoke(main, ["providers", "list"], env=env, catch_exceptions=False)
    assert "local-only" in shown.stdout  # the local database answers
    env["folder"] = str(folder)
    env["HODEI_SERVER"] = f"127.0.0.1:{_closed_port()}"
    try:
        yield env
    finally:
        busy.close()


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_no_command_runs_locally_with_server(local: dict[str, str | None], path: tuple[str, ...]) -> None:
    folder = Path(str(local["folder"]))
    env = {k: v for k, v in local.items() if k != "folder"}
    server = str(env["HODEI_SERVER"])
    before = _snapshot(folder)
    arguments = [a.replace("{folder}", str(folder)) for a in ARGUMENTS[path]]
    result = CliRunner().invoke(main, [*path, *arguments], env=env, catch_exceptions=False)
    if path in REMOTE:
        # Through the API: it tried the server, which does not answer.
        assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
        assert f"cannot reach the Hodei server at {server}" in result.stderr
    else:
        assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
        assert f"`hodei {' '.join(path)}` has no API call, so it does not run with --server" in result.stderr
    assert "local-only" not in result.stdout + result.stderr
    assert _snapshot(folder) == before  # nothing read or written here changed a byte, nothing was added


def test_the_server_option_is_refused_alike(local: dict[str, str | None]) -> None:
    env = {k: v for k, v in local.items() if k not in ("folder", "HODEI_SERVER")}
    given = CliRunner().invoke(main, ["--server", str(local["HODEI_SERVER"]), "db", "current"], env=env)
    assert given.exit_code == 2 and "`hodei db current` has no API call" in given.stderr
    assert given.stdout == ""


@pytest.mark.parametrize("path", [("db", "upgrade"), ("config", "init"), ("serve",)])
def test_help_of_a_refused_command_still_works(local: dict[str, str | None], path: tuple[str, ...]) -> None:
    env = {k: v for k, v in local.items() if k != "folder"}
    result = CliRunner().invoke(main, [*path, "--help"], env=env)
    assert result.exit_code == 0 and "Usage:" in result.stdout
