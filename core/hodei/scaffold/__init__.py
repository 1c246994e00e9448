"""``hodei plugin new``: a plugin package that works before its author changes a line.

It writes a pip package (``pyproject.toml`` with the ``hodei`` entry point, the plugin module with each
hook stubbed to a working minimal behaviour, tests that run Hodei's contract suite, a README). The
package passes its own tests unchanged, installs with pip, and shows in ``hodei plugins``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Final, Literal

from hodei.errors import InvalidInput, Problem
from hodei.hookspecs import API_VERSION
from hodei.scaffold import provider_templates, selection_templates

Kind = Literal["provider", "selection"]
KINDS: Final[tuple[Kind, ...]] = ("provider", "selection")
NAME = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,39}")
# Names the core's own plugins and rules already use: a plugin with one of them would be refused.
RESERVED: Final = frozenset({"hodei", "static", "selection", "status", "health", "cooldown", "capacity", "resources",
                             "labels", "annotations", "allowed-regions", "image", "priority", "utilization", "name"})


@dataclass(frozen=True)
class Plugin:
    name: str  # the entry point's name: the provider type, or the selection rules' prefix
    kind: Kind

    @property
    def distribution(self) -> str:
        return f"hodei-{self.name}"

    @property
    def module(self) -> str:
        return f"hodei_{self.name.replace('-', '_')}"

    @property
    def field(self) -> str:
        """The job field a selection plugin's rules read."""
        return self.name.replace("-", "_")

    @property
    def title(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))


def check_name(name: str) -> None:
    """:raises InvalidInput: naming ``NAME`` and why it cannot be a plugin's name."""
    if not NAME.fullmatch(name):
        raise InvalidInput(Problem("NAME", f"{name!r} must be 1 to 40 lower-case letters, digits and single hyphens, "
                                           "starting with a letter (it names the entry point, the provider type "
                                           "or rules, and the package hodei-NAME)"))
    if name in RESERVED:
        raise InvalidInput(Problem("NAME", f"{name!r} is a name of the core's own plugins or rules; choose another"))


def files(plugin: Plugin) -> dict[str, str]:
    """Every file of the package, by path relative to its folder."""
    templates = provider_templates if plugin.kind == "provider" else selection_templates
    values = {"name": plugin.name, "distribution": plugin.distribution, "module": plugin.module,
              "field": plugin.field, "title": plugin.title, "api_version": API_VERSION}
    return {Template(path).substitute(values): Template(text).substitute(values)
            for path, text in templates.FILES.items()}


def write(name: str, kind: Kind, directory: Path) -> list[Path]:
    """Write the package for plugin ``name`` into ``directory`` (created; it must not hold anything yet).

    :returns: the files written, in order.
    :raises InvalidInput: for a bad name or kind, or a ``directory`` that exists and is not empty;
        nothing is written then.
    """
    check_name(name)
    if kind not in KINDS:
        raise InvalidInput(Problem("--kind", f"must be one of {', '.join(KINDS)}, got {kind!r}"))
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidInput(Problem("--dir", f"{str(directory)!r} exists and is not an empty folder; nothing was "
                                            "written"))
    written = []
    for relative, text in files(Plugin(name, kind)).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
