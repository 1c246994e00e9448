"""The ``hodei`` command."""

from __future__ import annotations

import json
from typing import Any

import click

from hodei import __version__
from hodei.cli.app import App, configure_logging
from hodei.errors import HodeiError, InvalidInput


class _Group(click.Group):
    """Turns Hodei's own errors into one clear message and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HodeiError as exc:
            _report(ctx, exc)
            ctx.exit(1)


def _report(ctx: click.Context, exc: HodeiError) -> None:
    wants_json = ctx.meta.get("hodei.output") == "json"
    if wants_json:
        problems = exc.problems if isinstance(exc, InvalidInput) else []
        body = {"error": type(exc).__name__, "message": str(exc), "problems": [p.as_dict() for p in problems]}
        click.echo(json.dumps(body, indent=2), err=True)
        return
    if isinstance(exc, InvalidInput) and len(exc.problems) > 1:
        click.echo(f"hodei: error: {exc.subject or 'invalid input'}:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
    else:
        click.echo(f"hodei: error: {exc}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config", envvar="HODEI_CONFIG", metavar="PATH", type=click.Path(dir_okay=False),
              help="hodei.toml to read [env: HODEI_CONFIG; default: ./config/hodei.toml, then "
                   "/etc/hodei/hodei.toml].")
@click.option("--database-url", envvar="HODEI_DATABASE_URL", metavar="URL",
              help="Database to use instead of hodei.toml's [database] url [env: HODEI_DATABASE_URL].")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Messages on standard error at this level and above.")
@click.version_option(__version__, prog_name="hodei")
@click.pass_context
def main(ctx: click.Context, config: str | None, database_url: str | None, log_level: str) -> None:
    """Hodei decides where a job's worker runs, and puts it there.

    Providers (Docker hosts, Kubernetes clusters, AWS Lambda, and any type a plugin adds) live
    in the provider_configs table; these commands manage them, check them, and show which one
    a job would get (`hodei select`) and why (`hodei explain`).
    """
    configure_logging(log_level)
    ctx.obj = App(config, database_url)


from hodei.cli import config_cmd, db_cmd, plugins_cmd, providers_cmd, select_cmd, serve_cmd  # noqa: E402

main.add_command(plugins_cmd.plugins)
main.add_command(db_cmd.db)
main.add_command(config_cmd.config)
main.add_command(providers_cmd.providers)
main.add_command(select_cmd.select)
main.add_command(select_cmd.explain)
main.add_command(serve_cmd.serve)
