"""The ``hodei`` command."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from hodei import __version__
from hodei.cli.app import App, ServerOnly, configure_logging
from hodei.cli.output import printable
from hodei.errors import HodeiError, InvalidInput
from hodei.redaction import scrub, shorten


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
    message = shorten(scrub(str(exc)))  # a message may quote what was given: never a credential
    if wants_json:
        problems = exc.problems if isinstance(exc, InvalidInput) else []
        body = {"error": type(exc).__name__, "message": message, "problems": [p.as_dict() for p in problems]}
        click.echo(json.dumps(body, indent=2), err=True)
        return
    if isinstance(exc, InvalidInput) and len(exc.problems) > 1:
        click.echo(f"hodei: error: {exc.subject or 'invalid input'}:", err=True)
        for problem in exc.problems:  # one line each, whatever a key it names holds
            click.echo(f"  {printable(str(problem))}", err=True)
    else:
        # A refusal is one line whatever the input held; other errors may explain on several.
        click.echo(f"hodei: error: {printable(message) if isinstance(exc, InvalidInput) else message}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config", envvar="HODEI_CONFIG", metavar="PATH", type=click.Path(dir_okay=False),
              help="hodei.toml to read [env: HODEI_CONFIG; default: the first of ./hodei.toml, "
                   "$XDG_CONFIG_HOME/hodei/hodei.toml (~/.config/hodei/hodei.toml), /etc/hodei/hodei.toml; "
                   "`hodei config show` says which].")
@click.option("--database-url", envvar="HODEI_DATABASE_URL", metavar="URL",
              help="Database to use instead of hodei.toml's [database] url [env: HODEI_DATABASE_URL].")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Messages on standard error at this level and above.")
@click.option("--server", envvar="HODEI_SERVER", metavar="HOST:PORT",
              help="Talk to a running `hodei serve` through its gRPC API instead of the database; a command "
                   "without an API call (db, config, serve, plugins) is refused [env: HODEI_SERVER].")
@click.option("--token-file", envvar="HODEI_TOKEN_FILE", metavar="PATH",
              help="File holding the API's bearer token [env: HODEI_TOKEN_FILE].")
@click.option("--tls", is_flag=True, envvar="HODEI_TLS",
              help="Use TLS with the system's CA certificates (implied by the --tls-* options) [env: HODEI_TLS].")
@click.option("--tls-ca-file", envvar="HODEI_TLS_CA_FILE", metavar="PATH",
              help="PEM CA certificates to check the server with [env: HODEI_TLS_CA_FILE].")
@click.option("--tls-cert-file", envvar="HODEI_TLS_CERT_FILE", metavar="PATH",
              help="PEM client certificate, for mutual TLS [env: HODEI_TLS_CERT_FILE].")
@click.option("--tls-key-file", envvar="HODEI_TLS_KEY_FILE", metavar="PATH",
              help="PEM private key of --tls-cert-file [env: HODEI_TLS_KEY_FILE].")
@click.version_option(__version__, prog_name="hodei")
@click.pass_context
def main(ctx: click.Context, config: str | None, database_url: str | None, log_level: str, server: str | None,
         token_file: str | None, tls: bool, tls_ca_file: str | None, tls_cert_file: str | None,
         tls_key_file: str | None) -> None:
    """Hodei decides where a job's worker runs, and puts it there.

    Providers (Docker hosts, Kubernetes clusters, AWS Lambda, and any type a plugin adds) live
    in the provider_configs table; these commands manage them, check them, and show which one
    a job would get (`hodei select`) and why (`hodei explain`). With --server they go through
    a running daemon's API instead of the database, with the same output (and nothing runs here).
    """
    configure_logging(log_level)
    options = None
    if server:
        from hodei.api.client import ServerOptions

        options = ServerOptions(server, token_file=token_file, tls=tls, ca_file=tls_ca_file,
                                cert_file=tls_cert_file, key_file=tls_key_file)
    ctx.obj = App(config, database_url, options)


def _refused_with_server(path: tuple[str, ...], callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback``, refused (exit 2) when --server is given: a command without an API call. Checked when
    the command runs, after its options are read, so its --help still works."""
    @functools.wraps(callback)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if click.get_current_context().find_root().params.get("server"):
            from hodei.api.cli import refusal

            raise ServerOnly(refusal(path))
        return callback(*args, **kwargs)
    return guarded


def _guard_local_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> None:
    """Every command of ``group``'s tree that has no API call refuses --server (see hodei.api.cli)."""
    from hodei.api.cli import REMOTE

    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            _guard_local_commands(command, path)
        elif path not in REMOTE and command.callback is not None:
            command.callback = _refused_with_server(path, command.callback)


from hodei.cli import (
    config_cmd,
    daemons_cmd,
    db_cmd,
    plugin_cmd,
    plugins_cmd,
    providers_cmd,
    select_cmd,
    serve_cmd,
    workers_cmd,
)

main.add_command(plugins_cmd.plugins)
main.add_command(plugin_cmd.plugin)
main.add_command(db_cmd.db)
main.add_command(config_cmd.config)
main.add_command(providers_cmd.providers)
main.add_command(select_cmd.select)
main.add_command(select_cmd.explain)
main.add_command(serve_cmd.serve)
main.add_command(workers_cmd.workers)
main.add_command(workers_cmd.queue)
main.add_command(daemons_cmd.daemons)
_guard_local_commands(main)  # last: after every command is added
