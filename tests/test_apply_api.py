"""``hodei providers apply`` through the daemon's API (``ApplyProviders``) and on the database: the same
changes, printed byte for byte the same.

Two databases start equal, each served by its own ``hodei serve``; every step of a GitOps session
(dry run, apply, re-apply unchanged, a change with a secret, prune, a refused file) runs through
``--server`` on one and on the database directly on the other, and must print the same bytes, exit
the same, and leave the two fleets the same. The API itself: all or nothing, a dry run writes
nothing, and the daemon selects with what was applied at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.cli import main
from hodei.testing.serve import Served, start

SECRET = "registry-pa55-4d2e"
SECRET_2 = "registry-pa55-rotated-81f0"


def docker(name: str, password: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider_type": "docker", "config": {
        "socket_path": "/nonexistent/docker.sock", "default_image": "registry.example.com/worker:1",
        "registry_auth": {"username": "ci", "password": password}}, **fields}


def static(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider_type": "static", "config": {"hang": True}, **fields}


FIRST = [static("alpha", priority=5, required_labels={"z": "1", "a": "2"}), docker("registry", SECRET)]
SECOND = [static("alpha", priority=7, required_labels={"z": "1", "a": "2"}, allowed_regions=["eu-west-1"]),
          docker("registry", SECRET_2), static("gamma", max_workers=3)]
ONLY_ALPHA = [SECOND[0]]
REFUSED = [static("delta"), {"name": "epsilon", "provider_type": "static", "config": {"latency_ms": -1}},
           {"name": "zeta", "provider_type": "static", "priority": "high"}]


class Side:
    """One database, its daemon, and ``hodei`` on it, through the API (``remote``) or not."""

    def __init__(self, folder: Path, remote: bool):
        self.folder, self.remote = folder, remote
        self.url = f"sqlite:///{folder / 'hodei.db'}"
        self.config = folder / "hodei.toml"
        self.config.write_text(
            f'[database]\nurl = "{self.url}"\n[plugins]\nallow = ["static", "docker"]\n'
            '[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
            '[health]\ninterval_seconds = 3600.0\ntimeout_seconds = 300.0\n'
            '[daemon]\npoll_seconds = 0.05\nshutdown_grace_seconds = 1.0\n', encoding="utf-8")
        self.daemon: Served | None = None
        assert self.run_local("db", "upgrade").exit_code == 0

    def env(self, remote: bool) -> dict[str, str | None]:
        env: dict[str, str | None] = {"HODEI_CONFIG": str(self.config), "HODEI_DATABASE_URL": self.url,
                                      "HODEI_SERVER": None, "HODEI_TOKEN_FILE": None, "HODEI_TLS": None}
        if remote:
            assert self.daemon is not None and self.daemon.address
            env["HODEI_SERVER"] = self.daemon.address
            # A command that quietly skipped the API would fail here, not pass.
            env["HODEI_DATABASE_URL"] = f"sqlite:///{self.folder / 'nowhere' / 'hodei.db'}"
        return env

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env(self.remote), catch_exceptions=False)

    def run_local(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env(False), catch_exceptions=False)

    def fleet(self) -> list[dict[str, Any]]:
        """The providers as written (without ids, times and run-time state, which differ between sides)."""
        listed = json.loads(self.run_local("providers", "list", "-o", "json").stdout)
        return [{k: v for k, v in p.items() if k not in ("id", "created_at", "updated_at", "state", "status")}
                for p in listed]


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    remote, local = Side(tmp_path_factory.mktemp("remote"), True), Side(tmp_path_factory.mktemp("local"), False)
    daemons = [start(side.config) for side in (remote, local)]
    try:
        for side, daemon in zip((remote, local), daemons, strict=True):
            daemon.wait_ready()
            side.daemon = daemon
        yield remote, local
    finally:
        for daemon in daemons:
            daemon.stop()


def write(folder: Path, name: str, providers: list[dict[str, Any]], fmt: str = "json") -> str:
    path = folder / f"{name}.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(providers), encoding="utf-8")
    else:
        import tomli_w

        path.write_text(tomli_w.dumps({"providers": providers}), encoding="utf-8")
    return str(path)


def both(sides: tuple[Side, Side], tmp_path: Path, *args: str) -> Result:
    """Runs ``hodei`` with ``args`` on both sides; they must print and exit the same. Returns one result."""
    results = [side.run(*args) for side in sides]
    remote, local = results
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), (
        f"hodei {' '.join(args)} differs:\n--- through the API ({remote.exit_code})\n{remote.stdout}{remote.stderr}"
        f"--- on the database ({local.exit_code})\n{local.stdout}{local.stderr}")
    assert remote.stderr == local.stderr
    assert sides[0].fleet() == sides[1].fleet()
    return remote


def test_a_gitops_session_prints_the_same_through_the_api_and_on_the_database(
        sides: tuple[Side, Side], tmp_path: Path) -> None:
    first, second = write(tmp_path, "first", FIRST), write(tmp_path, "second", SECOND, "toml")
    only_alpha, refused = write(tmp_path, "only-alpha", ONLY_ALPHA), write(tmp_path, "refused", REFUSED)

    dry = both(sides, tmp_path, "providers", "apply", "-f", first, "--dry-run")
    assert dry.stdout == ("would create alpha\nwould create registry\n"
                          "dry run: 2 to create, 0 to update, 0 unchanged\n")
    assert sides[0].fleet() == [], "a dry run writes nothing"

    assert both(sides, tmp_path, "providers", "apply", "-f", first).stdout == (
        "created alpha\ncreated registry\n2 created, 0 updated, 0 unchanged\n")
    assert both(sides, tmp_path, "providers", "apply", "-f", first).stdout == (
        "unchanged alpha\nunchanged registry\n0 created, 0 updated, 2 unchanged\n")

    changed = both(sides, tmp_path, "providers", "apply", "-f", second, "--dry-run", "-o", "json")
    document = json.loads(changed.stdout)
    assert [(c["name"], c["action"]) for c in document["changes"]] == [
        ("alpha", "update"), ("registry", "update"), ("gamma", "create")]
    assert document["changes"][1]["fields"]["config"]["to"] == "*** (a secret changed)"
    applied = both(sides, tmp_path, "providers", "apply", "-f", second)
    assert "    priority: 5 -> 7\n" in applied.stdout and "1 created, 2 updated, 0 unchanged\n" in applied.stdout
    for output in (changed.stdout, applied.stdout):
        assert SECRET not in output and SECRET_2 not in output

    # Prune is opt-in: without it, the providers the file leaves out stay.
    assert both(sides, tmp_path, "providers", "apply", "-f", only_alpha).stdout == (
        "unchanged alpha\n0 created, 0 updated, 1 unchanged\n")
    assert both(sides, tmp_path, "providers", "apply", "-f", only_alpha, "--prune", "--dry-run").stdout == (
        "unchanged alpha\nwould delete gamma\nwould delete registry\n"
        "dry run: 0 to create, 0 to update, 1 unchanged, 2 to delete\n")
    assert [p["name"] for p in sides[0].fleet()] == ["alpha", "gamma", "registry"]
    assert both(sides, tmp_path, "providers", "apply", "-f", only_alpha, "--prune").stdout == (
        "unchanged alpha\ndeleted gamma\ndeleted registry\n0 created, 0 updated, 1 unchanged, 2 deleted\n")
    assert [p["name"] for p in sides[0].fleet()] == ["alpha"]

    before = sides[0].fleet()
    for extra in ([], ["--prune"], ["--dry-run"]):
        result = both(sides, tmp_path, "providers", "apply", "-f", refused, *extra)
        assert result.exit_code == 1 and result.stdout == ""
        assert "providers[1] (epsilon).config.latency_ms" in result.stderr
        assert "providers[2] (zeta).priority" in result.stderr
        assert sides[0].fleet() == before, "a refused file changes nothing"


def test_the_daemon_selects_with_what_was_applied_at_once(sides: tuple[Side, Side], tmp_path: Path) -> None:
    remote = sides[0]
    path = write(tmp_path, "fresh", [*ONLY_ALPHA, static("fresh", priority=100, required_labels={"pick": "me"})])
    assert remote.run("providers", "apply", "-f", path).exit_code == 0
    job = tmp_path / "job.json"
    job.write_text('{"required_labels": {"pick": "me"}}', encoding="utf-8")
    chosen = remote.run("select", "-r", str(job), "-o", "json")
    assert chosen.exit_code == 0, chosen.stdout + chosen.stderr
    assert json.loads(chosen.stdout)["selected"] == "fresh"
    pruned = remote.run("providers", "apply", "-f", write(tmp_path, "alpha", ONLY_ALPHA), "--prune")
    assert pruned.exit_code == 0
    assert remote.run("select", "-r", str(job)).exit_code == 3, "a pruned provider is out of selection at once"


@pytest.mark.parametrize("text, reason", [
    ("{", "providers_json: the request is not valid JSON"),
    # The reader every file goes through (hodei.documents), never a traceback or a silent last value:
    ("[" * 100_000 + "]" * 100_000, "providers_json: the request nests objects and lists more than 32 levels"),
    ('[{"name": "x", "provider_type": "static", "priority": ' + "9" * 5000 + "}]",
     "providers_json: the request holds a number too long to read"),
    ('[{"name": "x", "provider_type": "static", "priority": 1, "priority": 2}]',
     "providers_json: the request gives the key 'priority' twice at line 1 column 58"),
    ('{"name": "x"}', "providers_json: must be a JSON list of provider objects, got dict"),
    ('[{"name": "x", "provider_type": "static", "colour": "red"}]', "providers[0] (x).colour: unknown"),
])
def test_the_api_refuses_a_bad_request_as_invalid_argument_changing_nothing(
        sides: tuple[Side, Side], text: str, reason: str) -> None:
    remote = sides[0]
    before = remote.fleet()
    assert remote.daemon is not None and remote.daemon.address
    with grpc.insecure_channel(remote.daemon.address) as channel:
        stub = pb_grpc.ProviderServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ApplyProviders(pb.ApplyProvidersRequest(providers_json=text, prune=True), timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason in (refused.value.details() or "")
    assert remote.fleet() == before


def test_the_api_answers_each_change_with_its_fields_as_json(sides: tuple[Side, Side], tmp_path: Path) -> None:
    remote = sides[0]
    assert remote.daemon is not None and remote.daemon.address
    with grpc.insecure_channel(remote.daemon.address) as channel:
        stub = pb_grpc.ProviderServiceStub(channel)
        answer = stub.ApplyProviders(pb.ApplyProvidersRequest(
            providers_json=json.dumps([static("api-made", priority=2)]), dry_run=True), timeout=10)
    [change] = answer.changes
    assert (answer.dry_run, change.name, change.action, change.provider_id) == (True, "api-made", "create", "")
    fields = {f.field: (json.loads(f.before_json), json.loads(f.after_json)) for f in change.fields}
    assert fields["priority"] == (None, 2) and fields["config"] == (None, {"hang": True})
    assert "api-made" not in [p["name"] for p in remote.fleet()]
