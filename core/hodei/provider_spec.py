"""What makes a provider document valid: its own fields here, its ``config`` by its type's plugin."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError

from hodei import limits
from hodei.config_schema import NonEmptyStr, StrictModel, problems_from
from hodei.documents import unstorable_values
from hodei.errors import InvalidInput, Problem, UnknownProviderType
from hodei.masking import secret_values
from hodei.plugins import HodeiPluginManager
from hodei.redaction import MASK, quote

# PostgreSQL INTEGER bounds: a value the column cannot hold is refused here, not by the driver.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

Status = Literal["ACTIVE", "DISABLED", "MAINTENANCE", "UNHEALTHY"]


def _unique(values: list[str]) -> list[str]:
    duplicates = sorted(value for value, count in Counter(values).items() if count > 1)  # linear, not n²
    if duplicates:
        shown = ", ".join(quote(v) for v in duplicates[:5]) + (f" and {len(duplicates) - 5} more"
                                                              if len(duplicates) > 5 else "")
        raise ValueError(f"lists {shown} more than once")
    return values


def _trimmed_values(values: dict[str, str]) -> dict[str, str]:
    # Matching is exact, so a stray space would make a label silently never match (the seed's
    # troubleshooting names it); refuse it where it is written instead.
    for key, value in values.items():
        if value != value.strip():
            raise ValueError(f"value of {quote(key)} starts or ends with white space: {quote(value)}")
    return values


# Characters that make one value print as something else: line breaks and other controls (a name
# holding "\n" prints a fake row in `providers list`), escape sequences, and bidirectional overrides.
_SPOOFING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Refuses text holding a control character or a bidirectional override (names, regions, labels)."""
    found = _SPOOFING.search(text)
    if found:
        kind = "bidirectional control" if ord(found[0]) > 0x9F else "control character"
        raise ValueError(f"contains the {kind} U+{ord(found[0]):04X} at position {found.start()}, which would "
                         "print as something else; use printable characters")
    return text


def printable_name(text: str) -> bool:
    """Whether ``text`` can be shown as it is in a message (short, nothing that prints as something else)."""
    return len(text) <= 60 and not _SPOOFING.search(text)


Text = Annotated[NonEmptyStr, Field(max_length=limits.TEXT_CHARS), AfterValidator(printable)]
LabelValue = Annotated[str, Field(max_length=limits.LABEL_VALUE_CHARS), AfterValidator(printable)]
AnnotationValue = Annotated[str, Field(max_length=limits.ANNOTATION_VALUE_CHARS), AfterValidator(printable)]
Labels = Annotated[dict[Text, LabelValue], Field(max_length=limits.LABELS), AfterValidator(_trimmed_values)]
Annotations = Annotated[dict[Text, AnnotationValue], Field(max_length=limits.LABELS),
                        AfterValidator(_trimmed_values)]


class ProviderSpec(StrictModel):
    """A provider as written by an operator: the seed's fields, ``config`` still unchecked."""

    name: Annotated[NonEmptyStr, Field(max_length=limits.NAME_CHARS), AfterValidator(printable)]
    provider_type: Text
    config: dict[str, Any] = Field(default_factory=dict)
    status: Status = "ACTIVE"
    priority: Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)] = 0
    max_workers: Annotated[int, Field(ge=1, le=INT32_MAX)] = 10
    preferred_region: Text | None = None
    allowed_regions: Annotated[list[Text], Field(max_length=limits.REGIONS),
                               AfterValidator(_unique)] = Field(default_factory=list)
    required_labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    id: uuid.UUID | None = None


PROVIDER_FIELDS = tuple(name for name in ProviderSpec.model_fields if name != "id")


def parse_provider(document: Any, pm: HodeiPluginManager) -> tuple[ProviderSpec, dict[str, Any]]:
    """Validate a whole provider document; returns the spec and its normalised config.

    Every problem is reported at once, each named by its field (``config.network``).

    :raises InvalidInput: when anything is wrong; nothing has been written.
    """
    if not isinstance(document, Mapping):
        raise InvalidInput(Problem("", f"a provider must be an object, got {type(document).__name__}"))
    unstorable = unstorable_values(document)
    if unstorable:
        raise InvalidInput(unstorable)
    data = dict(document)
    subject = f"provider {quote(data['name'])}" if isinstance(data.get("name"), str) else None
    too_big = _config_size(data.get("config"))
    if too_big:
        raise InvalidInput(too_big, subject=subject)
    if isinstance(data.get("id"), str):
        try:
            data["id"] = uuid.UUID(data["id"])
        except ValueError:
            raise InvalidInput(Problem("id", f"must be a UUID, got {quote(data['id'])}")) from None
    try:
        spec = ProviderSpec.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc)
        # Report the config's problems too, when the rest of the document lets us check it.
        if not any(p.field == "provider_type" or p.field.startswith("config") for p in problems):
            problems += _config_problems(pm, data.get("provider_type"), data.get("config", {}))
        raise InvalidInput(_without_secrets(problems, pm, data), subject=subject) from None
    try:
        return spec, normalise_config(pm, spec.provider_type, spec.config)
    except InvalidInput as exc:
        raise InvalidInput(_without_secrets(exc.problems, pm, data), subject=subject) from None


def _without_secrets(problems: list[Problem], pm: HodeiPluginManager, document: Mapping[str, Any]) -> list[Problem]:
    # A plugin's message may quote what it refused; when that was a secret (or the object holding
    # one), the message shows the mask instead, as every view of the config does.
    provider_type = document.get("provider_type")
    ptype = pm.provider_types.get(provider_type) if isinstance(provider_type, str) else None
    secrets = secret_values(document.get("config"), ptype.secret_fields if ptype else ())
    if not secrets:
        return problems
    hidden = []
    for problem in problems:
        reason = problem.reason
        for secret in sorted(secrets, key=len, reverse=True):
            reason = reason.replace(secret, MASK)
        hidden.append(Problem(problem.field, reason))
    return hidden


def _config_size(config: Any) -> list[Problem]:
    if not isinstance(config, Mapping):
        return []
    try:
        size = len(json.dumps(config, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError):
        return []  # not JSON: the config's validation says why
    if size > limits.CONFIG_BYTES:
        return [Problem("config", f"is {size} bytes as JSON; at most {limits.CONFIG_BYTES} are allowed")]
    return []


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


def _config_problems(pm: HodeiPluginManager, provider_type: Any, config: Any) -> list[Problem]:
    if not isinstance(provider_type, str):
        return []
    try:
        normalise_config(pm, provider_type, config)
    except InvalidInput as exc:
        return exc.problems
    return []
