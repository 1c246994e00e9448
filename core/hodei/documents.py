"""Reading provider and requirement documents from TOML, YAML or JSON files (or standard input)."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from hodei.errors import InvalidInput, Problem

FORMATS = ("json", "toml", "yaml")
_BY_SUFFIX = {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}


def detect_format(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    if path == "-":
        return "json"
    fmt = _BY_SUFFIX.get(Path(path).suffix.lower())
    if fmt is None:
        raise InvalidInput(Problem("file", f"cannot tell the format of {path}: name it .json, .toml, .yaml "
                                           "or .yml, or pass --format"))
    return fmt


def parse_text(text: str, fmt: str, origin: str, field: str = "file") -> Any:
    """Parse ``text``; a syntax error is reported against ``field``."""
    try:
        if fmt == "json":
            return json.loads(text)
        if fmt == "toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(Problem(field, f"{origin} is not valid JSON: {exc.msg} at line {exc.lineno} "
                                           f"column {exc.colno}")) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(Problem(field, f"{origin} is not valid TOML: {exc}")) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(Problem(field, f"{origin} is not valid YAML: {exc}")) from None


def read_document(path: str, fmt: str | None = None) -> Any:
    """The parsed content of ``path`` (``-`` is standard input)."""
    fmt = detect_format(path, fmt)
    origin = "standard input" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(Problem("file", f"cannot read {origin}: {exc}")) from None
    return parse_text(text, fmt, origin)


def provider_list(document: Any) -> list[Any]:
    """Providers from a document: a list, ``{"providers": [...]}`` (TOML's ``[[providers]]``), or one."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and set(document) == {"providers"}:
        providers = document["providers"]
        if not isinstance(providers, list):
            raise InvalidInput(Problem("providers", "must be a list of provider objects"))
        return providers
    if isinstance(document, dict) and "name" in document:
        return [document]
    raise InvalidInput(Problem("file", "expected a list of providers, a 'providers' list, or one provider object"))
