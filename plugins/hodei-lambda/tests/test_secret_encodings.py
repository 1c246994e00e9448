"""Secret values with quotes, backslashes and non-ASCII characters stay out of the SDK's debug logs in
every encoding botocore writes them (the Invoke body is JSON inside a repr: ``p\\\\u00e4ss``, ``q\\\\"uote``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hodei import Provider, WorkerRequest
from hodei.redaction import secret_forms
from hodei_lambda import hodei_provision

HOSTILE = ["p\u00e4ssw\u00f6rd-\u00fc\u00df-4e1a", 'q"uote-\'single\'-7b2c', "back\\slash-and/slash-9f3d",
           "sp ace&amp=plus+percent%-2a6e", "\u5bc6\u7801-emoji-\U0001f511-5c8b"]


@pytest.mark.parametrize("secret", HOSTILE)
def test_a_secret_in_any_encoding_never_reaches_the_debug_log(
        make_provider: Callable[..., Provider], invocations: list[dict[str, Any]],
        caplog: pytest.LogCaptureFixture, secret: str) -> None:
    token = f"tok\u00e9n-\"{uuid.uuid4().hex[:8]}"
    worker = WorkerRequest(worker_id="w-enc", server_address="hodei.internal:50051", token=token,
                           secret_env={"API_KEY": secret})
    with caplog.at_level(logging.DEBUG):
        anyio.run(hodei_provision, make_provider(), worker, 10.0)
    assert invocations[0]["payload"]["env"] == {"API_KEY": secret}  # it reached the function
    assert any("OperationModel(name=Invoke)" in r.getMessage() for r in caplog.records), "the body was logged"
    for value in (secret, token):
        leaked = sorted(form for form in secret_forms(value) if form in caplog.text)
        assert not leaked, leaked
