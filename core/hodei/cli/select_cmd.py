"""``hodei select`` and ``hodei explain``: selection as a dry run on the current database state."""

from __future__ import annotations

from typing import Any

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, output_option
from hodei.cli.spec_options import merged, worker_spec_options
from hodei.documents import FORMATS, read_document
from hodei.services.selection import SHOWN

NOTHING_FITS = 3


def read_requirements(path: str | None, fmt: str | None) -> Any:
    """The job's requirements document (checked by the selection service that takes it)."""
    if path is None:
        return merged({})
    return merged(read_document(path, fmt, field="requirements"))


def requirements_options(func: Any) -> Any:
    func = worker_spec_options(func)
    func = click.option("--format", "fmt", type=click.Choice(FORMATS),
                        help="The requirements' format, when the file name does not say (standard input "
                             "is sniffed: a TOML table or key = value is TOML, { or [ JSON, else YAML).")(func)
    return click.option("-r", "--requirements", "path", metavar="FILE",
                        help="The job's requirements: a JSON (comments allowed), TOML or YAML object (cpu, "
                             "memory, gpu, required_labels, required_annotations, preferred_region, "
                             "allowed_regions, and the worker's image, command, env, secret_env, labels, "
                             "timeout_seconds); "
                             "- reads standard input. Without it, a job that needs nothing.")(func)


@click.command("select")
@requirements_options
@click.option("--all", "everything", is_flag=True,
              help=f"List every ranked and every rejected provider (by default the first {SHOWN} of each; "
                   "the summary counts them all).")
@output_option
@click.pass_obj
def select(app: App, path: str | None, fmt: str | None, everything: bool, output: str) -> None:
    """Show which provider a job would get, and why: a dry run, nothing is provisioned.

    Prints the region tier used, the first of the ranking within it and of the providers left out
    (by name) with the filters that excluded them, and a summary counting every rejection by
    filter. Exit status: 0 when a provider was selected, 3 when none fits, 1 on an error.
    """
    report = app.selection.select(read_requirements(path, fmt), everything=everything)
    if output == "json":
        emit_json(report.as_dict())
    else:
        click.echo(report.text())
    if report.selected is None:
        click.get_current_context().exit(NOTHING_FITS)


@click.command()
@click.argument("name")
@requirements_options
@output_option
@click.pass_obj
def explain(app: App, name: str, path: str | None, fmt: str | None, output: str) -> None:
    """Why provider NAME would or would not run a job, and what would make it fit.

    Every filter's verdict on NAME with a hint for each failure, the region tier it falls in,
    and, when it fits but is not chosen, what ranks the winner ahead of it. Exit status: 0 when
    NAME fits the job (chosen or not), 3 when it does not, 1 on an error.
    """
    explanation = app.selection.explain(name, read_requirements(path, fmt))
    document = explanation.as_dict()
    if output == "json":
        emit_json(document)
    else:
        click.echo(explanation.text())
    if not document.get("fits", False):  # a message's false bool may be left out of its dict
        click.get_current_context().exit(NOTHING_FITS)
