"""The provider_configs store, on SQLite and PostgreSQL: writes are validated, refusals change nothing."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from hodei.errors import AlreadyExists, InvalidInput, NotFound
from hodei.provider_change import ProviderChange
from hodei.store import Store


def static(name: str = "a", **fields):
    return {"name": name, "provider_type": "static", "config": {"type": "static"}, **fields}


def snapshot(store: Store):
    return [(p.id, p.document(), p.updated_at) for p in store.all()]


def test_create_fills_the_seed_defaults(hodei_store: Store) -> None:
    created = hodei_store.create(static())
    assert (created.status, created.priority, created.max_workers) == ("ACTIVE", 0, 10)
    assert (created.preferred_region, created.allowed_regions) == (None, [])
    assert (created.required_labels, created.annotations) == ({}, {})
    assert hodei_store.get("a") == created
    assert hodei_store.get(str(created.id)) == created


def test_config_is_stored_as_written_and_normalised_for_hooks(hodei_store: Store) -> None:
    created = hodei_store.create(static(config={"latency_ms": 5, "capabilities": {"memory": "4Gi"}}))
    assert created.config == {"latency_ms": 5, "capabilities": {"memory": "4Gi"}}
    provider = created.to_provider()
    assert provider.config["capabilities"]["memory"] == 4 * 2**30
    assert provider.config["type"] == "static"


def test_id_given_in_the_document_is_kept(hodei_store: Store) -> None:
    wanted = uuid.uuid4()
    assert hodei_store.create(static(id=str(wanted))).id == wanted


@pytest.mark.parametrize("document, field", [
    (static(max_workers=0), "max_workers"),
    (static(max_workers=-3), "max_workers"),
    (static(priority=1.5), "priority"),
    (static(priority="10"), "priority"),
    (static(priority=True), "priority"),
    (static(status="BROKEN"), "status"),
    (static(status="active"), "status"),
    (static(preferred_region=""), "preferred_region"),
    (static(allowed_regions=["us-east-1", ""]), "allowed_regions[1]"),
    (static(allowed_regions=["eu", "eu"]), "allowed_regions"),
    (static(allowed_regions="us-east-1"), "allowed_regions"),
    (static(required_labels={"tier": "gold "}), "required_labels"),
    (static(annotations={"": "x"}), "annotations"),
    (static(config={"nope": 1}), "config.nope"),
    (static(config={"latency_ms": "slow"}), "config.latency_ms"),
    (static(config={"type": "docker"}), "config.type"),
    (static(config=[]), "config"),
    (static(name=""), "name"),
    (static(name=" padded"), "name"),
    ({"name": "a", "provider_type": "no-such-type"}, "provider_type"),
    ({"provider_type": "static"}, "name"),
    (static(colour="blue"), "colour"),
    (static(id="not-a-uuid"), "id"),
    (static(max_workers=2**31), "max_workers"),
])
def test_invalid_documents_are_refused_naming_the_field_and_change_nothing(hodei_store, document, field):
    hodei_store.create(static("existing"))
    before = snapshot(hodei_store)
    with pytest.raises(InvalidInput) as info:
        hodei_store.create(document)
    assert field in [p.field for p in info.value.problems], info.value
    assert snapshot(hodei_store) == before


def test_unknown_provider_type_lists_the_installed_ones(hodei_store: Store) -> None:
    with pytest.raises(InvalidInput, match=r"unknown provider type 'nomad' \(installed: .*static"):
        hodei_store.create({"name": "n", "provider_type": "nomad"})


def test_every_problem_is_reported_at_once(hodei_store: Store) -> None:
    with pytest.raises(InvalidInput) as info:
        hodei_store.create(static(max_workers=0, priority="x", config={"hang": "no"}))
    assert {p.field for p in info.value.problems} == {"max_workers", "priority", "config.hang"}


def test_duplicate_name_is_refused(hodei_store: Store) -> None:
    hodei_store.create(static())
    before = snapshot(hodei_store)
    with pytest.raises(AlreadyExists, match="'a' exists already"):
        hodei_store.create(static(priority=5))
    assert snapshot(hodei_store) == before


def test_concurrent_creates_of_one_name_leave_exactly_one(hodei_store: Store) -> None:
    errors: list[Exception] = []

    def create(priority: int) -> None:
        try:
            hodei_store.create(static("raced", priority=priority))
        except AlreadyExists as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(hodei_store.all()) == 1
    assert len(errors) == 5


def test_update_merges_config_like_sql_concat(hodei_store: Store) -> None:
    hodei_store.create(static(config={"latency_ms": 5, "health_reason": "fine"}))
    updated = hodei_store.update("a", ProviderChange({"priority": 100}, merge_config={"latency_ms": 7}))
    assert updated.priority == 100
    assert updated.config == {"latency_ms": 7, "health_reason": "fine"}


def test_update_refused_changes_nothing(hodei_store: Store) -> None:
    hodei_store.create(static())
    before = snapshot(hodei_store)
    with pytest.raises(InvalidInput, match="max_workers"):
        hodei_store.update("a", ProviderChange({"max_workers": 0, "priority": 9}))
    with pytest.raises(InvalidInput, match=r"config\.hang"):
        hodei_store.update("a", ProviderChange(merge_config={"hang": "sometimes"}))
    with pytest.raises(InvalidInput, match="colour"):
        hodei_store.update("a", ProviderChange({"colour": "blue"}))
    assert snapshot(hodei_store) == before


def test_rename_onto_an_existing_name_is_refused(hodei_store: Store) -> None:
    hodei_store.create(static("a"))
    hodei_store.create(static("b"))
    with pytest.raises(AlreadyExists):
        hodei_store.update("a", ProviderChange({"name": "b"}))
    assert [p.name for p in hodei_store.all()] == ["a", "b"]


def test_missing_provider_is_not_found(hodei_store: Store) -> None:
    for call in (lambda: hodei_store.get("ghost"), lambda: hodei_store.update("ghost", ProviderChange({"priority": 1})),
                 lambda: hodei_store.delete("ghost"), lambda: hodei_store.set_status("ghost", "DISABLED")):
        with pytest.raises(NotFound, match="no provider named 'ghost'"):
            call()


def test_status_changes_and_delete(hodei_store: Store) -> None:
    hodei_store.create(static())
    for status in ("DISABLED", "MAINTENANCE", "ACTIVE"):
        assert hodei_store.set_status("a", status).status == status
    with pytest.raises(InvalidInput, match="status"):
        hodei_store.set_status("a", "SLEEPING")
    hodei_store.delete("a")
    assert hodei_store.all() == []


def corrupt(store: Store, sql: str) -> None:
    if store.engine.dialect.name == "postgresql":
        sql = sql.replace("'::json", "'::jsonb")
    else:
        sql = sql.replace("'::json", "'")
    with store.engine.begin() as connection:
        connection.exec_driver_sql(sql)


def test_row_made_invalid_in_sql_is_reported_not_raised(hodei_store: Store) -> None:
    hodei_store.create(static("good"))
    hodei_store.create(static("bad"))
    corrupt(hodei_store, """UPDATE provider_configs SET config = '{"nope": 1}'::json WHERE name = 'bad'""")
    listed = {p.name: p for p in hodei_store.all()}
    assert listed["good"].valid
    assert not listed["bad"].valid
    assert [(p.field, p.reason) for p in listed["bad"].problems] == [("config.nope", "unknown key")]
    with pytest.raises(InvalidInput):
        listed["bad"].to_provider()
    # The operator can still take it out of service, and fix it.
    assert hodei_store.set_status("bad", "DISABLED").status == "DISABLED"
    assert hodei_store.update("bad", ProviderChange({"config": {"type": "static"}})).valid


def test_row_of_an_uninstalled_type_is_reported(hodei_store: Store) -> None:
    hodei_store.create(static("orphan"))
    corrupt(hodei_store, "UPDATE provider_configs SET provider_type = 'nomad' WHERE name = 'orphan'")
    (orphan,) = hodei_store.all()
    assert [p.field for p in orphan.problems] == ["provider_type"]


def test_row_with_non_object_json_is_reported(hodei_store: Store) -> None:
    hodei_store.create(static("odd"))
    corrupt(hodei_store, """UPDATE provider_configs SET config = '[1, 2]'::json,
                            required_labels = '"x"'::json WHERE name = 'odd'""")
    (odd,) = hodei_store.all()
    assert {p.field for p in odd.problems} >= {"required_labels"}


def test_apply_creates_then_changes_nothing(hodei_store: Store) -> None:
    documents = [static("a", priority=1), static("b", allowed_regions=["eu-west-1"])]
    assert [(c.name, c.action) for c in hodei_store.apply(documents)] == [("a", "create"), ("b", "create")]
    before = snapshot(hodei_store)
    assert [c.action for c in hodei_store.apply(documents)] == ["unchanged", "unchanged"]
    assert snapshot(hodei_store) == before


def test_apply_dry_run_reports_and_writes_nothing(hodei_store: Store) -> None:
    hodei_store.apply([static("a", priority=1)])
    before = snapshot(hodei_store)
    changes = hodei_store.apply([static("a", priority=2), static("b")], dry_run=True)
    assert [(c.name, c.action) for c in changes] == [("a", "update"), ("b", "create")]
    assert changes[0].fields == {"priority": (1, 2)}
    assert snapshot(hodei_store) == before


def test_apply_is_all_or_nothing(hodei_store: Store) -> None:
    with pytest.raises(InvalidInput) as info:
        hodei_store.apply([static("a"), static("b", max_workers=0), static("c", config={"x": 1})])
    assert {p.field for p in info.value.problems} == {"providers[1] (b).max_workers", "providers[2] (c).config.x"}
    assert hodei_store.all() == []


def test_apply_refuses_a_name_twice(hodei_store: Store) -> None:
    with pytest.raises(InvalidInput, match="more than once"):
        hodei_store.apply([static("a"), static("a", priority=3)])
    assert hodei_store.all() == []


def test_apply_keeps_a_status_it_does_not_mention(hodei_store: Store) -> None:
    hodei_store.apply([static("a")])
    hodei_store.set_status("a", "DISABLED")
    assert hodei_store.apply([static("a")])[0].action == "unchanged"
    assert hodei_store.get("a").status == "DISABLED"
    hodei_store.apply([static("a", status="ACTIVE")])
    assert hodei_store.get("a").status == "ACTIVE"


def test_apply_resets_fields_left_out_to_their_defaults(hodei_store: Store) -> None:
    hodei_store.apply([static("a", priority=7, required_labels={"env": "prod"})])
    change = hodei_store.apply([static("a")])[0]
    assert change.fields == {"priority": (7, 0), "required_labels": ({"env": "prod"}, {})}


def test_store_refuses_a_database_without_schema(hodei_database_url, hodei_pm) -> None:
    from hodei.errors import DatabaseNotReady

    with pytest.raises(DatabaseNotReady, match="hodei db upgrade"):
        Store.open(hodei_database_url, hodei_pm)


def test_unreachable_database_is_a_clear_error_without_password(hodei_pm) -> None:
    from hodei.errors import DatabaseNotReady

    url = "postgresql+psycopg://hodei:sup3rs3cret@127.0.0.1:1/nothing"
    with pytest.raises(DatabaseNotReady) as info:
        Store.open(url, hodei_pm)
    assert "cannot connect" in str(info.value)
    assert "sup3rs3cret" not in str(info.value)


def test_migrations_upgrade_is_idempotent_and_reports_revisions(hodei_database_url) -> None:
    from hodei import database

    engine = database.create_engine(hodei_database_url)
    try:
        before, after = database.upgrade(engine)
        assert (before, after) == (None, database.head_revision())
        assert database.upgrade(engine) == (after, after)
        assert set(sa.inspect(engine).get_table_names()) >= {"provider_configs", "alembic_version"}
    finally:
        engine.dispose()
