"""A change to one provider, as every entry point asks for it: applied to the row inside the
transaction that writes it, so two changes at once never lose each other's keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hodei.errors import InvalidInput, Problem

# The seed's fields an operator may change.
FIELDS = ("name", "provider_type", "config", "status", "priority", "max_workers", "preferred_region",
          "allowed_regions", "required_labels", "annotations")


@dataclass(frozen=True)
class ProviderChange:
    """What to change. ``fields`` replace whole values (``config`` the whole object); ``merge_config``
    merges top-level keys into the config like the seed's ``config || '{...}'::jsonb``; ``labels`` and
    ``annotations`` are added or replaced key by key and ``remove_*`` deleted, against the row as it is
    when the change is written. ``expected_version``: refuse unless the row still has this version."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    merge_config: Mapping[str, Any] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    remove_labels: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    remove_annotations: tuple[str, ...] = ()
    expected_version: datetime | None = None

    def __post_init__(self) -> None:
        problems = [Problem(name, "unknown field") for name in sorted(set(self.fields) - set(FIELDS))]
        if self.merge_config is not None and not isinstance(self.merge_config, Mapping):
            problems.append(Problem("config", "a config merge must be an object"))
        if problems:
            raise InvalidInput(problems)

    def __bool__(self) -> bool:
        return bool(self.fields or self.merge_config is not None or self.labels or self.remove_labels
                    or self.annotations or self.remove_annotations)

    def applied_to(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """The provider ``document`` (the seed's fields as stored) with this change made."""
        result = dict(document) | dict(self.fields)
        if self.merge_config:
            current = result.get("config")
            result["config"] = {**(current if isinstance(current, Mapping) else {}), **self.merge_config}
        for column, added, removed in (("required_labels", self.labels, self.remove_labels),
                                       ("annotations", self.annotations, self.remove_annotations)):
            if added or removed:
                current = result.get(column)
                merged = dict(current) if isinstance(current, Mapping) else {}
                for key in removed:
                    merged.pop(key, None)
                result[column] = merged | dict(added)
        return result
