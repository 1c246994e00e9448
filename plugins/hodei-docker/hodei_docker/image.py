"""Docker image references, checked with the grammar Docker itself uses.

From github.com/distribution/reference (regexp.go, normalize.go)::

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ host [ ":" port ] "/" ] path-component [ "/" path-component ]*

Repository path components are lowercase; the registry host may have any case.
"""

from __future__ import annotations

import re

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_NAME = rf"(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
# The algorithms Docker can verify (go-digest), each with its exact lowercase-hex length.
_DIGEST = r"sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}"

_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@(?:{_DIGEST}))?")

NAME_MAX_LENGTH = 255
_EXPECTED = "[registry[:port]/]repository[:tag][@sha256:digest], e.g. hodei-jobs-worker:latest"


def check_image_reference(reference: str) -> str:
    """Return ``reference`` if Docker would accept it as an image reference, else raise ``ValueError``."""
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        raise ValueError(_why_refused(reference))
    if len(match["name"]) > NAME_MAX_LENGTH:
        raise ValueError(f"repository name must be at most {NAME_MAX_LENGTH} characters")
    return reference


def _why_refused(reference: str) -> str:
    digest = reference.partition("@")[2]
    if digest and not re.fullmatch(_DIGEST, digest):
        return f"digest must be sha256: and 64 lowercase hex digits (or sha384, sha512), got {digest!r}"
    # Registry hosts and tags may have capitals, so if lowercasing helps, the repository path had them.
    if _REFERENCE.fullmatch(reference.lower()):
        return f"repository name must be lowercase, got {reference!r}"
    return f"must be an image reference {_EXPECTED}, got {reference!r}"
