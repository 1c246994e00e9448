"""Small things a new user meets in the first hour, through the real console script.

Standard input is sniffed (TOML, JSON or YAML) unless --format says; JSON inputs may carry comments
(the guide's examples paste as they are); ``explain`` exits 3 when the provider does not fit, as
``select`` does when nothing fits; a malformed KEY=VALUE option is a usage error (exit 2).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hodei.documents import sniff_format
from hodei.testing.serve import clean_environment, hodei_command
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "provider-configuration-guide.md"


class Cli:
    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "hodei.toml").write_text('[database]\nurl = "sqlite:///hodei.db"\n', encoding="utf-8")
        self.env = clean_environment()

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*hodei_command(), *args], cwd=self.folder, env=self.env, input=input,
                              capture_output=True, text=True, timeout=120)

    def ok(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = self(*args, input=input)
        assert done.returncode == 0, f"hodei {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json").stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.ok("db", "upgrade")
    return cli


TOML_PROVIDERS = '''# two providers
[[providers]]
name = "a"
provider_type = "docker"
priority = 5

[[providers]]
name = "b"
provider_type = "docker"
'''
JSON_PROVIDERS = '''[
  // the first one
  {"name": "a", "provider_type": "docker", "priority": 5},
  /* the second */ {"name": "b", "provider_type": "docker",},
]'''
YAML_PROVIDERS = '''# two providers
- name: a
  provider_type: docker
  priority: 5
- name: b
  provider_type: docker
'''


@pytest.mark.parametrize("text", [TOML_PROVIDERS, JSON_PROVIDERS, YAML_PROVIDERS], ids=["toml", "jsonc", "yaml"])
def test_apply_from_standard_input_in_any_format(cli: Cli, text: str) -> None:
    done = cli.ok("providers", "apply", "-f", "-", input=text)
    assert "2 created" in done.stdout
    listed = {p["name"]: p["priority"] for p in cli.json("providers", "list")}
    assert listed == {"a": 5, "b": 0}


def test_format_overrides_the_sniffing(cli: Cli) -> None:
    done = cli("providers", "apply", "-f", "-", "--format", "json", input=TOML_PROVIDERS)
    assert done.returncode == 1 and "standard input is not valid JSON" in done.stderr
    assert cli.json("providers", "list") == []


def test_bad_toml_on_standard_input_gets_a_toml_error(cli: Cli) -> None:
    done = cli("providers", "apply", "-f", "-", input='[[providers]]\nname = "a"\nprovider_type = \n')
    assert done.returncode == 1
    assert "standard input is not valid TOML" in done.stderr and "JSON" not in done.stderr


def test_requirements_from_standard_input_in_any_format(cli: Cli) -> None:
    cli.ok("providers", "add", "dev", "--type", "docker", "--label", "environment=development")
    for text in ('required_labels = { environment = "development" }\n',
                 '{"required_labels": {"environment": "development"}, // a comment\n}',
                 'required_labels:\n  environment: development\n'):
        assert json.loads(cli.ok("select", "-r", "-", "-o", "json", input=text).stdout)["selected"] == "dev"
        done = cli("select", "-r", "-", "-o", "json", input=text.replace("development", "production"))
        assert done.returncode == 3, (text, done.stderr)
        assert "environment=production" in json.loads(done.stdout)["summary"]


def guide_json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_every_json_example_of_the_guide_pastes_as_it_is(cli: Cli) -> None:
    blocks = guide_json_blocks()
    assert len(blocks) == 3 and any("// null = in-cluster" in block for block in blocks)
    for block in blocks:
        provider_type = json.loads(re.sub(r"//.*", "", block))["type"]
        cli.ok("providers", "add", f"guide {provider_type}", "--type", provider_type, "--config", block)
    k8s = cli.json("providers", "show", "guide kubernetes")
    assert k8s["config"]["kubeconfig_path"] is None
    assert k8s["config"]["node_selector"] == {"node-type": "worker"}


def test_a_comment_inside_a_string_is_kept(cli: Cli) -> None:
    config = '{"default_image": "registry.example:5000/team//jobs:1", /* the image */ "network": "bridge"}'
    done = cli("providers", "add", "x", "--type", "docker", "--config", config)
    # The plugin refuses the doubled slash (not an image reference): proof the string reached it whole.
    assert done.returncode == 1 and "registry.example:5000/team//jobs:1" in done.stderr, done.stderr


def test_invalid_json_names_line_and_column(cli: Cli) -> None:
    done = cli("providers", "add", "x", "--type", "docker", "--config", '{\n  "network": "bridge",,\n}')
    assert done.returncode == 1
    assert "config: --config is not valid JSON" in done.stderr and "line 2" in done.stderr, done.stderr


def test_explain_exits_3_when_the_provider_does_not_fit(cli: Cli) -> None:
    cli.ok("providers", "add", "dev", "--type", "docker", "--label", "environment=development")
    fits = cli("explain", "dev", "-r", "-", input='required_labels = { environment = "development" }\n')
    assert fits.returncode == 0, fits.stderr
    for output in ("table", "json"):
        misfit = cli("explain", "dev", "-o", output, "-r", "-",
                     input='required_labels = { environment = "production" }\n')
        assert misfit.returncode == 3, misfit.stderr
        assert "environment" in misfit.stdout and misfit.stderr == ""
    assert cli("explain", "no-such-provider").returncode == 1


def test_a_malformed_key_value_is_a_usage_error(tmp_path: Path) -> None:
    cli = Cli(tmp_path)  # refused before any database is opened
    for option, value, command in [("--label", "noequals", ["providers", "add", "x", "--type", "docker"]),
                                   ("--annotation", "=value", ["providers", "add", "x", "--type", "docker"]),
                                   ("--label", "=value", ["providers", "update", "x"]),
                                   ("--annotation", "noequals", ["providers", "update", "x"])]:
        done = cli(*command, option, value)
        assert done.returncode == 2, done.stderr
        assert option in done.stderr and "KEY=VALUE" in done.stderr and "Traceback" not in done.stderr
        assert repr(value) in done.stderr


@given(st.sampled_from(["toml", "json", "yaml"]), st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    st.one_of(st.integers(-10**6, 10**6), st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                                                  max_size=12)), min_size=1, max_size=4))
def test_sniffing_recognises_each_format_as_written(fmt: str, document: dict[str, Any]) -> None:
    import tomli_w
    import yaml

    text = {"toml": tomli_w.dumps, "json": json.dumps, "yaml": yaml.safe_dump}[fmt](document)
    expected = "json" if fmt == "json" else fmt
    assert sniff_format(text) == expected, text
