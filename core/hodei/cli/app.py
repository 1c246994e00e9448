"""What every command needs, built once per invocation and only when asked for."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hodei.plugins import HodeiPluginManager
    from hodei.selection import SelectionChain
    from hodei.settings import Settings
    from hodei.store import Store

# The heavy modules (SQLAlchemy, pydantic models, plugins) load on first use, so `--help` is quick.


class App:
    def __init__(self, config: str | None, database_url: str | None):
        self._config = config
        self._database_url = database_url

    @functools.cached_property
    def settings(self) -> Settings:
        from hodei.settings import load_settings

        return load_settings(self._config, self._database_url)

    @functools.cached_property
    def pm(self) -> HodeiPluginManager:
        from hodei.plugins import make_plugin_manager

        plugins = self.settings.plugins
        return make_plugin_manager(allow=plugins.allow, deny=plugins.deny)

    @functools.cached_property
    def store(self) -> Store:
        from hodei.store import Store

        return Store.open(self.settings.database.url, self.pm)

    @functools.cached_property
    def chain(self) -> SelectionChain:
        from hodei.selection import build_chain

        selection = self.settings.selection
        return build_chain(self.pm, selection.filters, selection.rankers, selection.weights)

    def unchecked_store(self) -> Store:
        """A store on a database whose schema may be missing (``hodei db``)."""
        from hodei.store import Store

        return Store.open(self.settings.database.url, self.pm, check=False)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
