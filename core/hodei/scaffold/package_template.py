"""What every generated plugin package shares: its pyproject.toml (``string.Template`` text)."""

from __future__ import annotations


def pyproject(description: str, entry_point_note: str) -> str:
    """The package's pyproject.toml template: ``$distribution``, ``$name`` and ``$module`` are filled in
    when the package is written; ``description`` and ``entry_point_note`` say what kind of plugin it is."""
    return f'''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "{description}"
requires-python = ">=3.11"
dependencies = ["hodei>=0.1"]

[project.optional-dependencies]
test = ["pytest>=8.2", "hypothesis>=6.100"]

# {entry_point_note}
[project.entry-points.hodei]
$name = "$module"

[tool.setuptools]
packages = ["$module"]

# Hodei's fixtures (hodei_pm, ...) and its contract suite come from its pytest plugin.
[tool.pytest.ini_options]
addopts = "-p hodei.testing.pytest_plugin"
testpaths = ["tests"]
'''
