"""SQLModel tables. The DDL itself lives in the Alembic migrations (``hodei db upgrade``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Columns a row edited in SQL may hold garbage in read as hodei.columns.Unreadable, never raising.
from hodei.columns import JSONDocument, Moment, RowId


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProviderConfigRow(SQLModel, table=True):
    """One row of ``provider_configs``, with the seed's column names and types."""

    __tablename__ = "provider_configs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=sa.Column(RowId(), primary_key=True))
    name: str = Field(sa_column=sa.Column(sa.Text(), nullable=False, unique=True))
    provider_type: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    config: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument(), nullable=False))
    status: str = Field(default="ACTIVE", sa_column=sa.Column(sa.Text(), nullable=False))
    priority: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    max_workers: int = Field(default=10, sa_column=sa.Column(sa.Integer(), nullable=False))
    preferred_region: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    allowed_regions: list[str] = Field(default_factory=list, sa_column=sa.Column(JSONDocument(), nullable=False))
    required_labels: dict[str, str] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument(), nullable=False))
    annotations: dict[str, str] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Moment(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Moment(), nullable=False))


class ProviderStateRow(SQLModel, table=True):
    """What Hodei last learned about a provider at run time; no row means never checked."""

    __tablename__ = "provider_state"

    provider_id: uuid.UUID = Field(sa_column=sa.Column(
        RowId(), sa.ForeignKey("provider_configs.id", ondelete="CASCADE"), primary_key=True))
    health: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    health_reason: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    checked_at: datetime | None = Field(default=None, sa_column=sa.Column(Moment(), nullable=True))
    check_duration_seconds: float | None = Field(default=None, sa_column=sa.Column(sa.Float(), nullable=True))
    active_workers: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    reserved_workers: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    capacity_cpu: float | None = Field(default=None, sa_column=sa.Column(sa.Float(), nullable=True))
    capacity_memory: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))
    capacity_gpu: int | None = Field(default=None, sa_column=sa.Column(sa.Integer(), nullable=True))
    capacity_reported_at: datetime | None = Field(default=None, sa_column=sa.Column(Moment(),
                                                                          nullable=True))
    consecutive_failures: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    consecutive_successes: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    provision_failures: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    cooldown_until: datetime | None = Field(default=None, sa_column=sa.Column(Moment(), nullable=True))
    last_provision_error: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Moment(), nullable=False))


class ProviderHistoryRow(SQLModel, table=True):
    """A change of a provider (status, health, created, changed, deleted, cooldown), with its cause and actor. Kept
    after the provider is deleted."""

    __tablename__ = "provider_history"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                                     primary_key=True, autoincrement=True))
    provider_id: uuid.UUID = Field(sa_column=sa.Column(RowId(), nullable=False))
    provider_name: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Moment(), nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    old_value: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    new_value: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    cause: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    # Who or what made the change (hodei.actors); NULL for changes recorded before actors were.
    actor: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))


class WorkerRow(SQLModel, table=True):
    """A worker Hodei started (or is starting) on a provider."""

    __tablename__ = "workers"

    id: str = Field(sa_column=sa.Column(sa.Text(), primary_key=True))
    provider_id: uuid.UUID = Field(sa_column=sa.Column(RowId(), nullable=False))
    provider_name: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    state: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    reason: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    backend_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    handle: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONDocument(), nullable=True))
    requirements: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument(), nullable=False))
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONDocument(), nullable=False))
    token_sha256: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Moment(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Moment(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(Moment(), nullable=True))


class DaemonRow(SQLModel, table=True):
    """A running ``hodei serve``; live while its heartbeat is younger than its lease."""

    __tablename__ = "daemons"

    id: str = Field(sa_column=sa.Column(sa.Text(), primary_key=True))
    host: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    pid: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    address: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    version: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True),
                                                                      nullable=False))
    lease_seconds: float = Field(sa_column=sa.Column(sa.Float(), nullable=False))
    providers_owned: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))


class PlacementRow(SQLModel, table=True):
    """A request for a worker waiting in the placement queue (priority, then arrival)."""

    __tablename__ = "placement_queue"

    id: str = Field(sa_column=sa.Column(sa.Text(), primary_key=True))
    priority: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    enqueued_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Moment(), nullable=False))
    deadline: datetime = Field(sa_column=sa.Column(Moment(), nullable=False))
    requirements: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument(), nullable=False))
    daemon: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    seen_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Moment(), nullable=False))
    reasons: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
