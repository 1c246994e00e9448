"""A worker's token and secret_env values are masked in every encoding a library may log them in (JSON
escapes, a Python repr of text or bytes, URL encoding, base64, and one inside another), in every line
Hodei writes while the call that holds them is in flight, and in the reason a failed attempt records."""

from __future__ import annotations

import base64
import io
import json
import logging
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hodei.builtin_plugins import static_provider
from hodei.hookspecs import hookimpl
from hodei.observability.logs import make_handler
from hodei.redaction import HELD_SECRETS, mask_secrets, secret_forms
from hypothesis import given
from hypothesis import strategies as st

from tests.test_workers import World

HOSTILE = ["p\u00e4ssw\u00f6rd-\u00fc\u00df", 'q"uote-\'single\'', "back\\slash/", "sp ace&amp=plus+%",
           "\u5bc6\u7801-\U0001f511", "tab\tnew\nline"]

ENCODINGS = {
    "raw": lambda s: s,
    "json": lambda s: json.dumps(s),
    "json, not ASCII-escaped": lambda s: json.dumps(s, ensure_ascii=False),
    "repr": repr,
    "repr of the UTF-8 bytes": lambda s: repr(s.encode()),
    "URL query": lambda s: urllib.parse.urlencode({"v": s}),
    "URL path": lambda s: urllib.parse.quote(s, safe=""),
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "JSON body in a repr of bytes (botocore)": lambda s: repr(json.dumps({"env": {"K": s}}).encode()),
    "repr inside JSON": lambda s: json.dumps({"params": repr({"body": s})}),
}


@given(secret=st.text(min_size=6, max_size=40).filter(lambda s: s.strip() == s and len(set(s)) > 3))
def test_every_encoding_of_any_secret_is_masked(secret: str) -> None:
    forms = secret_forms(secret)
    for name, encode in ENCODINGS.items():
        line = f"before {encode(secret)} after"
        masked = mask_secrets(line, forms)
        assert not any(form in masked for form in forms if len(form) >= 6), (name, masked)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What `hodei --log-level debug` writes (Hodei's own JSON handler on the root logger)."""
    written = io.StringIO()
    handler, root = make_handler("json", written), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield written
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def world(hodei_sqlite_url: str) -> Iterator[World]:
    w = World(hodei_sqlite_url)  # what is logged does not depend on the database
    yield w
    w.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("secret", HOSTILE)
async def test_what_a_library_logs_during_provisioning_shows_no_secret(
        anyio_backend: str, world: World, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch,
        secret: str) -> None:
    library = logging.getLogger("urllib3.connectionpool")
    original = static_provider.hodei_provision

    async def chatty(provider: Any, request: Any, timeout: float) -> Any:
        for encode in ENCODINGS.values():  # as a backend SDK logs its request at DEBUG
            library.debug("sending %s", encode(request.secret_env["API_KEY"]))
            library.debug("body: %r", json.dumps({"token": request.token, "env": dict(request.secret_env)}).encode())
        if provider.name == "first":
            raise RuntimeError(f"backend refused {json.dumps(dict(request.secret_env))}")
        return await original(provider, request, timeout)

    monkeypatch.setattr(static_provider, "hodei_provision", hookimpl(chatty))
    world.pm.unregister(static_provider)
    world.pm.register(static_provider, "static")
    world.store.create({"name": "first", "provider_type": "static", "priority": 9})
    world.store.create({"name": "second", "provider_type": "static"})
    outcome = await world.provisioner.provision(world.job(secret_env={"API_KEY": secret}))
    assert outcome.worker.provider_name == "second"
    assert "backend refused" in outcome.attempts[0].reason and "***" in outcome.attempts[0].reason
    text = log_lines.getvalue()
    assert "sending" in text and "backend refused" in text
    leaked = sorted(form for form in secret_forms(secret) if form in text or form in outcome.attempts[0].reason)
    assert not leaked, leaked
    assert not HELD_SECRETS._counted and HELD_SECRETS._ordered() == (), "released when the call ended"
