"""Every command that works both on the database and through ``--server`` prints the same.

A real ``hodei serve`` (a process) serves a database; ``hodei`` runs each command twice, once on that
database directly and once through the daemon's API (its own database URL then leads nowhere, so a
command that quietly skipped the API would fail), and standard output must be byte for byte the same,
with the same exit code, in ``-o table`` and ``-o json``. Nothing is scrubbed from the output:

* A read-only command runs once per mode against the same state: the "read" database's providers and
  workers are made before its daemon starts, its first health checks recorded, then nothing changes.
* A write runs in one mode on a target prepared for it in the "write" database (served by a daemon
  of its own), then what it wrote is read back in both modes, which must agree; its ``-o json``
  output must be exactly what that read prints (for ``delete``: what it printed before), so both
  modes print the same document. The provider writes' table sentences are compared across modes on
  a target of the same name (only ``add``'s fresh id is put in place, the exact value read back); a
  worker write's table must be exactly what ``workers show`` prints.
* ``providers check`` prints how long each check took, a time measured anew by each run: only that
  number is put in place before its output is compared (after checking it is there).
* Labels and annotations written out of order (z=1, a=2, m=3, q=4, b=5) must print the same in both
  modes.

The write targets' health checks hang (``"hang": true``, with a long ``[health] timeout_seconds``), so
the daemon never records a check on them while a test compares them. The list of commands compared
is checked against ``hodei.api.cli.REMOTE``, so a new remote command cannot be left out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hodei.api.cli import REMOTE
from hodei.cli import main
from hodei.testing import backend_unavailable
from hodei.testing.serve import Served, start

MODES = ("local", "remote")
FORMATS = ("table", "json")
HANG = '{"hang": true}'
# The requirements the comparisons use.
FITS = {"preferred_region": "eu-west-1", "required_labels": {"z": "1"}, "cpu": 0}
NOTHING_FITS = {"required_labels": {"team": "nobody"}, "cpu": 1}
POOL = {"required_labels": {"role": "pool"}}
# A job with its own worker spec (no image: the static providers run none), a secret among its variables.
SPEC = {**FITS, "env": {"Z_LAST": "1", "A_FIRST": "2"}, "secret_env": {"API_KEY": "hidden-value"},
        "labels": {"team": "data"}, "timeout_seconds": 86400}
POOL_SPEC = {**POOL, **{k: v for k, v in SPEC.items() if k not in FITS}}
# Labels and annotations written out of order (five of each, so no order comes out right by chance).
OUT_OF_ORDER = [option for key, value in (("z", "1"), ("a", "2"), ("m", "3"), ("q", "4"), ("b", "5"))
                for option in ("--label", f"{key}={value}", "--annotation", f"{key * 2}={value}")]


# -- a database, a daemon on it, and the CLI in both modes -------------------------------------------


@dataclass
class World:
    url: str
    folder: Path
    config: Path
    daemon: Served | None = None
    context: dict[str, Any] = field(default_factory=dict)

    def env(self, mode: str) -> dict[str, str | None]:
        env: dict[str, str | None] = {"HODEI_CONFIG": str(self.config), "HODEI_DATABASE_URL": self.url,
                                      "HODEI_SERVER": None, "HODEI_TOKEN_FILE": None, "HODEI_TLS": None}
        if mode == "remote":
            assert self.daemon is not None
            env["HODEI_SERVER"] = self.daemon.address
            # A command that quietly went to the database instead of the API would fail, not pass.
            env["HODEI_DATABASE_URL"] = f"sqlite:///{self.folder / 'no-such-folder' / 'hodei.db'}"
        return env

    def run(self, mode: str, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env(mode), catch_exceptions=False)

    def ok(self, *args: str) -> str:
        """Setting up: on the database directly; must succeed."""
        result = self.run("local", *args)
        assert result.exit_code == 0, f"hodei {' '.join(args)} ({result.exit_code}): {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))

    def forget(self, name: str) -> None:
        self.run("local", "providers", "delete", name)  # absent already: fine

    def path(self, name: str) -> str:
        return str(self.folder / name)


def settings(url: str) -> str:
    return (f'[database]\nurl = "{url}"\n'
            '[plugins]\nallow = ["static"]\n'
            '[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
            # One round of checks at start, then none while the tests run; a hanging check hangs on.
            '[health]\ninterval_seconds = 3600.0\ntimeout_seconds = 300.0\n'
            # Requests seeded in the placement queue stay while the tests run (nobody waits for them).
            '[workers]\nreconcile_seconds = 3600.0\nqueue_claim_grace_seconds = 86400.0\n'
            '[daemon]\npoll_seconds = 0.05\nshutdown_grace_seconds = 1.0\n')


# The daemon and both modes read the very same rows, so SQLite shows every difference between the modes;
# "postgres" runs it all again on PostgreSQL (about twice the time), where jsonb reorders the keys itself.
DATABASES = ["sqlite"]


@pytest.fixture(scope="module", params=DATABASES)
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
    """Makes fresh databases (SQLite files, or PostgreSQL schemas dropped after the module). Module-scoped,
    so not the function-scoped ``hodei_postgres_url``; it fails the same way under HODEI_REQUIRE_BACKENDS."""
    if request.param == "sqlite":
        yield lambda: f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'hodei.db'}"
        return
    import sqlalchemy as sa
    from hodei.testing.databases import postgres_schema

    base = os.environ.get("HODEI_TEST_POSTGRES_URL")
    if not base:
        backend_unavailable("PostgreSQL backend not configured: set HODEI_TEST_POSTGRES_URL "
                            "(e.g. postgresql+psycopg://hodei:hodei@127.0.0.1:5432/hodei_test)")
    with contextlib.ExitStack() as schemas:
        def schema() -> str:
            try:
                return schemas.enter_context(postgres_schema(base, "modes", connect_timeout=5))
            except sa.exc.OperationalError as exc:
                backend_unavailable(f"PostgreSQL backend unreachable: {str(exc.orig).splitlines()[0]}")
                raise
        yield schema


def make_world(url: str, folder: Path) -> World:
    config = folder / "hodei.toml"
    config.write_text(settings(url), encoding="utf-8")
    world = World(url, folder, config)
    for name, content in (("fits.json", FITS), ("none.json", NOTHING_FITS), ("pool.json", POOL),
                          ("spec.json", SPEC), ("pool-spec.json", POOL_SPEC)):
        (folder / name).write_text(json.dumps(content), encoding="utf-8")
    world.ok("db", "upgrade")
    return world


def settle(world: World, names: list[str]) -> None:
    """Until the daemon's first checks of ``names`` are in the database and nothing moves any more."""
    deadline = time.monotonic() + 30
    previous = None
    while True:
        listed = world.ok("providers", "list", "-o", "json")
        checked = {p["name"] for p in json.loads(listed) if p["state"]["health"] is not None}
        if set(names) <= checked and listed == previous:
            return
        assert time.monotonic() < deadline, f"checks of {names} not recorded: {checked}"
        previous = listed
        time.sleep(0.15)


def fill_read_world(world: World) -> None:
    """Providers (one with labels and annotations written out of order) and workers, one ended."""
    world.ok("providers", "add", "labelled", "--type", "static", "--priority", "50", "--max-workers", "8",
             "--preferred-region", "eu-west-1", "--allowed-region", "us-east-1", "--allowed-region", "eu-west-1",
             *OUT_OF_ORDER, "--config", '{"latency_ms": 1}')
    world.ok("providers", "add", "plain", "--type", "static", "--priority", "10", "--label", "z=1")
    world.ok("providers", "add", "down", "--type", "static", "--label", "z=1",
             "--config", '{"health": "Unhealthy", "health_reason": "socket refused"}')
    world.ok("providers", "add", "parked", "--type", "static", "--label", "z=1")
    world.ok("providers", "maintenance", "parked", "--reason", "upgrading")
    world.ok("providers", "add", "off", "--type", "static", "--status", "DISABLED")
    kept = world.json("workers", "provision", "-r", world.path("fits.json"))
    ended = world.json("workers", "provision", "-r", world.path("fits.json"))
    world.ok("workers", "release", ended["id"], "--reason", "finished")
    with_spec = world.json("workers", "provision", "-r", world.path("spec.json"))
    world.context.update(worker=kept["id"], ended=ended["id"], spec=with_spec["id"])
    # Two requests waiting (left by a daemon that went away), for `hodei queue`: they keep no provider.
    from hodei.database import create_engine
    from hodei.workers.queue_records import QueueRecords

    engine = create_engine(world.url)
    try:
        rows = QueueRecords(engine)
        later = datetime.now(UTC) + timedelta(days=30)
        for request_id, priority in (("batch-night", 0), ("urgent-fix", 7)):
            rows.join(request_id, priority, later, {**NOTHING_FITS, "priority": priority}, "daemon gone:1",
                      "no provider fits: 0/5 providers available: 5 missing label team=nobody")
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def worlds(databases: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, World]]:
    """Two databases, each served by its own ``hodei serve`` (started side by side):

    * read: providers and workers made before its daemon starts; once the daemon's first checks are
      recorded nothing changes it, so a read-only command sees the same state in both modes;
    * write: where the writes happen (``pool`` takes the workers), so they change nothing the read-only
      comparisons see, whatever order the tests run in.
    """
    read = make_world(databases(), tmp_path_factory.mktemp("read"))
    fill_read_world(read)
    write = make_world(databases(), tmp_path_factory.mktemp("write"))
    write.ok("providers", "add", "pool", "--type", "static", "--max-workers", "100", "--label", "role=pool")
    daemons = [start(world.config) for world in (read, write)]
    try:
        for world, daemon in zip((read, write), daemons, strict=True):
            daemon.wait_ready()
            world.daemon = daemon
        settle(read, ["labelled", "plain", "down", "parked"])
        settle(write, ["pool"])
        yield read, write
    finally:
        for daemon in daemons:
            daemon.stop()


@pytest.fixture
def read_world(worlds: tuple[World, World]) -> World:
    return worlds[0]


@pytest.fixture
def write_world(worlds: tuple[World, World]) -> World:
    return worlds[1]


# -- what is compared -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A read-only command: run once per mode against the same state."""

    id: str
    command: tuple[str, ...]
    args: Callable[[World], list[str]]


READS = [
    Read("providers list", ("providers", "list"), lambda w: ["providers", "list"]),
    Read("providers list --status", ("providers", "list"), lambda w: ["providers", "list", "--status", "ACTIVE"]),
    Read("providers show labels out of order", ("providers", "show"), lambda w: ["providers", "show", "labelled"]),
    Read("providers show unhealthy", ("providers", "show"), lambda w: ["providers", "show", "down"]),
    Read("providers show missing", ("providers", "show"), lambda w: ["providers", "show", "ghost"]),
    Read("providers history", ("providers", "history"), lambda w: ["providers", "history", "parked"]),
    Read("providers history health", ("providers", "history"), lambda w: ["providers", "history", "down"]),
    Read("providers history --limit", ("providers", "history"), lambda w: ["providers", "history", "parked",
                                                                           "--limit", "1"]),
    Read("select", ("select",), lambda w: ["select"]),
    Read("select fits", ("select",), lambda w: ["select", "-r", w.path("fits.json")]),
    Read("select nothing fits", ("select",), lambda w: ["select", "-r", w.path("none.json")]),
    Read("explain fits", ("explain",), lambda w: ["explain", "labelled", "-r", w.path("fits.json")]),
    Read("explain fits, not chosen", ("explain",), lambda w: ["explain", "plain", "-r", w.path("fits.json")]),
    Read("explain does not fit", ("explain",), lambda w: ["explain", "down", "-r", w.path("fits.json")]),
    Read("explain does not fit, resources", ("explain",), lambda w: ["explain", "plain", "-r",
                                                                     w.path("none.json")]),
    Read("workers list", ("workers", "list"), lambda w: ["workers", "list"]),
    Read("workers list --all", ("workers", "list"), lambda w: ["workers", "list", "--all"]),
    Read("workers list --limit", ("workers", "list"), lambda w: ["workers", "list", "--all", "--limit", "2"]),
    Read("workers show", ("workers", "show"), lambda w: ["workers", "show", w.context["worker"]]),
    Read("workers show ended", ("workers", "show"), lambda w: ["workers", "show", w.context["ended"]]),
    Read("workers show with a spec", ("workers", "show"), lambda w: ["workers", "show", w.context["spec"]]),
    Read("select with an image", ("select",), lambda w: ["select", "--image", "python:3.12", "--env", "A=1"]),
    Read("explain with a command", ("explain",), lambda w: ["explain", "plain", "--command", "run it"]),
    Read("daemons", ("daemons",), lambda w: ["daemons"]),
    Read("queue", ("queue",), lambda w: ["queue"]),
    Read("workers cancel of no such request", ("workers", "cancel"), lambda w: ["workers", "cancel", "no-such"]),
]


def differences(results: dict[str, Result]) -> str:
    local, remote = results["local"], results["remote"]
    if (local.exit_code, local.stdout) == (remote.exit_code, remote.stdout):
        return ""
    return (f"exit codes: local {local.exit_code}, remote {remote.exit_code}\n"
            f"--- local stdout\n{local.stdout}--- remote stdout\n{remote.stdout}"
            f"--- local stderr\n{local.stderr}--- remote stderr\n{remote.stderr}")


@pytest.mark.parametrize("output", FORMATS)
@pytest.mark.parametrize("case", READS, ids=[r.id for r in READS])
def test_read_only_commands_print_the_same(read_world: World, case: Read, output: str) -> None:
    args = [*case.args(read_world), "-o", output]
    results = {mode: read_world.run(mode, *args) for mode in MODES}
    problem = differences(results)
    assert not problem, f"hodei {' '.join(args)} differs between modes:\n{problem}"


@dataclass(frozen=True)
class Write:
    """A write. ``prepare(world, name)`` makes its target and returns a context (a worker's id, say);
    ``args(name, context)`` is the write; ``reads(name, context, written)`` the commands reading back what
    it wrote (``written``: the id of the worker it printed, if any)."""

    id: str
    command: tuple[str, ...]
    prepare: Callable[[World, str], Any]
    args: Callable[[str, Any], list[str]]
    reads: Callable[[str, Any, str | None], list[list[str]]]
    prints_before: bool = False  # its JSON is what the first read printed before the write (delete)
    prints_a_worker: bool = False  # its table is what `workers show` prints
    prints_changes: bool = False  # it prints what it changed (apply): compared across modes, not with a read
    measures: bool = False  # it prints how long something took (check): that number is put in place, as add's id


def fresh_provider(*options: str, status: str = "ACTIVE") -> Callable[[World, str], None]:
    def prepare(world: World, name: str) -> None:
        world.ok("providers", "add", name, "--type", "static", "--config", HANG, "--status", status, *options)
    return prepare


def cooling_provider(world: World, name: str) -> None:
    """A provider whose provisions failed three times in a row (``[cooldown] after_failures``): cooling down.
    Its health is checked (once, then not for an hour) before it fails, so nothing moves while it is read."""
    world.ok("providers", "add", name, "--type", "static", "--label", f"cool={name}",
             "--config", '{"fail_provision": "quota exceeded"}')
    settle(world, [name])
    job = world.path(f"{name}-job.json")
    Path(job).write_text(json.dumps({"required_labels": {"cool": name}}), encoding="utf-8")
    for _ in range(3):
        assert world.run("local", "workers", "provision", "-r", job).exit_code != 0
    assert world.json("providers", "show", name)["state"]["cooldown"]["until"] is not None


def checked_provider(world: World, name: str) -> None:
    """A provider that answers at once, once the daemon's own first check of it is recorded (so none lands
    while the modes are compared)."""
    world.ok("providers", "add", name, "--type", "static", "--label", "role=checked", "--max-workers", "3")
    deadline = time.monotonic() + 30
    while world.json("providers", "show", name)["state"]["health"] is None:
        assert time.monotonic() < deadline, f"the daemon never checked {name}"
        time.sleep(0.05)


def measured(text: str) -> str:
    """A check's output with the time each check took (TOOK, duration_seconds) put in place."""
    text = re.sub(r'"duration_seconds": [0-9.e-]+', '"duration_seconds": <took>', text)
    return re.sub(r"\b\d+\.\d\ds\b", "<took>", text)


def absent(world: World, name: str) -> None:
    """``providers add`` makes its own target."""


def show(name: str, _context: Any, _written: str | None) -> list[list[str]]:
    return [["providers", "show", name]]


def show_and_history(name: str, _context: Any, _written: str | None) -> list[list[str]]:
    return [["providers", "show", name], ["providers", "history", name]]


def provisioned(world: World, _name: str) -> str:
    return world.json("workers", "provision", "-r", world.path("pool.json"))["id"]


def apply_file(world: World, name: str) -> str:
    """A file that creates ``name`` (labels and annotations out of order)."""
    path = world.path(f"{name}.json")
    Path(path).write_text(json.dumps([{
        "name": name, "provider_type": "static", "config": {"hang": True}, "priority": 6,
        "required_labels": {"z": "1", "a": "2", "m": "3"}, "annotations": {"q": "4", "b": "5"}}]), encoding="utf-8")
    return path


def printed_worker(result: Result) -> str | None:
    try:
        printed = json.loads(result.stdout)
        return printed.get("id") if isinstance(printed, dict) else None
    except ValueError:  # the table starts with "id: ..."
        return next((line.split(":", 1)[1].strip() for line in result.stdout.splitlines()
                     if line.startswith("id:")), None)


WRITES = [
    Write("providers add", ("providers", "add"), absent,
          lambda n, _: ["providers", "add", n, "--type", "static", "--status", "DISABLED", "--priority", "3",
                        "--max-workers", "4", "--preferred-region", "eu-west-1", "--allowed-region", "us-east-1",
                        *OUT_OF_ORDER, "--config", '{"hang": true, "latency_ms": 1}'],
          show),
    Write("providers update", ("providers", "update"),
          fresh_provider("--label", "keep=1", "--label", "gone=x", "--annotation", "old=1"),
          lambda n, _: ["providers", "update", n, "--priority", "4", *OUT_OF_ORDER, "--remove-label", "gone",
                        "--remove-annotation", "old", "--merge-config", '{"latency_ms": 2}',
                        "--allowed-region", "us-east-1"],
          show),
    Write("providers delete", ("providers", "delete"), fresh_provider(*OUT_OF_ORDER),
          lambda n, _: ["providers", "delete", n], show, prints_before=True),
    Write("providers enable", ("providers", "enable"), fresh_provider(status="DISABLED"),
          lambda n, _: ["providers", "enable", n, "--reason", "back"], show_and_history),
    Write("providers disable", ("providers", "disable"), fresh_provider(),
          lambda n, _: ["providers", "disable", n, "--reason", "off"], show_and_history),
    Write("providers maintenance", ("providers", "maintenance"), fresh_provider(),
          lambda n, _: ["providers", "maintenance", n, "--reason", "patching"], show_and_history),
    Write("providers reset-cooldown", ("providers", "reset-cooldown"), cooling_provider,
          lambda n, _: ["providers", "reset-cooldown", n], show_and_history),
    Write("providers apply", ("providers", "apply"), apply_file,
          lambda n, path: ["providers", "apply", "-f", path], show, prints_changes=True),
    Write("providers check", ("providers", "check"), checked_provider,
          lambda n, _: ["providers", "check", n], show_and_history, prints_changes=True, measures=True),
    Write("workers provision", ("workers", "provision"), lambda world, name: world.path("pool.json"),
          lambda n, requirements: ["workers", "provision", "-r", requirements],
          lambda n, _, written: [["workers", "show", str(written)]], prints_a_worker=True),
    Write("workers provision with a spec", ("workers", "provision"), lambda world, name: world.path("pool-spec.json"),
          lambda n, requirements: ["workers", "provision", "-r", requirements],
          lambda n, _, written: [["workers", "show", str(written)]], prints_a_worker=True),
    Write("workers release", ("workers", "release"), provisioned,
          lambda n, worker: ["workers", "release", worker, "--reason", "done"],
          lambda n, worker, _: [["workers", "show", worker]], prints_a_worker=True),
]


@pytest.mark.parametrize("output", FORMATS)
@pytest.mark.parametrize("case", WRITES, ids=[w.id for w in WRITES])
def test_writes_print_the_same(write_world: World, case: Write, output: str) -> None:
    world = write_world
    name = f"{case.id.split()[-1]}-{output}"  # the same target name in both modes
    problems: list[str] = []
    sentences: dict[str, str] = {}
    codes: dict[str, int] = {}
    for mode in MODES:
        if mode != MODES[0] and case.command[0] == "providers":
            world.forget(name)  # what the first mode left
        context = case.prepare(world, name)
        before = world.run("local", *case.reads(name, context, None)[0], "-o", output) if case.prints_before else None
        args = [*case.args(name, context), "-o", output]
        result = world.run(mode, *args)
        codes[mode] = result.exit_code
        if result.exit_code != 0:
            problems.append(f"[written {mode}] hodei {' '.join(args)} exited {result.exit_code}: {result.stderr}")
            continue
        shown = before
        # What was written reads back the same in both modes.
        for read in case.reads(name, context, printed_worker(result)):
            read = [*read, "-o", output]
            results = {m: world.run(m, *read) for m in MODES}
            shown = shown or results["local"]
            if problem := differences(results):
                problems.append(f"[written {mode}] read back, hodei {' '.join(read)} differs between modes:\n{problem}")
        assert shown is not None
        if (output == "json" or case.prints_a_worker) and not case.prints_changes:
            # The write prints exactly the document (or the worker) the read prints.
            if result.stdout != shown.stdout:
                problems.append(f"[written {mode}] hodei {' '.join(args)} printed\n{result.stdout}"
                                f"but the read {'before' if before else 'after'} it prints\n{shown.stdout}")
        else:
            # A sentence naming the target: the same in both modes, but for add's fresh id (from `show`).
            fresh = [line.split(":", 1)[1].strip() for line in shown.stdout.splitlines() if line.startswith("id:")]
            sentences[mode] = result.stdout.replace(fresh[0], "<its id>") if fresh and not before else result.stdout
            if case.measures:
                assert measured(result.stdout) != result.stdout, "no time found where the check prints it"
                sentences[mode] = measured(sentences[mode])
    assert codes["local"] == codes["remote"], f"exit codes differ: {codes}\n" + "\n".join(problems)
    if len(sentences) == 2 and sentences["local"] != sentences["remote"]:
        problems.append(f"hodei {case.id} ... -o table printed\n--- local\n{sentences['local']}"
                        f"--- remote\n{sentences['remote']}")
    assert not problems, "\n\n".join(problems)


def test_every_remote_command_is_compared() -> None:
    """A command added to REMOTE (it works through --server) must be added to READS or WRITES."""
    covered = {case.command for case in [*READS, *WRITES]}
    missing = sorted(" ".join(command) for command in REMOTE - covered)
    assert not missing, f"commands that work through --server but are not compared here: {missing}"


def test_a_secret_variable_never_comes_back_in_either_mode(worlds: tuple[World, World]) -> None:
    read_world, write_world = worlds
    # Through the API: a worker with a secret variable provisioned by the write world's daemon.
    provisioned = write_world.run("remote", "workers", "provision", "-r", write_world.path("pool-spec.json"))
    assert provisioned.exit_code == 0 and "hidden-value" not in provisioned.stdout
    for world in worlds:
        assert world.daemon is not None and "hidden-value" not in world.daemon.log()
    for mode in MODES:
        for output in FORMATS:
            for args in (["workers", "show", read_world.context["spec"]], ["workers", "list", "--all"]):
                shown = read_world.run(mode, *args, "-o", output)
                assert shown.exit_code == 0 and "hidden-value" not in shown.stdout + shown.stderr
    table = read_world.run("remote", "workers", "show", read_world.context["spec"]).stdout
    assert "secret_env:      API_KEY=***\n" in table and "env:             A_FIRST=2, Z_LAST=1\n" in table
