"""What every command needs, built once per invocation and only when asked for."""

from __future__ import annotations

import functools
import logging

from hodei.plugins import HodeiPluginManager, make_plugin_manager
from hodei.settings import Settings, load_settings
from hodei.store import Store


class App:
    def __init__(self, config: str | None, database_url: str | None):
        self._config = config
        self._database_url = database_url

    @functools.cached_property
    def settings(self) -> Settings:
        return load_settings(self._config, self._database_url)

    @functools.cached_property
    def pm(self) -> HodeiPluginManager:
        plugins = self.settings.plugins
        return make_plugin_manager(allow=plugins.allow, deny=plugins.deny)

    @functools.cached_property
    def store(self) -> Store:
        return Store.open(self.settings.database.url, self.pm)

    def unchecked_store(self) -> Store:
        """A store on a database whose schema may be missing (``hodei db``)."""
        return Store.open(self.settings.database.url, self.pm, check=False)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
