"""A job's requirements: one model for the CLI, the API and tests.

Unknown fields and wrong types are refused with the field's name. Rules may declare extra
fields (``requirement_fields``); those are accepted, validated and handed to the rules in
``Requirements.extensions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, create_model

from hodei import limits
from hodei.config_schema import CpuQuantity, MemoryQuantity, StrictModel, problems_from
from hodei.documents import unstorable_values
from hodei.errors import InvalidInput, Problem
from hodei.masking import MASK
from hodei.redaction import quote
from hodei.worker_spec import (
    MAX_TIMEOUT_SECONDS,
    Argument,
    EnvValues,
    JobImage,
    WorkerLabels,
    env_in_both,
)


def _pairs(most_value: int) -> Any:
    def check(value: Any) -> Any:
        # Bounded at the door, as a provider's own labels are: a job's requirements are quoted in
        # rejection reasons and in the details of a refusal, which must not grow with the request.
        if isinstance(value, Mapping):
            if len(value) > limits.LABELS:
                raise ValueError(f"must have at most {limits.LABELS} pairs, got {len(value)}")
            for key, text in value.items():
                if isinstance(key, str) and len(key) > limits.TEXT_CHARS:
                    raise ValueError(f"key {quote(key)} is longer than {limits.TEXT_CHARS} characters")
                if isinstance(text, str) and len(text) > most_value:
                    raise ValueError(f"{quote(key)}: the value is longer than {most_value} characters")
        return value
    return BeforeValidator(check)


def _regions(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) > limits.REGIONS:
            raise ValueError(f"must have at most {limits.REGIONS} regions, got {len(value)}")
        for region in value:
            if isinstance(region, str) and len(region) > limits.TEXT_CHARS:
                raise ValueError(f"region {quote(region)} is longer than {limits.TEXT_CHARS} characters")
    return value


Region = Annotated[str, Field(max_length=limits.TEXT_CHARS)]


# A job's priority in the placement queue: bounded, so it stays a small integer in every store and message.
MAX_PRIORITY = 1000


class RequirementsModel(StrictModel):
    cpu: CpuQuantity = Field(0.0, description="cores the worker needs (2, 0.5, '500m')")
    memory: MemoryQuantity = Field(0, description="bytes the worker needs (bytes, '512Mi', '4Gi', '2G')")
    gpu: Annotated[int, Field(ge=0)] = Field(0, description="GPUs the worker needs")
    required_labels: Annotated[dict[str, str], _pairs(limits.LABEL_VALUE_CHARS)] = Field(default_factory=dict, description=(
        "every pair must be in the provider's required_labels (exact, case-sensitive)"))
    required_annotations: Annotated[dict[str, str], _pairs(limits.ANNOTATION_VALUE_CHARS)] = Field(default_factory=dict, description=(
        "every pair must be in the provider's annotations (exact, case-sensitive)"))
    preferred_region: Region | None = Field(None, description="where the job would like to run (soft)")
    allowed_regions: Annotated[list[str], BeforeValidator(_regions)] = Field(default_factory=list, description=(
        "where the job may run (hard); empty means anywhere"))
    # The worker's own spec: what it runs. Providers decide which images they accept (allowed_images).
    image: JobImage | None = Field(None, description=(
        "the worker's image; empty: the provider's default_image"))
    command: Annotated[list[Argument], Field(max_length=4096)] = Field(default_factory=list, description=(
        "the worker's command and arguments; empty: the image's (or the provider's) own"))
    env: EnvValues = Field(default_factory=dict, description=(
        "environment variables for the worker, shown as given"))
    secret_env: EnvValues = Field(default_factory=dict, description=(
        "environment variables whose values are secrets: never shown, logged or stored in clear"))
    labels: WorkerLabels = Field(default_factory=dict, description="labels for the worker itself")
    timeout_seconds: Annotated[int, Field(gt=0, le=MAX_TIMEOUT_SECONDS)] | None = Field(None, description=(
        "the worker's own lifetime: it is stopped this long after it started"))
    priority: Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)] = Field(0, description=(
        "the job's place in the placement queue: higher first, then arrival"))

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
    image: str | None = None
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # Left out of repr: a repr ends up in logs and tracebacks.
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: int | None = None
    priority: int = 0

    def spec(self) -> dict[str, Any]:
        """The worker spec the job asked for (only what it set), secret values shown as ``***``."""
        values: dict[str, Any] = {
            "image": self.image, "command": list(self.command), "env": dict(self.env),
            "secret_env": dict.fromkeys(self.secret_env, MASK), "labels": dict(self.labels),
            "timeout_seconds": self.timeout_seconds,
        }
        return {key: value for key, value in values.items() if value not in (None, [], {})}

    def document(self) -> dict[str, Any]:
        """JSON-ready, in the input's field names; secret values masked (this is what is stored and shown)."""
        return {
            "cpu": self.cpu, "memory": self.memory, "gpu": self.gpu,
            "required_labels": dict(self.required_labels), "required_annotations": dict(self.required_annotations),
            "preferred_region": self.preferred_region, "allowed_regions": list(self.allowed_regions),
            **self.spec(), **({"priority": self.priority} if self.priority else {}), **dict(self.extensions),
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
    both = env_in_both(values["env"], values["secret_env"])
    if both:
        raise InvalidInput(Problem("secret_env", f"{', '.join(both)} also in env: give each variable once"),
                           subject="invalid requirements")
    extensions = {name: values.pop(name) for name in list(values) if name not in BUILTIN_FIELDS}
    return Requirements(
        cpu=values["cpu"], memory=values["memory"], gpu=values["gpu"],
        required_labels=values["required_labels"], required_annotations=values["required_annotations"],
        preferred_region=values["preferred_region"], allowed_regions=tuple(values["allowed_regions"]),
        extensions=extensions, image=values["image"], command=tuple(values["command"]), env=values["env"],
        secret_env=values["secret_env"], labels=values["labels"], timeout_seconds=values["timeout_seconds"],
        priority=values["priority"],
    )
