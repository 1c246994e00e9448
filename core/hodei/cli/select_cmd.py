"""``hodei select`` and ``hodei explain``: selection as a dry run on the current database state."""

from __future__ import annotations

from typing import Any

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, output_option
from hodei.documents import FORMATS, read_document

NOTHING_FITS = 3


def read_requirements(path: str | None, fmt: str | None) -> Any:
    """The job's requirements document (checked by the selection service that takes it)."""
    if path is None:
        return {}
    return read_document(path, fmt, field="requirements")


def requirements_options(func: Any) -> Any:
    func = click.option("--format", "fmt", type=click.Choice(FORMATS),
                        help="The requirements' format, when the file name does not say (standard input "
                             "is sniffed: a TOML table or key = value is TOML, { or [ JSON, else YAML).")(func)
    return click.option("-r", "--requirements", "path", metavar="FILE",
                        help="The job's requirements: a JSON (comments allowed), TOML or YAML object (cpu, memory, gpu, "
                             "required_labels, required_annotations, preferred_region, allowed_regions); "
                             "- reads standard input. Without it, a job that needs nothing.")(func)


@click.command("select")
@requirements_options
@output_option
@click.pass_obj
def select(app: App, path: str | None, fmt: str | None, output: str) -> None:
    """Show which provider a job would get, and why: a dry run, nothing is provisioned.

    Prints the region tier used, the ranking within it and, for every provider left out, the
    filters that excluded it. Exit status: 0 when a provider was selected, 3 when none fits,
    1 on an error.
    """
    report = app.selection.select(read_requirements(path, fmt))
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
