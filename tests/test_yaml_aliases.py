"""YAML aliases repeat a value, they never multiply a document: one of under 500 bytes whose nested
aliases expand to millions of values is refused at once (docs/limits.md), naming the file, before
anything walks it; aliases and merge keys of ordinary size keep working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hodei import limits
from hodei.documents import parse_text
from hodei.errors import InvalidInput


def bomb(levels: int = 7, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_nested_aliases_are_refused_by_the_size_they_expand_to() -> None:
    text = bomb()
    assert len(text.encode()) < 500
    with pytest.raises(InvalidInput) as caught:
        parse_text(text, "yaml", "bomb.yaml")
    assert str(caught.value) == (f"file: bomb.yaml expands to more than {limits.YAML_VALUES:,} values "
                                 "through its aliases")


def test_an_alias_inside_the_value_it_names_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_text("providers: &p [*p]\n", "yaml", "loop.yaml")
    assert "alias inside the value it names" in str(caught.value)


def test_aliases_and_merge_keys_of_ordinary_size_are_read() -> None:
    text = ("defaults: &d {provider_type: static, priority: 5, max_workers: 2}\n"
            "providers:\n"
            "  - {<<: *d, name: a}\n"
            "  - {<<: *d, name: b, priority: 9}\n")
    document = parse_text(text, "yaml", "ok.yaml")
    assert document["providers"] == [
        {"provider_type": "static", "priority": 5, "max_workers": 2, "name": "a"},
        {"provider_type": "static", "priority": 9, "max_workers": 2, "name": "b"}]
    with pytest.raises(InvalidInput, match="gives the key 'name' twice"):
        parse_text("- {<<: {a: 1}, name: a, name: b}\n", "yaml", "twice.yaml")


def test_a_document_without_aliases_is_never_refused_for_its_size() -> None:
    # The bound is the larger of YAML_VALUES and the document's length: aliases alone can cross it.
    many = "".join(f"- {i}\n" for i in range(limits.YAML_VALUES + 10))
    assert len(parse_text(many, "yaml", "long.yaml")) == limits.YAML_VALUES + 10


def test_apply_dry_run_refuses_the_bomb_naming_the_file(sqlite_hodei: Any, tmp_path: Path) -> None:
    hodei = sqlite_hodei  # refused before any database is asked
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(levels=9), encoding="utf-8")
    result = hodei("providers", "apply", "--dry-run", "-f", str(path))
    assert result.exit_code == 1
    assert "bomb.yaml expands to more than" in result.stderr and "Traceback" not in result.stderr
    selected = hodei("select", "-r", str(path))
    assert selected.exit_code == 1 and "expands to more than" in selected.stderr
