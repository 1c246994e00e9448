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
@click.option("--database-url", "url", default="sqlite:///hodei.db", show_default=True,
              help="The [database] url to write.")
def init(path: Path, force: bool, url: str) -> None:
    """Write a commented hodei.toml with every setting at its default to PATH."""
    from hodei.config_template import render_default_config

    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_default_config(url), encoding="utf-8")
    click.echo(f"wrote {path}")


@config.command()
@output_option
@click.pass_obj
def show(app: App, output: str) -> None:
    """Show the settings in effect (file, environment and options applied; passwords hidden)."""
    from hodei.database import safe_url

    settings = app.settings
    data = settings.model_dump(mode="json")
    data["database"]["url"] = safe_url(settings.database.url)
    if output == "json":
        emit_json({"source": str(settings.source) if settings.source else None, "settings": data})
        return
    click.echo(f"# from {settings.source or 'built-in defaults'}, with overrides applied")
    # TOML has no null: a setting left unset is left out, as it would be in the file.
    shown = {section: {k: v for k, v in values.items() if v is not None} for section, values in data.items()}
    click.echo(tomli_w.dumps(shown).rstrip())
