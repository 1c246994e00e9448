"""Failed provisions counted where every daemon sees the same streak: in ``provider_state``.

A provision's outcome is counted in a transaction that holds the provider row's lock (as health
results are: :mod:`hodei.storage.health_results`), so ``after_failures = 3`` means three failed
provisions of that provider in a row whichever daemons ran them. A cooldown starting and ending is
written to the provider's history (kind ``cooldown``) in that same transaction, once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.engine import Engine

from hodei import cooldown, limits
from hodei.cooldown import Policy, Streak
from hodei.database import write_session
from hodei.domain import ProviderState
from hodei.models import ProviderConfigRow, ProviderHistoryRow, ProviderStateRow, utcnow
from hodei.redaction import shorten
from hodei.storage.provider_state import _state
from hodei.storage.rows import find_provider_row


def _streak(state: ProviderState) -> Streak:
    return Streak(state.provision_failures, state.cooldown_until, state.last_provision_error)


def _write(row: ProviderStateRow, streak: Streak) -> None:
    row.provision_failures, row.cooldown_until = streak.failures, streak.until
    # A backend's error can be megabytes: what is kept says that it was cut.
    row.last_provision_error = shorten(streak.last_error, limits.HEALTH_REASON_CHARS)
    row.updated_at = utcnow()


def _history(provider: ProviderConfigRow, old: str | None, new: str, cause: str, actor: str) -> ProviderHistoryRow:
    return ProviderHistoryRow(provider_id=provider.id, provider_name=provider.name, kind="cooldown",
                              old_value=old, new_value=new, cause=shorten(cause, limits.HEALTH_REASON_CHARS),
                              actor=actor)


def _until(moment: datetime) -> str:
    return f"until {moment.isoformat(timespec='seconds')}"


def record_outcome(engine: Engine, provider_id: uuid.UUID, error: str | None, now: datetime,
                   policy: Policy, *, actor: str) -> Streak | None:
    """Count one provision of ``provider_id`` that failed with ``error`` (None: it succeeded) at ``now``;
    a cooldown it starts or ends goes to the history as ``actor``'s (:mod:`hodei.actors`).

    Returns the provider's streak as written; None when the provider was deleted meanwhile, or when a
    success found no streak to end (nothing is written then)."""
    with write_session(engine) as session:
        provider = session.get(ProviderConfigRow, provider_id, with_for_update=True)
        if provider is None:
            return None
        row = session.get(ProviderStateRow, provider_id) or ProviderStateRow(provider_id=provider_id)
        before = _streak(_state(row))
        if error is None:
            if before.failures == 0 and before.until is None:
                return None
            after = cooldown.after_success()
            if before.until is not None:
                session.add(_history(provider, _until(before.until), "ended",
                                     f"a provision succeeded after {before.failures} failed in a row", actor))
        else:
            after = cooldown.after_failure(before, error, now, policy)
            if after.until is not None and cooldown.cooling(after.until, now) and not cooldown.cooling(before.until, now):
                session.add(_history(provider, None, _until(after.until),
                                     f"{after.failures} failed provisions in a row; the last: {error}", actor))
        _write(row, after)
        session.add(row)
        session.commit()
        return _streak(_state(row))


def reset(engine: Engine, ref: str | uuid.UUID, *, actor: str) -> tuple[uuid.UUID, str, Streak]:
    """End a provider's streak and cooldown by hand, as ``actor`` (:mod:`hodei.actors`).

    Returns its id, its name and the streak it had (``Streak()``: nothing to end, nothing written).

    :raises NotFound: no provider is named ``ref``.
    """
    with write_session(engine) as session:
        provider = find_provider_row(session, ref, lock=True)
        row = session.get(ProviderStateRow, provider.id)
        before = _streak(_state(row))
        if row is not None and before != Streak():
            if before.until is not None:
                session.add(_history(provider, _until(before.until), "ended",
                                     f"reset by hand after {before.failures} failed provisions in a row", actor))
            _write(row, cooldown.after_success())
            session.add(row)
            session.commit()
        return provider.id, provider.name, before
