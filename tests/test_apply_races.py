"""Writers racing one another on the same providers, on SQLite and PostgreSQL, with the interleaving
forced by hooks rather than left to chance.

- Two ``apply --prune`` of disjoint files at once: the table ends as exactly one file says (the
  other's prune is never lost).
- Two plain applies creating the same new names at once both succeed (apply is create-or-update),
  and so does an apply racing ``providers add`` of one of its names.
- An update or a status change whose provider is deleted right after it committed is answered as
  done; the health writer counts results of a provider deleted the same way without failing.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hodei import database
from hodei.domain import HealthResult, ProviderStatus
from hodei.plugins import HodeiPluginManager
from hodei.provider_change import ProviderChange
from hodei.services.providers import LocalProviders
from hodei.storage.health_results import Result, record_results
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from sqlmodel import Session

# How long the first writer waits, inside its transaction, for the second to reach the same point.
# Without serialization the second arrives at once; with it, it never can, and the wait runs out.
MEET_SECONDS = 2.0


def static(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider_type": "static", "config": {"type": "static"}, **fields}


@pytest.fixture
def second_store(hodei_store: Store, hodei_pm: HodeiPluginManager) -> Iterator[Store]:
    """Another store on the same database: another connection pool, as another CLI process has."""
    other = Store(database.create_engine(str(hodei_store.engine.url.render_as_string(hide_password=False))),
                  hodei_pm)
    yield other
    other.close()


def names(store: Store) -> set[str]:
    return {p.name for p in store.all()}


def meeting_inside_apply(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Each apply, once it has read the table in its transaction, waits (up to MEET_SECONDS) until
    two applies have read it. Returns how many met: 2 means both read before either wrote."""
    arrived = threading.Semaphore(0)
    count = {"n": 0}
    lock = threading.Lock()
    original = Store._parse_all

    def parse_all(self: Store, documents: Any, existing: Any) -> Any:
        with lock:
            count["n"] += 1
        arrived.release()
        deadline = datetime.now(UTC).timestamp() + MEET_SECONDS
        while count["n"] < 2 and datetime.now(UTC).timestamp() < deadline:
            threading.Event().wait(0.01)
        return original(self, documents, existing)

    monkeypatch.setattr(Store, "_parse_all", parse_all)
    return lambda: count["n"]


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads at once; each one's answer or the exception it raised."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int, call: Callable[[], Any]) -> None:
        start.wait()
        try:
            results[index] = call()
        except Exception as exc:  # the test asserts on it
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_prunes_of_disjoint_files_end_as_exactly_one_file(
        hodei_store: Store, second_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    hodei_store.apply([static("old-1"), static("old-2")])
    file_a = [static("a-1"), static("a-2")]
    file_b = [static("b-1"), static("b-2")]
    met = meeting_inside_apply(monkeypatch)

    results = run_together(lambda: hodei_store.apply(file_a, prune=True),
                           lambda: second_store.apply(file_b, prune=True))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert met() == 2  # both ran; the hook let the second in only once the first had committed
    assert names(hodei_store) in ({"a-1", "a-2"}, {"b-1", "b-2"})
    # The apply that ran second saw the first one's providers, and deleted them.
    deleted = [{c.name for c in changes if c.action == "delete"} for changes in results]
    assert {"a-1", "a-2"} in deleted or {"b-1", "b-2"} in deleted


def test_two_applies_creating_the_same_names_both_succeed(
        hodei_store: Store, second_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = [static("new-1", priority=5), static("new-2")]
    meeting_inside_apply(monkeypatch)

    results = run_together(lambda: hodei_store.apply(documents), lambda: second_store.apply(documents))

    assert not [r for r in results if isinstance(r, Exception)], results
    actions = sorted(tuple(c.action for c in changes) for changes in results)
    assert actions == [("create", "create"), ("unchanged", "unchanged")]
    assert {p.name: p.priority for p in hodei_store.all()} == {"new-1": 5, "new-2": 0}


def test_an_apply_racing_an_add_of_one_of_its_names_updates_it(
        hodei_store: Store, second_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """`providers add` (or CreateProvider) commits a name after the apply read the table: the apply
    runs again and updates that provider instead of failing "exists already"."""
    if hodei_store.engine.dialect.name == "sqlite":
        pytest.skip("on SQLite the add waits for the apply's write lock: it cannot commit in between")
    original = Store._parse_all
    added: list[Any] = []

    def parse_all(self: Store, documents: Any, existing: Any) -> Any:
        if not added:
            added.append(second_store.create(static("taken", priority=1)))
        return original(self, documents, existing)

    monkeypatch.setattr(Store, "_parse_all", parse_all)
    changes = hodei_store.apply([static("taken", priority=9), static("free")])

    assert {c.name: c.action for c in changes} == {"taken": "update", "free": "create"}
    assert hodei_store.get("taken").priority == 9


def deleting_after_commit(monkeypatch: pytest.MonkeyPatch, other: Store, name: str) -> list[Any]:
    """The first commit of a write session is followed at once by a delete of ``name`` from another
    connection, before the writer builds its answer."""
    deleted: list[Any] = []
    original = Session.commit

    def commit(self: Session) -> None:
        original(self)
        if not deleted and self.bind is not other.engine:
            deleted.append(other.delete(name))

    monkeypatch.setattr(Session, "commit", commit)
    return deleted


@pytest.fixture
def providers(hodei_store: Store, hodei_pm: HodeiPluginManager) -> LocalProviders:
    return LocalProviders(hodei_store, ProviderStates(hodei_store.engine), hodei_pm)


def test_an_update_committed_before_a_delete_is_answered_as_done(
        providers: LocalProviders, hodei_store: Store, second_store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hodei_store.create(static("doomed", priority=1))
    deleted = deleting_after_commit(monkeypatch, second_store, "doomed")

    view = providers.update("doomed", ProviderChange({"priority": 7}))

    assert deleted, "the hook did not run"
    assert view.document["priority"] == 7
    assert "doomed" not in names(hodei_store)


def test_a_status_change_committed_before_a_delete_is_answered_as_done(
        providers: LocalProviders, hodei_store: Store, second_store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hodei_store.create(static("doomed"))
    deleted = deleting_after_commit(monkeypatch, second_store, "doomed")

    view = providers.set_status("doomed", "DISABLED", "test")

    assert deleted and view.document["status"] == "DISABLED"


def test_an_add_deleted_at_once_is_answered_as_done(
        providers: LocalProviders, hodei_store: Store, second_store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    deleted = deleting_after_commit(monkeypatch, second_store, "brief")
    view = providers.create(static("brief", priority=3))
    assert deleted and view.document["priority"] == 3


def test_health_results_of_a_provider_deleted_after_they_were_counted(
        hodei_store: Store, second_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = hodei_store.create(static("checked"))
    deleted = deleting_after_commit(monkeypatch, second_store, "checked")

    recorded = record_results(hodei_store.engine, [Result(provider.id, HealthResult.unhealthy("down"))],
                              lambda status, state: (ProviderStatus.UNHEALTHY, "failed checks"))

    assert deleted
    assert [(r.name, r.status) for r in recorded] == [("checked", ProviderStatus.UNHEALTHY)]


def test_a_change_to_a_provider_deleted_first_is_not_found(providers: LocalProviders, hodei_store: Store) -> None:
    from hodei.errors import NotFound

    created = hodei_store.create(static("gone"))
    hodei_store.delete("gone")
    with pytest.raises(NotFound):
        providers.update(str(created.id), ProviderChange({"priority": 2}))
    with pytest.raises(NotFound):
        providers.set_status(str(uuid.UUID(int=created.id.int)), "DISABLED", "test")


def test_a_check_recorded_for_a_provider_deleted_right_after_is_answered(
        providers: LocalProviders, hodei_store: Store, second_store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`hodei providers check` records each answer; a provider deleted meanwhile must not fail the command."""
    hodei_store.create(static("checked"))
    deleted = deleting_after_commit(monkeypatch, second_store, "checked")
    state = providers.record_check("checked", HealthResult.unhealthy("down"))
    assert deleted and state.consecutive_failures == 1


def test_two_hodei_processes_pruning_at_once_leave_exactly_one_file(hodei: Any, tmp_path: Any) -> None:
    """The same race as real users meet it: two `hodei providers apply --prune` processes started
    together, a few rounds; every run succeeds and the table is always exactly one file's providers."""
    import json
    import subprocess

    from hodei.testing.serve import clean_environment, hodei_command

    files = {}
    for side in ("a", "b"):
        files[side] = tmp_path / f"{side}.json"
        files[side].write_text(json.dumps([static(f"{side}-{i}") for i in range(3)]))
    env = clean_environment(HODEI_DATABASE_URL=hodei.url, HODEI_CONFIG=str(hodei.config))
    for _ in range(2):
        hodei.ok("providers", "apply", "-f", "-", "--prune", input=json.dumps([static("old")]))
        runs = [subprocess.Popen([*hodei_command(), "providers", "apply", "-f", str(files[side]), "--prune"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for side in ("a", "b")]
        errors = [run.communicate(timeout=60)[1] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], errors
        names = {p["name"] for p in hodei.providers()}
        assert names in ({"a-0", "a-1", "a-2"}, {"b-0", "b-1", "b-2"}), names
