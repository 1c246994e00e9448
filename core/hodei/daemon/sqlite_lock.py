"""One SQLite database, one daemon: ``hodei serve`` holds an exclusive lock beside the file.

SQLite has no notifications and no way for two daemons to divide the providers, so a second
``hodei serve`` on the same file would check every provider again and race the first. The lock
(``flock`` on ``<database>.serve.lock``) is the kernel's: it is released when the holder exits,
however it exits, so a crash never leaves a stale lock behind. The CLI does not take it and keeps
working beside the daemon.
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from hodei.errors import HodeiError


class DatabaseHeld(HodeiError):
    """Another ``hodei serve`` runs on this SQLite database."""


def lock_path(url: str) -> Path | None:
    """Where the lock of the SQLite database at ``url`` lives; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve().with_name(Path(parsed.database).name + ".serve.lock")


class SqliteLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process's end)."""

    def __init__(self, url: str):
        self.path = lock_path(url)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """:raises DatabaseHeld: naming the process that holds the database."""
        if self.path is None or self._file is not None:
            return
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Readable by its owner only, like the database beside it (it names the holding process).
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        handle = open(descriptor, "a+", encoding="utf-8")  # noqa: SIM115 - held open while the daemon runs
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that did not say which"
            handle.close()
            database = self.path.with_name(self.path.name.removesuffix(".serve.lock"))
            raise DatabaseHeld(f"another hodei serve runs on SQLite database {database}: {holder} holds "
                               f"{self.path}. One SQLite database serves one daemon; stop that one first, "
                               "or use PostgreSQL to run several replicas") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since "
                     f"{datetime.now(UTC).isoformat(timespec='seconds')}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.seek(0)
                self._file.truncate()
            self._file.close()  # closing the descriptor releases the lock
            self._file = None
