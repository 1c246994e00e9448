"""What every command needs, built once per invocation and only when asked for.

Commands ask ``app.providers``, ``app.selection`` and ``app.workers``: the local services on the
database, or, with ``--server``, the same protocols through a running daemon's API.
"""

from __future__ import annotations

import functools
import logging
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from hodei.api.client import Connection, ServerOptions
    from hodei.plugins import HodeiPluginManager
    from hodei.services.daemons import Daemons
    from hodei.services.local import OnDatabase, SelectionChain, Store
    from hodei.services.protocols import Providers, Selection, Workers
    from hodei.services.providers import LocalProviders
    from hodei.services.selection import LocalSelection
    from hodei.settings import Settings

# The heavy modules (SQLAlchemy, pydantic models, plugins) load on first use, so `--help` is quick.


class ServerOnly(click.ClickException):
    """With --server, a command asked for something of this machine (its settings, database, plugins):
    refused as a usage error, never done behind the operator's back."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"hodei: error: {self.format_message()}", err=True, file=file)


class App:
    def __init__(self, config: str | None, database_url: str | None, server: ServerOptions | None = None):
        self._config = config
        self._database_url = database_url
        # Given (``--server``): every command goes through the daemon, or is refused; nothing local.
        self.server = server

    # -- the services the commands use ----------------------------------------------------------

    @functools.cached_property
    def providers(self) -> Providers:
        if self.server is not None:
            from hodei.api.remote import RemoteProviders

            return RemoteProviders(self.connection)
        return self.local_providers

    @functools.cached_property
    def selection(self) -> Selection:
        if self.server is not None:
            from hodei.api.remote import RemoteSelection

            return RemoteSelection(self.connection)
        return self.local_selection

    @functools.cached_property
    def workers(self) -> Workers:
        if self.server is not None:
            from hodei.api.remote import RemoteWorkers

            return RemoteWorkers(self.connection, provision_seconds=self._provision_budget())
        return self.local.workers

    def _provision_budget(self) -> float:
        # With --server nothing of this machine's settings is read, so the deadline is the budget of the
        # default [workers] settings (every attempt timing out, then a worker being stopped). A daemon
        # configured for longer still answers or, when this caller gives up first, gives the slot back.
        from hodei.settings import WorkerSettings

        return WorkerSettings().provision_budget_seconds

    @functools.cached_property
    def daemons(self) -> Daemons:
        if self.server is not None:
            from hodei.api.daemons import RemoteDaemons

            return RemoteDaemons(self.connection)
        from hodei.services.daemons import LocalDaemons

        return LocalDaemons(self.store.engine)  # no plugins' rules needed to list the daemons

    # -- on the database ----------------------------------------------------------------------

    @functools.cached_property
    def local(self) -> OnDatabase:
        from hodei.services.local import on_database

        return on_database(self.store, self.chain, self.settings.workers, health=self.settings.health,
                           cooldown=self.settings.cooldown, check_timeout=self.settings.health.timeout_seconds)

    @property
    def local_providers(self) -> LocalProviders:
        return self.local.providers

    @property
    def local_selection(self) -> LocalSelection:
        return self.local.selection

    @functools.cached_property
    def connection(self) -> Connection:
        from hodei.api.client import Connection

        assert self.server is not None
        return Connection(self.server)

    @functools.cached_property
    def settings(self) -> Settings:
        """This machine's settings: everything local (database, plugins, rules) starts here."""
        from hodei.settings import load_settings

        if self.server is not None:
            raise ServerOnly(f"with --server {self.server.address} nothing is read from this machine's settings "
                             "or database; this command needs them: run it without --server")

        return load_settings(self._config, self._database_url)

    @functools.cached_property
    def pm(self) -> HodeiPluginManager:
        from hodei.services.local import plugin_manager

        return plugin_manager(self.settings)

    @functools.cached_property
    def store(self) -> Store:
        from hodei.errors import DatabaseNotReady
        from hodei.services.local import open_store

        try:
            return open_store(self.settings, self.pm)
        except DatabaseNotReady as exc:
            # Which settings named this database: a command run from the wrong folder says so.
            raise DatabaseNotReady(f"{exc} ({self.where()})") from None

    def where(self) -> str:
        """Which settings and database are in effect, in words (``settings: FILE (from ...); database from ...``)."""
        origin = self.settings.origin
        return "built-in defaults" if origin is None else f"{origin.describe()}; database from {origin.database_from}"

    @functools.cached_property
    def chain(self) -> SelectionChain:
        from hodei.services.local import selection_chain

        return selection_chain(self.settings, self.pm)


def configure_logging(level: str, log_format: str = "auto") -> None:
    """Log to standard error at ``level``: text on a terminal, else one JSON object per line (with the
    trace id) unless ``log_format`` (auto, json, text) says otherwise. A no-op when the root logger
    already has handlers (as under pytest); ``hodei serve`` applies ``[logging] format`` later."""
    from hodei.observability.logs import make_handler

    logging.basicConfig(level=level.upper(), handlers=[make_handler(log_format)])
