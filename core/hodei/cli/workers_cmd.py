"""``hodei workers``: provision, release, list and show workers."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable, Mapping
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


@workers.command()
@requirements_options
@output_option
@click.pass_obj
def provision(app: App, path: str | None, fmt: str | None, output: str) -> None:
    """Start a worker for a job on the best provider, trying the next ones if it fails.

    The slot is reserved in the database first, so max_workers holds whatever else provisions at
    the same time. Exit status: 0 when a worker runs, 3 when no provider could take it, 1 on an error.
    """
    from hodei.services.workers import NoProviderAvailable

    try:
        worker = _run(app.workers.provision, read_requirements(path, fmt))
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
