"""Kubernetes' name rules, as the API server applies them (k8s.io/apimachinery/pkg/util/validation).

Checking them here refuses a bad config when it is written, not when the first pod is created.
Each function returns its argument or raises ``ValueError`` with the reason.
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
LABEL_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63

_DNS1123_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL)
_DNS1123_SUBDOMAIN_RE = re.compile(rf"{_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*")
_QUALIFIED_NAME_RE = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

_LABEL_RULE = "lowercase letters, digits and '-', starting and ending with a letter or digit"
_NAME_RULE = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"


def check_dns1123_label(name: str) -> str:
    """A namespace name, for instance: ``hodei-jobs``."""
    if len(name) > DNS1123_LABEL_MAX_LENGTH:
        raise ValueError(f"must be at most {DNS1123_LABEL_MAX_LENGTH} characters (a DNS-1123 label), got {len(name)}")
    if not _DNS1123_LABEL_RE.fullmatch(name):
        raise ValueError(f"must be a DNS-1123 label ({_LABEL_RULE}), got {name!r}")
    return name


def check_dns1123_subdomain(name: str) -> str:
    """A service account name, or a label key's prefix: DNS-1123 labels joined by dots."""
    if len(name) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        raise ValueError(
            f"must be at most {DNS1123_SUBDOMAIN_MAX_LENGTH} characters (a DNS-1123 subdomain), got {len(name)}")
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(name):
        raise ValueError(f"must be a DNS-1123 subdomain ({_LABEL_RULE}, and '.'), got {name!r}")
    return name


def check_label_key(key: str) -> str:
    """``[prefix/]name``: prefix a DNS-1123 subdomain, name at most 63 characters."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            raise ValueError(f"prefix before '/' must not be empty, got {key!r}")
        if "/" in prefix:
            raise ValueError(f"must be [prefix/]name with at most one '/', got {key!r}")
        try:
            check_dns1123_subdomain(prefix)
        except ValueError as error:
            raise ValueError(f"prefix {error}") from None
    if not name:
        raise ValueError(f"name part must not be empty, got {key!r}")
    if len(name) > LABEL_NAME_MAX_LENGTH:
        raise ValueError(f"name part must be at most {LABEL_NAME_MAX_LENGTH} characters, got {len(name)}")
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        raise ValueError(f"name part must be {_NAME_RULE}, got {name!r}")
    return key


def check_label_value(value: str) -> str:
    """Empty, or at most 63 characters with the rules of a label key's name part."""
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        raise ValueError(f"must be at most {LABEL_VALUE_MAX_LENGTH} characters (a label value), got {len(value)}")
    if value and not _QUALIFIED_NAME_RE.fullmatch(value):
        raise ValueError(f"must be empty or {_NAME_RULE} (a label value), got {value!r}")
    return value
