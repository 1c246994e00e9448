"""Hostile input to ``hodei plan -f`` and ``hodei simulate --trace``/``--fleet``: refused naming the field
(or the line), exit 1, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hodei.cli import main

FLEET = [{"name": "a", "provider_type": "static", "config": {"capabilities": {"cpu": 2}}}]


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {"HODEI_CONFIG": None, "HODEI_SERVER": None, "HODEI_PLUGINS_ENABLE": "static",
           "HODEI_DATABASE_URL": f"sqlite:///{tmp_path / 'hodei.db'}"}
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


@pytest.mark.parametrize(("name", "content", "said"), [
    ("empty.jsonl", b"", "holds no job"),
    ("object.json", b'{"cpu": 1}', "expected a list of jobs"),
    ("binary.jsonl", b"\xff\xfe\x00", "not UTF-8"),
    ("twice.jsonl", b'{"cpu": 1}\n{"cpu": 1, "cpu": 2}\n', "line 2 gives the key 'cpu' twice"),
    ("nan.jsonl", b'{"cpu": NaN}\n', "jobs[0].cpu: must be a finite number"),
    ("deep.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", "nests"),
    ("huge.jsonl", b'{"cpu": ' + b"9" * 5000 + b"}\n", "4300 digits"),
    ("bool.yaml", b"- {cpu: true}\n", "jobs[0].cpu"),
    ("unknown.yaml", b"- {colour: red}\n", "jobs[0].colour"),
    ("text.yaml", b"- just text\n", "jobs[0]"),
])
def test_a_batch_at_fault_is_refused_by_name(tmp_path: Path, name: str, content: bytes, said: str) -> None:
    assert run(tmp_path, "db", "upgrade")[0] == 0
    (tmp_path / name).write_bytes(content)
    code, stderr = run(tmp_path, "plan", "-f", str(tmp_path / name))
    assert code == 1, stderr
    assert said in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(("records", "said"), [
    ('{"at": true, "requirements": {}, "duration": 1}', "trace[0].at"),
    ('{"at": 1e400, "requirements": {}, "duration": 1}', "trace[0].at: Input should be a finite number"),
    ('{"at": 0, "requirements": {}, "duration": 0}', "trace[0].duration"),
    ('{"at": 0, "requirements": {}, "duration": 1, "provider": "a"}', "trace[0].provider"),
    ('{"at": 0, "provider": "a", "health": "Sick"}', "trace[0].health"),
    ('{"at": 0, "provider": "a", "max_workers": 0}', "trace[0].max_workers"),
    ('[1, 2]', "trace[0]"),
])
def test_a_trace_at_fault_is_refused_by_name(tmp_path: Path, records: str, said: str) -> None:
    (tmp_path / "fleet.json").write_text(json.dumps(FLEET), encoding="utf-8")
    (tmp_path / "trace.jsonl").write_text(records + "\n", encoding="utf-8")
    code, stderr = run(tmp_path, "simulate", "--trace", str(tmp_path / "trace.jsonl"),
                       "--fleet", str(tmp_path / "fleet.json"))
    assert code == 1, stderr
    assert said in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(("fleet", "said"), [
    ([{"name": "a", "provider_type": "nope"}], "providers[0].provider_type"),
    ([{"name": "a", "provider_type": "static", "max_workers": 0}], "providers[0].max_workers"),
    ([FLEET[0], FLEET[0]], "providers[1].name"),
    ({"name": 3}, "name"),
])
def test_a_fleet_at_fault_is_refused_by_name(tmp_path: Path, fleet: object, said: str) -> None:
    (tmp_path / "fleet.json").write_text(json.dumps(fleet), encoding="utf-8")
    (tmp_path / "trace.jsonl").write_text('{"at": 0, "requirements": {}, "duration": 1}\n', encoding="utf-8")
    code, stderr = run(tmp_path, "simulate", "--trace", str(tmp_path / "trace.jsonl"),
                       "--fleet", str(tmp_path / "fleet.json"))
    assert code == 1, stderr
    assert said in stderr and "Traceback" not in stderr
