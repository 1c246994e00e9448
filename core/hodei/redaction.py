"""What a message may say about a value someone gave: credentials in URLs hidden, quotes kept short.

Every error, log line and display of a URL goes through these two helpers, so a password in
``postgresql://user:pw@host/db`` or ``?password=pw`` and a 100,000-character name never reach a
terminal, a gRPC trailer or a log. Depends on nothing of Hodei (errors use it).
"""

from __future__ import annotations

import re
from typing import Any

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
