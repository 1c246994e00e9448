"""Between Hodei's Python objects and the API's messages, in both directions.

JSON inside messages (a provider's ``config``, a job's requirements) travels as
``google.protobuf.Value``/``Struct``, whose numbers are doubles: a whole number comes back as an
``int`` (below 2**53), so ``{"port": 8080}`` reaches the plugin as it was written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import selection_pb2 as spb
from hodei.domain import HealthStatus, ProviderState, Resources
from hodei.errors import InvalidInput, Problem

_EXACT = 2**53

# ProviderConfig's fields, in the seed's order: also the paths an update mask may name.
CONFIG_FIELDS = ("name", "provider_type", "config", "status", "priority", "max_workers", "preferred_region",
                 "allowed_regions", "required_labels", "annotations")
_OPTIONAL = ("status", "priority", "max_workers", "preferred_region")


# -- JSON values ----------------------------------------------------------------------------------


def whole_numbers(value: Any) -> Any:
    """``value`` with every whole-number float (as Struct gives them) turned back into an int."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


def from_value(message: struct_pb2.Value | struct_pb2.Struct) -> Any:
    return whole_numbers(json_format.MessageToDict(message))


def to_value(value: Any, field: str = "config") -> struct_pb2.Value:
    message = struct_pb2.Value()
    try:
        json_format.ParseDict(_jsonable(value), message)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise InvalidInput(Problem(field, f"is not JSON: {exc}")) from None
    return message


def to_struct(value: Mapping[str, Any], field: str = "requirements") -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    try:
        json_format.ParseDict(_jsonable(value), message)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise InvalidInput(Problem(field, f"is not JSON: {exc}")) from None
    return message


def _jsonable(value: Any) -> Any:
    # Whatever a TOML or YAML reader gives (dates, ...) travels as JSON would print it.
    return json.loads(json.dumps(value, default=str))


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
    return message


def from_timestamp(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=timezone.utc)


def version_of(updated_at: datetime) -> str:
    """The opaque version of a provider row: when it last changed, to the microsecond."""
    moment = updated_at if updated_at.tzinfo else updated_at.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def parse_version(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(Problem("expected_version", f"is not a version this server gave out: {text!r}")) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- providers ------------------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    # A row edited in SQL may hold anything; it is shown as well as it can be, and its problems say why.
    if not isinstance(value, list):
        return [] if value is None else [json.dumps(value)]
    return [item if isinstance(item, str) else json.dumps(item) for item in value]


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def config_message(document: Mapping[str, Any]) -> pb.ProviderConfig:
    """A ProviderConfig holding the fields present in ``document`` (the seed's names).

    :raises InvalidInput: for a value the message cannot carry (e.g. a priority that is not an integer).
    """
    message = pb.ProviderConfig()
    problems: list[Problem] = []
    for key, value in document.items():
        if key in ("name", "provider_type", "status", "preferred_region"):
            if value is None:
                continue
            if not isinstance(value, str):
                problems.append(Problem(key, f"must be a string, got {value!r}"))
                continue
            setattr(message, key, value)
        elif key in ("priority", "max_workers"):
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(Problem(key, "Input should be a valid integer"))
            elif not -(2**31) <= value < 2**31:
                problems.append(Problem(key, f"must be between {-(2**31)} and {2**31 - 1}, got {value}"))
            else:
                setattr(message, key, value)
        elif key == "config":
            message.config.CopyFrom(to_value(value))
        elif key == "allowed_regions":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(Problem(key, "must be a list of strings"))
                continue
            message.allowed_regions.extend(value)
        elif key in ("required_labels", "annotations"):
            if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
                problems.append(Problem(key, "must be an object of strings"))
                continue
            getattr(message, key).update(value)
        else:
            problems.append(Problem(key, "unknown field"))
    if problems:
        raise InvalidInput(problems)
    return message


def config_value(message: pb.ProviderConfig, field: str) -> Any:
    """One ProviderConfig field as the store takes it; an optional field left unset is ``None``."""
    if field in _OPTIONAL:
        return getattr(message, field) if message.HasField(field) else None
    if field == "config":
        return from_value(message.config) if message.HasField("config") else None
    if field == "allowed_regions":
        return list(message.allowed_regions)
    if field in ("required_labels", "annotations"):
        return dict(getattr(message, field))
    return getattr(message, field)


def populated_fields(message: pb.ProviderConfig) -> list[str]:
    """The fields set in ``message``: an update without a mask changes these (AIP-134)."""
    fields = []
    for field in CONFIG_FIELDS:
        if field in _OPTIONAL or field == "config":
            if message.HasField(field):
                fields.append(field)
        elif getattr(message, field):
            fields.append(field)
    return fields


def state_message(state: ProviderState) -> pb.ProviderState:
    message = pb.ProviderState(
        health=state.health.value if state.health else "", health_reason=state.health_reason or "",
        active_workers=state.active_workers, reserved_workers=state.reserved_workers,
        consecutive_failures=state.consecutive_failures, consecutive_successes=state.consecutive_successes,
    )
    for field in ("checked_at", "capacity_reported_at"):
        moment = timestamp(getattr(state, field))
        if moment is not None:
            getattr(message, field).CopyFrom(moment)
    if state.check_duration_seconds is not None:
        message.check_duration_seconds = state.check_duration_seconds
    backend = getattr(state, "backend_workers", None)
    if backend is not None:
        message.backend_workers = backend
    for field in ("cpu", "memory", "gpu"):
        value = getattr(state.per_worker, field)
        if value is not None:
            setattr(message.per_worker, field, value)
    return message


def state_from(message: pb.ProviderState) -> ProviderState:
    per_worker = message.per_worker
    values: dict[str, Any] = dict(
        health=HealthStatus(message.health) if message.health else None, health_reason=message.health_reason,
        checked_at=from_timestamp(message, "checked_at"),
        check_duration_seconds=message.check_duration_seconds if message.HasField("check_duration_seconds")
        else None,
        active_workers=message.active_workers, reserved_workers=message.reserved_workers,
        per_worker=Resources(**{f: getattr(per_worker, f) if per_worker.HasField(f) else None
                                for f in ("cpu", "memory", "gpu")}),
        capacity_reported_at=from_timestamp(message, "capacity_reported_at"),
        consecutive_failures=message.consecutive_failures, consecutive_successes=message.consecutive_successes,
    )
    if message.HasField("backend_workers") and "backend_workers" in ProviderState.__dataclass_fields__:
        values["backend_workers"] = message.backend_workers
    return ProviderState(**values)


def provider_message(document: Mapping[str, Any], state: ProviderState | None) -> pb.Provider:
    """A provider from its masked document (``hodei.store.masked_document``) and its run-time state."""
    config = pb.ProviderConfig(
        name=document["name"], provider_type=document["provider_type"], status=document["status"],
        priority=document["priority"], max_workers=document["max_workers"],
        allowed_regions=_strings(document["allowed_regions"]),
        required_labels=_string_map(document["required_labels"]),
        annotations=_string_map(document["annotations"]),
    )
    config.config.CopyFrom(to_value(document["config"]))
    if document["preferred_region"] is not None:
        config.preferred_region = str(document["preferred_region"])
    message = pb.Provider(
        id=document["id"], config=config, valid=document["valid"],
        version=version_of(datetime.fromisoformat(document["updated_at"])),
        problems=[pb.FieldProblem(field=p["field"], reason=p["reason"]) for p in document["problems"]],
        state=state_message(state or ProviderState()), config_json=json.dumps(document["config"]),
    )
    message.created_at.CopyFrom(timestamp(datetime.fromisoformat(document["created_at"])))
    message.updated_at.CopyFrom(timestamp(datetime.fromisoformat(document["updated_at"])))
    return message


def stored_from(message: pb.Provider) -> Any:
    """A ``StoredProvider`` as the CLI shows it (its config already masked by the server)."""
    from hodei.store import StoredProvider

    config = message.config
    return StoredProvider(
        id=uuid.UUID(message.id), name=config.name, provider_type=config.provider_type,
        config=json.loads(message.config_json) if message.config_json else
        from_value(config.config) if config.HasField("config") else {},
        status=config.status, priority=config.priority, max_workers=config.max_workers,
        preferred_region=config.preferred_region if config.HasField("preferred_region") else None,
        allowed_regions=list(config.allowed_regions), required_labels=dict(config.required_labels),
        annotations=dict(config.annotations),
        created_at=from_timestamp(message, "created_at"), updated_at=from_timestamp(message, "updated_at"),
        problems=tuple(Problem(p.field, p.reason) for p in message.problems),
    )


# -- selection ------------------------------------------------------------------------------------


def message_dict(message: Message, skip: Sequence[str] = ()) -> dict[str, Any]:
    """A message as the dict it was made from: fields in declaration order, an unset optional as None."""
    result: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        if field.name in skip:
            continue
        value = getattr(message, field.name)
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        if repeated:
            result[field.name] = [message_dict(v) if isinstance(v, Message) else v for v in value]
        elif field.has_presence and not message.HasField(field.name):
            result[field.name] = None
        else:
            result[field.name] = message_dict(value) if isinstance(value, Message) else value
    return result


def select_message(report: Any) -> spb.SelectResponse:
    message = json_format.ParseDict(report.as_dict(), spb.SelectResponse(), ignore_unknown_fields=True)
    message.text = report.text()
    return message


def explain_message(explanation: Any) -> spb.ExplainResponse:
    message = json_format.ParseDict(explanation.as_dict(), spb.ExplainResponse(), ignore_unknown_fields=True)
    message.text = explanation.text()
    return message
