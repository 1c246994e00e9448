"""Advice for a plan that leaves jobs waiting: the smallest changes the chain's own reasons point to (raise
``max_workers`` of a provider the jobs wait for; a provider in the region, with the labels and size, no
provider has; allow an image on a provider only the image keeps out), each kept only if planning again
with it applied places more, and said with how many more."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hodei.domain import HealthStatus, Provider, ProviderState
from hodei.planning.placement import Pending, sole_blocker
from hodei.planning.report import Advice
from hodei.selection import Requirements, Selector
from hodei.worker_spec import allowed_images

if TYPE_CHECKING:
    from hodei.planning.plan import Batch, Planner

# Each piece of advice is checked by planning the batch again: the most tried, biggest first.
MOST = 3

Fleet = tuple[list[Provider], dict[uuid.UUID, ProviderState]]


@dataclasses.dataclass
class _Proposal:
    kind: str
    text: str
    jobs: int
    apply: Callable[[Fleet], Fleet]
    change: dict[str, Any]


def advise(planner: Planner, batch: Batch) -> list[Advice]:
    selector = batch.view.selector
    waiting = [p for p in batch.pending if p.number not in batch.chosen]
    wanted: Counter[str] = Counter()
    images: dict[tuple[str, str], int] = {}
    new: dict[str, list[Pending]] = {}
    capacity_only: dict[str, int] = {}
    for pending in waiting:
        fit = batch.placer.could_fit(pending)
        if fit:
            if pending.key not in capacity_only:
                capacity_only[pending.key] = _waiting_for_slots(selector, pending.job, fit)
            mask = capacity_only[pending.key]
            if mask:
                region = pending.job.preferred_region
                mask = (mask & selector.index.preferred_in.get(region, 0) if region else 0) or mask
                wanted[selector.index.candidates[(mask & -mask).bit_length() - 1].name] += 1
            continue
        blocker = sole_blocker(selector, pending.job)
        if blocker is not None and blocker[0] == "image" and pending.job.image:
            only, index = blocker[1], selector.index
            # A provider whose type runs job images, and with a slot free, first.
            best = (only & index.run_images & batch.view.open_slots()) or (only & index.run_images) or only
            name = selector.index.candidates[(best & -best).bit_length() - 1].name
            images[(name, pending.job.image)] = images.get((name, pending.job.image), 0) + 1
        else:
            new.setdefault(_shape(pending.job), []).append(pending)
    proposals = [_more_slots(name, count, selector) for name, count in wanted.items()]
    proposals += [_allow_image(name, image, count) for (name, image), count in images.items()]
    proposals += [_new_provider(group, planner.providers) for group in new.values()]
    proposals.sort(key=lambda p: (-p.jobs, p.text))
    found = []
    for proposal in proposals[:MOST]:
        providers, states = proposal.apply((list(planner.providers), dict(planner.states)))
        places = planner.place(batch.pending, providers, states).placed - batch.placed
        if places > 0:
            found.append(Advice(proposal.kind, proposal.text, places, proposal.change))
    return found


def _waiting_for_slots(selector: Selector, job: Requirements, fit: int) -> int:
    """Of the providers that could take ``job``, those only their full slots keep out."""
    names = selector.chain.filter_names
    if "capacity" not in names:
        return 0
    failing = selector.failing_filters(selector.decide(job, limit=0), fit)
    others = 0
    for name, mask in zip(names, failing, strict=True):
        if name != "capacity":
            others |= mask
    return fit & failing[names.index("capacity")] & ~others


def _more_slots(name: str, count: int, selector: Selector) -> _Proposal:
    provider = selector.index.by_name[name].provider

    def apply(fleet: Fleet) -> Fleet:
        providers, states = fleet
        return [dataclasses.replace(p, max_workers=p.max_workers + count) if p.id == provider.id else p
                for p in providers], states

    return _Proposal("max_workers", f"raise max_workers of {name} by {count} ({provider.max_workers} to "
                                    f"{provider.max_workers + count})", count, apply,
                     {"provider": name, "max_workers": provider.max_workers + count})


def _allow_image(name: str, image: str, count: int) -> _Proposal:
    def apply(fleet: Fleet) -> Fleet:
        providers, states = fleet
        changed = []
        for p in providers:
            if p.name == name:
                p = dataclasses.replace(p, config={**p.config, "allowed_images": [*(allowed_images(p.config) or ()), image]})
            changed.append(p)
        return changed, states

    return _Proposal("allow_image", f"allow image {image} on {name}", count, apply, {"provider": name, "image": image})


def _shape(job: Requirements) -> str:
    return repr((job.preferred_region, sorted(job.allowed_regions), sorted(job.required_labels.items()),
                 sorted(job.required_annotations.items())))


def _new_provider(group: list[Pending], providers: Sequence[Provider]) -> _Proposal:
    job = group[0].job
    cpu = max(p.job.cpu for p in group)
    memory = max(p.job.memory for p in group)
    gpu = max(p.job.gpu for p in group)
    images = sorted({p.job.image for p in group if p.job.image})
    kinds = Counter(p.provider_type for p in providers)
    provider_type = kinds.most_common(1)[0][0] if kinds else ""  # no provider to take the type from
    region = job.preferred_region or (job.allowed_regions[0] if job.allowed_regions else None)
    # Whole numbers as integers (2 cores, not 2.0): the document reads as an operator writes it.
    capabilities = {name: int(value) if float(value).is_integer() else value
                    for name, value in (("cpu", cpu), ("memory", memory), ("gpu", gpu)) if value}
    config: dict[str, Any] = {"capabilities": capabilities}
    if images:
        config["allowed_images"] = images
    added = Provider(id=uuid.uuid5(uuid.NAMESPACE_URL, f"hodei-plan:{_shape(job)}"), name=f"new-{region or 'any'}",
                     provider_type=provider_type, config=config, max_workers=len(group), preferred_region=region,
                     allowed_regions=tuple(job.allowed_regions), required_labels=dict(job.required_labels),
                     annotations=dict(job.required_annotations))
    words = []
    if region:
        words.append(f"in region {region}")
    if job.required_labels:
        words.append("with labels " + ", ".join(f"{k}={v}" for k, v in sorted(job.required_labels.items())))
    size = [f"{what} {value:g}" for what, value in (("cpu", cpu), ("memory", memory), ("gpu", gpu)) if value]
    if size:
        words.append(f"one worker of {', '.join(size)}")
    if images:
        words.append(f"allowing {', '.join(images)}")
    words.append(f"max_workers {len(group)}")

    def apply(fleet: Fleet) -> Fleet:
        providers, states = fleet
        return [*providers, added], {**states, added.id: ProviderState(health=HealthStatus.HEALTHY)}

    document = {"name": added.name, "provider_type": provider_type, "max_workers": added.max_workers,
                "preferred_region": region, "allowed_regions": list(added.allowed_regions),
                "required_labels": dict(added.required_labels), "annotations": dict(added.annotations),
                "config": config}
    kind = f"a {provider_type} provider" if provider_type else "a provider"
    return _Proposal("new_provider", f"add {kind} ({'; '.join(words)})", len(group), apply,
                     {"provider": document})
