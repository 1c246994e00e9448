"""Calling provider hooks from the event loop: await what is awaitable, bound every call in time."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from hodei.domain import Provider
from hodei.errors import UnknownProviderType

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


async def call_provider_hook(hook: Any, provider: Provider, timeout: float, **kwargs: Any) -> Any:
    """Call a firstresult provider hook for ``provider`` within ``timeout`` seconds.

    :raises UnknownProviderType: when no plugin answers for the provider's type.
    :raises TimeoutError: when the plugin does not answer in time.
    """
    with anyio.fail_after(timeout):
        result = hook(provider=provider, timeout=timeout, **kwargs)
        if result is None:
            raise UnknownProviderType(f"no plugin serves provider type {provider.provider_type!r}")
        if inspect.isawaitable(result):
            result = await result
    return result
