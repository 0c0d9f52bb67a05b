"""``crmlink ltc``: every deal's and lead's Lead-to-Cash stage, and the funnel."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
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
from crmlink.commands.ltc_render import render_markdown, render_table
from crmlink.commands.sync import nothing_synced, sync_folder
from crmlink.core import clock
from crmlink.core.analysis.audit import Audit, as_of_timestamp
from crmlink.core.document import OpportunityEntry
from crmlink.core.errors import ConfigError
from crmlink.core.ltc import LTC_PHASES, is_lead_contact, lead_outcome
from crmlink.core.model import Contact, Lead
from crmlink.core.report.funnel import ltc_funnel
from crmlink.core.store import Store


def lead_rows(store: Store, sources: list[str], ltc: Mapping[str, Any], as_of: float) -> list[dict[str, Any]]:
    """Every lead: Lead records, and contacts whose lifecycle stage says lead (HubSpot)."""
    rows = []
    for source in sources:
        for lead in store.records_of(Lead, source=source):
            rows.append(_lead_row(lead, lead.status, lead.converted_opportunity_id, ltc, as_of))
        for contact in store.records_of(Contact, source=source):
            if is_lead_contact(contact, ltc):
                status = contact.extra.get("hs_lead_status") or contact.extra.get("lifecyclestage")
                rows.append(_lead_row(contact, status, None, ltc, as_of))
    return rows


def _lead_row(record: Any, status: Any, converted: str | None, ltc: Mapping[str, Any],
              as_of: float) -> dict[str, Any]:
    created = getattr(record, "created_at", None)
    outcome = lead_outcome(str(status) if status else None, converted, ltc)
    return {
        "id": record.id, "source": record.source, "remote_id": record.remote_id,
        "entity": record.entity, "name": record.name, "company": getattr(record, "company", None),
        "status": status, "ltc_stage": "lead", "ltc_phase": LTC_PHASES["lead"], "outcome": outcome,
        "converted_opportunity_id": f"{record.source}:{converted}" if converted else None,
        "days_in_stage": round(max(0.0, clock.days_between(created, as_of)), 1)
        if created and outcome == "open" else None,
    }


def funnel(opportunities: Sequence[OpportunityEntry], leads: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Count and amount per LTC stage (open leads in ``lead``), deals per phase, lead
    outcomes, and conversion between phases."""
    outcomes = {"open": 0, "converted": 0, "disqualified": 0}
    for lead in leads:
        outcomes[lead["outcome"]] += 1
    stages = ltc_funnel(opportunities, open_leads=outcomes["open"])
    phases: dict[str, int] = defaultdict(int)
    for row in stages:
        phase = LTC_PHASES.get(row.stage)
        if phase:
            phases[phase] += row.count
    counts = {row.stage: row.count for row in stages}
    won = phases["manage_contract_execution"]
    lost = counts["lost"]
    reached_opportunity = phases["manage_opportunity"] + won + lost
    return {
        "stages": {row.stage: {"count": row.count, "amount": str(row.amount)} for row in stages},
        "phases": dict(phases),
        "leads": {"total": len(leads), **outcomes},
        "conversion": {"lead_to_opportunity": _ratio(outcomes["converted"], len(leads)),
                       "opportunity_to_contract": _ratio(won, reached_opportunity),
                       "win_rate_closed": _ratio(won, won + lost)},
        "unmapped": [o.remote_id for o in opportunities if o.ltc_stage == "unmapped"],
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


@click.command("ltc")
@click.argument("path", required=False, type=click.Path(file_okay=False))
@db_option
@click.option("--source", metavar="NAME", help="Only this source [default: all; with PATH: csv].")
@as_of_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
@click.option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
@config_option
@click.pass_context
def command(ctx: click.Context, path: str | None, db_url: str | None, source: str | None, as_of: Any,
            fmt: str, output: str | None, config_file: str | None) -> None:
    """Show every opportunity's native stage, LTC stage and phase, time in stage and
    findings; every lead and what became of it; then the funnel.

    With PATH (a folder in the canonical CSV format) the export is synced into the
    store first and shown on its own, as with ``crmlink audit PATH``.

    \b
    Examples:
      crmlink ltc --format markdown
      crmlink ltc examples/sample --as-of 2026-11-20
    """
    if path is not None:
        source = sync_folder(ctx, path, source, db_url)
    store = open_store(db_url)
    if source is not None and source not in store.sources():
        raise ConfigError(f"the store has no source named {source!r}; `crmlink status` lists the sources")
    if (empty := nothing_synced(store)) is not None:
        if fmt == "table" and not output:
            click.echo(empty)
            return
        click.echo(f"crmlink: {empty}", err=True)
    settings = config(config_file)
    document = Audit(store, host_of(ctx), settings, as_of).document(source)
    leads = lead_rows(store, [source] if source else store.sources(), settings["ltc"], as_of_timestamp(as_of))
    summary = funnel(document.opportunities, leads)
    opps = [o.to_json() for o in document.opportunities]
    if fmt == "json":
        text = json.dumps({"as_of": document.as_of, "opportunities": opps, "leads": leads, "funnel": summary},
                          indent=2, ensure_ascii=False)
    elif fmt == "markdown":
        text = render_markdown(opps, leads, summary)
    else:
        text = render_table(opps, leads, summary)
    write_output(text, output)
