"""Table and markdown renderings of ``crmlink ltc`` (the JSON form is the data itself)."""

from __future__ import annotations

from typing import Any


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _conversion_line(summary: dict[str, Any]) -> str:
    c = summary["conversion"]
    return (f"lead -> opportunity: {c['lead_to_opportunity']}; opportunity -> contract: "
            f"{c['opportunity_to_contract']}; win rate of closed deals: {c['win_rate_closed']}")


def _unmapped_line(summary: dict[str, Any]) -> str | None:
    if not summary["unmapped"]:
        return None
    return (f"unmapped ({len(summary['unmapped'])}): {', '.join(summary['unmapped'][:20])} "
            "- map them in [ltc.overrides] of the config file")


def render_table(opps: list[dict[str, Any]], leads: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [f"{'opportunity':<36}{'native stage':<24}{'LTC stage':<11}{'phase':<27}{'days':>6}  findings"]
    for o in opps:
        lines.append(f"{(o['name'] or o['remote_id'])[:35]:<36}{(o['stage'] or '')[:23]:<24}{o['ltc_stage']:<11}"
                     f"{o['ltc_phase'] or '-':<27}{_days(o['days_in_stage']):>6}  "
                     f"{', '.join(f['code'] for f in o['findings'])}")
    if leads:
        lines += ["", f"{'lead':<36}{'status':<24}{'LTC stage':<11}{'outcome':<14}{'days':>6}  opportunity"]
        for lead in leads:
            lines.append(f"{(lead['name'] or lead['remote_id'])[:35]:<36}{(lead['status'] or '')[:23]:<24}"
                         f"{lead['ltc_stage']:<11}{lead['outcome']:<14}{_days(lead['days_in_stage']):>6}  "
                         f"{lead['converted_opportunity_id'] or ''}")
    lines += ["", "Funnel:", f"  {'stage':<11}{'count':>7}{'amount':>18}"]
    for stage, bucket in summary["stages"].items():
        lines.append(f"  {stage:<11}{bucket['count']:>7}{bucket['amount']:>18}")
    lines.append("  " + _conversion_line(summary))
    unmapped = _unmapped_line(summary)
    if unmapped:
        lines.append("  " + unmapped)
    return "\n".join(lines) + "\n"


def render_markdown(opps: list[dict[str, Any]], leads: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = ["# LTC stages", "", "| opportunity | native stage | LTC stage | phase | days in stage | findings |",
             "|---|---|---|---|---|---|"]
    for o in opps:
        lines.append(f"| {o['name']} | {o['stage']} | {o['ltc_stage']} | {o['ltc_phase'] or ''} | "
                     f"{_days(o['days_in_stage'])} | {', '.join(f['code'] for f in o['findings'])} |")
    if leads:
        lines += ["", "## Leads", "", "| lead | status | LTC stage | outcome | days | opportunity |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {lead['name'] or lead['remote_id']} | {lead['status'] or ''} | {lead['ltc_stage']} | "
                  f"{lead['outcome']} | {_days(lead['days_in_stage'])} | {lead['converted_opportunity_id'] or ''} |"
                  for lead in leads]
    lines += ["", "## Funnel", "", "| LTC stage | count | amount |", "|---|---|---|"]
    lines += [f"| {s} | {b['count']} | {b['amount']} |" for s, b in summary["stages"].items()]
    lines += ["", _conversion_line(summary)]
    unmapped = _unmapped_line(summary)
    if unmapped:
        lines += ["", unmapped]
    return "\n".join(lines) + "\n"
