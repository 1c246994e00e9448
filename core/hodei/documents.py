"""Reading provider and requirement documents from TOML, YAML or JSON files (or standard input).

JSON may carry comments and trailing commas (JSONC, read as JSON5), so a commented example from the
docs can be pasted as it is. Standard input without ``--format`` is sniffed: a first line that is a TOML
table header or ``key = value`` is TOML, ``{`` or ``[`` starts JSON, anything else is YAML.
"""

from __future__ import annotations

import json
import math
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from hodei import limits
from hodei.errors import InvalidInput, Problem
from hodei.redaction import quote

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


class _DuplicateKey(ValueError):
    def __init__(self, key: str, line: int | None = None, column: int | None = None):
        super().__init__(key)
        self.key, self.line, self.column = key, line, column


def _json_object(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


# libyaml's parser when PyYAML has it: linear, and it stops at 1,000 levels of nesting, where the pure
# Python parser spends seconds on a few thousand brackets.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooLarge(ValueError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _expanded_size(root: yaml.Node, most: int) -> int:
    """How many values the document holds once every alias is expanded, counted over the node graph
    (each node once, so linear in the text however the aliases nest).

    :raises _TooLarge: past ``most``, or for an alias inside the node it names (which never ends)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
            else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > most:
                raise _TooLarge(f"expands to more than {most:,} values through its aliases")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _TooLarge("holds an alias inside the value it names, which never ends")
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise _TooLarge("holds an alias inside the value it names, which never ends")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


class _StrictYamlLoader(_SafeLoader):  # type: ignore[valid-type,misc]  # a base chosen at import time
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently),
    and a document whose aliases expand it past ``expansion_limit`` values before anything walks it."""

    expansion_limit = limits.YAML_VALUES

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, self.expansion_limit)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: merged below, its keys overridable
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor below says so
                continue
            if duplicate:
                mark = key_node.start_mark
                raise _DuplicateKey(str(key), mark.line + 1, mark.column + 1)
        return super().construct_mapping(node, deep=deep)


def _json_position(text: str, key: str) -> tuple[int, int] | None:
    # The second place the key is written: json reports no positions to a hook, so look for it.
    pattern = re.compile(re.escape(json.dumps(key)[1:-1]).join(['"', r'"\s*:']))
    places = [m.start() for _, m in zip(range(2), pattern.finditer(text), strict=False)]
    if len(places) < 2:
        return None
    line = text.count("\n", 0, places[1]) + 1
    return line, places[1] - (text.rfind("\n", 0, places[1]) + 1) + 1


def _unquoted(problem: str) -> str:
    # PyYAML's problems quote tokens ("expected ',' or '}', but got '<stream end>'") and sometimes the
    # document's own text (an alias name, a tag): tokens stay, text does not.
    def keep(match: re.Match[str]) -> str:
        inner = match[0][1:-1]
        return match[0] if len(inner) <= 2 or (inner.startswith("<") and inner.endswith(">")) else "(text not shown)"

    return re.sub(r"'[^']*'|\"[^\"]*\"", keep, problem)


def parse_text(text: str, fmt: str, origin: str, field: str = "file") -> Any:
    """Parse ``text``; a syntax error is reported against ``field`` by line and column, never quoting
    the text (it may hold a secret). A key given twice, nesting deeper than :data:`hodei.limits.NESTING`
    and numbers Python will not read are refused too, never a traceback."""
    name = {"json": "JSON", "toml": "TOML", "yaml": "YAML"}[fmt]
    try:
        if fmt == "json":
            value = _json(text)
        elif fmt == "toml":
            value = tomllib.loads(text)
        else:
            loader = _StrictYamlLoader(text)  # a SafeLoader
            # Aliases may repeat what a document holds, never multiply it: a document of N characters
            # expands to at most max(N, YAML_VALUES) values, so every later walk stays linear.
            loader.expansion_limit = max(len(text), limits.YAML_VALUES)
            try:
                value = loader.get_single_data()
            finally:
                loader.dispose()
    except _DuplicateKey as exc:
        where = (exc.line, exc.column) if exc.line else _json_position(text, exc.key)
        at = f" at line {where[0]} column {where[1]}" if where else ""
        raise InvalidInput(Problem(field, f"{origin} gives the key {quote(exc.key)} twice{at}; "
                                          "each key may appear once")) from None
    except _NotJson as exc:
        raise InvalidInput(Problem(field, f"{origin} is not valid JSON: {exc}")) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message is a description and "(at line L, column C)": no content of the file.
        raise InvalidInput(Problem(field, f"{origin} is not valid TOML: {exc}")) from None
    except _TooLarge as exc:
        raise InvalidInput(Problem(field, f"{origin} {exc.reason}")) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        what = _unquoted(exc.problem or "a syntax error")
        raise InvalidInput(Problem(field, f"{origin} is not valid YAML: {what}{at}")) from None
    except yaml.YAMLError:
        raise InvalidInput(Problem(field, f"{origin} is not valid YAML")) from None
    except RecursionError:
        raise InvalidInput(Problem(field, f"{origin} nests objects and lists more than {limits.NESTING} "
                                          "levels deep")) from None
    except (ValueError, OverflowError) as exc:
        # Python refuses integers of more than 4300 digits (and such) rather than spend quadratic time.
        reason = "holds a number too long to read" if "digit" in str(exc) else f"holds a value {name} cannot give"
        raise InvalidInput(Problem(field, f"{origin} {reason}; numbers are limited to 4300 digits")) from None
    deep = [p for p in unstorable_values(value) if p.reason.startswith("nests")]
    if deep:  # refused here, before anything recurses into it
        raise InvalidInput(Problem(field, f"{origin}: {deep[0]}"))
    return value


_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _text_fault(text: str) -> str | None:
    # PostgreSQL text and jsonb hold neither U+0000 nor lone surrogates; refuse them on every
    # backend alike, naming the field, rather than let the database fail the write.
    found = _UNSTORABLE_TEXT.search(text)
    if found is None:
        return None
    if found[0] == "\x00":
        return "contains a NUL character (U+0000), which the database cannot store"
    return "is not valid Unicode text (it holds a lone surrogate)"


def _path(parent: str, key: Any, depth: int) -> str:
    if depth < 0:  # the document itself
        return str(key)
    return f"{parent}[{key}]" if isinstance(key, int) else (f"{parent}.{key}" if parent else str(key))


def unstorable_values(document: Any, path: str = "") -> list[Problem]:
    """What no field can hold, wherever it is in ``document``: text the database cannot store, numbers
    that are not numbers (NaN, Infinity), nesting deeper than :data:`hodei.limits.NESTING`. Iterative
    and linear, so no document can make it recurse or run long; a path is spelled out only for a
    problem or a container."""
    found: list[Problem] = []
    # (container, its path, its depth): its items are looked at here, containers among them pushed.
    stack: list[tuple[Any, str, int]] = [({"": document}, "", -1)] if path == "" else [({path: document}, "", -1)]
    while stack and len(found) < 20:
        container, at, depth = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            if isinstance(key, str) and depth >= 0:
                fault = _text_fault(key)
                if fault:
                    found.append(Problem(at, f"key {quote(key)} {fault}"))
            if isinstance(item, str):
                fault = _text_fault(item)
                if fault:
                    found.append(Problem(_path(at, key, depth), fault))
            elif isinstance(item, float):
                if not math.isfinite(item):
                    found.append(Problem(_path(at, key, depth), f"must be a finite number, got {item}"))
            elif isinstance(item, (dict, list, Mapping)):
                child = _path(at, key, depth)
                if depth + 1 >= limits.NESTING:
                    found.append(Problem(child, f"nests objects and lists more than {limits.NESTING} levels deep"))
                else:
                    stack.append((item if isinstance(item, (dict, list)) else dict(item), child, depth + 1))
    return sorted(found, key=lambda p: p.field)


def read_text(path: str, field: str = "file") -> str:
    """The text of ``path`` (``-`` is standard input), at most :data:`hodei.limits.DOCUMENT_BYTES` of UTF-8;
    more is refused without being read."""
    origin = "standard input" if path == "-" else path
    try:
        if path == "-":
            stream = getattr(sys.stdin, "buffer", None)
            raw = (stream.read(limits.DOCUMENT_BYTES + 1) if stream is not None
                   else sys.stdin.read(limits.DOCUMENT_BYTES + 1).encode("utf-8", "surrogatepass"))
        else:
            with Path(path).open("rb") as file:
                raw = file.read(limits.DOCUMENT_BYTES + 1)
        if len(raw) > limits.DOCUMENT_BYTES:
            raise InvalidInput(Problem(field, f"{origin} is larger than {limits.DOCUMENT_BYTES} bytes, "
                                              "the most a document may be"))
        return raw.decode("utf-8")
    except OSError as exc:
        raise InvalidInput(Problem(field, f"cannot read {origin}: {exc.strerror or exc}")) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(Problem(field, f"cannot read {origin}: it is not UTF-8 text "
                                          f"(byte {exc.start + 1} is not)")) from None


class _NotJson(ValueError):
    pass


# Comments and trailing commas are read in documents up to this size (hand-written ones); larger ones
# must be plain JSON.
_JSON5_MOST = 1024 * 1024


def _json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_json_object)  # the common case, and fast
    except json.JSONDecodeError as strict:
        first = strict
    if len(text) > _JSON5_MOST:  # json5 is pure Python: a large broken document would hold a core for long
        raise _NotJson(f"{first.msg} at line {first.lineno} column {first.colno}") from None
    import json5  # comments and trailing commas (JSONC) are read as JSON5, which is a superset

    try:
        return json5.loads(text, object_pairs_hook=_json_object)
    except _DuplicateKey:
        raise
    except ValueError as exc:
        found = _JSON5_ERROR.match(str(exc))
        if found is None:  # a message of another shape: the strict parser's is the one to show
            raise _NotJson(f"{first.msg} at line {first.lineno} column {first.colno}") from None
        raise _NotJson(f"{found['what']} at line {found['line']} column {found['column']}") from None


def read_document(path: str, fmt: str | None = None, field: str = "file") -> Any:
    """The parsed content of ``path`` (``-`` is standard input, its format sniffed unless ``fmt`` says),
    at most :data:`hodei.limits.DOCUMENT_BYTES`."""
    if path != "-":
        detect_format(path, fmt)  # an unknown file name is refused before the file is read
    text = read_text(path, field)
    origin = "standard input" if path == "-" else path
    return parse_text(text, detect_format(path, fmt, text), origin, field=field)


# What `providers show/list -o json` print beside the provider's own fields: Hodei writes them, so an
# export given back to `apply` leaves them out (secrets come back as ***, which keeps them).
SHOWN_ONLY = ("created_at", "updated_at", "valid", "problems", "state")


def _written(provider: Any) -> Any:
    if isinstance(provider, dict) and "updated_at" in provider:
        return {key: value for key, value in provider.items() if key not in SHOWN_ONLY}
    return provider


def provider_list(document: Any) -> list[Any]:
    """Providers from a document: a list, ``{"providers": [...]}`` (TOML's ``[[providers]]``), or one;
    a ``providers show`` or ``list -o json`` export too."""
    if isinstance(document, list):
        return [_written(provider) for provider in document]
    if isinstance(document, dict) and set(document) == {"providers"}:
        providers = document["providers"]
        if not isinstance(providers, list):
            raise InvalidInput(Problem("providers", "must be a list of provider objects"))
        return [_written(provider) for provider in providers]
    if isinstance(document, dict) and "name" in document:
        return [_written(document)]
    raise InvalidInput(Problem("file", "expected a list of providers, a 'providers' list, or one provider object"))


# A list of records (jobs, trace events) may also be JSON Lines: one JSON object a line.
LINE_FORMATS = ("jsonl",)
RECORD_FORMATS = (*FORMATS, *LINE_FORMATS)


def read_records(path: str, fmt: str | None = None, field: str = "file", key: str = "jobs") -> list[Any]:
    """A list of records from ``path``: JSON Lines (``.jsonl``, ``.ndjson`` or ``fmt="jsonl"``; blank lines
    and lines starting with ``#`` skipped), or a JSON or YAML list, or ``{KEY: [...]}`` (TOML's
    ``[[KEY]]``). Read through the same guards as every document (size, duplicate keys, nesting); a
    faulty line is named by its number."""
    if fmt == "jsonl" or (fmt is None and path.endswith((".jsonl", ".ndjson"))):
        text = read_text(path, field)
        origin = "standard input" if path == "-" else path
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                records.append(parse_text(stripped, "json", f"{origin} line {number}", field=field))
        return records
    document = read_document(path, fmt, field=field)
    if isinstance(document, dict) and set(document) == {key}:
        document = document[key]
    if not isinstance(document, list):
        raise InvalidInput(Problem(field, f"expected a list of {key} (JSON Lines, a JSON or YAML list, or "
                                          f"TOML [[{key}]] tables), got {type(document).__name__}"))
    return document
