"""``hodei.toml``: where it is found, what it may hold, and what overrides it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url

from hodei.config_schema import problems_from
from hodei.documents import parse_text
from hodei.errors import InvalidInput, Problem

CONFIG_ENV = "HODEI_CONFIG"
DATABASE_URL_ENV = "HODEI_DATABASE_URL"
# Comma-separated names added to [plugins] enable (a test run or a dry run turns `static` on this way).
PLUGINS_ENABLE_ENV = "HODEI_PLUGINS_ENABLE"
CONFIG_NAME = "hodei.toml"
SYSTEM_CONFIG = Path("/etc/hodei") / CONFIG_NAME
# Another system-wide file than /etc/hodei/hodei.toml: an install under another prefix, and test suites,
# which must never read the host's (hodei.testing.pytest_plugin points it at a file that does not exist).
SYSTEM_CONFIG_ENV = "HODEI_SYSTEM_CONFIG"


def _xdg_home(variable: str, fallback: str) -> Path | None:
    # The XDG base directory spec: a relative value is invalid and ignored. No home at all (a system
    # user without one): None, and the location is skipped.
    value = os.environ.get(variable, "")
    if value and Path(value).is_absolute():
        return Path(value)
    try:
        return Path.home() / fallback
    except RuntimeError:
        return None


def user_config_file() -> Path | None:
    """``$XDG_CONFIG_HOME/hodei/hodei.toml`` (``~/.config/hodei/hodei.toml``)."""
    home = _xdg_home("XDG_CONFIG_HOME", ".config")
    return home / "hodei" / CONFIG_NAME if home else None


def default_database_url() -> str:
    """The database when no setting names one: ``$XDG_DATA_HOME/hodei/hodei.db`` (``~/.local/share/...``),
    one place per user whatever the working directory, so every folder's ``hodei`` sees the same providers."""
    home = _xdg_home("XDG_DATA_HOME", ".local/share")
    return f"sqlite:///{(home or Path.cwd()) / 'hodei' / 'hodei.db'}"


def system_config_file() -> Path:
    """``/etc/hodei/hodei.toml``, or the absolute path in ``$HODEI_SYSTEM_CONFIG``."""
    value = os.environ.get(SYSTEM_CONFIG_ENV, "")
    return Path(value) if value and Path(value).is_absolute() else SYSTEM_CONFIG


def search_path() -> list[Path]:
    """Where ``hodei.toml`` is looked for, in this order, when neither --config nor HODEI_CONFIG names one."""
    user = user_config_file()
    return [Path.cwd() / CONFIG_NAME, *([user] if user else []), system_config_file()]


@dataclass(frozen=True)
class Origin:
    """Where the settings and the database URL in effect came from, for ``hodei config show`` and errors."""

    config: Path | None  # the file read, absolute; None: built-in defaults
    config_from: str  # --config, HODEI_CONFIG, "the working directory", XDG_CONFIG_HOME, "the system"...
    database_from: str  # --database-url, HODEI_DATABASE_URL, "[database] url of FILE", "the default"
    searched: tuple[Path, ...] = ()  # the locations looked at, when no file was named

    def describe(self) -> str:
        """One line: ``settings from FILE (found by ...)`` or the built-in defaults and where none was found."""
        if self.config is None:
            where = ", ".join(str(path.parent) for path in self.searched)
            return f"settings: built-in defaults, no {CONFIG_NAME} in {where}"
        return f"settings: {self.config} (from {self.config_from})"


class _Section(BaseModel):
    # A misspelt key in hodei.toml is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", strict=True)


class DatabaseSettings(_Section):
    url: str = Field(default_factory=default_database_url, description=(
        "SQLAlchemy URL. sqlite:///PATH (a relative PATH is taken from the directory of this file; unset: "
        "$XDG_DATA_HOME/hodei/hodei.db, i.e. ~/.local/share/hodei/hodei.db) or "
        "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"))


class PluginSettings(_Section):
    allow: list[str] = Field(default_factory=list, description=(
        "Entry point names to load; empty loads every installed plugin"))
    deny: list[str] = Field(default_factory=list, description=(
        "Entry point names never to load; wins over allow"))
    enable: list[str] = Field(default_factory=lambda: _named_in_environment(), description=(
        "Plugins of the core that load only when named here: \"static\", an in-memory provider type for "
        "tests, benchmarks and dry runs (also $HODEI_PLUGINS_ENABLE, comma-separated)"))

    @field_validator("enable")
    @classmethod
    def _optional_plugins(cls, value: list[str]) -> list[str]:
        from hodei.plugins import OPTIONAL_PLUGINS

        unknown = [name for name in value if name not in OPTIONAL_PLUGINS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a plugin of the core (there are: {', '.join(OPTIONAL_PLUGINS)})")
        return value


class HealthSettings(_Section):
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = Field(5.0, description=(
        "health_check_timeout: how long one provider's health check may take"))
    interval_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(30.0, description=(
        "How often `hodei serve` checks each provider"))
    concurrency: Annotated[int, Field(ge=1, le=10000)] = Field(1000, description=(
        "At most this many checks at once"))
    unhealthy_after: Annotated[int, Field(ge=1, le=1000)] = Field(3, description=(
        "Consecutive failed checks that turn an ACTIVE provider UNHEALTHY"))
    healthy_after: Annotated[int, Field(ge=1, le=1000)] = Field(2, description=(
        "Consecutive passed checks (Healthy or Degraded) that turn an UNHEALTHY provider ACTIVE again"))
    max_backoff_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(300.0, description=(
        "A provider that keeps failing is checked less often, doubling up to this, with jitter"))


class CooldownSettings(_Section):
    after_failures: Annotated[int, Field(ge=1, le=1000)] = Field(3, description=(
        "Failed provisions in a row (not counting failures the job caused) after which a provider is skipped"))
    initial_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(60.0, description=(
        "The first cooldown; each further failure doubles it"))
    max_seconds: Annotated[float, Field(gt=0, le=604800)] = Field(1800.0, description=(
        "The longest cooldown, however many failures follow"))

    @model_validator(mode="after")
    def _ordered(self) -> CooldownSettings:
        if self.max_seconds < self.initial_seconds:
            raise ValueError(f"max_seconds ({self.max_seconds:g}) must be at least initial_seconds "
                             f"({self.initial_seconds:g})")
        return self


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
        "(status, health, cooldown, capacity, resources, labels, annotations, allowed-regions, image) first"))
    rankers: list[str] | None = Field(None, description=(
        "Rankers, in this order (only these); unset: priority, utilization, then installed third-party "
        "rankers, then name"))
    weights: dict[str, float] = Field(default_factory=dict, description=(
        "Weights of scoring rankers (utilization and weighted third-party rules), summed into one score"))


class WorkerSettings(_Section):
    server_address: str = Field("127.0.0.1:50051", description=(
        "The address workers are told to connect back to (HODEI_SERVER_ADDRESS in their environment)"))
    max_attempts: Annotated[int, Field(ge=1, le=100)] = Field(3, description=(
        "Providers tried for one request when provisioning fails (capacity refusals do not count)"))
    provision_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(60.0, description=(
        "How long a plugin may take to start one worker"))
    release_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(60.0, description=(
        "How long a plugin may take to stop one worker, grace period included"))
    reconcile_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(30.0, description=(
        "How often the daemon compares each provider's workers with the workers table"))
    reservation_timeout_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(300.0, description=(
        "A reservation whose provisioning has not finished by then expires (and frees its slot)"))
    orphan_grace_seconds: Annotated[float, Field(ge=0, le=86400)] = Field(120.0, description=(
        "A backend worker with Hodei's labels and no live row is removed once seen this long"))
    max_lifetime_seconds: Annotated[float, Field(ge=0)] = Field(0.0, description=(
        "Workers running longer are released; 0 means no limit"))
    queue_sweep_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(5.0, description=(
        "How often `hodei serve` retries the requests waiting in the placement queue when no event (a slot "
        "freed, a provider changed) said they could fit now"))
    queue_claim_grace_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(60.0, description=(
        "How long a waiting request outlives the daemon it waited at (a client that reconnects with the same "
        "request id keeps its place); then it is dropped"))

    @property
    def provision_budget_seconds(self) -> float:
        """The longest one provisioning request can take on the server: every attempt timing out, then
        a started worker being stopped; and a little for the database writes. A client waiting less gives
        up on work the server is still doing (which then gives its slot back)."""
        return self.max_attempts * self.provision_timeout_seconds + self.release_timeout_seconds + 10.0


def _optional_listen(value: Any, what: str) -> Any:
    """A listener that may be turned off: HOST:PORT, or "" / false for none."""
    if value is False:
        return ""
    if value is True:
        raise ValueError(f'must be an address HOST:PORT, or "" or false for no {what}')
    if isinstance(value, str) and value:
        from hodei.observability.address import parse_listen

        parse_listen(value)
    return value


class MetricsSettings(_Section):
    listen: str = Field("127.0.0.1:9464", description=(
        "Address of the Prometheus /metrics endpoint of `hodei serve`, HOST:PORT ([::1]:9464 for IPv6); "
        "\"\" or false: no endpoint. It has no authentication: keep it on a loopback or private address"))

    @field_validator("listen", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        return _optional_listen(value, "endpoint")


class TracingSettings(_Section):
    exporter: Literal["off", "console", "otlp"] = Field("off", description=(
        "Where OpenTelemetry spans go: off, console (one JSON span per line on standard output) or otlp"))
    otlp_endpoint: str = Field("http://127.0.0.1:4317", description=(
        "OTLP/gRPC collector for exporter = \"otlp\"; http:// is plaintext, https:// uses TLS. Headers (an API "
        "key) are read from OTEL_EXPORTER_OTLP_HEADERS, never from this file"))
    otlp_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = Field(10.0, description=(
        "How long one export to the collector may take"))
    service_name: Annotated[str, Field(min_length=1)] = Field("hodei", description=(
        "service.name of the spans"))
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = Field(1.0, description=(
        "Share of new traces recorded (a caller's trace follows the caller's sampling decision)"))


class LoggingSettings(_Section):
    format: Literal["auto", "json", "text"] = Field("auto", description=(
        "Log lines of `hodei serve`: json (one object per line, with trace_id and span_id), text, or auto "
        "(text on a terminal, json otherwise)"))


class ApiSettings(_Section):
    listen: str = Field("127.0.0.1:50051", description=(
        "Address of the gRPC API of `hodei serve`, HOST:PORT ([::1]:50051 for IPv6; port 0 picks a free one); "
        "\"\" or false: no API. Beyond a loopback address, token_file is required"))
    token_file: str | None = Field(None, description=(
        "File holding the bearer token every call but the health and reflection services must carry "
        "(metadata authorization: Bearer TOKEN). A relative path is taken from the directory of this file"))
    tls_cert_file: str | None = Field(None, description=(
        "PEM certificate (chain) of the server; with tls_key_file, the API speaks TLS only"))
    tls_key_file: str | None = Field(None, description="PEM private key of tls_cert_file")
    client_ca_file: str | None = Field(None, description=(
        "PEM CA certificates: when set, every client must present a certificate they signed (mutual TLS)"))

    @field_validator("listen", mode="before")
    @classmethod
    def _api_address(cls, value: Any) -> Any:
        if value is False:
            return ""
        if value is True:
            raise ValueError('must be an address HOST:PORT, or "" or false for no API')
        if isinstance(value, str) and value:
            from hodei.observability.address import parse_listen

            parse_listen(value)
        return value

    @model_validator(mode="after")
    def _secure_enough(self) -> ApiSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        if self.client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        if self.listen and self.token_file is None and not self.loopback:
            raise ValueError(f"listen = {self.listen!r} is not a loopback address, so token_file is required "
                             "(or listen on 127.0.0.1 / [::1])")
        return self

    @property
    def loopback(self) -> bool:
        """Whether ``listen`` is reachable from this machine only."""
        return loopback(self.listen)


def loopback(listen: str) -> bool:
    """Whether the address ``listen`` (``HOST:PORT``) is reachable from this machine only."""
    import ipaddress

    from hodei.observability.address import parse_listen

    host, _ = parse_listen(listen)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class UiSettings(_Section):
    listen: str = Field("127.0.0.1:9465", description=(
        "Address of the status page of `hodei serve` (read-only HTML: fleet, providers, queue, decisions, replicas), "
        "HOST:PORT ([::1]:9465 for IPv6; port 0 picks a free one); \"\" or false: no page. Beyond a loopback "
        "address, [api] token_file is required: the page asks for that token (a sign-in form, or the header "
        "authorization: Bearer TOKEN); with [api] tls_cert_file it is served over HTTPS with that certificate"))
    refresh_seconds: Annotated[float, Field(ge=1, le=3600)] = Field(5.0, description=(
        "How often an open page refreshes itself (in place with JavaScript, a reload without)"))
    decisions: Annotated[int, Field(ge=1, le=10000)] = Field(200, description=(
        "How many recent selections and provisions the daemon keeps in memory for the decisions page"))

    @field_validator("listen", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        return _optional_listen(value, "status page")


class Settings(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    cooldown: CooldownSettings = Field(default_factory=CooldownSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    # Where the settings came from, for messages; not settings.
    source: Path | None = Field(None, exclude=True)
    origin: Origin | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _ui_secure_enough(self) -> Settings:
        if self.ui.listen and self.api.token_file is None and not loopback(self.ui.listen):
            raise ValueError(f"[ui] listen = {self.ui.listen!r} is not a loopback address, so [api] token_file is "
                             "required: the status page asks for the API's token (or listen on 127.0.0.1 / [::1])")
        return self


def _find(explicit: str | os.PathLike[str] | None) -> tuple[Path | None, str, tuple[Path, ...]]:
    from_env = os.environ.get(CONFIG_ENV)
    named = explicit or from_env
    if named:
        # click hands $HODEI_CONFIG over as the option's value: the same text means it came from there.
        how = CONFIG_ENV if not explicit or (from_env and os.fspath(explicit) == from_env) else "--config"
        path = Path(named)
        if not path.is_file():
            raise InvalidInput(Problem("config", f"{path} ({how}) does not exist or is not a file"))
        return path.absolute(), how, ()
    searched = tuple(search_path())
    for path in searched:
        if path.is_file():
            how = ("the working directory" if path.parent == Path.cwd() else
                   "the system location" if path == searched[-1] else "the user's config folder (XDG_CONFIG_HOME)")
            return path, how, searched
    return None, "built-in defaults", searched


def _resolve_sqlite_path(url: str, base: Path) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    path = Path(parsed.database)
    if path.is_absolute():
        return url
    return parsed.set(database=str((base / path).resolve())).render_as_string(hide_password=False)


def load_settings(config: str | os.PathLike[str] | None = None, database_url: str | None = None, *,
                  refuse_empty: bool = False) -> Settings:
    """Read ``hodei.toml`` and apply overrides: ``database_url`` argument, then ``$HODEI_DATABASE_URL``.

    ``refuse_empty``: a file that sets nothing is an error (a reload on SIGHUP: an editor or a copy
    caught halfway leaves the file empty, and taking it would put every setting back to its default).

    :raises InvalidInput: naming the key and the reason, for a file that cannot be read or used.
    """
    path, found_by, searched = _find(config)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = parse_text(path.read_text(encoding="utf-8"), "toml", str(path), field="config")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(Problem("config", f"cannot read {path}: {exc}")) from None
        except InvalidInput as exc:  # the reader every document goes through: nesting, numbers, syntax
            raise InvalidInput(Problem("config", f"cannot read {exc.problems[0].reason}")) from None
        if refuse_empty and not data:
            raise InvalidInput(Problem("config", f"{path} sets nothing (empty, or only comments): taken as a file "
                                                 "written halfway, not as a wish for every default"))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(problems_from(exc), subject=f"invalid settings in {path}") from None
    env_url = os.environ.get(DATABASE_URL_ENV)
    override = database_url or env_url
    if override:
        database_from = DATABASE_URL_ENV if override == env_url else "--database-url"
    elif path is not None and "url" in data.get("database", {}):
        database_from = f"[database] url of {path}"
    else:
        database_from = "the per-user default ([database] url not set)"
    try:
        # A relative SQLite path is taken from the folder of the file that names it; one given on the
        # command line or in the environment, from the working directory.
        url = _resolve_sqlite_path(override, Path.cwd()) if override else _resolve_sqlite_path(
            settings.database.url, path.parent if path is not None else Path.cwd())
    except Exception:
        raise InvalidInput(Problem("database.url", "is not a database URL (examples: sqlite:///var/hodei.db, "
                                                   "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB)")) from None
    settings.database.url = url
    settings.plugins.enable = _enabled_plugins(settings.plugins.enable)
    settings.source = path
    settings.origin = Origin(path, found_by, database_from, searched)
    return settings


def _named_in_environment() -> list[str]:
    """``$HODEI_PLUGINS_ENABLE``'s names: the default of ``[plugins] enable``, and added to a file's list."""
    return [name.strip() for name in os.environ.get(PLUGINS_ENABLE_ENV, "").split(",") if name.strip()]


def _enabled_plugins(configured: list[str]) -> list[str]:
    from hodei.plugins import OPTIONAL_PLUGINS

    named = _named_in_environment()
    unknown = [name for name in named if name not in OPTIONAL_PLUGINS]
    if unknown:
        raise InvalidInput(Problem(PLUGINS_ENABLE_ENV, f"{unknown[0]!r} is not a plugin of the core "
                                                       f"(there are: {', '.join(OPTIONAL_PLUGINS)})"))
    return [*configured, *(name for name in named if name not in configured)]
