"""``hodei serve``: the daemon, as systemd (or a terminal) runs it."""

from __future__ import annotations

import logging

import click

from hodei.cli.app import App
from hodei.errors import DatabaseNotReady


@click.command()
@click.option("--migrate/--no-migrate", default=None,
              help="Migrate the database schema before starting [default: on SQLite only; on PostgreSQL run "
                   "`hodei db upgrade` as part of a deployment].")
@click.pass_context
def serve(ctx: click.Context, migrate: bool | None) -> None:
    """Run the daemon: check providers' health, follow changes to provider_configs, keep selection current.

    Runs until SIGTERM or SIGINT (in-flight work gets [daemon] shutdown_grace_seconds, then exit 0).
    SIGHUP re-reads hodei.toml. Under systemd (Type=notify) it reports READY=1, STATUS and
    STOPPING=1, and pings the watchdog when WatchdogSec is set. Logs at INFO unless --log-level says,
    as JSON lines with the trace id unless on a terminal ([logging] format). Serves Prometheus metrics
    on [metrics] listen (127.0.0.1:9464), a read-only status page (the fleet, each provider with an
    explain form, the placement queue, recent decisions, replicas) on [ui] listen
    (http://127.0.0.1:9465/; beyond loopback it asks for [api] token_file's token), and sends traces
    as [tracing] says (off by default).
    """
    from hodei.daemon import serve as run
    from hodei.observability.logs import set_format

    root = ctx.find_root()
    if root.get_parameter_source("log_level") is click.core.ParameterSource.DEFAULT:
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO is a line per migration step
    app: App = ctx.obj
    set_format(app.settings.logging.format)
    try:
        run(app._config, app._database_url, migrate=migrate)
    except DatabaseNotReady as exc:
        raise DatabaseNotReady(f"{exc} ({app.where()})") from None
