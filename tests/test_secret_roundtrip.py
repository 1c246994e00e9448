"""A secret shown as ``***`` and written back keeps the stored secret, on every write path: the store
(create, update, merge, apply), ``providers apply`` of a ``providers show -o json`` export,
``providers update``, and the API's UpdateProvider. A mask with nothing stored behind it is refused,
naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.errors import InvalidInput
from hodei.masking import MASK, keep_masked_secrets, mask_secrets
from hodei.plugins import HodeiPluginManager
from hodei.provider_change import ProviderChange
from hodei.services.providers import LocalProviders
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store
from hodei.testing.serve import Served, serve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SECRET = "hunter2-s3cret"
DOCKER = {"name": "d", "provider_type": "docker",
          "config": {"registry_auth": {"username": "bot", "password": SECRET}, "network": "bridge"}}
SHOWN_ONLY = ("id", "created_at", "updated_at", "valid", "problems", "state")
EXAMPLES = 25


def stored_password(store: Store, name: str = "d") -> Any:
    return store.get(name).config["registry_auth"]["password"]


def shown(store: Store, name: str = "d") -> dict[str, Any]:
    """``providers show -o json`` as a document ``apply`` takes back."""
    view = LocalProviders(store, ProviderStates(store.engine), store.pm).get(name)
    return {k: v for k, v in view.as_json().items() if k not in SHOWN_ONLY}


def test_mask_is_kept_or_refused_by_path() -> None:
    stored = {"auth": {"user": "u", "password": "p"}, "token": "t"}
    kept, problems = keep_masked_secrets({"auth": {"user": "v", "password": MASK}, "token": MASK}, stored,
                                         ["auth.password", "token"])
    assert (kept, problems) == ({"auth": {"user": "v", "password": "p"}, "token": "t"}, [])
    _, problems = keep_masked_secrets({"token": MASK}, None, ["token"])
    assert [p.field for p in problems] == ["config.token"]
    # A secret of the wrong shape is masked whole, and kept whole when the mask comes back.
    wrong = {"auth": "user:pass"}
    assert mask_secrets(wrong, ["auth.password"]) == {"auth": MASK}
    assert keep_masked_secrets({"auth": MASK}, wrong, ["auth.password"]) == (wrong, [])
    # The whole config hidden (its plugin not loaded) and sent back keeps the stored config.
    assert keep_masked_secrets(MASK, stored, None) == (stored, [])
    # A credential in a URL is shown scrubbed; written back as shown, the stored URL is kept.
    with_url = {"hosts": [{"url": "https://u:pw@h/x?token=t"}], "dsn": "postgresql://h/db?password=pw"}
    shown = mask_secrets(with_url, [])
    assert "pw" not in json.dumps(shown) and "t\"" not in json.dumps(shown)
    assert keep_masked_secrets(shown, with_url, []) == (with_url, [])
    assert keep_masked_secrets({**shown, "dsn": "postgresql://h/other"}, with_url, [])[0]["dsn"] == \
        "postgresql://h/other"


def test_creating_with_the_mask_is_refused_naming_the_field(hodei_store: Store) -> None:
    document = json.loads(json.dumps(DOCKER))
    document["config"]["registry_auth"]["password"] = MASK
    with pytest.raises(InvalidInput) as caught:
        hodei_store.create(document)
    assert [p.field for p in caught.value.problems] == ["config.registry_auth.password"]
    assert "no stored secret" in str(caught.value)
    with pytest.raises(InvalidInput):
        hodei_store.apply([document])
    assert hodei_store.all() == []


def test_changing_the_type_does_not_carry_a_secret_over(hodei_store: Store, hodei_pm: HodeiPluginManager) -> None:
    hodei_store.create(DOCKER)
    document = shown(hodei_store)
    document["name"] = "other"
    with pytest.raises(InvalidInput) as caught:  # a new provider: nothing stored under its name
        hodei_store.apply([document])
    assert [p.field for p in caught.value.problems] == ["providers[0] (other).config.registry_auth.password"]


# Changes an operator makes to a shown document before writing it back; none touches the secret.
edits = st.fixed_dictionaries({}, optional={
    "priority": st.integers(-1000, 1000), "max_workers": st.integers(1, 50),
    "network": st.sampled_from(["bridge", "host", "jobs"]), "username": st.sampled_from(["bot", "ci", "deploy"]),
    "labels": st.dictionaries(st.sampled_from(["env", "team", "tier"]), st.sampled_from(["a", "b"]), max_size=3),
    "status": st.sampled_from(["ACTIVE", "DISABLED", "MAINTENANCE"]),
})
paths = st.sampled_from(["apply", "update-fields", "update-merge", "apply-twice"])


def edited(document: dict[str, Any], edit: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    for key in ("priority", "max_workers", "status"):
        if key in edit:
            document[key] = edit[key]
    if "network" in edit:
        document["config"]["network"] = edit["network"]
    if "username" in edit:
        document["config"]["registry_auth"]["username"] = edit["username"]
    if "labels" in edit:
        document["required_labels"] = edit["labels"]
    return document


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(paths, edits), min_size=1, max_size=4))
def test_shown_documents_written_back_never_change_a_secret(hodei_store: Store, steps) -> None:
    """Hypothesis: any sequence of show → edit → write back, through any write path, keeps the secret."""
    for row in hodei_store.all():
        hodei_store.delete(row.id)
    hodei_store.create(DOCKER)
    for path, edit in steps:
        document = edited(shown(hodei_store), edit)
        assert document["config"]["registry_auth"]["password"] == MASK
        if path.startswith("apply"):
            hodei_store.apply([document])
            if path == "apply-twice":
                hodei_store.apply([edited(shown(hodei_store), edit)])
        elif path == "update-fields":
            hodei_store.update("d", ProviderChange(fields={"config": document["config"],
                                                           "priority": document["priority"]}))
        else:
            hodei_store.update("d", ProviderChange(merge_config={"registry_auth": document["config"]["registry_auth"]}))
        assert stored_password(hodei_store) == SECRET
        assert hodei_store.get("d").config["registry_auth"]["username"] == document["config"]["registry_auth"][
            "username"]


def test_a_new_secret_replaces_the_old_one(hodei_store: Store) -> None:
    hodei_store.create(DOCKER)
    document = shown(hodei_store)
    document["config"]["registry_auth"]["password"] = "rotated"
    (change,) = hodei_store.apply([document])
    assert change.action == "update" and stored_password(hodei_store) == "rotated"


# -- through the CLI, on SQLite and PostgreSQL -----------------------------------------------------


def test_cli_show_then_apply_and_update_keep_the_secret(hodei: Any, hodei_pm: HodeiPluginManager,
                                                        tmp_path: Path) -> None:
    hodei.ok("providers", "add", "d", "--type", "docker", "--config", json.dumps(DOCKER["config"]))
    export = tmp_path / "d.json"
    export.write_text(hodei.ok("providers", "show", "d", "-o", "json").stdout, encoding="utf-8")
    applied = hodei("providers", "apply", "-f", str(export))
    assert applied.exit_code == 0, applied.stderr
    masked = json.dumps(json.loads(export.read_text())["config"])
    hodei.ok("providers", "update", "d", "--config", masked)
    hodei.ok("providers", "update", "d", "--merge-config", json.dumps({"registry_auth": {"username": "ci",
                                                                                          "password": MASK}}))
    store = Store.open(hodei.url, hodei_pm)
    try:
        assert stored_password(store) == SECRET
        assert store.get("d").config["registry_auth"]["username"] == "ci"
    finally:
        store.close()
    refused = hodei("providers", "add", "e", "--type", "docker", "--config", masked)
    assert refused.exit_code == 1 and "config.registry_auth.password" in refused.stderr
    assert "Traceback" not in refused.stderr


# -- through the API (a real `hodei serve`) ---------------------------------------------------------


@pytest.fixture
def served(hodei: Any, tmp_path: Path) -> Iterator[Served]:
    config = tmp_path / "serve.toml"
    config.write_text(f'[database]\nurl = "{hodei.url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                      '[health]\ninterval_seconds = 3600\n', encoding="utf-8")
    with serve(config) as daemon:
        yield daemon


def test_api_update_with_the_masked_config_keeps_the_secret(served: Served, hodei_pm: HodeiPluginManager,
                                                            hodei: Any) -> None:
    with grpc.insecure_channel(served.address) as channel:
        stub = pb_grpc.ProviderServiceStub(channel)
        config = json_format.ParseDict(DOCKER["config"], struct_pb2.Value())
        stub.CreateProvider(pb.CreateProviderRequest(config=pb.ProviderConfig(name="d", provider_type="docker",
                                                                              config=config)), timeout=20)
        got = stub.GetProvider(pb.GetProviderRequest(provider_id="d"), timeout=20)
        assert SECRET not in str(got)
        sent = pb.ProviderConfig()
        sent.CopyFrom(got.config)
        sent.priority = 7
        stub.UpdateProvider(pb.UpdateProviderRequest(provider_id="d", config=sent), timeout=20)
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateProvider(pb.CreateProviderRequest(config=pb.ProviderConfig(
                name="e", provider_type="docker", config=got.config.config)), timeout=20)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "config.registry_auth.password" in caught.value.details()
    store = Store.open(hodei.url, hodei_pm)
    try:
        assert stored_password(store) == SECRET and store.get("d").priority == 7
        assert [p.name for p in store.all()] == ["d"]
    finally:
        store.close()
    assert SECRET not in served.log()
