"""Finding a provider row by name or id, reading what its columns hold, and the time conventions
every table shares."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from hodei.columns import UndecodedText, Unreadable, raw_text
from hodei.errors import NotFound, Problem
from hodei.models import ProviderConfigRow
from hodei.redaction import quote

# Shown for a timestamp a row does not hold readably (its problem says what it holds).
NO_MOMENT = datetime.fromtimestamp(0, UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` in UTC: SQLite hands back naive datetimes, PostgreSQL its session's time zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def maybe_aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def as_uuid(ref: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(ref, uuid.UUID):
        return ref
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def row_key(row_id: Any) -> uuid.UUID:
    """The id a row is known by in memory: its UUID, or for an id that is not one (edited in SQL) a UUID
    made from its text, the same at every read, so the row is tracked (and reported) as one row."""
    if isinstance(row_id, uuid.UUID):
        return row_id
    return uuid.uuid5(uuid.NAMESPACE_OID, f"hodei-unreadable-id:{raw_text(getattr(row_id, 'raw', row_id))}")


def shown_id(row_id: Any) -> str:
    """The id as an operator types it to find the row: the UUID, or the raw text of an id that is not one."""
    return str(row_id) if isinstance(row_id, uuid.UUID) else raw_text(getattr(row_id, "raw", row_id))


# What each of provider_configs' columns must hold to be used, and what is shown when it does not.
def _text(value: Any) -> bool:
    return isinstance(value, str)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31


_SHAPES: dict[str, tuple[Any, str, Any]] = {
    "name": (_text, "must be text", None),
    "provider_type": (_text, "must be text", ""),
    "config": (lambda v: isinstance(v, Mapping), "must be a JSON object", None),
    "status": (_text, "must be text", ""),
    "priority": (_integer, "must be an integer", 0),
    "max_workers": (_integer, "must be an integer", 0),
    "preferred_region": (lambda v: v is None or isinstance(v, str), "must be text or NULL", None),
    "allowed_regions": (lambda v: isinstance(v, list), "must be a JSON list", []),
    "required_labels": (lambda v: isinstance(v, Mapping), "must be a JSON object", {}),
    "annotations": (lambda v: isinstance(v, Mapping), "must be a JSON object", {}),
}


def _describe(value: Any) -> str:
    if value is None:
        return "NULL"
    kind = {dict: "an object", list: "a list", str: "text", bool: "a boolean", bytes: "bytes"}.get(type(value))
    return kind or f"a {type(value).__name__}"


def provider_values(row: ProviderConfigRow) -> tuple[dict[str, Any], list[Problem]]:
    """The seed's fields of ``row`` as they can be shown, and a problem for each column that holds
    something unusable (JSON that does not parse, the wrong type, bytes, NULL): such a column is shown
    as an empty value of its type (a name as its raw text), never as the raw value, which may hold a
    secret (a config) or break what prints it."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for field, (fits, rule, empty) in _SHAPES.items():
        value = getattr(row, field)
        if isinstance(value, (Unreadable, UndecodedText)):
            problems.append(Problem(field, f"cannot be read: {value.reason}"))
        elif not fits(value):
            problems.append(Problem(field, f"{rule}, the database holds {_describe(value)}"))
        else:
            values[field] = value
            continue
        values[field] = raw_text(getattr(value, "raw", value)) if field == "name" and value is not None else empty
    if values["name"] is None:
        values["name"] = f"(no name, id {shown_id(row.id)})"
    if isinstance(row.id, Unreadable):
        problems.insert(0, Problem("id", value_reason(row.id)))
    return values, problems


def moment(row: Any, field: str, problems: list[Problem]) -> datetime:
    """A timestamp column of ``row`` in UTC; one that is not a timestamp adds a problem and shows as 1970."""
    value = getattr(row, field)
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, Unreadable):
        reason = value_reason(value)
    elif isinstance(value, str):  # PostgreSQL's 'infinity', beyond what Python's datetime holds
        reason = f"cannot be read: is not a timestamp Hodei can use: {value[:100]!r}"
    else:
        reason = f"must be a timestamp, the database holds {_describe(value)}"
    problems.append(Problem(field, reason))
    return NO_MOMENT


def value_reason(value: Unreadable) -> str:
    return f"cannot be read: {value.reason}"


def find_provider_row(session: Session, ref: str | uuid.UUID, *, lock: bool = False) -> ProviderConfigRow:
    """A provider's row by name, or by id. ``lock``: FOR UPDATE on PostgreSQL (on SQLite the write
    session holds the database's write lock already).

    :raises NotFound: naming the reference.
    """
    row = None
    if isinstance(ref, uuid.UUID):  # the daemon's own calls: no name can be a UUID object
        row = session.get(ProviderConfigRow, ref, with_for_update=lock or None)
    else:
        query = select(ProviderConfigRow).where(ProviderConfigRow.name == str(ref))
        row = session.exec(query.with_for_update() if lock else query).first()
        as_id = as_uuid(ref) if row is None else None
        if as_id is not None:
            query = select(ProviderConfigRow).where(ProviderConfigRow.id == as_id)
            row = session.exec(query.with_for_update() if lock else query).first()
        if row is None and session.get_bind().dialect.name == "sqlite":
            row = _by_raw_id(session, str(ref))
    if row is None:
        raise NotFound(f"no provider named {quote(str(ref))}")
    return row


def _by_raw_id(session: Session, ref: str) -> ProviderConfigRow | None:
    """A row whose id was edited in SQL into something that is not a UUID as Hodei writes it (text, bytes,
    a number: SQLite keeps any), found by its id as shown (:func:`shown_id`), so such a row can still be
    shown, fixed and deleted. Only for references nothing else matched: it reads every id."""
    ids = session.execute(sa.text("SELECT id FROM provider_configs")).scalars().all()
    for raw in ids:
        if raw_text(raw) == ref:
            query = select(ProviderConfigRow).where(sa.text("provider_configs.id = :raw").bindparams(raw=raw))
            return session.exec(query).first()
    return None
