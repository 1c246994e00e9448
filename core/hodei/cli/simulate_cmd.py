"""``hodei simulate``: a trace replayed in virtual time on today's fleet or on fleets from files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

from hodei.cli.app import App
from hodei.cli.output import emit_json, output_option
from hodei.documents import RECORD_FORMATS, read_document, read_records
from hodei.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from hodei.plugins import HodeiPluginManager
    from hodei.services.local import SelectionChain


def _new_file(path: str, field: str) -> Path:
    target = Path(path)
    if target.exists():
        raise InvalidInput(Problem(field, f"{path} exists already; give a new file name (nothing was written)"))
    return target


def _write(path: Path, text: str, field: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(Problem(field, f"cannot write {path}: {exc.strerror or exc}")) from None


def chain_plugins(app: App) -> HodeiPluginManager:
    from hodei.services import simulation

    return simulation.simulation_plugins(app.settings)


def app_chain(app: App) -> SelectionChain:
    from hodei.services.local import selection_chain

    return selection_chain(app.settings, chain_plugins(app))


@click.command("simulate")
@click.option("--trace", "trace_path", required=True, metavar="TRACE",
              help="The trace: one record a line (JSON Lines) or a JSON/YAML list or TOML [[trace]] tables. A job: "
                   '{"at": seconds, "requirements": {...}, "duration": seconds, "wait": seconds}; a provider '
                   'event: {"at": seconds, "provider": NAME, "health" | "status" | "max_workers": ...}.')
@click.option("--format", "fmt", type=click.Choice(RECORD_FORMATS), help="The trace's format, when its name does not say.")
@click.option("--fleet", "fleets", multiple=True, metavar="FILE",
              help="A fleet to simulate: providers as `hodei providers apply -f` takes them (their "
                   "config.capabilities say what one worker gets). Repeat to compare fleets side by side. "
                   "Without it: today's fleet from the database, none of its slots taken.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Orders jobs arriving at the same instant with the same priority (and --generate's draws): "
                   "the same seed, the same result.")
@click.option("--wait", default=3600.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds a job may wait for a slot when its record gives no wait; then it expires.")
@click.option("--chart", "chart", metavar="OUT.svg",
              help="Write utilization and queue depth over time, one line per fleet, as an SVG file.")
@click.option("--generate", "jobs", type=click.IntRange(min=1, max=1_000_000), metavar="JOBS", default=None,
              help="Instead of simulating: write a realistic trace of JOBS jobs to TRACE and a fleet to the "
                   "(one) --fleet FILE, drawn from --seed; then run the same command without --generate.")
@output_option
@click.pass_obj
def simulate(app: App, trace_path: str, fmt: str | None, fleets: tuple[str, ...], seed: int, wait: float,
             chart: str | None, jobs: int | None, output: str) -> None:
    """Replay a trace in virtual time through the selection chain and the placement queue's order.

    Jobs arrive, wait in the queue in its order (priority, then arrival), are placed by the same chain
    and capacity rules as the daemon, run for their duration and free their slot; provider events
    change health, status or max_workers on the way. Prints, per fleet side by side: jobs placed,
    refused (no provider could ever take them) and expired, wait percentiles, mean utilization, the
    peak queue depth, and the placements per provider. Nothing is provisioned and, with --fleet, the
    database is not read.
    """
    from hodei.services import simulation

    if jobs is not None:
        if len(fleets) != 1:
            raise InvalidInput(Problem("fleet", "--generate writes one fleet: give one --fleet FILE to write it to"))
        trace_file, fleet_file = _new_file(trace_path, "trace"), _new_file(fleets[0], "fleet")
        records, fleet = simulation.generate(jobs, seed, with_priority=simulation.knows_priority(app_chain(app)))
        _write(trace_file, "".join(json.dumps(r) + "\n" for r in records), "trace")
        _write(fleet_file, yaml.safe_dump(fleet, sort_keys=False), "fleet")
        click.echo(f"wrote {len(records):,} records to {trace_path} and {len(fleet)} providers to {fleets[0]}")
        return
    if chart and not Path(chart).absolute().parent.is_dir():  # said before a long simulation, not after it
        raise InvalidInput(Problem("chart", f"cannot write {chart}: its folder does not exist"))
    chain = app_chain(app)
    pm = chain_plugins(app)
    records = read_records(trace_path, fmt, field="trace", key="trace")
    if fleets:
        names = [Path(f).stem for f in fleets]
        names = [name if names.count(name) == 1 else f"{name}#{number}" for number, name in enumerate(names, 1)]
        chosen = [simulation.fleet_from_documents(name, read_document(f, field="fleet"), pm)
                  for name, f in zip(names, fleets, strict=True)]
    else:
        chosen = [simulation.fleet_from_selector("today", app.local_selection.selector())]
    report = simulation.run(records, chosen, chain, wait=wait, seed=seed)
    if chart:
        _write(Path(chart), report.svg(), "chart")
    if output == "json":
        emit_json(report.as_dict())
    else:
        click.echo(report.text())
        if chart:
            click.echo(f"\nchart: {chart}")
