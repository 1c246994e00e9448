"""Building the plugin manager: entry points loaded one by one, allow/deny lists, introspection,
and routing each provider hook call to the plugin that serves the provider's type."""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import logging
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pluggy

from hodei import hookspecs
from hodei.builtin_plugins import BUILTIN_PLUGINS
from hodei.domain import ProviderType
from hodei.errors import UnknownProviderType

if TYPE_CHECKING:
    from hodei.calls import ProviderHooks

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hodei"
# Plugins that ship in the core but load only when named in `[plugins] enable` (or $HODEI_PLUGINS_ENABLE):
# `static` serves a provider type for tests, benchmarks and dry runs, never wanted in production.
OPTIONAL_PLUGINS = {p.name: p.module for p in BUILTIN_PLUGINS if p.optional}
_API_VERSION = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")
_TYPE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class PluginLoadError:
    """A plugin that could not be used, and why. Shown by ``hodei plugins``; never fatal."""

    name: str
    distribution: str | None
    error: str


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    provider_types: list[str] = field(default_factory=list)


class HodeiPluginManager(pluggy.PluginManager):
    """A pluggy manager that also knows which plugin serves which provider type, and routes by it."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.load_errors: list[PluginLoadError] = []
        self.skipped: list[str] = []
        self._distributions: dict[str, tuple[str | None, str | None]] = {}
        self._types: dict[str, ProviderType] = {}
        # (hook name, provider type) -> the hook caller that reaches only the type's plugin.
        self._routes: dict[tuple[str, str], pluggy.HookCaller] = {}

    # -- registration -------------------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin``; refuse it whole if it declares a taken provider type or an unknown hook,
        or if it is not hashable."""
        refusal = api_version_refusal(plugin)
        if refusal:
            raise ValueError(refusal)
        try:
            hash(plugin)
        except TypeError:
            # pluggy's subset_hook_caller, which routes provider hooks and calls the selection hooks
            # one plugin at a time, keeps plugin objects in sets.
            raise TypeError(f"the plugin object ({type(plugin).__name__}) is not hashable: use a module, or an "
                            "object whose class keeps object.__hash__ (a dataclass: eq=False)") from None
        declared = _declared_types(plugin)
        taken = {t.name: self._types[t.name].plugin_name for t in declared if t.name in self._types}
        if taken:
            kind, owner = next(iter(taken.items()))
            raise ValueError(f"provider type {kind!r} is already served by plugin {owner!r}")
        try:
            plugin_name = super().register(plugin, name)
            if plugin_name is None:
                return None
            unknown = sorted(c.name for c in self.get_hookcallers(plugin) or () if c.spec is None)
            if unknown:
                super().unregister(plugin)
                raise pluggy.PluginValidationError(plugin, f"implements unknown hook(s) {', '.join(unknown)}")
            for ptype in declared:
                self._types[ptype.name] = replace(ptype, plugin_name=plugin_name)
            if not declared:
                for hook in self._unrouted_hooks(plugin):
                    log.warning("plugin %s declares no provider type, so its %s is never called: a provider hook "
                                "reaches the plugin serving the provider's type, and wrapper=True implementations",
                                plugin_name, hook)
            return plugin_name
        finally:
            # Routes built before the new plugin's types were known would send it foreign calls.
            self._routes.clear()

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        name = name or (self.get_name(plugin) if plugin is not None else None)
        removed = super().unregister(plugin, name)
        self._types = {k: t for k, t in self._types.items() if t.plugin_name != name}
        self._routes.clear()
        self._distributions.pop(name or "", None)
        return removed

    def register_plugin(self, plugin: object, name: str, distribution: str | None = None,
                        version: str | None = None) -> bool:
        """Register ``plugin`` if it is sound; otherwise record why and leave the rest untouched."""
        try:
            self.register(plugin, name=name)
        except Exception as exc:  # a plugin's own bug must not stop the others loading
            self._reject(name, distribution, str(exc) or type(exc).__name__)
            return False
        self._distributions[name] = (distribution, version)
        return True

    def _reject(self, name: str, distribution: str | None, error: str) -> None:
        log.warning("plugin %s not loaded: %s", name, error)
        self.load_errors.append(PluginLoadError(name, distribution, error))

    # -- provider types -----------------------------------------------------------------------

    @property
    def provider_types(self) -> dict[str, ProviderType]:
        """Every provider type a loaded plugin serves, by name."""
        return dict(self._types)

    def provider_type(self, name: str) -> ProviderType:
        try:
            return self._types[name]
        except KeyError:
            installed = ", ".join(sorted(self._types)) or "none"
            raise UnknownProviderType(
                f"unknown provider type {name!r} (installed: {installed})") from None

    # -- routing ------------------------------------------------------------------------------

    @cached_property
    def provider_hooks(self) -> ProviderHooks:
        """The provider hooks as typed calls, routed by type (:class:`hodei.calls.ProviderHooks`)."""
        from hodei.calls import ProviderHooks

        return ProviderHooks(self)

    def _unrouted_hooks(self, plugin: object) -> list[str]:
        """The provider hooks ``plugin`` implements that no route calls, as it serves no type: those that
        are not wrappers."""
        return sorted(caller.name for caller in self.get_hookcallers(plugin) or ()
                      if caller.name in hookspecs.PROVIDER_HOOKS
                      and any(impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper)
                              for impl in caller.get_hookimpls()))

    def provider_hook_caller(self, hook_name: str, provider_type: str) -> pluggy.HookCaller:
        """The provider hook ``hook_name`` as it is called for providers of ``provider_type``.

        A pluggy subset hook caller (``subset_hook_caller``, as pytest routes hooks per directory)
        that calls the implementation of the plugin serving this type, and the hook wrappers
        (``wrapper=True``: tracing, timing, audit) of plugins that serve no type at all, so they
        still see the call, and ``pm.enable_tracing()`` traces it. A plain implementation in a plugin
        serving no type is left out: it would answer for every type. Built once per (hook, type) and
        rebuilt after any plugin is registered or unregistered.

        :raises UnknownProviderType: when no loaded plugin serves ``provider_type``.
        :raises ValueError: when ``hook_name`` is not a provider hook.
        """
        key = (hook_name, provider_type)
        caller = self._routes.get(key)
        if caller is not None:
            return caller
        if hook_name not in hookspecs.PROVIDER_HOOKS:
            raise ValueError(f"{hook_name!r} is not a provider hook (one of {', '.join(hookspecs.PROVIDER_HOOKS)})")
        owner = self.provider_type(provider_type).plugin_name
        others = {t.plugin_name for t in self._types.values()} - {owner}
        removed = [self.get_plugin(name) for name in others]
        # A plugin serving no type keeps only its wrappers of the hook (pluggy removes per plugin, and a
        # plugin has one implementation of a hook: a wrapper or not).
        removed += [impl.plugin for impl in getattr(self.hook, hook_name).get_hookimpls()
                    if impl.plugin_name != owner and impl.plugin_name not in others
                    and not (impl.wrapper or impl.hookwrapper)]
        caller = self.subset_hook_caller(hook_name, remove_plugins=removed)
        self._routes[key] = caller
        return caller

    def validate_config(self, provider_type: str, config: Any) -> dict[str, Any]:
        """``config`` checked and normalised by the plugin serving ``provider_type`` (its routed
        ``hodei_validate_config``). Synchronous, like the hook.

        :raises UnknownProviderType: when no plugin serves the type, or its plugin answers ``None``.
        :raises hodei.ConfigError: when the plugin refuses the config (fields relative to ``config``).
        """
        caller = self.provider_hook_caller("hodei_validate_config", provider_type)
        result = caller(provider_type=provider_type, config=config)
        if result is None:
            raise UnknownProviderType(f"the plugin for {provider_type!r} does not validate configs")
        return dict(result)

    # -- introspection ------------------------------------------------------------------------

    def plugin_infos(self) -> list[PluginInfo]:
        types_by_plugin: dict[str, list[str]] = {}
        for ptype in self._types.values():
            types_by_plugin.setdefault(ptype.plugin_name, []).append(ptype.name)
        infos = []
        for name, plugin in sorted(self.list_name_plugin(), key=lambda item: item[0]):
            distribution, version = self._distributions.get(name, (None, None))
            hooks = sorted(c.name for c in self.get_hookcallers(plugin) or ())
            infos.append(PluginInfo(name, distribution, version, hooks, sorted(types_by_plugin.get(name, []))))
        return infos


def api_version_refusal(plugin: object) -> str:
    """Why ``plugin`` cannot be loaded for the hook API version it declares (``HODEI_API_VERSION``), or "".

    A plugin built for this API's major version and a minor version up to this one's is loaded; one that
    declares none is taken to be built for this version (plugins written before the declaration).
    """
    declared = getattr(plugin, "HODEI_API_VERSION", None)
    if declared is None:
        return ""
    ours = hookspecs.API_VERSION
    match = _API_VERSION.fullmatch(declared) if isinstance(declared, str) else None
    if match is None:
        return (f"refused: HODEI_API_VERSION must be a string 'MAJOR.MINOR' (this Hodei's is {ours!r}), "
                f"got {declared!r}")
    major, minor = int(match[1]), int(match[2])
    our_major, our_minor = (int(part) for part in ours.split("."))
    if major != our_major:
        return (f"refused: built for Hodei plugin API {declared}; this Hodei speaks {ours} (a new major version "
                f"is a breaking change: install a version of the plugin built for {our_major}.x)")
    if minor > our_minor:
        return (f"refused: built for Hodei plugin API {declared}, newer than this Hodei's {ours} (it may use "
                f"hooks this Hodei does not have: upgrade Hodei)")
    return ""


def _declared_types(plugin: object) -> list[ProviderType]:
    impl = getattr(plugin, "hodei_provider_types", None)
    if impl is None or not hasattr(impl, f"{hookspecs.PROJECT_NAME}_impl"):
        return []
    declared = list(impl() or ())
    seen: set[str] = set()
    for item in declared:
        if not isinstance(item, ProviderType):
            raise TypeError(f"hodei_provider_types returned {type(item).__name__}, not hodei.ProviderType")
        if not _TYPE_NAME.fullmatch(item.name):
            raise ValueError(f"provider type name {item.name!r} must match {_TYPE_NAME.pattern}")
        if item.name in seen:
            raise ValueError(f"provider type {item.name!r} is declared twice")
        seen.add(item.name)
    return declared


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def make_plugin_manager(
    *,
    allow: Iterable[str] | None = None,
    deny: Iterable[str] = (),
    load_entry_points: bool = True,
    plugins: Iterable[tuple[str, object]] = (),
    builtin_rules: bool = True,
    enable: Iterable[str] = (),
) -> HodeiPluginManager:
    """Build a fresh plugin manager.

    :param allow: entry point names to load; ``None`` or empty loads every installed one.
    :param deny: entry point names never to load (wins over ``allow``).
    :param load_entry_points: ``False`` loads only ``plugins`` (tests).
    :param plugins: ``(name, plugin)`` pairs registered before the entry points: the core's own.
    :param builtin_rules: register the built-in selection rules (plugin ``hodei.selection``).
    :param enable: the core's optional plugins to load (:data:`OPTIONAL_PLUGINS`); ``deny`` wins.
    """
    from hodei import __version__

    pm = HodeiPluginManager()
    if builtin_rules:
        _register_builtins(pm, __version__)
    for name, plugin in plugins:
        pm.register_plugin(plugin, name, distribution="hodei", version=__version__)
    allowed = set(allow or ())
    denied = set(deny)
    _register_optionals(pm, set(enable), denied, __version__)
    if not load_entry_points:
        return pm
    installed = sorted(_entry_points(), key=lambda e: e.name)
    loaded: list[tuple[importlib.metadata.EntryPoint, object]] = []
    for ep in installed:
        dist = ep.dist.name if ep.dist else None
        if ep.name in denied or (allowed and ep.name not in allowed):
            pm.skipped.append(ep.name)
            continue
        if pm.has_plugin(ep.name):
            pm._reject(ep.name, dist, f"another plugin is already registered as {ep.name!r}")
            continue
        try:
            loaded.append((ep, ep.load()))
        except Exception as exc:  # one broken plugin is reported; the others still load
            log.debug("loading entry point %s failed", ep.name, exc_info=True)
            pm._reject(ep.name, dist, f"cannot import {ep.value}: {type(exc).__name__}: {exc}")

    def owns_its_name(item: tuple[importlib.metadata.EntryPoint, object]) -> bool:
        try:
            return item[0].name in {t.name for t in _declared_types(item[1])}
        except Exception:
            return False

    # A type belongs to the plugin whose entry point carries its name (`docker = "hodei_docker"`),
    # so another package claiming `docker` is the one refused, whatever its name sorts as.
    for ep, plugin in sorted(loaded, key=lambda item: (not owns_its_name(item), item[0].name)):
        pm.register_plugin(plugin, ep.name, ep.dist.name if ep.dist else None, ep.dist.version if ep.dist else None)
    for name in sorted((allowed | denied) - {ep.name for ep in installed} - set(OPTIONAL_PLUGINS)):
        log.warning("hodei.toml names plugin %r in an allow/deny list but no such plugin is installed", name)
    return pm


def _register_builtins(pm: HodeiPluginManager, version: str) -> None:
    for builtin in BUILTIN_PLUGINS:
        if not builtin.optional:
            pm.register_plugin(importlib.import_module(builtin.module), builtin.name, distribution="hodei",
                               version=version)


def _register_optionals(pm: HodeiPluginManager, enable: set[str], denied: set[str], version: str) -> None:
    for name in sorted(enable):
        if name in denied:
            pm.skipped.append(name)
        else:
            _register_optional(pm, name, version)


def _register_optional(pm: HodeiPluginManager, name: str, version: str) -> None:
    module = OPTIONAL_PLUGINS.get(name)
    if module is None:
        known = ", ".join(sorted(OPTIONAL_PLUGINS))
        pm._reject(name, "hodei", f"no optional plugin of the core is called {name!r} (there are: {known})")
        return
    if pm.has_plugin(name):
        return
    try:
        plugin = importlib.import_module(module)
    except Exception as exc:
        pm._reject(name, "hodei", f"cannot import {module}: {type(exc).__name__}: {exc}")
        return
    pm.register_plugin(plugin, name, distribution="hodei", version=version)


def provider_hook(provider_type: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make ``func`` the ``hodei_*`` hook implementation for one provider type, checking the type.

    The wrapped function is called only for providers of that type and may be ``async``; for
    any other type the wrapper returns ``None``. The core routes provider hooks to the plugin
    serving the type (``HodeiPluginManager.provider_hook_caller``), so for a plugin serving one
    type the check never fails and plain ``@hookimpl`` does the same; this decorator is kept for
    the plugins written before routing, and for code that calls ``pm.hook.hodei_*`` unrouted.

    .. deprecated:: 0.1
        Use ``@hodei.hookimpl``: provider hooks are routed by type. Decorating warns
        (``DeprecationWarning``); the decorator will be removed in the next major version.
    """
    warnings.warn("hodei.provider_hook is deprecated: provider hooks are routed to the plugin serving the "
                  "type, so plain @hodei.hookimpl does the same; it will be removed in the next major version",
                  DeprecationWarning, stacklevel=2)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        params = [p for p in inspect.signature(func).parameters.values()
                  if p.default is inspect.Parameter.empty]
        names = [p.name for p in params]
        if "provider" in names:
            position, of_provider = names.index("provider"), True
        elif "provider_type" in names:
            position, of_provider = names.index("provider_type"), False
        else:
            raise TypeError(f"{func.__name__} must take a 'provider' or 'provider_type' argument without default")

        @functools.wraps(func)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            value = args[position] if position < len(args) else kwargs[names[position]]
            kind = value.provider_type if of_provider else value
            if kind != provider_type:
                return None
            return func(*args, **kwargs)

        return hookspecs.hookimpl(dispatch)

    return decorate
