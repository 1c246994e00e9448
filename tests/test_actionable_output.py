"""Output a person can act on: a rejection is counted where its cause is, and every command a hint names
pastes into a shell as it is, whatever the provider's name holds."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hodei.hints import command
from hodei.selection.report import Page
from hodei.selection.selector import InvalidRow
from hodei.testing.selection import job, provider, selector, state

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN = {"cpu": None, "memory": None, "gpu": None}


# -- "too small" counts providers that are too small, and no others -------------------------------------------


def test_an_unhealthy_provider_without_a_capacity_report_is_counted_unhealthy_only() -> None:
    chosen = selector([provider("a"), provider("b"), provider("c", capabilities={"cpu": 1})], {
        "a": state(health="Unhealthy", reason="no usable AWS credentials", **UNKNOWN),
        "b": state(),
        # Known to be too small (its config says so) and unhealthy as well: both are true, both count.
        "c": state(health="Unhealthy", reason="engine down", **UNKNOWN),
    })
    report = chosen.report(job(cpu=2, memory=2**30), page=Page(size=None))
    assert report.selected == "b"
    counts = {cause.filter: cause.count for cause in report.causes}
    assert counts == {"health": 2, "resources": 1}
    assert "too small for the job (c: cpu 1 cores < 2 cores and memory unknown)" in report.summary
    assert "a: cpu" not in report.summary
    assert {r.name: [f for f, _ in r.reasons] for r in report.rejected} == {"a": ["health"],
                                                                            "c": ["health", "resources"]}
    # The metrics' rejection counts are the report's.
    decision = chosen.decide(job(cpu=2, memory=2**30), limit=None)
    assert chosen.rejections(decision) == {"status": 0, "health": 2, "cooldown": 0, "capacity": 0, "resources": 1,
                                           "labels": 0, "annotations": 0, "allowed-regions": 0, "image": 0}


def test_a_provider_that_never_reported_capacity_is_of_unknown_size_not_too_small() -> None:
    chosen = selector([provider("never checked"), provider("small")], {
        "never checked": state(health=None, **UNKNOWN), "small": state(cpu=1)})
    report = chosen.report(job(cpu=2, memory=2**30))
    assert report.selected is None
    assert report.summary == ("0/2 providers available: 1 of unknown size (never checked: cpu and memory never "
                              "reported), 1 too small for the job (small: cpu 1 cores < 2 cores)")
    unknown = next(reason for cause in report.causes for name, reason in cause.examples if name == "never checked")
    assert unknown.message.startswith("size unknown, it has not reported its capacity: cpu: needs 2 cores")
    assert unknown.hint.startswith("run `hodei providers check 'never checked'` to record what one worker can get")


def test_without_the_health_filter_unknown_sizes_still_reject_and_say_why() -> None:
    """Leaving health out of ``[selection] filters`` makes nobody else say it: resources does."""
    chosen = selector([provider("a")], {"a": state(health="Unhealthy", reason="down", **UNKNOWN)},
                      filters=["status", "capacity", "resources"])
    report = chosen.report(job(cpu=1))
    assert report.selected is None
    assert [(c.filter, c.count) for c in report.causes] == [("resources", 1)]
    assert "its last health check failed, so it reported no capacity" in report.causes[0].examples[0][1].message


# -- hints paste ------------------------------------------------------------------------------------------------

AWKWARD = ["Lambda us-east-1", "it's", "$HOME $(id)", "-x", "a\"b"]


def commands_in(text: str) -> list[list[str]]:
    """Every backticked `hodei ...` command of ``text``, split as a POSIX shell splits it."""
    return [shlex.split(found) for found in re.findall(r"`(hodei [^`]*)`", text)]


@pytest.mark.parametrize("name", AWKWARD)
def test_every_hint_of_a_report_and_an_explanation_pastes(name: str) -> None:
    providers = [provider(f"{name} {status}", status=status) for status in ("DISABLED", "MAINTENANCE", "UNHEALTHY")]
    providers += [provider(f"{name} unknown"), provider(f"{name} sick")]
    states = {f"{name} unknown": state(health=None, **UNKNOWN),
              f"{name} sick": state(health="Unhealthy", reason="x", **UNKNOWN)}
    chosen = selector(providers, states)
    chosen.invalid = [InvalidRow(f"{name} broken")]
    wanted = job(cpu=1)
    texts = []
    report = chosen.report(wanted, page=Page(size=None))
    texts += [reason.hint for rejection in report.rejected for _, reason in rejection.reasons]
    texts += [reason.message for rejection in report.rejected for _, reason in rejection.reasons]
    for each in providers:
        explanation = chosen.explain(each.name, wanted)
        texts += [check.hint for check in explanation.checks] + [explanation.text()]
    pasted = [words for text in texts for words in commands_in(text)]
    named = [words for words in pasted if len(words) > 3]
    # Every provider's own commands are there, and each names its provider as one word, exactly.
    assert {words[-1] for words in named} == {p.name for p in providers} | {f"{name} broken"}
    for words in named:
        assert words[:2] == ["hodei", "providers"] and words[2] in ("enable", "show", "check"), words


def test_the_one_helper_quotes_only_what_needs_it() -> None:
    assert command("providers", "show", "Lambda us-east-1") == "`hodei providers show 'Lambda us-east-1'`"
    assert command("providers", "enable", "plain") == "`hodei providers enable plain`"
    assert shlex.split(command("providers", "show", "it's")[1:-1])[-1] == "it's"


def test_no_hint_in_the_sources_builds_a_command_around_a_placeholder() -> None:
    """A command in backticks with a ``{...}`` inside (an f-string or ``.format``) would paste a name as it
    is: every such hint goes through :func:`hodei.hints.command`."""
    sources = [*(ROOT / "core" / "hodei").rglob("*.py"), *(ROOT / "plugins").glob("*/hodei_*/**/*.py")]
    assert len(sources) > 50
    offenders = []
    for path in sources:
        if path.name.endswith("_pb2.py") or path.name.endswith("_pb2_grpc.py"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"`hodei [^`]*\{", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
