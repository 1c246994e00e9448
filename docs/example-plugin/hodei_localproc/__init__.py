"""Hodei provider type ``localproc``: each worker is a child process of the Hodei daemon.

The worked example of docs/plugin-authors.md: small, but it implements every provider hook the
way a real plugin must (config model, secrets, blocking calls off the event loop, idempotent
deprovision). It only knows the processes this daemon started: after a restart they are orphans.

Every hook is a plain ``@hookimpl``: the core calls this plugin's provider hooks only for
``localproc`` providers (it routes each call to the plugin that declared the provider's type).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from typing import Annotated, Any, Literal

from hodei import (
    BackendWorker,
    Capacity,
    HealthResult,
    Provider,
    ProviderConfigModel,
    ProviderType,
    Resources,
    WorkerHandle,
    WorkerRequest,
    hookimpl,
    run_blocking,
    validate_config_model,
)
from pydantic import Field

# The hook API this plugin is built for (docs/plugin-authors.md, "Stability"): another major is refused.
HODEI_API_VERSION = "1.0"

TYPE = "localproc"

Arg = Annotated[str, Field(min_length=1)]  # not NonEmptyStr: white space in an argument can matter
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]  # Popen refuses '=' in a name


class LocalprocConfig(ProviderConfigModel):
    # The base class brings "type" and the common "capabilities"; it forbids unknown keys.
    type: Literal["localproc"] = TYPE
    command: Annotated[list[Arg], Field(min_length=1)] = ["sleep", "3600"]
    env: dict[EnvName, str] = {}
    secret_env: dict[EnvName, str] = {}  # declared in secret_fields below: shown as *** everywhere
    grace_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0


# provider id -> worker id -> process. Module-level so every plugin manager in the daemon sees
# the same processes; only this module's hooks touch it.
_PROCESSES: dict[str, dict[str, subprocess.Popen[bytes]]] = {}


def _live(provider: Provider) -> dict[str, subprocess.Popen[bytes]]:
    """This provider's processes, with the exited ones reaped (poll() never blocks)."""
    procs = _PROCESSES.setdefault(str(provider.id), {})
    for worker_id, proc in list(procs.items()):
        if proc.poll() is not None:
            del procs[worker_id]
    return procs


def _environment(provider: Provider, request: WorkerRequest) -> dict[str, str]:
    config = provider.config
    return {**os.environ, **config["env"], **config["secret_env"],
            # Last, so a config cannot override what identifies the worker to the server.
            "HODEI_WORKER_ID": request.worker_id, "HODEI_PROVIDER_ID": str(provider.id),
            "HODEI_SERVER_ADDRESS": request.server_address, "HODEI_WORKER_TOKEN": request.token}


def _start(provider: Provider, request: WorkerRequest) -> subprocess.Popen[bytes]:
    # A new session: the worker and its children form one process group we can signal as a
    # whole, and a Ctrl-C aimed at the daemon's terminal does not reach the workers.
    proc = subprocess.Popen(provider.config["command"], env=_environment(provider, request),
                            stdin=subprocess.DEVNULL, start_new_session=True)
    # Recorded here, in the thread: if the core's timeout abandons this call after Popen
    # returned, the process is still listed (and reconciled) instead of leaking unseen.
    _PROCESSES.setdefault(str(provider.id), {})[request.worker_id] = proc
    return proc


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:  # reaped: its pid may belong to someone else by now
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # exited between poll() and killpg(): already gone
            return
        try:
            proc.wait(grace if sig == signal.SIGTERM else None)
            return
        except subprocess.TimeoutExpired:
            continue  # ignored SIGTERM for the whole grace period: kill it


@hookimpl
def hodei_provider_types() -> list[ProviderType]:
    return [ProviderType(TYPE, "workers as local child processes (development, single host)",
                         secret_fields=("secret_env",))]


@hookimpl
def hodei_validate_config(provider_type: str, config: Any) -> dict[str, Any]:
    # Synchronous and pure: the core calls it on every write and every row it reads.
    return validate_config_model(LocalprocConfig, provider_type, config)


@hookimpl
async def hodei_health_check(provider: Provider, timeout: float) -> HealthResult:
    program = provider.config["command"][0]
    if shutil.which(program, path=provider.config["env"].get("PATH")) is None:
        return HealthResult.unhealthy(f"command {program!r} not found or not executable")
    return HealthResult.healthy()


@hookimpl
async def hodei_capacity(provider: Provider, timeout: float) -> Capacity:
    # What the host has; the core applies a config's "capabilities" override itself.
    return Capacity(active_workers=len(_live(provider)),
                    per_worker=Resources(cpu=os.cpu_count(), memory=None, gpu=0))


@hookimpl
async def hodei_provision(provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
    # fork/exec blocks: run it in a worker thread, never on the core's event loop.
    proc = await run_blocking(_start, provider, request)
    return WorkerHandle(request.worker_id, backend_id=str(proc.pid))


@hookimpl
async def hodei_deprovision(provider: Provider, handle: WorkerHandle, timeout: float) -> bool:
    proc = _live(provider).pop(handle.worker_id, None)
    if proc is not None:  # None: exited or never ours; either way it is gone, which is success
        # The timeout covers the grace period: leave half of it for the kill.
        await run_blocking(_stop, proc, min(provider.config["grace_seconds"], timeout / 2))
    return True


@hookimpl
async def hodei_list_workers(provider: Provider, timeout: float) -> list[BackendWorker]:
    return [BackendWorker(worker_id, str(proc.pid)) for worker_id, proc in _live(provider).items()]
