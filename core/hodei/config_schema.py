"""Building blocks for validating provider ``config`` objects with pydantic.

A provider plugin describes its config as a subclass of :class:`ProviderConfigModel` and calls
:func:`validate_config_model` from its ``hodei_validate_config``; unknown keys, wrong types and
out-of-range values then come back as :class:`hodei.ConfigError` naming each field.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from hodei.errors import ConfigError, Problem
from hodei.quantity import parse_cpu, parse_memory
from hodei.redaction import scrub


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    return value


NonEmptyStr = Annotated[str, AfterValidator(_non_blank)]
"""A string that is not empty and has no leading or trailing white space."""

CpuQuantity = Annotated[float, BeforeValidator(parse_cpu)]
"""Cores: ``2``, ``0.5``, ``"2"`` or ``"500m"``; parsed to a float."""

MemoryQuantity = Annotated[int, BeforeValidator(parse_memory)]
"""Bytes: ``536870912``, ``"512Mi"``, ``"4Gi"`` or ``"2G"``; parsed to an int."""


class StrictModel(BaseModel):
    """No coercion between JSON types, and no key the model does not know."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Capabilities(StrictModel):
    """What one worker can get, when the operator knows better than discovery."""

    cpu: CpuQuantity | None = None
    memory: MemoryQuantity | None = None
    gpu: Annotated[int, Field(ge=0)] | None = None


class ProviderConfigModel(StrictModel):
    """Base of every provider type's config model: the seed's ``"type"`` key and ``capabilities``."""

    type: str
    capabilities: Capabilities | None = None


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


# A bounded repr: quoting a 20,000-item list in an error costs as much as quoting six items.
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxdict, _BRIEF.maxstring, _BRIEF.maxother = 2, 6, 6, 60, 60


def _got(value: Any) -> str:
    text = scrub(_BRIEF.repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _reason(item: Mapping[str, Any]) -> str:
    kind, ctx, given = item["type"], item.get("ctx") or {}, item.get("input")
    fixed = {
        "extra_forbidden": "unknown key",
        "missing": "is required",
        "bool_type": f"must be true or false, got {_got(given)}",
        "int_type": f"must be an integer, got {_got(given)}",
        "int_from_float": f"must be an integer, got {_got(given)}",
        "float_type": f"must be a number, got {_got(given)}",
        "string_type": f"must be a string, got {_got(given)}",
        "dict_type": f"must be an object, got {_got(given)}",
        "model_type": f"must be an object, got {_got(given)}",
        "list_type": f"must be a list, got {_got(given)}",
        "tuple_type": f"must be a list, got {_got(given)}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}, got {_got(given)}",
        "greater_than": f"must be greater than {ctx.get('gt')}, got {_got(given)}",
        "less_than_equal": f"must be at most {ctx.get('le')}, got {_got(given)}",
        "less_than": f"must be less than {ctx.get('lt')}, got {_got(given)}",
        "literal_error": f"must be {ctx.get('expected')}, got {_got(given)}",
        "enum": f"must be {ctx.get('expected')}, got {_got(given)}",
        "string_too_short": f"must have at least {ctx.get('min_length')} character(s)",
        "string_too_long": f"must have at most {ctx.get('max_length')} characters",
        "too_short": f"must have at least {ctx.get('min_length')} item(s)",
        "too_long": f"must have at most {ctx.get('max_length')} items",
        "string_pattern_mismatch": f"must match {ctx.get('pattern')}, got {_got(given)}",
    }.get(kind)
    return fixed or str(item["msg"]).removeprefix("Value error, ")


def problems_from(error: ValidationError) -> list[Problem]:
    """One :class:`Problem` per pydantic error, with dotted field paths and plain reasons."""
    problems = []
    for item in error.errors(include_url=False):
        # pydantic adds union member and validator names to the location: noise, not fields.
        raw = list(item["loc"])
        reason = _reason(item)
        if "[key]" in raw:  # a bad map key: name the map, and the key in the reason
            at = raw.index("[key]")
            reason = f"key {raw[at - 1]!r} {reason}"
            raw = raw[:at - 1]
        loc = tuple(p for p in raw if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS)))
        problems.append(Problem(_field_path(loc), reason))
    return list(dict.fromkeys(problems))


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "json-or-python", "lax-or-strict"})


def validate_config_model(model: type[ProviderConfigModel], provider_type: str,
                          config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``config`` for ``provider_type`` against ``model`` and return it normalised.

    ``"type"`` may be left out (it is filled in) but, when given, must equal ``provider_type``.
    Quantities come back parsed (cores as float, memory as bytes), defaults filled in.
    """
    if not isinstance(config, Mapping):
        raise ConfigError("", f"must be a JSON object, not {type(config).__name__}")
    data = dict(config)
    declared = data.setdefault("type", provider_type)
    if declared != provider_type:
        raise ConfigError("type", f"{declared!r} does not match provider_type {provider_type!r}")
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc)) from None
    return validated.model_dump(mode="json")
