"""Calling provider hooks from the event loop, and running a plugin's blocking SDK calls off it.

The core calls the provider hooks through :class:`ProviderHooks` (``pm.provider_hooks``): one typed
method per hook, routed to the plugin serving the provider's type (see
``HodeiPluginManager.provider_hook_caller``), awaited when the answer is awaitable, bounded in time,
and the answer checked to be of the hook's type. :func:`call_provider_hook` is the untyped call
under it, by hook name. A plugin runs its blocking SDK calls through :func:`run_sdk_call` (or
:func:`run_blocking`), in a worker thread, never on the loop.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from hodei.deadline import Deadline
from hodei.domain import BackendWorker, Capacity, HealthResult, Provider, ProviderType, WorkerHandle, WorkerRequest
from hodei.errors import UnknownProviderType


class RoutingManager(Protocol):
    """What calling a provider hook needs of the plugin manager (``hodei.plugins.HodeiPluginManager``, which
    holds a :class:`ProviderHooks` as ``pm.provider_hooks``; named by this protocol so the two modules do
    not import each other)."""

    def provider_hook_caller(self, hook_name: str, provider_type: str) -> Any: ...

    def provider_type(self, name: str) -> ProviderType: ...

    def validate_config(self, provider_type: str, config: Any) -> dict[str, Any]: ...

T = TypeVar("T")


async def run_blocking(func: Callable[..., T], *args: Any, limiter: anyio.CapacityLimiter | None = None,
                       **kwargs: Any) -> T:
    """Run a blocking call (docker-py, kubernetes, boto3) in a worker thread.

    The caller's cancel scope (the core's timeout) abandons the thread rather than waiting for it,
    so a hung backend cannot stall the event loop; pass the same timeout to the SDK so the
    thread ends too. Whatever the thread does after it was abandoned (a container that
    started late) is lost to the caller: record such side effects from inside ``func``, or label
    them so ``hodei_list_workers`` finds them for reconciliation.

    :param limiter: bounds this plugin's threads; anyio's per-event-loop default otherwise.
    """
    call = functools.partial(func, *args, **kwargs)
    return await anyio.to_thread.run_sync(call, abandon_on_cancel=True, limiter=limiter)


# First imports of SDK modules, one at a time: two SDKs imported at once in two threads (docker's and
# kubernetes' health checks, the first round) can meet a shared dependency (requests) half initialised,
# and one of them fails with "cannot import name ... from partially initialized module".
_first_imports = threading.Lock()


def _import(module_name: str) -> Any:
    module = sys.modules.get(module_name)
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
        return module  # imported already: no lock
    with _first_imports:
        return importlib.import_module(module_name)


async def run_sdk_call(target: str, *args: Any, timeout: float | Deadline,
                       limiter: anyio.CapacityLimiter | None = None) -> Any:
    """Run ``module:function(*args, deadline)`` in a worker thread, importing ``module`` in that thread.

    The pattern every built-in plugin follows for its backend hooks: the module that imports the
    SDK (``docker``, ``kubernetes``, ``boto3``) is named here as a string, so the plugin's own
    module never imports it (validation stays pure and cheap) and its first import, which takes
    long enough to stall every other provider's calls, happens in the thread, not on the loop::

        @hookimpl
        async def hodei_provision(provider, request, timeout):
            return await run_sdk_call("hodei_docker.workers:provision", provider, request, timeout=timeout)

    :param target: ``"package.module:function"``, as in an entry point.
    :param timeout: the hook's ``timeout``: the :class:`~hodei.Deadline` passed last to the function
        starts now, so time spent waiting for a free thread counts too. Or a ``Deadline`` already
        started.
    :param limiter: as for :func:`run_blocking`.
    :returns: what the function returns. The thread is abandoned, like :func:`run_blocking`'s,
        when the caller is cancelled (the core's timeout): the function should bound its requests
        by the deadline so that it ends too.
    """
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"target must be 'package.module:function', got {target!r}")
    deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)

    def call() -> Any:
        function = getattr(_import(module_name), function_name)
        return function(*args, deadline)

    return await run_blocking(call, limiter=limiter)


async def call_provider_hook(pm: RoutingManager, hook_name: str, provider: Provider, timeout: float,
                             **kwargs: Any) -> Any:
    """Call the provider hook ``hook_name`` of the plugin serving ``provider``'s type, within ``timeout`` seconds.

    Only that plugin's implementation is called, and those of plugins serving no type (hook
    wrappers), through ``pm.provider_hook_caller``. An awaitable answer is awaited under the same bound.

    :raises UnknownProviderType: when no plugin serves the provider's type, or its plugin answers ``None``.
    :raises TimeoutError: when the plugin does not answer in time.
    """
    with anyio.fail_after(timeout):
        caller = pm.provider_hook_caller(hook_name, provider.provider_type)
        result = caller(provider=provider, timeout=timeout, **kwargs)
        if result is None:
            owner = pm.provider_type(provider.provider_type).plugin_name
            raise UnknownProviderType(f"plugin {owner!r} serves provider type {provider.provider_type!r} "
                                      f"but gave no answer to {hook_name}")
        if inspect.isawaitable(result):
            result = await result
    return result


def _answer(value: Any, kind: type[T], hook: str, provider: Provider) -> T:
    if not isinstance(value, kind):
        raise TypeError(f"the plugin for {provider.provider_type!r} answered {hook} with {type(value).__name__}, "
                        f"not a {kind.__name__}")
    return value


class ProviderHooks:
    """The provider hooks as typed calls: ``await pm.provider_hooks.health_check(provider, timeout)``.

    Each call is routed to the plugin serving the provider's type, bounded by ``timeout`` seconds
    (``TimeoutError``), awaited when the plugin answers with an awaitable, and its answer checked to be
    of the hook's type (``TypeError`` naming the type otherwise). No plugin serving the type, or a
    ``None`` answer, raises :class:`~hodei.errors.UnknownProviderType`.
    """

    def __init__(self, pm: RoutingManager) -> None:
        self._pm = pm

    def validate_config(self, provider_type: str, config: Any) -> dict[str, Any]:
        """``config`` checked and normalised by the type's plugin (synchronous, like the hook)."""
        return self._pm.validate_config(provider_type, config)

    async def health_check(self, provider: Provider, timeout: float) -> HealthResult:
        result = await call_provider_hook(self._pm, "hodei_health_check", provider, timeout)
        return _answer(result, HealthResult, "hodei_health_check", provider)

    async def capacity(self, provider: Provider, timeout: float) -> Capacity:
        result = await call_provider_hook(self._pm, "hodei_capacity", provider, timeout)
        return _answer(result, Capacity, "hodei_capacity", provider)

    async def provision(self, provider: Provider, request: WorkerRequest, timeout: float) -> WorkerHandle:
        result = await call_provider_hook(self._pm, "hodei_provision", provider, timeout, request=request)
        return _answer(result, WorkerHandle, "hodei_provision", provider)

    async def deprovision(self, provider: Provider, handle: WorkerHandle, timeout: float) -> None:
        await call_provider_hook(self._pm, "hodei_deprovision", provider, timeout, handle=handle)

    async def list_workers(self, provider: Provider, timeout: float) -> list[BackendWorker]:
        result = await call_provider_hook(self._pm, "hodei_list_workers", provider, timeout)
        if isinstance(result, (str, bytes, Mapping)) or not hasattr(result, "__iter__"):
            raise TypeError(f"the plugin for {provider.provider_type!r} answered hodei_list_workers with "
                            f"{type(result).__name__}, not a list of BackendWorker")
        return [_answer(worker, BackendWorker, "hodei_list_workers", provider) for worker in result]
