"""The README's grpcurl commands work against a real ``hodei serve``.

grpcurl itself is a Go program that is not packaged for the test machines, so this test does what it does:
it finds the method and its message types through the daemon's server reflection, turns each command's
``-d`` JSON into the request with protobuf's JSON mapping (the one grpcurl uses, which refuses what it
does not know), and calls the method with the command's authorization header. Each command's effect is
then checked through the CLI.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hodei.testing.serve import Served, clean_environment, hodei_command, serve

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "readme-token"
COMMAND = re.compile(r"grpcurl -plaintext -H \"authorization: Bearer \$\(cat /etc/hodei/api-token\)\" "
                     r"-d '(?P<body>[^']*)' \\\n\s*127\.0\.0\.1:50051 (?P<method>[\w.]+/\w+)")


def readme_commands() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(found["method"], found["body"]) for found in COMMAND.finditer(text)]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("grpcurl")
    (folder / "api-token").write_text(TOKEN + "\n", encoding="utf-8")
    config = folder / "hodei.toml"
    config.write_text('[database]\nurl = "sqlite:///hodei.db"\n[plugins]\nenable = ["static"]\n'
                      '[api]\nlisten = "127.0.0.1:0"\ntoken_file = "api-token"\n[metrics]\nlisten = ""\n',
                      encoding="utf-8")
    cli(config, "db", "upgrade")
    cli(config, "providers", "apply", "-f", str(ROOT / "config" / "providers.example.toml"))
    cli(config, "providers", "add", "local", "--type", "static")
    with serve(config) as served:
        served.config = config  # type: ignore[attr-defined]
        yield served


def cli(config: Path, *args: str) -> str:
    result = subprocess.run([*hodei_command(), "--config", str(config), *args], capture_output=True, text=True,
                            env=clean_environment(), timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def call_as_grpcurl(address: str, method: str, body: str) -> dict[str, Any]:
    with grpc.insecure_channel(address) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service_name, method_name = method.split("/")
        described = pool.FindServiceByName(service_name).FindMethodByName(method_name)
        request_type = message_factory.GetMessageClass(described.input_type)
        response_type = message_factory.GetMessageClass(described.output_type)
        request = json_format.Parse(body, request_type())
        stub = channel.unary_unary(f"/{service_name}/{method_name}", request_serializer=request_type.SerializeToString,
                                   response_deserializer=response_type.FromString)
        response = stub(request, metadata=[("authorization", f"Bearer {TOKEN}")], timeout=30)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)


def test_the_readme_shows_update_with_a_mask_and_a_release() -> None:
    methods = [method for method, _ in readme_commands()]
    assert methods.count("hodei.api.v1.ProviderService/UpdateProvider") == 2
    assert "hodei.api.v1.WorkerService/ReleaseWorker" in methods
    bodies = [json.loads(body) for _, body in readme_commands()]
    assert any("update_mask" in body for body in bodies)


def test_every_readme_grpcurl_command_works(daemon: Served) -> None:
    assert daemon.address is not None
    config: Path = daemon.config  # type: ignore[attr-defined]
    provisioned = json.loads(cli(config, "--server", daemon.address, "--token-file", str(config.parent / "api-token"),
                                 "workers", "provision", "-o", "json"))
    worker = provisioned["id"]
    for method, body in readme_commands():
        answer = call_as_grpcurl(daemon.address, method, body.replace("WORKER_ID", worker))
        if method.endswith("/UpdateProvider") and "update_mask" in body:
            assert (answer["config"]["priority"], answer["config"]["max_workers"]) == (90, 30)
        elif method.endswith("/UpdateProvider"):
            assert answer["config"]["config"]["default_image"] == "hodei-jobs-worker:v4"
        elif method.endswith("/ReleaseWorker"):
            assert (answer["id"], answer["state"]) == (worker, "TERMINATED")
    shown = json.loads(cli(config, "providers", "show", "Production Kubernetes", "-o", "json"))
    # The mask changed those two fields and kept the rest (the earlier merge among them).
    assert (shown["priority"], shown["max_workers"], shown["config"]["default_image"], shown["config"]["namespace"]) \
        == (90, 30, "hodei-jobs-worker:v4", "hodei-jobs")
    assert json.loads(cli(config, "workers", "show", worker, "-o", "json"))["state"] == "TERMINATED"


def test_a_field_mask_as_an_object_is_refused_by_the_json_mapping(daemon: Served) -> None:
    """Why the README writes the mask as a string: protobuf's JSON form of a FieldMask is one string."""
    assert daemon.address is not None
    with pytest.raises(json_format.ParseError, match="FieldMask JSON value not a string"):
        call_as_grpcurl(daemon.address, "hodei.api.v1.ProviderService/UpdateProvider",
                        '{"provider_id": "local", "update_mask": {"paths": ["priority"]}}')
