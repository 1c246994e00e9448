"""Printing results as a table an operator reads, or as JSON a script reads."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

OUTPUT_FORMATS = ("table", "json")


def _remember(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # Shared with the error handler, so a failure is reported in the format asked for.
    ctx.meta["hodei.output"] = value
    return value


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
                        callback=_remember, help="table for people, json for scripts.")(func)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """``key: value`` lines, aligned, for one object."""
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k + ':':<{width + 1}} {'-' if v is None else v}" for k, v in pairs)
