"""Between Hodei's Python objects and the API's messages, in both directions.

JSON inside messages (a provider's ``config``, a job's requirements) travels as
``google.protobuf.Value``/``Struct``, whose numbers are doubles: a whole number comes back as an
``int`` (below 2**53), so ``{"port": 8080}`` reaches the plugin as it was written.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import workers_pb2 as wpb
from hodei.documents import parse_text, unstorable_values
from hodei.domain import HealthStatus, ProviderState, Resources, WorkerState
from hodei.errors import InvalidInput, Problem
from hodei.redaction import quote
from hodei.services.selection import report_text
from hodei.services.views import (
    Attempt,
    Change,
    CheckOutcome,
    CheckReport,
    CooldownReset,
    HistoryEntry,
    ProviderView,
    Streak,
    Worker,
    sorted_pairs,
)
from hodei.services.workers import QueueEntry

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


def from_value(message: struct_pb2.Value | struct_pb2.Struct, field: str = "config") -> Any:
    """The JSON value a message carries. :raises InvalidInput: for NaN or Infinity, naming where."""
    try:
        return whole_numbers(json_format.MessageToDict(message))
    except ValueError:  # json_format refuses NaN and Infinity (JSON has neither)
        raise InvalidInput(Problem(_non_finite(message, field), "must be a finite number (NaN and Infinity "
                                                                "are not values)")) from None


def _non_finite(message: struct_pb2.Value | struct_pb2.Struct, path: str) -> str:
    """The path of the first NaN or Infinity inside ``message``."""
    stack: list[tuple[Any, str]] = [(message, path)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, struct_pb2.Struct):
            stack += [(value, f"{at}.{key}") for key, value in item.fields.items()]
        elif isinstance(item, struct_pb2.ListValue):
            stack += [(value, f"{at}[{i}]") for i, value in enumerate(item.values)]
        elif item.WhichOneof("kind") == "struct_value":
            stack.append((item.struct_value, at))
        elif item.WhichOneof("kind") == "list_value":
            stack.append((item.list_value, at))
        elif item.WhichOneof("kind") == "number_value" and not math.isfinite(item.number_value):
            return at
    return path


def to_value(value: Any, field: str = "config") -> struct_pb2.Value:
    message = struct_pb2.Value()
    try:
        json_format.ParseDict(_jsonable(value), message)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise InvalidInput(Problem(field, f"is not JSON: {exc}")) from None
    return message


def to_struct(value: Mapping[str, Any], field: str = "requirements") -> struct_pb2.Struct:
    unusable = unstorable_values(value)
    if unusable:
        raise InvalidInput(unusable, subject="invalid requirements")
    message = struct_pb2.Struct()
    try:
        json_format.ParseDict(_jsonable(value), message)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise InvalidInput(Problem(field, f"is not JSON: {exc}")) from None
    return message


def _jsonable(value: Any) -> Any:
    # Whatever a TOML or YAML reader gives (dates, ...) travels as JSON would print it.
    return json.loads(json.dumps(value, default=str))


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return message


def from_timestamp(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=UTC)


def version_of(updated_at: datetime) -> str:
    """The opaque version of a provider row: when it last changed, to the microsecond."""
    moment = updated_at if updated_at.tzinfo else updated_at.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def parse_version(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(Problem("expected_version", f"is not a version this server gave out: {quote(text)}")) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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


def _text_field(message: pb.ProviderConfig, key: str, value: Any) -> Problem | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return Problem(key, f"must be a string, got {quote(value)}")
    setattr(message, key, value)
    return None


def _int32_field(message: pb.ProviderConfig, key: str, value: Any) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return Problem(key, "Input should be a valid integer")
    if not -(2**31) <= value < 2**31:
        return Problem(key, f"must be between {-(2**31)} and {2**31 - 1}, got {value}")
    setattr(message, key, value)
    return None


def _config_field(message: pb.ProviderConfig, key: str, value: Any) -> Problem | None:
    message.config.CopyFrom(to_value(value))
    return None


def _regions_field(message: pb.ProviderConfig, key: str, value: Any) -> Problem | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return Problem(key, "must be a list of strings")
    message.allowed_regions.extend(value)
    return None


def _pairs_field(message: pb.ProviderConfig, key: str, value: Any) -> Problem | None:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        return Problem(key, "must be an object of strings")
    getattr(message, key).update(value)
    return None


_SETTERS = {"name": _text_field, "provider_type": _text_field, "status": _text_field,
            "preferred_region": _text_field, "priority": _int32_field, "max_workers": _int32_field,
            "config": _config_field, "allowed_regions": _regions_field, "required_labels": _pairs_field,
            "annotations": _pairs_field}


def config_message(document: Mapping[str, Any]) -> pb.ProviderConfig:
    """A ProviderConfig holding the fields present in ``document`` (the seed's names).

    :raises InvalidInput: for a value the message cannot carry (e.g. a priority that is not an integer).
    """
    unstorable = unstorable_values(document)  # refused as the service refuses them: a message cannot carry NaN
    if unstorable:
        raise InvalidInput(unstorable)
    message = pb.ProviderConfig()
    problems: list[Problem] = []
    for key, value in document.items():
        setter = _SETTERS.get(key)
        problem = setter(message, key, value) if setter else Problem(key, "unknown field")
        if problem is not None:
            problems.append(problem)
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
        provision_failures=state.provision_failures, last_provision_error=state.last_provision_error,
    )
    for field in ("checked_at", "capacity_reported_at", "cooldown_until"):
        moment = getattr(state, field)
        if moment is not None:
            getattr(message, field).CopyFrom(timestamp(moment))
    if state.check_duration_seconds is not None:
        message.check_duration_seconds = state.check_duration_seconds
    if state.backend_workers is not None:
        message.backend_workers = state.backend_workers
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
        provision_failures=message.provision_failures, cooldown_until=from_timestamp(message, "cooldown_until"),
        last_provision_error=message.last_provision_error,
    )
    if message.HasField("backend_workers"):
        values["backend_workers"] = message.backend_workers
    return ProviderState(**values)


def provider_message(view: ProviderView) -> pb.Provider:
    """A provider as the API sends it (its document is masked already)."""
    document = view.document
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
        id=document["id"], config=config, valid=document["valid"], version=version_of(view.updated_at),
        problems=[pb.FieldProblem(field=p["field"], reason=p["reason"]) for p in document["problems"]],
        state=state_message(view.state), config_json=json.dumps(document["config"]),
    )
    message.created_at.CopyFrom(timestamp(datetime.fromisoformat(document["created_at"])))
    message.updated_at.CopyFrom(timestamp(view.updated_at))
    return message


def _iso(message: Message, field: str) -> str:
    moment = from_timestamp(message, field)
    assert moment is not None, f"the server sent no {field}"
    return moment.isoformat()


def provider_view(message: pb.Provider) -> ProviderView:
    """A provider as the CLI shows it: the same document the server's service made."""
    config = message.config
    document = {
        "id": message.id, "name": config.name, "provider_type": config.provider_type,
        "config": json.loads(message.config_json) if message.config_json else
        from_value(config.config) if config.HasField("config") else {},
        "status": config.status, "priority": config.priority, "max_workers": config.max_workers,
        "preferred_region": config.preferred_region if config.HasField("preferred_region") else None,
        "allowed_regions": list(config.allowed_regions),
        "required_labels": sorted_pairs(dict(config.required_labels)),
        "annotations": sorted_pairs(dict(config.annotations)),
        "created_at": _iso(message, "created_at"), "updated_at": _iso(message, "updated_at"),
        "valid": message.valid, "problems": [{"field": p.field, "reason": p.reason} for p in message.problems],
    }
    return ProviderView(document, state_from(message.state))


def cooldown_reset_message(reset: CooldownReset) -> pb.ResetProviderCooldownResponse:
    message = pb.ResetProviderCooldownResponse(provider=provider_message(reset.provider),
                                               ended_failures=reset.ended.failures)
    if reset.ended.until is not None:
        message.ended_until.CopyFrom(timestamp(reset.ended.until))
    return message


def cooldown_reset_from(message: pb.ResetProviderCooldownResponse) -> CooldownReset:
    return CooldownReset(provider_view(message.provider),
                         Streak(failures=message.ended_failures, until=from_timestamp(message, "ended_until")))


def history_message(entry: HistoryEntry) -> pb.HistoryEntry:
    message = pb.HistoryEntry(kind=entry.kind, cause=entry.cause, provider_name=entry.provider_name,
                              actor=entry.actor)
    message.at.CopyFrom(timestamp(datetime.fromisoformat(entry.at)))
    if entry.old_value is not None:
        message.old_value = entry.old_value
    if entry.new_value is not None:
        message.new_value = entry.new_value
    return message


def history_from(message: pb.HistoryEntry) -> HistoryEntry:
    return HistoryEntry(at=_iso(message, "at"), kind=message.kind,
                        old_value=message.old_value if message.HasField("old_value") else None,
                        new_value=message.new_value if message.HasField("new_value") else None,
                        cause=message.cause, provider_name=message.provider_name, actor=message.actor)


def check_message(report: CheckReport) -> pb.CheckProvidersResponse:
    return pb.CheckProvidersResponse(
        results=[pb.ProviderCheck(provider_id=r.provider_id, name=r.name, health=r.health, reason=r.reason,
                                  duration_seconds=r.duration_seconds, active_workers=r.active_workers,
                                  max_workers=r.max_workers, capacity_error=r.capacity_error)
                 for r in report.results],
        skipped=[pb.SkippedProvider(name=name, problems=[pb.FieldProblem(field=p.field, reason=p.reason)
                                                         for p in problems]) for name, problems in report.skipped])


def check_from(message: pb.CheckProvidersResponse) -> CheckReport:
    return CheckReport(
        tuple(CheckOutcome(r.provider_id, r.name, r.health, r.reason, r.duration_seconds,
                           r.active_workers if r.HasField("active_workers") else None, r.max_workers,
                           r.capacity_error) for r in message.results),
        tuple((s.name, tuple(Problem(p.field, p.reason) for p in s.problems)) for s in message.skipped))


# -- workers --------------------------------------------------------------------------------------


def attempt_message(attempt: Attempt | Mapping[str, Any]) -> wpb.Attempt:
    values = attempt if isinstance(attempt, Mapping) else attempt.as_dict()
    return wpb.Attempt(provider=values["provider"], outcome=values["outcome"], reason=values["reason"],
                       seconds=float(values["seconds"]))


def worker_message(worker: Worker) -> wpb.Worker:
    document = worker.document()
    message = wpb.Worker(
        id=worker.id, provider_id=str(worker.provider_id), provider=worker.provider_name, state=worker.state.value,
        reason=worker.reason, requirements=to_struct(document["requirements"]),
        requirements_json=json.dumps(document["requirements"]),
        attempts=[attempt_message(a) for a in document["attempts"]],
        created_at=document["created_at"], updated_at=document["updated_at"])
    if worker.backend_id is not None:
        message.backend_id = worker.backend_id
    if document["ended_at"] is not None:
        message.ended_at = document["ended_at"]
    return message


def worker_from(message: wpb.Worker) -> Worker:
    return Worker(
        id=message.id, provider_id=uuid.UUID(message.provider_id), provider_name=message.provider,
        state=WorkerState(message.state), reason=message.reason,
        backend_id=message.backend_id if message.HasField("backend_id") else None, handle=None,
        requirements=json.loads(message.requirements_json) if message.requirements_json
        else from_value(message.requirements),
        attempts=[{"provider": a.provider, "outcome": a.outcome, "reason": a.reason, "seconds": a.seconds}
                  for a in message.attempts],
        created_at=datetime.fromisoformat(message.created_at), updated_at=datetime.fromisoformat(message.updated_at),
        ended_at=datetime.fromisoformat(message.ended_at) if message.HasField("ended_at") else None)


def queued_message(entry: QueueEntry) -> wpb.QueuedRequest:
    return wpb.QueuedRequest(position=entry.position, id=entry.id, priority=entry.priority,
                             enqueued_at=entry.enqueued_at.isoformat(), deadline=entry.deadline.isoformat(),
                             waits_at=entry.daemon, reasons=entry.reasons)


def queued_from(message: wpb.QueuedRequest) -> QueueEntry:
    return QueueEntry(message.position, message.id, message.priority, datetime.fromisoformat(message.enqueued_at),
                      datetime.fromisoformat(message.deadline), message.reasons, message.waits_at)


# -- selection ------------------------------------------------------------------------------------


def message_dict(message: Message, skip: Sequence[str] = ()) -> dict[str, Any]:
    """A message as the dict it was made from: fields in declaration order, an unset optional as None."""
    result: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        if field.name in skip:
            continue
        value = getattr(message, field.name)
        repeated = field.is_repeated
        if repeated:
            result[field.name] = [message_dict(v) if isinstance(v, Message) else v for v in value]
        elif field.has_presence and not message.HasField(field.name):
            result[field.name] = None
        else:
            result[field.name] = message_dict(value) if isinstance(value, Message) else value
    return result


def select_message(report: Any) -> spb.SelectResponse:
    """A report as the API answers it (built field by field: a Select is answered often)."""
    document = report.as_dict()
    message = spb.SelectResponse(
        ranking=[spb.RankedProvider(**{k: v for k, v in r.items() if v is not None}) for r in document["ranking"]],
        rejected=[spb.Rejection(name=r["name"], reasons=[spb.RejectionReason(**reason) for reason in r["reasons"]])
                  for r in document["rejected"]],
        rejection_counts=[spb.SelectRejectionCount(**c) for c in document["rejection_counts"]],
        summary=document["summary"], warnings=document["warnings"], total=document["total"],
        eligible=document["eligible"], in_tier=document["in_tier"], rejected_total=document["rejected_total"],
        offset=document["offset"], next_page_token=document["next_page_token"], text=report_text(document))
    if document["selected"] is not None:
        message.selected = document["selected"]
    if document["tier"] is not None:
        message.tier = document["tier"]
    return message


def explain_message(explanation: Any) -> spb.ExplainResponse:
    message = json_format.ParseDict(explanation.as_dict(), spb.ExplainResponse(), ignore_unknown_fields=True)
    message.text = explanation.text()
    return message


# -- apply ----------------------------------------------------------------------------------------


def _json_text(value: Any) -> str:
    return json.dumps(value, default=str)


def apply_request(documents: Sequence[Any], *, dry_run: bool, prune: bool) -> pb.ApplyProvidersRequest:
    """The providers as JSON text: numbers and key order reach the server as the file wrote them."""
    return pb.ApplyProvidersRequest(providers_json=_json_text(list(documents)), dry_run=dry_run, prune=prune)


def apply_documents(request: pb.ApplyProvidersRequest) -> list[Any]:
    """The providers of a request, read by the reader every file goes through: a key given twice, nesting
    past :data:`hodei.limits.NESTING` and numbers Python will not read are refused, never a traceback."""
    documents = (parse_text(request.providers_json, "json", "the request", field="providers_json")
                 if request.providers_json else [])
    if not isinstance(documents, list):
        raise InvalidInput(Problem("providers_json", f"must be a JSON list of provider objects, got "
                                                     f"{type(documents).__name__}"))
    return documents


def apply_message(changes: Sequence[Change], dry_run: bool) -> pb.ApplyProvidersResponse:
    return pb.ApplyProvidersResponse(dry_run=dry_run, changes=[
        pb.ApplyProvidersChange(
            name=c.name, action=c.action, provider_id=str(c.id) if c.id else "",
            fields=[pb.ApplyProvidersFieldChange(field=k, before_json=_json_text(b), after_json=_json_text(a))
                    for k, (b, a) in c.fields.items()])
        for c in changes])


def changes_from(message: pb.ApplyProvidersResponse) -> list[Change]:
    return [Change(c.name, c.action, {f.field: (json.loads(f.before_json), json.loads(f.after_json))
                                      for f in c.fields},
                   uuid.UUID(c.provider_id) if c.provider_id else None)
            for c in message.changes]
