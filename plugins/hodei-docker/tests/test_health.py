"""Health against a real engine and against engines that are missing, refuse, or hang; secrets stay secret."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import anyio
import pytest
from hodei import HealthStatus, WorkerHandle, WorkerRequest
from hodei.calls import call_provider_hook
from hodei_docker.client import EngineError

# An image on a registry that refuses connections at once: "not present locally and cannot be pulled".
UNPULLABLE_IMAGE = "127.0.0.1:9/hodei/missing-worker:1"
PASSWORD = "s3cret-Registry-Passw0rd"


def test_a_working_engine_is_healthy(call, make_provider, docker_config) -> None:
    result = call("hodei_health_check", make_provider(docker_config), timeout=5)
    assert (result.status, result.reason) == (HealthStatus.HEALTHY, "")


def test_a_wrong_socket_path_is_unhealthy_and_says_so(call, make_provider, docker_config) -> None:
    result = call("hodei_health_check", make_provider({**docker_config, "socket_path": "/nonexistent/docker.sock"}),
                  timeout=5)
    assert result.status == HealthStatus.UNHEALTHY
    assert "unix:///nonexistent/docker.sock" in result.reason and "no such socket" in result.reason


def test_an_engine_that_refuses_is_unhealthy(call, make_provider, docker_config, refusing_socket) -> None:
    result = call("hodei_health_check", make_provider({**docker_config, "socket_path": refusing_socket}), timeout=5)
    assert result.status == HealthStatus.UNHEALTHY
    assert "refused the connection" in result.reason


def test_a_hung_engine_is_unhealthy_within_the_timeout_and_never_blocks_the_event_loop(
        hodei_pm, make_provider, docker_config, silent_engine) -> None:
    provider = make_provider({**docker_config, "socket_path": silent_engine})
    timeout, tick = 1.0, 0.05

    async def scenario() -> tuple[Any, float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(tick)
                ticks += 1

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ticker)
            started = time.monotonic()
            result = await call_provider_hook(hodei_pm, "hodei_health_check", provider, timeout)
            elapsed = time.monotonic() - started
            tasks.cancel_scope.cancel()
        return result, elapsed, ticks

    result, elapsed, ticks = anyio.run(scenario)
    # The plugin answers itself, with the engine and the bound, before the core's timeout cuts it off.
    assert result.status == HealthStatus.UNHEALTHY
    assert f"unix://{silent_engine} did not answer within 1s" in result.reason
    assert elapsed < timeout
    assert ticks >= 0.5 * elapsed / tick, "the event loop was blocked while the engine hung"


def test_every_hook_is_bounded_by_its_timeout_on_a_hung_engine(call, make_provider, docker_config,
                                                               silent_engine) -> None:
    provider = make_provider({**docker_config, "socket_path": silent_engine})
    job = WorkerRequest(worker_id="hung-1", server_address="10.0.0.1:1", token="t")
    for hook, kwargs in [("hodei_provision", {"request": job}), ("hodei_list_workers", {}),
                         ("hodei_capacity", {}), ("hodei_deprovision", {"handle": WorkerHandle("hung-1", "0" * 64)})]:
        started = time.monotonic()
        with pytest.raises((EngineError, TimeoutError)) as info:
            call(hook, provider, timeout=0.5, **kwargs)
        assert time.monotonic() - started < 0.75, hook
        assert "did not answer" in str(info.value) or isinstance(info.value, TimeoutError), hook


def test_a_missing_image_that_cannot_be_pulled_is_unhealthy(call, make_provider, docker_config) -> None:
    # Every provision would fail: the seed's "cannot accept new workers", so selection leaves it out.
    provider = make_provider({**docker_config, "default_image": UNPULLABLE_IMAGE})
    result = call("hodei_health_check", provider, timeout=5)
    assert result.status == HealthStatus.UNHEALTHY
    assert result.reason.startswith("no worker can start: ")
    assert f"default_image {UNPULLABLE_IMAGE!r} is not present on the engine and cannot be pulled" in result.reason
    with pytest.raises(EngineError):  # what the health check foretold
        call("hodei_provision", provider, timeout=10,
             request=WorkerRequest(worker_id="no-image", server_address="10.0.0.1:1", token="t"))


def test_a_missing_network_is_unhealthy(call, make_provider, docker_config) -> None:
    network = f"hodei-no-such-net-{uuid.uuid4().hex[:6]}"
    result = call("hodei_health_check", make_provider({**docker_config, "network": network}), timeout=5)
    assert (result.status, result.reason) == (HealthStatus.UNHEALTHY,
                                              f"no worker can start: network {network!r} does not exist on the engine")


def test_an_image_that_cannot_be_checked_is_degraded(call, make_provider, docker_config, monkeypatch) -> None:
    # The engine errs on the question (not "no such image"): the provider may well work, so it stays eligible.
    import docker.api.image

    def broken(self, image):
        raise docker.errors.APIError("500 Server Error: internal error")

    monkeypatch.setattr(docker.api.image.ImageApiMixin, "inspect_image", broken)
    result = call("hodei_health_check", make_provider(docker_config), timeout=5)
    assert result.status == HealthStatus.DEGRADED
    assert result.reason.startswith(f"cannot check default_image {docker_config['default_image']!r}")


def test_missing_tls_files_are_unhealthy_with_the_reason(call, make_provider, docker_config) -> None:
    config = {k: v for k, v in docker_config.items() if k != "socket_path"}
    provider = make_provider({**config, "endpoint": "tcp://127.0.0.1:2376",
                              "tls": {"ca_cert": "/nonexistent/ca.pem", "client_cert": "/nonexistent/cert.pem",
                                      "client_key": "/nonexistent/key.pem"}})
    result = call("hodei_health_check", provider, timeout=5)
    assert result.status == HealthStatus.UNHEALTHY
    assert "TLS settings refused" in result.reason


def test_the_registry_password_never_shows_in_logs_repr_errors_or_answers(call, make_provider, docker_config,
                                                                            caplog) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and urllib3's included
    provider = make_provider({**docker_config, "default_image": UNPULLABLE_IMAGE,
                              "registry_auth": {"username": "bot", "password": PASSWORD}})
    health = call("hodei_health_check", provider, timeout=5)
    with pytest.raises(EngineError) as failed:  # the pull, with the credentials, fails
        call("hodei_provision", provider, timeout=10,
             request=WorkerRequest(worker_id="secret-1", server_address="10.0.0.1:1", token="one-time-token"))

    assert health.status == HealthStatus.UNHEALTHY
    assert "pull" in str(failed.value)
    shown = [repr(provider), str(provider), repr(provider.config), health.reason, str(failed.value),
             repr(failed.value), caplog.text]
    assert not [text for text in shown if PASSWORD in text or "one-time-token" in text]
    assert failed.value.__cause__ is None and failed.value.__suppress_context__, \
        "the SDK's exception holds the request, credentials included: it must not travel up"
