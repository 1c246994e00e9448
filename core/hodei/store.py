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

from hodei.columns import UndecodedText, raw_text
from hodei.database import check_schema, create_engine, write_session
from hodei.domain import Provider, ProviderStatus
from hodei.errors import AlreadyExists, Conflict, InvalidInput, Problem, StaleVersion
from hodei.masking import keep_masked_secrets
from hodei.models import ProviderConfigRow, ProviderHistoryRow, utcnow
from hodei.plugins import HodeiPluginManager
from hodei.provider_change import ProviderChange
from hodei.provider_spec import PROVIDER_FIELDS, ProviderSpec, parse_provider, printable_name
from hodei.redaction import quote, shorten
from hodei.storage.rows import aware, find_provider_row, moment, provider_values, row_key, shown_id

__all__ = ["Change", "StaleVersion", "Store", "StoredProvider"]

# What a change shows as the value before for a column that could not be read.
UNREADABLE = "(cannot be read)"
# How often an apply runs again when a name it creates was taken meanwhile by another door.
APPLY_ATTEMPTS = 3


# A provider's name as the database sorts it: ("text", str), or on SQLite ("undecoded", bytes) for
# text that is not UTF-8 and ("blob", bytes) for bytes, so a page ends and the next starts exactly
# there whatever a row edited in SQL holds.
NameKey = tuple[str, Any]


def name_key(name: Any) -> NameKey:
    if isinstance(name, UndecodedText):
        return ("undecoded", name.raw)
    if isinstance(name, bytes):
        return ("blob", name)
    return ("text", str(name))


def _after(key: NameKey) -> Any:
    kind, value = key
    if kind == "undecoded":  # compared byte for byte, as SQLite compares the stored text
        return sa.text("provider_configs.name > CAST(:after AS TEXT)").bindparams(after=value)
    return sa.text("provider_configs.name > :after").bindparams(after=value)


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
    # The id as stored, when it is not a UUID Hodei can use (``id`` is then made from it): how the
    # operator names the row to show, fix or delete it.
    raw_id: str | None = None

    @property
    def ref(self) -> str:
        """The id as shown, and as the row is found by."""
        return self.raw_id if self.raw_id is not None else str(self.id)

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
    action: str  # "create", "update", "unchanged" or "delete" (with prune)
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (before, after)
    id: uuid.UUID | None = None  # the provider's; None for one a dry run would create


class Store:
    """Reads and writes providers through their plugins. Sync: the daemon calls it from a worker thread."""

    def __init__(self, engine: Engine, pm: HodeiPluginManager, *, check: bool = True):
        self.engine = engine
        self.pm = pm
        if check:
            check_schema(engine)

    @classmethod
    def open(cls, url: str, pm: HodeiPluginManager, *, check: bool = True, create: bool = False) -> Store:
        """A store on an existing database (a missing SQLite file is an error, unless ``create``: only
        ``hodei serve`` creates one, see :func:`hodei.database.create_engine`)."""
        return cls(create_engine(url, create=create), pm, check=check)

    def close(self) -> None:
        self.engine.dispose()

    # -- reading ------------------------------------------------------------------------------

    def read_row(self, row: ProviderConfigRow) -> StoredProvider:
        """A row as stored, validated through its plugin now (the daemon reads rows raw and validates only
        those that changed)."""
        values, problems = provider_values(row)
        created_at, updated_at = moment(row, "created_at", problems), moment(row, "updated_at", problems)
        normalised = None
        try:
            _, normalised = parse_provider(values, self.pm)
        except InvalidInput as exc:
            broken = {p.field for p in problems}  # said already, by what the column holds
            problems += [p for p in exc.problems if p.field.split(".")[0].split("[")[0] not in broken]
        raw_id = None if isinstance(row.id, uuid.UUID) else shown_id(row.id)
        return StoredProvider(
            id=row_key(row.id), created_at=created_at, updated_at=updated_at, problems=tuple(problems),
            normalised_config=None if problems else normalised, raw_id=raw_id, **values,
        )

    def all(self) -> list[StoredProvider]:
        """Every provider, by name."""
        with Session(self.engine) as session:
            rows = session.exec(select(ProviderConfigRow).order_by(ProviderConfigRow.name)).all()
            return [self.read_row(row) for row in rows]

    def page(self, after: NameKey | None, limit: int) -> list[tuple[StoredProvider, NameKey]]:
        """At most ``limit`` providers by name, from the first whose name sorts after ``after`` (``None``:
        from the first), each with the key the next page starts after."""
        with Session(self.engine) as session:
            query = select(ProviderConfigRow).order_by(ProviderConfigRow.name).limit(limit)
            if after is not None:
                query = query.where(_after(after))
            return [(self.read_row(row), name_key(row.name)) for row in session.exec(query).all()]

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

    def _kept_secrets(self, document: Any, stored: ProviderConfigRow | None) -> Any:
        """``document`` with each ``***`` in a secret field replaced by the secret ``stored`` holds there
        (a config shown masked and written back keeps its secrets).

        :raises InvalidInput: a mask with no stored secret behind it, naming the field.
        """
        if not isinstance(document, Mapping) or "config" not in document:
            return document
        provider_type = document.get("provider_type")
        ptype = self.pm.provider_types.get(provider_type) if isinstance(provider_type, str) else None
        previous = (stored.config if stored is not None and stored.provider_type == provider_type
                    and isinstance(stored.config, Mapping) else None)
        config, problems = keep_masked_secrets(document["config"], previous,
                                               ptype.secret_fields if ptype is not None else None)
        if problems:
            name = document.get("name")
            raise InvalidInput(problems, subject=f"provider {quote(name)}" if isinstance(name, str) else None)
        return {**document, "config": config}

    def create(self, document: Mapping[str, Any], *, actor: str | None = None) -> StoredProvider:
        spec, _ = parse_provider(self._kept_secrets(document, None), self.pm)
        with write_session(self.engine) as session:
            row = ProviderConfigRow(**_row_values(spec))
            if spec.id is not None:
                row.id = spec.id
            session.add(row)
            _created_history(session, row, "created", actor)
            _commit(session, spec.name)
            return self.read_row(row)

    def update(self, ref: str | uuid.UUID, change: ProviderChange, *, actor: str | None = None) -> StoredProvider:
        """Make ``change`` to one provider: read, changed, validated and written in one transaction that
        holds the row (FOR UPDATE on PostgreSQL, the write lock on SQLite), so a concurrent change is
        waited for and kept, never overwritten.

        :raises StaleVersion: ``change.expected_version`` is not the row's version any more.
        """
        with write_session(self.engine) as session:
            row = find_provider_row(session, ref, lock=True)
            values, broken = provider_values(row)
            version = moment(row, "updated_at", broken)
            if change.expected_version is not None and version != aware(change.expected_version):
                raise StaleVersion(f"provider {quote(values['name'])} changed since it was read (its version is now "
                                   f"{version.isoformat()}); read it again and retry")
            # A column that cannot be read is replaced whole or not at all: a merge into it (config keys,
            # labels) would silently drop what it held.
            kept = [p for p in broken if p.field in PROVIDER_FIELDS and p.field not in change.fields]
            if kept:
                raise InvalidInput([Problem(p.field, f"{p.reason}; give a whole new {p.field} to fix it")
                                    for p in kept], subject=f"provider {quote(values['name'])}")
            changed = change.applied_to(values)
            spec, _ = parse_provider(self._kept_secrets(changed, row), self.pm)
            _status_history(session, row, spec.name, spec.status, "changed by an update", actor)
            wanted = _row_values(spec)
            _changed_history(session, row, spec.name, {k: (getattr(row, k), v) for k, v in wanted.items()
                                                       if getattr(row, k) != v}, "changed by an update", actor)
            for key, value in wanted.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.add(row)
            _commit(session, spec.name)
            return self.read_row(row)

    def set_status(self, ref: str | uuid.UUID, status: ProviderStatus | str, *,
                   cause: str = "set by an operator", actor: str | None = None) -> StoredProvider:
        """Set only the status: works on an invalid row too, so a broken provider can be disabled."""
        try:
            value = ProviderStatus(status).value
        except ValueError:
            allowed = ", ".join(s.value for s in ProviderStatus)
            raise InvalidInput(Problem("status", f"must be one of {allowed}, got {status!r}")) from None
        with write_session(self.engine) as session:
            row = find_provider_row(session, ref, lock=True)
            if row.status != value:
                name = provider_values(row)[0]["name"]
                session.add(ProviderHistoryRow(provider_id=row.id, provider_name=name, kind="status",
                                               old_value=raw_text(row.status), new_value=value, cause=cause,
                                               actor=actor))
                row.status = value
                row.updated_at = utcnow()
                session.add(row)
                _commit(session, name)
            return self.read_row(row)

    def delete(self, ref: str | uuid.UUID, *, actor: str | None = None) -> StoredProvider:
        with write_session(self.engine) as session:
            row = find_provider_row(session, ref, lock=True)
            removed = self.read_row(row)
            _deleted_history(session, row, "deleted", actor)
            session.delete(row)
            _commit(session, row.name)
            return removed

    def apply(self, documents: Sequence[Any], *, dry_run: bool = False, prune: bool = False,
              actor: str | None = None) -> list[Change]:
        """Make the providers in ``documents`` exist as written, by name, in one transaction.

        Each document is a provider's whole desired state: a field left out takes its default,
        except ``status``, which a re-apply leaves as the operator or the health monitor set it.
        With ``prune``, the providers ``documents`` do not name are deleted (listed last, by name).
        Nothing is written when any document is invalid, or with ``dry_run``.
        """
        if not isinstance(documents, Sequence) or isinstance(documents, (str, bytes)):
            raise InvalidInput(Problem("providers", "must be a list of provider objects"))
        for attempt in range(APPLY_ATTEMPTS):
            try:
                return self._apply(documents, dry_run=dry_run, prune=prune, actor=actor)
            except AlreadyExists:
                # A provider of one of these names was created through another door (`providers add`,
                # CreateProvider) after this apply read the table: run again, it is an update now.
                if attempt == APPLY_ATTEMPTS - 1:
                    raise Conflict("providers of these names kept being created while this apply ran; "
                                   "nothing was applied, try again") from None
        raise AssertionError("unreachable")

    def _apply(self, documents: Sequence[Any], *, dry_run: bool, prune: bool, actor: str | None) -> list[Change]:
        changes: list[Change] = []
        with write_session(self.engine) as session:
            if not dry_run:
                _serialize_applies(session)
            names = {d["name"] for d in documents if isinstance(d, Mapping) and isinstance(d.get("name"), str)}
            query = select(ProviderConfigRow)
            if not prune:
                query = query.where(col(ProviderConfigRow.name).in_(sorted(names)))
            existing = {row.name: row for row in session.exec(query.with_for_update()).all()}
            # Read under the lock first: a masked secret written back keeps the secret stored.
            specs = self._parse_all(documents, existing)
            for spec, given in specs:
                changes.append(_apply_one(session, spec, given, existing.get(spec.name), dry_run, actor))
            wanted_names = {spec.name for spec, _ in specs}
            for name in sorted(set(existing) - wanted_names):
                row = existing[name]
                changes.append(Change(name, "delete", {}, row.id))
                if not dry_run:
                    _deleted_history(session, row, "deleted by an apply that prunes", actor)
                    session.delete(row)
            if dry_run:
                session.rollback()
            else:
                _commit(session, None)
        return changes

    def _parse_all(self, documents: Sequence[Any], existing: Mapping[str, ProviderConfigRow],
                   ) -> list[tuple[ProviderSpec, set[str]]]:
        specs, problems, seen = [], [], set()
        for index, document in enumerate(documents):
            label = f"providers[{index}]"
            name = document.get("name") if isinstance(document, Mapping) else None
            try:
                stored = existing.get(name) if isinstance(name, str) else None
                spec, _ = parse_provider(self._kept_secrets(document, stored), self.pm)
            except InvalidInput as exc:
                if isinstance(name, str):
                    prefix = f"{label} ({name if printable_name(name) else quote(name, 40)})"
                else:
                    prefix = label
                problems += [p.nested(prefix) if p.field else Problem(prefix, p.reason) for p in exc.problems]
                continue
            if spec.name in seen:
                problems.append(Problem(f"{label}.name", f"{spec.name!r} appears more than once"))
            seen.add(spec.name)
            specs.append((spec, set(document)))
        if problems:
            raise InvalidInput(problems, subject="nothing applied")
        return specs


def _serialize_applies(session: Session) -> None:
    """Wait for any other apply on this database to end, and make the next ones wait for this one.

    On PostgreSQL a row lock cannot hold a row that does not exist yet: two applies would each read
    the table without the other's new rows, and a prune would miss them (or both would create the same
    name). A transaction-level advisory lock, one per schema, makes applies take turns; the table is
    read after it is taken, so each sees the previous apply's commit. Other writers are not held up.
    On SQLite the write session's BEGIN IMMEDIATE serializes every writer already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.hodei.apply'))"))


def _apply_one(session: Session, spec: ProviderSpec, given: set[str], row: ProviderConfigRow | None,
               dry_run: bool, actor: str | None) -> Change:
    """One document of an apply against its row (``None``: it creates one)."""
    if row is None:
        new = ProviderConfigRow(**_row_values(spec))
        if spec.id is not None:
            new.id = spec.id
        if not dry_run:
            session.add(new)
            _created_history(session, new, "created by an apply", actor)
        return Change(spec.name, "create", {k: (None, v) for k, v in _row_values(spec).items()},
                      None if dry_run else new.id)
    if spec.id is not None and spec.id != row.id:
        raise InvalidInput(Problem("id", f"{spec.name!r} exists with id {row.id}, not {spec.id}"))
    wanted = _row_values(spec)
    if "status" not in given:
        wanted["status"] = row.status
    shown, broken = provider_values(row)  # a column that cannot be read is replaced whole
    for problem in broken:
        if problem.field in shown:
            shown[problem.field] = UNREADABLE
    diff = {k: (shown[k], v) for k, v in wanted.items() if getattr(row, k) != v}
    if diff and not dry_run:
        _status_history(session, row, spec.name, wanted["status"], "changed by an apply", actor)
        _changed_history(session, row, spec.name, {k: (getattr(row, k), v) for k, (_, v) in diff.items()},
                         "changed by an apply", actor)
        for key, (_, value) in diff.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        session.add(row)
    return Change(spec.name, "update" if diff else "unchanged", diff, row.id)


def _status_history(session: Session, row: ProviderConfigRow, name: str, status: str, cause: str,
                    actor: str | None) -> None:
    """A status that a write of the whole row changes goes to the history, like a status set on its own."""
    if row.status != status:
        session.add(ProviderHistoryRow(provider_id=row.id, provider_name=name, kind="status",
                                       old_value=raw_text(row.status), new_value=status, cause=cause,
                                       actor=actor))


def _created_history(session: Session, row: ProviderConfigRow, cause: str, actor: str | None) -> None:
    """A new provider goes to the history: TO is its type."""
    session.add(ProviderHistoryRow(provider_id=row.id, provider_name=row.name, kind="created", old_value=None,
                                   new_value=raw_text(row.provider_type), cause=cause, actor=actor))


def _deleted_history(session: Session, row: ProviderConfigRow, cause: str, actor: str | None) -> None:
    """A deleted provider's history is kept (read by its id): FROM is the type it had."""
    session.add(ProviderHistoryRow(provider_id=row.id, provider_name=provider_values(row)[0]["name"], kind="deleted",
                                   old_value=raw_text(row.provider_type), new_value="", cause=cause, actor=actor))


def _changed_history(session: Session, row: ProviderConfigRow, name: str, diff: Mapping[str, tuple[Any, Any]],
                     cause: str, actor: str | None) -> None:
    """A change of anything but the status (which has its own entries) goes to the history: TO names the
    fields changed, never their values; a config by the keys changed, so a secret is never written here."""
    fields = changed_fields(diff)
    if fields:
        session.add(ProviderHistoryRow(provider_id=row.id, provider_name=name, kind="changed", old_value=None,
                                       new_value=", ".join(fields), cause=cause, actor=actor))


def changed_fields(diff: Mapping[str, tuple[Any, Any]]) -> list[str]:
    """The names of the fields ``diff`` (field -> (before, after)) changes, status left out: ``config.KEY``
    for each top-level config key added, removed or changed (``config`` when either side is not a mapping)."""
    names = []
    for field_name in sorted(diff):
        before, after = diff[field_name]
        if field_name == "status" or before == after:
            continue
        if field_name == "config" and isinstance(before, Mapping) and isinstance(after, Mapping):
            keys = {raw_text(k) for k in (*before, *after) if before.get(k) != after.get(k)}
            names += [f"config.{shorten(key, 80) if key.isprintable() else quote(key, 80)}" for key in sorted(keys)] or ["config"]
        else:
            names.append(field_name)
    return names


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
