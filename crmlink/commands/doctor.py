"""``crmlink doctor``: can each configured source connect, what can it read, how much API
budget is left today, how fresh is the store, and what to fix."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from crmlink.commands.common import config_option, db_option, host_of
from crmlink.commands.sources import from_environment, source_spec, sources, with_keyring
from crmlink.core.connector import Check, Connector
from crmlink.core.errors import CrmlinkError, ExitCode
from crmlink.core.host import PluginHost
from crmlink.core.redact import Redactor
from crmlink.core.store import Store, default_url

#: A source whose last successful sync is older than this many days is a warning.
STALE_DAYS = 7.0


@dataclass
class Report:
    """The checks of one source (a named source, or a source found only in the store)."""

    name: str
    connector: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks)


def check_source(host: PluginHost, config_file: str | None, name: str) -> Report:
    """Connect to the named source ``name`` and run its connector's checks."""
    try:
        connector_name, spec = source_spec(config_file, name)
    except CrmlinkError as exc:
        return Report(name, "?", [Check("settings", "fail", str(exc))])
    report = Report(name, connector_name)
    try:
        cls = host.connector(connector_name)
        settings = with_keyring(name, cls, {**spec, **from_environment(cls, spec)})
        connector = cls(settings)
    except CrmlinkError as exc:
        report.checks.append(Check("settings", "fail", str(exc)))
        return report
    report.checks.extend(_diagnose(connector, name))
    return report


def _diagnose(connector: Connector, name: str) -> list[Check]:
    redact = Redactor(connector.secrets)
    checks: list[Check] = []
    try:
        checks.extend(connector.diagnose())
    except Exception as exc:
        error = exc if isinstance(exc, CrmlinkError) else connector.classify_error(exc)
        text = str(error) if error is not None else f"{type(exc).__name__}: {exc}"
        checks.append(Check("connect", "fail", text))
    if not checks:
        checks.append(Check("connect", "warn", f"the {connector.name} connector offers no checks; "
                            f"try 'crmlink sync {name}'"))
    return [Check(c.topic, c.status, redact(c.detail), redact(c.fix) if c.fix else None) for c in checks]


def open_existing_store(db_url: str | None) -> Store | None:
    """The store, or ``None`` when it is an SQLite file that does not exist yet (doctor
    creates nothing)."""
    url = db_url or default_url()
    parsed = sa.engine.make_url(url)
    missing = parsed.database not in (None, "", ":memory:") and not Path(str(parsed.database)).exists()
    return None if parsed.drivername.startswith("sqlite") and missing else Store(url)


def freshness(store: Store | None, source: str) -> Check:
    """When ``source`` last synced successfully, and whether its last run failed."""
    runs = [r for r in (store.runs(1000) if store else []) if r["source"] == source]
    good = next((r for r in runs if r["status"] in ("ok", "partial") and r["finished_at"]), None)
    if good is None:
        return Check("freshness", "warn", "never synced into this store", f"run: crmlink sync {source}")
    finished: datetime = good["finished_at"]
    days = (time.time() - finished.timestamp()) / 86400
    age = (f"{days * 1440:.0f} min" if days < 1 / 24 else f"{days * 24:.0f} h" if days < 2
           else f"{days:.0f} days")
    detail = f"last synced {finished:%Y-%m-%d %H:%M} UTC ({age} ago, run {good['id']}, {good['status']})"
    latest = runs[0]
    if latest["status"] in ("failed", "interrupted"):
        return Check("freshness", "warn", f"{detail}; the last run ({latest['id']}) {latest['status']}: "
                     f"{latest['error'] or ''}".rstrip(": "), f"see 'crmlink status --run {latest['id']}'")
    if days > STALE_DAYS:
        return Check("freshness", "warn", detail, f"run: crmlink sync {source}")
    return Check("freshness", "ok", detail)


def _print(reports: list[Report], where: str, store_url: str, store: Store | None) -> None:
    click.echo(f"crmlink doctor: {len(reports)} source(s) from {where}; store {store_url}"
               + ("" if store else " (not created yet)"))
    fixes: list[str] = []
    for report in reports:
        click.echo(f"\n{report.name} ({report.connector})")
        for check in report.checks:
            mark = {"ok": "ok", "warn": "warn", "fail": "FAIL"}[check.status]
            click.echo(f"  {mark:<5} {check.topic:<11} {check.detail}")
            if check.status != "ok":
                fixes.append(f"{report.name}: {check.fix or check.detail}")
    if fixes:
        click.echo("\nWhat to fix:")
        for number, fix in enumerate(fixes, 1):
            click.echo(f"  {number}. {fix}")
    else:
        click.echo("\nNothing to fix.")


@click.command("doctor")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@config_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def command(ctx: click.Context, names: tuple[str, ...], config_file: str | None, db_url: str | None,
            as_json: bool) -> None:
    """Check every named source of the config file (or only NAME...): can it connect, what
    can it read (objects, fields, scopes), how much API budget is left today, when it last
    synced; then what to fix. Sources found only in the store get the freshness check.

    Exits 4 when a source fails a check (cannot connect, cannot read what the sync needs,
    budget used up, or its settings are wrong); warnings alone exit 0.

    \b
    Examples:
      crmlink doctor
      crmlink doctor prod --config crmlink.toml
    """
    host = host_of(ctx)
    configured = list(names) or list(sources(config_file))
    store = open_existing_store(db_url)
    reports = [check_source(host, config_file, name) for name in configured]
    for report in reports:
        report.checks.append(freshness(store, report.name))
    for other in sorted(set(store.sources() if store else []) - set(configured)):
        last = next((r for r in store.runs(1000) if r["source"] == other), None) if store else None
        reports.append(Report(other, last["connector"] if last else "?", [freshness(store, other)]))
    store_url = store.display_url if store else (db_url or default_url())
    if as_json:
        click.echo(json.dumps({"store": store_url, "ok": not any(r.failed for r in reports),
                               "sources": [{"name": r.name, "connector": r.connector,
                                            "checks": [asdict(c) for c in r.checks]} for r in reports]},
                              indent=2))
    else:
        where = config_file or "the config file" if configured else "no config file sources"
        _print(reports, where, store_url, store)
        if not configured:
            click.echo("\nNo named sources: add a [sources.NAME] table with connector = \"salesforce\" "
                       "(or hubspot) to crmlink.toml to check a connection.")
    if any(r.failed for r in reports):
        ctx.exit(int(ExitCode.CONNECTOR))


__all__ = ["command", "check_source", "freshness", "Report"]


def run_from_status(ctx: click.Context, config_file: str | None, db_url: str | None,
                    as_json: bool) -> Any:
    """``crmlink status --check``: the same as ``crmlink doctor``."""
    return ctx.invoke(command, names=(), config_file=config_file, db_url=db_url, as_json=as_json)
