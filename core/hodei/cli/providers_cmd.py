"""``hodei providers``: the provider_configs table, from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from hodei.cli.app import App
from hodei.cli.output import emit_json, fields, output_option, table
from hodei.documents import FORMATS, parse_text, provider_list, read_document
from hodei.domain import ProviderStatus
from hodei.errors import InvalidInput, Problem
from hodei.provider_change import ProviderChange

if TYPE_CHECKING:
    from hodei.services.views import ProviderView


@click.group()
def providers() -> None:
    """List, add, change and remove providers."""


# -- rendering --------------------------------------------------------------------------------


def _regions(doc: dict[str, Any]) -> str | None:
    preferred, allowed = doc["preferred_region"], doc["allowed_regions"]
    rest = [r for r in allowed if r != preferred] if isinstance(allowed, list) else [str(allowed)]
    parts = ([f"{preferred}*"] if preferred else []) + [str(r) for r in rest]
    return ",".join(parts) or None


def _pairs(mapping: Any) -> str | None:
    if not isinstance(mapping, dict):
        return str(mapping)
    return ",".join(f"{k}={v}" for k, v in mapping.items()) or None


def _health(doc: dict[str, Any]) -> str:
    state = doc["state"]
    return state["health"] or "never checked"


def _show_list(items: Sequence[ProviderView], output: str) -> None:
    docs = [p.as_json() for p in items]
    if output == "json":
        emit_json(docs)
        return
    if not docs:
        click.echo("no providers (add one with `hodei providers add` or `hodei providers apply -f FILE`)")
        return
    click.echo(table(
        ["NAME", "TYPE", "STATUS", "HEALTH", "PRIORITY", "WORKERS", "REGIONS", "LABELS", "VALID"],
        [[d["name"], d["provider_type"], d["status"], _health(d), d["priority"],
          f"{d['state']['active_workers'] + d['state']['reserved_workers']}/{d['max_workers']}", _regions(d),
          _pairs(d["required_labels"]), "yes" if d["valid"] else "NO: " + "; ".join(
              f"{p['field']}: {p['reason']}" if p["field"] else p["reason"] for p in d["problems"])]
         for d in docs]))


def _show_one(item: ProviderView, output: str) -> None:
    doc = item.as_json()
    if output == "json":
        emit_json(doc)
        return
    click.echo(fields([
        ("name", doc["name"]), ("id", doc["id"]), ("provider_type", doc["provider_type"]),
        ("status", doc["status"]), ("priority", doc["priority"]), ("max_workers", doc["max_workers"]),
        ("preferred_region", doc["preferred_region"]),
        ("allowed_regions", ", ".join(map(str, doc["allowed_regions"])) or None),
        ("required_labels", _pairs(doc["required_labels"])), ("annotations", _pairs(doc["annotations"])),
        ("created_at", doc["created_at"]), ("updated_at", doc["updated_at"]),
        ("valid", "yes" if doc["valid"] else "NO"),
        ("health", _health(doc) + (f": {doc['state']['health_reason']}" if doc["state"]["health_reason"] else "")),
        ("checked_at", doc["state"]["checked_at"]),
        ("workers", f"{doc['state']['active_workers']} active, {doc['state']['reserved_workers']} reserved, "
                    f"{doc['max_workers']} at most"),
        ("cooldown", _cooldown(item)),
    ]))
    for problem in doc["problems"]:
        click.echo(f"  {problem['field']}: {problem['reason']}" if problem["field"] else f"  {problem['reason']}")
    click.echo("config:")
    click.echo("  " + json.dumps(doc["config"], indent=2).replace("\n", "\n  "))


def _cooldown(item: ProviderView) -> str:
    state = item.state
    failures = f"{state.provision_failures} failed provisions in a row"
    error = f"; the last: {state.last_provision_error}" if state.last_provision_error else ""
    if state.cooldown_until is not None:
        end = state.cooldown_until.isoformat(timespec="seconds")
        if state.cooldown_until > datetime.now(UTC):
            return f"until {end} ({failures}{error}); skipped by selection until then"
        return f"ended {end} ({failures}{error}); the next provision decides"
    return f"none ({failures}{error})" if state.provision_failures else "none"


# -- parsing options --------------------------------------------------------------------------


def _json_object(option: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = parse_text(text, "json", option, field=option.removeprefix("--"))
    if not isinstance(value, dict):
        raise InvalidInput(Problem(option.removeprefix("--"), "must be a JSON object"))
    return value


def _config_from(config: str | None, config_file: str | None) -> dict[str, Any] | None:
    if config is not None and config_file is not None:
        raise click.UsageError("give --config or --config-file, not both")
    if config_file is not None:
        value = read_document(config_file)
        if not isinstance(value, dict):
            raise InvalidInput(Problem("config", f"{config_file} must hold one object"))
        return value
    return _json_object("--config", config)


def _key_values(option: str, items: Sequence[str]) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:  # the shape of the option is wrong: a usage error (exit 2), like a bad --status
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=f"'{option}'")
        result[key] = value
    return result


def _common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--config", "config_json", metavar="JSON",
                     help="The provider type's config object, e.g. '{\"namespace\": \"jobs\"}'."),
        click.option("--config-file", metavar="FILE", help="Read the config object from a JSON, TOML or YAML file."),
        click.option("--priority", type=str, help="Higher is preferred when selecting (an integer)."),
        click.option("--max-workers", type=str, help="Most workers at once on this provider (at least 1)."),
        click.option("--preferred-region", metavar="REGION", help="The provider's preferred region."),
        click.option("--allowed-region", "allowed_regions", multiple=True, metavar="REGION",
                     help="A region the provider can run jobs in; repeat for several (replaces the list)."),
        click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
                     help="A label of the provider (required_labels); repeat for several."),
        click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE",
                     help="An annotation (compliance, tier, ...); repeat for several."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _integer(option: str, value: str | None) -> int | str | None:
    # Parsed here so "1.5" or "ten" are reported like any other invalid field, naming it.
    if value is None:
        return None
    try:
        return int(value, 10)
    except ValueError:
        return value


# -- commands ---------------------------------------------------------------------------------


@providers.command("list")
@click.option("--type", "provider_type", help="Only providers of this type.")
@click.option("--status", type=click.Choice([s.value for s in ProviderStatus]), help="Only providers in this status.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (the first by name); default: every one, "
              "fetched a page at a time.")
@output_option
@click.pass_obj
def list_(app: App, provider_type: str | None, status: str | None, limit: int | None, output: str) -> None:
    """List providers; rows that are not valid (e.g. edited in SQL) are marked with the reason."""
    _show_list(app.providers.find(provider_type=provider_type, status=status, limit=limit), output)


@providers.command()
@click.argument("name")
@output_option
@click.pass_obj
def show(app: App, name: str, output: str) -> None:
    """Show one provider (by name or id). Secrets in its config are shown as ***."""
    _show_one(app.providers.get(name), output)


@providers.command()
@click.argument("name")
@click.option("--type", "provider_type", required=True, help="The provider type (see `hodei plugins`).")
@click.option("--status", type=click.Choice([s.value for s in ProviderStatus]), default="ACTIVE", show_default=True)
@_common_options
@output_option
@click.pass_obj
def add(app: App, name: str, provider_type: str, status: str, config_json: str | None, config_file: str | None,
        priority: str | None, max_workers: str | None, preferred_region: str | None,
        allowed_regions: tuple[str, ...], labels: tuple[str, ...], annotations: tuple[str, ...],
        output: str) -> None:
    """Add a provider called NAME. Its config is checked by its type's plugin first."""
    document: dict[str, Any] = {"name": name, "provider_type": provider_type, "status": status,
                                "config": _config_from(config_json, config_file) or {}}
    for key, value in (("priority", _integer("priority", priority)),
                       ("max_workers", _integer("max_workers", max_workers)),
                       ("preferred_region", preferred_region)):
        if value is not None:
            document[key] = value
    document["allowed_regions"] = list(allowed_regions)
    document["required_labels"] = _key_values("--label", labels)
    document["annotations"] = _key_values("--annotation", annotations)
    created = app.providers.create(document)
    if output == "json":
        emit_json(created.as_json())
    else:
        click.echo(f"added provider {created.name!r} ({created.document['provider_type']}, id {created.id})")


@providers.command()
@click.argument("name")
@click.option("--rename", metavar="NEW_NAME", help="Give the provider a new name.")
@click.option("--merge-config", metavar="JSON",
              help="Merge these keys into the config, like SQL's config || '{...}'::jsonb.")
@click.option("--no-preferred-region", is_flag=True, help="Clear the preferred region.")
@click.option("--no-allowed-regions", is_flag=True, help="Clear the allowed regions (run anywhere).")
@click.option("--remove-label", "remove_labels", multiple=True, metavar="KEY", help="Remove a label; repeatable.")
@click.option("--remove-annotation", "remove_annotations", multiple=True, metavar="KEY",
              help="Remove an annotation; repeatable.")
@_common_options
@output_option
@click.pass_obj
def update(app: App, name: str, rename: str | None, merge_config: str | None, no_preferred_region: bool,
           no_allowed_regions: bool, remove_labels: tuple[str, ...], remove_annotations: tuple[str, ...],
           config_json: str | None, config_file: str | None, priority: str | None, max_workers: str | None,
           preferred_region: str | None, allowed_regions: tuple[str, ...], labels: tuple[str, ...],
           annotations: tuple[str, ...], output: str) -> None:
    """Change provider NAME. Only the options given change; the result is checked before it is saved.

    --config replaces the whole config object; --merge-config changes only the keys it names.
    Labels and annotations given are added or replaced; --remove-label deletes one. The change is made
    to the provider as it is when it is written, so concurrent updates of other labels are all kept.
    """
    if preferred_region is not None and no_preferred_region:
        raise click.UsageError("give --preferred-region or --no-preferred-region, not both")
    if allowed_regions and no_allowed_regions:
        raise click.UsageError("give --allowed-region or --no-allowed-regions, not both")
    fields: dict[str, Any] = {}
    new_config = _config_from(config_json, config_file)
    if new_config is not None:
        fields["config"] = new_config
    for key, value in (("name", rename), ("priority", _integer("priority", priority)),
                       ("max_workers", _integer("max_workers", max_workers)),
                       ("preferred_region", preferred_region)):
        if value is not None:
            fields[key] = value
    if no_preferred_region:
        fields["preferred_region"] = None
    if allowed_regions or no_allowed_regions:
        fields["allowed_regions"] = list(allowed_regions)
    change = ProviderChange(
        fields=fields, merge_config=_json_object("--merge-config", merge_config),
        labels=_key_values("--label", labels), remove_labels=remove_labels,
        annotations=_key_values("--annotation", annotations), remove_annotations=remove_annotations)
    if not change:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    updated = app.providers.update(name, change)
    if output == "json":
        emit_json(updated.as_json())
    else:
        click.echo(f"updated provider {updated.name!r}")


@providers.command()
@click.argument("name")
@output_option
@click.pass_obj
def delete(app: App, name: str, output: str) -> None:
    """Remove provider NAME."""
    removed = app.providers.delete(name)
    if output == "json":
        emit_json(removed.as_json())
    else:
        click.echo(f"deleted provider {removed.name!r}")


def _status_command(status: ProviderStatus, verb: str, help_text: str) -> click.Command:
    @click.command(verb, help=help_text)
    @click.argument("name")
    @click.option("--reason", metavar="TEXT", help="Why, for the provider's history.")
    @output_option
    @click.pass_obj
    def command(app: App, name: str, reason: str | None, output: str) -> None:
        cause = f"hodei providers {verb}" + (f": {reason}" if reason else "")
        changed = app.providers.set_status(name, status.value, cause)
        if output == "json":
            emit_json(changed.as_json())
        else:
            click.echo(f"provider {changed.name!r} is {changed.document['status']}")

    return command


providers.add_command(_status_command(ProviderStatus.ACTIVE, "enable", "Set provider NAME to ACTIVE."))
providers.add_command(_status_command(ProviderStatus.DISABLED, "disable",
                                      "Set provider NAME to DISABLED: selection skips it."))
providers.add_command(_status_command(ProviderStatus.MAINTENANCE, "maintenance",
                                      "Set provider NAME to MAINTENANCE: selection skips it."))


@providers.command("reset-cooldown")
@click.argument("name")
@output_option
@click.pass_obj
def reset_cooldown(app: App, name: str, output: str) -> None:
    """End provider NAME's cooldown now: selection tries it again at once.

    A provider whose provisions failed `[cooldown] after_failures` times in a row is skipped until its
    cooldown ends (see `hodei providers show NAME`); this ends it early, after the cause is fixed."""
    reset = app.providers.reset_cooldown(name)
    if output == "json":
        emit_json(reset.provider.as_json())
    else:
        click.echo(reset.message())


def _describe(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


@providers.command()
@click.option("-f", "--file", "path", required=True, metavar="FILE",
              help="Providers as a TOML ([[providers]]), YAML or JSON (comments allowed) list; - reads standard "
                   "input, its format sniffed (a TOML table or key = value is TOML, { or [ JSON, else YAML).")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="The file's format, when its name (or the sniffing of standard input) does not say.")
@click.option("--dry-run", is_flag=True, help="Show what would change, and change nothing.")
@click.option("--prune", is_flag=True,
              help="Also delete every provider FILE does not name (try it with --dry-run first).")
@output_option
@click.pass_obj
def apply(app: App, path: str, fmt: str | None, dry_run: bool, prune: bool, output: str) -> None:
    """Create or update providers from FILE, matched by name. Running it twice changes nothing.

    Each entry is a provider's whole desired state: a field left out takes its default, except
    status, which is kept as the operator or the health monitor set it. All entries are checked
    first; if any is invalid, nothing is applied. Providers FILE does not name are left alone
    unless --prune is given. A `providers show` or `list -o json` export can be applied as it is:
    a secret shown as *** keeps the secret stored.
    """
    documents = provider_list(read_document(path, fmt))
    changes = app.providers.apply(documents, dry_run=dry_run, prune=prune)
    if output == "json":
        emit_json({"dry_run": dry_run, "changes": [
            {"name": c.name, "action": c.action,
             "fields": {k: {"from": b, "to": a} for k, (b, a) in c.fields.items()}} for c in changes]})
        return
    would = "would " if dry_run else ""
    for change in changes:
        if change.action == "unchanged":
            click.echo(f"unchanged {change.name}")
            continue
        click.echo(f"{would}{change.action} {change.name}" if dry_run else f"{change.action}d {change.name}")
        if change.action == "update":
            for key, (before, after) in change.fields.items():
                click.echo(f"    {key}: {_describe(before)} -> {_describe(after)}")
    counts = {a: sum(c.action == a for c in changes) for a in ("create", "update", "unchanged", "delete")}
    pruned = (f", {counts['delete']} to delete" if dry_run else f", {counts['delete']} deleted") if prune else ""
    click.echo(f"{'dry run: ' if dry_run else ''}{counts['create']} to create, {counts['update']} to update, "
               f"{counts['unchanged']} unchanged{pruned}" if dry_run else
               f"{counts['create']} created, {counts['update']} updated, {counts['unchanged']} unchanged{pruned}")


@providers.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True, max=300), metavar="SECONDS",
              help="How long each check may take, at most 300 [default: [health] timeout_seconds of hodei.toml, "
                   "or of the daemon's with --server].")
@output_option
@click.pass_obj
def check(app: App, names: tuple[str, ...], timeout: float | None, output: str) -> None:
    """Check providers' health and capacity now, and record what they answer.

    Checks every valid provider, or only those NAMEd, at once, each within the timeout. Selection
    reads the recorded health and worker counts (the daemon keeps them fresh on its own). With
    --server the daemon runs the checks, with its plugins and credentials, and records them.
    """
    report = app.providers.check(names, timeout)
    if output == "json":
        emit_json(report.document())
        return
    if not report.results:
        click.echo("no valid providers to check")
        return
    click.echo(table(["NAME", "HEALTH", "TOOK", "WORKERS", "REASON"], [
        [r.name, r.health, f"{r.duration_seconds:.2f}s",
         f"{r.active_workers}/{r.max_workers}" if r.active_workers is not None else None,
         r.reason or r.capacity_error or None] for r in report.results]))
    for name, problems in report.skipped:
        click.echo(f"skipped {name}: not valid ({'; '.join(map(str, problems))})")


@providers.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="How many changes (read a page of up to 1000 at a time).")
@output_option
@click.pass_obj
def history(app: App, name: str, limit: int, output: str) -> None:
    """Changes of provider NAME (or of a deleted provider, by its id), newest first: of its status and its
    health (FROM, TO), its creation (TO: its type), its deletion (FROM: its type), its cooldowns (started:
    TO `until ...`; ended: FROM `until ...`, TO `ended`) and every other change (KIND changed, TO: the
    fields changed, `config.KEY` for a config's keys, never their values), each with who or what made it
    (ACTOR: `cli USER@HOST`, `api PEER (token ...)`, `health monitor on HOST (...)`, `sql (...)` for an
    edit made in SQL that a daemon saw; `unknown` before Hodei recorded actors) and why (CAUSE)."""
    documents = [entry.document() for entry in app.providers.history(name, limit)]
    if output == "json":
        emit_json(documents)
        return
    if not documents:
        click.echo(f"no changes recorded for {name!r}")
        return
    click.echo(table(["AT", "KIND", "FROM", "TO", "ACTOR", "CAUSE"],
                     [[d["at"], d["kind"], d["from"], d["to"], d["actor"], d["cause"] or None] for d in documents]))
