"""Files that may hold a secret (hodei.toml with a database password, the SQLite database with provider
configs): readable and writable by their owner only (0600), from the moment they exist, whatever the
umask. Never written open and tightened afterwards: another user could open it in between and keep it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE = 0o600


def _open_private(path: Path) -> int:
    """A new file at ``path`` (refused if it exists), 0600 before a byte is in it: the umask can only take
    bits away from the mode it is created with, so the mode is set again on the descriptor."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), PRIVATE)
    try:
        os.fchmod(descriptor, PRIVATE)
    except BaseException:
        os.close(descriptor)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return descriptor


def create_private(path: Path) -> bool:
    """Create ``path`` empty and private unless it exists (left as it is). Returns whether it was created."""
    try:
        os.close(_open_private(path))
    except FileExistsError:
        return False
    return True


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: written to a private temporary file beside it, flushed to
    disk, then renamed over it, so a reader sees the old file or the new one, never a part, and a failure
    leaves the old one (or none) and no temporary file."""
    for attempt in range(100):
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{attempt}.tmp")
        try:
            descriptor = _open_private(temporary)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"cannot make a temporary file beside {path}")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash (not every file system allows it)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
