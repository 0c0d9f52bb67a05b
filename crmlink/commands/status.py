"""``crmlink status``: the record of every sync run."""

from __future__ import annotations

import json

import click

from crmlink.commands.common import config_option, db_option, open_store


@click.command("status")
@db_option
@click.option("--run", "run_id", type=int, help="Show one run with its skipped records.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.option("--check", is_flag=True, help="Check every configured source instead (crmlink doctor).")
@config_option
@click.pass_context
def command(ctx: click.Context, db_url: str | None, run_id: int | None, as_json: bool, check: bool,
            config_file: str | None) -> None:
    """Show recent sync runs: when, what was read, created, updated, deleted and skipped,
    and the error if a run failed. A record read again unchanged counts in 'read' only.

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
