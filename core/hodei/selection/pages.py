"""Page tokens of a selection report: where the next page of its lists starts, for which job.

A token is opaque to clients and the same wherever it is made (the CLI on the database and the daemon's
API make identical answers). Each page is computed against the providers as they are when it is
asked for, like any paged listing of live data; a token given back with other requirements is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from hodei.errors import InvalidInput, Problem
from hodei.selection.report import MAX_PAGE, SHOWN, Page
from hodei.selection.requirements import Requirements

FIELD = "page_token"
# The longest token read at all: the ones this module makes are about 50 characters.
_TOKEN_CHARS = 200


def _job_digest(job: Requirements) -> str:
    text = json.dumps(job.document(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def page_token(job: Requirements, offset: int) -> str:
    """The token that asks for the page starting at ``offset`` of ``job``'s report."""
    raw = json.dumps({"o": offset, "j": _job_digest(job)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page(job: Requirements, size: int = 0, token: str = "") -> Page:
    """The page a request asks for: ``size`` of each list (0: :data:`SHOWN`; at most :data:`MAX_PAGE`),
    from where ``token`` (a previous answer's ``next_page_token``) says. :raises InvalidInput:"""
    problems = []
    if size < 0 or size > MAX_PAGE:
        problems.append(Problem("page_size", f"must be between 1 and {MAX_PAGE} (or 0 for {SHOWN}), got {size}"))
    offset = 0
    if len(token) > _TOKEN_CHARS:  # never decoded: a token this server gave is a few dozen characters
        problems.append(Problem(FIELD, f"is longer than {_TOKEN_CHARS} characters: not a token this server gave"))
    elif token:
        try:
            document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            offset, digest = document["o"], document["j"]
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ValueError("bad offset")
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
            problems.append(Problem(FIELD, "is not a token this server gave: pass a previous answer's "
                                           "next_page_token unchanged"))
        else:
            if digest != _job_digest(job):
                problems.append(Problem(FIELD, "was given for other requirements: ask again with the "
                                               "requirements of the answer that gave it"))
    if problems:
        raise InvalidInput(problems)
    return Page(offset, size or SHOWN)
