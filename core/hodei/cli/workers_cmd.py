"""``hodei workers``: provision, release, list and show workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, fields, output_option, table
from hodei.cli.select_cmd import NOTHING_FITS, read_requirements, requirements_options

if TYPE_CHECKING:
    from hodei.workers import Provisioner, Worker

STATES = ("PROVISIONING", "RUNNING", "RELEASING", "TERMINATED", "FAILED")


@click.group()
def workers() -> None:
    """Provision, release, list and show workers."""


def _provisioner(app: App) -> Provisioner:
    from hodei.selection import Selector
    from hodei.workers import Provisioner, WorkerRecords

    store = app.store
    settings = app.settings.workers

    def provider_of(provider_id: Any) -> Any:
        found = store.get(provider_id)
        return found.to_provider() if found.valid else None

    async def count_failure(provider_id: Any, result: Any) -> None:
        store.record_check(provider_id, result)

    return Provisioner(app.pm, WorkerRecords(store.engine), settings,
                       selector=lambda: Selector.from_store(store, app.chain), on_failure=count_failure,
                       provider_of=provider_of)


def _remote(app: App) -> Any:
    from hodei.api.workers_client import RemoteWorkers

    return RemoteWorkers(app.connection)


def _show(worker: Worker, output: str, attempts: list[dict[str, Any]] | None = None) -> None:
    document = worker.document()
    if output == "json":
        emit_json(document)
        return
    click.echo(fields([
        ("id", document["id"]), ("provider", document["provider"]), ("state", document["state"]),
        ("reason", document["reason"] or None), ("backend_id", document["backend_id"]),
        ("created_at", document["created_at"]), ("updated_at", document["updated_at"]),
        ("ended_at", document["ended_at"]),
    ]))
    tried = attempts if attempts is not None else document["attempts"]
    if tried:
        click.echo("attempts:")
        for attempt in tried:
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
    import anyio

    from hodei.workers import NoProviderAvailable

    job = read_requirements(app, path, fmt)
    try:
        if app.server is not None:
            worker = _remote(app).provision(job if isinstance(job, dict) else job.document())
        else:
            provisioner = _provisioner(app)
            try:
                worker = anyio.run(provisioner.provision, job).worker
            finally:
                provisioner.records.close()
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
    import anyio

    if app.server is not None:
        _show(_remote(app).release(worker_id, reason), output)
        return
    provisioner = _provisioner(app)
    try:
        worker = anyio.run(provisioner.release, worker_id, reason)
    finally:
        provisioner.records.close()
    _show(worker, output)


@workers.command("list")
@click.option("--provider", help="Only this provider's workers (name or id).")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES), help="Only these states; repeatable.")
@click.option("--all", "everything", is_flag=True, help="Also ended workers (TERMINATED, FAILED).")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@output_option
@click.pass_obj
def list_(app: App, provider: str | None, states: tuple[str, ...], everything: bool, limit: int, output: str) -> None:
    """Workers, newest first: by default those holding a slot (PROVISIONING, RUNNING, RELEASING)."""
    from hodei.workers import WorkerRecords, WorkerState

    if app.server is not None:
        _list(_remote(app).list(provider=provider, states=list(states), everything=everything, limit=limit), output)
        return
    provider_id = app.store.get(provider).id if provider else None
    chosen = [WorkerState(s) for s in states] or (
        None if everything else [WorkerState.PROVISIONING, WorkerState.RUNNING, WorkerState.RELEASING])
    records = WorkerRecords(app.store.engine)
    try:
        found = records.list(provider_id=provider_id, states=chosen, limit=limit)
    finally:
        records.close()
    _list(found, output)


def _list(found: list[Worker], output: str) -> None:
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
    from hodei.workers import WorkerRecords

    if app.server is not None:
        _show(_remote(app).get(worker_id), output)
        return
    records = WorkerRecords(app.store.engine)
    try:
        _show(records.get(worker_id), output)
    finally:
        records.close()
