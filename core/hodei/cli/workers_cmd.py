"""``hodei workers``: provision, release, list and show workers."""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, fields, output_option, table
from hodei.cli.select_cmd import NOTHING_FITS, read_requirements, requirements_options
from hodei.domain import WorkerState

if TYPE_CHECKING:
    from hodei.services.views import Worker

T = TypeVar("T")


def _run(call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    import anyio

    return anyio.run(lambda: call(*args, **kwargs))


@click.group()
def workers() -> None:
    """Provision, release, list and show workers."""


def _pairs(values: Any) -> str | None:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) if isinstance(values, dict) and values else None


def _spec(requirements: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The job's own worker spec, as stored (secret values are stored as ***): only what it set."""
    command = requirements.get("command")
    # A row edited in SQL may hold anything: show it as JSON then, rather than fail.
    argv = shlex.join(command) if isinstance(command, list) and all(isinstance(a, str) for a in command) else command
    shown = [
        ("image", requirements.get("image")), ("command", argv or None),
        ("env", _pairs(requirements.get("env"))), ("secret_env", _pairs(requirements.get("secret_env"))),
        ("labels", _pairs(requirements.get("labels"))), ("timeout_seconds", requirements.get("timeout_seconds")),
    ]
    return [(key, value) for key, value in shown if value is not None]


def _show(worker: Worker, output: str) -> None:
    document = worker.document()
    if output == "json":
        emit_json(document)
        return
    click.echo(fields([
        ("id", document["id"]), ("provider", document["provider"]), ("state", document["state"]),
        ("reason", document["reason"] or None), ("backend_id", document["backend_id"]),
        ("created_at", document["created_at"]), ("updated_at", document["updated_at"]),
        ("ended_at", document["ended_at"]), *_spec(document["requirements"]),
    ]))
    if document["attempts"]:
        click.echo("attempts:")
        for attempt in document["attempts"]:
            reason = f": {attempt['reason']}" if attempt["reason"] else ""
            click.echo(f"  {attempt['provider']}: {attempt['outcome']}{reason} ({attempt['seconds']:.3f}s)")


class Duration(click.ParamType):
    """Seconds, or a number with a unit: 90, 90s, 10m, 2h, 1d."""

    name = "duration"
    _units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
        if match is None:
            self.fail(f"{value!r} is not a duration (90, 90s, 10m, 2h, 1d)", param, ctx)
        return float(match[1]) * self._units[match[2]]


@workers.command()
@requirements_options
@click.option("--wait", "wait", type=Duration(), default="0", show_default=True, metavar="DURATION",
              help="How long to wait in the placement queue for a provider to be free (90s, 10m, 2h); 0: fail at "
                   "once. A job no provider could ever take is refused at once all the same.")
@click.option("--request-id", default="", help="The request's id in the queue (default: made up); "
                                               "`hodei workers cancel ID` cancels it while it waits.")
@output_option
@click.pass_obj
def provision(app: App, path: str | None, fmt: str | None, wait: float, request_id: str, output: str) -> None:
    """Start a worker for a job on the best provider, trying the next ones if it fails.

    The slot is reserved in the database first, so max_workers holds whatever else provisions at
    the same time. With --wait, a job that fits nowhere now (providers full, unhealthy, disabled) waits
    its turn (requirements priority, then arrival; see `hodei queue`). Exit status: 0 when a worker runs,
    3 when no provider could take it (within the wait), 1 on an error.
    """
    from hodei.services.workers import NoProviderAvailable

    try:
        worker = _run(app.workers.provision, read_requirements(path, fmt), wait_seconds=wait,
                      request_id=request_id)
    except NoProviderAvailable as exc:
        if output == "json":
            emit_json({"error": "NoProviderAvailable", "message": str(exc),
                       "attempts": [a.as_dict() for a in exc.attempts], "summary": exc.summary})
        else:
            click.echo(f"hodei: {exc}", err=True)
        click.get_current_context().exit(NOTHING_FITS)
    _show(worker, output)


@workers.command()
@click.argument("worker_id")
@click.option("--reason", default="released by an operator", show_default=True, help="Recorded with the worker.")
@output_option
@click.pass_obj
def release(app: App, worker_id: str, reason: str, output: str) -> None:
    """Stop worker WORKER_ID through its provider's plugin and free its slot. Releasing an ended worker
    changes nothing."""
    _show(_run(app.workers.release, worker_id, reason), output)


@workers.command()
@click.argument("request_id")
@output_option
@click.pass_obj
def cancel(app: App, request_id: str, output: str) -> None:
    """Cancel REQUEST_ID, a request waiting in the placement queue (see `hodei queue`): its client is
    answered that it was cancelled (exit 3)."""
    _run(app.workers.cancel, request_id)
    if output == "json":
        emit_json({"cancelled": request_id})
    else:
        click.echo(f"cancelled {request_id}")


@click.command("queue")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True,
              help="At most this many, the first in the queue (read a page of 1000 at a time).")
@output_option
@click.pass_obj
def queue(app: App, limit: int, output: str) -> None:
    """The requests waiting for a provider, in the order they will be placed (priority, then arrival), with
    why each waits."""
    entries = _run(app.workers.waiting, limit)
    now = datetime.now(UTC)
    if output == "json":
        emit_json([{"position": e.position, "id": e.id, "priority": e.priority,
                    "enqueued_at": e.enqueued_at.isoformat(), "deadline": e.deadline.isoformat(),
                    "waits_at": e.daemon, "reasons": e.reasons} for e in entries])
        return
    if not entries:
        click.echo("no request waits")
        return
    click.echo(table(["POSITION", "ID", "PRIORITY", "AGE", "LEFT", "WAITS AT", "WHY IT WAITS"], [
        [e.position, e.id, e.priority, _age((now - e.enqueued_at).total_seconds()),
         _age((e.deadline - now).total_seconds()), e.daemon, e.reasons] for e in entries]))


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


@workers.command("list")
@click.option("--provider", help="Only this provider's workers (name or id).")
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in WorkerState]),
              help="Only these states; repeatable.")
@click.option("--all", "everything", is_flag=True, help="Also ended workers (TERMINATED, FAILED).")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True,
              help="At most this many, newest first (read a page of up to 1000 at a time).")
@output_option
@click.pass_obj
def list_(app: App, provider: str | None, states: tuple[str, ...], everything: bool, limit: int, output: str) -> None:
    """Workers, newest first: by default those holding a slot (PROVISIONING, RUNNING, RELEASING)."""
    found = _run(app.workers.find, provider=provider, states=list(states), everything=everything, limit=limit)
    if output == "json":
        emit_json([w.document() for w in found])
        return
    if not found:
        click.echo("no workers")
        return
    click.echo(table(["ID", "PROVIDER", "STATE", "CREATED", "REASON"],
                     [[w.id, w.provider_name, w.state.value, w.created_at.isoformat(timespec="seconds"),
                       w.reason or None] for w in found]))


@workers.command()
@click.argument("worker_id")
@output_option
@click.pass_obj
def show(app: App, worker_id: str, output: str) -> None:
    """Show one worker, with the providers tried for it and why each failed."""
    _show(_run(app.workers.get, worker_id), output)
