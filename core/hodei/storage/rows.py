"""Finding a provider row by name or id, and the time conventions every table shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import Session, select

from hodei.errors import NotFound
from hodei.models import ProviderConfigRow
from hodei.redaction import quote


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
    if row is None:
        raise NotFound(f"no provider named {quote(str(ref))}")
    return row
