"""Log lines for people (a terminal) or for machines (one JSON object per line), with the trace id.

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``trace_id`` and
``span_id`` while a span is current (the ids OpenTelemetry exports, as 32 and 16 hex digits),
``exception`` with the traceback when there is one, and any ``extra=`` fields the call passed.
Nothing else from the record: the message is what the text format would print, and Hodei's
messages never hold secrets (provider configs are masked before they are logged).

This module imports nothing heavy: every command configures logging, and OpenTelemetry is looked at
only if something else already imported it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from hodei.redaction import HELD_SECRETS, scrub, shorten

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
FORMATS = ("auto", "json", "text")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def current_trace_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span as hex, or ``None`` when there is none."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = current_trace_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        return json.dumps(line, ensure_ascii=False, default=str)


def wants_json(log_format: str, stream: TextIO) -> bool:
    if log_format == "json":
        return True
    if log_format == "text":
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def formatter_for(log_format: str, stream: TextIO) -> logging.Formatter:
    return JsonFormatter() if wants_json(log_format, stream) else logging.Formatter(TEXT_FORMAT)


class Scrubbed(logging.Filter):
    """Whatever a message quotes (a URL someone typed, a plugin's error, a library's request body), no
    credential, no secret of a call in flight and no megabytes reach the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = shorten(scrub(HELD_SECRETS.mask(message)))
        if safe != message:
            record.msg, record.args = safe, None
        return True


class _MaskingHandler(logging.StreamHandler[TextIO]):
    """Masks the secrets of the calls in flight in the line as written: after JSON escaping, whatever a
    library logged (a request body, a repr, its own escapes), in any encoding it may have used."""

    def format(self, record: logging.LogRecord) -> str:
        return HELD_SECRETS.mask(super().format(record))


def make_handler(log_format: str = "auto", stream: TextIO | None = None) -> logging.Handler:
    """A handler on standard error (or ``stream``) in ``log_format``: auto (JSON unless a terminal), json, text."""
    stream = stream if stream is not None else sys.stderr
    handler = _MaskingHandler(stream)
    handler.setFormatter(formatter_for(log_format, stream))
    handler.addFilter(Scrubbed())
    handler._hodei = True  # type: ignore[attr-defined]  # ours, so set_format may change it
    return handler


def set_format(log_format: str) -> None:
    """Switch the handlers :func:`make_handler` installed on the root logger to ``log_format``."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_hodei", False) and isinstance(handler, logging.StreamHandler):
            handler.setFormatter(formatter_for(log_format, handler.stream))
