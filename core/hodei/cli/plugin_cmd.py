"""``hodei plugin new``: start a plugin package."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def plugin() -> None:
    """Write plugins for Hodei."""


@plugin.command("new")
@click.argument("name")
@click.option("--kind", type=click.Choice(["provider", "selection"]), default="provider", show_default=True,
              help="A provider type (its hooks: validate, health, capacity, provision, ...) or selection rules "
                   "(a filter and a scoring rule).")
@click.option("--dir", "directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the package (it must not exist, or be empty) [default: ./hodei-NAME].")
def new(name: str, kind: str, directory: Path | None) -> None:
    """Write a pip package for plugin NAME that works as generated.

    NAME is the entry point's name: the provider type, or the selection rules' name. The package
    (hodei-NAME) has pyproject.toml with the entry point, the plugin module with every hook stubbed to
    a working minimal behaviour, tests running Hodei's contract suite, and a README. It passes its own
    tests unchanged: `pip install -e 'DIR[test]'`, then `pytest` in DIR, and `hodei plugins` lists it.
    """
    from hodei import scaffold

    chosen: scaffold.Kind = "selection" if kind == "selection" else "provider"  # click checked the choice
    target = directory if directory is not None else Path(f"hodei-{name}")
    written = scaffold.write(name, chosen, target)
    click.echo(f"wrote {scaffold.Plugin(name, chosen).distribution} ({kind} plugin) in {target}:")
    for path in written:
        click.echo(f"  {path.relative_to(target)}")
    click.echo(f"next: pip install -e '{target}[test]' && (cd {target} && pytest) && hodei plugins")
