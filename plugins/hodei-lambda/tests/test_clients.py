"""boto3 clients: one per provider (and call budget), reused, bounded in time, replaced when the config moves."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hodei import Provider
from hodei_lambda import aws

MakeProvider = Callable[..., Provider]  # the conftest fixture: make_provider(**config overrides)


def test_client_is_reused_and_bounded_by_its_budget(make_provider: MakeProvider, moto_endpoint: str) -> None:
    provider = make_provider()
    client = aws.client(provider, "lambda", 5.0)
    assert aws.client(provider, "lambda", 5.0) is client
    assert client.meta.endpoint_url == moto_endpoint
    assert client.meta.region_name == "us-east-1"
    # One attempt whose connect and read together fit the budget.
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (2.5, 2.5)
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert aws.client(provider, "lambda", 1.0).meta.config.read_timeout == 0.5


def test_each_provider_has_its_own_clients(make_provider: MakeProvider) -> None:
    assert aws.client(make_provider(), "lambda", 5.0) is not aws.client(make_provider(), "lambda", 5.0)


def test_a_provider_whose_endpoint_changed_gets_new_clients(make_provider: MakeProvider) -> None:
    provider = make_provider()
    before = aws.client(provider, "sts", 5.0)
    moved = dataclasses.replace(provider, config={**provider.config, "endpoint_url": "http://127.0.0.1:9"})
    after = aws.client(moved, "sts", 5.0)
    assert after is not before
    assert after.meta.endpoint_url == "http://127.0.0.1:9"
