"""One deadline per hook call, shared by every Docker API request the call makes."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

# The core cancels the hook when its timeout expires; finishing this much earlier lets the plugin
# answer with its own reason (which engine, which step) instead of being cut off.
_MARGIN_FRACTION = 0.1
_MAX_MARGIN_SECONDS = 0.5
# A socket timeout of zero would mean "non-blocking", not "no time left".
_SMALLEST_REQUEST_TIMEOUT = 0.01

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("hodei_docker_deadline", default=None)


class EngineTimeout(TimeoutError):
    """The engine did not answer within the hook's timeout."""


class Deadline:
    """The moment by which a hook call must be done, a little before the core's own timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.expires = time.monotonic() + timeout - min(timeout * _MARGIN_FRACTION, _MAX_MARGIN_SECONDS)

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def request_timeout(self) -> float:
        """Seconds the next request may take; raises :class:`EngineTimeout` once none are left."""
        left = self.remaining()
        if left < _SMALLEST_REQUEST_TIMEOUT:
            raise EngineTimeout(f"no answer within {self.timeout:g}s")
        return left

    @contextmanager
    def applied(self, reserve: float = 0.0) -> Iterator[None]:
        """Bound the requests made in this block (in this thread) by the deadline, minus ``reserve`` seconds."""
        bound = self if not reserve else _Earlier(self, reserve)
        token = _current.set(bound)
        try:
            yield
        finally:
            _current.reset(token)


class _Earlier(Deadline):
    def __init__(self, deadline: Deadline, seconds: float) -> None:
        self.timeout = deadline.timeout
        self.expires = deadline.expires - seconds


def current() -> Deadline | None:
    return _current.get()
