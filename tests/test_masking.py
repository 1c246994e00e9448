"""Secrets in provider configs never leave Hodei in clear."""

from __future__ import annotations

import json
import types

from hodei import ProviderType, hookimpl, provider_hook
from hodei.masking import mask_secrets
from hodei.services.providers import LocalProviders
from hodei.storage.provider_state import ProviderStates
from hodei.store import Store


def masked_document(provider, store: Store) -> dict:
    return dict(LocalProviders(store, ProviderStates(store.engine), store.pm).view(provider).document)


def test_mask_secrets_hides_nested_paths_and_leaves_the_rest() -> None:
    config = {"registry": {"username": "bot", "password": "hunter2"}, "token": "t0k", "plain": 1}
    masked = mask_secrets(config, ["registry.password", "token", "absent.path"])
    assert masked == {"registry": {"username": "bot", "password": "***"}, "token": "***", "plain": 1}
    assert config["registry"]["password"] == "hunter2", "the original is not changed"


def secret_type_plugin():
    @hookimpl
    def hodei_provider_types():
        return [ProviderType("vault", "has secrets", secret_fields=("password",))]

    @provider_hook("vault")
    def hodei_validate_config(provider_type, config):
        return {"type": "vault", **config}

    plugin = types.ModuleType("vault_plugin")  # hashable, as plugin objects must be (the core routes by them)
    plugin.__dict__.update(hodei_provider_types=hodei_provider_types, hodei_validate_config=hodei_validate_config)
    return plugin


def test_stored_secret_is_masked_in_documents(hodei_store: Store, register_plugin) -> None:
    register_plugin(secret_type_plugin(), name="vault")
    created = hodei_store.create({"name": "v", "provider_type": "vault", "config": {"password": "hunter2", "user": "u"}})
    shown = json.dumps(masked_document(created, hodei_store))
    assert "hunter2" not in shown
    assert '"password": "***"' in shown and '"user": "u"' in shown


def test_config_of_a_type_whose_plugin_is_not_loaded_is_hidden_whole(hodei_store: Store, register_plugin) -> None:
    plugin = register_plugin(secret_type_plugin(), name="vault")
    hodei_store.create({"name": "v", "provider_type": "vault", "config": {"password": "hunter2"}})
    hodei_store.pm.unregister(plugin)
    (row,) = hodei_store.all()
    assert not row.valid
    assert masked_document(row, hodei_store)["config"] == "***"
