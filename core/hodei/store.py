"""The ``provider_configs`` table seen through the plugins: every write validated by the provider
type's plugin first, every read validated again.

Rows can also be written directly in SQL (the seed shows how), so an invalid row is returned with
its problems rather than raising. Run-time state and history are :mod:`hodei.storage.provider_state`'s;
worker slots are counted in :mod:`hodei.storage.slots`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hodei.database import check_schema, create_engine, write_session
from hodei.domain import Provider, ProviderStatus
from hodei.errors import AlreadyExists, InvalidInput, Problem, StaleVersion
from hodei.models import ProviderConfigRow, ProviderHistoryRow, utcnow
from hodei.plugins import HodeiPluginManager
from hodei.provider_change import ProviderChange
from hodei.provider_spec import PROVIDER_FIELDS, ProviderSpec, parse_provider
from hodei.storage.rows import aware, find_provider_row

__all__ = ["Change", "StaleVersion", "Store", "StoredProvider"]


@dataclass(frozen=True)
class StoredProvider:
    """A row of ``provider_configs`` as read, with whatever makes it unusable."""

    id: uuid.UUID
    name: str
    provider_type: str
    config: dict[str, Any]
    status: str
    priority: int
    max_workers: int
    preferred_region: str | None
    allowed_regions: list[str]
    required_labels: dict[str, str]
    annotations: dict[str, str]
    created_at: datetime
    updated_at: datetime
    problems: tuple[Problem, ...] = ()
    normalised_config: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        return not self.problems

    def document(self) -> dict[str, Any]:
        """The seed's fields, as an operator writes them (no id, no timestamps)."""
        return {name: getattr(self, name) for name in PROVIDER_FIELDS}

    def to_provider(self) -> Provider:
        """The view hooks receive. :raises InvalidInput: for an invalid row."""
        if self.problems:
            raise InvalidInput(list(self.problems), subject=f"provider {self.name!r}")
        assert self.normalised_config is not None
        return Provider(
            id=self.id, name=self.name, provider_type=self.provider_type, config=self.normalised_config,
            status=ProviderStatus(self.status), priority=self.priority, max_workers=self.max_workers,
            preferred_region=self.preferred_region, allowed_regions=tuple(self.allowed_regions),
            required_labels=dict(self.required_labels), annotations=dict(self.annotations),
        )


@dataclass(frozen=True)
class Change:
    """What ``apply`` did, or would do, to one provider."""

    name: str
    action: str  # "create", "update" or "unchanged"
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (before, after)


class Store:
    """Reads and writes providers through their plugins. Sync: the daemon calls it from a worker thread."""

    def __init__(self, engine: Engine, pm: HodeiPluginManager, *, check: bool = True):
        self.engine = engine
        self.pm = pm
        if check:
            check_schema(engine)

    @classmethod
    def open(cls, url: str, pm: HodeiPluginManager, *, check: bool = True) -> Store:
        """A store on an existing database (a missing SQLite file is an error, never created here)."""
        return cls(create_engine(url, create=False), pm, check=check)

    def close(self) -> None:
        self.engine.dispose()

    # -- reading ------------------------------------------------------------------------------

    def read_row(self, row: ProviderConfigRow) -> StoredProvider:
        """A row as stored, validated through its plugin now (the daemon reads rows raw and validates only
        those that changed)."""
        values = {name: getattr(row, name) for name in PROVIDER_FIELDS}
        problems: tuple[Problem, ...] = ()
        normalised = None
        try:
            _, normalised = parse_provider(values, self.pm)
        except InvalidInput as exc:
            problems = tuple(exc.problems)
        return StoredProvider(
            id=row.id, created_at=aware(row.created_at), updated_at=aware(row.updated_at),
            problems=problems, normalised_config=normalised, **values,
        )

    def all(self) -> list[StoredProvider]:
        """Every provider, by name."""
        with Session(self.engine) as session:
            rows = session.exec(select(ProviderConfigRow).order_by(ProviderConfigRow.name)).all()
            return [self.read_row(row) for row in rows]

    def get(self, ref: str | uuid.UUID) -> StoredProvider:
        """A provider by name, or by id."""
        with Session(self.engine) as session:
            return self.read_row(find_provider_row(session, ref))

    def raw_rows(self, ids: Sequence[uuid.UUID] | None = None) -> list[ProviderConfigRow]:
        """Rows as stored, not yet validated."""
        with Session(self.engine) as session:
            query = select(ProviderConfigRow)
            if ids is not None:
                query = query.where(col(ProviderConfigRow.id).in_(list(ids)))
            rows = list(session.exec(query).all())
            session.expunge_all()
            return rows

    # -- writing ------------------------------------------------------------------------------

    def create(self, document: Mapping[str, Any]) -> StoredProvider:
        spec, _ = parse_provider(document, self.pm)
        with write_session(self.engine) as session:
            row = ProviderConfigRow(**_row_values(spec))
            if spec.id is not None:
                row.id = spec.id
            session.add(row)
            _commit(session, spec.name)
            session.refresh(row)
            return self.read_row(row)

    def update(self, ref: str | uuid.UUID, change: ProviderChange) -> StoredProvider:
        """Make ``change`` to one provider: read, changed, validated and written in one transaction that
        holds the row (FOR UPDATE on PostgreSQL, the write lock on SQLite), so a concurrent change is
        waited for and kept, never overwritten.

        :raises StaleVersion: ``change.expected_version`` is not the row's version any more.
        """
        with write_session(self.engine) as session:
            row = find_provider_row(session, ref, lock=True)
            if change.expected_version is not None and aware(row.updated_at) != aware(change.expected_version):
                raise StaleVersion(f"provider {row.name!r} changed since it was read (its version is now "
                                   f"{aware(row.updated_at).isoformat()}); read it again and retry")
            spec, _ = parse_provider(change.applied_to({name: getattr(row, name) for name in PROVIDER_FIELDS}),
                                     self.pm)
            for key, value in _row_values(spec).items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.add(row)
            _commit(session, spec.name)
            session.refresh(row)
            return self.read_row(row)

    def set_status(self, ref: str | uuid.UUID, status: ProviderStatus | str, *,
                   cause: str = "set by an operator") -> StoredProvider:
        """Set only the status: works on an invalid row too, so a broken provider can be disabled."""
        try:
            value = ProviderStatus(status).value
        except ValueError:
            allowed = ", ".join(s.value for s in ProviderStatus)
            raise InvalidInput(Problem("status", f"must be one of {allowed}, got {status!r}")) from None
        with write_session(self.engine) as session:
            row = find_provider_row(session, ref, lock=True)
            if row.status != value:
                session.add(ProviderHistoryRow(provider_id=row.id, provider_name=row.name, kind="status",
                                               old_value=row.status, new_value=value, cause=cause))
                row.status = value
                row.updated_at = utcnow()
                session.add(row)
                _commit(session, row.name)
                session.refresh(row)
            return self.read_row(row)

    def delete(self, ref: str | uuid.UUID) -> StoredProvider:
        with write_session(self.engine) as session:
            row = find_provider_row(session, ref, lock=True)
            removed = self.read_row(row)
            session.delete(row)
            _commit(session, row.name)
            return removed

    def apply(self, documents: Sequence[Any], *, dry_run: bool = False) -> list[Change]:
        """Make the providers in ``documents`` exist as written, by name, in one transaction.

        Each document is a provider's whole desired state: a field left out takes its default,
        except ``status``, which a re-apply leaves as the operator or the health monitor set it.
        Nothing is written when any document is invalid, or with ``dry_run``.
        """
        specs = self._parse_all(documents)
        changes: list[Change] = []
        with write_session(self.engine) as session:
            existing = {row.name: row for row in session.exec(
                select(ProviderConfigRow).where(col(ProviderConfigRow.name).in_([s.name for s, _ in specs]))
                .with_for_update()).all()}
            for spec, given in specs:
                row = existing.get(spec.name)
                if row is None:
                    changes.append(Change(spec.name, "create", {k: (None, v) for k, v in _row_values(spec).items()}))
                    if not dry_run:
                        new = ProviderConfigRow(**_row_values(spec))
                        if spec.id is not None:
                            new.id = spec.id
                        session.add(new)
                    continue
                if spec.id is not None and spec.id != row.id:
                    raise InvalidInput(Problem("id", f"{spec.name!r} exists with id {row.id}, not {spec.id}"))
                wanted = _row_values(spec)
                if "status" not in given:
                    wanted["status"] = row.status
                diff = {k: (getattr(row, k), v) for k, v in wanted.items() if getattr(row, k) != v}
                changes.append(Change(spec.name, "update" if diff else "unchanged", diff))
                if diff and not dry_run:
                    for key, (_, value) in diff.items():
                        setattr(row, key, value)
                    row.updated_at = utcnow()
                    session.add(row)
            if dry_run:
                session.rollback()
            else:
                _commit(session, None)
        return changes

    def _parse_all(self, documents: Sequence[Any]) -> list[tuple[ProviderSpec, set[str]]]:
        if not isinstance(documents, Sequence) or isinstance(documents, (str, bytes)):
            raise InvalidInput(Problem("providers", "must be a list of provider objects"))
        specs, problems, seen = [], [], set()
        for index, document in enumerate(documents):
            label = f"providers[{index}]"
            try:
                spec, _ = parse_provider(document, self.pm)
            except InvalidInput as exc:
                name = document.get("name") if isinstance(document, Mapping) else None
                prefix = f"{label} ({name})" if isinstance(name, str) else label
                problems += [p.nested(prefix) if p.field else Problem(prefix, p.reason) for p in exc.problems]
                continue
            if spec.name in seen:
                problems.append(Problem(f"{label}.name", f"{spec.name!r} appears more than once"))
            seen.add(spec.name)
            specs.append((spec, set(document)))
        if problems:
            raise InvalidInput(problems, subject="nothing applied")
        return specs


def _commit(session: Session, name: str | None) -> None:
    try:
        session.commit()
    except sa.exc.IntegrityError as exc:
        session.rollback()
        # The unique constraint answers "is the name taken", race-free; or the database refused a value.
        message = str(exc.orig).lower()
        if "unique" in message or "duplicate" in message:
            raise AlreadyExists(f"a provider named {name!r} exists already" if name
                                else "a provider with one of these names exists already") from None
        raise InvalidInput(Problem("", f"the database refused the change: {exc.orig}")) from None
    except sa.exc.DataError as exc:
        session.rollback()
        raise InvalidInput(Problem("", f"the database refused a value: {str(exc.orig).splitlines()[0]}")) from None


def _row_values(spec: ProviderSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude={"id"})
