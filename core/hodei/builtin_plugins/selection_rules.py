"""The selection contract's own rules, as a plugin on the same hooks and interface third parties use.

Filters: status, health, cooldown, capacity, resources, labels, annotations, allowed-regions, image.
Rankers: priority (higher first), utilization (lower first, weighted), name (ascending).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from hodei.domain import HealthStatus
from hodei.hints import command
from hodei.hookspecs import hookimpl
from hodei.quantity import format_memory
from hodei.redaction import QUOTE_CHARS
from hodei.selection.candidates import Candidate
from hodei.selection.index import ProviderIndex
from hodei.selection.requirements import Requirements
from hodei.selection.rules import IndexedFilter, Mask, Ranker, Reason


def shown(text: str) -> str:
    # Matching is exact, so make a stray space or an empty value visible; a long value is cut, so a
    # reason (quoted in every report and refusal) stays short whatever the job or provider holds.
    if len(text) > QUOTE_CHARS:
        return f"{text[:QUOTE_CHARS - 3]}... ({len(text)} characters)"
    return text if text and text == text.strip() else repr(text)


# How many items of a list (regions, missing labels) a reason names before it counts the rest.
LISTED = 5


def listed(items: Sequence[str]) -> str:
    """The first :data:`LISTED` of ``items``, joined, and how many more there are."""
    head = ", ".join(items[:LISTED])
    return f"{head} and {len(items) - LISTED} more" if len(items) > LISTED else head


def pair(key: str, value: str) -> str:
    return f"{shown(key)}={shown(value)}"


class StatusFilter(IndexedFilter):
    depends_on = "load"
    name = "status"
    _hints = {
        "DISABLED": "an operator disabled it; {enable} brings it back",
        "MAINTENANCE": "it is in maintenance; {enable} when the work is done",
        "UNHEALTHY": "the health monitor set it after failed checks; it returns to ACTIVE after "
                     "successful ones (see {show})",
    }

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        return index.mask_status("ACTIVE")

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        hint = self._hints.get(candidate.status, "set it to ACTIVE").format(
            enable=command("providers", "enable", candidate.name), show=command("providers", "show", candidate.name))
        return Reason(f"status is {candidate.status}, not ACTIVE", "not ACTIVE", candidate.status, hint)


class HealthFilter(IndexedFilter):
    depends_on = "load"
    name = "health"

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        return index.mask_all() - index.mask_unhealthy()

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        why = candidate.health_reason or "no reason given"
        return Reason(f"last health check was Unhealthy: {why}", "unhealthy", why,
                      "fix what the check reports; the next successful check readmits it")

    def note(self, candidate: Candidate, job: Requirements) -> str | None:
        if candidate.health is None:
            return "health never checked"
        if candidate.health is HealthStatus.DEGRADED:
            return f"health Degraded: {candidate.health_reason or 'no reason given'}"
        return None


class CooldownFilter(IndexedFilter):
    """Providers whose provisions kept failing are skipped until their cooldown ends (:mod:`hodei.cooldown`)."""

    depends_on = "load"
    name = "cooldown"

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        return index.mask_all() - index.mask_cooling(datetime.now(UTC))

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        until = candidate.cooldown_until
        end = until.isoformat(timespec="seconds") if until is not None else "unknown"
        error = shown(candidate.last_provision_error) if candidate.last_provision_error else "no error recorded"
        return Reason(
            f"cooling down until {end} after {candidate.provision_failures} failed provisions "
            f"in a row; the last: {error}", "cooling down", f"until {end}",
            f"it is tried again once the cooldown ends; fix what the error says, then "
            f"{command('providers', 'reset-cooldown', candidate.name)} to try it now")


class CapacityFilter(IndexedFilter):
    depends_on = "load"
    name = "capacity"

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        return index.mask_all() - index.mask_full()

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        used = f"{candidate.load}/{candidate.max_workers}"
        return Reason(
            f"at capacity: {used} workers ({candidate.active_workers} active, {candidate.reserved_workers} reserved)",
            "at capacity", used, "wait for a worker to finish, or raise max_workers")


class ResourcesFilter(IndexedFilter):
    name = "resources"
    _units = {"cpu": lambda v: f"{v:g} cores", "memory": lambda v: format_memory(int(v)), "gpu": lambda v: f"{v} GPU"}

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        return (index.mask_resource("cpu", job.cpu) & index.mask_resource("memory", job.memory)
                & index.mask_resource("gpu", job.gpu))

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        short, long, unknown = [], [], []
        for name in ("cpu", "memory", "gpu"):
            wanted, have = getattr(job, name), getattr(candidate.resources, name)
            if wanted <= 0 or (have is not None and have >= wanted):
                continue
            unit = self._units[name]
            if have is None:
                unknown.append(name)
                long.append(f"{name}: needs {unit(wanted)}, unknown what one worker can get (no capacity "
                            f"report yet, no capabilities.{name} in its config)")
            else:
                short.append(f"{name} {unit(have)} < {unit(wanted)}")
                long.append(f"{name}: needs {unit(wanted)}, one worker can get {unit(have)}")
        capabilities = "or set config.capabilities when the operator knows better than discovery"
        if short:
            short += [f"{name} unknown" for name in unknown]
            return Reason(f"too small: {'; '.join(long)}", "too small for the job", " and ".join(short),
                          f"ask for less; run `hodei providers check` to record what it can give; {capabilities}")
        # Nothing known is too small: the provider never said what it can give, which is not "too small".
        if candidate.health is HealthStatus.UNHEALTHY:
            why = "its last health check failed, so it reported no capacity"
            hint = f"fix what its health check reports (see {command('providers', 'show', candidate.name)}); {capabilities}"
        else:
            why = "it has not reported its capacity"
            hint = (f"run {command('providers', 'check', candidate.name)} to record what one worker can get; "
                    f"{capabilities}")
        return Reason(f"size unknown, {why}: {'; '.join(long)}", "of unknown size",
                      f"{' and '.join(unknown)} never reported", hint)


class _PairsFilter(IndexedFilter):
    noun = ""
    job_field = ""
    provider_field = ""

    def _having(self, index: ProviderIndex, pairs: Mapping[str, str]) -> Mask:
        raise NotImplementedError

    def _own(self, candidate: Candidate) -> Mapping[str, str]:
        raise NotImplementedError

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        wanted = getattr(job, self.job_field)
        return self._having(index, wanted) if wanted else index.mask_all()

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        own = self._own(candidate)
        missing = [(k, v) for k, v in getattr(job, self.job_field).items() if own.get(k) != v]
        described = []
        for key, _ in missing:
            described.append(f"has {pair(key, own[key])}" if key in own else f"has no {shown(key)}")
        first_key, first_value = missing[0]
        return Reason(
            f"missing {self.noun}{'s' if len(missing) > 1 else ''} {listed([pair(k, v) for k, v in missing])} "
            f"({'; '.join(described[:LISTED])}{'; ...' if len(described) > LISTED else ''})",
            f"missing {self.noun} {pair(first_key, first_value)}", described[0],
            f"add them to the provider's {self.provider_field}, or drop them from the job's {self.job_field} "
            "(matching is exact and case-sensitive)")


class LabelsFilter(_PairsFilter):
    name = "labels"
    noun = "label"
    job_field = "required_labels"
    provider_field = "required_labels"

    def _having(self, index: ProviderIndex, pairs: Mapping[str, str]) -> Mask:
        return index.mask_labels(pairs)

    def _own(self, candidate: Candidate) -> Mapping[str, str]:
        return candidate.labels


class AnnotationsFilter(_PairsFilter):
    name = "annotations"
    noun = "annotation"
    job_field = "required_annotations"
    provider_field = "annotations"

    def _having(self, index: ProviderIndex, pairs: Mapping[str, str]) -> Mask:
        return index.mask_annotations(pairs)

    def _own(self, candidate: Candidate) -> Mapping[str, str]:
        return candidate.annotations


class AllowedRegionsFilter(IndexedFilter):
    name = "allowed-regions"

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        return index.mask_regions(job.allowed_regions) if job.allowed_regions else index.mask_all()

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        preferred = {candidate.preferred_region} if candidate.preferred_region is not None else set()
        regions = sorted(candidate.allowed_regions | preferred)
        return Reason(
            f"runs only in {listed([shown(r) for r in regions])}; the job allows "
            f"{listed([shown(r) for r in job.allowed_regions])}",
            "outside allowed regions", "",
            "add one of the job's regions to the provider's allowed_regions, or widen the job's allowed_regions")


class ImageFilter(IndexedFilter):
    """The job's image must be one the provider's config allows (``allowed_images``; by default only its
    ``default_image``). A provider type whose config declares no ``allowed_images`` runs what its config
    names (a Lambda function), so it takes no job image or command at all."""

    name = "image"

    def mask(self, index: ProviderIndex, job: Requirements) -> Mask:
        if job.image is not None:
            return index.mask_image(job.image)
        return index.mask_runs_images() if job.command else index.mask_all()

    def explain(self, candidate: Candidate, job: Requirements) -> Reason:
        ptype = candidate.provider.provider_type
        if candidate.images is None:
            asked = "image" if job.image is not None else "command"
            return Reason(
                f"runs no job {asked}: a {shown(ptype)} provider's workers run what its config names",
                f"runs no job {asked}", ptype,
                f"leave {asked} out of the job, or run it on a provider type that runs images (one with "
                "allowed_images in its config)")
        allowed = listed([shown(i) for i in candidate.images]) or "nothing"
        return Reason(
            f"does not allow image {shown(job.image or '')}: its allowed_images are {allowed}",
            "image not allowed", shown(job.image or ""),
            "add the image, or a pattern matching it (registry.example.com/jobs/*), to the provider's "
            "config.allowed_images, or ask for an image it allows")


class PriorityRanker(Ranker):
    name = "priority"
    static = True

    def key(self, candidates: Sequence[Candidate], job: Requirements) -> list[int]:
        return [-c.priority for c in candidates]


class UtilizationRanker(Ranker):
    name = "utilization"
    weight = 1.0

    def score(self, candidates: Sequence[Candidate], job: Requirements) -> list[float]:
        # A provider over its max_workers (lowered while busy) is as full as full gets: 0, never below.
        return [1.0 - load / c.max_workers if (load := c.active_workers + c.reserved_workers) < c.max_workers
                else 0.0 for c in candidates]


class NameRanker(Ranker):
    name = "name"
    static = True

    def key(self, candidates: Sequence[Candidate], job: Requirements) -> list[str]:
        return [c.name for c in candidates]


DEFAULT_FILTERS = (StatusFilter(), HealthFilter(), CooldownFilter(), CapacityFilter(), ResourcesFilter(), LabelsFilter(),
                   AnnotationsFilter(), AllowedRegionsFilter(), ImageFilter())
DEFAULT_RANKERS = (PriorityRanker(), UtilizationRanker(), NameRanker())


@hookimpl
def hodei_selection_filters() -> Sequence[IndexedFilter]:
    return list(DEFAULT_FILTERS)


@hookimpl
def hodei_selection_rankers() -> Sequence[Ranker]:
    return list(DEFAULT_RANKERS)
