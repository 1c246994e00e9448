"""The errors Hodei reports to people: each names what was wrong and why, never a stack trace."""

from __future__ import annotations

from dataclasses import dataclass

from hodei.redaction import scrub, shorten

# A field path names what was wrong; a key someone made 100,000 characters long is cut to this.
FIELD_CHARS = 200


class HodeiError(Exception):
    """Base of every error Hodei means to show to an operator."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: the field (dotted path) and the reason."""

    field: str
    reason: str

    def __post_init__(self) -> None:
        # Whoever wrote the reason, it reaches people, logs and gRPC trailers: no credential, no megabytes.
        object.__setattr__(self, "field", shorten(self.field, FIELD_CHARS))
        object.__setattr__(self, "reason", shorten(scrub(self.reason)))

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason

    def nested(self, prefix: str) -> Problem:
        """The same problem seen from one level up (``config`` + ``network`` → ``config.network``)."""
        return Problem(f"{prefix}.{self.field}" if self.field else prefix, self.reason)

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class InvalidInput(HodeiError):
    """An input was refused. ``problems`` lists every field at fault; nothing was changed."""

    def __init__(self, problems: list[Problem] | Problem, *, subject: str | None = None):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.subject = subject
        super().__init__(str(self))

    def __str__(self) -> str:
        body = "; ".join(str(p) for p in self.problems)
        return f"{self.subject}: {body}" if self.subject else body

    def nested(self, prefix: str) -> InvalidInput:
        return InvalidInput([p.nested(prefix) for p in self.problems], subject=self.subject)


class ConfigError(InvalidInput):
    """Raised by a plugin's ``hodei_validate_config`` when a provider config is refused.

    Field names are relative to the config object (``default_resources.memory_limit``); the core
    prefixes them with ``config.`` when it reports them.
    """

    def __init__(self, field: str | list[Problem], reason: str | None = None):
        if isinstance(field, list):
            super().__init__(field)
        else:
            super().__init__(Problem(field, reason or "is invalid"))


class NotFound(HodeiError):
    """The named thing does not exist."""


class AlreadyExists(HodeiError):
    """Something with that name exists already."""


class Conflict(HodeiError):
    """A write lost a race with another writer and changed nothing; reading again and retrying is safe."""


class StaleVersion(Conflict):
    """An update carried the version it read, and the provider has changed since."""


class JobFailed(HodeiError):
    """Raised by a plugin's ``hodei_provision`` when the job itself is why its worker cannot start (its
    image does not exist or cannot be pulled, its spec is refused), not the provider: the failure is the
    job's answer, it does not count toward the provider's health, and no other provider is tried for it.
    The message says what the job asked for and why it cannot be, as for any error shown to people."""


class DatabaseNotReady(HodeiError):
    """The database is unreachable or its schema is older than this version of Hodei."""


class UnknownProviderType(HodeiError):
    """No loaded plugin serves this provider type."""


class StartupFailure(HodeiError):
    """``hodei serve`` cannot start (an address it must listen on cannot be bound): it exits non-zero, so
    a supervisor (systemd's ``Restart=on-failure``) sees the failure instead of a daemon that looks ready."""
