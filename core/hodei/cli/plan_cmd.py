"""``hodei plan``: will this batch fit? A batch of jobs placed on the fleet as it is now, nothing provisioned."""

from __future__ import annotations

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, output_option
from hodei.documents import RECORD_FORMATS, read_records

SOME_WAIT = 3


@click.command("plan")
@click.option("-f", "--file", "path", required=True, metavar="JOBS",
              help="The batch: one requirements object per job (as `hodei select -r` takes, plus `priority`), "
                   "as JSON Lines (.jsonl), a JSON or YAML list, or TOML [[jobs]] tables; - reads standard input.")
@click.option("--format", "fmt", type=click.Choice(RECORD_FORMATS),
              help="The file's format, when its name does not say (standard input: JSON or YAML unless jsonl).")
@output_option
@click.pass_obj
def plan(app: App, path: str, fmt: str | None, output: str) -> None:
    """Place a batch of jobs on the current fleet, as the daemon would, without provisioning anything.

    Jobs are placed in the placement queue's order (higher priority first, then their order in the
    file) through the selection chain, against each provider's health, cooldown and slots in use, the
    batch's own jobs taking slots as they are placed. Prints each job's provider and tier or why it
    would wait, each provider's slots in use before and after, a summary line, and advice (raise a
    provider's max_workers, add a provider, allow an image), each piece checked by planning again with
    it applied. Exit status: 0 when every job is placed, 3 when some would wait, 1 on an error.
    """
    answer = app.planning.plan(read_records(path, fmt, field="jobs", key="jobs"))
    if output == "json":
        emit_json(answer.as_dict())
    else:
        click.echo(answer.text())
    if answer.waiting:
        click.get_current_context().exit(SOME_WAIT)
