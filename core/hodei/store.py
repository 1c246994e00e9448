"""The ``provider_configs`` store: every write validated through the provider type's plugin first.

Rows can also be written directly in SQL (the seed shows how), so every row read is validated
again; an invalid one is returned with its problems rather than raising.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from hodei.checks import after_check
from hodei.database import check_schema, create_engine
from hodei.domain import Capacity, HealthResult, HealthStatus, Provider, ProviderState, ProviderStatus, Resources
from hodei.errors import AlreadyExists, HodeiError, InvalidInput, NotFound, Problem
from hodei.masking import MASK, mask_secrets
from hodei.models import SLOT_STATES, ProviderConfigRow, ProviderHistoryRow, ProviderStateRow, WorkerRow, utcnow
from hodei.plugins import HodeiPluginManager
from hodei.provider_spec import PROVIDER_FIELDS, ProviderSpec, parse_provider


class StaleVersion(HodeiError):
    """An update carried the version it read, and the provider has changed since."""


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


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time Hodei shows is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Store:
    """Reads and writes providers. Sync: the daemon calls it from a worker thread."""

    def __init__(self, engine: Engine, pm: HodeiPluginManager, *, check: bool = True):
        self.engine = engine
        self.pm = pm
        if check:
            check_schema(engine)

    @classmethod
    def open(cls, url: str, pm: HodeiPluginManager, *, check: bool = True) -> Store:
        return cls(create_engine(url), pm, check=check)

    def close(self) -> None:
        self.engine.dispose()

    # -- reading ------------------------------------------------------------------------------

    def _read(self, row: ProviderConfigRow) -> StoredProvider:
        values = {name: getattr(row, name) for name in PROVIDER_FIELDS}
        problems: tuple[Problem, ...] = ()
        normalised = None
        try:
            _, normalised = parse_provider(values, self.pm)
        except InvalidInput as exc:
            problems = tuple(exc.problems)
        return StoredProvider(
            id=row.id, created_at=_aware(row.created_at), updated_at=_aware(row.updated_at),
            problems=problems, normalised_config=normalised, **values,
        )

    def list(self) -> list[StoredProvider]:
        with Session(self.engine) as session:
            rows = session.exec(select(ProviderConfigRow).order_by(ProviderConfigRow.name)).all()
            return [self._read(row) for row in rows]

    def get(self, ref: str | uuid.UUID) -> StoredProvider:
        """A provider by name, or by id."""
        with Session(self.engine) as session:
            return self._read(self._row(session, ref))

    def _row(self, session: Session, ref: str | uuid.UUID, *, lock: bool = False) -> ProviderConfigRow:
        row = None
        if isinstance(ref, uuid.UUID):  # the daemon's own calls: no name can be a UUID object
            row = session.get(ProviderConfigRow, ref, with_for_update=lock or None)
        else:
            query = select(ProviderConfigRow).where(ProviderConfigRow.name == str(ref))
            row = session.exec(query.with_for_update() if lock else query).first()
        if row is None and not isinstance(ref, uuid.UUID):
            as_id = _as_uuid(ref)
            if as_id is not None:
                query = select(ProviderConfigRow).where(ProviderConfigRow.id == as_id)
                row = session.exec(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"no provider named {str(ref)!r}")
        return row

    # -- run-time state ---------------------------------------------------------------------

    def states(self) -> dict[uuid.UUID, ProviderState]:
        """Every provider's last known health, load and capacity; a provider never checked has none."""
        with Session(self.engine) as session:
            states = {row.provider_id: _state(row) for row in session.exec(select(ProviderStateRow)).all()}
            slots = slot_counts(session)
        for provider_id in set(states) | set(slots):
            states[provider_id] = with_slots(states.get(provider_id, ProviderState()), slots.get(provider_id))
        return states

    def slot_counts(self) -> dict[uuid.UUID, tuple[int, int]]:
        with Session(self.engine) as session:
            return slot_counts(session)

    def state(self, ref: str | uuid.UUID) -> ProviderState:
        with Session(self.engine) as session:
            provider_id = self._row(session, ref).id
            row = session.get(ProviderStateRow, provider_id)
            state = _state(row) if row is not None else ProviderState()
            return with_slots(state, slot_counts(session, provider_id).get(provider_id))

    def record_check(self, ref: str | uuid.UUID, health: HealthResult | None = None,
                     capacity: Capacity | None = None) -> ProviderState:
        """Store one provider's health check and/or capacity report (``hodei providers check``, a failed
        provision), counted as the daemon counts them (:func:`hodei.checks.after_check`)."""
        with Session(self.engine) as session:
            provider_id = self._row(session, ref).id
            row = session.get(ProviderStateRow, provider_id)
        state = after_check(_state(row) if row is not None else ProviderState(), health, capacity)
        self.record_checks([(provider_id, state)])
        return self.state(provider_id)

    def record_checks(self, results: Sequence[tuple[uuid.UUID, ProviderState]]) -> int:
        """Store many providers' states from the health monitor in one transaction (a round of 1,000
        checks is a few writes, not 2,000), with a history entry for each change of health. Providers
        deleted meanwhile are skipped. Returns how many were written."""
        latest = dict(results)
        with Session(self.engine) as session:
            providers = {p.id: p for p in session.exec(
                select(ProviderConfigRow).where(ProviderConfigRow.id.in_(list(latest)))).all()}
            rows = {r.provider_id: r for r in session.exec(
                select(ProviderStateRow).where(ProviderStateRow.provider_id.in_(list(providers)))).all()}
            now = utcnow()
            for provider_id, provider in providers.items():
                state = latest[provider_id]
                row = rows.get(provider_id) or ProviderStateRow(provider_id=provider_id)
                new_health = state.health.value if state.health else None
                if new_health is not None and row.health != new_health:
                    session.add(ProviderHistoryRow(provider_id=provider_id, provider_name=provider.name, kind="health",
                                                   old_value=row.health, new_value=new_health,
                                                   cause=state.health_reason))
                row.health, row.health_reason = new_health, state.health_reason
                row.checked_at, row.check_duration_seconds = state.checked_at, state.check_duration_seconds
                row.consecutive_failures = state.consecutive_failures
                row.consecutive_successes = state.consecutive_successes
                if state.capacity_reported_at is not None:
                    row.active_workers = state.backend_workers or 0
                    row.capacity_cpu, row.capacity_memory = state.per_worker.cpu, state.per_worker.memory
                    row.capacity_gpu, row.capacity_reported_at = state.per_worker.gpu, state.capacity_reported_at
                row.updated_at = now
                session.add(row)
            session.commit()
            return len(providers)

    def transition_status(self, provider_id: uuid.UUID, expected: ProviderStatus, new: ProviderStatus,
                          cause: str) -> bool:
        """Set ``new`` only if the status is still ``expected`` (the health monitor's changes must never
        overwrite an operator's DISABLED or MAINTENANCE made meanwhile). Records it in the history."""
        with Session(self.engine) as session:
            provider = session.get(ProviderConfigRow, provider_id, with_for_update=True)
            if provider is None or provider.status != expected.value:
                return False
            provider.status = new.value
            provider.updated_at = utcnow()
            session.add(provider)
            session.add(ProviderHistoryRow(provider_id=provider.id, provider_name=provider.name, kind="status",
                                           old_value=expected.value, new_value=new.value, cause=cause))
            session.commit()
            return True

    def history(self, ref: str | uuid.UUID, limit: int = 50) -> list[ProviderHistoryRow]:
        """The provider's status and health changes, newest first (also of a deleted provider, by id)."""
        with Session(self.engine) as session:
            try:
                provider_id = self._row(session, ref).id
            except NotFound:
                provider_id = _as_uuid(ref)
                if provider_id is None:
                    raise
            query = (select(ProviderHistoryRow).where(ProviderHistoryRow.provider_id == provider_id)
                     .order_by(ProviderHistoryRow.at.desc(), ProviderHistoryRow.id.desc()).limit(limit))
            rows = list(session.exec(query).all())
            for row in rows:
                row.at = _aware(row.at)
            return rows

    # -- for the daemon: raw rows, validated one at a time -------------------------------------

    def raw_rows(self, ids: Sequence[uuid.UUID] | None = None) -> list[ProviderConfigRow]:
        """Rows as stored, not yet validated (the daemon validates only those that changed)."""
        with Session(self.engine) as session:
            query = select(ProviderConfigRow)
            if ids is not None:
                query = query.where(ProviderConfigRow.id.in_(list(ids)))
            rows = list(session.exec(query).all())
            session.expunge_all()
            return rows

    def read_row(self, row: ProviderConfigRow) -> StoredProvider:
        return self._read(row)

    # -- writing ------------------------------------------------------------------------------

    def create(self, document: Mapping[str, Any]) -> StoredProvider:
        spec, _ = parse_provider(document, self.pm)
        with Session(self.engine) as session:
            row = ProviderConfigRow(**_row_values(spec))
            if spec.id is not None:
                row.id = spec.id
            session.add(row)
            self._commit(session, spec.name)
            session.refresh(row)
            return self._read(row)

    def update(self, ref: str | uuid.UUID, changes: Mapping[str, Any] | None = None, *,
               merge_config: Mapping[str, Any] | None = None,
               expected_updated_at: datetime | None = None) -> StoredProvider:
        """Change some fields of one provider.

        :param changes: fields to set (the seed's names); ``config`` replaces the whole object.
        :param merge_config: keys merged into ``config`` after ``changes``, like the seed's
            ``config = config || '{...}'::jsonb`` (a shallow merge: top-level keys replaced).
        :param expected_updated_at: optimistic concurrency: refuse the change (:class:`StaleVersion`)
            unless the row's ``updated_at`` is still this, checked in the transaction that writes it.
        """
        changes = dict(changes or {})
        unknown = sorted(set(changes) - set(PROVIDER_FIELDS))
        if unknown:
            raise InvalidInput([Problem(name, "unknown field") for name in unknown])
        if merge_config is not None and not isinstance(merge_config, Mapping):
            raise InvalidInput(Problem("config", "a config merge must be an object"))
        with Session(self.engine) as session:
            row = self._row(session, ref, lock=True)
            if expected_updated_at is not None:
                self._check_version(session, row, expected_updated_at)
            document = {name: getattr(row, name) for name in PROVIDER_FIELDS} | changes
            if merge_config:
                current = document.get("config")
                document["config"] = {**(current if isinstance(current, Mapping) else {}), **merge_config}
            spec, _ = parse_provider(document, self.pm)
            self._assign(row, spec)
            session.add(row)
            self._commit(session, spec.name)
            session.refresh(row)
            return self._read(row)

    @staticmethod
    def _check_version(session: Session, row: ProviderConfigRow, expected: datetime) -> None:
        stale = StaleVersion(f"provider {row.name!r} changed since it was read (its version is now "
                             f"{_aware(row.updated_at).isoformat()}); read it again and retry")
        if _aware(row.updated_at) != _aware(expected):
            raise stale
        # Compare-and-set in this transaction: on PostgreSQL the row is locked already; on SQLite this
        # takes the write lock, so no other writer can slip in between the check and the write.
        guard = session.execute(sa.update(ProviderConfigRow)
                                .where(ProviderConfigRow.id == row.id, ProviderConfigRow.updated_at == row.updated_at)
                                .values(updated_at=row.updated_at).execution_options(synchronize_session=False))
        if guard.rowcount != 1:
            session.rollback()
            raise stale

    def set_status(self, ref: str | uuid.UUID, status: ProviderStatus | str, *,
                   cause: str = "set by an operator") -> StoredProvider:
        """Set only the status: works on an invalid row too, so a broken provider can be disabled."""
        try:
            value = ProviderStatus(status).value
        except ValueError:
            allowed = ", ".join(s.value for s in ProviderStatus)
            raise InvalidInput(Problem("status", f"must be one of {allowed}, got {status!r}")) from None
        with Session(self.engine) as session:
            row = self._row(session, ref, lock=True)
            if row.status != value:
                session.add(ProviderHistoryRow(provider_id=row.id, provider_name=row.name, kind="status",
                                               old_value=row.status, new_value=value, cause=cause))
                row.status = value
                row.updated_at = utcnow()
                session.add(row)
                session.commit()
                session.refresh(row)
            return self._read(row)

    def delete(self, ref: str | uuid.UUID) -> StoredProvider:
        with Session(self.engine) as session:
            row = self._row(session, ref, lock=True)
            removed = self._read(row)
            session.delete(row)
            session.commit()
            return removed

    def apply(self, documents: Sequence[Any], *, dry_run: bool = False) -> list[Change]:
        """Make the providers in ``documents`` exist as written, by name, in one transaction.

        Each document is a provider's whole desired state: a field left out takes its default,
        except ``status``, which a re-apply leaves as the operator or the health monitor set it.
        Nothing is written when any document is invalid, or with ``dry_run``.
        """
        specs = self._parse_all(documents)
        changes: list[Change] = []
        with Session(self.engine) as session:
            existing = {row.name: row for row in session.exec(
                select(ProviderConfigRow).where(ProviderConfigRow.name.in_([s.name for s, _ in specs]))
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
                self._commit(session, None)
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

    @staticmethod
    def _assign(row: ProviderConfigRow, spec: ProviderSpec) -> None:
        for key, value in _row_values(spec).items():
            setattr(row, key, value)
        row.updated_at = utcnow()

    @staticmethod
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


def slot_counts(session: Session, provider_id: uuid.UUID | None = None) -> dict[uuid.UUID, tuple[int, int]]:
    """Per provider, the workers holding a slot: (reserved: PROVISIONING, active: RUNNING or RELEASING)."""
    query = (select(WorkerRow.provider_id, WorkerRow.state, func.count()).where(WorkerRow.state.in_(SLOT_STATES))
             .group_by(WorkerRow.provider_id, WorkerRow.state))
    if provider_id is not None:
        query = query.where(WorkerRow.provider_id == provider_id)
    counts: dict[uuid.UUID, tuple[int, int]] = {}
    for found_id, state, count in session.exec(query).all():
        reserved, active = counts.get(found_id, (0, 0))
        counts[found_id] = (reserved + count, active) if state == "PROVISIONING" else (reserved, active + count)
    return counts


def with_slots(state: ProviderState, slots: tuple[int, int] | None) -> ProviderState:
    """The state with its load taken from the workers table, which is what max_workers limits."""
    reserved, active = slots or (0, 0)
    return replace(state, active_workers=active, reserved_workers=reserved)


def _state(row: ProviderStateRow) -> ProviderState:
    return ProviderState(
        health=HealthStatus(row.health) if row.health else None, health_reason=row.health_reason,
        checked_at=_aware(row.checked_at) if row.checked_at else None,
        check_duration_seconds=row.check_duration_seconds,
        # The row's own worker columns predate the workers table; the load comes from that table.
        backend_workers=row.active_workers if row.capacity_reported_at else None,
        per_worker=Resources(cpu=row.capacity_cpu, memory=row.capacity_memory, gpu=row.capacity_gpu),
        capacity_reported_at=_aware(row.capacity_reported_at) if row.capacity_reported_at else None,
        consecutive_failures=row.consecutive_failures, consecutive_successes=row.consecutive_successes,
    )


def _row_values(spec: ProviderSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude={"id"})


def _as_uuid(ref: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(ref, uuid.UUID):
        return ref
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def masked_config(config: Any, provider_type: Any, pm: HodeiPluginManager) -> Any:
    """``config`` with its type's secret fields shown as ``***``; all of it hidden when the
    type's plugin is not loaded, since nothing then says which of its values are secrets."""
    ptype = pm.provider_types.get(provider_type) if isinstance(provider_type, str) else None
    if ptype is None:
        return MASK
    return mask_secrets(config, ptype.secret_fields) if isinstance(config, Mapping) else config


def masked_document(provider: StoredProvider, pm: HodeiPluginManager) -> dict[str, Any]:
    """A provider in the seed's field names, JSON-ready, with secret config values masked."""
    return {
        "id": str(provider.id),
        "name": provider.name,
        "provider_type": provider.provider_type,
        "config": masked_config(provider.config, provider.provider_type, pm),
        "status": provider.status,
        "priority": provider.priority,
        "max_workers": provider.max_workers,
        "preferred_region": provider.preferred_region,
        "allowed_regions": provider.allowed_regions,
        "required_labels": provider.required_labels,
        "annotations": provider.annotations,
        "created_at": provider.created_at.isoformat(),
        "updated_at": provider.updated_at.isoformat(),
        "valid": provider.valid,
        "problems": [p.as_dict() for p in provider.problems],
    }
