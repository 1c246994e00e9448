"""Input meant to hurt, through every way in (the CLI on the database, the gRPC API of a real
``hodei serve``, files for ``apply``): refused naming the field, exit 1 / INVALID_ARGUMENT, nothing
changed, never a traceback, never a secret in a message or a log.

Classes (docs/limits.md and the hostile-input guide): secrets in messages; values that are not
values (NaN, Infinity, duplicate keys); names that spoof output; garbage and huge requests to the API.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.database import safe_url
from hodei.documents import parse_text
from hodei.errors import InvalidInput
from hodei.redaction import quote, scrub
from hodei.testing.serve import Served, serve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PASSWORD = "Pa55w0rdXyz"
BIDI_AND_CONTROLS = ["\n", "\r", "\x1b[31m", "\x00", "\x7f", "\x85", "\u2028", "\u202e", "\u2066", "\u200f", "\t"]


def refused(result: Any, *named: str) -> str:
    """The CLI refused: exit 1, no traceback, the names in its message; returns standard error."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for name in named:
        assert name in result.stderr, (name, result.stderr)
    return str(result.stderr)


@pytest.fixture
def served(hodei: Any, tmp_path: Path) -> Iterator[Served]:
    """A real ``hodei serve`` on the test's database (SQLite, then PostgreSQL)."""
    config = tmp_path / "serve.toml"
    config.write_text(f'[database]\nurl = "{hodei.url}"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
                      '[health]\ninterval_seconds = 0.2\ntimeout_seconds = 1\n', encoding="utf-8")
    with serve(config) as daemon:
        yield daemon


@pytest.fixture
def stub(served: Served) -> Iterator[pb_grpc.ProviderServiceStub]:
    with grpc.insecure_channel(served.address) as channel:
        yield pb_grpc.ProviderServiceStub(channel)


def value(obj: Any) -> struct_pb2.Value:
    return json_format.ParseDict(obj, struct_pb2.Value())


def create(stub: Any, name: str, provider_type: str = "static", config: Any = None, **fields: Any) -> Any:
    message = pb.ProviderConfig(name=name, provider_type=provider_type, **fields)
    if config is not None:
        message.config.CopyFrom(config if isinstance(config, struct_pb2.Value) else value(config))
    return stub.CreateProvider(pb.CreateProviderRequest(config=message), timeout=20)


def rpc_refused(call: Any, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() is code, (caught.value.code(), caught.value.details())
    return caught.value


def everything_said(error: grpc.RpcError) -> str:
    return f"{error.details()} {error.trailing_metadata()}"


# -- 3. secrets in messages ---------------------------------------------------------------------------

urls = st.builds(
    lambda scheme, user, password, host, query: f"{scheme}://{user}:{password}@{host}/db{query}",
    st.sampled_from(["tcp", "postgresql+psycopg", "https", "redis"]),
    st.text("abcdefgh_.-", min_size=1, max_size=8),
    st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="@/?#'\"&;"), min_size=4,
            max_size=16).filter(lambda p: "***" not in p),
    st.sampled_from(["db.internal:5432", "10.0.0.1:2375", "[::1]:1"]),
    st.sampled_from(["", "?sslmode=require"]))


@settings(max_examples=200, deadline=None)
@given(url=urls, secret=st.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=6, max_size=12),
       prefix=st.text("abc xyz:/@=", max_size=20))
def test_scrub_hides_every_password_in_a_url_or_query(url: str, secret: str, prefix: str) -> None:
    """Hypothesis: the password of any URL, and a ``password=`` query parameter, never survive scrubbing."""
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    text = f"{prefix} {url} and {url.split('@')[0].split(':')[0]}://h/db?user=u&password={secret}&x=1"
    shown = scrub(text)
    assert f":{password}@" not in shown and secret not in shown
    assert "***" in shown


def test_database_urls_are_shown_without_their_password() -> None:
    assert PASSWORD not in safe_url(f"postgresql+psycopg://hodei@db/hodei?password={PASSWORD}")
    assert PASSWORD not in safe_url(f"postgresql+psycopg://hodei:{PASSWORD}@db/hodei?sslmode=require")
    assert safe_url("sqlite:///var/hodei.db") == "sqlite:///var/hodei.db"


def test_a_password_in_the_database_url_query_never_shows(hodei_cli: Any, config_file: Path) -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:1/none?password={PASSWORD}&connect_timeout=1"
    cli = hodei_cli(url, config_file)
    for args in (("config", "show"), ("config", "show", "-o", "json"), ("db", "current"), ("providers", "list")):
        result = cli(*args)
        assert PASSWORD not in result.stdout + result.stderr, args
        assert "Traceback" not in result.stderr


def test_a_refused_endpoint_with_credentials_is_never_echoed(hodei: Any, stub: Any, served: Served) -> None:
    endpoint = f"tcp://admin:{PASSWORD}@10.0.0.1:2375"
    config = json.dumps({"endpoint": endpoint})
    stderr = refused(hodei("providers", "add", "d", "--type", "docker", "--config", config), "config.endpoint")
    assert PASSWORD not in stderr and "admin:***@" in stderr
    json_error = refused(hodei("providers", "add", "d", "--type", "docker", "--config", config, "-o", "json"))
    assert PASSWORD not in json_error
    error = rpc_refused(lambda: create(stub, "d", "docker", {"endpoint": endpoint}))
    assert PASSWORD not in everything_said(error)
    # A row written in SQL with it: its VALID column, its problems, the daemon's log.
    hodei.ok("providers", "add", "d", "--type", "docker")
    hodei.sql("UPDATE provider_configs SET config = :c WHERE name = 'd'",
              c=json.dumps({"type": "docker", "endpoint": endpoint}))
    for args in (("providers", "list"), ("providers", "list", "-o", "json"), ("providers", "show", "d"),
                 ("providers", "show", "d", "-o", "json")):
        output = hodei.ok(*args).stdout
        assert PASSWORD not in output, args
    assert "admin:***@" in hodei.ok("providers", "list").stdout
    assert PASSWORD not in str(stub.ListProviders(pb.ListProvidersRequest(), timeout=20))
    assert PASSWORD not in served.log()


def test_a_secret_of_the_wrong_shape_is_still_masked(hodei: Any, stub: Any) -> None:
    hodei.ok("providers", "add", "d", "--type", "docker")
    for wrong in (f"bot:{PASSWORD}", [PASSWORD], {"username": "bot", "password": [PASSWORD]}, 12345678901):
        hodei.sql("UPDATE provider_configs SET config = :c WHERE name = 'd'",
                  c=json.dumps({"type": "docker", "registry_auth": wrong}))
        secret = str(wrong if not isinstance(wrong, dict) else PASSWORD)
        for args in (("providers", "list"), ("providers", "list", "-o", "json"), ("providers", "show", "d", "-o",
                                                                                  "json")):
            output = hodei.ok(*args).stdout
            assert secret not in output, (wrong, args)
        shown = hodei.json("providers", "show", "d")
        assert shown["valid"] is False and shown["problems"], wrong
        assert secret not in str(stub.GetProvider(pb.GetProviderRequest(provider_id="d"), timeout=20))
    # Refused on the way in, the same value is not quoted either.
    config = json.dumps({"registry_auth": f"bot:{PASSWORD}"})
    assert PASSWORD not in refused(hodei("providers", "add", "e", "--type", "docker", "--config", config),
                                   "config.registry_auth")


@pytest.mark.parametrize(("suffix", "content"), [
    (".yaml", f"- name: x\n  config: {{password: {PASSWORD}\n  provider_type: static\n"),
    (".yaml", f"- name: x\n  provider_type: static\n  token: *{PASSWORD}\n"),
    (".yaml", f"- name: x\n\tpassword: {PASSWORD}\n"),
    (".json", f'[{{"name": "x", "password": {PASSWORD}}}]'),
    (".json", f'[{{"name": "x", "password": "{PASSWORD}"'),
    (".toml", f'[[providers]]\nname = "x"\npassword = {PASSWORD}\n'),
    (".toml", f'[[providers]]\nname = "x"\npassword = "{PASSWORD}\n'),
])
def test_parse_errors_point_at_line_and_column_without_quoting(sqlite_hodei: Any, tmp_path: Path, suffix: str,
                                                               content: str) -> None:
    path = tmp_path / f"providers{suffix}"
    path.write_text(content, encoding="utf-8")
    stderr = refused(sqlite_hodei("providers", "apply", "-f", str(path)), "line")
    assert PASSWORD not in stderr and PASSWORD[:5] not in stderr


# -- 5. values that are not values ----------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "content"), [
    (".json", '[{"name": "x", "provider_type": "static", "config": {"latency_ms": Infinity}}]'),
    (".json", '[{"name": "x", "provider_type": "static", "config": {"latency_ms": NaN}}]'),
    (".json", '[{"name": "x", "provider_type": "static", "config": {"latency_ms": -Infinity}}]'),
    (".yaml", "- name: x\n  provider_type: static\n  config: {latency_ms: .nan}\n"),
    (".yaml", "- name: x\n  provider_type: static\n  config: {latency_ms: .inf}\n"),
    (".toml", '[[providers]]\nname = "x"\nprovider_type = "static"\nconfig = {latency_ms = inf}\n'),
    (".toml", '[[providers]]\nname = "x"\nprovider_type = "static"\nconfig = {latency_ms = nan}\n'),
    (".json", '[{"name": "x", "provider_type": "static", "config": {"latency_ms": 1e400}}]'),
])
def test_nan_and_infinity_in_files_are_refused_naming_the_field(hodei: Any, tmp_path: Path, suffix: str,
                                                               content: str) -> None:
    path = tmp_path / f"p{suffix}"
    path.write_text(content, encoding="utf-8")
    refused(hodei("providers", "apply", "-f", str(path)), "config.latency_ms", "finite")
    assert hodei.providers() == []


def test_nan_and_infinity_on_the_command_line_and_the_api(hodei: Any, stub: Any, served: Served) -> None:
    for literal in ("Infinity", "NaN", "-Infinity"):
        refused(hodei("providers", "add", "x", "--type", "static", "--config", f'{{"latency_ms": {literal}}}'),
                "config.latency_ms")
        refused(hodei("--server", served.address, "providers", "add", "x", "--type", "static", "--config",
                      f'{{"latency_ms": {literal}}}'), "config.latency_ms")
    hodei.ok("providers", "add", "x", "--type", "static")
    refused(hodei("providers", "update", "x", "--merge-config", '{"latency_ms": NaN}'), "config.latency_ms")
    for number in (math.nan, math.inf, -math.inf):
        config = struct_pb2.Value()
        config.struct_value.fields["latency_ms"].number_value = number
        error = rpc_refused(lambda config=config: create(stub, "y", config=config))
        assert any(v for v in [error.details()] if "config.latency_ms" in v), error.details()
        message = pb.ProviderConfig()
        message.config.CopyFrom(config)
        rpc_refused(lambda message=message: stub.UpdateProvider(pb.UpdateProviderRequest(
            provider_id="x", config=message, merge_config=True), timeout=20))
        requirements = struct_pb2.Struct()
        requirements.fields["cpu"].number_value = number
        with grpc.insecure_channel(served.address) as channel:
            selection = spb_grpc.SelectionServiceStub(channel)
            error = rpc_refused(lambda r=requirements, s=selection: s.Select(spb.SelectRequest(requirements=r),
                                                                            timeout=20))
        assert "cpu" in error.details()
    assert [p["name"] for p in hodei.providers()] == ["x"]
    assert hodei.provider("x")["config"].get("latency_ms") in (None, 0, 0.0)
    assert "Traceback" not in served.log() and "INTERNAL" not in served.log()


@pytest.mark.parametrize(("suffix", "content", "where"), [
    (".json", '[{"name": "x",\n  "provider_type": "static",\n  "name": "y"}]', "line 3"),
    (".json", '[{"name": "x", "provider_type": "static", "config": {"a": 1, "a": 2}}]', "line 1"),
    (".yaml", "- name: x\n  provider_type: static\n  name: y\n", "line 3 column 3"),
    (".yaml", "- name: x\n  provider_type: static\n  config:\n    latency_ms: 1\n    latency_ms: 2\n", "line 5"),
])
def test_duplicate_keys_are_refused_naming_the_key_and_where(hodei: Any, tmp_path: Path, suffix: str,
                                                            content: str, where: str) -> None:
    path = tmp_path / f"p{suffix}"
    path.write_text(content, encoding="utf-8")
    refused(hodei("providers", "apply", "-f", str(path)), "twice", where)
    assert hodei.providers() == []


def test_duplicate_keys_on_the_command_line_are_refused(sqlite_hodei: Any) -> None:
    refused(sqlite_hodei("providers", "add", "x", "--type", "static", "--config",
                         '{"latency_ms": 1, "latency_ms": 2}'), "latency_ms", "twice")
    with pytest.raises(InvalidInput, match="twice"):
        parse_text("a: 1\na: 1\n", "yaml", "test")


# -- 6. names that spoof output ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BIDI_AND_CONTROLS)
def test_control_and_bidi_characters_are_refused_where_they_would_print(hodei: Any, bad: str) -> None:
    if bad == "\x00":  # cannot travel in an argument: refused when it comes in a file, tried below
        return
    refused(hodei("providers", "add", f"web{bad}fake", "--type", "static"), "name")
    refused(hodei("providers", "add", "p", "--type", "static", "--label", f"env=prod{bad}x"), "required_labels")
    refused(hodei("providers", "add", "p", "--type", "static", "--label", f"e{bad}nv=prod"), "required_labels")
    refused(hodei("providers", "add", "p", "--type", "static", "--annotation", f"note=a{bad}b"), "annotations")
    refused(hodei("providers", "add", "p", "--type", "static", "--allowed-region", f"eu{bad}west"),
            "allowed_regions")
    refused(hodei("providers", "add", "p", "--type", "static", "--preferred-region", f"eu{bad}west"),
            "preferred_region")
    assert hodei.providers() == []


def test_the_api_refuses_them_too(stub: Any) -> None:
    for bad in BIDI_AND_CONTROLS:
        error = rpc_refused(lambda bad=bad: create(stub, f"web{bad}x"))
        assert "name" in error.details()
        error = rpc_refused(lambda bad=bad: create(stub, "p", required_labels={"env": f"a{bad}"}))
        assert "required_labels" in error.details()
    assert list(stub.ListProviders(pb.ListProvidersRequest(), timeout=20).providers) == []


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_any_name_is_refused_or_printed_on_one_line(sqlite_hodei: Any, name: str) -> None:
    """Hypothesis: whatever the name, ``providers list`` shows exactly one line per provider (and a
    name written in SQL, past every check, too)."""
    added = sqlite_hodei("providers", "add", "--type", "static", "--", name)  # a name may start with -
    assert added.exit_code in (0, 1) and "Traceback" not in added.stderr
    if added.exit_code == 1:
        assert "name" in added.stderr
    table = sqlite_hodei.ok("providers", "list").stdout
    count = len(sqlite_hodei.providers())
    assert len(table.splitlines()) == 1 + count if count else True
    sqlite_hodei.sql("DELETE FROM provider_configs")


def test_a_spoofing_name_written_in_sql_still_prints_one_line(hodei: Any) -> None:
    hodei.ok("providers", "add", "real", "--type", "static")
    spoof = "evil\nfake-row  static  ACTIVE\x1b[2K\u202e"
    hodei.sql("UPDATE provider_configs SET name = :n, allowed_regions = :r WHERE name = 'real'",
              n=spoof, r=json.dumps(["eu\nfake"]))
    table = hodei.ok("providers", "list").stdout
    assert len(table.splitlines()) == 2, table
    assert "\x1b" not in table and "\u202e" not in table and "\\u000a" in table


# -- 9. garbage and huge API requests -------------------------------------------------------------------


def test_garbage_without_a_token_is_unauthenticated(hodei: Any, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret-token\n", encoding="utf-8")
    config = tmp_path / "serve.toml"
    config.write_text(f'[database]\nurl = "{hodei.url}"\n[api]\nlisten = "127.0.0.1:0"\ntoken_file = "token"\n'
                      '[metrics]\nlisten = ""\n', encoding="utf-8")
    garbage = [b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\x0f", bytes(range(256)), b"\x12" * 1000, b""]
    with serve(config) as daemon, grpc.insecure_channel(daemon.address) as channel:
        for method in ("/hodei.api.v1.ProviderService/GetProvider", "/hodei.api.v1.ProviderService/CreateProvider",
                       "/hodei.api.v1.SelectionService/Select"):
            call = channel.unary_unary(method)  # raw bytes: no serializer
            for body in garbage:
                error = rpc_refused(lambda call=call, body=body: call(body, timeout=20),
                                    grpc.StatusCode.UNAUTHENTICATED)
                assert "bearer token" in error.details()
        assert "Traceback" not in daemon.log()


def test_a_huge_id_is_not_found_with_a_short_message(stub: Any) -> None:
    for ref in ("x" * 1_000_000, "\u202e" * 100_000, "a\nb" * 50_000):
        error = rpc_refused(lambda ref=ref: stub.GetProvider(pb.GetProviderRequest(provider_id=ref), timeout=20),
                            grpc.StatusCode.NOT_FOUND)
        assert len(error.details()) < 300
        rpc_refused(lambda ref=ref: stub.DeleteProvider(pb.DeleteProviderRequest(provider_id=ref), timeout=20),
                    grpc.StatusCode.NOT_FOUND)


def test_quote_is_short_and_scrubbed() -> None:
    assert len(quote("x" * 10_000_000)) < 120
    assert PASSWORD not in quote(f"postgresql://u:{PASSWORD}@h/db")
    assert quote("web") == "'web'"


def test_a_refusal_prints_one_line_per_problem_whatever_the_keys_hold(sqlite_hodei: Any) -> None:
    config = json.dumps({"a\nhodei: error: fake": 1, "b\u202e": 2})
    stderr = refused(sqlite_hodei("providers", "add", "x", "--type", "static", "--config", config))
    lines = stderr.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("hodei: error:"), stderr
    assert all(line.startswith("  config.") for line in lines[1:]), stderr
    assert "\u202e" not in stderr


def test_a_refusal_with_hundreds_of_problems_still_fits_a_trailer(stub: Any, hodei: Any, served: Served) -> None:
    config = {f"{'k' * 140}{i:04d}\u00e9": "v" * 20 for i in range(300)}  # 300 unknown keys, non-ASCII
    error = rpc_refused(lambda: create(stub, "p", config=config))
    assert "config." in error.details() and len(error.details()) <= 1100
    result = hodei("--server", served.address, "providers", "add", "p", "--type", "static", "--config",
                   json.dumps(config))
    assert "more problem(s)" in refused(result, "config.")
