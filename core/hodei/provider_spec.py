"""What makes a provider document valid: its own fields here, its ``config`` by its type's plugin."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError

from hodei.config_schema import NonEmptyStr, StrictModel, problems_from
from hodei.errors import InvalidInput, Problem, UnknownProviderType
from hodei.plugins import HodeiPluginManager

# PostgreSQL INTEGER bounds: a value the column cannot hold is refused here, not by the driver.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

Status = Literal["ACTIVE", "DISABLED", "MAINTENANCE", "UNHEALTHY"]


def _unique(values: list[str]) -> list[str]:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"lists {', '.join(map(repr, duplicates))} more than once")
    return values


def _trimmed_values(values: dict[str, str]) -> dict[str, str]:
    # Matching is exact, so a stray space would make a label silently never match (the seed's
    # troubleshooting names it); refuse it where it is written instead.
    for key, value in values.items():
        if value != value.strip():
            raise ValueError(f"value of {key!r} starts or ends with white space: {value!r}")
    return values


Labels = Annotated[dict[NonEmptyStr, str], AfterValidator(_trimmed_values)]


class ProviderSpec(StrictModel):
    """A provider as written by an operator: the seed's fields, ``config`` still unchecked."""

    name: Annotated[NonEmptyStr, Field(max_length=200)]
    provider_type: NonEmptyStr
    config: dict[str, Any] = Field(default_factory=dict)
    status: Status = "ACTIVE"
    priority: Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)] = 0
    max_workers: Annotated[int, Field(ge=1, le=INT32_MAX)] = 10
    preferred_region: NonEmptyStr | None = None
    allowed_regions: Annotated[list[NonEmptyStr], AfterValidator(_unique)] = Field(default_factory=list)
    required_labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    id: uuid.UUID | None = None


PROVIDER_FIELDS = tuple(name for name in ProviderSpec.model_fields if name != "id")


def parse_provider(document: Any, pm: HodeiPluginManager) -> tuple[ProviderSpec, dict[str, Any]]:
    """Validate a whole provider document; returns the spec and its normalised config.

    Every problem is reported at once, each named by its field (``config.network``).

    :raises InvalidInput: when anything is wrong; nothing has been written.
    """
    if not isinstance(document, Mapping):
        raise InvalidInput(Problem("", f"a provider must be an object, got {type(document).__name__}"))
    unstorable = _unstorable_text(document, "")
    if unstorable:
        raise InvalidInput(unstorable)
    data = dict(document)
    if isinstance(data.get("id"), str):
        try:
            data["id"] = uuid.UUID(data["id"])
        except ValueError:
            raise InvalidInput(Problem("id", f"must be a UUID, got {data['id']!r}")) from None
    subject = f"provider {data['name']!r}" if isinstance(data.get("name"), str) else None
    try:
        spec = ProviderSpec.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc)
        # Report the config's problems too, when the rest of the document lets us check it.
        if not any(p.field == "provider_type" or p.field.startswith("config") for p in problems):
            problems += _config_problems(pm, data.get("provider_type"), data.get("config", {}))
        raise InvalidInput(problems, subject=subject) from None
    try:
        return spec, normalise_config(pm, spec.provider_type, spec.config)
    except InvalidInput as exc:
        raise InvalidInput(exc.problems, subject=subject) from None


def normalise_config(pm: HodeiPluginManager, provider_type: str, config: Any) -> dict[str, Any]:
    """The plugin's normalised form of ``config``. :raises InvalidInput: with ``config.``-prefixed fields."""
    try:
        validate = pm.provider_hook_caller("hodei_validate_config", provider_type)  # routed to the type's plugin
    except UnknownProviderType as exc:
        raise InvalidInput(Problem("provider_type", str(exc))) from None
    try:
        result = validate(provider_type=provider_type, config=config)
    except InvalidInput as exc:
        raise exc.nested("config") from None
    except Exception as exc:  # a plugin bug is reported against the config, never as a crash
        raise InvalidInput(Problem("config", f"plugin for {provider_type!r} failed to validate it: "
                                             f"{type(exc).__name__}: {exc}")) from None
    if result is None:
        raise InvalidInput(Problem("provider_type", f"the plugin for {provider_type!r} does not validate configs"))
    return dict(result)


def _text_fault(text: str) -> str | None:
    # PostgreSQL text and jsonb hold neither U+0000 nor lone surrogates; refuse them on every
    # backend alike, naming the field, rather than let the database fail the write.
    if "\x00" in text:
        return "contains a NUL character (U+0000), which the database cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (it holds a lone surrogate)"
    return None


def _unstorable_text(value: Any, path: str) -> list[Problem]:
    if isinstance(value, str):
        fault = _text_fault(value)
        return [Problem(path, fault)] if fault else []
    if isinstance(value, Mapping):
        found = []
        for key, item in value.items():
            fault = _text_fault(key) if isinstance(key, str) else None
            if fault:
                found.append(Problem(path, f"key {key!r} {fault}"))
            found += _unstorable_text(item, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _unstorable_text(item, f"{path}[{i}]")]
    return []


def _config_problems(pm: HodeiPluginManager, provider_type: Any, config: Any) -> list[Problem]:
    if not isinstance(provider_type, str):
        return []
    try:
        normalise_config(pm, provider_type, config)
    except InvalidInput as exc:
        return exc.problems
    return []
