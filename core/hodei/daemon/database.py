"""The daemon's calls to the database: off the event loop, bounded in time, and survivable.

When the database goes away the daemon keeps serving from what it last read; this wrapper
notices, says so once (log and readiness), and notices again when it is back.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hodei.database import check_schema
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


class SqliteFile:
    """Which file a SQLite database is (st_dev, st_ino), checked before each call of the daemon.

    A file deleted or replaced under a running daemon goes on working for the connections it holds
    open, on the deleted inode: the daemon would report the database up while the CLI sees another
    world, and its writes would vanish at restart. Deleted: the database is unavailable until a file is
    back (it is never re-created silently). Replaced (a backup restored): the new file is used once it
    holds Hodei's schema, and everything is read again from it.
    """

    def __init__(self, engine: Engine, path: Path):
        self.engine, self.path = engine, path
        self.identity = self._identity()
        self.generation = 0  # bumped each time another file is taken: everything must be read again
        self._lock = threading.Lock()

    def _identity(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return None
        return found.st_dev, found.st_ino

    def check(self) -> None:
        """:raises DatabaseNotReady: the file is gone, or another file without Hodei's schema replaced it."""
        current = self._identity()
        if current == self.identity and current is not None:
            return
        with self._lock:
            current = self._identity()
            if current == self.identity and current is not None:
                return
            if current is None:
                raise DatabaseNotReady(f"the SQLite database file {self.path} was deleted while hodei serve ran; "
                                       "restore it (it is not re-created: writes to a new empty file would go "
                                       "unseen)")
            # The connections held open are on the old file: closed, so the next ones open the file in place.
            self.engine.dispose()
            try:
                check_schema(self.engine)
            except DatabaseNotReady as exc:
                raise DatabaseNotReady(f"the SQLite database file {self.path} was replaced while hodei serve ran, "
                                       f"and the new file is not usable: {exc}") from None
            log.warning("the SQLite database file %s was replaced while hodei serve ran; using the file now "
                        "in place and reading every provider again", self.path)
            self.identity = current
            self.generation += 1


class DatabaseLink:
    def __init__(self, timeout: float, on_change: Callable[[bool, str], None] | None = None,
                 file: SqliteFile | None = None):
        self.timeout = timeout
        # Its own threads: a hung database must not take the threads plugins run their SDK calls in.
        self.limiter = anyio.CapacityLimiter(4)
        self.available = True
        self.problem = ""
        self._on_change = on_change
        self.file = file
        self.file_problem: str | None = None  # the SQLite file is gone or unusable: see SqliteFile

    def _checked(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.file is not None:
            try:
                self.file.check()
            except DatabaseNotReady as exc:
                self.file_problem = str(exc)
                raise
            self.file_problem = None
        return func(*args, **kwargs)

    @property
    def generation(self) -> int:
        """Changes when the database behind the daemon is another one (a replaced SQLite file)."""
        return self.file.generation if self.file is not None else 0

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
                result = await anyio.to_thread.run_sync(functools.partial(self._checked, func, *args, **kwargs),
                                                        abandon_on_cancel=True, limiter=self.limiter)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DatabaseError, DatabaseNotReady,
                TimeoutError, OSError) as exc:
            problem = _describe(exc)
            self._set(False, problem)
            raise DatabaseUnavailable(problem) from None
        self._set(True, "")
        return result
