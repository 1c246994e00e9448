"""Secret values with quotes, backslashes and non-ASCII characters reach the pod's Secret and no log line,
in any encoding a library may write them (JSON escapes, a repr, URL encoding, base64)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import anyio
import pytest
from hodei import WorkerRequest
from hodei.calls import call_provider_hook
from hodei.redaction import secret_forms

HOSTILE = ["p\u00e4ssw\u00f6rd-\u00fc\u00df-4e1a", 'q"uote-\'single\'-7b2c', "back\\slash-and/slash-9f3d",
           "sp ace&amp=plus+percent%-2a6e", "\u5bc6\u7801-emoji-\U0001f511-5c8b"]


@pytest.mark.parametrize("secret", HOSTILE)
def test_a_secret_in_any_encoding_never_reaches_the_debug_log(hodei_pm: Any, cluster: Any, make_provider: Any,
                                                              caplog: pytest.LogCaptureFixture, secret: str) -> None:
    caplog.set_level(logging.DEBUG)
    token = 'tok\u00e9n-"one-time'
    request = WorkerRequest(worker_id="w-enc", server_address="hodei.example:50051", token=token,
                            secret_env={"DB_PASSWORD": secret})
    anyio.run(functools.partial(call_provider_hook, hodei_pm, "hodei_provision", make_provider(), 5.0,
                                request=request))
    stored = cluster.objects("secrets", "hodei-jobs")["hodei-worker-w-enc"]
    assert stored["stringData"] == {"token": token, "env.DB_PASSWORD": secret}
    for value in (secret, token):
        leaked = sorted(form for form in secret_forms(value) if form in caplog.text)
        assert not leaked, leaked
