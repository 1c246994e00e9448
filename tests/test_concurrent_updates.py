"""Concurrent ``hodei providers update`` never loses a change.

Twenty real ``hodei`` processes, started at once, each add one label to the same provider (and four
more remove one label each, in the same instant): on SQLite and on PostgreSQL directly, and through
``--server`` against a running ``hodei serve``. Afterwards the provider has all twenty labels and
none of the removed ones, or every process that lost a race exited non-zero saying it met a
concurrent change (never a traceback) and the change of every process that reported success is
there: a label added on one key is never undone by a concurrent update of another key, and a label
removed with ``--remove-label`` stays removed.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hodei.cli import main
from hodei.testing.serve import Served, clean_environment, hodei_command, serve

PROCESSES = 20
REMOVALS = 4
MODES = ("local-sqlite", "local-postgres", "server-sqlite")
# What a process that lost a race may say: the change met another one and was not written.
CONFLICT = re.compile(r"conflict|changed since|modified since|stale|concurrent(ly)?\s+(chang|modif|updat)"
                      r"|another change", re.IGNORECASE)


def write_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "hodei.toml"
    config.write_text('[plugins]\nallow = ["static"]\n'
                      '[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                      '[health]\ninterval_seconds = 3600.0\n'
                      '[workers]\nreconcile_seconds = 3600.0\n'
                      '[daemon]\npoll_seconds = 0.1\nshutdown_grace_seconds = 1.0\n', encoding="utf-8")
    return config


def in_process(config: Path, url: str, *args: str) -> str:
    """``hodei`` on the database directly, for setting up and for reading what was stored."""
    env = {"HODEI_CONFIG": str(config), "HODEI_DATABASE_URL": url, "HODEI_SERVER": None}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"hodei {' '.join(args)}: {result.stderr}"
    return result.stdout


@dataclass
class Target:
    """Where the racing processes point: ``env`` selects the mode; ``url`` is the database underneath."""

    mode: str
    config: Path
    url: str
    env: dict[str, str]

    def setup(self, *args: str) -> None:
        in_process(self.config, self.url, *args)

    def stored(self, name: str) -> dict:
        return json.loads(in_process(self.config, self.url, "providers", "show", name, "-o", "json"))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path, str]]:
    folder = tmp_path_factory.mktemp("served")
    config = write_config(folder)
    url = f"sqlite:///{folder / 'hodei.db'}"
    config.write_text(config.read_text() + f'[database]\nurl = "{url}"\n', encoding="utf-8")
    with serve(config) as served:  # on SQLite it migrates the schema itself
        yield served, config, url


@pytest.fixture(params=MODES)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    mode = request.param
    if mode == "server-sqlite":
        served, config, url = request.getfixturevalue("daemon")
        # The database URL leads nowhere: only the API can answer these processes.
        nowhere = f"sqlite:///{tmp_path / 'no-such-folder' / 'hodei.db'}"
        return Target(mode, config, url, clean_environment(HODEI_CONFIG=str(config), HODEI_SERVER=served.address,
                                                           HODEI_DATABASE_URL=nowhere))
    url = request.getfixturevalue("hodei_postgres_url" if mode == "local-postgres" else "hodei_sqlite_url")
    config = write_config(tmp_path / "etc")
    in_process(config, url, "db", "upgrade")
    return Target(mode, config, url, clean_environment(HODEI_CONFIG=str(config), HODEI_DATABASE_URL=url))


@dataclass
class Outcome:
    name: str
    options: list[str]
    code: int
    stdout: str
    stderr: str

    def command(self) -> str:
        return " ".join(["hodei providers update", self.name, *self.options])

    def last_line(self) -> str:
        return (self.stderr.strip().splitlines() or ["(nothing on standard error)"])[-1]


def race(target: Target, name: str, updates: list[list[str]]) -> list[Outcome]:
    """Every ``hodei providers update NAME *options`` as its own process, all started at once."""
    processes = [subprocess.Popen([*hodei_command(), "providers", "update", name, *options], env=target.env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for options in updates]
    outcomes = []
    try:
        for options, process in zip(updates, processes, strict=True):
            out, err = process.communicate(timeout=180)
            outcomes.append(Outcome(name, options, process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return outcomes


def judge(outcomes: list[Outcome], held: list[bool]) -> list[str]:
    """What is wrong with a race's outcome. ``held[i]``: did process i's change survive?"""
    problems = []
    for outcome in outcomes:
        if "Traceback" in outcome.stderr or "Traceback" in outcome.stdout:
            problems.append(f"{outcome.command()} printed a traceback:\n{outcome.stderr[-2000:]}")
    lost = [o for o, kept in zip(outcomes, held, strict=True) if o.code == 0 and not kept]
    if lost:
        succeeded = sum(o.code == 0 for o in outcomes)
        problems.append(f"{succeeded} of {len(outcomes)} updates reported success, but the change of {len(lost)} of "
                        f"them is not in the stored provider (lost updates): "
                        + ", ".join(" ".join(o.options) for o in lost))
    for outcome in outcomes:
        if outcome.code != 0 and not CONFLICT.search(outcome.stderr):
            problems.append(f"{outcome.command()} exited {outcome.code} without naming a conflict: "
                            f"{outcome.last_line()}")
    if not any(o.code == 0 for o in outcomes):
        problems.append("no update succeeded at all: the first writer of a race must win")
    return problems


def test_twenty_concurrent_label_updates_lose_nothing(target: Target) -> None:
    """20 processes each add a label; 4 more, started in the same instant, each remove one of the labels
    the provider had (racing with the others' --label on other keys, where a lost update is most likely)."""
    name = f"race-{target.mode}"
    removed = [f"r{i}" for i in range(REMOVALS)]
    target.setup("providers", "add", name, "--type", "static", "--label", "base=yes",
                 *[option for key in removed for option in ("--label", f"{key}=old")])
    updates = [["--label", f"k{i}=v{i}"] for i in range(PROCESSES)] + [["--remove-label", key] for key in removed]
    outcomes = race(target, name, updates)
    labels = target.stored(name)["required_labels"]
    held = [labels.get(f"k{i}") == f"v{i}" for i in range(PROCESSES)] + [key not in labels for key in removed]
    problems = judge(outcomes, held)
    if labels.get("base") != "yes":
        problems.append(f"the label no process touched (base=yes) is gone: {labels}")
    assert not problems, (f"[{target.mode}] stored labels: {sorted(labels)}\n" + "\n".join(problems))
