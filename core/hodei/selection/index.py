"""What the core keeps between decisions: providers in rank order and bit masks over them.

A set of providers is an ``int`` whose bit ``i`` stands for ``candidates[i]``; intersecting
filters is then one big-integer AND per filter, whatever the number of providers. Candidates are
numbered in the order of the chain's static ranking (priority, then name), so the best providers
of a set are its lowest bits. The masks that depend only on provider rows (labels, regions,
status) are built once per set of rows; the ones that depend on state (health, capacity,
resources) are updated when a provider's state changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from hodei.domain import HealthStatus, Provider, ProviderState
from hodei.selection.candidates import Candidate
from hodei.selection.rules import Mask
from hodei.worker_spec import image_allowed

_BYTE_BITS = tuple(tuple(bit for bit in range(8) if byte >> bit & 1) for byte in range(256))


def bits(mask: int) -> Iterator[int]:
    """The positions of the set bits of ``mask``, lowest first."""
    if mask.bit_length() <= 128:
        while mask:
            low = mask & -mask
            yield low.bit_length() - 1
            mask ^= low
        return
    # One pass over the bytes: each step costs O(1), not O(size of mask) as above.
    for offset, byte in enumerate(mask.to_bytes((mask.bit_length() + 7) // 8, "little")):
        if byte:
            base = offset * 8
            for bit in _BYTE_BITS[byte]:
                yield base + bit


def mask_of(positions: Iterable[int], size: int = 0) -> int:
    """The mask with the given bits set; ``size`` (bits), when known, saves growing the buffer.

    Built in a byte array: OR-ing bits into an int one by one would copy the whole int each time.
    """
    buffer = bytearray((size + 7) // 8)
    length = len(buffer)
    for position in positions:
        byte = position >> 3
        if byte >= length:
            buffer.extend(bytes(byte + 1 - length))
            length = byte + 1
        buffer[byte] |= 1 << (position & 7)
    return int.from_bytes(buffer, "little")


def _index_pairs(values: Iterable[tuple[int, Mapping[str, str]]]) -> dict[tuple[str, str], int]:
    positions: dict[tuple[str, str], list[int]] = {}
    for position, pairs in values:
        for pair in pairs.items():
            positions.setdefault(pair, []).append(position)
    return {pair: mask_of(found) for pair, found in positions.items()}


class ProviderIndex:
    """The candidates of a decision and the masks the built-in filters answer from."""

    def __init__(self, providers: Sequence[Provider], states: Mapping[uuid.UUID, ProviderState],
                 static_keys: Callable[[Sequence[Candidate]], Sequence[tuple[Any, ...]]] | None = None):
        """:param static_keys: the chain's static ranking keys of each candidate (default: priority)."""
        unordered = [Candidate.build(i, p, states.get(p.id) or ProviderState()) for i, p in enumerate(providers)]
        keys = static_keys(unordered) if static_keys else [(-c.priority,) for c in unordered]
        order = sorted(range(len(unordered)), key=lambda i: (keys[i], unordered[i].name))
        self.candidates = [unordered[i] for i in order]
        # The static-rank groups: runs of candidates sharing every static ranking key, as bit ranges.
        self.group_of: list[int] = []
        self.groups: list[tuple[int, int]] = []
        previous: Any = object()
        for position, i in enumerate(order):
            self.candidates[position].index = position
            if keys[i] != previous:
                self.groups.append((position, position + 1))
                previous = keys[i]
            else:
                self.groups[-1] = (self.groups[-1][0], position + 1)
            self.group_of.append(len(self.groups) - 1)
        # Reports list rejected providers by name: the candidates' positions in name order, sorted once.
        self.name_order = sorted(range(len(self.candidates)), key=lambda i: self.candidates[i].name)
        self.by_id = {c.provider.id: c for c in self.candidates}
        self.by_name = {c.name: c for c in self.candidates}
        self.all = (1 << len(self.candidates)) - 1
        self._mask_all = Mask(self.all)  # every filter that lets a job through asks for it
        status: dict[str, list[int]] = {}
        preferred: dict[str, list[int]] = {}
        allowed: dict[str, list[int]] = {}
        for c in self.candidates:
            status.setdefault(c.status, []).append(c.index)
            if c.preferred_region is not None:
                preferred.setdefault(c.preferred_region, []).append(c.index)
            for region in c.allowed_regions:
                allowed.setdefault(region, []).append(c.index)
        self.by_status = {key: mask_of(positions) for key, positions in status.items()}
        self.preferred_in = {key: mask_of(positions) for key, positions in preferred.items()}  # region -> prefer it
        self.allowed_in = {key: mask_of(positions) for key, positions in allowed.items()}  # region -> list it
        self.unrestricted = mask_of((c.index for c in self.candidates if c.unrestricted), len(self.candidates))
        self.labels = _index_pairs((c.index, c.labels) for c in self.candidates)
        self.annotations = _index_pairs((c.index, c.annotations) for c in self.candidates)
        self.run_images = mask_of((c.index for c in self.candidates if c.images is not None), len(self.candidates))
        self._image_masks: dict[str, int] = {}
        self._refresh_state_masks()

    @classmethod
    def of_candidates(cls, candidates: Sequence[Candidate]) -> ProviderIndex:
        """An index of the providers of ``candidates`` in their current state (a filter's ``admit`` on
        the masks it answers from)."""
        states = {c.provider.id: ProviderState(health=c.health, health_reason=c.health_reason,
                                               active_workers=c.active_workers, reserved_workers=c.reserved_workers,
                                               per_worker=c.resources, provision_failures=c.provision_failures,
                                               cooldown_until=c.cooldown_until,
                                               last_provision_error=c.last_provision_error) for c in candidates}
        return cls([c.provider for c in candidates], states)

    # -- the lookups an IndexedFilter answers from: opaque masks --------------------------------

    def mask_all(self) -> Mask:
        """Every provider of the index."""
        return self._mask_all

    def mask_status(self, status: str) -> Mask:
        """The providers whose status is ``status`` (``"ACTIVE"``, ``"DISABLED"``, ...)."""
        return Mask(self.by_status.get(status, 0))

    def mask_unhealthy(self) -> Mask:
        """The providers whose last health check was Unhealthy."""
        return Mask(self.unhealthy)

    def mask_cooling(self, now: datetime) -> Mask:
        """The providers whose cooldown (after failed provisions) still holds at ``now``."""
        return Mask(mask_of((i for i, until in self.cooling.items() if until > now), len(self.candidates)))

    def mask_full(self) -> Mask:
        """The providers with no free worker slot."""
        return Mask(self.full)

    def mask_labels(self, pairs: Mapping[str, str]) -> Mask:
        """The providers whose ``required_labels`` hold every pair."""
        return Mask(self.having_all(self.labels, pairs))

    def mask_annotations(self, pairs: Mapping[str, str]) -> Mask:
        """The providers whose ``annotations`` hold every pair."""
        return Mask(self.having_all(self.annotations, pairs))

    def mask_regions(self, regions: Iterable[str]) -> Mask:
        """The providers that may run in one of ``regions`` (those with no regions run anywhere)."""
        return Mask(self.runs_in_any(regions))

    def mask_resource(self, name: str, amount: float) -> Mask:
        """The providers that can give one worker ``amount`` of ``name`` (``cpu``, ``memory``, ``gpu``)."""
        return Mask(self.with_resource(name, amount))

    def mask_image(self, image: str) -> Mask:
        """The providers whose config allows the job image ``image``."""
        return Mask(self.running_image(image))

    def mask_runs_images(self) -> Mask:
        """The providers whose type runs job images at all (their config has ``allowed_images``)."""
        return Mask(self.run_images)

    def mask_where(self, predicate: Callable[[Candidate], bool]) -> Mask:
        """The providers for which ``predicate`` holds: one call per provider, so cache what you can."""
        return Mask(mask_of((c.index for c in self.candidates if predicate(c)), len(self.candidates)))

    # -- state ------------------------------------------------------------------------------

    def _refresh_state_masks(self) -> None:
        self.unhealthy = mask_of(c.index for c in self.candidates if c.health is HealthStatus.UNHEALTHY)
        self.full = mask_of(c.index for c in self.candidates if c.load >= c.max_workers)
        # Few providers cool down at once: their ends are kept by position, compared with the time when asked.
        self.cooling = {c.index: c.cooldown_until for c in self.candidates if c.cooldown_until is not None}
        self._resource_masks: dict[tuple[str, float], int] = {}
        self._unknown_masks: dict[str, int] = {}

    def update_state(self, provider_id: uuid.UUID, state: ProviderState) -> bool:
        """Take a provider's new state; ``False`` when the provider is not in this index."""
        candidate = self.by_id.get(provider_id)
        if candidate is None:
            return False
        resources_before = candidate.resources
        candidate.apply_state(state)
        bit = 1 << candidate.index
        self.unhealthy = (self.unhealthy | bit) if candidate.health is HealthStatus.UNHEALTHY else (self.unhealthy & ~bit)
        self.full = (self.full | bit) if candidate.load >= candidate.max_workers else (self.full & ~bit)
        if candidate.cooldown_until is not None:
            self.cooling[candidate.index] = candidate.cooldown_until
        else:
            self.cooling.pop(candidate.index, None)
        if candidate.resources != resources_before:
            self._resource_masks.clear()
            self._unknown_masks.clear()
        return True

    def update_status(self, provider: Provider) -> bool:
        """Take a provider's new status (the health policy's, or an operator's): its status masks in place,
        not a new index. ``False`` when the provider is not in this index."""
        candidate = self.by_id.get(provider.id)
        if candidate is None:
            return False
        bit = 1 << candidate.index
        before, after = candidate.status, provider.status.value
        if before != after:
            self.by_status[before] = self.by_status.get(before, 0) & ~bit
            self.by_status[after] = self.by_status.get(after, 0) | bit
        candidate.provider, candidate.status = provider, after
        return True

    # -- lookups for filters -----------------------------------------------------------------

    def having_all(self, index: Mapping[tuple[str, str], int], pairs: Mapping[str, str]) -> int:
        mask = self.all
        for pair in pairs.items():
            mask &= index.get(pair, 0)
            if not mask:
                break
        return mask

    def runs_in_any(self, regions: Iterable[str]) -> int:
        mask = self.unrestricted
        for region in regions:
            mask |= self.preferred_in.get(region, 0) | self.allowed_in.get(region, 0)
        return mask

    def with_resource(self, name: str, amount: float) -> int:
        """Providers that can give one worker ``amount`` of ``name`` (cached until state changes)."""
        if amount <= 0:
            return self.all
        key = (name, amount)
        mask = self._resource_masks.get(key)
        if mask is None:
            mask = mask_of((c.index for c in self.candidates
                            if (have := getattr(c.resources, name)) is not None and have >= amount),
                           len(self.candidates))
            if len(self._resource_masks) > 4096:  # jobs ask for few distinct sizes; bound the cache anyway
                self._resource_masks.clear()
            self._resource_masks[key] = mask
        return mask

    def of_unknown(self, name: str) -> int:
        """Providers for which nobody knows how much of resource ``name`` one worker can get (no capacity
        report, no ``config.capabilities``); cached until state changes."""
        mask = self._unknown_masks.get(name)
        if mask is None:
            mask = self._unknown_masks[name] = mask_of(
                (c.index for c in self.candidates if getattr(c.resources, name) is None), len(self.candidates))
        return mask

    def running_image(self, image: str) -> int:
        """Providers whose ``allowed_images`` take ``image`` (cached: rows decide it, not state)."""
        mask = self._image_masks.get(image)
        if mask is None:
            mask = mask_of((c.index for c in self.candidates
                            if c.images is not None and image_allowed(image, c.images)), len(self.candidates))
            if len(self._image_masks) > 4096:  # bound the cache, as for resources
                self._image_masks.clear()
            self._image_masks[image] = mask
        return mask

    def members(self, mask: int) -> list[Candidate]:
        candidates = self.candidates
        return [candidates[i] for i in bits(mask)]

    def first_by_name(self, mask: int, count: int | None = None) -> list[Candidate]:
        """The first ``count`` members of ``mask`` by name (all for None), without sorting all of them."""
        candidates = self.candidates
        size = mask.bit_count()
        if count is None or size <= 64 or count >= size:
            found = sorted((candidates[i] for i in bits(mask)), key=lambda c: c.name)
            return found if count is None else found[:count]
        # A large set: walk the name order until ``count`` are found (about count * n / size steps).
        data = mask.to_bytes((len(candidates) + 7) // 8, "little")
        chosen: list[Candidate] = []
        for i in self.name_order:
            if data[i >> 3] >> (i & 7) & 1:
                chosen.append(candidates[i])
                if len(chosen) == count:
                    break
        return chosen

    def top_group(self, mask: int) -> int:
        """The part of ``mask`` that ties on every static ranking key with its best member."""
        if not mask:
            return 0
        lowest = (mask & -mask).bit_length() - 1
        start, end = self.groups[self.group_of[lowest]]
        return mask & (((1 << (end - start)) - 1) << start)
