"""One deadline per provider hook call, shared by every request to the backend that the call makes.

A hook gets ``timeout`` seconds from the core, which cuts it off (``TimeoutError``) when they run
out. A plugin that makes several SDK requests in one call gives each what is left of one
:class:`Deadline`, and finishes a little before the core's cut-off, so it can answer with its own
reason (which backend, which step) instead of being cut off without one. ``hodei.run_sdk_call``
starts the deadline when the hook is called and hands it to the blocking function.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Finish this much before the core's timeout: a tenth of it, at most half a second.
MARGIN_FRACTION = 0.1
MAX_MARGIN_SECONDS = 0.5
# The smallest timeout worth giving a request: a socket timeout of zero would mean "non-blocking",
# not "no time left".
SMALLEST_REQUEST_TIMEOUT = 0.01

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("hodei_deadline", default=None)


class DeadlineExceeded(TimeoutError):
    """No time is left on a hook call's deadline for another request to the backend."""


class Deadline:
    """The moment (on ``time.monotonic()``) by which a hook call must be done.

    :param timeout: the hook's ``timeout`` argument, in seconds; kept for messages
        ("did not answer within 5s").
    :param margin: seconds to finish before ``timeout`` runs out; by default a tenth of it, at
        most half a second.
    """

    __slots__ = ("expires", "timeout")

    def __init__(self, timeout: float, *, margin: float | None = None) -> None:
        if margin is None:
            margin = min(timeout * MARGIN_FRACTION, MAX_MARGIN_SECONDS)
        self.timeout = timeout
        self.expires = time.monotonic() + max(0.0, timeout - margin)

    def __repr__(self) -> str:
        return f"Deadline(timeout={self.timeout:g}, remaining={self.remaining():.3f})"

    def remaining(self) -> float:
        """Seconds left, ``0.0`` once expired. Never raises."""
        return max(0.0, self.expires - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() < SMALLEST_REQUEST_TIMEOUT

    def request_timeout(self) -> float:
        """The timeout to give the next SDK request (socket, read or ``_request_timeout``): what is left.

        :raises DeadlineExceeded: when nothing worth a request is left.
        """
        left = self.remaining()
        if left < SMALLEST_REQUEST_TIMEOUT:
            raise DeadlineExceeded(f"timed out after {self.timeout:g}s")
        return left

    def earlier(self, seconds: float) -> Deadline:
        """This deadline moved ``seconds`` earlier, to leave that much for a step after a block."""
        moved = Deadline.__new__(Deadline)
        moved.timeout, moved.expires = self.timeout, self.expires - seconds
        return moved

    @contextmanager
    def applied(self, reserve: float = 0.0) -> Iterator[Deadline]:
        """Make this deadline, less ``reserve`` seconds, :meth:`current` for the block.

        For an SDK client that reads its timeout on every request (a property returning
        ``Deadline.current().request_timeout()``), so calls deep inside the SDK are bounded without
        passing the deadline to each one. A context variable: it holds in this thread (or task) only.
        """
        bound = self.earlier(reserve) if reserve else self
        token = _current.set(bound)
        try:
            yield bound
        finally:
            _current.reset(token)

    @staticmethod
    def current() -> Deadline | None:
        """The deadline of the innermost :meth:`applied` block around this code, if any."""
        return _current.get()
