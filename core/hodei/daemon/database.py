"""The daemon's calls to the database: off the event loop, bounded in time, and survivable.

When the database goes away the daemon keeps serving from what it last read; this wrapper
notices, says so once (log and readiness), and notices again when it is back.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa

from hodei.errors import DatabaseNotReady, HodeiError

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseUnavailable(HodeiError):
    """A database call failed or took too long; the caller carries on with what it has."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "did not answer in time"
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class DatabaseLink:
    def __init__(self, timeout: float, on_change: Callable[[bool, str], None] | None = None):
        self.timeout = timeout
        # Its own threads: a hung database must not take the threads plugins run their SDK calls in.
        self.limiter = anyio.CapacityLimiter(4)
        self.available = True
        self.problem = ""
        self._on_change = on_change

    def _set(self, available: bool, problem: str) -> None:
        if available != self.available:
            if available:
                log.warning("the database answers again")
            else:
                log.error("the database is unavailable (%s); serving from the last known state", problem)
            self.available, self.problem = available, problem
            if self._on_change is not None:
                self._on_change(available, problem)
        else:
            self.problem = problem

    async def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            with anyio.fail_after(self.timeout):
                result = await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs),
                                                        abandon_on_cancel=True, limiter=self.limiter)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DatabaseError, DatabaseNotReady,
                TimeoutError, OSError) as exc:
            problem = _describe(exc)
            self._set(False, problem)
            raise DatabaseUnavailable(problem) from None
        self._set(True, "")
        return result
