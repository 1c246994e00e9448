"""boto3 clients for providers, and what their failures mean.

The only module that imports boto3 and botocore: it is imported from the worker threads that make
the calls, so neither validation nor the event loop ever pays for loading the SDK.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from hodei import Provider

USER_AGENT = "hodei-lambda"


@dataclass
class _ProviderClients:
    settings: tuple[str, str | None, str | None]
    session: Any
    clients: dict[tuple[str, float], Any] = field(default_factory=dict)


_lock = threading.Lock()
_by_provider: dict[str, _ProviderClients] = {}


def client(provider: Provider, service: str, seconds: float) -> Any:
    """The provider's client for ``service`` whose one call takes at most about ``seconds``.

    Clients are cached per provider and reused. botocore fixes timeouts per client, so there is one
    client per distinct budget; the core calls with a few fixed timeouts, so that is a few clients.
    A change of region, endpoint or profile replaces the provider's session and clients.
    """
    config = provider.config
    settings = (config["region"], config["endpoint_url"], config["profile"])
    budget = max(round(seconds, 1), 0.1)
    with _lock:  # boto3 sessions are not thread-safe, and creating a client reads files
        entry = _by_provider.get(str(provider.id))
        if entry is None or entry.settings != settings:
            # Raises ProfileNotFound for a profile missing from the shared files.
            session = boto3.session.Session(profile_name=config["profile"], region_name=config["region"])
            entry = _by_provider[str(provider.id)] = _ProviderClients(settings, session)
        made = entry.clients.get((service, budget))
        if made is None:
            made = entry.clients[(service, budget)] = entry.session.client(
                service, endpoint_url=config["endpoint_url"], config=_bounded(config["region"], budget))
    return made


def _bounded(region: str, budget: float) -> Config:
    # One attempt, its connect and its read sharing the budget: the core already retries
    # (the next health round, the next provider for a worker), and a retry here could only
    # happen after the core stopped waiting.
    return Config(region_name=region, connect_timeout=budget / 2, read_timeout=budget / 2,
                  retries={"mode": "standard", "total_max_attempts": 1}, user_agent_extra=USER_AGENT)


class Kind(enum.Enum):
    """What a failed call says about the provider."""

    TIMEOUT = "timeout"  # the endpoint took a connection or a request and did not answer
    UNREACHABLE = "unreachable"  # no connection, or it broke
    CREDENTIALS = "credentials"  # none found, or AWS refused them
    DENIED = "denied"  # the credentials lack a permission
    NOT_FOUND = "not found"  # the function does not exist
    REFUSED = "refused"  # any other answer that is an error


@dataclass(frozen=True)
class Failure:
    kind: Kind
    text: str


_CREDENTIAL_ERRORS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, TokenRetrievalError,
                      ProfileNotFound, SSOError)
_CREDENTIAL_CODES = frozenset({
    "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "IncompleteSignature",
    "UnrecognizedClientException", "InvalidSignatureException", "InvalidAccessKeyId",
})
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})


def failure(exc: Exception) -> Failure | None:
    """What ``exc`` from a boto3 call means, or ``None`` when it is not an AWS failure (a bug)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = f"{code or status}: {message}" if message else str(code or status)
        if code in _CREDENTIAL_CODES:
            return Failure(Kind.CREDENTIALS, text)
        if code in _DENIED_CODES:
            return Failure(Kind.DENIED, text)
        if code == "ResourceNotFoundException":
            return Failure(Kind.NOT_FOUND, text)
        return Failure(Kind.REFUSED, text)
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return Failure(Kind.TIMEOUT, str(exc))
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return Failure(Kind.UNREACHABLE, str(exc))
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return Failure(Kind.CREDENTIALS, str(exc))
    if isinstance(exc, BotoCoreError):  # an answer botocore could not read: not an AWS endpoint
        return Failure(Kind.REFUSED, str(exc))
    return None
