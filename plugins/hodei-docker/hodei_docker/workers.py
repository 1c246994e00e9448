"""Worker containers: start, stop, list and count one provider's workers. Blocking; runs in worker threads."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import docker.errors
import docker.types
from hodei import BackendWorker, Capacity, Deadline, JobFailed, Provider, Resources, WorkerHandle, WorkerRequest

from hodei_docker.client import EngineError, client_for, engine_address, engine_errors, is_not_found
from hodei_docker.labels import WORKER_ID, provider_filter, worker_labels

# Docker's container name grammar; a worker id that does not fit leaves the container unnamed.
_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,200}")
# Removing a container that failed to start goes on after the hook's deadline, up to this long,
# so a failed provision does not leave a container behind.
_CLEANUP_SECONDS = 10.0


def container_name(worker_id: str) -> str | None:
    name = f"hodei-worker-{worker_id}"
    return name if _CONTAINER_NAME.fullmatch(name) else None


def environment(provider: Provider, request: WorkerRequest) -> dict[str, str]:
    """The job's variables, then what the worker needs to find the server and prove who it is (last, so
    the job can never override them)."""
    return {
        **request.env, **request.secret_env,
        "HODEI_WORKER_ID": request.worker_id,
        "HODEI_PROVIDER_ID": str(provider.id),
        "HODEI_SERVER_ADDRESS": request.server_address,
        "HODEI_WORKER_TOKEN": request.token,
    }


def registry_of(image: str) -> str:
    """The registry an image reference pulls from (Docker's rule: a first part with '.', ':' or localhost)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def registry_auth(config: Mapping[str, Any], image: str | None = None) -> dict[str, str] | None:
    """The credentials for pulling ``image``: only for the registry of the provider's default_image, so a
    job's image from elsewhere never receives them."""
    auth = config["registry_auth"]
    if auth is None or (image is not None and registry_of(image) != registry_of(config["default_image"])):
        return None
    return {"username": auth["username"], "password": str(auth["password"])}


def _host_config(api: docker.APIClient, config: Mapping[str, Any], request: WorkerRequest) -> dict[str, Any]:
    defaults = config["default_resources"]
    cpu = request.cpu if request.cpu is not None else defaults["cpu_limit"]
    memory = request.memory if request.memory is not None else defaults["memory_limit"]
    gpus = [docker.types.DeviceRequest(count=request.gpu, capabilities=[["gpu"]])] if request.gpu else None
    return api.create_host_config(
        nano_cpus=round(cpu * 1e9), mem_limit=memory, network_mode=config["network"], init=config["init"],
        device_requests=gpus,
    )


def _pull(api: docker.APIClient, config: Mapping[str, Any], image: str, deadline: Deadline, *,
          the_jobs: bool) -> None:
    """Pull ``image``. ``the_jobs``: it is the job's own image (not the provider's default_image), so
    a pull that fails before the deadline (no such image, access denied, a registry the engine cannot
    reach) is the job's failure (:class:`hodei.JobFailed`): the engine answered, the provider is fine."""
    try:
        with engine_errors(config, f"pull {image}", deadline):
            # A failed pull can still answer 200 and report the error in the progress stream.
            for event in api.pull(image, stream=True, decode=True, auth_config=registry_auth(config, image)):
                if "error" in event:
                    raise EngineError(f"Docker engine at {engine_address(config)}: cannot pull {image}: "
                                      f"{event['error']}")
                deadline.request_timeout()  # raises once the hook's time is up, pull or no pull
    except EngineError as exc:
        if the_jobs and deadline.remaining() > 0:
            raise JobFailed(f"the job's image {image!r} cannot be pulled: {exc}") from None
        raise


def provision(provider: Provider, request: WorkerRequest, deadline: Deadline) -> WorkerHandle:
    config = provider.config
    image = request.image or config["default_image"]
    with deadline.applied(), engine_errors(config, f"create worker {request.worker_id}", deadline):
        api = client_for(config)
        settings: dict[str, Any] = {
            "image": image, "command": config["command"], "environment": environment(provider, request),
            "labels": worker_labels({**config["labels"], **request.labels}, provider.id, request.worker_id),
            "host_config": _host_config(api, config, request), "name": container_name(request.worker_id),
        }
        if request.command:
            # The job's command is what runs: it replaces the image's ENTRYPOINT and CMD (Kubernetes' command).
            settings["entrypoint"], settings["command"] = list(request.command), None
        try:
            container_id = api.create_container(**settings)["Id"]
        except docker.errors.ImageNotFound:
            _pull(api, config, image, deadline, the_jobs=image != config["default_image"])
            container_id = api.create_container(**settings)["Id"]
    try:
        with deadline.applied(), engine_errors(config, f"start worker {request.worker_id}", deadline):
            api.start(container_id)
    except EngineError:
        _remove_quietly(api, container_id)
        raise
    return WorkerHandle(request.worker_id, container_id, {"image": image, "name": settings["name"]})


def _remove_quietly(api: docker.APIClient, container_id: str) -> None:
    try:
        with Deadline(_CLEANUP_SECONDS).applied():
            api.remove_container(container_id, force=True)
    except Exception:  # the container is labelled: list_workers shows it, and reconciliation removes it
        pass


def deprovision(provider: Provider, handle: WorkerHandle, deadline: Deadline) -> bool:
    """Stop with the grace period (SIGTERM, then SIGKILL), then remove. A container already gone is success."""
    config = provider.config
    # Half the call's time at most: removing the container comes after the grace period.
    grace = math.floor(min(config["stop_grace_seconds"], deadline.remaining() / 2))
    with deadline.applied(), engine_errors(config, f"remove worker {handle.worker_id}", deadline):
        api = client_for(config)
        try:
            # The SDK adds the grace period to the request's timeout: keep the sum within the deadline.
            with deadline.applied(reserve=grace):
                api.stop(handle.backend_id, timeout=grace)
            api.remove_container(handle.backend_id, force=True)
        except docker.errors.APIError as exc:
            if not (is_not_found(exc) or _removal_in_progress(exc)):
                raise
    return True


def _removal_in_progress(exc: docker.errors.APIError) -> bool:
    return exc.status_code == 409 and "already in progress" in str(exc.explanation)


def list_workers(provider: Provider, deadline: Deadline) -> list[BackendWorker]:
    config = provider.config
    with deadline.applied(), engine_errors(config, "list workers", deadline):
        containers = client_for(config).containers(all=True, filters=provider_filter(provider.id))
    return [
        BackendWorker(worker_id=c["Labels"][WORKER_ID], backend_id=c["Id"], state=c["State"],
                      created_at=datetime.fromtimestamp(c["Created"], UTC))
        for c in containers
    ]


def capacity(provider: Provider, deadline: Deadline) -> Capacity:
    """Existing workers, and the engine's CPUs and memory; a ``capabilities`` config value wins over either."""
    config = provider.config
    with deadline.applied(), engine_errors(config, "measure capacity", deadline):
        api = client_for(config)
        count = len(api.containers(all=True, filters=provider_filter(provider.id)))
        info = api.info()
    discovered = Resources(cpu=float(info["NCPU"]), memory=int(info["MemTotal"]), gpu=None)
    override = {kind: value for kind, value in (config["capabilities"] or {}).items() if value is not None}
    return Capacity(active_workers=count, per_worker=dataclasses.replace(discovered, **override))
