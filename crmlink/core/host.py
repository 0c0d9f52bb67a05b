"""The plugin host: finds plugins, guards against broken ones, and wraps ``pm.hook``.

Built-in plugins (the CSV, Salesforce and HubSpot connectors, contact classification,
LTC mapping and the relationship method) are ordinary modules registered through the
same path as third-party ones found in the ``crmlink`` entry-point group.

Environment controls:

``CRMLINK_LOAD_PLUGINS``     comma list: load only these third-party plugins ('' for none)
``CRMLINK_DISABLE_PLUGINS``  comma list: block these plugins, built-in ones included
``CRMLINK_STRICT_PLUGINS=1`` a plugin that fails to load is an error, not a warning
``CRMLINK_TRACE_PLUGINS=1``  print every hook call and its result to stderr
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import click
import pluggy

from crmlink.core import hookspecs
from crmlink.core.connector import Connector
from crmlink.core.errors import PluginError

ENTRY_POINT_GROUP = "crmlink"

#: (plugin name, module) of the plugins that ship with crmlink.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("csv", "crmlink.plugins.csv"),
    ("salesforce", "crmlink.plugins.salesforce"),
    ("hubspot", "crmlink.plugins.hubspot"),
    ("classify", "crmlink.plugins.classify"),
    ("ltc", "crmlink.plugins.ltc"),
    ("method", "crmlink.plugins.method"),
)


@dataclass
class PluginInfo:
    """What ``crmlink plugins`` shows for one plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool
    status: str = "ok"  # ok | broken | blocked
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    connectors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


class PluginHost:
    """A typed facade over a pluggy ``PluginManager``; core code calls these methods,
    never ``pm.hook`` directly."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.infos: dict[str, PluginInfo] = {}
        self._connectors: dict[str, type[Connector]] | None = None

    # -- loading ---------------------------------------------------------------------------

    def load(self, name: str, module_name: str, *, dist: md.Distribution | None = None,
             builtin: bool = False, loader: Callable[[], object] | None = None) -> None:
        """Import and register one plugin; a failure marks it broken instead of raising."""
        info = PluginInfo(
            name, module_name,
            distribution=dist.metadata["Name"] if dist else ("crmlink" if builtin else None),
            version=dist.version if dist else (_own_version() if builtin else None),
            builtin=builtin,
        )
        self.infos[name] = info
        if name in (_env_list("CRMLINK_DISABLE_PLUGINS") or []):
            info.status = "blocked"
            self.pm.set_blocked(name)
            return
        try:
            plugin = loader() if loader else importlib.import_module(module_name)
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except Exception as exc:  # a third party's bug must not break the CLI
            self._mark_broken(info, exc)
            return
        info.hooks = sorted(impl.name for impl in self.pm.get_hookcallers(plugin) or [])

    def _mark_broken(self, info: PluginInfo, exc: Exception) -> None:
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin)
        info.status = "broken"
        info.error = f"{type(exc).__name__}: {exc}"
        if os.environ.get("CRMLINK_STRICT_PLUGINS") == "1":
            raise PluginError(f"plugin {info.name!r} ({info.distribution}) failed to load: {info.error}") from exc
        click.echo(
            f"crmlink: skipped plugin {info.name!r} ({info.distribution or info.module} "
            f"{info.version or ''}): {info.error} - run 'crmlink plugins' for details or set "
            f"CRMLINK_DISABLE_PLUGINS={info.name}",
            err=True,
        )

    def load_entrypoints(self) -> None:
        only = _env_list("CRMLINK_LOAD_PLUGINS")
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            if only is not None and ep.name not in only:
                continue
            if ep.name in self.infos:
                other = self.infos[ep.name]
                raise PluginError(
                    f"two plugins are named {ep.name!r}: {other.distribution or other.module} and "
                    f"{ep.dist.metadata['Name'] if ep.dist else ep.value}; uninstall one of them"
                )
            self.load(ep.name, ep.value, dist=ep.dist, loader=ep.load)

    def register(self, name: str, plugin: object) -> PluginInfo:
        """Register an already-imported plugin (tests, embedding); returns its info."""
        self.load(name, getattr(plugin, "__name__", name), loader=lambda: plugin)
        self._connectors = None
        return self.infos[name]

    def unregister(self, name: str) -> None:
        """Remove a plugin registered earlier; unknown names are ignored."""
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self._connectors = None

    # -- typed hook calls -----------------------------------------------------------------

    def connectors(self) -> Mapping[str, type[Connector]]:
        """Connector classes by name; a name offered twice is a :class:`PluginError`."""
        if self._connectors is None:
            self._connectors = self._collect_connectors()
        return self._connectors

    def _collect_connectors(self) -> dict[str, type[Connector]]:
        found: dict[str, tuple[type[Connector], str]] = {}
        for impl in reversed(self.pm.hook.register_connectors.get_hookimpls()):
            offered: list[type[Connector]] = []
            try:
                impl.function(register=offered.append)
            except Exception as exc:
                self._mark_broken(self.infos[impl.plugin_name], exc)
                continue
            for cls in offered:
                if cls.name in found:
                    raise PluginError(
                        f"connector {cls.name!r} is offered by two plugins: "
                        f"{found[cls.name][1]!r} and {impl.plugin_name!r}; disable one with "
                        f"CRMLINK_DISABLE_PLUGINS"
                    )
                found[cls.name] = (cls, impl.plugin_name)
                if impl.plugin_name in self.infos:
                    self.infos[impl.plugin_name].connectors.append(cls.name)
        return {name: cls for name, (cls, _) in found.items()}

    def connector(self, name: str) -> type[Connector]:
        try:
            return self.connectors()[name]
        except KeyError:
            raise PluginError(
                f"no connector named {name!r}; installed: {', '.join(sorted(self.connectors()))}"
            ) from None

    def report_formats(self) -> dict[str, Callable[..., str]]:
        formats: dict[str, Callable[..., str]] = {}
        self.pm.hook.register_report_formats(register=formats.__setitem__)
        return formats

    def add_commands(self, cli: click.Group) -> None:
        self.pm.hook.register_commands(cli=cli)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def plugins(self) -> list[PluginInfo]:
        self.connectors()
        return list(self.infos.values())


def _own_version() -> str:
    from crmlink import __version__

    return __version__


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, impls: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
        click.echo(f"crmlink: hook {hook_name} -> {[i.plugin_name for i in impls]}", err=True)

    def after(outcome: Any, hook_name: str, impls: Any, kwargs: Any) -> None:
        click.echo(f"crmlink: hook {hook_name} returned {outcome.get_result()!r:.200}", err=True)

    pm.add_hookcall_monitoring(before, after)


def get_plugin_host(*, load_entrypoints: bool = True, builtins: bool = True,
                    extra: Iterable[tuple[str, ModuleType | object]] = ()) -> PluginHost:
    """Build a fresh plugin host. Tests pass ``load_entrypoints=False`` for isolation."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    if builtins:
        for name, module in BUILTIN_PLUGINS:
            host.load(name, module, builtin=True)
    for name, plugin in extra:
        host.load(name, getattr(plugin, "__name__", name), loader=lambda p=plugin: p)
    if load_entrypoints:
        host.load_entrypoints()
    if os.environ.get("CRMLINK_TRACE_PLUGINS") == "1":
        _trace(pm)
    return host


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


__all__ = ["PluginHost", "PluginInfo", "get_plugin_host", "BUILTIN_PLUGINS"]
