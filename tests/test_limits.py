"""Every limit in docs/limits.md: at the limit accepted, past it refused naming the field (exit 1,
INVALID_ARGUMENT through a real ``hodei serve``), nothing written; inputs Python itself cannot take
(100,000 levels of nesting, 5,000-digit integers) refused the same way, never a traceback; a health
reason of 50 MB stored cut to the limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from hodei import HealthResult, limits
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.errors import InvalidInput
from hodei.services.providers import LocalProviders
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.testing.serve import Served, serve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASE = {"name": "p", "provider_type": "static"}


def at_and_past(limit: int, make: Any) -> tuple[Any, Any]:
    return make(limit), make(limit + 1)


# (field named in the refusal, value at the limit, value past it)
CASES = {
    "name": at_and_past(limits.NAME_CHARS, lambda n: {"name": "n" * n}),
    "provider_type": at_and_past(limits.TEXT_CHARS, lambda n: {"provider_type": "t" * n}),
    "preferred_region": at_and_past(limits.TEXT_CHARS, lambda n: {"preferred_region": "r" * n}),
    "allowed_regions": at_and_past(limits.REGIONS, lambda n: {"allowed_regions": [f"r{i}" for i in range(n)]}),
    "allowed_regions[0]": at_and_past(limits.TEXT_CHARS, lambda n: {"allowed_regions": ["r" * n]}),
    "required_labels": at_and_past(limits.LABELS, lambda n: {"required_labels": {f"k{i}": "v" for i in range(n)}}),
    "required_labels.k": at_and_past(limits.LABEL_VALUE_CHARS, lambda n: {"required_labels": {"k": "v" * n}}),
    "annotations": at_and_past(limits.LABELS, lambda n: {"annotations": {f"k{i}": "v" for i in range(n)}}),
    "annotations.k": at_and_past(limits.ANNOTATION_VALUE_CHARS, lambda n: {"annotations": {"k": "v" * n}}),
    "config": at_and_past(limits.CONFIG_BYTES, lambda n: {"config": {"type": "static", "health_reason": "x" * (
        n - len(json.dumps({"type": "static", "health_reason": ""}, ensure_ascii=False)))}}),
}


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("field", sorted(CASES))
def test_each_limit_is_accepted_at_and_refused_past(hodei_store: Store, field: str) -> None:
    at, past = CASES[field]
    with pytest.raises(InvalidInput) as caught:
        hodei_store.create(BASE | past)
    assert any(p.field.startswith(field.split(".")[0]) for p in caught.value.problems), caught.value
    assert len(str(caught.value)) < 2000, "a refusal does not quote what it refuses"
    assert hodei_store.all() == []
    if field == "provider_type":
        return  # no plugin serves a type that long: at the limit it is refused as unknown instead
    stored = hodei_store.create(BASE | at)
    assert stored.valid, stored.problems


def test_a_label_key_past_the_limit_is_refused(hodei_store: Store) -> None:
    with pytest.raises(InvalidInput, match="required_labels"):
        hodei_store.create(BASE | {"required_labels": {"k" * (limits.TEXT_CHARS + 1): "v"}})


def test_nesting_past_the_limit_is_refused_in_a_config(hodei_store: Store) -> None:
    with pytest.raises(InvalidInput, match="levels deep"):
        hodei_store.create(BASE | {"config": {"type": "static", "x": nested(limits.NESTING)}})


@pytest.mark.parametrize(("suffix", "content"), [
    (".json", "[" * 100_000 + "]" * 100_000),
    (".json", '{"a":' * 100_000 + "1" + "}" * 100_000),
    (".yaml", "[" * 100_000 + "]" * 100_000),
    (".yaml", "".join(f"{'  ' * i}a:\n" for i in range(3000))),
    (".toml", "a = " + "[" * 100_000 + "]" * 100_000),
    (".json", json.dumps([BASE | {"config": {"type": "static", "x": nested(40)}}])),
    (".json", '[{"name": "p", "provider_type": "static", "priority": ' + "9" * 5000 + "}]"),
    (".yaml", "- name: p\n  provider_type: static\n  priority: " + "9" * 5000 + "\n"),
    (".toml", '[[providers]]\nname = "p"\nprovider_type = "static"\npriority = ' + "9" * 5000 + "\n"),
    (".json", '[{"name": "p", "provider_type": "static", "priority": ' + "9" * 4000 + "}]"),
])
def test_what_python_cannot_read_is_refused_not_a_traceback(hodei: Any, tmp_path: Path, suffix: str,
                                                            content: str) -> None:
    path = tmp_path / f"p{suffix}"
    path.write_text(content, encoding="utf-8")
    result = hodei("providers", "apply", "-f", str(path))
    assert result.exit_code == 1, (result.stdout, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and len(result.stderr) < 2000, result.stderr[-2000:]
    assert hodei.providers() == []


def test_a_file_past_the_size_limit_is_refused_without_reading_it_all(sqlite_hodei: Any, tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("w") as file:
        file.write("[" + " " * limits.DOCUMENT_BYTES + "]")
    result = sqlite_hodei("providers", "apply", "-f", str(path))
    assert result.exit_code == 1 and "larger than" in result.stderr


def test_duplicates_among_many_regions_are_found_in_linear_time(hodei_store: Store) -> None:
    regions = [f"region-{i}" for i in range(limits.REGIONS)]
    with pytest.raises(InvalidInput) as caught:
        hodei_store.create(BASE | {"allowed_regions": [*regions[:-2], "region-1", "region-2"]})
    assert "more than once" in str(caught.value) and "region-1" in str(caught.value)
    with pytest.raises(InvalidInput, match="allowed_regions"):
        hodei_store.create(BASE | {"allowed_regions": [f"r{i}" for i in range(20_000)]})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(CASES)), extra=st.integers(1, 3000))
def test_anything_past_a_limit_is_refused_and_writes_nothing(hodei_store: Store, field: str, extra: int) -> None:
    """Hypothesis: any size past any limit is refused naming the field, and nothing is written."""
    _, past = CASES[field]
    document = json.loads(json.dumps(BASE | past))
    key = next(iter(past))
    value = document[key]
    if isinstance(value, str):
        document[key] = value + "x" * extra
    elif isinstance(value, list):
        document[key] = value + [f"extra{i}" for i in range(extra)] if len(value) > 1 else [value[0] + "x" * extra]
    elif key == "config":
        value["health_reason"] += "x" * extra
    elif len(value) > 1:
        value.update({f"extra{i}": "v" for i in range(extra)})
    else:
        value["k"] += "x" * extra
    with pytest.raises(InvalidInput) as caught:
        hodei_store.create(document)
    assert any(p.field.startswith(key) for p in caught.value.problems), caught.value
    assert hodei_store.all() == []


# -- health reasons ---------------------------------------------------------------------------------


def test_a_50_mb_health_reason_is_stored_cut_and_says_so(hodei_store: Store) -> None:
    stored = hodei_store.create(BASE)
    providers = LocalProviders(hodei_store, ProviderStates(hodei_store.engine), hodei_store.pm)
    providers.record_check(stored.id, HealthResult.unhealthy("boom " * 10_000_000))
    reason = providers.get("p").state.health_reason
    assert len(reason) < limits.HEALTH_REASON_CHARS + 100
    assert reason.startswith("boom boom") and "truncated" in reason
    entry, created = providers.history("p")
    assert (entry.kind, created.kind) == ("health", "created")
    assert len(entry.cause or "") < limits.HEALTH_REASON_CHARS + 100


# -- through the API ----------------------------------------------------------------------------------


@pytest.fixture
def stub(hodei: Any, tmp_path: Path) -> Iterator[Any]:
    config = tmp_path / "serve.toml"
    config.write_text(f'[database]\nurl = "{hodei.url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n',
                      encoding="utf-8")
    with serve(config) as daemon, grpc.insecure_channel(daemon.address) as channel:
        yield pb_grpc.ProviderServiceStub(channel), daemon


def test_the_api_refuses_past_each_limit_naming_the_field(stub: tuple[Any, Served]) -> None:
    providers, daemon = stub
    for field, (_, past) in sorted(CASES.items()):
        document = BASE | past
        message = pb.ProviderConfig(**{k: v for k, v in document.items() if k != "config"})
        if "config" in document:
            message.config.CopyFrom(json_format.ParseDict(document["config"], struct_pb2.Value()))
        with pytest.raises(grpc.RpcError) as caught:
            providers.CreateProvider(pb.CreateProviderRequest(config=message), timeout=30)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (field, caught.value.details()[:500])
        assert field.split(".")[0].split("[")[0] in caught.value.details(), (field, caught.value.details()[:500])
    deep = struct_pb2.Value()
    json_format.ParseDict({"type": "static", "x": nested(limits.NESTING)}, deep)
    with pytest.raises(grpc.RpcError) as caught:
        providers.CreateProvider(pb.CreateProviderRequest(config=pb.ProviderConfig(
            name="p", provider_type="static", config=deep)), timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(providers.ListProviders(pb.ListProvidersRequest(), timeout=30).providers) == []
    assert "Traceback" not in daemon.log()
