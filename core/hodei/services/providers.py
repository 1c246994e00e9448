"""Providers as every entry point manages them: the plugin-validated rows, their state and history,
with secrets masked in everything shown."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio

from hodei import actors, limits
from hodei.calls import run_blocking
from hodei.domain import Capacity, HealthResult, Provider, ProviderState, ProviderStatus
from hodei.errors import InvalidInput, NotFound, Problem
from hodei.masking import MASK, masked_config
from hodei.plugins import HodeiPluginManager
from hodei.provider_change import ProviderChange
from hodei.redaction import quote
from hodei.services import listing
from hodei.services.cooldowns import LocalCooldowns
from hodei.services.health import LocalHealth, Result
from hodei.services.views import CheckOutcome, CheckReport, CooldownReset, HistoryEntry, ProviderView, sorted_pairs
from hodei.settings import CooldownSettings, HealthSettings
from hodei.storage.provider_state import ProviderStates
from hodei.store import Change, Store, StoredProvider

# The statuses an operator sets; UNHEALTHY is the health monitor's.
OPERATOR_STATUSES = tuple(s.value for s in ProviderStatus if s is not ProviderStatus.UNHEALTHY)
# The longest a check made on demand may be given, as [health] timeout_seconds: a caller cannot hold the
# daemon's checks open for ever.
MAX_CHECK_TIMEOUT = 300.0
DEFAULT_CHECK_TIMEOUT = 5.0
MAX_CHECK_NAMES = 1000  # more is a check of every provider


def _matcher(provider_type: str | None, status: str | None, region: str | None,
             labels: Mapping[str, str] | None) -> Callable[[StoredProvider], bool]:
    if status is not None and status not in {s.value for s in ProviderStatus}:
        allowed = ", ".join(s.value for s in ProviderStatus)
        raise InvalidInput(Problem("status", f"must be one of {allowed}, got {quote(status)}"))

    def matches(p: StoredProvider) -> bool:
        regions = [p.preferred_region, *(p.allowed_regions if isinstance(p.allowed_regions, list) else [])]
        own = p.required_labels if isinstance(p.required_labels, dict) else {}
        return ((provider_type is None or p.provider_type == provider_type)
                and (status is None or p.status == status)
                and (region is None or region in regions)
                and all(own.get(k) == v for k, v in (labels or {}).items()))
    return matches


class LocalProviders:
    """The providers service on the database. Sync: the daemon runs it in its database threads.

    Every change it records in a provider's history names its actor (:mod:`hodei.actors`): the one a
    method is given (the API: the caller), else ``actor`` (the CLI: its user; default, this process's).
    """

    def __init__(self, store: Store, states: ProviderStates, pm: HodeiPluginManager, health: LocalHealth | None = None,
                 cooldowns: LocalCooldowns | None = None, *, actor: str | None = None,
                 check_timeout: float = DEFAULT_CHECK_TIMEOUT):
        self.store, self.states, self.pm = store, states, pm
        # Its checks' results are written by the health service, the one write path for health.
        self.health = health or LocalHealth(store, pm, HealthSettings())
        self.actor = actor or actors.cli()
        self.cooldowns = cooldowns or LocalCooldowns(store, CooldownSettings(), actor=self.actor)
        self.check_timeout = check_timeout  # [health] timeout_seconds: a check's, when not given one

    # -- what is shown ------------------------------------------------------------------------

    def _secret_fields(self, provider_type: Any) -> tuple[str, ...] | None:
        ptype = self.pm.provider_types.get(provider_type) if isinstance(provider_type, str) else None
        return None if ptype is None else ptype.secret_fields

    def view(self, provider: StoredProvider, state: ProviderState | None = None) -> ProviderView:
        """``provider`` as shown, its type's secret config values masked; its state read if not given."""
        document = {
            "id": provider.ref, "name": provider.name, "provider_type": provider.provider_type,
            "config": masked_config(provider.config, self._secret_fields(provider.provider_type)),
            "status": provider.status, "priority": provider.priority, "max_workers": provider.max_workers,
            "preferred_region": provider.preferred_region, "allowed_regions": provider.allowed_regions,
            "required_labels": sorted_pairs(provider.required_labels),
            "annotations": sorted_pairs(provider.annotations),
            "created_at": provider.created_at.isoformat(), "updated_at": provider.updated_at.isoformat(),
            "valid": provider.valid, "problems": [p.as_dict() for p in provider.problems],
        }
        if state is None:
            try:
                state = self.states.of(provider.id if provider.raw_id is None else provider.raw_id)
            except NotFound:  # deleted right after this change was committed: the change was still made
                state = ProviderState()
        return ProviderView(document, state)

    # -- the Providers protocol ---------------------------------------------------------------

    def find(self, *, provider_type: str | None = None, status: str | None = None,
             region: str | None = None, labels: Mapping[str, str] | None = None,
             limit: int | None = None) -> list[ProviderView]:
        """Every provider that matches (the first ``limit``), read a page at a time: what is held at once
        beside the answer is one page, whatever the number of providers."""
        views: list[ProviderView] = []
        token = ""
        while limit is None or len(views) < limit:
            size = listing.MAX_PAGE if limit is None else min(listing.MAX_PAGE, limit - len(views))
            page, token = self.page(provider_type=provider_type, status=status, region=region, labels=labels,
                                    page_size=size, page_token=token)
            views += page
            if not token:
                break
        return views

    def page(self, *, provider_type: str | None = None, status: str | None = None, region: str | None = None,
             labels: Mapping[str, str] | None = None, page_size: int = 0,
             page_token: str = "") -> tuple[list[ProviderView], str]:
        """One page of :meth:`find`'s list (``page_size`` providers, by name, from where ``page_token``
        says) and the token of the next page ("" after the last): what is read and held is bounded by
        the page, whatever the number of providers."""
        size, after = listing.page_size(page_size), listing.after(page_token)
        matches = _matcher(provider_type, status, region, labels)
        found: list[StoredProvider] = []
        while len(found) < size:
            batch = self.store.page(after, size)
            for provider, key in batch:
                after = key
                if matches(provider):
                    found.append(provider)
                    if len(found) == size:
                        break
            if len(batch) < size:
                break
        states = self.states.of_ids([p.id for p in found])
        views = [self.view(p, states.get(p.id, ProviderState())) for p in found]
        return views, listing.token(after) if len(found) == size and after is not None else ""

    def get(self, ref: str | uuid.UUID) -> ProviderView:
        return self.view(self.store.get(ref))

    def create(self, document: Mapping[str, Any], *, actor: str | None = None) -> ProviderView:
        return self.view(self.store.create(document, actor=actor or self.actor))

    def update(self, ref: str | uuid.UUID, change: ProviderChange, *, actor: str | None = None) -> ProviderView:
        if not change:
            raise InvalidInput(Problem("", "nothing to change"))
        return self.view(self.store.update(ref, change, actor=actor or self.actor))

    def set_status(self, ref: str | uuid.UUID, status: str, cause: str, *, actor: str | None = None) -> ProviderView:
        if status not in OPERATOR_STATUSES:
            raise InvalidInput(Problem("status", f"must be one of {', '.join(OPERATOR_STATUSES)} (UNHEALTHY is "
                                                 f"set by the health monitor), got {quote(status)}"))
        return self.view(self.store.set_status(ref, status, cause=cause, actor=actor or self.actor))

    def delete(self, ref: str | uuid.UUID, *, actor: str | None = None) -> ProviderView:
        state = self.states.of(ref)  # the row and its state go together
        return self.view(self.store.delete(ref, actor=actor or self.actor), state)

    def reset_cooldown(self, ref: str | uuid.UUID, *, actor: str | None = None) -> CooldownReset:
        provider_id, ended = self.cooldowns.reset(ref, actor=actor or self.actor)
        return CooldownReset(self.view(self.store.get(provider_id)), ended)

    def history(self, ref: str | uuid.UUID, limit: int = 50) -> list[HistoryEntry]:
        """The newest ``limit`` changes, read a page at a time."""
        if limit < 1:
            raise InvalidInput(Problem("limit", f"must be at least 1, got {limit}"))
        entries: list[HistoryEntry] = []
        token = ""
        while len(entries) < limit:
            page, token = self.history_page(ref, min(limits.LISTED, limit - len(entries)), token)
            entries += page
            if not token:
                break
        return entries

    def history_page(self, ref: str | uuid.UUID, limit: int = 50,
                     page_token: str = "") -> tuple[list[HistoryEntry], str]:
        """``limit`` changes, newest first, after where ``page_token`` says, and the next page's token ("" after
        the oldest). :raises InvalidInput: a limit past :data:`hodei.limits.LISTED`, a token not ours."""
        if not 1 <= limit <= limits.LISTED:
            raise InvalidInput(Problem("limit", f"must be between 1 and {limits.LISTED}, got {limit}"))
        entries, last = self.states.history_page(ref, limit, listing.after_row("history", page_token, int))
        return entries, "" if last is None else listing.row_token("history", last)

    # -- on the database only -----------------------------------------------------------------

    def apply(self, documents: Sequence[Any], *, dry_run: bool = False, prune: bool = False,
              actor: str | None = None) -> list[Change]:
        """``Store.apply``, with secret config values masked in the changes it reports."""
        changes = self.store.apply(documents, dry_run=dry_run, prune=prune, actor=actor or self.actor)
        types = {d.get("name"): d.get("provider_type") for d in documents if isinstance(d, Mapping)}
        return [self._masked_change(c, types.get(c.name)) for c in changes]

    def _masked_change(self, change: Change, provider_type: Any) -> Change:
        if "config" not in change.fields:
            return change
        secrets = self._secret_fields(provider_type)
        before, after = (masked_config(side, secrets) for side in change.fields["config"])
        if before == after:  # only a secret changed: say so without showing it
            after = f"{MASK} (a secret changed)"
        return Change(change.name, change.action, {**change.fields, "config": (before, after)}, change.id)

    def record_outside_changes(self, seen: Sequence[tuple[uuid.UUID, ProviderStatus, ProviderStatus, str]],
                               ) -> list[tuple[str, str, str]]:
        """Status changes made in SQL, outside Hodei, that the daemon's change watcher saw, into the history,
        once across replicas: :meth:`hodei.storage.provider_state.ProviderStates.record_outside_changes`."""
        return self.states.record_outside_changes(seen)

    def record_check(self, ref: str | uuid.UUID, health: HealthResult | None = None,
                     capacity: Capacity | None = None, *, actor: str | None = None) -> ProviderState:
        """Record one check's answer through the health service (counted, and the status rules applied, as
        the daemon records them); returns the provider's state after it."""
        provider_id = self.store.get(ref).id
        recorded = self.health.record([Result(provider_id, health, capacity)], actor=actor or self.actor)
        try:
            return self.states.of(provider_id)
        except NotFound:  # deleted right after: what was recorded was recorded all the same
            if recorded:
                return recorded[0].state
            raise

    async def check_now(self, names: Sequence[str], timeout: float | None = None, *, actor: str | None = None,
                        call: Callable[..., Awaitable[Any]] = run_blocking) -> CheckReport:
        """Check the named providers (every valid one when none are named) now, at once, each within
        ``timeout`` (default: :attr:`check_timeout`), and record what they answer through the health service.
        Invalid rows are left out of a check of all, and named, refused. ``call`` runs the database reads and
        writes off the event loop (the daemon's database link); the checks themselves run on the loop, like
        the health monitor's."""
        timeout = self.check_timeout if timeout is None else timeout
        if not 0 < timeout <= MAX_CHECK_TIMEOUT:  # also NaN
            raise InvalidInput(Problem("timeout_seconds", f"must be more than 0 and at most {MAX_CHECK_TIMEOUT:g} "
                                                  f"seconds, got {timeout}"))
        if len(names) > MAX_CHECK_NAMES:
            raise InvalidInput(Problem("providers", f"at most {MAX_CHECK_NAMES} names, got {len(names)}"))
        results, invalid = await self.health.check_now(list(dict.fromkeys(names)), timeout, actor=actor or self.actor,
                                                       call=call)
        return CheckReport(
            tuple(CheckOutcome(str(r.provider.id), r.provider.name, r.health.status.value, r.health.reason,
                               r.health.duration_seconds or 0.0,
                               r.capacity.active_workers if r.capacity else None, r.provider.max_workers,
                               r.capacity_error) for r in results),
            tuple((row.name, tuple(row.problems)) for row in invalid))

    def check(self, names: Sequence[str], timeout: float | None = None) -> CheckReport:
        """:meth:`check_now` in an event loop of its own, for ``hodei providers check`` (the daemon checks
        through its monitor, and the API through ``check_now``)."""
        return anyio.run(functools.partial(self.check_now, names, timeout))


def provider_lookup(store: Store) -> Callable[[uuid.UUID], Provider | None]:
    """A provider by id as the hooks see it, or None when it is gone or invalid (for release)."""
    def find(provider_id: uuid.UUID) -> Provider | None:
        try:
            found = store.get(provider_id)
        except NotFound:
            return None
        return found.to_provider() if found.valid else None
    return find
