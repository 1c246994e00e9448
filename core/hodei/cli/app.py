"""What every command needs, built once per invocation and only when asked for."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hodei.api.client import Connection, RemoteSelection, ServerOptions
    from hodei.plugins import HodeiPluginManager
    from hodei.selection import SelectionChain, Selector
    from hodei.settings import Settings
    from hodei.store import Store

# The heavy modules (SQLAlchemy, pydantic models, plugins) load on first use, so `--help` is quick.


class App:
    def __init__(self, config: str | None, database_url: str | None, server: ServerOptions | None = None):
        self._config = config
        self._database_url = database_url
        # Given (``--server``): providers and selection go through the daemon's API, not the database.
        self.server = server

    @functools.cached_property
    def connection(self) -> Connection:
        from hodei.api.client import Connection

        assert self.server is not None
        return Connection(self.server)

    @functools.cached_property
    def selection(self) -> RemoteSelection | Selector:
        """What answers ``select`` and ``explain``: the daemon's live selector through the API, or one
        built from the database. Both have ``report(job)`` and ``explain(name, job)``."""
        if self.server is not None:
            from hodei.api.client import RemoteSelection

            return RemoteSelection(self.connection)
        from hodei.selection import Selector

        return Selector.from_store(self.store, self.chain)

    @functools.cached_property
    def settings(self) -> Settings:
        from hodei.settings import load_settings

        return load_settings(self._config, self._database_url)

    @functools.cached_property
    def pm(self) -> HodeiPluginManager:
        if self.server is not None:  # the server masks configs with its own plugins
            from hodei.api.client import ServerMaskedTypes

            return ServerMaskedTypes()  # type: ignore[return-value]
        from hodei.plugins import make_plugin_manager

        plugins = self.settings.plugins
        return make_plugin_manager(allow=plugins.allow, deny=plugins.deny)

    @functools.cached_property
    def store(self) -> Store:
        if self.server is not None:
            from hodei.api.client import RemoteStore

            return RemoteStore(self.connection)  # type: ignore[return-value]
        from hodei.store import Store

        return Store.open(self.settings.database.url, self.pm)

    @functools.cached_property
    def chain(self) -> SelectionChain:
        if self.server is not None:  # requirements are checked by the server's chain
            from hodei.api.client import RemoteChain

            return RemoteChain()  # type: ignore[return-value]
        from hodei.selection import build_chain

        selection = self.settings.selection
        return build_chain(self.pm, selection.filters, selection.rankers, selection.weights)

    def unchecked_store(self) -> Store:
        """A store on a database whose schema may be missing (``hodei db``)."""
        from hodei.store import Store

        return Store.open(self.settings.database.url, self.pm, check=False)


def configure_logging(level: str, log_format: str = "auto") -> None:
    """Log to standard error at ``level``: text on a terminal, else one JSON object per line (with the
    trace id) unless ``log_format`` (auto, json, text) says otherwise. A no-op when the root logger
    already has handlers (as under pytest); ``hodei serve`` applies ``[logging] format`` later."""
    from hodei.observability.logs import make_handler

    logging.basicConfig(level=level.upper(), handlers=[make_handler(log_format)])
