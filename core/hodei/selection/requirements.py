"""A job's requirements: one model for the CLI, the API and tests.

Unknown fields and wrong types are refused with the field's name. Rules may declare extra
fields (``requirement_fields``); those are accepted, validated and handed to the rules in
``Requirements.extensions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, create_model

from hodei.config_schema import CpuQuantity, MemoryQuantity, StrictModel, problems_from
from hodei.documents import unstorable_values
from hodei.errors import InvalidInput, Problem


class RequirementsModel(StrictModel):
    cpu: CpuQuantity = Field(0.0, description="cores the worker needs (2, 0.5, '500m')")
    memory: MemoryQuantity = Field(0, description="bytes the worker needs (bytes, '512Mi', '4Gi', '2G')")
    gpu: Annotated[int, Field(ge=0)] = Field(0, description="GPUs the worker needs")
    required_labels: dict[str, str] = Field(default_factory=dict, description=(
        "every pair must be in the provider's required_labels (exact, case-sensitive)"))
    required_annotations: dict[str, str] = Field(default_factory=dict, description=(
        "every pair must be in the provider's annotations (exact, case-sensitive)"))
    preferred_region: str | None = Field(None, description="where the job would like to run (soft)")
    allowed_regions: list[str] = Field(default_factory=list, description=(
        "where the job may run (hard); empty means anywhere"))


BUILTIN_FIELDS = tuple(RequirementsModel.model_fields)


@dataclass(frozen=True)
class Requirements:
    """What a job needs. Build it with :func:`parse_requirements` (or directly, in tests)."""

    cpu: float = 0.0
    memory: int = 0
    gpu: int = 0
    required_labels: Mapping[str, str] = field(default_factory=dict)
    required_annotations: Mapping[str, str] = field(default_factory=dict)
    preferred_region: str | None = None
    allowed_regions: tuple[str, ...] = ()
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """JSON-ready, in the input's field names."""
        return {
            "cpu": self.cpu, "memory": self.memory, "gpu": self.gpu,
            "required_labels": dict(self.required_labels), "required_annotations": dict(self.required_annotations),
            "preferred_region": self.preferred_region, "allowed_regions": list(self.allowed_regions),
            **dict(self.extensions),
        }


def requirements_model(extra_fields: Mapping[str, tuple[Any, Any]] | None = None) -> type[BaseModel]:
    """The model for the built-in fields plus the fields rules declared."""
    if not extra_fields:
        return RequirementsModel
    # Typed Any: a ``**`` dict could fill create_model's own keyword parameters too (``__doc__`` and so on),
    # so mypy checks its values against every one of them.
    fields: dict[str, Any] = {name: (kind, default) for name, (kind, default) in extra_fields.items()}
    return create_model("JobRequirements", __base__=RequirementsModel, **fields)


def parse_requirements(document: Any, model: type[BaseModel] = RequirementsModel) -> Requirements:
    """Validate a requirements document (a JSON or TOML object).

    :raises InvalidInput: one problem per bad field, each naming the field.
    """
    if isinstance(document, Requirements):
        return document
    if not isinstance(document, Mapping):
        raise InvalidInput(Problem("", f"requirements must be an object, not {type(document).__name__}"))
    unusable = unstorable_values(document)  # NaN and Infinity compare false with everything
    if unusable:
        raise InvalidInput(unusable, subject="invalid requirements")
    try:
        parsed = model.model_validate(dict(document))
    except ValidationError as exc:
        raise InvalidInput(problems_from(exc), subject="invalid requirements") from None
    values = parsed.model_dump()
    extensions = {name: values.pop(name) for name in list(values) if name not in BUILTIN_FIELDS}
    return Requirements(
        cpu=values["cpu"], memory=values["memory"], gpu=values["gpu"],
        required_labels=values["required_labels"], required_annotations=values["required_annotations"],
        preferred_region=values["preferred_region"], allowed_regions=tuple(values["allowed_regions"]),
        extensions=extensions,
    )
