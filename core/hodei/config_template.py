"""``hodei config init``: a commented ``hodei.toml`` holding every setting at its default."""

from __future__ import annotations

from typing import Any

import tomli_w
from pydantic import BaseModel

from hodei.settings import Settings

_SECTION_HELP = {
    "database": "Where provider configs live. SQLite is the embedded default; use PostgreSQL in production.",
    "plugins": "Which installed plugins (entry points in the 'hodei' group) are loaded.",
    "health": "Provider health checks.",
}


def render_default_config(database_url: str = "sqlite:///hodei.db") -> str:
    """TOML text for a default ``hodei.toml``: tomli-w writes the values, each preceded by its help."""
    settings = Settings()
    settings.database.url = database_url
    parts = ["# Hodei settings. Every key is optional; shown here at its default.", ""]
    for section, field in Settings.model_fields.items():
        if field.exclude:
            continue
        model: BaseModel = getattr(settings, section)
        parts.append(f"# {_SECTION_HELP.get(section, '')}".rstrip())
        parts.append(f"[{section}]")
        values: dict[str, Any] = model.model_dump(mode="json")
        for key, subfield in type(model).model_fields.items():
            if subfield.description:
                parts.append(f"# {subfield.description}")
            parts.append(tomli_w.dumps({key: values[key]}).rstrip())
        parts.append("")
    return "\n".join(parts)
