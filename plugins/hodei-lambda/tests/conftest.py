"""Fixtures: a moto server on loopback with a deployed worker function, and endpoints that misbehave.

Every AWS call goes over real HTTP to a server started here; the credentials are fake and no
shared AWS config file is read.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from hodei import Provider
from hodei.testing import backend_unavailable
from hodei_lambda import hodei_validate_config

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-key"}


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Fake keys in the environment, and nothing else the AWS credential chain could find."""
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA",
                 "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _post_json(url: str, body: Any) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def start_moto() -> tuple[ThreadedMotoServer, str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:  # the config tests still run without it
        backend_unavailable("moto's server is not installed: pip install -e 'plugins/hodei-lambda[test]'")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def close_moto(server: ThreadedMotoServer) -> None:
    """Stop the server and close its socket, so that connecting is refused as with a server that is down."""
    server.stop()
    server._server.server_close()  # stop() leaves the socket listening: connections would hang instead


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    server, url = start_moto()
    # Without this, moto runs an invoked function in Docker; here a worker only has to be accepted.
    _post_json(f"{url}/moto-api/config", {"lambda": {"use_docker": False}})
    yield url
    _post_json(f"{url}/moto-api/config", {"lambda": {"use_docker": True}})
    close_moto(server)


@dataclass(frozen=True)
class Function:
    name: str
    arn: str
    runtime: str
    memory_mb: int
    timeout_seconds: int
    layers: list[str]


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def deploy(moto_endpoint: str) -> Callable[..., Function]:
    """Deploy a worker function in moto, as an operator would: ``deploy(memory_mb=512)``."""
    credentials = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup", "region_name": REGION}
    iam = boto3.client("iam", endpoint_url=moto_endpoint, **credentials)
    lambda_ = boto3.client("lambda", endpoint_url=moto_endpoint, **credentials)
    role = iam.create_role(RoleName="hodei-worker", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                       "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    layer = lambda_.publish_layer_version(LayerName="common", Content={"ZipFile": _zip({"lib/common": ""})},
                                          CompatibleRuntimes=["provided.al2"])["LayerVersionArn"]

    def deploy_function(**settings: Any) -> Function:
        spec = {"runtime": "provided.al2", "memory_mb": 1024, "timeout_seconds": 900, "layers": [layer], **settings}
        name = f"hodei-worker-{uuid.uuid4().hex[:10]}"
        created = lambda_.create_function(
            FunctionName=name, Runtime=spec["runtime"], Role=role, Handler="bootstrap",
            Code={"ZipFile": _zip({"bootstrap": "#!/bin/sh\nexec hodei-worker\n"})},
            MemorySize=spec["memory_mb"], Timeout=spec["timeout_seconds"], Layers=spec["layers"])
        return Function(name=name, arn=created["FunctionArn"], **spec)

    return deploy_function


@pytest.fixture
def worker_function(deploy: Callable[..., Function]) -> Function:
    return deploy()


def provider_for(config: dict[str, Any], name: str = "lambda test") -> Provider:
    """A provider as the core hands it to hooks: a fresh id, the config normalised by the plugin."""
    return Provider(id=uuid.uuid4(), name=name, provider_type="lambda",
                    config=hodei_validate_config(provider_type="lambda", config=config))


def config_for(function: Function, endpoint_url: str, **overrides: Any) -> dict[str, Any]:
    """The config that describes ``function`` truthfully, reached through ``endpoint_url``."""
    return {"type": "lambda", "region": REGION, "runtime": function.runtime,
            "timeout_seconds": function.timeout_seconds, "memory_mb": function.memory_mb, "layers": function.layers,
            "function_name": function.name, "endpoint_url": endpoint_url, **overrides}


@pytest.fixture
def make_provider(moto_endpoint: str, worker_function: Function) -> Callable[..., Provider]:
    """``make_provider(function=, endpoint_url=, **config overrides)``: by default on the moto server
    and the test's own function, described truthfully."""

    def make(function: Function | None = None, endpoint_url: str | None = None, **overrides: Any) -> Provider:
        return provider_for(config_for(function or worker_function, endpoint_url or moto_endpoint, **overrides))

    return make


@pytest.fixture
def invocations(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What moto's Lambda received for each invocation: function, invocation type and payload.

    The server runs in this process, so its backend can be watched; the request still crossed HTTP.
    """
    from moto.awslambda_simple.models import LambdaSimpleBackend

    received: list[dict[str, Any]] = []
    original = LambdaSimpleBackend.invoke

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        received.append({"function_name": function_name, "invocation_type": headers.get("X-Amz-Invocation-Type"),
                         "payload": json.loads(body)})
        return original(self, function_name, qualifier, body, headers, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return received


# -- endpoints that misbehave -----------------------------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A socket that takes connections (the kernel's backlog) and never answers a byte."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
def stopped_endpoint(deploy: Callable[..., Function]) -> Iterator[tuple[Function, str, Callable[[], None]]]:
    """A moto server of its own with the function deployed, and a way to stop it."""
    server, url = start_moto()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        close_moto(server)
        stopped = True

    yield deploy(), url, stop
    if not stopped:
        close_moto(server)


@dataclass
class CannedAws:
    """An HTTP server that answers STS with an identity and Lambda with whatever a test sets."""

    url: str = ""
    lambda_status: int = 200
    lambda_headers: dict[str, str] = field(default_factory=dict)
    lambda_body: dict[str, Any] = field(default_factory=dict)
    not_aws: bool = False
    requests: list[str] = field(default_factory=list)


_IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/hodei</Arn><UserId>AIDAEXAMPLE</UserId>
<Account>123456789012</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>1b2c3d4e</RequestId></ResponseMetadata></GetCallerIdentityResponse>"""


@pytest.fixture
def canned_aws() -> Iterator[CannedAws]:
    canned = CannedAws()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            canned.requests.append(f"{self.command} {self.path}")
            if canned.not_aws:
                self._answer(404, "text/html", b"<html><body>Not Found</body></html>")
            elif self.path.startswith("/2015-03-31/functions/"):
                self._answer(canned.lambda_status, "application/json", json.dumps(canned.lambda_body).encode(),
                             canned.lambda_headers)
            else:
                self._answer(200, "text/xml", _IDENTITY.encode())

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:  # `format`: the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    canned.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield canned
    server.shutdown()
    server.server_close()
