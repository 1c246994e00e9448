"""``hodei.toml``: where it is found, what it may hold, and what overrides it."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import make_url

from hodei.config_schema import problems_from
from hodei.errors import InvalidInput, Problem

CONFIG_ENV = "HODEI_CONFIG"
DATABASE_URL_ENV = "HODEI_DATABASE_URL"
# Looked for in this order when neither --config nor HODEI_CONFIG names a file.
DEFAULT_LOCATIONS = (Path("config/hodei.toml"), Path("/etc/hodei/hodei.toml"))


class _Section(BaseModel):
    # A misspelt key in hodei.toml is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", strict=True)


class DatabaseSettings(_Section):
    url: str = Field("sqlite:///hodei.db", description=(
        "SQLAlchemy URL. sqlite:///PATH (a relative PATH is taken from the directory of this file) "
        "or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"))


class PluginSettings(_Section):
    allow: list[str] = Field(default_factory=list, description=(
        "Entry point names to load; empty loads every installed plugin"))
    deny: list[str] = Field(default_factory=list, description=(
        "Entry point names never to load; wins over allow"))


class HealthSettings(_Section):
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = Field(5.0, description=(
        "health_check_timeout: how long one provider's health check may take"))
    interval_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(30.0, description=(
        "How often `hodei serve` checks each provider"))
    concurrency: Annotated[int, Field(ge=1, le=10000)] = Field(200, description=(
        "At most this many checks at once"))
    unhealthy_after: Annotated[int, Field(ge=1, le=1000)] = Field(3, description=(
        "Consecutive failed checks that turn an ACTIVE provider UNHEALTHY"))
    healthy_after: Annotated[int, Field(ge=1, le=1000)] = Field(2, description=(
        "Consecutive passed checks (Healthy or Degraded) that turn an UNHEALTHY provider ACTIVE again"))
    max_backoff_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(300.0, description=(
        "A provider that keeps failing is checked less often, doubling up to this, with jitter"))


class DaemonSettings(_Section):
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(10.0, description=(
        "On SIGTERM or SIGINT, how long in-flight work may take to finish before it is cancelled"))
    resync_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(60.0, description=(
        "Full re-read of provider_configs, the safety net under PostgreSQL's change notifications"))
    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(1.0, description=(
        "On SQLite (no notifications), how often to look for changed providers"))
    database_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(10.0, description=(
        "How long one database call may take before the daemon carries on without it"))


class SelectionSettings(_Section):
    filters: list[str] | None = Field(None, description=(
        "Filters to run, in this order (only these); unset runs every installed filter, the built-in ones "
        "(status, health, capacity, resources, labels, annotations, allowed-regions) first"))
    rankers: list[str] | None = Field(None, description=(
        "Rankers, in this order (only these); unset: priority, utilization, then installed third-party "
        "rankers, then name"))
    weights: dict[str, float] = Field(default_factory=dict, description=(
        "Weights of scoring rankers (utilization and weighted third-party rules), summed into one score"))


class Settings(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)

    # Where the settings came from, for messages; not a setting.
    source: Path | None = Field(None, exclude=True)


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The file to read: ``explicit``, else ``$HODEI_CONFIG``, else the first default that exists."""
    named = explicit or os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise InvalidInput(Problem("config", f"{path} does not exist or is not a file"))
        return path
    return next((p for p in DEFAULT_LOCATIONS if p.is_file()), None)


def _resolve_sqlite_path(url: str, base: Path) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    path = Path(parsed.database)
    if path.is_absolute():
        return url
    return parsed.set(database=str((base / path).resolve())).render_as_string(hide_password=False)


def load_settings(config: str | os.PathLike[str] | None = None, database_url: str | None = None) -> Settings:
    """Read ``hodei.toml`` and apply overrides: ``database_url`` argument, then ``$HODEI_DATABASE_URL``.

    :raises InvalidInput: naming the key and the reason, for a file that cannot be read or used.
    """
    path = find_config_file(config)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(Problem("config", f"cannot read {path}: {exc}")) from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(problems_from(exc), subject=f"invalid settings in {path}") from None
    base = path.parent if path is not None else Path.cwd()
    override = database_url or os.environ.get(DATABASE_URL_ENV)
    try:
        url = _resolve_sqlite_path(override, Path.cwd()) if override else _resolve_sqlite_path(
            settings.database.url, base)
    except Exception:
        raise InvalidInput(Problem("database.url", "is not a database URL (examples: sqlite:///var/hodei.db, "
                                                   "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB)")) from None
    settings.database.url = url
    settings.source = path
    return settings
