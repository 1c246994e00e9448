"""Fixtures shared by the core's tests."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from hodei.cli import main
from sqlalchemy.engine import make_url

DOCS = Path(__file__).resolve().parents[1] / "docs"

# The core's test-only `static` provider type, for every `hodei` these tests run in-process or as a
# child (hodei.testing.serve starts daemons without HODEI_* variables: their hodei.toml enables it).
os.environ.setdefault("HODEI_PLUGINS_ENABLE", "static")


@pytest.fixture(scope="module")
def install_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, str], Path]]:
    """``install_example("example-plugin", "hodei_localproc")``: ``pip install --target`` of a package
    under docs/, put on ``sys.path`` for the module's tests, so Hodei finds it only through its entry
    point, exactly as it finds a plugin installed from PyPI."""
    installed: list[str] = []

    with pytest.MonkeyPatch.context() as mp:
        def install(folder: str, module: str) -> Path:
            scratch = tmp_path_factory.mktemp(folder)
            # Build from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
            source = scratch / "src"
            shutil.copytree(DOCS / folder, source, ignore=shutil.ignore_patterns(
                "build", "*.egg-info", "__pycache__", ".pytest_cache"))
            site = scratch / "site"
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                 "--disable-pip-version-check", "--quiet", "--target", str(site), str(source)],
                capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                pytest.fail(f"pip install of docs/{folder} failed:\n{result.stdout}\n{result.stderr}")
            mp.syspath_prepend(str(site))  # also invalidates the import caches
            installed.append(module)
            return site

        yield install
    for name in [m for m in sys.modules if any(m == x or m.startswith(f"{x}.") for x in installed)]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture(autouse=True)
def _no_personal_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own XDG homes: what one test writes to the per-user config or database is not seen by the
    next (the caller's own are already out of reach of the whole run: hodei.testing.hermetic)."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))


# -- the hodei command, in-process ----------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A minimal hodei.toml: every installed plugin loaded, and the core's ``static`` type."""
    path = tmp_path / "etc" / "hodei.toml"
    path.parent.mkdir()
    path.write_text('[plugins]\nallow = []\ndeny = []\nenable = ["static"]\n', encoding="utf-8")
    return path


class Hodei:
    """Runs ``hodei`` in-process against one database and one hodei.toml."""

    def __init__(self, url: str, config: Path):
        self.url = url
        self.config = config
        self.runner = CliRunner()

    def env(self, **overrides: str | None) -> dict[str, str | None]:
        return {"HODEI_DATABASE_URL": self.url, "HODEI_CONFIG": str(self.config), **overrides}

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
        return self.runner.invoke(main, list(args), input=input, env=self.env() if env is None else env,
                                  catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, f"hodei {' '.join(args)} failed ({result.exit_code}): {result.stderr}"
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.ok(*args, "-o", "json", input=input).stdout)

    def providers(self) -> list[dict[str, Any]]:
        return self.json("providers", "list")

    def provider(self, name: str) -> dict[str, Any]:
        return self.json("providers", "show", name)

    def sql(self, statement: str, **params: Any) -> None:
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(statement), params)
        finally:
            engine.dispose()

    @property
    def is_postgres(self) -> bool:
        return make_url(self.url).get_backend_name() == "postgresql"


@pytest.fixture
def hodei(hodei_database_url: str, config_file: Path) -> Hodei:
    """``hodei`` on a freshly upgraded database (SQLite, then PostgreSQL)."""
    cli = Hodei(hodei_database_url, config_file)
    cli.ok("db", "upgrade")
    return cli


@pytest.fixture
def sqlite_hodei(hodei_sqlite_url: str, config_file: Path) -> Hodei:
    """For what does not depend on the database: SQLite only."""
    cli = Hodei(hodei_sqlite_url, config_file)
    cli.ok("db", "upgrade")
    return cli


@pytest.fixture
def hodei_cli() -> type[Hodei]:
    """The ``Hodei`` runner class, for a test that picks its own database or hodei.toml."""
    return Hodei
