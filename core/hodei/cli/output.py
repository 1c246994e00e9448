"""Printing results as a table an operator reads, or as JSON a script reads."""

from __future__ import annotations

import json
import re
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


# What would make one cell print as more than itself: line breaks, escape sequences, bidirectional
# overrides. New input holding them is refused; a row written in SQL may still, so they are shown escaped.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(value: Any) -> str:
    """``value`` as one line of text, every control and bidirectional character shown as ``\\uXXXX``."""
    text = "-" if value is None else str(value)
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[printable(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """``key: value`` lines, aligned, for one object."""
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k + ':':<{width + 1}} {printable(v)}" for k, v in pairs)
