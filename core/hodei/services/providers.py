"""Providers as every entry point manages them: the plugin-validated rows, their state and history,
with secrets masked in everything shown."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hodei import limits
from hodei.domain import Capacity, HealthResult, Provider, ProviderState, ProviderStatus
from hodei.errors import InvalidInput, NotFound, Problem
from hodei.masking import MASK, masked_config
from hodei.plugins import HodeiPluginManager
from hodei.provider_change import ProviderChange
from hodei.redaction import quote
from hodei.services import listing
from hodei.services.cooldowns import LocalCooldowns
from hodei.services.health import CheckResult, LocalHealth, Result
from hodei.services.views import CooldownReset, HistoryEntry, ProviderView, sorted_pairs
from hodei.settings import CooldownSettings, HealthSettings
from hodei.storage.provider_state import ProviderStates
from hodei.store import Change, Store, StoredProvider

# The statuses an operator sets; UNHEALTHY is the health monitor's.
OPERATOR_STATUSES = tuple(s.value for s in ProviderStatus if s is not ProviderStatus.UNHEALTHY)


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
    """The providers service on the database. Sync: the daemon runs it in its database threads."""

    def __init__(self, store: Store, states: ProviderStates, pm: HodeiPluginManager, health: LocalHealth | None = None,
                 cooldowns: LocalCooldowns | None = None):
        self.store, self.states, self.pm = store, states, pm
        self.cooldowns = cooldowns or LocalCooldowns(store, CooldownSettings())
        # Its checks' results are written by the health service, the one write path for health.
        self.health = health or LocalHealth(store, pm, HealthSettings())

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

    def create(self, document: Mapping[str, Any]) -> ProviderView:
        return self.view(self.store.create(document))

    def update(self, ref: str | uuid.UUID, change: ProviderChange) -> ProviderView:
        if not change:
            raise InvalidInput(Problem("", "nothing to change"))
        return self.view(self.store.update(ref, change))

    def set_status(self, ref: str | uuid.UUID, status: str, cause: str) -> ProviderView:
        if status not in OPERATOR_STATUSES:
            raise InvalidInput(Problem("status", f"must be one of {', '.join(OPERATOR_STATUSES)} (UNHEALTHY is "
                                                 f"set by the health monitor), got {quote(status)}"))
        return self.view(self.store.set_status(ref, status, cause=cause))

    def delete(self, ref: str | uuid.UUID) -> ProviderView:
        state = self.states.of(ref)  # the row and its state go together
        return self.view(self.store.delete(ref), state)

    def reset_cooldown(self, ref: str | uuid.UUID) -> CooldownReset:
        provider_id, ended = self.cooldowns.reset(ref)
        return CooldownReset(self.view(self.store.get(provider_id)), ended)

    def history(self, ref: str | uuid.UUID, limit: int = 50) -> list[HistoryEntry]:
        if not 1 <= limit <= limits.LISTED:
            raise InvalidInput(Problem("limit", f"must be between 1 and {limits.LISTED}, got {limit}"))
        return self.states.history(ref, limit)

    # -- on the database only -----------------------------------------------------------------

    def apply(self, documents: Sequence[Any], *, dry_run: bool = False, prune: bool = False) -> list[Change]:
        """``Store.apply``, with secret config values masked in the changes it reports."""
        changes = self.store.apply(documents, dry_run=dry_run, prune=prune)
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

    def record_check(self, ref: str | uuid.UUID, health: HealthResult | None = None,
                     capacity: Capacity | None = None) -> ProviderState:
        """Record one check's answer through the health service (counted, and the status rules applied, as
        the daemon records them); returns the provider's state after it."""
        provider_id = self.store.get(ref).id
        self.health.record([Result(provider_id, health, capacity)])
        return self.states.of(provider_id)

    def check(self, names: Sequence[str], timeout: float) -> tuple[list[CheckResult], list[StoredProvider]]:
        """Check the named providers (every valid one when none are named) now and record what they
        answer: :meth:`hodei.services.health.LocalHealth.check`."""
        return self.health.check(names, timeout)


def provider_lookup(store: Store) -> Callable[[uuid.UUID], Provider | None]:
    """A provider by id as the hooks see it, or None when it is gone or invalid (for release)."""
    def find(provider_id: uuid.UUID) -> Provider | None:
        try:
            found = store.get(provider_id)
        except NotFound:
            return None
        return found.to_provider() if found.valid else None
    return find
