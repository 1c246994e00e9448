"""Hook specifications: the whole contract between the Hodei core and its plugins.

Calling convention (see docs/plugin-authors.md):

* Hooks are called with keyword arguments only. An implementation may accept fewer arguments
  than the spec lists, so specs can grow without breaking plugins.
* Provider hooks (:data:`PROVIDER_HOOKS`) are routed by provider type: the core calls them
  through ``pm.provider_hooks`` (typed, on ``HodeiPluginManager.provider_hook_caller(hook, type)``),
  which reaches only the plugin serving the provider's type, and the ``wrapper=True``
  implementations (tracing, timing) of plugins serving no type. A plain ``@hookimpl`` is enough; an
  implementation is never asked about another plugin's type, and a plain one in a plugin serving
  no type is never called. They stay ``firstresult``: the first answer other than ``None`` is the answer.
* Provider hooks may return their value directly or an awaitable of it (an ``async def``). The
  core awaits it on its event loop under the call's timeout, so an implementation must never
  block: run a blocking SDK call with ``hodei.run_sdk_call`` (or ``hodei.run_blocking``).
* ``hodei_validate_config`` is the exception: it is synchronous and pure, because the CLI, the
  API and the store call it on every write and on every row they read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import pluggy

from hodei.domain import (
    BackendWorker,
    Capacity,
    HealthResult,
    Provider,
    ProviderType,
    WorkerHandle,
    WorkerRequest,
)

if TYPE_CHECKING:
    from hodei.selection.rules import AnyFilter, AnyRanker

PROJECT_NAME = "hodei"

API_VERSION: Final = "1.0"
"""The version of this hook API, ``MAJOR.MINOR`` (docs/plugin-authors.md, "Stability"). A plugin says
which version it was built for with ``HODEI_API_VERSION = "1.0"`` (a module or object attribute of
its entry point); a plugin built for another major version, or a newer minor one, is refused."""

PROVIDER_HOOKS = ("hodei_validate_config", "hodei_health_check", "hodei_capacity", "hodei_provision",
                  "hodei_deprovision", "hodei_list_workers")
"""The hooks the core routes to the plugin serving the provider's type."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


@hookspec
def hodei_provider_types() -> Sequence[ProviderType]:
    """Declare the provider types this plugin serves. Called for every plugin (fan-out).

    A provider type name already declared by another plugin is refused: the later plugin is
    unloaded and reported by ``hodei plugins``.

    :returns: a list of :class:`hodei.ProviderType`.
    """


# --------------------------------------------------------------------------------------------
# Provider hooks (routed to the plugin serving the type; firstresult: the first non-None answer wins)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def hodei_validate_config(provider_type: str, config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Check a provider's ``config`` object and return it normalised. Synchronous and pure.

    Called on every create, update and apply, and for every row read from the database (rows
    can be edited directly in SQL). Must not touch the network or mutate ``config``.

    :param provider_type: the row's ``provider_type``.
    :param config: the ``config`` object as stored (the seed's JSON, including its ``"type"``).
    :returns: the normalised config (defaults filled in, ``"type"`` set) as a JSON-compatible
        mapping, which the other hooks receive as ``provider.config``.
    :raises hodei.ConfigError: naming the field (relative to ``config``) and the reason.
    """


@hookspec(firstresult=True)
def hodei_health_check(provider: Provider, timeout: float) -> HealthResult | Awaitable[HealthResult] | None:
    """Check that the provider's backend can take workers now.

    The core bounds the call by ``timeout`` seconds and records a timeout as Unhealthy; the
    plugin should pass the same bound to its own client so no thread is left hanging.

    :param provider: the provider to check.
    :param timeout: seconds the whole check may take (``health_check_timeout``, default 5).
    :returns: a :class:`hodei.HealthResult`: Healthy; Degraded with a reason when the backend
        answers but something the provider needs is wrong; Unhealthy with a reason when it
        does not answer or refuses.
    """


@hookspec(firstresult=True)
def hodei_capacity(provider: Provider, timeout: float) -> Capacity | Awaitable[Capacity] | None:
    """Report how many of this provider's workers exist now and what one worker can get.

    A ``capabilities`` object in the provider's config overrides what is discovered; the core
    applies that override, so a plugin reports what it finds.

    :param provider: the provider to measure.
    :param timeout: seconds the call may take.
    :returns: a :class:`hodei.Capacity`.
    """


@hookspec(firstresult=True)
def hodei_provision(
    provider: Provider, request: WorkerRequest, timeout: float
) -> WorkerHandle | Awaitable[WorkerHandle] | None:
    """Start one worker on the provider's backend.

    The core has already reserved the slot. The worker must carry ``request.worker_id`` and the
    provider's id where the backend allows (labels), so ``hodei_list_workers`` can find it.

    :param provider: the provider chosen by selection.
    :param request: the worker's id, resources, server address and one-time token (a secret).
    :param timeout: seconds the call may take.
    :returns: a :class:`hodei.WorkerHandle`.
    :raises Exception: any failure; the core releases the slot and tries the next provider.
    """


@hookspec(firstresult=True)
def hodei_deprovision(
    provider: Provider, handle: WorkerHandle, timeout: float
) -> bool | Awaitable[Any] | None:
    """Stop and remove one worker. Idempotent: a worker already gone is success.

    :param provider: the provider that runs the worker.
    :param handle: what ``hodei_provision`` returned.
    :param timeout: seconds the call may take, grace period included.
    :returns: ``True``, or an awaitable.
    """


@hookspec(firstresult=True)
def hodei_list_workers(
    provider: Provider, timeout: float
) -> Sequence[BackendWorker] | Awaitable[Sequence[BackendWorker]] | None:
    """List the workers that exist on the backend for this provider, for reconciliation.

    Must return only this provider's workers, even when several providers share a backend.

    :param provider: the provider whose workers to list.
    :param timeout: seconds the call may take.
    :returns: a list of :class:`hodei.BackendWorker`.
    """


# --------------------------------------------------------------------------------------------
# Selection (fan-out: every plugin contributes rules; hodei.toml orders and removes them).
# The core calls each plugin's implementation on its own (a subset hook caller per plugin, wrappers
# kept), so it knows which plugin contributed which rule and one plugin's failure costs only its rules.
# --------------------------------------------------------------------------------------------


@hookspec
def hodei_selection_filters() -> Sequence[AnyFilter]:
    """Contribute hard filters to the selection chain (:class:`hodei.selection.FilterRule` or
    :class:`hodei.selection.IndexedFilterRule`; the base classes ``Filter``, ``IndexedFilter``).

    A filter has a unique ``name`` (how ``hodei.toml`` orders or removes it) and sees the whole
    candidate set of a decision at once (``admit(candidates, job)``, or ``mask(index, job)``
    answered from the core's cached indexes), so a decision costs one call per filter, not one
    per provider; it gives a reason (``explain``) only when an explanation is asked for, and says
    with ``on_error`` whether a decision skips it (``"open"``, the default) or rejects every
    provider it was asked about (``"closed"``) when it raises.

    :returns: a list of filters; anything else in it is left out and reported.
    """


@hookspec
def hodei_selection_rankers() -> Sequence[AnyRanker]:
    """Contribute rank rules to the selection chain (:class:`hodei.selection.OrderingRule` or
    :class:`hodei.selection.ScoringRule`; the base class ``Ranker``).

    A ranker has a unique ``name`` and ranks the candidates of the chosen region tier in one call:
    an ordering rule returns sort keys, a scoring rule returns finite scores, normalised into
    ``[0, 1]`` (checked), that are summed with the weights from ``hodei.toml``.

    :returns: a list of rankers; anything else in it is left out and reported.
    """
