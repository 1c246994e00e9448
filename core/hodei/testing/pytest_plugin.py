"""The ``hodei`` pytest plugin: fixtures for Hodei's own tests and for third-party plugin authors.

Not loaded by itself (a production install adds nothing to other projects' pytest runs): a plugin's
test suite asks for it with ``pytest -p hodei.testing.pytest_plugin``, ``addopts = "-p
hodei.testing.pytest_plugin"`` in its pytest configuration, or ``pytest_plugins =
["hodei.testing.pytest_plugin"]`` in its top-level conftest.py. It provides:

* ``hodei_pm``: a fresh plugin manager with every installed ``hodei`` plugin loaded, and the core's
  ``static`` provider type (a test-only type, not loaded in production unless enabled).
* ``hodei_pm_factory``: build one with your own allow/deny lists or extra plugins.
* ``register_plugin``: register an in-test plugin object on ``hodei_pm``; unregistered after.

It also makes the run hermetic (:mod:`hodei.testing.hermetic`): the caller's ``HODEI_*`` variables,
``~/.config/hodei/hodei.toml``, the per-user database and ``/etc/hodei/hodei.toml`` are out of reach of
every test and every process a test starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hodei.plugins import HodeiPluginManager, make_plugin_manager
from hodei.testing import hermetic


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    # Loaded with -p: before any conftest.py runs, so a conftest's own settings come after the clean-up.
    hermetic.isolate()


def pytest_configure() -> None:
    # Loaded from a conftest.py's pytest_plugins: the earliest hook such a plugin gets.
    hermetic.isolate()


def pytest_unconfigure() -> None:
    hermetic.remove()


@pytest.fixture
def hodei_pm_factory() -> Callable[..., HodeiPluginManager]:
    return make_plugin_manager


@pytest.fixture
def hodei_pm() -> HodeiPluginManager:
    return make_plugin_manager(enable=["static"])


@pytest.fixture
def register_plugin(hodei_pm: HodeiPluginManager) -> Iterator[Callable[..., Any]]:
    registered: list[object] = []

    def register(plugin: object, name: str | None = None) -> object:
        hodei_pm.register(plugin, name=name)
        registered.append(plugin)
        return plugin

    yield register
    for plugin in registered:
        if hodei_pm.is_registered(plugin):
            hodei_pm.unregister(plugin)


# -- databases --------------------------------------------------------------------------------

POSTGRES_URL_ENV = "HODEI_TEST_POSTGRES_URL"


@pytest.fixture
def hodei_sqlite_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite database file."""
    return f"sqlite:///{tmp_path / 'hodei.db'}"


@pytest.fixture
def hodei_postgres_url() -> Iterator[str]:
    """A fresh, empty schema in the PostgreSQL database named by ``$HODEI_TEST_POSTGRES_URL``.

    The URL sets ``search_path`` to that schema, so unqualified SQL (the seed's) lands in it.
    Skips without the variable or the server, and fails instead under HODEI_REQUIRE_BACKENDS=1.
    """
    import contextlib
    import os

    import sqlalchemy as sa

    from hodei.database import safe_url
    from hodei.testing import backend_unavailable
    from hodei.testing.databases import postgres_schema

    base = os.environ.get(POSTGRES_URL_ENV)
    if not base:
        backend_unavailable(f"PostgreSQL backend not configured: set {POSTGRES_URL_ENV} "
                            "(e.g. postgresql+psycopg://hodei:hodei@127.0.0.1:5432/hodei_test)")
    schemas = contextlib.ExitStack()
    try:
        url = schemas.enter_context(postgres_schema(base, "test", connect_timeout=5))
    except sa.exc.OperationalError as exc:
        backend_unavailable(f"PostgreSQL backend unreachable at {safe_url(base)}: "
                            f"{str(exc.orig).splitlines()[0]}")
    with schemas:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def hodei_database_url(request: pytest.FixtureRequest) -> str:
    """Each test that uses it runs twice: on SQLite, the embedded default, and on PostgreSQL."""
    return request.getfixturevalue(f"hodei_{request.param}_url")


@pytest.fixture
def hodei_store(hodei_database_url: str, hodei_pm: HodeiPluginManager) -> Iterator[Any]:
    """A :class:`hodei.store.Store` on a freshly migrated database (SQLite and PostgreSQL)."""
    from hodei import database
    from hodei.store import Store

    engine = database.create_engine(hodei_database_url)
    database.upgrade(engine)
    store = Store(engine, hodei_pm)
    yield store
    store.close()
