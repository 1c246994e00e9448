"""The health check against a moto server, a server that stops, endpoints that misbehave, and bad credentials."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hodei import HealthResult, HealthStatus, Provider
from hodei_lambda import aws, hodei_health_check

if TYPE_CHECKING:
    from conftest import CannedAws, Function

MakeProvider = Callable[..., Provider]  # the conftest fixture: make_provider(**config overrides)


def health(provider: Provider, timeout: float = 10.0) -> HealthResult:
    return anyio.run(hodei_health_check, provider, timeout)


def test_deployed_function_is_healthy(make_provider: MakeProvider, worker_function: Function) -> None:
    result = health(make_provider())
    assert result.status is HealthStatus.HEALTHY, result.reason
    assert repr(worker_function.name) in result.reason


def test_function_named_by_arn_is_healthy(make_provider: MakeProvider, worker_function: Function) -> None:
    result = health(make_provider(function_name=worker_function.arn))
    assert result.status is HealthStatus.HEALTHY, result.reason


def test_missing_function_is_unhealthy(make_provider: MakeProvider) -> None:
    # Every invocation would fail: selection must leave the provider out, not rank it as Degraded.
    result = health(make_provider(function_name="no-such-worker"))
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason.startswith("no worker can start: ")
    assert "'no-such-worker' not found in us-east-1" in result.reason


@pytest.mark.parametrize("override, named", [
    ({"memory_mb": 2048}, "memory_mb is 1024 on the function, 2048 in the config"),
    ({"timeout_seconds": 60}, "timeout_seconds is 900 on the function, 60 in the config"),
    ({"runtime": "python3.12"}, "runtime is 'provided.al2' on the function, 'python3.12' in the config"),
    ({"layers": []}, "layers is ['arn:aws:lambda:us-east-1:123456789012:layer:common:1'] on the function, [] in"),
])
def test_function_that_differs_from_the_config_is_degraded(make_provider: MakeProvider,
                                                           override: dict[str, Any], named: str) -> None:
    result = health(make_provider(**override))
    assert result.status is HealthStatus.DEGRADED
    assert named in result.reason


def test_stopped_server_is_unhealthy(make_provider: MakeProvider,
                                     stopped_endpoint: tuple[Function, str, Callable[[], None]]) -> None:
    function, url, stop = stopped_endpoint
    provider = make_provider(function, url)
    assert health(provider).status is HealthStatus.HEALTHY
    stop()
    result = health(provider)
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason.startswith(f"cannot reach {url}")


def test_endpoint_that_is_not_aws_is_unhealthy(make_provider: MakeProvider, canned_aws: CannedAws) -> None:
    canned_aws.not_aws = True
    result = health(make_provider(endpoint_url=canned_aws.url))
    assert result.status is HealthStatus.UNHEALTHY
    assert "did not confirm the credentials (sts:GetCallerIdentity): 404" in result.reason


def test_endpoint_that_never_answers_is_unhealthy_within_the_timeout(make_provider: MakeProvider,
                                                                      silent_endpoint: str) -> None:
    provider = make_provider(endpoint_url=silent_endpoint)
    for service in ("sts", "lambda"):  # made before the clock starts: the endpoint's silence is what is timed
        aws.client(provider, service, 0.5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.05)
            ticks += 1

    async def scenario() -> HealthResult:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(tick)
            result = await hodei_health_check(provider=provider, timeout=1.0)
            tasks.cancel_scope.cancel()
        return result

    started = time.monotonic()
    result = anyio.run(scenario)
    elapsed = time.monotonic() - started
    assert result.status is HealthStatus.UNHEALTHY
    assert "did not answer" in result.reason
    assert elapsed < 1.5
    assert ticks >= 3, "the event loop was blocked while waiting for the endpoint"


def test_missing_credentials_are_unhealthy(make_provider: MakeProvider,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = health(make_provider())
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason == "no usable AWS credentials: Unable to locate credentials"


def test_missing_profile_is_unhealthy(make_provider: MakeProvider) -> None:
    result = health(make_provider(profile="no-such-profile"))
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason == "no usable AWS credentials: The config profile (no-such-profile) could not be found"


def test_credentials_come_from_the_named_profile(make_provider: MakeProvider, tmp_path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text("[hodei]\naws_access_key_id = profile-key-id\naws_secret_access_key = profile-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    assert health(make_provider(profile="hodei")).status is HealthStatus.HEALTHY
    assert health(make_provider()).status is HealthStatus.UNHEALTHY  # the default chain finds nothing


@pytest.fixture
def moto_checks_credentials(moto_endpoint: str) -> Iterator[None]:
    """moto refuses keys its IAM does not know, as AWS does, until the test ends."""

    def reset_auth(count: str) -> None:
        with urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset-auth",
                                                           data=count.encode(), method="POST",
                                                           headers={"Content-Type": "text/plain"}), timeout=10):
            pass

    reset_auth("0")
    try:
        yield
    finally:
        reset_auth("inf")


def test_credentials_aws_refuses_are_unhealthy(make_provider: MakeProvider,
                                               moto_checks_credentials: None) -> None:
    result = health(make_provider())
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason.startswith("no usable AWS credentials: InvalidClientTokenId")
    assert "testing-secret-key" not in result.reason


def _lambda_error(code: str, message: str, status: int = 403) -> dict[str, Any]:
    return {"lambda_status": status, "lambda_headers": {"x-amzn-ErrorType": code},
            "lambda_body": {"Type": "User", "Message": message}}


def test_permission_denied_is_degraded(make_provider: MakeProvider,
        canned_aws: CannedAws, worker_function: Function) -> None:
    canned_aws.__dict__.update(_lambda_error("AccessDeniedException", "not authorized to perform: "
                                             "lambda:GetFunctionConfiguration"))
    result = health(make_provider(endpoint_url=canned_aws.url))
    assert result.status is HealthStatus.DEGRADED
    assert result.reason.startswith("permission denied to arn:aws:iam::123456789012:user/hodei: "
                                    "lambda:GetFunctionConfiguration")
    assert canned_aws.requests == ["POST /", f"GET /2015-03-31/functions/{worker_function.name}/configuration"]


def test_credentials_lambda_refuses_are_unhealthy(make_provider: MakeProvider,
        canned_aws: CannedAws, worker_function: Function) -> None:
    canned_aws.__dict__.update(_lambda_error("UnrecognizedClientException", "The security token included in "
                                             "the request is invalid."))
    result = health(make_provider(endpoint_url=canned_aws.url))
    assert result.status is HealthStatus.UNHEALTHY
    assert result.reason.startswith("Lambda refuses the credentials of arn:aws:iam::123456789012:user/hodei")


@pytest.mark.parametrize("state, reason", [
    ("Pending", "The function is being created."),
    ("Inactive", "The function has been idle for a long time."),
    ("Failed", "The role cannot be assumed."),
])
def test_function_that_is_not_active_is_degraded(make_provider: MakeProvider, canned_aws: CannedAws,
                                                 worker_function: Function, state: str, reason: str) -> None:
    canned_aws.lambda_body = {"FunctionName": worker_function.name, "State": state, "StateReason": reason,
                              "MemorySize": 1024, "Timeout": 900, "Runtime": "provided.al2", "PackageType": "Zip"}
    result = health(make_provider(endpoint_url=canned_aws.url))
    assert result.status is HealthStatus.DEGRADED
    assert result.reason == f"worker function {worker_function.name!r} is {state}, not Active: {reason}"


def test_container_image_function_is_not_compared_by_runtime(make_provider: MakeProvider, canned_aws: CannedAws,
                                                             worker_function: Function) -> None:
    canned_aws.lambda_body = {"FunctionName": worker_function.name, "State": "Active", "MemorySize": 1024,
                              "Timeout": 900, "PackageType": "Image"}
    result = health(make_provider(endpoint_url=canned_aws.url, layers=[]))
    assert result.status is HealthStatus.HEALTHY, result.reason
