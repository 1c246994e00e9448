"""The plugins that ship in the core, registered from the one list below.

* ``hodei.selection`` (:mod:`hodei.builtin_plugins.selection_rules`): the built-in selection filters and
  rankers, always registered (unless a test asks for a manager without them).
* ``static`` (:mod:`hodei.builtin_plugins.static_provider`): a provider type for tests, benchmarks and
  dry runs, registered only when named in ``[plugins] enable`` (or ``$HODEI_PLUGINS_ENABLE``), never
  wanted in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class BuiltinPlugin:
    name: str  # the plugin's name in `hodei plugins` and the allow/deny/enable lists
    module: str
    optional: bool  # loaded only when enabled


BUILTIN_PLUGINS: Final = (
    BuiltinPlugin("hodei.selection", "hodei.builtin_plugins.selection_rules", optional=False),
    BuiltinPlugin("static", "hodei.builtin_plugins.static_provider", optional=True),
)
