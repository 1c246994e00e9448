"""Running a :class:`hodei.daemon.Daemon` inside a test, and waiting for what it does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from hodei.daemon import Daemon


async def wait_for(predicate: Callable[[], Any], seconds: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` (letting the daemon run in between) until it is true; returns its value."""
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what or predicate}")
        await anyio.sleep(0.02)
    return value


@asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[Daemon]:
    """The daemon running in the test's task group, ready; stopped (SIGTERM's path) on the way out."""
    async with anyio.create_task_group() as group:
        group.start_soon(daemon.run)
        await wait_for(lambda: daemon.ready, what="the daemon to be ready")
        try:
            yield daemon
        finally:
            daemon.shutdown()


def run_sql(url: str, statement: str, **params: Any) -> None:
    """One statement in its own transaction, as an operator's SQL session would commit it."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), params)
    finally:
        engine.dispose()
