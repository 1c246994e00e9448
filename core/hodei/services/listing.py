"""Paging of provider listings: how large a page may be, and the opaque token that says where the next
one starts (after a provider's name, as the database sorts it)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from hodei import limits
from hodei.errors import InvalidInput, Problem
from hodei.store import NameKey

DEFAULT_PAGE = 500
"""Providers in a page when the request does not say (``page_size`` 0)."""
MAX_PAGE = limits.LISTED
"""The most providers one page holds."""
_TOKEN_CHARS = 2048  # a name is at most 200 characters; a row edited in SQL may hold more: cut below


def page_size(size: int) -> int:
    """The page size a request asks for. :raises InvalidInput: outside 0 (the default) to :data:`MAX_PAGE`."""
    if size < 0 or size > MAX_PAGE:
        raise InvalidInput(Problem("page_size", f"must be between 1 and {MAX_PAGE} (or 0 for {DEFAULT_PAGE}), "
                                                f"got {size}"))
    return size or DEFAULT_PAGE


def token(key: NameKey) -> str:
    kind, value = key
    shown = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return base64.urlsafe_b64encode(json.dumps([kind, shown]).encode()).decode().rstrip("=")


def after(page_token: str) -> NameKey | None:
    """Where the page ``page_token`` asks for starts; ``None`` for the first. :raises InvalidInput:"""
    if not page_token:
        return None
    try:
        if len(page_token) > _TOKEN_CHARS:
            raise ValueError("too long")
        kind, value = json.loads(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
        if kind not in ("text", "undecoded", "blob") or not isinstance(value, str):
            raise ValueError("not a key")
        return (kind, value) if kind == "text" else (kind, base64.b64decode(value, validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidInput(Problem("page_token", "is not a token this server gave: pass a previous answer's "
                                                 "next_page_token unchanged")) from None


def row_token(kind: str, row_id: str | int) -> str:
    """The token of the page after the row ``row_id`` in a listing of ``kind`` (workers, history): rows are
    never deleted and their time never changes, so the row says where its page ended even after inserts."""
    return base64.urlsafe_b64encode(json.dumps([kind, row_id]).encode()).decode().rstrip("=")


def after_row(kind: str, page_token: str, of: type[str] | type[int]) -> Any:
    """The row ``page_token`` (of :func:`row_token`) says the page starts after; ``None`` for the first.
    :raises InvalidInput: a token of another listing or not one this server gave."""
    if not page_token:
        return None
    try:
        if len(page_token) > _TOKEN_CHARS:
            raise ValueError("too long")
        said, row_id = json.loads(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
        if said != kind or isinstance(row_id, bool) or not isinstance(row_id, of):
            raise ValueError("not a key")
        return row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidInput(Problem("page_token", "is not a token this server gave: pass a previous answer's "
                                                 "next_page_token unchanged")) from None


def key_token(kind: str, key: list[str | int]) -> str:
    """The token of the page after the row keyed ``key`` in a listing of ``kind`` whose rows may leave
    between two pages (the placement queue): the key itself, not the row, says where the page ended."""
    return base64.urlsafe_b64encode(json.dumps([kind, *key]).encode()).decode().rstrip("=")


def after_key(kind: str, page_token: str, types: tuple[type[str] | type[int], ...]) -> list[Any] | None:
    """The key ``page_token`` (of :func:`key_token`) says the page starts after, its parts of ``types``;
    ``None`` for the first. :raises InvalidInput: a token of another listing or not one this server gave."""
    if not page_token:
        return None
    try:
        if len(page_token) > _TOKEN_CHARS:
            raise ValueError("too long")
        said, *key = json.loads(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
        if said != kind or len(key) != len(types) or any(
                isinstance(part, bool) or not isinstance(part, of) for part, of in zip(key, types, strict=True)):
            raise ValueError("not a key")
        return key
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidInput(Problem("page_token", "is not a token this server gave: pass a previous answer's "
                                                 "next_page_token unchanged")) from None
