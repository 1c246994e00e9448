"""The seed's own SQL, taken from the provider configuration guide, runs verbatim on PostgreSQL
after `hodei db upgrade`, and Hodei reads the rows back exactly."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hodei import database
from hodei.store import Store

GUIDE = Path(__file__).parents[1] / "docs" / "provider-configuration-guide.md"


def seed_sql(statement: str) -> str:
    blocks = re.findall(r"```sql\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    matching = [b for b in blocks if b.lstrip().upper().startswith(statement)]
    assert len(matching) == 1, f"the guide should hold exactly one {statement} block"
    return matching[0]


@pytest.fixture
def pg_store(hodei_postgres_url, hodei_pm):
    engine = database.create_engine(hodei_postgres_url)
    database.upgrade(engine)
    store = Store(engine, hodei_pm)
    yield store
    store.close()


def test_seed_insert_then_update_round_trip(pg_store: Store) -> None:
    with pg_store.engine.begin() as connection:
        connection.exec_driver_sql(seed_sql("INSERT INTO PROVIDER_CONFIGS"))

    inserted = pg_store.get("Production Kubernetes")
    assert inserted.valid, inserted.problems
    assert inserted.id == uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
    assert inserted.provider_type == "kubernetes"
    assert inserted.config == {"type": "kubernetes", "namespace": "hodei-jobs",
                               "service_account": "hodei-worker", "default_image": "hodei-jobs-worker:v3"}
    assert (inserted.status, inserted.priority, inserted.max_workers) == ("ACTIVE", 100, 20)
    assert inserted.preferred_region == "us-east-1"
    assert inserted.allowed_regions == ["us-east-1", "us-west-2"]
    assert inserted.required_labels == {"environment": "production", "tier": "high-performance"}
    assert inserted.annotations == {"compliance": "soc2", "audit": "enabled"}
    assert inserted.created_at.tzinfo is not None
    # Looked up by id as well as by name.
    assert pg_store.get("550e8400-e29b-41d4-a716-446655440000").name == "Production Kubernetes"

    with pg_store.engine.begin() as connection:
        connection.exec_driver_sql(seed_sql("UPDATE PROVIDER_CONFIGS"))

    updated = pg_store.get("Production Kubernetes")
    assert updated.valid, updated.problems
    assert (updated.status, updated.priority, updated.max_workers) == ("ACTIVE", 100, 50)
    # `config || '{...}'` replaces one key and keeps the rest.
    assert updated.config == {**inserted.config, "default_image": "hodei-jobs-worker:v4"}
    assert updated.updated_at >= inserted.updated_at
    assert updated.to_provider().config["default_image"] == "hodei-jobs-worker:v4"


def test_json_columns_are_jsonb_on_postgresql(pg_store: Store) -> None:
    columns = {c["name"]: c["type"] for c in sa.inspect(pg_store.engine).get_columns("provider_configs")}
    for name in ("config", "allowed_regions", "required_labels", "annotations"):
        assert type(columns[name]).__name__ == "JSONB", name
    assert type(columns["id"]).__name__ == "UUID"


def test_sql_insert_with_only_required_columns_gets_the_seed_defaults(pg_store: Store) -> None:
    with pg_store.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO provider_configs (name, provider_type, config) "
            "VALUES ('bare', 'static', '{\"type\": \"static\"}'::jsonb)")
    bare = pg_store.get("bare")
    assert bare.valid, bare.problems
    assert (bare.status, bare.priority, bare.max_workers) == ("ACTIVE", 0, 10)
    assert (bare.allowed_regions, bare.required_labels, bare.annotations) == ([], {}, {})


def test_database_refuses_a_status_outside_the_enum(pg_store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError), pg_store.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO provider_configs (name, provider_type, status) VALUES ('x', 'static', 'BROKEN')")
    assert pg_store.all() == []
