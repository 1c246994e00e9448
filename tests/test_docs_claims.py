"""What the README and docs/ say Hodei does, checked against what it does, as a user meets it (the real
command in a subprocess). Each test quotes the passage it keeps true: a test that fails on the quote means
the doc changed, and the behaviour must be checked again with it."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from hodei.testing.serve import clean_environment, hodei_command, serve

ROOT = Path(__file__).resolve().parents[1]


def said(doc: str, passage: str) -> None:
    """``passage`` is in ``doc``, line breaks and indentation aside."""
    text = " ".join((ROOT / doc).read_text(encoding="utf-8").split())
    assert " ".join(passage.split()) in text, f"{doc} no longer says: {passage}"


def hodei(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hodei_command(), *args], capture_output=True, text=True, cwd=cwd,
                          env=clean_environment(), timeout=timeout)


# -- a busy metrics port stops the daemon ---------------------------------------------------------------------


def test_a_busy_metrics_port_exits_1_naming_it(tmp_path: Path) -> None:
    said("docs/metrics.md", "When the address cannot be bound (in use by another process), the daemon does not "
                            "start: it exits 1 before it is ready, naming the setting, the address and the process "
                            "holding it when that is visible")
    said("README.md", "a start-up failure: it exits 1 before it is ready, naming the setting, the address and the "
                      "process holding it when that is visible")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = tmp_path / "hodei.toml"
        config.write_text(f'[database]\nurl = "sqlite:///hodei.db"\n[api]\nlisten = "127.0.0.1:0"\n'
                          f'[metrics]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
        result = hodei("--config", str(config), "serve", cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"hodei: error: metrics endpoint \(\[metrics\] listen\) cannot listen on 127\.0\.0\.1:{port}: "
                        rf"Address already in use; it is held by \S+ \(pid {os.getpid()}\)", last), last
    assert "Traceback" not in result.stderr


# -- only `db upgrade` and `serve` create a SQLite database -----------------------------------------------------

READ_ONLY = [
    ["providers", "list"], ["providers", "show", "a"], ["providers", "history", "a"], ["providers", "check"],
    ["providers", "add", "a", "--type", "static"], ["providers", "disable", "a"], ["db", "current"], ["select"],
    ["explain", "a"], ["daemons"], ["workers", "list"], ["workers", "show", "w"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_no_other_command_creates_the_sqlite_file(tmp_path: Path, command: list[str]) -> None:
    said("docs/operations.md", "It is created **readable by its owner only** (0600), by `hodei db upgrade` and "
                               "`hodei serve`, and by no other command: any other command on a file that does not "
                               "exist fails, naming the file and the settings that named it, and creates nothing.")
    said("README.md", "Only `hodei db upgrade` and `hodei serve` (which migrates SQLite itself) create a database: "
                      "any other command on a SQLite file that does not exist fails, naming the file")
    database = tmp_path / "data" / "hodei.db"
    result = hodei("--database-url", f"sqlite:///{database}", *command, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"hodei: error: database sqlite:///{database} does not exist: "
                                    "`hodei db upgrade` creates it (settings: ")
    assert not database.exists() and not database.parent.exists()


def test_db_upgrade_and_serve_create_it_readable_by_its_owner_only(tmp_path: Path) -> None:
    upgraded = tmp_path / "upgraded.db"
    assert hodei("--database-url", f"sqlite:///{upgraded}", "db", "upgrade", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE(upgraded.stat().st_mode) == 0o600
    config = tmp_path / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///served.db"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n',
                      encoding="utf-8")
    with serve(config):
        assert stat.S_IMODE((tmp_path / "served.db").stat().st_mode) == 0o600


# -- exit codes --------------------------------------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'hodei.db'}"
    assert hodei("--database-url", url, "db", "upgrade", cwd=tmp_path).returncode == 0
    return url


def test_refused_input_exits_1_naming_the_field_and_usage_errors_exit_2(tmp_path: Path, database: str) -> None:
    said("README.md", "A refused input exits 1 with one line per problem, each naming the field "
                      "(`max_workers: must be at least 1, got 0`")
    said("README.md", "Usage errors exit 2 (an unknown option, a bad choice, a `--label` that is not `KEY=VALUE`)")
    refused = hodei("--database-url", database, "providers", "add", "p", "--type", "static", "--max-workers", "0",
                    cwd=tmp_path)
    assert (refused.returncode, refused.stderr.strip()) == (1, "hodei: error: provider 'p': max_workers: must be at "
                                                               "least 1, got 0")
    for usage in (["providers", "list", "--bogus"], ["providers", "list", "-o", "yaml"],
                  ["providers", "add", "p", "--type", "static", "--label", "nokv"]):
        assert hodei("--database-url", database, *usage, cwd=tmp_path).returncode == 2, usage
    listed = hodei("--database-url", database, "providers", "list", cwd=tmp_path)
    assert "p " not in listed.stdout, "a refused input changed nothing"


def test_nothing_fits_exits_3(tmp_path: Path, database: str) -> None:
    said("README.md", "`hodei select [-r FILE]` | which provider a job would get: tier, ranking, and every rejected "
                      "provider with the filters that excluded it (a dry run; exit 3 when nothing fits)")
    said("README.md", "what would make it fit (exit 3 when it does not fit)")
    env = {"HODEI_PLUGINS_ENABLE": "static"}
    run = subprocess.run([*hodei_command(), "--database-url", database, "providers", "add", "small", "--type",
                          "static", "--config", '{"capabilities": {"cpu": 1}}'], capture_output=True, text=True,
                         cwd=tmp_path, env={**clean_environment(), **env}, timeout=120)
    assert run.returncode == 0, run.stderr
    job = tmp_path / "job.toml"
    job.write_text("cpu = 2\n", encoding="utf-8")
    for command in (["select", "-r", str(job)], ["explain", "small", "-r", str(job)]):
        result = subprocess.run([*hodei_command(), "--database-url", database, *command], capture_output=True,
                                text=True, cwd=tmp_path, env={**clean_environment(), **env}, timeout=120)
        assert result.returncode == 3, (command, result.stderr)
        assert "too small" in result.stdout


def test_an_unknown_key_in_the_settings_is_an_error_naming_it(tmp_path: Path) -> None:
    said("README.md", "An unknown key in `hodei.toml` is an error naming it.")
    config = tmp_path / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///x.db"\n[health]\nintervall_seconds = 3\n', encoding="utf-8")
    result = hodei("--config", str(config), "config", "show", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"hodei: error: invalid settings in {config}: health.intervall_seconds: unknown key"


def test_every_command_has_help_and_all_but_three_have_an_output_format() -> None:
    said("README.md", "Every command has `--help`, and every command but `serve`, `config init` and `plugin new` "
                      "(they write files or run) has `-o table|json`")
    import click
    from hodei.cli import main

    def commands(group: click.Group, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
        found: dict[tuple[str, ...], click.Command] = {}
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found.update(commands(command, (*path, name)))
            else:
                found[(*path, name)] = command
        return found

    every = commands(main)
    assert len(every) > 20
    without = set()
    for path, command in every.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", ())}
        if "--output" not in options:
            without.add(" ".join(path))
        else:
            output = next(param for param in command.params if "--output" in getattr(param, "opts", ()))
            assert list(output.type.choices) == ["table", "json"], path
    assert without == {"serve", "config init", "plugin new"}
    result = subprocess.run([*hodei_command(), "config", "init", "--help"], capture_output=True, text=True,
                            env=clean_environment(), timeout=60)
    assert result.returncode == 0 and "Usage:" in result.stdout
