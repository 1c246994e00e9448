"""A job's own worker: which image, command, environment, labels and lifetime it asks for, and which
images a provider accepts.

The values here are checked where every entry point parses requirements (CLI, API, provisioning), so a
bad spec is refused with the field named before any provider is asked. Secret environment values are
checked without ever being quoted in a refusal.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

# The connection contract (seed): every worker finds these in its environment, set by its plugin.
# A job's env cannot set any HODEI_ name, so it can never override them.
RESERVED_ENV_PREFIX = "HODEI_"
# Hodei marks its workers with labels under this prefix (``hodei.managed``, ``hodei.io/worker-id``).
RESERVED_LABEL_PREFIX = "hodei."

MAX_IMAGE_LENGTH = 512
MAX_ARGUMENT_LENGTH = 65_536
MAX_ENV_VALUE_LENGTH = 131_072
MAX_ENV_ENTRIES = 1024
MAX_LABELS = 256
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,255}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,252}")
_GLOB_CHARS = frozenset("*?[")

# The key a provider's normalised config uses to say which job images it runs (plugins fill it in,
# default: only its default_image). A type whose config has no such key runs no job image or command.
ALLOWED_IMAGES = "allowed_images"


def _check_image(value: str) -> str:
    if not value:
        raise ValueError("must not be empty (leave it out for the provider's default_image)")
    if len(value) > MAX_IMAGE_LENGTH:
        raise ValueError(f"must have at most {MAX_IMAGE_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"must be an image reference without white space or control characters, got {value!r}")
    return value


def _check_argument(value: str) -> str:
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    if len(value) > MAX_ARGUMENT_LENGTH:
        raise ValueError(f"must have at most {MAX_ARGUMENT_LENGTH} characters")
    return value


def _check_env(value: Any) -> Any:
    # By hand, before pydantic: its messages quote the input, and a value may be a secret.
    if not isinstance(value, Mapping):
        raise ValueError(f"must be an object of NAME = \"value\", not {type(value).__name__}")
    if len(value) > MAX_ENV_ENTRIES:
        raise ValueError(f"must have at most {MAX_ENV_ENTRIES} variables")
    for name, text in value.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise ValueError(f"name {name!r} must be letters, digits and _, not starting with a digit")
        if name.upper().startswith(RESERVED_ENV_PREFIX):
            raise ValueError(f"name {name!r}: names starting with {RESERVED_ENV_PREFIX} are Hodei's own (the "
                             "worker's server address, id and token)")
        if not isinstance(text, str):
            raise ValueError(f"{name}: must be a string, not {type(text).__name__} (the value is not shown)")
        if "\0" in text:
            raise ValueError(f"{name}: must not contain a NUL character (the value is not shown)")
        if len(text) > MAX_ENV_VALUE_LENGTH:
            raise ValueError(f"{name}: must have at most {MAX_ENV_VALUE_LENGTH} characters")
    return dict(value)


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"must have at most {MAX_LABELS} labels")
    for key, text in value.items():
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(f"key {key!r} must be letters, digits, '.', '_', '-' or '/', starting with a letter "
                             "or digit, at most 253 characters")
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise ValueError(f"key {key!r}: keys starting with {RESERVED_LABEL_PREFIX!r} are Hodei's own")
        if len(text) > 1024 or any(not c.isprintable() for c in text):
            raise ValueError(f"{key}: must be at most 1024 printable characters")
    return value


JobImage = Annotated[str, AfterValidator(_check_image)]
Argument = Annotated[str, AfterValidator(_check_argument)]
EnvValues = Annotated[dict[str, str], BeforeValidator(_check_env)]
WorkerLabels = Annotated[dict[str, str], AfterValidator(_check_labels)]


def env_in_both(env: Mapping[str, str], secret_env: Mapping[str, str]) -> list[str]:
    return sorted(set(env) & set(secret_env))


# -- which images a provider runs ---------------------------------------------------------------------


def is_pattern(entry: str) -> bool:
    return any(c in _GLOB_CHARS for c in entry)


def check_allowed_images(entries: Sequence[str]) -> list[str]:
    """For a plugin's config model: each entry an image reference or a glob (``registry.example.com/jobs/*``)."""
    # Only what every type's default_image rule refuses too: normalising puts default_image in the list,
    # and validating the normalised config again must accept it (a plugin adds its own grammar).
    for entry in entries:
        if not entry or any(c.isspace() for c in entry):
            raise ValueError(f"entry {entry!r} must be an image reference or a glob pattern without white space")
    return list(entries)


def image_allowed(image: str, patterns: Iterable[str]) -> bool:
    """Whether ``image`` matches one of ``patterns`` (exact references, or globs whose ``*`` also spans ``/``)."""
    return any(image == p or (is_pattern(p) and fnmatch.fnmatchcase(image, p)) for p in patterns)


def allowed_images(config: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The images a provider's normalised config accepts; ``None``: it runs no job image at all."""
    value = config.get(ALLOWED_IMAGES) if isinstance(config, Mapping) else None
    if not isinstance(value, (list, tuple)):
        return None
    return tuple(str(v) for v in value)


def normalised_allowed_images(given: Sequence[str] | None, default_image: str) -> list[str]:
    """What a plugin stores in its normalised config: the list given, or only its ``default_image``."""
    return list(given) if given is not None else [default_image]


ImageList = Annotated[list[str], Field(max_length=256), AfterValidator(check_allowed_images)]
"""The type of a plugin config's ``allowed_images`` field."""
