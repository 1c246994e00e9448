"""``hodei config init``: a commented ``hodei.toml`` holding every setting at its default."""

from __future__ import annotations

from typing import Any

import tomli_w
from pydantic import BaseModel

from hodei.settings import Settings

_SECTION_HELP = {
    "database": "Where provider configs live. SQLite is the embedded default; use PostgreSQL in production.",
    "plugins": "Which installed plugins (entry points in the 'hodei' group) are loaded.",
    "health": "Provider health checks (`hodei providers check` and the monitor of `hodei serve`).",
    "cooldown": "Providers whose provisions keep failing are skipped for a while (`hodei providers reset-cooldown`).",
    "daemon": "`hodei serve`: shutdown, and how it follows changes to provider_configs.",
    "workers": "Workers: provisioning, release and reconciliation (`hodei workers`, and the daemon's reconciler).",
    "selection": "The selection chain: which filters and rankers decide where a job's worker runs.",
    "metrics": "`hodei serve`'s Prometheus endpoint (metric names and labels: docs/metrics.md).",
    "tracing": "OpenTelemetry traces of `hodei serve` (span names and attributes: docs/metrics.md).",
    "logging": "The log lines of `hodei serve` on standard error.",
    "api": "`hodei serve`'s gRPC API (`hodei --server`, grpcurl): where it listens, its token and TLS.",
    "ui": "`hodei serve`'s status page: where it listens (its token and TLS are [api]'s), how often it refreshes.",
}

# Settings whose default is "not set" are shown commented out, with the value they behave like.
_UNSET_EXAMPLES = {
    ("selection", "filters"): ["status", "health", "cooldown", "capacity", "resources", "labels", "annotations",
                               "allowed-regions", "image"],
    ("selection", "rankers"): ["priority", "utilization", "name"],
    # The same names as config/hodei.toml and the README's walk-through of a token and TLS.
    ("api", "token_file"): "api-token",
    ("api", "tls_cert_file"): "api.crt",
    ("api", "tls_key_file"): "api.key",
    ("api", "client_ca_file"): "clients-ca.crt",
}
_TABLE_EXAMPLES = {("selection", "weights"): {"utilization": 1.0}}


def render_default_config(database_url: str | None = None) -> str:
    """TOML text for a default ``hodei.toml``: tomli-w writes the values, each preceded by its help.

    Without ``database_url`` the ``[database] url`` line is commented out: the database is then the
    per-user default (``$XDG_DATA_HOME/hodei/hodei.db``), the same whichever folder ``hodei`` runs in.
    """
    settings = Settings()
    if database_url is not None:
        settings.database.url = database_url
    settings.plugins.enable = []  # the defaults, not what $HODEI_PLUGINS_ENABLE asks of this run
    parts = ["# Hodei settings. Every key is optional; shown here at its default.", ""]
    for section, field in Settings.model_fields.items():
        if field.exclude:
            continue
        model: BaseModel = getattr(settings, section)
        parts.append(f"# {_SECTION_HELP.get(section, '')}".rstrip())
        parts.append(f"[{section}]")
        values: dict[str, Any] = model.model_dump(mode="json")
        tables = []
        for key, subfield in type(model).model_fields.items():
            lines = [f"# {subfield.description}"] if subfield.description else []
            if isinstance(values[key], dict):
                example = values[key] or _TABLE_EXAMPLES.get((section, key), {})
                body = tomli_w.dumps(example).rstrip()
                tables += ["", *lines, f"[{section}.{key}]",
                           body if values[key] else "\n".join(f"# {line}" for line in body.splitlines())]
            elif (section, key) == ("database", "url") and database_url is None:
                parts += [*lines, f"# {tomli_w.dumps({key: 'sqlite:///hodei.db'}).rstrip()}"]
            elif values[key] is None:
                example = tomli_w.dumps({key: _UNSET_EXAMPLES.get((section, key), "")}).rstrip()
                parts += [*lines, *(f"# {line}" for line in example.splitlines())]
            else:
                parts += [*lines, tomli_w.dumps({key: values[key]}).rstrip()]
        parts += tables
        parts.append("")
    return "\n".join(parts)
