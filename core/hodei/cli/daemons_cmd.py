"""``hodei daemons``: the ``hodei serve`` replicas sharing the database."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, output_option, table


@click.command()
@output_option
@click.pass_obj
def daemons(app: App, output: str) -> None:
    """The live `hodei serve` daemons on this database: address, version, last heartbeat, and how many
    providers each health-checks and reconciles (its share; every daemon serves selection).

    A daemon is live while its last heartbeat is younger than its lease (one health interval); one that
    stopped cleanly is gone at once, one that was killed or cut off once its lease lapses.
    """
    found = app.daemons.live()
    if output == "json":
        emit_json([d.document() for d in found])
        return
    if not found:
        click.echo("no live daemons")
        return
    click.echo(table(["HOST", "PID", "ADDRESS", "VERSION", "STARTED", "HEARTBEAT", "PROVIDERS"],
                     [[d.host, d.pid, d.address or None, d.version, _time(d.started_at), _time(d.heartbeat_at),
                       d.providers_owned] for d in found]))


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
