"""Workers as invocations: the lifecycle contract on moto, what the function receives, the in-flight
count, capacity, and the token kept out of logs."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hodei import Capacity, Provider, Resources, WorkerHandle, WorkerRequest
from hodei.calls import call_provider_hook
from hodei.testing.contract import LifecycleContract
from hodei_lambda import aws, hodei_capacity, hodei_deprovision, hodei_list_workers, hodei_provision
from hodei_lambda.inflight import InFlight
from hodei_lambda.invoke import InvokeError

if TYPE_CHECKING:
    from conftest import CannedAws, Function

TOKEN = "one-time-5f2b9c0d8e7a41f3"

MakeProvider = Callable[..., Provider]  # the conftest fixture: make_provider(**config overrides)


def request(worker_id: str | None = None) -> WorkerRequest:
    return WorkerRequest(worker_id=worker_id or f"w-{uuid.uuid4().hex[:8]}", server_address="hodei.internal:50051",
                         token=TOKEN)


def provision(provider: Provider, worker: WorkerRequest, timeout: float = 10.0) -> WorkerHandle:
    return anyio.run(hodei_provision, provider, worker, timeout)


def active_workers(provider: Provider) -> int:
    return hodei_capacity(provider=provider, timeout=5.0).active_workers


class TestLambdaLifecycleContract(LifecycleContract):
    provider_type = "lambda"

    @pytest.fixture
    def live_provider(self, make_provider: MakeProvider) -> Provider:
        return make_provider()


def test_provision_invokes_the_function_asynchronously_with_the_worker_payload(
        make_provider: MakeProvider, worker_function: Function, invocations: list[dict[str, Any]]) -> None:
    provider = make_provider()
    worker = request()
    handle = provision(provider, worker)
    assert invocations == [{
        "function_name": worker_function.name,
        "invocation_type": "Event",
        "payload": {"worker_id": worker.worker_id, "provider_id": str(provider.id),
                    "server_address": "hodei.internal:50051", "token": TOKEN, "env": {}, "labels": {}},
    }]
    assert handle.worker_id == worker.worker_id
    assert handle.backend_id and TOKEN not in handle.backend_id
    assert handle.details["function_name"] == worker_function.name
    assert TOKEN not in json.dumps(handle.details), "the handle is stored and shown: no token in it"


def test_provision_through_the_plugin_manager(hodei_pm, make_provider: MakeProvider,
                                              invocations: list[dict[str, Any]]) -> None:
    provider = make_provider()
    handle = anyio.run(lambda: call_provider_hook(hodei_pm, "hodei_provision", provider, 10.0, request=request()))
    assert [i["payload"]["worker_id"] for i in invocations] == [handle.worker_id]


def test_function_named_by_arn_and_alias_is_invoked(make_provider: MakeProvider, worker_function: Function,
                                                    invocations: list[dict[str, Any]]) -> None:
    provision(make_provider(function_name=worker_function.arn), request())
    assert [i["function_name"] for i in invocations] == [worker_function.arn]


def test_provisioned_worker_is_listed_and_counted_until_deprovisioned(make_provider: MakeProvider,
                                                                       invocations: list[dict[str, Any]]) -> None:
    provider = make_provider()
    first, second = request("first"), request("second")
    before = datetime.now(UTC)
    handles = [provision(provider, first), provision(provider, second)]
    listed = hodei_list_workers(provider=provider, timeout=5.0)
    assert [(w.worker_id, w.backend_id, w.state) for w in listed] == [
        ("first", handles[0].backend_id, "running"), ("second", handles[1].backend_id, "running")]
    assert all(before <= w.created_at <= datetime.now(UTC) for w in listed)
    assert active_workers(provider) == 2
    assert hodei_deprovision(provider=provider, handle=handles[0], timeout=5.0) is True
    assert [w.worker_id for w in hodei_list_workers(provider=provider, timeout=5.0)] == ["second"]
    assert active_workers(provider) == 1
    assert hodei_deprovision(provider=provider, handle=handles[0], timeout=5.0) is True, "idempotent"
    assert len(invocations) == 2, "deprovisioning invokes nothing"


def test_providers_sharing_a_function_count_only_their_own_workers(make_provider: MakeProvider,
                                                                    invocations: list[dict[str, Any]]) -> None:
    mine, theirs = make_provider(), make_provider()
    provision(mine, request())
    assert active_workers(mine) == 1
    assert active_workers(theirs) == 0
    assert hodei_list_workers(provider=theirs, timeout=5.0) == []


def test_missing_function_fails_provisioning_and_counts_nothing(make_provider: MakeProvider,
                                                                 canned_aws: CannedAws) -> None:
    # moto's Lambda without Docker accepts an invocation of any name, so the refusal AWS sends is canned.
    canned_aws.lambda_status = 404
    canned_aws.lambda_headers = {"x-amzn-ErrorType": "ResourceNotFoundException"}
    canned_aws.lambda_body = {"Type": "User", "Message": "Function not found: no-such-worker"}
    provider = make_provider(endpoint_url=canned_aws.url, function_name="no-such-worker")
    with pytest.raises(InvokeError) as info:
        provision(provider, request())
    assert str(info.value).startswith("Lambda did not accept worker ")
    assert "'no-such-worker' (not found): ResourceNotFoundException: Function not found" in str(info.value)
    assert TOKEN not in str(info.value)
    assert canned_aws.requests == ["POST /2015-03-31/functions/no-such-worker/invocations"]
    assert active_workers(provider) == 0


def test_invocation_not_queued_fails_provisioning(make_provider: MakeProvider,
                                                  canned_aws: CannedAws) -> None:
    canned_aws.lambda_status = 200  # an answer to a synchronous invocation, not an accepted event
    provider = make_provider(endpoint_url=canned_aws.url)
    with pytest.raises(InvokeError, match="answered 200 instead of 202"):
        provision(provider, request())
    assert active_workers(provider) == 0


def test_endpoint_that_never_answers_fails_provisioning_within_the_timeout(make_provider: MakeProvider,
                                                                           silent_endpoint: str) -> None:
    provider = make_provider(endpoint_url=silent_endpoint)
    aws.client(provider, "lambda", 1.0)  # made before the clock starts: the endpoint's silence is what is timed
    started = time.monotonic()
    with pytest.raises(InvokeError) as info:
        provision(provider, request(), timeout=1.0)
    assert time.monotonic() - started < 1.5
    assert "(timeout)" in str(info.value)
    assert active_workers(provider) == 0


def test_token_never_reaches_the_sdk_debug_logs(make_provider: MakeProvider,
                                                invocations: list[dict[str, Any]],
                                                caplog: pytest.LogCaptureFixture) -> None:
    worker = request()
    with caplog.at_level(logging.DEBUG):
        provision(make_provider(), worker)
    invoke_logs = [r.getMessage() for r in caplog.records if "OperationModel(name=Invoke)" in r.getMessage()]
    assert invoke_logs, "botocore did not log the request: this test would prove nothing"
    assert worker.worker_id in invoke_logs[0] and "***" in invoke_logs[0]
    assert TOKEN not in caplog.text
    assert invocations[0]["payload"]["token"] == TOKEN, "masked in the logs only, not in what the worker gets"


# -- capacity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("memory_mb, cpu", [(128, 0.072), (1769, 1.0), (1024, 0.579), (10240, 5.789)])
def test_one_worker_gets_the_function_memory_and_its_share_of_cpu(make_provider: MakeProvider,
                                                                  memory_mb: int, cpu: float) -> None:
    capacity = hodei_capacity(provider=make_provider(memory_mb=memory_mb), timeout=5.0)
    assert capacity == Capacity(active_workers=0, per_worker=Resources(cpu=cpu, memory=memory_mb * 2**20, gpu=0))


# -- the in-flight count ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_invocation_stops_counting_when_the_function_timeout_has_passed() -> None:
    clock = Clock()
    registry = InFlight(clock=clock)
    registry.record("p", "w1", "r1", lifetime_seconds=900)
    clock.now += 300
    registry.record("p", "w2", "r2", lifetime_seconds=900)
    clock.now += 599.9
    assert [i.worker_id for i in registry.live("p")] == ["w1", "w2"]
    clock.now += 0.1
    assert [i.worker_id for i in registry.live("p")] == ["w2"]
    assert registry.end("p", "w1") is None, "already ended"
    clock.now += 300
    assert registry.live("p") == []


def test_invocation_ends_when_deprovisioned_and_providers_are_kept_apart() -> None:
    registry = InFlight(now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    recorded = registry.record("p", "w1", "r1", lifetime_seconds=60)
    registry.record("q", "w1", "r2", lifetime_seconds=60)
    assert recorded.accepted_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert registry.end("p", "w1") == recorded
    assert registry.live("p") == []
    assert [i.request_id for i in registry.live("q")] == ["r2"]


def test_worker_counts_for_the_configured_timeout(make_provider: MakeProvider,
                                                  invocations: list[dict[str, Any]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from hodei_lambda import inflight

    clock = Clock()
    monkeypatch.setattr(inflight, "IN_FLIGHT", InFlight(clock=clock))
    provider = make_provider()  # the function's timeout: 900 s
    provision(provider, request())
    clock.now += 899
    assert active_workers(provider) == 1
    clock.now += 1
    assert active_workers(provider) == 0
