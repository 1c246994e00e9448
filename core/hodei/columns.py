"""Column types that read whatever a row holds without raising.

Rows can be written in plain SQL, so a column may hold anything its database lets it: JSON text that
does not parse, an id that is not a UUID, a timestamp that is not one (SQLite keeps any value in any
column). SQLAlchemy's own types raise while a query's rows are fetched, which would take every other
row of the query down with the broken one. These types hand back an :class:`Unreadable` instead,
which :mod:`hodei.storage.rows` reports as the row's problem, and write it back as it was read.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator


@dataclass(frozen=True)
class Unreadable:
    """A column value as the driver gave it (text, bytes, a number), with why it cannot be used."""

    raw: Any
    reason: str

    def __str__(self) -> str:
        return raw_text(self.raw)


def raw_text(raw: Any) -> str:
    """A value as text to show an operator: bytes decoded with the undecodable ones escaped."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "backslashreplace")
    return str(raw)


class UndecodedText(str):
    """Text SQLite holds that is not UTF-8 (``CAST(x'ff' AS TEXT)``), as the text of its bytes with the
    undecodable ones escaped (``\\xff``): printable anywhere, never raising, and recognisable, so the row
    reader reports the column as unreadable. ``raw`` is what the database holds."""

    raw: bytes
    reason: str

    def __new__(cls, raw: bytes) -> UndecodedText:
        text = super().__new__(cls, raw.decode("utf-8", "backslashreplace"))
        text.raw = raw
        try:
            raw.decode("utf-8")
            text.reason = "is not UTF-8 text"
        except UnicodeDecodeError as exc:
            text.reason = f"is not UTF-8 text (byte {exc.start + 1} is not)"
        return text


def sqlite_text(raw: bytes) -> str:
    """SQLite's ``text_factory``: the standard one raises while a query's rows are fetched when one value
    is not UTF-8, which takes every other row (and the daemon's reload) down with it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodedText(raw)


def _json_reason(raw: Any) -> str:
    if isinstance(raw, UndecodedText):
        return raw.reason
    if isinstance(raw, (str, bytes)):
        try:
            json.loads(raw)
        except RecursionError:
            return "nests objects and lists deeper than Hodei reads"
        except ValueError as exc:
            if isinstance(exc, UnicodeDecodeError):
                return "is not UTF-8 text"
            if "digits" in str(exc):
                return "holds a number too long to read (more than 4300 digits)"
            # JSONDecodeError says where, never what: the text may hold a secret.
            return f"is not valid JSON ({exc})"
    return f"is not JSON text (the database holds {type(raw).__name__})"


def tolerant_json_loads(data: str | bytes) -> Any:
    """psycopg's JSON loader: jsonb keeps numbers and nesting Python will not read back, and the
    driver's own loader would fail the whole query; such a value comes back as :class:`Unreadable`."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return Unreadable(data, _json_reason(data))


class _Tolerant(TypeDecorator[Any]):
    cache_ok = True

    def reason(self, raw: Any, exc: Exception) -> str:
        raise NotImplementedError

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        inner = super().result_processor(dialect, coltype)
        if inner is None:
            return None

        def process(value: Any) -> Any:
            if isinstance(value, UndecodedText):
                return Unreadable(value.raw, value.reason)
            try:
                return inner(value)
            except Exception as exc:  # what the column holds is data, never a reason to fail the query
                return Unreadable(value, self.reason(value, exc))
        return process

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        inner = super().bind_processor(dialect)

        def process(value: Any) -> Any:
            if isinstance(value, Unreadable):  # written back as it was read (a row found by its raw id)
                return value.raw
            return value if inner is None else inner(value)
        return process


class JSONDocument(_Tolerant):
    """jsonb on PostgreSQL (so the seed's ``config || '{...}'::jsonb`` works); JSON text on SQLite."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> Any:
        return dialect.type_descriptor(postgresql.JSONB() if dialect.name == "postgresql" else sa.JSON())

    def reason(self, raw: Any, exc: Exception) -> str:
        return _json_reason(raw)


class RowId(_Tolerant):
    """A UUID; on SQLite, text of 32 lowercase hex digits (what Hodei writes and looks rows up by)."""

    impl = sa.Uuid
    cache_ok = True

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        process = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or process is None:
            return process

        def canonical(value: Any) -> Any:
            found = process(value)
            if isinstance(found, uuid.UUID) and value != found.hex:
                # A UUID in another spelling (dashes, capitals): usable, but no lookup by id would find
                # it, and no write would reach it, so it is reported rather than used.
                return Unreadable(value, f"is not a UUID as Hodei stores it (32 lowercase hex digits): "
                                         f"{raw_text(value)!r}")
            return found
        return canonical

    def reason(self, raw: Any, exc: Exception) -> str:
        return f"is not a UUID: {raw_text(raw)[:100]!r}"


class Moment(_Tolerant):
    """A timestamp with time zone."""

    impl = sa.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def reason(self, raw: Any, exc: Exception) -> str:
        return f"is not a timestamp: {raw_text(raw)[:100]!r}"
