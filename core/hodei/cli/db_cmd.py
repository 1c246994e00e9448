"""``hodei db``."""

from __future__ import annotations

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, output_option


@click.group()
def db() -> None:
    """Create and migrate the database schema."""


@db.command()
@output_option
@click.pass_obj
def upgrade(app: App, output: str) -> None:
    """Create the schema or migrate it to this version of Hodei. Safe to run again."""
    from hodei import database

    engine = database.create_engine(app.settings.database.url)
    try:
        before, after = database.upgrade(engine)
    finally:
        engine.dispose()
    url = database.safe_url(app.settings.database.url)
    if output == "json":
        emit_json({"database": url, "from": before, "to": after})
    elif before == after:
        click.echo(f"{url}: schema already at {after}")
    else:
        click.echo(f"{url}: schema migrated from {before or 'empty'} to {after}")


@db.command()
@output_option
@click.pass_obj
def current(app: App, output: str) -> None:
    """Show the database's schema revision and the one this Hodei needs."""
    from hodei import database

    engine = database.create_engine(app.settings.database.url)
    try:
        revision = database.current_revision(engine)
    finally:
        engine.dispose()
    head = database.head_revision()
    url = database.safe_url(app.settings.database.url)
    if output == "json":
        emit_json({"database": url, "current": revision, "head": head, "up_to_date": revision == head})
    else:
        state = "up to date" if revision == head else "run `hodei db upgrade`"
        click.echo(f"{url}: schema {revision or 'none'}, this Hodei needs {head} ({state})")
