"""``hodei plugins``."""

from __future__ import annotations

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, output_option, table


@click.command()
@output_option
@click.pass_obj
def plugins(app: App, output: str) -> None:
    """List loaded plugins with their version, provider types and hooks, and any that failed to load."""
    pm = app.pm
    infos = pm.plugin_infos()
    if output == "json":
        emit_json({
            "plugins": [{"name": i.name, "distribution": i.distribution, "version": i.version,
                         "provider_types": i.provider_types, "hooks": i.hooks} for i in infos],
            "errors": [{"name": e.name, "distribution": e.distribution, "error": e.error} for e in pm.load_errors],
            "skipped": sorted(pm.skipped),
        })
        return
    click.echo(table(["PLUGIN", "DISTRIBUTION", "VERSION", "PROVIDER TYPES", "HOOKS"], [
        [i.name, i.distribution, i.version, ", ".join(i.provider_types) or None,
         ", ".join(h.removeprefix("hodei_") for h in i.hooks)] for i in infos]))
    if pm.skipped:
        click.echo(f"\nnot loaded (allow/deny lists in hodei.toml): {', '.join(sorted(pm.skipped))}")
    if pm.load_errors:
        click.echo("\nfailed to load:")
        for error in pm.load_errors:
            click.echo(f"  {error.name} ({error.distribution or 'unknown distribution'}): {error.error}")
