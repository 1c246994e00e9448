"""What a message may say about a value someone gave: credentials in URLs hidden, quotes kept short.

Every error, log line and display of a URL goes through these two helpers, so a password in
``postgresql://user:pw@host/db`` or ``?password=pw`` and a 100,000-character name never reach a
terminal, a gRPC trailer or a log. Depends on nothing of Hodei (errors use it).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import quote_plus

MASK = "***"

# How much of a value an error quotes: enough to recognise it, never enough to overflow a gRPC
# trailer (8 KiB by default) or a terminal line.
QUOTE_CHARS = 80
# The most a message may be, whatever it quotes.
MESSAGE_CHARS = 4096

# scheme://[user[:password]@]rest — the userinfo ends at the last '@' before the path.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#'\"]*@)?(?P<rest>[^\s'\"]*)")
# Query parameters that carry credentials in database and service URLs (libpq, SQLAlchemy, S3, ...).
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
    r"sslpassword|credential|signature|auth)[A-Za-z0-9_.\-]*)=)(?P<value>[^&;#\s'\"]*)", re.IGNORECASE)


def _scrub_match(match: re.Match[str]) -> str:
    userinfo = match["userinfo"] or ""
    if userinfo:
        user, colon, _password = userinfo[:-1].partition(":")
        userinfo = f"{user}:{MASK}@" if colon else userinfo
    rest = _SECRET_PARAM.sub(lambda m: f"{m['key']}{MASK}" if m["value"] else m[0], match["rest"])
    return f"{match['scheme']}{userinfo}{rest}"


def scrub(text: str) -> str:
    """``text`` with the password of every URL in it, and every credential query parameter, as ``***``."""
    if "://" not in text and "=" not in text:
        return text
    text = _URL.sub(_scrub_match, text)
    # A bare query string ("host=db password=pw" is libpq's form too).
    return re.sub(r"(?i)(?<![A-Za-z0-9_])(password|passwd|pwd)\s*=\s*(?!\*\*\*)[^\s&;'\"]+", rf"\1={MASK}", text)


def shorten(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` cut at ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... (truncated: {len(text) - limit} more characters)"


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``value`` as an error quotes it: its ``repr``, credentials hidden, at most ``limit`` characters."""
    text = value if isinstance(value, str) and len(value) > 4 * limit else None
    if text is not None:  # never build the repr of a huge string just to cut it
        value = text[:2 * limit]
    shown = scrub(repr(value))
    if len(shown) > limit or text is not None:
        total = len(text) if text is not None else len(shown)
        return f"{shown[:limit - 3]}... ({total} characters)"
    return shown


# -- secret values (a worker's token and secret_env) ------------------------------------------------

# How a library may write a value it logs: JSON (ASCII-escaped or not), a Python repr of the text or of
# its UTF-8 bytes (botocore logs a request's params so), URL encoding (form and query bodies), base64
# (Kubernetes Secret data, HTTP basic auth). Applied twice, so a JSON body inside a repr, or a repr
# inside a JSON log line, is found too.
_ENCODERS: tuple[Callable[[str], str], ...] = (
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    lambda s: repr(s)[1:-1],
    lambda s: repr(s.encode("utf-8", "surrogatepass"))[2:-1],
    lambda s: url_quote(s, safe=""),
    lambda s: quote_plus(s, safe=""),
)
_BASE64: tuple[Callable[[bytes], bytes], ...] = (base64.b64encode, base64.urlsafe_b64encode)


def secret_forms(secret: str) -> frozenset[str]:
    """``secret`` as every encoding above may write it (itself included); empty for an empty secret."""
    if not secret:
        return frozenset()
    once = {secret} | {encode(secret) for encode in _ENCODERS}
    forms = once | {encode(form) for form in once for encode in _ENCODERS}
    raw = secret.encode("utf-8", "surrogatepass")
    forms |= {b64(raw).decode().rstrip("=") for b64 in _BASE64}
    return frozenset(form for form in forms if form)


def mask_secrets(text: str, forms: Iterable[str]) -> str:
    """``text`` with every one of ``forms`` as ``***``, the longest first (one may hold another)."""
    for form in sorted(forms, key=len, reverse=True):
        if form in text:
            text = text.replace(form, MASK)
    return text


class _HeldSecrets:
    """The secrets of the calls in flight (any thread): every log line Hodei writes is masked with them.

    Thousands of calls may hold secrets at once (a burst of placements): holding and letting go cost the
    forms of those secrets only, and the forms are put in order once per change, when a line is masked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()
        self._counted: Counter[str] = Counter()  # each form of the held secrets: how many secrets have it
        self._forms: tuple[str, ...] | None = ()  # longest first; None: to be put in order again

    @contextmanager
    def hold(self, *secrets: str) -> Iterator[None]:
        values = [s for s in secrets if s]
        with self._lock:
            for secret in values:
                if not self._held[secret]:
                    self._counted.update(secret_forms(secret))
                    self._forms = None
                self._held[secret] += 1
        try:
            yield
        finally:
            with self._lock:
                for secret in values:
                    self._held[secret] -= 1
                    if self._held[secret] <= 0:  # no call holds it any more
                        del self._held[secret]
                        for form in secret_forms(secret):
                            self._counted[form] -= 1
                            if self._counted[form] <= 0:
                                del self._counted[form]
                        self._forms = None

    def _ordered(self) -> tuple[str, ...]:
        with self._lock:
            if self._forms is None:
                self._forms = tuple(sorted(self._counted, key=len, reverse=True))
            return self._forms

    def mask(self, text: str) -> str:
        forms = self._forms  # read once: a tuple swapped whole
        if forms is None:
            forms = self._ordered()
        for form in forms:  # the longest first (one may hold another)
            if form in text:
                text = text.replace(form, MASK)
        return text


HELD_SECRETS = _HeldSecrets()
"""While a call holds them (``with HELD_SECRETS.hold(token, *secret_env.values()):``), no log line shows
a secret in any encoding a library may log it in."""
