"""``crmlink diff``: what changed between two saved audits."""

from __future__ import annotations

import json

import click

from crmlink.commands.common import (
    config,
    config_option,
    db_option,
    host_of,
    open_store,
    write_output,
)
from crmlink.core.evaluation.diff import saved_changes
from crmlink.core.report import changes as render


@click.command("diff")
@click.option("--since", metavar="LABEL|DATE",
              help="The earlier saved audit: its label, or a date (the latest saved as of that day) "
                   "[default: the one before --until].")
@click.option("--until", metavar="LABEL|DATE", help="The later saved audit [default: the latest].")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table",
              show_default=True)
@click.option("--limit", type=int, default=20, show_default=True, metavar="N",
              help="table and markdown: list at most N entries of each kind (json lists all).")
@click.option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
@db_option
@config_option
@click.pass_context
def command(ctx: click.Context, since: str | None, until: str | None, fmt: str, limit: int, output: str | None,
            db_url: str | None, config_file: str | None) -> None:
    """What changed between two saved audits (crmlink audit --save): findings new,
    resolved and persisting (since which saved audit), and the accounts whose health,
    key, broad, org, tier, stage or level moved most, with the relationships that
    cooled or grew.

    \b
    Examples:
      crmlink diff
      crmlink diff --since 2026-Q1 --until 2026-Q2 --format json
      crmlink diff --since 2026-01-01
    """
    settings = config(config_file)
    store = open_store(db_url)
    changes = saved_changes(store, host_of(ctx), settings, since, until,
                            None if fmt == "json" else max(1, limit))
    if fmt == "json":
        text = json.dumps(changes.to_json(), ensure_ascii=False)
    elif fmt == "markdown":
        text = "\n".join(render.markdown(changes, limit, heading="#")) + "\n"
    else:
        text = "\n".join(render.table(changes, limit)) + "\n"
    write_output(text, output)
