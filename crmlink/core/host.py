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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import click
import pluggy

from crmlink.core import hookspecs
from crmlink.core.connector import Connector
from crmlink.core.errors import PluginError
from crmlink.core.findings import Finding, Score, ScoreDefinition
from crmlink.core.missing import install_hint
from crmlink.core.model import Interaction
from crmlink.core.rows import RowBatch, fields_of, trusted

if TYPE_CHECKING:  # pragma: no cover
    from datetime import date

    from crmlink.core.analysis.view import AccountView, OpportunityView, PortfolioView
    from crmlink.core.classify import Classification
    from crmlink.core.document import Departure
    from crmlink.core.evaluation.relationship import Relationship
    from crmlink.core.evaluation.signals import Signal
    from crmlink.core.model import Contact, ExecutionRecord, Opportunity, Stage
    from crmlink.core.push.target import PushTarget

ENTRY_POINT_GROUP = "crmlink"
_PROBE_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
#: :func:`_probe`'s interaction as values in field order, and where its kind, subject,
#: campaign, extra and raw go
_PROBE = list(RowBatch.of(Interaction, [Interaction(remote_id="probe", occurred_at=_PROBE_TIME)]).rows[0])
_KIND, _SUBJECT, _CAMPAIGN, _EXTRA, _RAW = map(fields_of(Interaction).index, ("kind", "subject", "campaign",
                                                                             "extra", "raw"))

#: (plugin name, module) of the plugins that ship with crmlink.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("csv", "crmlink.plugins.csv"),
    ("salesforce", "crmlink.plugins.salesforce"),
    ("hubspot", "crmlink.plugins.hubspot"),
    ("graph", "crmlink.plugins.graph"),
    ("mail", "crmlink.plugins.mail"),
    ("imap", "crmlink.plugins.imap"),
    ("calendar", "crmlink.plugins.calendar"),
    ("classify", "crmlink.plugins.classify"),
    ("ltc", "crmlink.plugins.ltc"),
    ("method", "crmlink.plugins.method"),
    ("signals", "crmlink.plugins.signals"),
)


@dataclass
class PluginInfo:
    """What ``crmlink plugins`` shows for one plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool
    status: str = "ok"  # ok | broken | blocked | missing (a declared dependency is not installed)
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
    """A typed facade over a pluggy ``PluginManager``: one method per hook, which core
    code calls instead of ``pm.hook`` (findings and scores come back merged)."""

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
        except ModuleNotFoundError as exc:
            self._mark_missing(info, exc)
            return
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

    def _mark_missing(self, info: PluginInfo, exc: ModuleNotFoundError) -> None:
        """A dependency the plugin's distribution declares is not installed: not a bug, and
        no warning on every command; ``crmlink plugins`` and a command that needs the
        plugin say which ``pip install`` brings it back."""
        hint = install_hint(exc, info.distribution)
        if hint is None:  # a module it never declared: the plugin is broken
            self._mark_broken(info, exc)
            return
        info.status = "missing"
        info.error = f"{exc}; install it with: {hint}"
        if os.environ.get("CRMLINK_STRICT_PLUGINS") == "1":
            raise PluginError(f"plugin {info.name!r} ({info.distribution}) cannot load: {info.error}") from exc

    def unavailable(self, name: str) -> PluginInfo | None:
        """The plugin called ``name`` if it is installed but missing a dependency."""
        info = self.infos.get(name)
        return info if info is not None and info.status == "missing" else None

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
            missing = self.unavailable(name)
            if missing is not None:
                raise PluginError(f"the {name} connector cannot load: {missing.error}") from None
            raise PluginError(
                f"no connector named {name!r}; installed: {', '.join(sorted(self.connectors()))}"
            ) from None

    def report_formats(self) -> dict[str, Callable[..., str]]:
        """Output formats offered by plugins, by name (``register_report_formats``)."""
        formats: dict[str, Callable[..., str]] = {}
        self.pm.hook.register_report_formats(register=formats.__setitem__)
        return formats

    def push_targets(self) -> dict[str, type[PushTarget]]:
        """Push targets by connector name (``register_push_targets``); a later-registered
        plugin's target replaces an earlier one for the same connector."""
        found: dict[str, type[PushTarget]] = {}
        for impl in reversed(self.pm.hook.register_push_targets.get_hookimpls()):
            offered: list[type[PushTarget]] = []
            try:
                impl.function(register=offered.append)
            except Exception as exc:
                self._mark_broken(self.infos[impl.plugin_name], exc)
                continue
            found.update({cls.connector: cls for cls in offered})
        return found

    def add_commands(self, cli: click.Group) -> None:
        """Let plugins add commands to ``cli`` (``register_commands``)."""
        self.pm.hook.register_commands(cli=cli)

    def classify_contact(self, contact: Contact) -> Classification | None:
        """The first plugin's classification of ``contact``, or ``None``."""
        return cast("Classification | None", self.pm.hook.classify_contact(contact=contact))

    def classify_interaction(self, interaction: Interaction) -> str | None:
        """Which of the five methods ``interaction`` is, by the first plugin that knows."""
        return cast("str | None", self.pm.hook.classify_interaction(interaction=interaction))

    def implementers(self, hook: str) -> list[tuple[str, str | None]]:
        """The plugins that implement ``hook``, each with its version (``None`` when unknown)."""
        found = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            info = self.infos.get(impl.plugin_name)
            found.append((impl.plugin_name, info.version if info else None))
        return found

    def interaction_method(self, kind: str, subject: str | None, campaign: str | None) -> str | None:
        """:meth:`classify_interaction` for an interaction known by its kind, subject and
        campaign alone (what the analysis reads of each row)."""
        return self.classify_interaction(_probe(kind, subject, campaign))

    def ltc_stage(self, opportunity: Opportunity, stage: Stage | None, config: Mapping[str, Any],
                  execution: Sequence[ExecutionRecord]) -> str | None:
        """The first plugin's LTC stage for a deal, or ``None`` when none maps it."""
        return cast("str | None", self.pm.hook.ltc_stage(opportunity=opportunity, stage=stage,
                                                         config=config, execution=execution))

    def score_account(self, view: AccountView) -> dict[str, Score]:
        """Every plugin's scores of one account by name; the later-registered plugin wins a clash."""
        merged: dict[str, Score] = {}
        for result in reversed(self.pm.hook.score_account(view=view)):  # pluggy answers last-registered first
            for score in result or ():
                merged[score.name] = score
        return merged

    def score_definitions(self) -> tuple[ScoreDefinition, ...]:
        """Every declared score, merged by name, in headline order (then by name; scores
        without a headline place last). The later-registered plugin wins a clash, and only
        the latest declared ``overall`` score stays overall."""
        merged: dict[str, ScoreDefinition] = {}
        for result in reversed(self.pm.hook.score_definitions()):  # earliest-registered first
            for definition in result or ():
                merged.pop(definition.name, None)
                merged[definition.name] = definition  # re-inserted: dict order is declaration order
        overall = next((d.name for d in reversed(merged.values()) if d.overall), None)
        definitions = [replace(d, overall=d.name == overall) for d in merged.values()]
        return tuple(sorted(definitions, key=lambda d: (d.headline is None, d.headline or 0, d.name)))

    def simulate_departure(self, view: AccountView, user_id: str) -> Departure | None:
        """The first plugin's departure simulation for ``user_id`` at this account."""
        return cast("Departure | None", self.pm.hook.simulate_departure(view=view, user_id=user_id))

    def evaluate_relationship(self, view: AccountView) -> Relationship | None:
        """The stage and level of the first plugin that answers (``evaluate_relationship``)."""
        return cast("Relationship | None", self.pm.hook.evaluate_relationship(view=view))

    def review_signals(self, store: Any, start: date, end: date,
                       config: Mapping[str, Any] | None = None) -> list[Signal]:
        """Every plugin's signals for a review period (``review_signals``)."""
        if config is None:
            from crmlink.core.analysis.config import DEFAULTS as config
        found: list[Signal] = []
        for result in self.pm.hook.review_signals(store=store, start=start, end=end, config=config):
            found.extend(result or [])
        return found

    def account_findings(self, view: AccountView) -> list[Finding]:
        """Every plugin's findings about one account."""
        return _flat(self.pm.hook.account_findings(view=view))

    def opportunity_findings(self, view: OpportunityView) -> list[Finding]:
        """Every plugin's findings about one deal."""
        return _flat(self.pm.hook.opportunity_findings(view=view))

    def portfolio_findings(self, view: PortfolioView) -> list[Finding]:
        """Every plugin's findings about the whole portfolio."""
        return _flat(self.pm.hook.portfolio_findings(view=view))

    def plugins(self) -> list[PluginInfo]:
        self.connectors()
        return list(self.infos.values())


def _probe(kind: str, subject: str | None, campaign: str | None) -> Interaction:
    """An interaction of ``kind``, ``subject`` and ``campaign`` (as the store holds them:
    canonical), made without validating them again: the build of a real export asks
    the hook of nearly every interaction's subject, and constructing the record cost
    twice what the method plugin's answer does."""
    values = _PROBE.copy()
    values[_KIND], values[_SUBJECT], values[_CAMPAIGN], values[_EXTRA], values[_RAW] = kind, subject, campaign, {}, {}
    return cast(Interaction, trusted(Interaction, values))


def _constant(value: object) -> Callable[[], object]:
    return lambda: value


def _flat(results: Iterable[Iterable[Finding] | None]) -> list[Finding]:
    return [f for result in results for f in (result or ())]


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
        host.load(name, getattr(plugin, "__name__", name), loader=_constant(plugin))
    if load_entrypoints:
        host.load_entrypoints()
    if os.environ.get("CRMLINK_TRACE_PLUGINS") == "1":
        _trace(pm)
    return host


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


__all__ = ["PluginHost", "PluginInfo", "get_plugin_host", "BUILTIN_PLUGINS"]
