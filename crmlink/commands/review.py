"""``crmlink review``: a period's expectations against its results, the accounts rising
and declining, and the tasks for the next period."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from crmlink.commands.common import (
    as_of_option,
    config,
    config_option,
    db_option,
    host_of,
    open_store,
    write_output,
)
from crmlink.core.evaluation.period import parse_period
from crmlink.core.evaluation.review import run_review
from crmlink.core.report import review as render


@click.command("review")
@click.option("--period", metavar="PERIOD",
              help="2026, 2026-Q3, 2026-H1, 2026-07 or 2026-01-01..2026-06-30 [default: the year of --as-of].")
@as_of_option
@click.option("--expectations", "expectations_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A CSV of expectations (remote_id, and any of tier, stage, level, health; optional source, "
                   "period); it wins over the config file and the CRM fields.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table",
              show_default=True)
@click.option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
@db_option
@config_option
@click.pass_context
def command(ctx: click.Context, period: str | None, as_of: Any, expectations_file: str | None, fmt: str,
            output: str | None, db_url: str | None, config_file: str | None) -> None:
    """Review a period: each account's expected tier, stage, level and health against
    the actual at the period's end (or --as-of, while it runs), the portfolio's totals,
    the accounts rising and declining (between the first and last audits saved within
    the period, else computed at both ends), and the ten most important tasks for the
    next period, each with its account, evidence and the method's action.

    \b
    Examples:
      crmlink review --period 2026
      crmlink review --period 2026-Q3 --expectations plan-2026.csv --format json
    """
    settings = config(config_file)
    day = as_of or datetime.now(timezone.utc).date()
    chosen = parse_period(period or str(day.year))
    store = open_store(db_url)
    review = run_review(store, host_of(ctx), settings, chosen, day,
                        Path(expectations_file) if expectations_file else None)
    if fmt == "json":
        text = json.dumps(review.to_json(), ensure_ascii=False, default=str)
    else:
        text = "\n".join(render.lines(review, markdown=fmt == "markdown")) + "\n"
    write_output(text, output)
