"""``crmlink aggregate``: bring the audit's aggregates up to date."""

from __future__ import annotations

import time
from contextlib import nullcontext

import click

from crmlink.commands.common import (
    ProgressLine,
    config,
    config_option,
    db_option,
    host_of,
    open_store,
    stderr_is_terminal,
)
from crmlink.core.analysis.aggregate_build import refresh
from crmlink.core.analysis.aggregates import enabled
from crmlink.core.errors import ConfigError


@click.command("aggregate")
@db_option
@click.option("--source", "source", metavar="NAME", help="Only this source [default: every audited source].")
@click.option("--rebuild", is_flag=True, help="Rebuild every aggregate from the interactions, not only the stale ones.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@config_option
@click.pass_context
def command(ctx: click.Context, db_url: str | None, source: str | None, rebuild: bool, quiet: bool,
            config_file: str | None) -> None:
    """Rebuild the aggregates the audit reads instead of every interaction: those a sync
    left stale (killed, or still running when an audit ran), those of a store made by an
    older crmlink, or all of them after a change of weights, half-life, mass email limit,
    meeting group size or method plugins. A sync does this itself when it ends.

    \b
    Examples:
      crmlink aggregate
      crmlink aggregate --source prod --rebuild
    """
    settings = config(config_file)
    store = open_store(db_url)
    if source is not None and source not in store.sources():
        raise ConfigError(f"the store has no source named {source!r}; it has: "
                          f"{', '.join(store.sources()) or 'none (run crmlink sync first)'}")
    started = time.monotonic()
    progress = ProgressLine("accounts' aggregates") if not quiet and stderr_is_terminal() else None
    with progress or nullcontext():
        done = refresh(store, host_of(ctx), settings, [source] if source else None, rebuild=rebuild,
                       progress=progress)
    for found in done:
        how = "every account rebuilt" if found.full else "stale accounts rebuilt"
        same = f" and {found.unchanged} the same as stored, not written" if found.unchanged else ""
        left = f"; {found.left} changed again meanwhile, left for the next run" if found.left else ""
        click.echo(f"{found.source}: {found.built - found.unchanged} aggregate(s) written{same} ({how}){left}")
    if not done:
        click.echo("Nothing to aggregate: the store holds no accounts yet.")
    if not enabled(settings):
        click.echo("Note: [audit] aggregates = false in the config: audits fold every interaction "
                   "and do not read these.", err=True)
    click.echo(f"Done in {time.monotonic() - started:.1f}s", err=True)
