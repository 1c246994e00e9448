"""A job's own worker on Lambda: its env reaches the function's event (secret values kept out of the SDK's
logs), an image or a command is refused, by selection first and by the plugin as a last guard."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hodei import JobFailed, Provider, WorkerRequest
from hodei.builtin_plugins.selection_rules import ImageFilter
from hodei.selection import Requirements
from hodei.selection.index import ProviderIndex
from hodei_lambda import hodei_provision

if TYPE_CHECKING:
    from conftest import Function

MakeProvider = Callable[..., Provider]
SECRET = "s3cr3t-lambda-value-9d1c"


def request(**spec: Any) -> WorkerRequest:
    return WorkerRequest(worker_id=f"w-{uuid.uuid4().hex[:8]}", server_address="hodei.internal:50051",
                         token="one-time-token-for-spec", **spec)


def test_the_function_receives_the_jobs_env_and_labels_and_no_secret_reaches_the_logs(
        make_provider: MakeProvider, worker_function: Function, invocations: list[dict[str, Any]],
        caplog: pytest.LogCaptureFixture) -> None:
    worker = request(env={"MODE": "fast"}, secret_env={"API_KEY": SECRET}, labels={"team": "data"})
    with caplog.at_level(logging.DEBUG):
        anyio.run(hodei_provision, make_provider(), worker, 10.0)
    payload = invocations[0]["payload"]
    assert payload["env"] == {"MODE": "fast", "API_KEY": SECRET}
    assert payload["labels"] == {"team": "data"}
    assert SECRET not in caplog.text


@pytest.mark.parametrize("spec", [{"image": "python:3.12"}, {"command": ("python", "job.py")}])
def test_an_image_or_command_is_refused_before_anything_is_invoked(
        make_provider: MakeProvider, invocations: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    with pytest.raises(JobFailed, match="runs its function"):  # the job's failure, not the provider's
        anyio.run(hodei_provision, make_provider(), request(**spec), 10.0)
    assert invocations == []


def test_selection_says_a_lambda_provider_runs_no_job_image(make_provider: MakeProvider) -> None:
    provider = make_provider()
    index = ProviderIndex([provider], {})
    job = Requirements(image="python:3.12")
    assert ImageFilter().admit(index.candidates, job) == [False]
    reason = ImageFilter().explain(index.candidates[0], job)
    assert reason.message == "runs no job image: a lambda provider's workers run what its config names"
    assert "allowed_images" in reason.hint
    assert ImageFilter().admit(index.candidates, Requirements(env={"MODE": "fast"})) == [True], \
        "env alone is fine on Lambda"
