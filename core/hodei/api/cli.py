"""``hodei --server ADDRESS``: which commands go through the daemon's API, and ``select``/``explain``
answered by the daemon's live selector with the same output as the local ones."""

from __future__ import annotations

from typing import Any

import click

from hodei.cli.output import emit_json

# Commands with an API call. The others (db, config, serve, plugins, providers check and apply, ...)
# work on the database (or the machine) directly, and say so when --server is given.
REMOTE = {
    ("providers", "list"), ("providers", "show"), ("providers", "add"), ("providers", "update"),
    ("providers", "delete"), ("providers", "enable"), ("providers", "disable"), ("providers", "maintenance"),
    ("providers", "history"), ("select",), ("explain",),
    ("workers", "provision"), ("workers", "release"), ("workers", "list"), ("workers", "show"),
}
_GROUPS = {"providers", "workers"}


def command_path(args: list[str]) -> tuple[str, ...]:
    """The command an argument list names (``providers check``), from the root's remaining arguments."""
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return ()
    return tuple(words[:2]) if words[0] in _GROUPS and len(words) > 1 else (words[0],)


def goes_remote(path: tuple[str, ...]) -> bool | None:
    """True: through the API; False: on the database directly; None: a group's help, no matter."""
    if path in REMOTE:
        return True
    if path and path[0] in _GROUPS and len(path) == 1:
        return None
    return False if path else None


def direct_note(path: tuple[str, ...]) -> str:
    return (f"hodei: note: `hodei {' '.join(path)}` has no API call: it works on the database directly "
            "(--database-url or hodei.toml's [database]), not through --server")


def _requirements(app: Any, path: str | None, fmt: str | None) -> Any:
    from hodei.cli.select_cmd import read_requirements

    return read_requirements(app, path, fmt)


def _select(app: Any, path: str | None, fmt: str | None, output: str) -> None:
    from hodei.cli.select_cmd import NOTHING_FITS

    report = app.selection.report(_requirements(app, path, fmt))
    if output == "json":
        emit_json(report.as_dict())
    else:
        click.echo(report.text())
    if report.selected is None:
        click.get_current_context().exit(NOTHING_FITS)


def _explain(app: Any, name: str, path: str | None, fmt: str | None, output: str) -> None:
    explanation = app.selection.explain(name, _requirements(app, path, fmt))
    if output == "json":
        emit_json(explanation.as_dict())
    else:
        click.echo(explanation.text())


def remote_command(command: click.Command) -> click.Command:
    """``select`` or ``explain`` with the same options, help and output, answered by the daemon."""
    callback = {"select": _select, "explain": _explain}[str(command.name)]
    return click.Command(command.name, params=command.params, help=command.help, short_help=command.short_help,
                         epilog=command.epilog, context_settings=command.context_settings,
                         callback=click.pass_obj(callback))
