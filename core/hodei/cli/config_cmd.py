"""``hodei config``."""

from __future__ import annotations

from pathlib import Path

import click
import tomli_w

from hodei.cli.app import App
from hodei.cli.output import emit_json, output_option


@click.group()
def config() -> None:
    """Write and inspect hodei.toml."""


@config.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option("--database-url", "url", metavar="URL",
              help="The [database] url to write (a relative SQLite path is taken from PATH's folder). Without it, "
                   "the url is left unset: $XDG_DATA_HOME/hodei/hodei.db (~/.local/share/hodei/hodei.db).")
def init(path: Path, force: bool, url: str | None) -> None:
    """Write a commented hodei.toml with every setting at its default to PATH, readable by its owner only
    (mode 0600: it may hold the database's password; the user that runs `hodei serve` must own it).

    Where hodei looks for it: --config, HODEI_CONFIG, ./hodei.toml, $XDG_CONFIG_HOME/hodei/hodei.toml
    (~/.config/hodei/hodei.toml), /etc/hodei/hodei.toml ($HODEI_SYSTEM_CONFIG); the first found is used.
    """
    from hodei.config_template import render_default_config
    from hodei.private_files import write_private

    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, render_default_config(url).encode("utf-8"))
    click.echo(f"wrote {path} (mode 0600: readable by its owner only)")


@config.command()
@output_option
@click.pass_obj
def show(app: App, output: str) -> None:
    """Show the settings in effect, which file they came from, and which database they name.

    hodei.toml is the first of: --config, HODEI_CONFIG, ./hodei.toml, $XDG_CONFIG_HOME/hodei/hodei.toml
    (~/.config/hodei/hodei.toml), /etc/hodei/hodei.toml ($HODEI_SYSTEM_CONFIG); else built-in defaults.
    --database-url or HODEI_DATABASE_URL overrides its [database] url. Passwords are hidden.
    """
    from hodei import database
    from hodei.settings import search_path

    settings = app.settings
    origin = settings.origin
    url = database.safe_url(settings.database.url)
    data = settings.model_dump(mode="json")
    data["database"]["url"] = url
    exists = database.exists(settings.database.url)
    if output == "json":
        emit_json({"source": str(settings.source) if settings.source else None,
                   "found_by": origin.config_from if origin else None,
                   "searched": [str(path) for path in search_path()],
                   "database": {"url": url, "from": origin.database_from if origin else None, "exists": exists},
                   "settings": data})
        return
    searched = ", ".join(["--config", "HODEI_CONFIG", *(str(path) for path in search_path())])
    click.echo(f"# {origin.describe() if origin else 'settings: built-in defaults'}, with overrides applied")
    click.echo(f"# database: {url} (from {origin.database_from if origin else 'the default'})"
               + ("" if exists else "; it does not exist yet: `hodei db upgrade` creates it"))
    click.echo(f"# looked for hodei.toml in this order: {searched}")
    # TOML has no null: a setting left unset is left out, as it would be in the file.
    shown = {section: {k: v for k, v in values.items() if v is not None} for section, values in data.items()}
    click.echo(tomli_w.dumps(shown).rstrip())
