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
@click.option("--sql", "offline", is_flag=True,
              help="Print the SQL of the migration instead of running it, for the kind of database the settings "
                   "name (PostgreSQL or SQLite), connecting to nothing: for a DBA to review or run.")
@click.option("--from", "start", metavar="REVISION",
              help="With --sql: the revision the database is at (`hodei db current`); default: an empty database.")
@click.pass_obj
def upgrade(app: App, output: str, offline: bool, start: str | None) -> None:
    """Create the database and its schema, or migrate it to this version of Hodei. Safe to run again.

    Says which database it used and which settings named it (`hodei config show` for the rest).
    With --sql, prints the SQL instead and touches no database.
    """
    from hodei import database

    if start is not None and not offline:
        raise click.UsageError("--from goes with --sql (online, the database says which revision it is at)")
    if offline:
        if output == "json":
            raise click.UsageError("--sql prints SQL; it has no -o json")
        click.echo(database.upgrade_sql(app.settings.database.url, start), nl=False)
        return
    url = database.safe_url(app.settings.database.url)
    engine = database.create_engine(app.settings.database.url, create=True)
    try:
        before, after = database.upgrade(engine)
    finally:
        engine.dispose()
    if output == "json":
        emit_json({"database": url, "from": before, "to": after, "settings": _settings_file(app)})
    elif before == after:
        click.echo(f"{url}: schema already at {after} ({app.where()})")
    else:
        click.echo(f"{url}: schema migrated from {before or 'empty'} to {after} ({app.where()})")


@db.command()
@output_option
@click.pass_obj
def current(app: App, output: str) -> None:
    """Show the database's schema revision and the one this Hodei needs. Creates nothing: a SQLite
    database that does not exist is an error naming it and the settings that named it."""
    from hodei import database
    from hodei.errors import DatabaseNotReady

    url = database.safe_url(app.settings.database.url)
    head = database.head_revision()
    try:
        engine = database.create_engine(app.settings.database.url, create=False)
    except DatabaseNotReady as exc:
        raise DatabaseNotReady(f"{exc} ({app.where()})") from None
    try:
        revision = database.current_revision(engine)
    finally:
        engine.dispose()
    if output == "json":
        emit_json({"database": url, "current": revision, "head": head, "up_to_date": revision == head,
                   "settings": _settings_file(app)})
    else:
        state = "up to date" if revision == head else "run `hodei db upgrade`"
        click.echo(f"{url}: schema {revision or 'none'}, this Hodei needs {head} ({state})")


def _settings_file(app: App) -> str | None:
    source = app.settings.source
    return str(source) if source is not None else None
