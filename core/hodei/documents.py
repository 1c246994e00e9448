"""Reading provider and requirement documents from TOML, YAML or JSON files (or standard input).

JSON may carry comments and trailing commas (JSONC, read as JSON5), so a commented example from the
docs can be pasted as it is. Standard input without ``--format`` is sniffed: a first line that is a TOML
table header or ``key = value`` is TOML, ``{`` or ``[`` starts JSON, anything else is YAML.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from hodei.errors import InvalidInput, Problem

FORMATS = ("json", "toml", "yaml")
_BY_SUFFIX = {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}


# The first significant line of a TOML document: a table header ([x], [[x]], [x.y]) or a key = value pair.
_TOML_HEADER = re.compile(r"""^\[\[?\s*[A-Za-z0-9_\-."' ]+\s*\]\]?\s*(#.*)?$""")
_TOML_PAIR = re.compile(r"""^(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"))*\s*=""")
_JSON5_ERROR = re.compile(r"^<string>:(?P<line>\d+) (?P<what>.*) at column (?P<column>\d+)$")


def sniff_format(text: str) -> str:
    """The format of a document given without a name (standard input): TOML, JSON or YAML."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//", "/*", "*")):
            continue  # comments of any of the three (TOML and YAML '#', JSONC '//' and '/* */')
        if _TOML_HEADER.match(stripped) or _TOML_PAIR.match(stripped):
            return "toml"
        if stripped.startswith(("{", "[")):
            return "json"
        return "yaml"
    return "json"


def detect_format(path: str, explicit: str | None, text: str | None = None) -> str:
    """``explicit``, else the format the file name says, else (standard input) the one ``text`` looks like."""
    if explicit:
        return explicit
    if path == "-":
        return sniff_format(text or "")
    fmt = _BY_SUFFIX.get(Path(path).suffix.lower())
    if fmt is None:
        raise InvalidInput(Problem("file", f"cannot tell the format of {path}: name it .json, .toml, .yaml "
                                           "or .yml, or pass --format"))
    return fmt


def parse_text(text: str, fmt: str, origin: str, field: str = "file") -> Any:
    """Parse ``text``; a syntax error is reported against ``field``."""
    try:
        if fmt == "json":
            return _json(text)
        if fmt == "toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except _NotJson as exc:
        raise InvalidInput(Problem(field, f"{origin} is not valid JSON: {exc}")) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(Problem(field, f"{origin} is not valid TOML: {exc}")) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(Problem(field, f"{origin} is not valid YAML: {exc}")) from None


class _NotJson(ValueError):
    pass


def _json(text: str) -> Any:
    try:
        return json.loads(text)  # the common case, and fast
    except json.JSONDecodeError as strict:
        first = strict
    import json5  # comments and trailing commas (JSONC) are read as JSON5, which is a superset

    try:
        return json5.loads(text)
    except ValueError as exc:
        found = _JSON5_ERROR.match(str(exc))
        if found is None:  # a message of another shape: the strict parser's is the one to show
            raise _NotJson(f"{first.msg} at line {first.lineno} column {first.colno}") from None
        raise _NotJson(f"{found['what']} at line {found['line']} column {found['column']}") from None


def read_text(path: str, field: str = "file") -> str:
    """The text of ``path`` (``-`` is standard input); a file that cannot be read is reported against ``field``."""
    origin = "standard input" if path == "-" else path
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(Problem(field, f"cannot read {origin}: {exc}")) from None


def read_document(path: str, fmt: str | None = None, field: str = "file") -> Any:
    """The parsed content of ``path`` (``-`` is standard input, its format sniffed unless ``fmt`` says)."""
    if path != "-":
        detect_format(path, fmt)  # an unknown file name is refused before the file is read
    text = read_text(path, field)
    origin = "standard input" if path == "-" else path
    return parse_text(text, detect_format(path, fmt, text), origin, field=field)


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
