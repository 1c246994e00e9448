"""The job's own worker from the command line: ``--image``, ``--command``, ``--env``, ``--secret-env``,
``--label`` and ``--timeout``, merged over the requirements file (a flag wins over the file).

A secret variable's value is never written on the command line (where ``ps`` and shell history
show it): ``--secret-env NAME`` takes NAME's value from the environment ``hodei`` runs in.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import Any

import click

_META_KEY = "hodei.worker_spec"


def _pairs(option: str, values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key] = text
    return pairs


def _secret_values(names: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for name in names:
        if "=" in name:
            raise click.BadParameter(f"give only the variable's name ({name.partition('=')[0]}): its value is read "
                                     "from this shell's environment, so it never appears on a command line",
                                     param_hint="--secret-env")
        if name not in os.environ:
            raise click.BadParameter(f"{name} is not set in the environment hodei runs in (export it first)",
                                     param_hint="--secret-env")
        values[name] = os.environ[name]
    return values


def _command(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise click.BadParameter(f"cannot split {value!r} as a shell would: {exc}", param_hint="--command") from None


_CONVERT: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "image": ("image", str),
    "command": ("command", _command),
    "env": ("env", lambda values: _pairs("--env", values)),
    "secret_env": ("secret_env", _secret_values),
    "label": ("labels", lambda values: _pairs("--label", values)),
    "timeout": ("timeout_seconds", int),
}


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is None or value == ():
        return
    key, convert = _CONVERT[str(param.name)]
    ctx.meta.setdefault(_META_KEY, {})[key] = convert(value)


def worker_spec_options(func: Any) -> Any:
    """Options that fill the worker spec of the requirements; ``merged`` applies them."""
    options = [
        click.option("--timeout", type=click.IntRange(min=1), metavar="SECONDS", expose_value=False,
                     callback=_remember, help="The worker's own lifetime (timeout_seconds)."),
        click.option("--label", multiple=True, metavar="KEY=VALUE", expose_value=False, callback=_remember,
                     help="A label for the worker itself; repeatable."),
        click.option("--secret-env", multiple=True, metavar="NAME", expose_value=False, callback=_remember,
                     help="A secret variable for the worker, its value taken from NAME in hodei's own "
                          "environment; never shown or logged. Repeatable."),
        click.option("--env", multiple=True, metavar="NAME=VALUE", expose_value=False, callback=_remember,
                     help="An environment variable for the worker; repeatable."),
        click.option("--command", metavar="COMMAND", expose_value=False, callback=_remember,
                     help="The worker's command, split as a shell would ('python job.py --fast')."),
        click.option("--image", metavar="IMAGE", expose_value=False, callback=_remember,
                     help="The worker's image (one the provider's allowed_images accept); default: the "
                          "provider's default_image."),
    ]
    for option in options:
        func = option(func)
    return func


def merged(document: Any) -> Any:
    """``document`` with the flags given to the current command over it (maps merged key by key)."""
    ctx = click.get_current_context(silent=True)
    flags = ctx.meta.get(_META_KEY) if ctx is not None else None
    if not flags or not isinstance(document, dict):
        return document
    result = dict(document)
    for key, value in flags.items():
        current = result.get(key)
        result[key] = {**current, **value} if isinstance(value, dict) and isinstance(current, dict) else value
    return result
