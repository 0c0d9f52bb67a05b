"""``crmlink ltc``: every deal's Lead-to-Cash stage, and the funnel."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import click

from crmlink.cli import host_of
from crmlink.commands.common import (
    as_of_option,
    config,
    config_option,
    db_option,
    open_store,
    write_output,
)
from crmlink.core.analysis.audit import Audit
from crmlink.core.errors import ConfigError
from crmlink.core.ltc import LTC_PHASES, LTC_STAGES


def funnel(opportunities: list[dict[str, Any]]) -> dict[str, Any]:
    """Count and amount per LTC stage, deals per phase, and conversion between phases."""
    stages: dict[str, dict[str, Any]] = {s: {"count": 0, "amount": Decimal(0)} for s in LTC_STAGES}
    for opp in opportunities:
        bucket = stages[opp["ltc_stage"]]
        bucket["count"] += 1
        bucket["amount"] += Decimal(opp["amount"] or 0)
    phases: dict[str, int] = defaultdict(int)
    for stage, bucket in stages.items():
        if LTC_PHASES[stage]:
            phases[LTC_PHASES[stage]] += bucket["count"]
    reached_contract = phases["manage_contract_execution"]
    reached_opportunity = phases["manage_opportunity"] + reached_contract + stages["lost"]["count"]
    return {
        "stages": {s: {"count": b["count"], "amount": str(b["amount"])} for s, b in stages.items()},
        "phases": dict(phases),
        "conversion": {"opportunity_to_contract": round(reached_contract / reached_opportunity, 3)
                       if reached_opportunity else None,
                       "win_rate_closed": round(reached_contract / (reached_contract + stages["lost"]["count"]), 3)
                       if reached_contract + stages["lost"]["count"] else None},
        "unmapped": [o["remote_id"] for o in opportunities if o["ltc_stage"] == "unmapped"],
    }


def render_table(opps: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [f"{'opportunity':<36}{'native stage':<24}{'LTC stage':<11}{'phase':<27}{'days':>6}  findings"]
    for o in opps:
        lines.append(f"{(o['name'] or o['remote_id'])[:35]:<36}{(o['stage'] or '')[:23]:<24}{o['ltc_stage']:<11}"
                     f"{o['ltc_phase'] or '-':<27}{o['days_in_stage'] if o['days_in_stage'] is not None else '-':>6}  "
                     f"{', '.join(f['code'] for f in o['findings'])}")
    lines += ["", "Funnel:", f"  {'stage':<11}{'count':>7}{'amount':>18}"]
    for stage, bucket in summary["stages"].items():
        lines.append(f"  {stage:<11}{bucket['count']:>7}{bucket['amount']:>18}")
    conversion = summary["conversion"]
    lines.append(f"  opportunity -> contract: {conversion['opportunity_to_contract']}; "
                 f"win rate of closed deals: {conversion['win_rate_closed']}")
    if summary["unmapped"]:
        lines.append(f"  unmapped ({len(summary['unmapped'])}): {', '.join(summary['unmapped'][:20])} "
                     "- map them in [ltc.overrides] of the config file")
    return "\n".join(lines) + "\n"


def render_markdown(opps: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = ["# LTC stages", "", "| opportunity | native stage | LTC stage | phase | days in stage | findings |",
             "|---|---|---|---|---|---|"]
    for o in opps:
        lines.append(f"| {o['name']} | {o['stage']} | {o['ltc_stage']} | {o['ltc_phase'] or ''} | "
                     f"{o['days_in_stage'] if o['days_in_stage'] is not None else ''} | "
                     f"{', '.join(f['code'] for f in o['findings'])} |")
    lines += ["", "## Funnel", "", "| LTC stage | count | amount |", "|---|---|---|"]
    lines += [f"| {s} | {b['count']} | {b['amount']} |" for s, b in summary["stages"].items()]
    return "\n".join(lines) + "\n"


@click.command("ltc")
@db_option
@click.option("--source", metavar="NAME", help="Only this source.")
@as_of_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
@click.option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
@config_option
@click.pass_context
def command(ctx: click.Context, db_url: str | None, source: str | None, as_of: Any, fmt: str,
            output: str | None, config_file: str | None) -> None:
    """Show every opportunity's native stage, LTC stage and phase, time in stage and
    findings, then the funnel.

    \b
    Example:
      crmlink ltc --format markdown
    """
    store = open_store(db_url)
    if source is not None and source not in store.sources():
        raise ConfigError(f"the store has no source named {source!r}")
    document = Audit(store, host_of(ctx), config(config_file), as_of).run(source)
    opps = document["opportunities"]
    summary = funnel(opps)
    if fmt == "json":
        text = json.dumps({"as_of": document["as_of"], "opportunities": opps, "funnel": summary}, indent=2,
                          ensure_ascii=False)
    elif fmt == "markdown":
        text = render_markdown(opps, summary)
    else:
        text = render_table(opps, summary)
    write_output(text, output)
