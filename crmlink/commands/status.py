"""``crmlink status``: the record of every sync run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click
import sqlalchemy as sa

from crmlink.commands.common import config, config_option, db_option, host_of, open_store
from crmlink.core import aggregate_store
from crmlink.core.analysis import cache
from crmlink.core.analysis.aggregates import classifiers, enabled, fingerprint
from crmlink.core.errors import ConfigError
from crmlink.core.host import PluginHost
from crmlink.core.push import log as push_log
from crmlink.core.store import Store


@click.command("status")
@db_option
@click.option("--run", "run_id", type=int, help="Show one run with its skipped records.")
@click.option("--push", "push_id", type=int, help="Show one push run with every field it wrote or was refused.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.option("--check", is_flag=True, help="Check every configured source instead (crmlink doctor).")
@config_option
@click.pass_context
def command(ctx: click.Context, db_url: str | None, run_id: int | None, push_id: int | None, as_json: bool,
            check: bool, config_file: str | None) -> None:
    """Show recent sync runs: when, what was read, created, updated, deleted and skipped,
    and the error if a run failed. A record read again unchanged counts in 'read' only.
    Then the push runs (crmlink push): what was written and what the CRM refused. Then
    what the next audit of each source starts from: its aggregates (how many, how many
    stale) and the accounts in the audit's cache.

    \b
    Examples:
      crmlink status --run 3
      crmlink status --check        # the same as crmlink doctor
    """
    if check:
        from crmlink.commands.doctor import run_from_status

        run_from_status(ctx, config_file, db_url, as_json)
        return
    store = open_store(db_url)
    if push_id is not None:
        show_push(store, push_id, as_json)
        return
    runs = store.runs(200 if run_id else 20)
    if run_id:
        runs = [r for r in runs if r["id"] == run_id]
    for run in runs:
        run["skipped_records"] = store.skipped(run["id"]) if run_id else None
    if as_json:
        click.echo(json.dumps(runs, indent=2, default=str))
        return
    if not runs:
        click.echo("No sync runs yet; run 'crmlink sync ...' first.")
    for run in runs:
        finished = run["finished_at"].isoformat(timespec="seconds") if run["finished_at"] else "-"
        click.echo(f"run {run['id']}: {run['source']} ({run['connector']}) {run['status']} "
                   f"started {run['started_at'].isoformat(timespec='seconds')} finished {finished}"
                   + (" [full]" if run["full"] else ""))
        for stream, c in (run["counts"] or {}).items():
            click.echo(f"  {stream:<22} read {c['read']:>7}  created {c['created']:>7}  updated {c['updated']:>7}"
                       f"  deleted {c['deleted']:>6}  skipped {c['skipped']:>6}")
        if run["error"]:
            click.echo(f"  error: {run['error']}")
        for skip in run["skipped_records"] or []:
            click.echo(f"  skipped {skip['stream']} {skip['remote_id'] or ''}: {skip['reason']}")
    if not run_id:
        for push in push_log.runs(store):
            _push_line(push)
        for line in audit_state(store, host_of(ctx), config(config_file)):
            click.echo(line)


def audit_state(store: Store, host: PluginHost, settings: Mapping[str, Any]) -> list[str]:
    """What the next audit of each source starts from: its aggregates (built with these
    settings and plugins, and how many stale: those accounts it reads from their
    interactions) and the accounts in the audit's cache (those it need not judge again
    if nothing of theirs changed)."""
    sources = store.sources()
    if not sources:
        return []
    print_ = fingerprint(settings, classifiers(host))
    lines = ["The next audit:"]
    with store.engine.connect() as conn:
        for source in sources:
            cached = cache.entries(conn, source) if cache.enabled(settings) else None
            lines.append(f"  {source}: {_aggregates(conn, source, print_, settings)}; "
                         + ("the audit's cache off" if cached is None else f"{cached:,} account(s) in the audit's cache"))
    return lines


def _aggregates(conn: sa.Connection, source: str, print_: str, settings: Mapping[str, Any]) -> str:
    if not enabled(settings):
        return "aggregates off ([audit] aggregates = false): it reads every interaction"
    built = aggregate_store.built(conn, source)
    if built is None:
        return "no aggregates yet: it reads every interaction until a sync or crmlink aggregate builds them"
    if built != print_:
        return ("aggregates built with other settings or plugins: it reads every interaction until a sync "
                "or crmlink aggregate rebuilds them")
    stale = aggregate_store.marks(conn, source)
    people = stale.pop(aggregate_store.PEOPLE, None) is not None
    text = f"{aggregate_store.count(conn, source):,} aggregate(s), "
    text += (f"{len(stale):,} stale (it reads those accounts' interactions until a sync or crmlink "
             "aggregate rebuilds them)" if stale else "none stale")
    return text + (", its executives to check (people changed since)" if people else "")


def _push_line(push: dict[str, Any]) -> None:
    counts = push["counts"] or {}
    click.echo(f"push run {push['id']}: {push['source']} ({push['connector']}) {push['status']} as of "
               f"{push['as_of']} started {push['started_at'].isoformat(timespec='seconds')}: "
               f"{counts.get('changes', 0)} change(s), {counts.get('written', 0)} record(s) written, "
               f"{counts.get('refused', 0)} refused, {counts.get('requests', 0)} request(s)")
    if push["error"]:
        click.echo(f"  error: {push['error']}")


def show_push(store: Store, push_id: int, as_json: bool) -> None:
    """One push run and each field it wrote or was refused."""
    found = [p for p in push_log.runs(store, 10_000) if p["id"] == push_id]
    if not found:
        raise ConfigError(f"the store has no push run {push_id}; 'crmlink status' lists them")
    writes = push_log.run_writes(store, push_id)
    if as_json:
        click.echo(json.dumps({**found[0], "writes": writes}, indent=2, default=str))
        return
    _push_line(found[0])
    for w in writes:
        said = f": {w['message']}" if w["message"] else ""
        click.echo(f"  {w['status']} {w['object']} {w['record_id']} {w['field']}: {w['old'] or '(blank)'} -> "
                   f"{w['new'] or '(blank)'}{said}")
